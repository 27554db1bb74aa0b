//! The Passwordless API (spec §6) over real HTTP on loopback, served in
//! this process with the real models and a fresh sled store per test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{fixture, testdata};
use crate::http::{Client, KEY_A, KEY_B, RespExt, b64, in_process, raw, request, temp_dir};

const BASE: &str = "/api/v1/passwordless/client";

fn user_path(id: &str) -> String {
    format!("{BASE}/{id}")
}

fn id_of(v: &Value) -> String {
    v["user"]["id"].as_str().expect("user.id").to_string()
}

fn assert_user_shape(u: &Value, company: &str) {
    let id = u["id"].as_str().expect("id");
    assert!(id.len() == 24 && id.bytes().all(|c| c.is_ascii_hexdigit()), "{u}");
    assert_eq!(u["companyId"], company);
    for field in ["createdAt", "updatedAt"] {
        let t = u[field].as_str().expect("timestamp");
        assert!(rostro::util::parse_datetime(t).is_some() && t.ends_with('Z'), "{field} {t}");
    }
    assert_eq!(u["meta"], json!({"extra": {}}));
    assert!(u["status"] == "active" || u["status"] == "inactive");
    assert!(u["images"]["thumbnail"].as_str().is_some_and(|t| t.starts_with("/9j/")), "thumbnail is base64 JPEG");
}

#[test]
fn enrol_verify_search_list_update_delete() {
    let addr = in_process("flow", |_| {});
    let a = Client { addr, key: KEY_A };

    let r = a.enroll("Barack Obama", Some("obama-44"), &fixture("obama.jpg"));
    let enrolled = r.expect(200);
    assert_eq!(enrolled["eventId"], enrolled["requestId"], "without Request-Id both are one new id");
    assert!(enrolled["processTime"].as_u64().is_some_and(|t| t > 0), "{}", enrolled["processTime"]);
    assert_user_shape(&enrolled["user"], "company-a");
    assert_eq!(enrolled["user"]["externalId"], "obama-44");
    assert_eq!(enrolled["user"]["status"], "active");
    let original = enrolled["user"]["images"]["original"].as_str().expect("original");
    assert_eq!(original, b64(&fixture("obama.jpg")), "the original image is kept as sent");
    let obama = id_of(&enrolled);
    let biden = id_of(&a.enroll("Joe Biden", None, &fixture("biden.jpg")).expect(200));
    let astronaut = id_of(&a.enroll("Eileen Collins", Some("nasa-1"), &fixture("astronaut.png")).expect(200));

    // PL-04: another photo of Obama finds him.
    let v = a.verify(&fixture("obama2.jpg")).expect(200);
    assert_eq!(id_of(&v), obama);
    assert_eq!(v["user"]["fullName"], "Barack Obama");
    // PL-05: ranked, similarity in [0, 1], best first, the threshold reported.
    let s = a.search(&fixture("obama3.jpg"), 2).expect(200);
    let list = s["clientList"].as_array().expect("clientList");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["user"]["id"], obama.as_str());
    let threshold = s["threshold"].as_f64().expect("threshold");
    assert!((threshold - 0.363).abs() < 1e-6, "{threshold}");
    let (d0, d1) = (list[0]["distance"].as_f64().expect("d"), list[1]["distance"].as_f64().expect("d"));
    assert!(d0 > 0.6 && d0 <= 1.0 && d1 < threshold && d1 >= 0.0 && d0 > d1, "{d0} {d1}");
    assert_eq!(a.search(&fixture("obama3.jpg"), 100).expect(200)["clientList"].as_array().map(Vec::len), Some(3));

    // PL-07.
    let g = a.get(&user_path(&biden)).expect(200);
    assert_eq!(g["fullName"], "Joe Biden");
    assert_eq!(g["externalId"], "");
    assert_user_shape(&g, "company-a");

    // PL-06: newest first, filters, pages.
    let l = a.get(BASE).expect(200);
    assert_eq!(l["totalDocs"], 3);
    assert_eq!(l["totalPages"], 1);
    assert_eq!((l["limit"].clone(), l["page"].clone()), (json!(10), json!(1)));
    assert_eq!((l["nextPage"].clone(), l["prevPage"].clone()), (json!(false), json!(false)));
    let ids: Vec<&str> =
        l["docList"].as_array().expect("docList").iter().map(|u| u["id"].as_str().expect("id")).collect();
    assert_eq!(ids, [astronaut.as_str(), biden.as_str(), obama.as_str()]);
    for u in l["docList"].as_array().expect("docList") {
        assert_eq!(u["images"]["original"], "", "lists carry thumbnails only");
        assert_user_shape(u, "company-a");
    }
    let p = a.get(&format!("{BASE}?limit=1&page=2")).expect(200);
    assert_eq!(p["docList"][0]["id"], biden.as_str());
    assert_eq!(
        (p["totalPages"].clone(), p["nextPage"].clone(), p["prevPage"].clone()),
        (json!(3), json!(true), json!(true))
    );
    let f = a.get(&format!("{BASE}?fullName=%C3%93BAMA")).expect(200);
    assert_eq!(f["totalDocs"], 1, "case- and accent-insensitive: {f}");
    let today = &g["createdAt"].as_str().expect("t")[..10];
    assert_eq!(a.get(&format!("{BASE}?min-created-at={today}&max-created-at={today}")).expect(200)["totalDocs"], 3);
    assert_eq!(a.get(&format!("{BASE}?max-created-at=2000-01-01")).expect(200)["totalDocs"], 0);
    let created = g["createdAt"].as_str().expect("t");
    let after = a.get(&format!("{BASE}?min-created-at={created}")).expect(200);
    assert_eq!(after["totalDocs"], 2, "inclusive lower bound: biden and the later astronaut");

    // PL-08: inactive users are not matched by verify but still listed by search.
    let up = a.put(&user_path(&obama), &json!({"status": "inactive", "fullName": "Barack H. Obama"})).expect(200);
    assert_eq!(up["status"], "inactive");
    assert_eq!(up["fullName"], "Barack H. Obama");
    assert!(up["updatedAt"].as_str() > enrolled["user"]["updatedAt"].as_str());
    assert_eq!(up["createdAt"], enrolled["user"]["createdAt"]);
    a.verify(&fixture("obama2.jpg")).expect(404);
    assert_eq!(a.search(&fixture("obama2.jpg"), 1).expect(200)["clientList"][0]["user"]["id"], obama.as_str());
    assert_eq!(a.get(&format!("{BASE}?status=inactive")).expect(200)["totalDocs"], 1);
    assert_eq!(a.get(&format!("{BASE}?status=active")).expect(200)["totalDocs"], 2);
    a.put(&user_path(&obama), &json!({"status": "active"})).expect(200);
    assert_eq!(id_of(&a.verify(&fixture("obama2.jpg")).expect(200)), obama);

    // PL-09: permanent; the face is gone from search, the external id is free again.
    assert_eq!(a.delete(&user_path(&obama)).expect(200), json!({}));
    a.get(&user_path(&obama)).expect(404);
    a.delete(&user_path(&obama)).expect(404);
    a.verify(&fixture("obama2.jpg")).expect(404);
    let s = a.search(&fixture("obama2.jpg"), 100).expect(200);
    assert!(s["clientList"].as_array().expect("list").iter().all(|c| c["user"]["id"] != obama.as_str()));
    a.enroll("Barack Obama", Some("obama-44"), &fixture("obama2.jpg")).expect(200);
}

#[test]
fn request_id_is_echoed() {
    let addr = in_process("reqid", |_| {});
    let body = serde_json::to_vec(&json!({"image": b64(&fixture("obama.jpg"))})).expect("json");
    let r = request(
        addr,
        "POST",
        "/api/v1/passwordless/client/face-verify",
        &[
            ("Authorization", KEY_A),
            ("Content-Type", "application/json"),
            ("Request-Id", "d99fe2d2-c0c3-4396-bd97-a502b4c30fa3"),
        ],
        Some(&body),
    );
    let j = r.expect(404);
    assert_eq!(j["requestId"], "d99fe2d2-c0c3-4396-bd97-a502b4c30fa3", "bare key accepted, Request-Id echoed");
    assert_eq!(r.header("request-id"), Some("d99fe2d2-c0c3-4396-bd97-a502b4c30fa3"));
    let a = Client { addr, key: KEY_A };
    a.enroll("Joe Biden", None, &fixture("biden.jpg")).expect(200);
    let body = serde_json::to_vec(&json!({"image": b64(&fixture("biden.jpg"))})).expect("json");
    let auth = format!("Bearer {KEY_A}");
    let r = request(
        addr,
        "POST",
        "/api/v1/passwordless/client/face-verify",
        &[("Authorization", &auth), ("Content-Type", "application/json"), ("Request-Id", "req-42")],
        Some(&body),
    );
    let j = r.expect(200);
    assert_eq!(j["requestId"], "req-42");
    assert_ne!(j["eventId"], "req-42", "a new event id per request");
}

/// Everything stored before a run of bad requests, checked after it.
fn snapshot(a: Client<'_>) -> Value {
    let mut l = a.get(&format!("{BASE}?limit=100")).expect(200);
    for u in l["docList"].as_array_mut().expect("docList") {
        u.as_object_mut().expect("object").remove("updatedAt");
    }
    l
}

#[test]
fn bad_requests_get_the_envelope_and_harm_nothing() {
    let addr = in_process("bad", |c| c.server.body_timeout_s = 1.0);
    let a = Client { addr, key: KEY_A };
    let obama = id_of(&a.enroll("Barack Obama", Some("obama-44"), &fixture("obama.jpg")).expect(200));
    let before = snapshot(a);
    let enroll = |body: Value| a.post(&format!("{BASE}/face-enroll"), &body);

    // Auth (§1.3): missing, unknown, wrong scheme.
    request(addr, "GET", BASE, &[], None).expect(401);
    Client { addr, key: "not-a-real-key" }.get(BASE).expect(401);
    request(addr, "GET", BASE, &[("Authorization", &format!("Basic {KEY_A}"))], None).expect(401);
    // Unknown routes and methods answer in the same envelope.
    a.get("/api/v1/passwordless/nothing-here").expect(404);
    a.post(&format!("{BASE}/{obama}"), &json!({})).expect(405);
    a.get(&format!("{BASE}/face-enroll")).expect(405);

    // Body shape.
    enroll(json!({"image": b64(&fixture("biden.jpg"))})).expect(400);
    enroll(json!({"user": {"email": "j@b.com"}, "image": b64(&fixture("biden.jpg"))})).expect(400);
    enroll(json!({"user": {"fullName": "   "}, "image": b64(&fixture("biden.jpg"))})).expect(400);
    enroll(json!({"user": {"fullName": "Joe"}})).expect(400);
    enroll(json!({"user": {"fullName": "Joe", "email": "not-an-email"}, "image": b64(&fixture("biden.jpg"))}))
        .expect(400);
    enroll(json!({"user": {"fullName": "Joe"}, "image": 42})).expect(400);
    let r = enroll(json!({"user": {"fullName": "Joe"}, "image": "%%%% not base64 ####"})).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("Base64")), "{r}");
    let garbage = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        b"GkXfo59ChoEBQveBAULygQRC84EIQoKEd2VibUKHgQRChYEC",
    );
    let r = enroll(json!({"user": {"fullName": "Joe"}, "image": garbage})).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("not an image")), "{r}");
    // A JPEG cut in half.
    let jpeg = std::fs::read(fixture("biden.jpg")).expect("read");
    let half = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &jpeg[..jpeg.len() / 2]);
    enroll(json!({"user": {"fullName": "Joe"}, "image": half})).expect(400);
    // No face; two faces; a crowd.
    let r = enroll(json!({"user": {"fullName": "Cat"}, "image": b64(&fixture("chelsea.png"))})).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("no face")), "{r}");
    let r =
        enroll(json!({"user": {"fullName": "Two"}, "image": b64(&testdata("faces/deepface/couple.jpg"))})).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("faces found")), "{r}");
    enroll(json!({"user": {"fullName": "Many"}, "image": b64(&testdata("faces/deepface/selfie-many-people.jpg"))}))
        .expect(400);
    a.verify(&fixture("coffee.png")).expect(400);
    // Duplicate externalId in the same company.
    a.enroll("Someone Else", Some("obama-44"), &fixture("biden.jpg")).expect(409);

    // Content type, JSON syntax, size, a client that stops sending.
    let auth = format!("Bearer {KEY_A}");
    let path = format!("{BASE}/face-verify");
    request(addr, "POST", &path, &[("Authorization", &auth), ("Content-Type", "text/plain")], Some(b"{}")).expect(415);
    request(addr, "POST", &path, &[("Authorization", &auth)], Some(b"{}")).expect(415);
    let json_headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    request(addr, "POST", &path, &json_headers, Some(b"{\"image\": ")).expect(400);
    request(addr, "POST", &path, &json_headers, Some(b"")).expect(400);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        200 * 1024 * 1024
    );
    let mut big = head.into_bytes();
    big.extend(std::iter::repeat_n(b'A', 1024 * 1024));
    raw(addr, &big).expect(413);
    let slow = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{{\"image\": \""
    );
    raw(addr, slow.as_bytes()).expect(408);

    // Parameters.
    a.search(&fixture("obama2.jpg"), 0).expect(400);
    a.search(&fixture("obama2.jpg"), 101).expect(400);
    a.post(&format!("{BASE}/facial"), &json!({"image": b64(&fixture("obama2.jpg")), "rankingTop": "ten"})).expect(400);
    for q in [
        "limit=0",
        "limit=101",
        "page=0",
        "page=x",
        "status=deleted",
        "min-created-at=yesterday",
        "max-created-at=2024-13-01",
    ] {
        a.get(&format!("{BASE}?{q}")).expect(400);
    }
    a.put(&user_path(&obama), &json!({})).expect(400);
    a.put(&user_path(&obama), &json!({"status": "deleted"})).expect(400);
    a.put(&user_path(&obama), &json!({"fullName": ""})).expect(400);
    a.put(&user_path("ffffffffffffffffffffffff"), &json!({"status": "inactive"})).expect(404);
    a.get(&user_path("not-an-id")).expect(404);

    assert_eq!(snapshot(a), before, "nothing stored changed");
    assert_eq!(id_of(&a.verify(&fixture("obama2.jpg")).expect(200)), obama);
}

#[test]
fn a_key_never_reaches_another_company() {
    let addr = in_process("tenants", |_| {});
    let (a, b) = (Client { addr, key: KEY_A }, Client { addr, key: KEY_B });
    let obama = id_of(&a.enroll("Barack Obama", Some("shared-ext"), &fixture("obama.jpg")).expect(200));
    b.get(&user_path(&obama)).expect(404);
    b.put(&user_path(&obama), &json!({"status": "inactive"})).expect(404);
    b.delete(&user_path(&obama)).expect(404);
    b.verify(&fixture("obama2.jpg")).expect(404);
    assert_eq!(b.search(&fixture("obama2.jpg"), 10).expect(200)["clientList"], json!([]));
    assert_eq!(b.get(BASE).expect(200)["totalDocs"], 0);
    // The same external id is free in another company.
    let theirs = id_of(&b.enroll("Barack Obama", Some("shared-ext"), &fixture("obama3.jpg")).expect(200));
    assert_eq!(b.get(&user_path(&theirs)).expect(200)["companyId"], "company-b");
    let mine = a.get(&user_path(&obama)).expect(200);
    assert_eq!(mine["status"], "active");
    assert_eq!(id_of(&a.verify(&fixture("obama2.jpg")).expect(200)), obama);
    assert_eq!(id_of(&b.verify(&fixture("obama2.jpg")).expect(200)), theirs);
    let s = a.search(&fixture("obama2.jpg"), 100).expect(200);
    assert_eq!(s["clientList"].as_array().map(Vec::len), Some(1));
}

#[test]
fn expired_keys_are_refused() {
    let addr = in_process("expired", |c| {
        c.auth.keys.push(rostro::auth::ApiKey {
            key: "expired-key-0003".into(),
            company_id: "company-a".into(),
            expires_at: Some("2024-01-01T00:00:00Z".into()),
            apis: Vec::new(),
        });
    });
    let r = Client { addr, key: "expired-key-0003" }.get(BASE).expect(401);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("expired")), "{r}");
    Client { addr, key: KEY_A }.get(BASE).expect(200);
}

/// Encodes JPEG stills into a video with gst-launch-1.0, `per_photo` frames each at 10 fps.
pub fn clip(dir: &Path, name: &str, photos: &[PathBuf], per_photo: usize, encoder: &str) -> PathBuf {
    let frames = dir.join(format!("{name}-frames"));
    std::fs::create_dir_all(&frames).expect("frames dir");
    let mut n = 0;
    for photo in photos {
        let img = crate::common::load(photo);
        let img = image::imageops::resize(
            &img,
            480,
            480 * img.height() / img.width() / 2 * 2,
            image::imageops::FilterType::Triangle,
        );
        for _ in 0..per_photo {
            img.save(frames.join(format!("{n:03}.jpg"))).expect("write frame");
            n += 1;
        }
    }
    let out = dir.join(name);
    let status = Command::new("gst-launch-1.0")
        .arg("-q")
        .args([
            "multifilesrc",
            &format!("location={}/%03d.jpg", frames.display()),
            "index=0",
            "caps=image/jpeg,framerate=10/1",
        ])
        .args(["!", "jpegdec", "!", "videoconvert"])
        .args(encoder.split_whitespace())
        .args(["!", "filesink", &format!("location={}", out.display())])
        .status()
        .expect("gst-launch-1.0 (gstreamer1.0-tools, installed by `make setup`)");
    assert!(status.success(), "gst-launch-1.0 failed for {name}");
    out
}

pub const WEBM: &str = "! vp8enc deadline=1 ! webmmux";
pub const MP4: &str = "! x264enc ! video/x-h264,profile=high ! mp4mux";

fn video_body(path: &Path) -> Value {
    json!({"user": {"fullName": "Video Person"}, "video": b64(path)})
}

#[test]
fn enrol_and_verify_by_video() {
    let dir = temp_dir("video-clips");
    let addr: SocketAddr = in_process("video", |_| {});
    let a = Client { addr, key: KEY_A };
    let obama = clip(&dir, "obama.webm", &[fixture("obama.jpg"), fixture("obama2.jpg")], 15, WEBM);
    let r = a.post(&format!("{BASE}/enroll"), &video_body(&obama)).expect(200);
    assert_user_shape(&r["user"], "company-a");
    let original = r["user"]["images"]["original"].as_str().expect("original");
    assert!(original.starts_with("/9j/"), "the chosen frame is kept as JPEG");
    let id = id_of(&r);
    // H.264 High profile in MP4, other photos of the same man.
    let verify_clip = clip(&dir, "obama3.mp4", &[fixture("obama3.jpg")], 20, MP4);
    let v = a.post(&format!("{BASE}/verify"), &json!({"video": b64(&verify_clip)})).expect(200);
    assert_eq!(id_of(&v), id);
    // Photo routes find the video-enrolled user too.
    assert_eq!(id_of(&a.verify(&fixture("obama2.jpg")).expect(200)), id);

    // Two people in one video.
    let two = clip(&dir, "two.webm", &[fixture("obama.jpg"), fixture("biden.jpg")], 10, WEBM);
    let r = a.post(&format!("{BASE}/enroll"), &video_body(&two)).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("more than one person")), "{r}");
    a.post(&format!("{BASE}/verify"), &json!({"video": b64(&two)})).expect(400);
    // No face at all.
    let cat = clip(&dir, "cat.webm", &[fixture("chelsea.png")], 10, WEBM);
    let r = a.post(&format!("{BASE}/enroll"), &video_body(&cat)).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("no face")), "{r}");
    // Truncated containers, a still image, garbage.
    for (name, keep) in [("obama.webm", 2), ("obama3.mp4", 3)] {
        let bytes = std::fs::read(dir.join(name)).expect("read");
        let cut = dir.join(format!("cut-{name}"));
        std::fs::write(&cut, &bytes[..bytes.len() * keep / 5]).expect("write");
        let r = a.post(&format!("{BASE}/enroll"), &video_body(&cut)).expect(400);
        assert!(r["message"].as_str().is_some_and(|m| m.contains("truncated") || m.contains("corrupt")), "{name}: {r}");
    }
    let r = a.post(&format!("{BASE}/enroll"), &video_body(&fixture("obama.jpg"))).expect(400);
    assert!(r["message"].as_str().is_some_and(|m| m.contains("too short")), "{r}");
    a.post(&format!("{BASE}/verify"), &json!({"video": "R2tYZm81OUNob0VCUXZlQg=="})).expect(400);
    assert_eq!(a.get(BASE).expect(200)["totalDocs"], 1, "only the good video enrolled");
}

#[test]
fn the_load_tool_measures_a_running_service() {
    let addr = in_process("load", |_| {});
    let plan = rostro::loadgen::LoadPlan {
        addr,
        base_path: String::new(),
        key: KEY_A.into(),
        route: "face-verify".into(),
        media: std::fs::read(fixture("obama.jpg")).expect("read"),
        requests_per_client: 2,
    };
    plan.prepare().expect("enrol first");
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let r = plan.run(2, &|_, _| {
        answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!((r.requests, r.ok), (4, 4), "{r:?}");
    assert_eq!(answered.into_inner(), 4);
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p99 >= r.latency_ms.p50 && r.requests_per_s > 0.0);

    // The People routes: every create is a new person (201), listed afterwards.
    let people = rostro::loadgen::LoadPlan { route: "people-create".into(), media: Vec::new(), ..plan.clone() };
    let r = people.run(3, &|_, _| {});
    assert_eq!((r.requests, r.ok), (6, 6), "{r:?}");
    let list = rostro::loadgen::LoadPlan { route: "people-list".into(), ..people };
    let r = list.run(1, &|_, _| {});
    assert_eq!((r.requests, r.ok), (2, 2), "{r:?}");
    let page = Client { addr, key: KEY_A }.get("/api/v1/people?per_page=50");
    let page: Value = serde_json::from_slice(&page.body).expect("JSON");
    assert_eq!(page["result"]["data"].as_array().map(Vec::len), Some(6), "{page}");
}

#[test]
fn overload_is_shed_with_503_not_queued() {
    let addr = in_process("overload", |c| c.server.queue = 1);
    let a = Client { addr, key: KEY_A };
    a.enroll("Barack Obama", None, &fixture("obama.jpg")).expect(200);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12).map(|_| s.spawn(|| a.verify(&fixture("obama2.jpg")))).collect();
        handles
            .into_iter()
            .map(|h| {
                let r = h.join().expect("client");
                if r.status == 503 {
                    r.expect(503);
                    assert_eq!(r.header("retry-after"), Some("1"));
                }
                r.status
            })
            .collect()
    });
    assert!(statuses.iter().all(|&s| s == 200 || s == 503), "{statuses:?}");
    assert!(statuses.contains(&503), "12 at once with 1 worker and a queue of 1: some must be shed: {statuses:?}");
    assert!(statuses.contains(&200), "{statuses:?}");
    a.verify(&fixture("obama2.jpg")).expect(200);
}

/// `/openapi.json` documents exactly `routes::OPERATIONS` (each registration
/// site checks its path against that list at start), and every documented
/// operation is served: over loopback without a key, a documented method
/// gets anything but 404/405 (401, 403, 200…), an undocumented method on the
/// same path gets 404 or 405. `/docs` serves Swagger UI from the pinned files.
/// The schema `s`, following a `$ref` into the components.
fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
        Some(name) => &doc["components"]["schemas"][name],
        None => s,
    }
}

/// Every JSON People create-like route refuses `{}` naming exactly the fields
/// its documented body marks required, and what it answers has exactly the
/// documented properties.
fn documented_shapes_are_what_the_server_does(addr: SocketAddr, doc: &Value) {
    let key = [("X-API-Key", KEY_A), ("Content-Type", "application/json")];
    let mut checked = 0;
    for o in rostro::routes::OPERATIONS.iter().filter(|o| o.method == "POST" && !o.path.contains('{')) {
        let content = &doc["paths"][o.path]["post"]["requestBody"]["content"];
        let Some(schema) = content.get("application/json").map(|c| resolve(doc, &c["schema"])) else { continue };
        if o.api != rostro::routes::Api::People {
            continue;
        }
        let documented: std::collections::BTreeSet<&str> =
            schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let r = request(addr, "POST", o.path, &key, Some(b"{}"));
        if documented.is_empty() {
            assert_ne!(
                r.status,
                422,
                "{}: nothing documented as required, yet {}",
                o.id,
                String::from_utf8_lossy(&r.body)
            );
            continue;
        }
        assert_eq!(r.status, 422, "{} {}: {}", o.id, o.path, String::from_utf8_lossy(&r.body));
        let errors = r.json()["errors"].clone();
        let refused: std::collections::BTreeSet<&str> = errors
            .as_object()
            .expect("errors")
            .iter()
            .filter(|(_, m)| m.to_string().contains("is required"))
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(refused, documented, "{} {}", o.id, o.path);
        checked += 1;
    }
    assert!(checked >= 12, "{checked} routes checked");

    let properties = |name: &str| -> std::collections::BTreeSet<String> {
        doc["components"]["schemas"][name]["properties"].as_object().expect(name).keys().cloned().collect()
    };
    let keys =
        |v: &Value| -> std::collections::BTreeSet<String> { v.as_object().expect("object").keys().cloned().collect() };
    let group = request(addr, "POST", "/api/v1/people-groups", &key, Some(br#"{"name": "doc", "description": "d"}"#));
    assert_eq!(group.status, 201, "{}", String::from_utf8_lossy(&group.body));
    assert_eq!(keys(&group.json()["result"]), properties("PeopleGroup"));
    let body = json!({"national_id": "GODE561231HDFRRN09", "name": "A", "first_lastname": "B", "second_lastname": "C"});
    let person = request(addr, "POST", "/api/v1/people", &key, Some(body.to_string().as_bytes()));
    assert_eq!(person.status, 201, "{}", String::from_utf8_lossy(&person.body));
    assert_eq!(keys(&person.json()["result"]), properties("Person"));
    let page = request(addr, "GET", "/api/v1/people", &key, None).json();
    let listed = &doc["paths"]["/api/v1/people"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    let documented: std::collections::BTreeSet<String> =
        listed["properties"]["result"]["properties"].as_object().expect("page").keys().cloned().collect();
    assert_eq!(keys(&page["result"]), documented);
}

#[test]
fn openapi_lists_every_route_served() {
    let addr = in_process("openapi", |_| {});
    let doc: Value = serde_json::from_slice(&request(addr, "GET", "/openapi.json", &[], None).body).expect("JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"), "{}", doc["openapi"]);
    let mut documented = std::collections::BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let listed: std::collections::BTreeSet<(String, String)> =
        rostro::routes::OPERATIONS.iter().map(|o| (o.method.to_string(), o.path.to_string())).collect();
    assert_eq!(documented, listed);
    for id in ["PL-01", "PL-09", "P-01", "P-68", "P-77", "X-01", "P-17-patch"] {
        assert!(doc.to_string().contains(&format!("\"operationId\":\"{id}\"")), "{id} missing");
    }

    let paths: std::collections::BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete: String = path
            .split('/')
            .map(|s| match s {
                "{file}" => "swagger-ui.css",
                s if s.starts_with('{') => "6f1f7c2e-1111-4222-8333-444455556666",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let status = request(addr, method, &concrete, &[], None).status;
            if documented.contains(&(method.to_string(), path.clone())) {
                assert!(status != 404 && status != 405, "{method} {path} is documented but answers {status}");
            } else {
                assert!(status == 404 || status == 405, "{method} {path} is served ({status}) but not documented");
            }
        }
    }

    documented_shapes_are_what_the_server_does(addr, &doc);

    let page = request(addr, "GET", "/docs", &[], None);
    assert!(page.status == 200 && String::from_utf8_lossy(&page.body).contains("swagger-ui-bundle.js"));
    let js = request(addr, "GET", "/docs/swagger-ui-bundle.js", &[], None);
    assert!(js.status == 200 && js.body.len() > 100_000, "{} {}", js.status, js.body.len());
    assert_eq!(request(addr, "GET", "/docs/../Cargo.toml", &[], None).status, 404);
}
