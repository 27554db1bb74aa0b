//! `rostro load`: concurrent clients against a running Rostro, with latency
//! percentiles per client count. Also the minimal HTTP/1.1 client it (and the
//! integration tests) use: plain `TcpStream`, one request per connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;

use crate::util::Percentiles;

#[derive(Debug, Clone)]
pub struct Resp {
    /// 0 when there was no connection or no answer.
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    fn none(body: Vec<u8>) -> Resp {
        Resp { status: 0, headers: Vec::new(), body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes, then reads the whole answer (we ask the server to close).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Resp {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Resp::none(Vec::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(300)));
    // The server may answer and close before reading everything (413).
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Resp::none(buf);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    let mut body = buf[end + 4..].to_vec();
    if let Some((_, n)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")) {
        body.truncate(n.parse().unwrap_or(body.len()));
    }
    Resp { status, headers, body }
}

pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or(b"");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    raw(addr, &bytes)
}

/// What to send.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub addr: SocketAddr,
    pub base_path: String,
    pub key: String,
    /// `face-enroll`, `face-verify`, `enroll`, `verify` or `facial` (Passwordless, with
    /// `media`); `people-create` (P-15, a new national id each request) or
    /// `people-list` (P-14, the newest page of 20).
    pub route: String,
    pub media: Vec<u8>,
    pub requests_per_client: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub route: String,
    pub clients: usize,
    pub requests: usize,
    pub ok: usize,
    /// Status code -> count, for answers other than 200.
    pub other_statuses: Vec<(u16, usize)>,
    pub latency_ms: Percentiles,
    pub max_ms: f64,
    pub requests_per_s: f64,
}

impl LoadPlan {
    fn body(&self, n: usize) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.media);
        let field = if self.route == "enroll" || self.route == "verify" { "video" } else { "image" };
        let mut body = serde_json::json!({ field: b64 });
        if self.route.contains("enroll") {
            body["user"] = serde_json::json!({"fullName": format!("Load Test {n}")});
        }
        serde_json::to_vec(&body).expect("JSON")
    }

    fn send(&self, body: &[u8]) -> Resp {
        let auth = format!("Bearer {}", self.key);
        let path = format!("{}/api/v1/passwordless/client/{}", self.base_path, self.route);
        request(self.addr, "POST", &path, &[("Authorization", &auth), ("Content-Type", "application/json")], Some(body))
    }

    /// Request `i` of client `client` in run `tag`: the People routes make their own bodies.
    fn send_nth(&self, body: &[u8], tag: &str, client: usize, i: usize) -> Resp {
        let auth = format!("Bearer {}", self.key);
        match self.route.as_str() {
            "people-create" => {
                // 18 characters, as a CURP: unique per run, client and request.
                let person = serde_json::json!({"national_id": format!("LD{tag}{client:02}{i:010}"),
                    "name": format!("Load {client} {i}"), "first_lastname": "Test", "second_lastname": "Load",
                    "nationality_id": 144});
                let body = serde_json::to_vec(&person).expect("JSON");
                let path = format!("{}/api/v1/people", self.base_path);
                request(
                    self.addr,
                    "POST",
                    &path,
                    &[("Authorization", &auth), ("Content-Type", "application/json")],
                    Some(&body),
                )
            }
            "people-list" => {
                let path = format!("{}/api/v1/people?page=1&per_page=20", self.base_path);
                request(self.addr, "GET", &path, &[("Authorization", &auth)], None)
            }
            _ => self.send(body),
        }
    }

    /// Whether the route sends `media`.
    pub fn needs_media(&self) -> bool {
        !self.route.starts_with("people-")
    }

    /// `clients` threads, each sending `requests_per_client` requests back to back.
    /// `progress(done, total)` is called from the clients as answers arrive.
    pub fn run(&self, clients: usize, progress: &(dyn Fn(usize, usize) + Sync)) -> LoadResult {
        let total = clients * self.requests_per_client;
        let done = Arc::new(AtomicUsize::new(0));
        let bodies: Vec<Vec<u8>> =
            (0..clients).map(|c| if self.needs_media() { self.body(c) } else { Vec::new() }).collect();
        let tag = {
            let mut b = [0u8; 2];
            crate::util::random_bytes(&mut b);
            crate::util::hex(&b).to_uppercase()
        };
        let tag = &tag;
        let started = Instant::now();
        let samples: Vec<(u16, f64)> = std::thread::scope(|s| {
            let handles: Vec<_> = bodies
                .iter()
                .enumerate()
                .map(|(client, body)| {
                    let done = done.clone();
                    s.spawn(move || {
                        (0..self.requests_per_client)
                            .map(|i| {
                                let t = Instant::now();
                                let r = self.send_nth(body, tag, client, i);
                                let ms = t.elapsed().as_secs_f64() * 1e3;
                                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                                (r.status, ms)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
        });
        let wall = started.elapsed().as_secs_f64();
        let success = |s: u16| s == 200 || s == 201;
        let ok: Vec<f64> = samples.iter().filter(|(s, _)| success(*s)).map(|&(_, ms)| ms).collect();
        let mut other: Vec<(u16, usize)> = Vec::new();
        for &(status, _) in samples.iter().filter(|(s, _)| !success(*s)) {
            match other.iter_mut().find(|(s, _)| *s == status) {
                Some(entry) => entry.1 += 1,
                None => other.push((status, 1)),
            }
        }
        LoadResult {
            route: self.route.clone(),
            clients,
            requests: samples.len(),
            ok: ok.len(),
            other_statuses: other,
            max_ms: ok.iter().copied().fold(0.0, f64::max),
            latency_ms: Percentiles::of(ok),
            requests_per_s: samples.len() as f64 / wall.max(1e-9),
        }
    }

    /// Enrols the media once (image routes), so that verify and search have someone to find.
    pub fn prepare(&self) -> Result<(), String> {
        let route = if self.route == "verify" { "enroll" } else { "face-enroll" };
        let plan = LoadPlan { route: route.into(), ..self.clone() };
        let r = plan.send(&plan.body(0));
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("enrolling first: {} {}", r.status, String::from_utf8_lossy(&r.body)))
        }
    }
}
