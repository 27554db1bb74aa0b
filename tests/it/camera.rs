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
use rostro::notify::Webhook;
use rostro::video::CameraConfig;
use serde_json::Value;

use crate::http::{Client, KEY_A, KEY_B, RespExt, in_process, temp_dir};

/// Encodes JPEG frames into a VP8/WebM clip at `fps` with gst-launch, at the
/// bitrate a kiosk would use for faces (3 Mb/s).
pub fn webm(dir: &Path, frames: &[Vec<u8>], fps: u32) -> std::path::PathBuf {
    encode(dir, frames, fps, "vp8enc deadline=1 target-bitrate=3000000 ! webmmux", "clip.webm")
}

/// Encodes JPEG frames with a gst-launch encoder chain (e.g. "x264enc ! h264parse").
pub fn encode(dir: &Path, frames: &[Vec<u8>], fps: u32, encoder: &str, name: &str) -> std::path::PathBuf {
    let frames_dir = dir.join(format!("{name}-frames"));
    std::fs::create_dir_all(&frames_dir).expect("frames dir");
    for (i, f) in frames.iter().enumerate() {
        std::fs::write(frames_dir.join(format!("{i:03}.jpg")), f).expect("frame");
    }
    let out = dir.join(name);
    let status = Command::new("gst-launch-1.0")
        .args(["-q", "multifilesrc", &format!("location={}/%03d.jpg", frames_dir.display()), "index=0"])
        .arg(format!("caps=image/jpeg,framerate={fps}/1"))
        .args(["!", "jpegdec", "!", "videoconvert", "!"])
        .args(encoder.split_whitespace())
        .args(["!", "filesink"])
        .arg(format!("location={}", out.display()))
        .status()
        .expect("gst-launch-1.0");
    assert!(status.success(), "gst-launch-1.0 {encoder}");
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
    let line = rostro::video::launch_line(&cam("rtsp", &[("url", "rtsp://10.0.0.5/s"), ("latency", "200")]))
        .expect("rtsp line");
    assert!(line.starts_with("rtspsrc location=rtsp://10.0.0.5/s latency=200 ! decodebin"), "{line}");
    assert!(line.ends_with("appsink name=sink max-buffers=1 drop=true sync=true"), "{line}");
    let missing = rostro::video::launch_line(&cam("v4l2", &[])).expect_err("no device");
    assert!(missing.contains("{device}"), "{missing}");
    let inject = rostro::video::launch_line(&cam("file", &[("location", "x\" ! fakesink")]));
    assert!(inject.is_err());
    assert!(rostro::video::launch_line(&cam("no-such-template", &[])).is_err());
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
    // Nobody is enrolled yet: the camera's track is denied as unknown first.
    let denied: Value = rt.block_on(async {
        let msg = tokio::time::timeout(Duration::from_secs(90), feed_a.next()).await.expect("a denial within 90 s");
        serde_json::from_str(&msg.expect("open").expect("ok").into_text().expect("text")).expect("json")
    });
    assert_eq!(denied["decision"], "denied", "{denied}");
    assert_eq!(denied["reason"], "unknown", "{denied}");
    assert_eq!(denied["userId"], Value::Null);
    // Enrolled now, the same track (the clip loops) is searched again and granted.
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
        assert_eq!(signature, rostro::notify::signature("hook-secret", &body), "signed body");
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

/// Writes frames as a Y4M clip (4:2:0), the format Chromium's fake camera reads.
pub fn y4m(path: &Path, frames: &[image::RgbImage], fps: u32) {
    let (w, h) = (frames[0].width(), frames[0].height());
    let mut out = format!("YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n").into_bytes();
    for f in frames {
        out.extend_from_slice(b"FRAME\n");
        let px = |x: u32, y: u32| {
            let p = f.get_pixel(x, y);
            (p[0] as f32, p[1] as f32, p[2] as f32)
        };
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = px(x, y);
                out.push((0.299 * r + 0.587 * g + 0.114 * b).round().clamp(0.0, 255.0) as u8);
            }
        }
        for chroma in [(-0.168_736, -0.331_264, 0.5), (0.5, -0.418_688, -0.081_312)] {
            for y in (0..h).step_by(2) {
                for x in (0..w).step_by(2) {
                    let (r, g, b) = px(x, y);
                    out.push((128.0 + chroma.0 * r + chroma.1 * g + chroma.2 * b).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    std::fs::write(path, out).expect("write y4m");
}

/// The kiosk page in headless Chromium, its camera a Y4M clip of a living face:
/// the page streams, and the server identifies the enrolled user.
#[test]
fn the_kiosk_page_identifies_a_face_in_headless_chromium() {
    let dir = temp_dir("kiosk-clip");
    let img = crate::common::load(&crate::common::fixture("obama2.jpg"));
    let faces = crate::common::analyzer().detect(&img).expect("detect");
    let frames = rostro::biometrics::simulate::clip(&img, &faces[0], Presentation::BonaFide, 30, 5);
    let clip = dir.join("face.y4m");
    y4m(&clip, &frames, 15);
    let addr = in_process("kiosk-page", |_| {});
    Client { addr, key: KEY_A }.enroll("Barack Obama", None, &crate::common::fixture("obama.jpg")).expect(200);
    let mut chromium = Command::new("chromium")
        .args(["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--mute-audio"])
        .arg("--use-fake-ui-for-media-stream")
        .arg("--use-fake-device-for-media-stream")
        .arg(format!("--use-file-for-fake-video-capture={}", clip.display()))
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg("--remote-debugging-port=0")
        .arg(format!("http://{addr}/kiosk?key={KEY_A}&mode=identify&autostart=true"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromium (installed by `make test`'s setup)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        metrics = String::from_utf8_lossy(&crate::http::request(addr, "GET", "/metrics", &[], None).body).to_string();
        if metrics.contains("rostro_decisions_total{mode=\"identify\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = chromium.kill();
    let _ = chromium.wait();
    assert!(
        metrics.contains("rostro_decisions_total{mode=\"identify\",decision=\"identified\"} 1"),
        "the page's session identified the face: {}",
        metrics.lines().filter(|l| l.contains("decisions") || l.contains("frames_")).collect::<Vec<_>>().join("\n")
    );
    assert!(!metrics.contains("decision=\"unknown\""));
    // The page itself is served as HTML.
    let page = crate::http::request(addr, "GET", "/kiosk", &[], None);
    assert_eq!(page.status, 200);
    assert!(String::from_utf8_lossy(&page.body).contains("getUserMedia"));
}
