//! `rostro serve` as a black box: started as a process, talked to over
//! loopback, stopped gently (SIGTERM) and brutally (SIGKILL).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::fixture;
use crate::http::{Binary, Client, KEY_A, RespExt, temp_dir};

#[test]
fn serve_restart_keeps_users_and_faces() {
    let dir = temp_dir("restart");
    let server = Binary::start(&dir);
    let a = Client { addr: server.addr, key: KEY_A };
    let r = a.enroll("Barack Obama", Some("o-1"), &fixture("obama.jpg"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["user"]["id"].as_str().expect("id").to_string();
    assert_eq!(a.put(&format!("/api/v1/passwordless/client/{id}"), &json!({"fullName": "B. Obama"})).status, 200);
    // A person and their contact (People API) ride along on the same store.
    let p = a.post("/api/v1/people", &json!({"national_id": "PESJ880212HDFHLX01", "name": "Juan", "first_lastname": "Perez", "second_lastname": "Suares"}));
    assert_eq!(p.status, 201, "{}", String::from_utf8_lossy(&p.body));
    let pid = p.json()["result"]["id"].as_str().expect("person id").to_string();
    let k = a.post(
        "/api/v1/person-contacts",
        &json!({"person_id": pid, "email": "juan@example.com", "phone": "525591038054"}),
    );
    assert_eq!(k.status, 201, "{}", String::from_utf8_lossy(&k.body));
    let (status, log) = server.terminate();
    assert!(status.success(), "graceful stop: {status:?}\n{log}");
    assert!(log.contains("store flushed"), "{log}");

    let server = Binary::start(&dir);
    let a = Client { addr: server.addr, key: KEY_A };
    let user = a.get(&format!("/api/v1/passwordless/client/{id}")).expect(200);
    assert_eq!(user["fullName"], "B. Obama");
    let person = a.get("/api/v1/people/national-id/PESJ880212HDFHLX01").json();
    assert_eq!(person["result"]["id"], pid.as_str(), "{person}");
    let contacts = a.get("/api/v1/person-contacts").json();
    assert_eq!(contacts["result"][0]["email"], "juan@example.com", "{contacts}");
    let v = a.verify(&fixture("obama2.jpg")).expect(200);
    assert_eq!(v["user"]["id"], id.as_str());
    a.enroll("Barack Obama", Some("o-1"), &fixture("obama3.jpg")).expect(409);
    let biden = a.enroll("Joe Biden", None, &fixture("biden.jpg")).expect(200)["user"]["id"].clone();
    a.put(&format!("/api/v1/passwordless/client/{}", biden.as_str().expect("id")), &json!({"status": "inactive"}))
        .expect(200);
    let (status, _) = server.terminate();
    assert!(status.success());

    // Re-embedding from the kept images (what a model change needs), offline.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rostro"))
        .args(["--models", crate::common::root().join("models").to_str().expect("utf-8")])
        .args(["reembed", "--data-dir", dir.to_str().expect("utf-8")])
        .output()
        .expect("run rostro reembed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!((report["users"].clone(), report["reembedded"].clone()), (json!(2), json!(2)), "{report}");

    // The inactive status and both faces survive restart and re-embedding.
    let server = Binary::start(&dir);
    let a = Client { addr: server.addr, key: KEY_A };
    assert_eq!(a.verify(&fixture("obama2.jpg")).expect(200)["user"]["id"], id.as_str());
    a.verify(&fixture("biden.jpg")).expect(404);
    let s = a.search(&fixture("biden.jpg"), 1).expect(200);
    assert_eq!(s["clientList"][0]["user"]["id"], biden, "inactive users are still searchable");
}

/// Enrolments in flight when the process is killed: every one answered 200
/// is there after a restart, and searchable.
#[test]
fn kill_9_loses_no_acknowledged_enrolment() {
    let dir = temp_dir("crash");
    let server = Binary::start(&dir);
    let addr = server.addr;
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let photos = [fixture("obama.jpg"), fixture("biden.jpg"), fixture("astronaut.png")];
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (acked, stop, photo) = (acked.clone(), stop.clone(), photos[n % 3].clone());
            std::thread::spawn(move || {
                let a = Client { addr, key: KEY_A };
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = a.enroll(&format!("client {n} #{i}"), Some(&format!("ext-{n}-{i}")), &photo);
                    if r.status == 200 {
                        let id = r.json()["user"]["id"].as_str().expect("id").to_string();
                        acked.lock().expect("lock").insert((id, n % 3));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.lock().expect("lock").len() < 12 {
        assert!(started.elapsed() < Duration::from_secs(300), "enrolments too slow");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill while requests are in flight.
    let mut server = server;
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("wait");
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let acked = acked.lock().expect("lock").clone();
    drop(server);

    let server = Binary::start(&dir);
    let a = Client { addr: server.addr, key: KEY_A };
    for (id, _) in &acked {
        a.get(&format!("/api/v1/passwordless/client/{id}")).expect(200);
    }
    let listed = a.get("/api/v1/passwordless/client?limit=100").expect(200);
    assert!(listed["totalDocs"].as_u64().expect("total") >= acked.len() as u64);
    for (p, photo) in photos.iter().enumerate() {
        let found = a.search(photo, 100).expect(200);
        let ids: BTreeSet<&str> =
            found["clientList"].as_array().expect("list").iter().filter_map(|c| c["user"]["id"].as_str()).collect();
        for (id, _) in acked.iter().filter(|(_, q)| *q == p) {
            assert!(ids.contains(id.as_str()), "acknowledged enrolment {id} not searchable after kill -9");
        }
    }
    eprintln!("crash test: {} acknowledged enrolments, all present after kill -9", acked.len());
}
