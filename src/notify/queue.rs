//! The one delivery queue for every outgoing notification (channel events,
//! access-event webhooks): each delivery is a record of this edge's store,
//! written in the same atomic write as the change it reports when there is
//! one, so an acknowledged change always has its notification queued, and a
//! restart resumes where the queue stood. One worker thread posts what is
//! due; a failure is retried with exponential backoff (`backoff_s`, doubling)
//! up to `attempts`, then kept as `failed` for the operator. Webhooks carry
//! the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`); a receiver deduplicates on `webhook-id`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::EventsConfig;
use super::transports::{Message, Transports};
use crate::store::{JsonRecord, Records, StoreError, Tx};
use crate::util;

/// Where a delivery goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Target {
    /// A JSON POST, signed with `secret` when it is not empty, plus `headers`.
    Webhook {
        url: String,
        #[serde(default)]
        secret: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
    },
    /// A Slack incoming webhook: `{"text": …}`.
    Slack { url: String },
    /// An e-mail to the recipients, through `[events.mail]`.
    Email { recipients: Vec<String> },
    /// A text message, through `[events.sms]`.
    Sms { to: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Failed,
}

/// One queued notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// `msg_…`: the `webhook-id` every attempt repeats.
    pub id: String,
    pub target: Target,
    /// e.g. `person_register`, `access`.
    pub event: String,
    pub body: Value,
    pub created_ns: i64,
    pub attempts: u32,
    pub next_ns: i64,
    pub state: State,
    pub last_error: Option<String>,
}

impl JsonRecord for Delivery {
    const COLLECTION: &'static str = "deliveries";
    const SYNCED: bool = false;
    fn id(&self) -> &str {
        &self.id
    }
}

impl Delivery {
    pub fn new(target: Target, event: &str, body: Value) -> Delivery {
        let now = util::now_ns();
        Delivery {
            id: format!("msg_{}", uuid::Uuid::new_v4().simple()),
            target,
            event: event.to_string(),
            body,
            created_ns: now,
            attempts: 0,
            next_ns: now,
            state: State::Pending,
            last_error: None,
        }
    }
}

/// Stages `delivery` for `company` in the write `tx` (sent once it commits and the queue is woken).
pub fn enqueue(tx: &mut Tx<'_>, company: &str, delivery: &Delivery) -> Result<(), StoreError> {
    tx.put(company, delivery).map(|_| ())
}

/// The Standard Webhooks signature of one attempt: `v1,<base64 HMAC-SHA256>` over
/// `id.timestamp.body`, keyed by the bytes of a `whsec_…` secret (or the secret's text).
pub fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let key =
        secret.strip_prefix("whsec_").and_then(|k| b64.decode(k).ok()).unwrap_or_else(|| secret.as_bytes().to_vec());
    let mac = util::hmac_sha256(&key, &[format!("{id}.{timestamp}.").as_bytes(), body]);
    format!("v1,{}", b64.encode(mac))
}

/// The queue's worker side.
pub struct Queue {
    records: Arc<Records>,
    config: EventsConfig,
    transports: Transports,
    wake: (Mutex<bool>, Condvar),
}

impl Queue {
    /// Fails when `[events.mail]` or `[events.sms]` is not usable.
    pub fn new(records: Arc<Records>, config: &EventsConfig) -> Result<Queue, String> {
        let transports = Transports::new(&config.mail, &config.sms)?;
        Ok(Queue { records, config: config.clone(), transports, wake: (Mutex::new(false), Condvar::new()) })
    }

    /// Tells the worker that something was queued.
    pub fn wake(&self) {
        *self.wake.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        self.wake.1.notify_all();
    }

    /// Queues `delivery` on its own (access events) and wakes the worker.
    pub fn push(&self, company: &str, delivery: &Delivery) -> Result<(), StoreError> {
        self.records.write(|tx| enqueue(tx, company, delivery))?;
        self.wake();
        Ok(())
    }

    /// Deliveries still queued or given up, oldest first (operators, tests).
    pub fn snapshot(&self) -> Result<Vec<(String, Delivery)>, StoreError> {
        let mut out = Vec::new();
        self.records.for_each::<Delivery>(None, &mut |company, d| {
            out.push((company.to_string(), d.record));
            Ok(())
        })?;
        out.sort_by_key(|(_, d)| d.created_ns);
        Ok(out)
    }

    /// Runs the worker on its own thread for as long as the process lives.
    pub fn start(self: &Arc<Self>) -> std::io::Result<()> {
        let queue = self.clone();
        std::thread::Builder::new().name("rostro-deliveries".into()).spawn(move || {
            loop {
                let wait = queue.round().unwrap_or_else(|e| {
                    tracing::error!(error = %e, "delivery queue: store error");
                    Duration::from_secs(1)
                });
                let mut woken = queue.wake.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if !*woken {
                    woken = queue.wake.1.wait_timeout(woken, wait).unwrap_or_else(|e| e.into_inner()).0;
                }
                *woken = false;
            }
        })?;
        Ok(())
    }

    /// Sends every due delivery once, oldest first; a target that failed in
    /// this round is not tried again in it. Returns how long until the next is due.
    fn round(&self) -> Result<Duration, StoreError> {
        let now = util::now_ns();
        let mut due = Vec::new();
        let mut next = now + 1_000_000_000;
        for (company, d) in self.snapshot()? {
            if d.state != State::Pending {
                continue;
            }
            if d.next_ns <= now {
                due.push((company, d));
            } else {
                next = next.min(d.next_ns);
            }
        }
        let mut failing: HashSet<String> = HashSet::new();
        for (company, mut d) in due {
            let key = target_key(&d.target);
            if failing.contains(&key) {
                continue;
            }
            match self.send(&d) {
                Ok(()) => {
                    self.records.write(|tx| tx.delete::<Delivery>(&company, &d.id).map(|_| ()))?;
                    tracing::debug!(id = %d.id, event = %d.event, "delivered");
                }
                Err(why) => {
                    failing.insert(key);
                    d.attempts += 1;
                    d.last_error = Some(why.clone());
                    if d.attempts >= self.config.attempts.max(1) {
                        d.state = State::Failed;
                        tracing::warn!(id = %d.id, event = %d.event, error = %why, "delivery given up");
                    } else {
                        let doublings = d.attempts.clamp(1, 20) as i32 - 1;
                        let backoff = f64::from(self.config.backoff_s.max(0.01)) * 2f64.powi(doublings);
                        d.next_ns = util::now_ns() + (backoff.min(86_400.0) * 1e9) as i64;
                        next = next.min(d.next_ns);
                        tracing::info!(id = %d.id, event = %d.event, attempt = d.attempts, error = %why, "delivery failed, will retry");
                    }
                    self.records.write(|tx| enqueue(tx, &company, &d))?;
                }
            }
        }
        Ok(Duration::from_nanos((next - util::now_ns()).clamp(1_000_000, 1_000_000_000) as u64))
    }

    fn send(&self, d: &Delivery) -> Result<(), String> {
        let timeout = Duration::from_secs_f32(self.config.timeout_s.clamp(0.1, 120.0));
        match &d.target {
            Target::Webhook { url, secret, headers } => {
                let body = d.body.to_string().into_bytes();
                let ts = util::now_ns() / 1_000_000_000;
                let mut all: Vec<(String, String)> = headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                all.push(("webhook-id".into(), d.id.clone()));
                all.push(("webhook-timestamp".into(), ts.to_string()));
                all.push(("x-rostro-event".into(), d.event.clone()));
                if !secret.is_empty() {
                    all.push(("webhook-signature".into(), standard_signature(secret, &d.id, ts, &body)));
                    all.push(("x-rostro-signature".into(), super::signature(secret, &body)));
                }
                super::http::post_json(url, &all, &body, timeout)
            }
            Target::Slack { url } => {
                let text = format!(
                    "Rostro: {} ({} {})",
                    d.event,
                    d.body["model"].as_str().unwrap_or(""),
                    d.body["model_id"].as_str().unwrap_or("")
                );
                super::http::post_json(url, &[], json!({ "text": text }).to_string().as_bytes(), timeout)
            }
            Target::Email { recipients } => self.transports.email(recipients, &Message::of(&d.event, &d.body), timeout),
            Target::Sms { to } => self.transports.sms(to, &Message::of(&d.event, &d.body), timeout),
        }
    }
}

fn target_key(t: &Target) -> String {
    match t {
        Target::Webhook { url, .. } | Target::Slack { url } => url.clone(),
        Target::Email { recipients } => recipients.join(","),
        Target::Sms { to } => format!("sms:{to}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        let sig = standard_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
