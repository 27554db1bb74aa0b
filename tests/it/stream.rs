//! The WebSocket stream protocol (docs/ws-protocol.md) over real sockets on
//! loopback, with the real models: every mode, bad messages, a wrong key,
//! a 50 MB frame, a client that sends faster than we process or never reads,
//! and streamed results equal to the same frames analysed in one batch.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rostro::biometrics::simulate::{self, Presentation};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::common::{analyzer, fixture, load};
use crate::http::{Client, KEY_A, KEY_B, RespExt, in_process};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/v1/stream")
}

/// A simulated clip of `photo` as JPEG frames.
pub fn clip(photo: &str, kind: Presentation, frames: usize) -> Vec<Vec<u8>> {
    let img = load(&fixture(photo));
    let faces = analyzer().detect(&img).expect("detect");
    simulate::clip(&img, &faces[0], kind, frames, 3).iter().map(|f| rostro::service::jpeg(f, 90)).collect()
}

/// Streams `frames`, waiting for each frame's answer before the next (no drops),
/// and returns every message until the server closes, with the close code.
async fn play(addr: SocketAddr, key: &str, start: Value, frames: &[Vec<u8>]) -> (Vec<Value>, Option<u16>) {
    let (mut ws, ready) = rostro::kiosk::connect(&url(addr), key, &start).await.expect("session opens");
    let mut out = vec![ready];
    let mut frames = frames.iter();
    if let Some(f) = frames.next() {
        ws.send(Message::binary(f.clone())).await.expect("send");
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("an answer within 60 s") {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                let answered = v["type"] == "frame" || v["type"] == "error";
                out.push(v);
                if answered {
                    match frames.next() {
                        Some(f) => ws.send(Message::binary(f.clone())).await.expect("send"),
                        None => {
                            let _ = ws.send(Message::text(json!({"type": "stop"}).to_string())).await;
                        }
                    }
                }
            }
            Some(Ok(Message::Close(c))) => return (out, c.map(|c| u16::from(c.code))),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (out, None),
        }
    }
}

fn decision(msgs: &[Value]) -> Option<&Value> {
    msgs.iter().find(|m| m["type"] == "decision")
}

fn enrolled(addr: SocketAddr, name: &str, photo: &str) -> String {
    let a = Client { addr, key: KEY_A };
    a.enroll(name, None, &fixture(photo)).expect(200)["user"]["id"].as_str().expect("id").to_string()
}

#[test]
fn identify_verify_enroll_and_liveness_sessions() {
    let addr = in_process("ws-modes", |_| {});
    let obama = enrolled(addr, "Barack Obama", "obama.jpg");
    let live_obama = clip("obama2.jpg", Presentation::BonaFide, 14);
    let rt = rt();

    // identify: a live Obama is identified, every frame answered with faces, liveness and latency.
    let (msgs, code) = rt.block_on(play(addr, KEY_A, json!({"type": "start", "mode": "identify"}), &live_obama));
    let d = decision(&msgs).unwrap_or_else(|| panic!("no decision: {msgs:?}"));
    assert_eq!(d["decision"], "identified", "{d}");
    assert_eq!(d["userId"], obama.as_str());
    assert_eq!(d["fullName"], "Barack Obama");
    assert!(d["liveness"]["live"].as_bool().unwrap_or(false), "{d}");
    assert_eq!(code, Some(1000), "a non-continuous session closes normally after its decision");
    let frame = msgs.iter().find(|m| m["type"] == "frame").expect("frame results");
    assert_eq!(frame["faces"].as_array().map(Vec::len), Some(1), "{frame}");
    assert_eq!(frame["faces"][0]["landmarks"].as_array().map(Vec::len), Some(5));
    assert!(frame["faces"][0]["quality"]["score"].as_f64().is_some());
    assert!(frame["liveness"]["model"].as_f64().is_some());
    for stage in ["queue", "decode", "detect", "liveness", "embed", "search", "total"] {
        assert!(frame["latencyMs"][stage].as_f64().is_some_and(|v| v >= 0.0), "{stage}: {frame}");
    }
    assert_eq!(frame["match"]["userId"], obama.as_str());

    // Another tenant does not find Obama.
    let (msgs, _) = rt.block_on(play(addr, KEY_B, json!({"type": "start", "mode": "identify"}), &live_obama));
    assert_eq!(decision(&msgs).expect("decision")["decision"], "unknown");

    // verify: Obama is Obama; Biden is not.
    let start = json!({"type": "start", "mode": "verify", "userId": obama});
    let (msgs, _) = rt.block_on(play(addr, KEY_A, start.clone(), &live_obama));
    assert_eq!(decision(&msgs).expect("decision")["decision"], "verified");
    let live_biden = clip("biden.jpg", Presentation::BonaFide, 14);
    let (msgs, _) = rt.block_on(play(addr, KEY_A, start, &live_biden));
    assert_eq!(decision(&msgs).expect("decision")["decision"], "not_verified");

    // enroll: Biden enrols by streaming, then REST finds him.
    let start = json!({"type": "start", "mode": "enroll", "user": {"fullName": "Joe Biden", "externalId": "b-46"}});
    let (msgs, _) = rt.block_on(play(addr, KEY_A, start, &live_biden));
    let d = decision(&msgs).expect("decision");
    assert_eq!(d["decision"], "enrolled", "{d}");
    let biden = d["userId"].as_str().expect("new user id");
    let a = Client { addr, key: KEY_A };
    assert_eq!(a.get(&format!("/api/v1/passwordless/client/{biden}")).expect(200)["externalId"], "b-46");
    assert_eq!(a.verify(&fixture("biden.jpg")).expect(200)["user"]["id"], biden);

    // liveness: the bona fide clip is live; the same photo repeated is a spoof.
    let start = json!({"type": "start", "mode": "liveness"});
    let (msgs, _) = rt.block_on(play(addr, KEY_A, start.clone(), &live_obama));
    assert_eq!(decision(&msgs).expect("decision")["decision"], "live");
    let still = vec![std::fs::read(fixture("obama2.jpg")).expect("photo"); 30];
    let (msgs, _) = rt.block_on(play(addr, KEY_A, start, &still));
    let d = decision(&msgs).unwrap_or_else(|| panic!("no decision: {msgs:?}"));
    assert_eq!(d["decision"], "spoof", "{d}");
    assert!(!d["liveness"]["alive"].as_bool().unwrap_or(true), "a repeated photo shows no sign of life: {d}");

    // /metrics counts it all.
    let m = String::from_utf8_lossy(&crate::http::request(addr, "GET", "/metrics", &[], None).body).to_string();
    assert!(m.contains("rostro_decisions_total{mode=\"identify\",decision=\"identified\"} 1"), "{m}");
    assert!(m.contains("rostro_decisions_total{mode=\"liveness\",decision=\"spoof\"} 1"));
    assert!(m.contains("rostro_frames_processed_total{source=\"ws\"}"));
    assert!(m.contains("rostro_gallery_faces 2"));
    assert!(m.contains("rostro_sessions 0"), "every session closed: {m}");
    let counter = |name: &str| -> f64 {
        m.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name} in {m}"))
    };
    assert!(counter("rostro_store_writes_total ") >= 2.0, "the two enrolments were written: {m}");
    assert!(counter("rostro_store_flushes_total ") >= 1.0);
    assert!(counter("rostro_store_flush_seconds_total ") > 0.0);
}

#[test]
fn bad_messages_keys_and_sizes() {
    let addr = in_process("ws-bad", |_| {});
    let rt = rt();
    rt.block_on(async {
        // A wrong or missing key never upgrades: 401 with the envelope.
        for key in ["not-a-key-000", ""] {
            let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url(addr))
                .expect("request");
            if !key.is_empty() {
                req.headers_mut().insert("authorization", format!("Bearer {key}").parse().expect("header"));
            }
            match tokio_tungstenite::connect_async(req).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
                other => panic!("expected 401, got {:?}", other.map(|_| ())),
            }
        }
        // The key in the query string works (browsers cannot set headers).
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{addr}/v1/stream?key={KEY_A}")).await.expect("query key");
        ws.send(Message::text(json!({"type": "start", "mode": "liveness"}).to_string())).await.expect("send");
        let ready = ws.next().await.expect("msg").expect("ok");
        assert!(ready.to_text().expect("text").contains("\"ready\""));

        // Bad start messages: an error, then a policy close.
        for (start, expect) in [
            (Message::binary(vec![0xFF, 0xD8]), "start message"),
            (Message::text("{not json"), "invalid start message"),
            (Message::text(json!({"type": "start", "mode": "dance"}).to_string()), "invalid start message"),
            (Message::text(json!({"type": "start", "mode": "verify"}).to_string()), "verify needs userId"),
            (
                Message::text(
                    json!({"type": "start", "mode": "verify", "userId": "000000000000000000000000"}).to_string(),
                ),
                "not found",
            ),
            (Message::text(json!({"type": "start", "mode": "enroll"}).to_string()), "enroll needs user"),
            (Message::text(json!({"type": "start", "mode": "identify", "format": "flv"}).to_string()), "not supported"),
        ] {
            let (mut ws, _) =
                tokio_tungstenite::connect_async(format!("ws://{addr}/v1/stream?key={KEY_A}")).await.expect("connect");
            ws.send(start).await.expect("send");
            let err: Value = serde_json::from_str(ws.next().await.expect("msg").expect("ok").to_text().expect("text"))
                .expect("json");
            assert_eq!(err["type"], "error");
            assert!(err["message"].as_str().unwrap_or("").contains(expect), "{err} should say {expect}");
            match ws.next().await {
                Some(Ok(Message::Close(Some(c)))) => assert_ne!(u16::from(c.code), 1000),
                other => panic!("expected a close, got {other:?}"),
            }
        }

        // A frame that is not an image: an error for that frame, and the session goes on.
        let (msgs, _) = play(
            addr,
            KEY_A,
            json!({"type": "start", "mode": "liveness"}),
            &[b"garbage, not a JPEG".to_vec(), std::fs::read(fixture("obama.jpg")).expect("photo")],
        )
        .await;
        assert_eq!(msgs[1]["type"], "error", "{msgs:?}");
        assert_eq!(msgs[1]["code"], 400);
        assert_eq!(msgs[1]["seq"], 1);
        assert_eq!(msgs[2]["type"], "frame", "the next frame is processed: {msgs:?}");
        assert_eq!(msgs[2]["seq"], 2);

        // A 50 MB frame: refused with 413 and close code 1009, without reading it all.
        let (mut ws, _) = rostro::kiosk::connect(&url(addr), KEY_A, &json!({"type": "start", "mode": "identify"}))
            .await
            .expect("open");
        let _ = ws.send(Message::binary(vec![0u8; 50 * 1024 * 1024])).await;
        let mut saw_413 = false;
        let mut close = None;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            match m {
                Message::Text(t) => saw_413 |= t.contains("\"code\":413"),
                Message::Close(c) => {
                    close = c.map(|c| u16::from(c.code));
                    break;
                }
                _ => {}
            }
        }
        assert!(saw_413, "a 413 error message");
        assert_eq!(close, Some(1009));
    });
    // The server still serves.
    assert_eq!(crate::http::request(addr, "GET", "/health", &[], None).status, 200);
}

#[test]
fn a_fast_or_deaf_client_gets_newest_frames_and_harms_no_one() {
    let addr = in_process("ws-drop", |_| {});
    enrolled(addr, "Barack Obama", "obama.jpg");
    let frames = clip("obama2.jpg", Presentation::BonaFide, 12);
    let rt = rt();
    rt.block_on(async {
        // A deaf client: sends 150 frames as fast as it can and never reads.
        let (mut deaf, _) = rostro::kiosk::connect(
            &url(addr),
            KEY_A,
            &json!({"type": "start", "mode": "identify", "continuous": true}),
        )
        .await
        .expect("open");
        for i in 0..150 {
            deaf.send(Message::binary(frames[i % frames.len()].clone())).await.expect("send");
        }
        // A fast client: 40 frames at once; most are dropped, the newest is answered.
        let (mut ws, _) = rostro::kiosk::connect(
            &url(addr),
            KEY_A,
            &json!({"type": "start", "mode": "liveness", "continuous": true}),
        )
        .await
        .expect("open");
        for i in 0..40 {
            ws.send(Message::binary(frames[i % frames.len()].clone())).await.expect("send");
        }
        let mut seqs = Vec::new();
        let mut dropped = 0;
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(8), ws.next()).await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).expect("json");
                if v["type"] == "frame" {
                    seqs.push(v["seq"].as_u64().expect("seq"));
                    dropped = v["dropped"].as_u64().expect("dropped");
                    if seqs.last() == Some(&40) {
                        break;
                    }
                }
            }
        }
        assert_eq!(seqs.last(), Some(&40), "the newest frame is always answered: {seqs:?}");
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "answers in order: {seqs:?}");
        assert!(seqs.len() < 40 && dropped > 0, "stale frames dropped: {} answered, {dropped} dropped", seqs.len());
        assert_eq!(seqs.len() as u64 + dropped, 40, "every frame is answered or counted as dropped");
        drop(deaf);
    });
    let m = String::from_utf8_lossy(&crate::http::request(addr, "GET", "/metrics", &[], None).body).to_string();
    let received: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("rostro_frames_received_total{source=\"ws\"} "))
        .and_then(|v| v.parse().ok())
        .expect("received counter");
    assert!(received >= 40, "{m}");
}

#[test]
fn streamed_frames_give_the_batch_results() {
    let addr = in_process("ws-batch", |_| {});
    let obama = enrolled(addr, "Barack Obama", "obama.jpg");
    let frames = clip("obama3.jpg", Presentation::BonaFide, 6);
    let (msgs, _) =
        rt().block_on(play(addr, KEY_A, json!({"type": "start", "mode": "identify", "continuous": true}), &frames));
    let streamed: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "frame").collect();
    assert_eq!(streamed.len(), frames.len());
    assert!(streamed.iter().all(|s| s["batch"] == 1), "a lone session's frames run alone");
    let embedded = streamed.iter().filter(|s| s["embedded"] == true).count();
    assert!(embedded >= 1 && embedded < frames.len(), "the followed face is not embedded on every frame: {embedded}");
    let gallery = analyzer()
        .embed(&load(&fixture("obama.jpg")), &analyzer().detect(&load(&fixture("obama.jpg"))).expect("detect")[..1])
        .expect("embed")[0]
        .clone()
        .expect("embedding");
    let mut a = analyzer();
    let config = rostro::config::Config::default();
    // The session's own planning, so that the batch side detects and embeds as it did.
    let mut planner = rostro::stream::frame::Planner::new(true, true, &config.stream);
    let mut kept: Option<rostro::vision::Embedding> = None;
    for (bytes, s) in frames.iter().zip(streamed) {
        let plan = planner.plan(false);
        let input = rostro::stream::frame::FrameInput::Encoded(bytes.clone());
        let job = rostro::stream::frame::FrameJob { input, plan, limits: config.decode };
        let batch = rostro::stream::frame::analyse(&mut a, job).expect("analyse");
        assert_eq!(s["embedded"], batch.embedding.is_some(), "the stream embeds when the batch side does");
        if let Some(e) = &batch.embedding {
            kept = Some(e.clone());
        }
        planner.observe(&batch, |_| None);
        let faces = serde_json::to_value(&batch.faces).expect("json");
        assert_eq!(faces.as_array().map(Vec::len), s["faces"].as_array().map(Vec::len));
        for (f, g) in faces.as_array().expect("faces").iter().zip(s["faces"].as_array().expect("faces")) {
            for k in ["x", "y", "w", "h"] {
                let (x, y) = (f["box"][k].as_f64().expect("n"), g["box"][k].as_f64().expect("n"));
                assert!((x - y).abs() < 1e-3, "box {k}: batch {x} streamed {y}");
            }
        }
        let score = kept.as_ref().expect("an embedding so far").cosine(&gallery) as f64;
        assert_eq!(s["match"]["userId"], obama.as_str());
        assert!((s["match"]["score"].as_f64().expect("score") - score).abs() < 1e-4, "score {score} vs {}", s["match"]);
        let model = batch.features.expect("features").model as f64;
        assert!((s["liveness"]["model"].as_f64().expect("model") - model).abs() < 1e-4);
    }
}

#[test]
fn temporal_liveness_beats_the_single_frame_model_on_simulated_attacks() {
    use rostro::biometrics::{pad, temporal::TemporalConfig};
    let photos: Vec<_> =
        (1..=10).map(|i| load(&crate::common::testdata(&format!("faces/deepface/img{i}.jpg")))).collect();
    let report = pad::evaluate(&mut analyzer(), &photos, 12, TemporalConfig::default(), &mut |_| {}).expect("evaluate");
    let (single, temporal) = (report.single_frame, report.temporal);
    eprintln!("single-frame {single:?}\ntemporal {temporal:?}");
    assert!(report.clips.len() >= 4 * 8, "most photos have one face");
    // The model alone takes a photo held still for a person; time does not.
    assert!(single.apcer_by_kind[1] >= 0.5, "{single:?}");
    assert!(temporal.apcer_by_kind[1] <= 0.125, "{temporal:?}");
    assert!(temporal.apcer < single.apcer);
    // Screens and prints are refused, and living faces still pass.
    assert_eq!(temporal.apcer_by_kind[2], 0.0);
    assert_eq!(temporal.apcer_by_kind[3], 0.0);
    assert!(temporal.bpcer <= 0.125, "{temporal:?}");
    for c in report.clips.iter().filter(|c| c.accepted) {
        let s = c.signals.expect("signals");
        assert!(s.alive && !s.attack_cue, "an accepted clip shows life and no attack mark: {c:?}");
    }
}

/// Streams `bytes` in 30 chunks over ~3 s, as a kiosk's encoder would; returns every message.
async fn stream_encoded(addr: SocketAddr, format: &str, bytes: &[u8]) -> Vec<Value> {
    let start = json!({"type": "start", "mode": "identify", "format": format});
    let (ws, _) = rostro::kiosk::connect(&url(addr), KEY_A, &start).await.expect("open");
    let (mut tx, mut rx) = ws.split();
    let chunks: Vec<Vec<u8>> = bytes.chunks(bytes.len().div_ceil(30)).map(<[u8]>::to_vec).collect();
    let sender = async move {
        for c in chunks {
            if tx.send(Message::binary(c)).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tx
    };
    let reader = async {
        let mut out = Vec::new();
        while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(20), rx.next()).await {
            if let Message::Text(t) = m {
                out.push(serde_json::from_str::<Value>(&t).expect("json"));
            }
        }
        out
    };
    let (_, out) = tokio::join!(sender, reader);
    out
}

#[test]
fn encoded_webm_and_h264_streams_are_decoded_and_identified() {
    let addr = in_process("ws-encoded", |_| {});
    let obama = enrolled(addr, "Barack Obama", "obama.jpg");
    let dir = crate::http::temp_dir("ws-encoded-clips");
    let frames = clip("obama2.jpg", Presentation::BonaFide, 30);
    let webm = std::fs::read(crate::camera::webm(&dir, &frames, 10)).expect("webm");
    let h264 = crate::camera::encode(
        &dir,
        &frames,
        10,
        "x264enc tune=zerolatency bitrate=3000 ! video/x-h264,stream-format=byte-stream,profile=high",
        "clip.h264",
    );
    let h264 = std::fs::read(h264).expect("h264");
    let rt = rt();
    for (format, bytes) in [("webm", &webm), ("h264", &h264)] {
        let msgs = rt.block_on(stream_encoded(addr, format, bytes));
        let d = decision(&msgs).unwrap_or_else(|| panic!("{format}: no decision: {msgs:?}"));
        assert_eq!(d["decision"], "identified", "{format}: {d}");
        assert_eq!(d["userId"], obama.as_str());
        let frame = msgs.iter().find(|m| m["type"] == "frame").expect("frames");
        assert_eq!(frame["width"], 640, "{format}: decoded at the clip's size");
    }
    // Garbage announced as WebM: a clear error, and the session closes.
    let msgs = rt.block_on(stream_encoded(addr, "webm", &vec![0x5Au8; 64 * 1024]));
    let err = msgs.iter().find(|m| m["type"] == "error").unwrap_or_else(|| panic!("an error: {msgs:?}"));
    assert_eq!(err["code"], 400);
    assert!(err["message"].as_str().unwrap_or("").contains("video stream"), "{err}");
}

/// Three kiosks streaming at once: their frames run through the models in
/// shared batches (`batch` in the frame messages, `rostro_frames_batched_total`
/// in /metrics), and each frame answers as it does analysed alone.
#[test]
fn concurrent_sessions_share_batches_and_answer_as_alone() {
    let addr = in_process("ws-batch", |c| {
        c.stream.batch_frames = 4;
        // Long enough that three sessions in step always meet, even on a busy machine.
        c.stream.batch_wait_ms = 100.0;
    });
    let frames = clip("obama2.jpg", Presentation::BonaFide, 6);
    let start = json!({"type": "start", "mode": "identify", "continuous": true});
    let sessions =
        rt().block_on(futures_util::future::join_all((0..3).map(|_| play(addr, KEY_A, start.clone(), &frames))));
    let mut a = analyzer();
    let config = rostro::config::Config::default();
    let mut batched = 0;
    for (msgs, _) in &sessions {
        let streamed: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "frame").collect();
        assert_eq!(streamed.len(), frames.len(), "every frame answered: {msgs:?}");
        batched += streamed.iter().filter(|s| s["batch"].as_u64().expect("batch") > 1).count();
        for (bytes, s) in frames.iter().zip(streamed) {
            let input = rostro::stream::frame::FrameInput::Encoded(bytes.clone());
            let plan = rostro::stream::frame::Planner::new(false, false, &config.stream).plan(false);
            let job = rostro::stream::frame::FrameJob { input, plan, limits: config.decode };
            let alone = rostro::stream::frame::analyse(&mut a, job).expect("analyse");
            assert_eq!(alone.batch, 1);
            let faces = s["faces"].as_array().expect("faces");
            assert_eq!(faces.len(), alone.faces.len());
            for k in ["x", "y", "w", "h"] {
                let streamed = faces[0]["box"][k].as_f64().expect("n");
                let own = serde_json::to_value(alone.faces[0].bbox).expect("json")[k].as_f64().expect("n");
                assert!((streamed - own).abs() < 1e-2, "box {k}: batched {streamed}, alone {own}");
            }
            let model = alone.features.expect("features").model as f64;
            assert!((s["liveness"]["model"].as_f64().expect("model") - model).abs() < 1e-3);
        }
    }
    assert!(batched >= frames.len(), "most frames of three sessions in step ran together: {batched} of 18");
    let metrics = String::from_utf8_lossy(&crate::http::request(addr, "GET", "/metrics", &[], None).body).to_string();
    let line = metrics.lines().find(|l| l.starts_with("rostro_frames_batched_total{source=\"ws\"}")).expect("metric");
    let counted: usize = line.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("count");
    assert_eq!(counted, batched);
}
