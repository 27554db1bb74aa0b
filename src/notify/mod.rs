//! Outgoing notifications: the access-event hub (a broadcast that the
//! event feed and the webhooks read) and the durable delivery queue of
//! every outgoing notification ([`queue`]).
//! No HTTP server types here: `stream/` serves the feed.

pub mod http;
pub mod queue;
pub mod transports;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::broadcast;

pub use queue::{Delivery, Queue, Target};

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
    /// Attempts per delivery (webhooks, channels), the first included.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles with each further one.
    pub backoff_s: f32,
    /// Time limit of one attempt, connection included.
    pub timeout_s: f32,
    pub mail: transports::MailConfig,
    pub sms: transports::SmsConfig,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            webhooks: Vec::new(),
            cooldown_s: 10.0,
            attempts: 3,
            backoff_s: 5.0,
            timeout_s: 5.0,
            mail: Default::default(),
            sms: Default::default(),
        }
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
    format!("sha256={}", crate::util::hex(&crate::util::hmac_sha256(secret.as_bytes(), &[body])))
}

/// Queues every access event of `hub` for `hook` on the delivery queue
/// (until the hub closes). An event the queue cannot store is logged.
pub fn start_access_hook(hub: &Hub, queue: Arc<Queue>, hook: Webhook) {
    let mut rx = hub.subscribe();
    tokio::task::spawn_local(async move {
        loop {
            let event = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(url = %hook.url, skipped = n, "access events arrived faster than they could be queued");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if !hook.company.is_empty() && event["companyId"] != hook.company.as_str() {
                continue;
            }
            let company = event["companyId"].as_str().unwrap_or_default().to_string();
            let target =
                Target::Webhook { url: hook.url.clone(), secret: hook.secret.clone(), headers: Default::default() };
            let delivery = Delivery::new(target, "access", (*event).clone());
            let queue = queue.clone();
            let outcome = tokio::task::spawn_blocking(move || queue.push(&company, &delivery)).await;
            if let Ok(Err(e)) | Err(e) = outcome.map_err(|e| crate::store::StoreError::Io(e.to_string())) {
                tracing::error!(url = %hook.url, error = %e, "access event not queued");
            }
        }
    });
}
