//! Outgoing notifications: the access-event hub (a broadcast that the
//! event feed and the webhooks read) and signed webhook deliveries.
//! No HTTP server types here: `stream/` serves the feed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

/// A callback for access events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://host:port/path` (plain HTTP: an edge box posts inside its own network).
    pub url: String,
    /// Signs each body: header `X-Rostro-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
    #[serde(default)]
    pub secret: String,
    /// Only this company's events (empty: all).
    #[serde(default)]
    pub company: String,
}

/// The `[events]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    pub webhooks: Vec<Webhook>,
    /// One "granted" event per user per camera within this many seconds.
    pub cooldown_s: f32,
    /// Attempts per webhook delivery.
    pub attempts: u32,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { webhooks: Vec::new(), cooldown_s: 10.0, attempts: 3 }
    }
}

/// Where events go.
pub struct Hub {
    tx: broadcast::Sender<Arc<Value>>,
}

impl Default for Hub {
    fn default() -> Self {
        Hub { tx: broadcast::channel(256).0 }
    }
}

impl Hub {
    pub fn publish(&self, event: Value) {
        let _ = self.tx.send(Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Value>> {
        self.tx.subscribe()
    }
}

pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", crate::util::hex(&mac.finalize().into_bytes()))
}

/// One POST; the status code, or why there was none.
fn post(url: &str, body: &[u8], signature: &str) -> Result<u16, String> {
    let (addr, path) = crate::util::resolve_http(url)?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let path = if path.is_empty() { "/".to_string() } else { path };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\nX-Rostro-Event: access\r\nX-Rostro-Signature: {signature}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).map_err(|e| e.to_string())?;
    let mut answer = [0u8; 64];
    let n = s.read(&mut answer).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&answer[..n]);
    line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("no HTTP status in {line:?}"))
}

/// Delivers every event to `hook` until the hub closes; 2xx is delivered, anything
/// else is retried with backoff, then given up (and logged).
pub fn start_webhook(hub: &Hub, hook: Webhook, attempts: u32) {
    let mut rx = hub.subscribe();
    tokio::task::spawn_local(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(url = %hook.url, skipped = n, "webhook too slow: events skipped");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !hook.company.is_empty() && event["companyId"] != hook.company.as_str() {
                continue;
            }
            let body = event.to_string().into_bytes();
            let sig = signature(&hook.secret, &body);
            for attempt in 0..attempts.max(1) {
                let (url, body, sig) = (hook.url.clone(), body.clone(), sig.clone());
                let result = tokio::task::spawn_blocking(move || post(&url, &body, &sig)).await;
                match result {
                    Ok(Ok(code)) if (200..300).contains(&code) => break,
                    other => {
                        if attempt + 1 == attempts.max(1) {
                            tracing::warn!(url = %hook.url, outcome = ?other, "webhook gave up on an event");
                        } else {
                            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                        }
                    }
                }
            }
        }
    });
}
