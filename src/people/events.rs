//! The notification events of §2.1.11: a change of a person (or of what
//! hangs off them) queues one delivery per active channel of the tenant
//! that lists the event, in the same write as the change. The payload is
//! `{"event", "model", "model_id", "data", "occurred_at"}`.

use serde::Serialize;
use serde_json::{Value, json};

use super::NotificationChannel;
use crate::notify::{Delivery, Target, queue};
use crate::store::{StoreError, Tx};
use crate::util;

/// The active channels of a tenant, read once per write.
pub struct Listeners(Vec<NotificationChannel>);

impl Listeners {
    pub fn of(tx: &Tx<'_>, company: &str) -> Result<Listeners, StoreError> {
        let all = tx.records().page::<NotificationChannel>(company, false, 0, usize::MAX)?;
        Ok(Listeners(all.into_iter().map(|s| s.record).filter(|c| c.active).collect()))
    }

    /// Queues `event` about `model`/`model_id` for each listening channel.
    pub fn emit(
        &self,
        tx: &mut Tx<'_>,
        company: &str,
        event: &str,
        model: &str,
        model_id: &str,
        data: Value,
    ) -> Result<(), StoreError> {
        let listening: Vec<&NotificationChannel> =
            self.0.iter().filter(|c| c.events.iter().any(|e| e == event)).collect();
        if listening.is_empty() {
            return Ok(());
        }
        let body = json!({
            "event": event, "model": model, "model_id": model_id, "data": data,
            "occurred_at": util::rfc3339_us(util::now_ns()),
        });
        for channel in listening {
            if let Some(target) = target_of(channel) {
                queue::enqueue(tx, company, &Delivery::new(target, event, body.clone()))?;
            }
        }
        Ok(())
    }
}

fn target_of(channel: &NotificationChannel) -> Option<Target> {
    let c = &channel.config;
    let text = |v: &Value| v.as_str().map(str::to_string);
    match channel.kind.as_str() {
        "webhook" => Some(Target::Webhook {
            url: text(&c["url"])?,
            secret: text(&c["secret"]).unwrap_or_default(),
            headers: c["headers"]
                .as_object()
                .map(|h| h.iter().filter_map(|(k, v)| Some((k.clone(), text(v)?))).collect())
                .unwrap_or_default(),
        }),
        "slack" => Some(Target::Slack { url: text(&c["webhook_url"])? }),
        "email" => Some(Target::Email { recipients: c["recipients"].as_array()?.iter().filter_map(text).collect() }),
        _ => None,
    }
}

/// A record as event data: its fields, with `*_ns` times as RFC 3339 `*_at`.
pub fn data_of(record: &impl Serialize) -> Value {
    let mut v = serde_json::to_value(record).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        let times: Vec<String> = map.keys().filter(|k| k.ends_with("_ns")).cloned().collect();
        for k in times {
            if let Some(ns) = map.remove(&k).and_then(|t| t.as_i64()) {
                map.insert(format!("{}_at", &k[..k.len() - 3]), json!(util::rfc3339_us(ns)));
            }
        }
    }
    v
}
