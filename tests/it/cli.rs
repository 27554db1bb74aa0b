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
    assert!(String::from_utf8_lossy(&out.stderr).contains("make fetch"), "{}", String::from_utf8_lossy(&out.stderr));
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
