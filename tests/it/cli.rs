//! The `rostro` binary as a person uses it.

use std::process::{Command, Output};

use crate::common::{fixture, root, testdata};

fn rostro(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rostro"))
        .args(["--models", root().join("models").to_str().expect("utf-8 path")])
        .args(args)
        .output()
        .expect("run rostro")
}

fn path(p: std::path::PathBuf) -> String {
    p.display().to_string()
}

#[test]
fn detect_prints_faces_and_json() {
    let out = rostro(&["detect", &path(fixture("astronaut.png"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 face") && text.contains("liveness") && text.contains("landmarks"), "{text}");

    let out =
        rostro(&["detect", "--json", &path(fixture("astronaut.png")), &path(testdata("faces/deepface/couple.jpg"))]);
    assert!(out.status.success());
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["faces"].as_array().map(Vec::len), Some(1));
    assert_eq!(lines[0]["faces"][0]["landmarks"].as_array().map(Vec::len), Some(5));
    assert!(lines[0]["faces"][0]["liveness"]["score"].as_f64().is_some());
    assert!(lines[1]["faces"].as_array().map(Vec::len).unwrap_or(0) >= 2, "couple.jpg has two faces");
}

#[test]
fn embed_prints_128_values_per_face() {
    let out = rostro(&["embed", "--json", &path(fixture("obama.jpg"))]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let e = v["faces"][0]["embedding"].as_array().expect("embedding");
    assert_eq!(e.len(), 128);
    let norm: f64 = e.iter().map(|x| x.as_f64().expect("number").powi(2)).sum();
    assert!((norm - 1.0).abs() < 1e-4);
}

#[test]
fn compare_same_and_different() {
    let out = rostro(&["compare", &path(fixture("obama.jpg")), &path(fixture("obama2.jpg"))]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("same person"));
    let out = rostro(&["compare", "--json", &path(fixture("obama.jpg")), &path(fixture("biden.jpg"))]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["same"], false);
    assert!(v["cosine"].as_f64().expect("cosine") < 0.363);
}

#[test]
fn bad_input_exits_non_zero_with_a_message() {
    let dir = std::env::temp_dir().join(format!("rostro-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let junk = dir.join("junk.jpg");
    std::fs::write(&junk, b"definitely not a jpeg").expect("write");
    let out = rostro(&["detect", &path(junk.clone()), &path(fixture("astronaut.png"))]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("junk.jpg: error: not an image"), "{text}");
    assert!(text.contains("astronaut.png: 512x512, 1 face"), "the good file is still processed: {text}");

    let out = rostro(&["compare", &path(fixture("chelsea.png")), &path(fixture("obama.jpg"))]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("chelsea.png: no face found"));

    let out = rostro(&["detect", "/no/such/file.jpg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read"));

    let out = Command::new(env!("CARGO_BIN_EXE_rostro"))
        .args(["--models", "/nonexistent", "detect", "x.jpg"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make setup"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bench_reports_percentiles_per_stage() {
    let out = rostro(&["bench", "--frames", "5", "--json", &path(testdata("bench/frame_640x480.jpg"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for stage in ["decode", "detect", "liveness", "align+embed", "frame (all)"] {
        let p = &v["ms"][stage];
        let (p50, p99) = (p["p50"].as_f64().expect("p50"), p["p99"].as_f64().expect("p99"));
        assert!(p50 > 0.0 && p99 >= p50, "{stage}: {p}");
    }
    assert!(v["ms"]["frame (all)"]["p50"].as_f64() >= v["ms"]["detect"]["p50"].as_f64());
}

/// `rostro people import` and `export` on a stopped service's store: an XLSX
/// with a bad row, a CSV of 20 000 rows killed with SIGKILL mid-way (no row
/// reported done is lost), then the same CSV again to the end.
#[test]
fn people_import_export_and_a_kill_loses_no_reported_row() {
    use std::io::BufRead;
    let dir = crate::http::temp_dir("cli-people");
    let data = path(dir.join("data"));
    let export = |extra: &[&str]| -> Vec<String> {
        let out_file = path(dir.join("out.csv"));
        let mut args = vec!["people", "export", "--company", "company-a", "--data-dir", &data, "--out", &out_file];
        args.extend_from_slice(extra);
        let out = rostro(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        std::fs::read_to_string(&out_file).expect("export").lines().map(str::to_string).collect()
    };

    let sheet = rostro::people::sheet::write_xlsx(&[
        vec!["national_id".into(), "name".into(), "nationality_id".into()],
        vec!["XLSX00000000000001".into(), "Ana".into(), "144".into()],
        vec!["XLSX00000000000002".into(), "Luis".into(), "not a number".into()],
    ]);
    let xlsx = dir.join("people.xlsx");
    std::fs::write(&xlsx, sheet).expect("xlsx");
    let out = rostro(&["people", "import", &path(xlsx), "--company", "company-a", "--data-dir", &data, "--json"]);
    assert_eq!(out.status.code(), Some(1), "a refused row fails the command");
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().expect("report"))
            .expect("JSON report");
    assert_eq!((report["imported"].as_u64(), report["failed"].as_u64()), (Some(1), Some(1)), "{report}");
    assert_eq!(report["errors"][0]["row"], 2, "{report}");
    let rows = export(&["--exclude", "address", "--exclude", "contact"]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows[0].starts_with("id,national_id,name") && rows[1].contains("XLSX00000000000001,Ana"), "{rows:?}");

    let total = 20_000;
    let mut csv = String::from("national_id,name,first_lastname\n");
    for i in 0..total {
        csv.push_str(&format!("BULK{i:014},Persona {i},Bulk\n"));
    }
    let big = path(dir.join("big.csv"));
    std::fs::write(&big, csv).expect("csv");
    let import_args = ["people", "import", &big, "--company", "company-a", "--data-dir", &data, "--json"];
    let mut child = Command::new(env!("CARGO_BIN_EXE_rostro"))
        .args(["--models", root().join("models").to_str().expect("utf-8 path")])
        .args(import_args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn import");
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut reported = 0;
    while reported < 3_000 {
        let line = lines.next().expect("a progress line before the end").expect("read");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
        reported = v["done"].as_u64().expect("done") as usize;
        assert!(reported < total, "the import finished before it could be killed");
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let stored = export(&["--exclude", "address", "--exclude", "contact"]).len() - 2;
    assert!(stored >= reported, "{reported} rows were reported done, {stored} are stored");

    let out = rostro(&import_args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = export(&[]);
    assert_eq!(rows.len(), 1 + 1 + total, "each national_id once");
}
