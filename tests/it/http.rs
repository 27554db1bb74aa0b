//! Talking to Rostro: the library's minimal HTTP/1.1 client (raw bytes, so
//! tests can send what no polite client would: a lying Content-Length, a
//! body that never ends), assertions on answers, and the two ways of running
//! Rostro: in this process, or as the binary.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use rostro::config::Config;
pub use rostro::loadgen::{Resp, raw, request};
use serde_json::Value;

use crate::common::root;

pub const KEY_A: &str = "key-company-a-0001";
pub const KEY_B: &str = "key-company-b-0002";
pub const KEYS: &str = "key-company-a-0001:company-a,key-company-b-0002:company-b";

/// Assertions on an answer.
pub trait RespExt {
    fn json(&self) -> Value;
    /// Asserts the status and, for errors, the Passwordless envelope; returns the JSON.
    fn expect(&self, status: u16) -> Value;
}

impl RespExt for Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{} body is not JSON ({e}): {}", self.status, String::from_utf8_lossy(&self.body))
        })
    }

    fn expect(&self, status: u16) -> Value {
        let json = self.json();
        assert_eq!(self.status, status, "{json}");
        if status >= 400 {
            assert_eq!(json["code"], status, "{json}");
            assert!(json["message"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
            assert!(json["requestId"].as_str().is_some_and(|m| !m.is_empty()), "{json}");
        }
        json
    }
}

pub fn b64(path: &Path) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(path).expect("read fixture"))
}

/// A client bound to one server and key.
#[derive(Clone, Copy)]
pub struct Client<'a> {
    pub addr: SocketAddr,
    pub key: &'a str,
}

impl Client<'_> {
    fn auth(&self) -> String {
        format!("Bearer {}", self.key)
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        let body = serde_json::to_vec(body).expect("json");
        let auth = self.auth();
        request(self.addr, "POST", path, &[("Authorization", &auth), ("Content-Type", "application/json")], Some(&body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Resp {
        let body = serde_json::to_vec(body).expect("json");
        let auth = self.auth();
        request(self.addr, "PUT", path, &[("Authorization", &auth), ("Content-Type", "application/json")], Some(&body))
    }

    pub fn get(&self, path: &str) -> Resp {
        request(self.addr, "GET", path, &[("Authorization", &self.auth())], None)
    }

    pub fn delete(&self, path: &str) -> Resp {
        request(self.addr, "DELETE", path, &[("Authorization", &self.auth())], None)
    }

    /// PL-02 with a photo file.
    pub fn enroll(&self, name: &str, external_id: Option<&str>, photo: &Path) -> Resp {
        let mut user = serde_json::json!({"fullName": name});
        if let Some(e) = external_id {
            user["externalId"] = e.into();
        }
        self.post("/api/v1/passwordless/client/face-enroll", &serde_json::json!({"user": user, "image": b64(photo)}))
    }

    pub fn verify(&self, photo: &Path) -> Resp {
        self.post("/api/v1/passwordless/client/face-verify", &serde_json::json!({"image": b64(photo)}))
    }

    pub fn search(&self, photo: &Path, top: usize) -> Resp {
        self.post("/api/v1/passwordless/client/facial", &serde_json::json!({"image": b64(photo), "rankingTop": top}))
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rostro-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Rostro in this process, on a free loopback port, with a fresh store.
pub fn in_process(name: &str, edit: impl FnOnce(&mut Config)) -> SocketAddr {
    let mut config = Config::load(None).expect("default config");
    config.store.data_dir = temp_dir(name);
    config.server.bind = "127.0.0.1:0".into();
    config.auth.keys = rostro::auth::parse_key_list(KEYS).expect("keys");
    edit(&mut config);
    config.validate().expect("valid test config");
    let files = rostro::vision::ModelFiles::in_dir(&root().join("models"));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The inference actors live in this system.
        let system = actix_web::rt::System::new();
        let (state, _) = rostro::app::build_state(Arc::new(config), &files).expect("state");
        let _ = system.block_on(rostro::serve::serve(state, move |addr| {
            let _ = tx.send(addr);
        }));
    });
    rx.recv_timeout(Duration::from_secs(60)).expect("server started")
}

/// The `rostro serve` binary on a free port; killed when dropped.
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Binary {
    pub fn start(data_dir: &Path) -> Binary {
        Binary::start_with(data_dir, None)
    }

    /// With a config file overlaid on the defaults.
    pub fn start_with(data_dir: &Path, config: Option<&Path>) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut command = Command::new(env!("CARGO_BIN_EXE_rostro"));
        if let Some(c) = config {
            command.arg("--config").arg(c);
        }
        let child = command
            .args(["--models", root().join("models").to_str().expect("utf-8")])
            .args(["serve", "--bind", &addr.to_string(), "--data-dir", data_dir.to_str().expect("utf-8")])
            .env("ROSTRO_API_KEYS", KEYS)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn rostro serve");
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(started.elapsed() < Duration::from_secs(120), "rostro serve did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Binary { child, addr }
    }

    /// SIGTERM, then the exit status and what it printed.
    pub fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status, err)
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One request a [`Hooks`] receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub path: String,
    /// Header names lower-cased.
    pub headers: std::collections::HashMap<String, String>,
    pub body: Vec<u8>,
}

/// A loopback HTTP receiver for webhooks: records every request and answers
/// each with the next status of `statuses` (200 once they run out).
pub struct Hooks {
    pub url: String,
    pub hits: std::sync::mpsc::Receiver<Hit>,
}

impl Hooks {
    pub fn start(statuses: &[u16]) -> Hooks {
        Hooks::on(std::net::TcpListener::bind("127.0.0.1:0").expect("bind"), statuses)
    }

    pub fn on(listener: std::net::TcpListener, statuses: &[u16]) -> Hooks {
        use std::io::{BufRead, BufReader, Write};
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let (tx, hits) = std::sync::mpsc::channel();
        let mut statuses: std::collections::VecDeque<u16> = statuses.iter().copied().collect();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = std::collections::HashMap::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                    }
                }
                let length = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0usize);
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let status = statuses.pop_front().unwrap_or(200);
                let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = tx.send(Hit { path, headers, body });
            }
        });
        Hooks { url, hits }
    }

    pub fn next(&self, within: Duration) -> Hit {
        self.hits.recv_timeout(within).expect("a webhook delivery in time")
    }
}

/// A real SMTP server on loopback (`python3 -m aiosmtpd`, installed by
/// `make test`): every message it accepts is printed, and kept here.
pub struct Smtp {
    pub port: u16,
    child: std::process::Child,
    seen: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Smtp {
    pub fn start() -> Smtp {
        use std::io::BufRead;
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .env("PYTHONPATH", root().join(".cache/testdeps"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn aiosmtpd (run `make test`, which installs it)");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let sink = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = sink.lock().expect("lock");
                s.push_str(&line);
                s.push('\n');
            }
        });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(20), "aiosmtpd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Smtp { port, child, seen }
    }

    /// The first whole message that contains `needle`, waiting up to `within`.
    pub fn message_with(&self, needle: &str, within: Duration) -> String {
        let started = Instant::now();
        loop {
            let all = self.seen.lock().expect("lock").clone();
            for m in all.split("---------- MESSAGE FOLLOWS ----------").skip(1) {
                if let Some((body, _)) = m.split_once("------------ END MESSAGE ------------")
                    && body.contains(needle)
                {
                    return body.to_string();
                }
            }
            assert!(started.elapsed() < within, "no e-mail with {needle:?} in time; the server saw:\n{all}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One path a [`serve_files`] server answers: status, body, and a delay before the answer.
pub struct Served {
    pub status: u16,
    pub body: Vec<u8>,
    pub delay: Duration,
}

/// A loopback HTTP server of fixed answers by path (404 for the rest); its base URL.
pub fn serve_files(routes: Vec<(&'static str, Served)>) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let routes: Arc<std::collections::HashMap<&'static str, Served>> = Arc::new(routes.into_iter().collect());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let routes = routes.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let missing = Served { status: 404, body: b"no such file".to_vec(), delay: Duration::ZERO };
                let answer = routes.get(path.split('?').next().unwrap_or("")).unwrap_or(&missing);
                std::thread::sleep(answer.delay);
                let head = format!(
                    "HTTP/1.1 {} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                    answer.status,
                    answer.body.len()
                );
                let _ = conn.write_all(head.as_bytes());
                let _ = conn.write_all(&answer.body);
            });
        }
    });
    base
}
