//! A camera on a file source (a WebM clip of a living face, looped) runs
//! identify with the tracker and emits access events to the WebSocket feed
//! and to a signed webhook.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rostro::biometrics::simulate::Presentation;
use rostro::stream::{CameraConfig, Webhook};
use serde_json::Value;

use crate::http::{Client, KEY_A, KEY_B, RespExt, in_process, temp_dir};

/// Encodes JPEG frames into a VP8/WebM clip at `fps` with gst-launch.
pub fn webm(dir: &Path, frames: &[Vec<u8>], fps: u32) -> std::path::PathBuf {
    let frames_dir = dir.join("frames");
    std::fs::create_dir_all(&frames_dir).expect("frames dir");
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(frames_dir.join(format!("{i:03}.jpg")), f).expect("frame");
    }
    let out = dir.join("clip.webm");
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "multifilesrc", &format!("location={}/%03d.jpg", frames_dir.display()), "index=0"])
        .arg(format!("caps=image/jpeg,framerate={fps}/1"))
        .args(["!", "jpegdec", "!", "videoconvert", "!", "vp8enc", "deadline=1", "!", "webmmux", "!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0");
    assert!(status.success());
    out
}

/// A webhook receiver: every POST's signature header and body, answered 200.
fn receiver() -> (String, mpsc::Receiver<(String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            let (mut length, mut signature) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if lower.starts_with("x-rostro-signature:") {
                    signature = line["x-rostro-signature:".len()..].trim().to_string();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = tx.send((signature, body));
        }
    });
    (url, rx)
}

#[test]
fn launch_lines_fill_templates_and_refuse_bad_parameters() {
    let cam = |pipeline: &str, params: &[(&str, &str)]| CameraConfig {
        id: "c".into(),
        company: "x".into(),
        pipeline: pipeline.into(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        fps: 5.0,
        realtime: true,
        looped: false,
    };
    let line = rostro::stream::camera::launch_line(&cam("rtsp", &[("url", "rtsp://10.0.0.5/s"), ("latency", "200")]))
        .expect("rtsp line");
    assert!(line.starts_with("rtspsrc location=rtsp://10.0.0.5/s latency=200 ! decodebin"), "{line}");
    assert!(line.ends_with("appsink name=sink max-buffers=1 drop=true sync=true"), "{line}");
    let missing = rostro::stream::camera::launch_line(&cam("v4l2", &[])).expect_err("no device");
    assert!(missing.contains("{device}"), "{missing}");
    let inject = rostro::stream::camera::launch_line(&cam("file", &[("location", "x\" ! fakesink")]));
    assert!(inject.is_err());
    assert!(rostro::stream::camera::launch_line(&cam("no-such-template", &[])).is_err());
}

#[test]
fn a_file_camera_emits_access_events_to_the_feed_and_webhook() {
    let dir = temp_dir("camera");
    let clip = webm(&dir, &crate::stream::clip("obama2.jpg", Presentation::BonaFide, 24), 8);
    let (hook_url, hooks) = receiver();
    let addr = in_process("camera-srv", |c| {
        c.cameras = vec![CameraConfig {
            id: "door-1".into(),
            company: "company-a".into(),
            pipeline: "file".into(),
            params: [("location".to_string(), clip.display().to_string())].into(),
            fps: 8.0,
            realtime: true,
            looped: true,
        }];
        c.events.webhooks = vec![Webhook { url: hook_url, secret: "hook-secret".into(), company: String::new() }];
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (mut feed_a, mut feed_b) = rt.block_on(async {
        let a = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events?key={KEY_A}")).await.expect("feed a").0;
        let b = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/events?key={KEY_B}")).await.expect("feed b").0;
        (a, b)
    });
    let obama = Client { addr, key: KEY_A }
        .enroll("Barack Obama", None, &crate::common::fixture("obama.jpg"))
        .expect(200)["user"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // The feed: a grant for Obama, live, at door-1.
    let granted: Value = rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, feed_a.next()).await.expect("a grant within 90 s");
            let text = msg.expect("open").expect("ok").into_text().expect("text");
            let v: Value = serde_json::from_str(&text).expect("json");
            if v["decision"] == "granted" {
                return v;
            }
        }
    });
    assert_eq!(granted["type"], "access");
    assert_eq!(granted["camera"], "door-1");
    assert_eq!(granted["companyId"], "company-a");
    assert_eq!(granted["userId"], obama.as_str());
    assert_eq!(granted["fullName"], "Barack Obama");
    assert!(granted["score"].as_f64().is_some_and(|s| s >= 0.363), "{granted}");
    assert_eq!(granted["liveness"]["live"], true, "{granted}");
    assert!(granted["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    // The webhook got it too, signed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut found = false;
    while let Ok((signature, body)) = hooks.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        assert_eq!(signature, rostro::stream::events::signature("hook-secret", &body), "signed body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        if v["decision"] == "granted" && v["userId"] == obama.as_str() {
            found = true;
            break;
        }
    }
    assert!(found, "the webhook received the grant");
    // Company B's feed saw nothing of company A's camera.
    rt.block_on(async {
        let quiet = tokio::time::timeout(Duration::from_millis(300), feed_b.next()).await;
        assert!(quiet.is_err(), "no event for another company: {quiet:?}");
    });
    // The tracker embeds a face when it appears or improves, not every frame.
    let m = String::from_utf8_lossy(&crate::http::request(addr, "GET", "/metrics", &[], None).body).to_string();
    let counter = |name: &str| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}{{source=\"camera:door-1\"}} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing: {m}"))
    };
    let (processed, embedded) = (counter("rostro_frames_processed_total"), counter("rostro_faces_embedded_total"));
    assert!(processed >= 6, "{m}");
    assert!(embedded < processed, "embedded {embedded} of {processed} frames");
    assert!(m.contains("rostro_access_events_total{kind=\"granted\"}"), "{m}");
}
