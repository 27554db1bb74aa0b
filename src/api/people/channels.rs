//! Notification channels (P-73..P-77): where a company's People events go,
//! by e-mail, Slack or a webhook (§2.1.11). A webhook channel without a
//! `secret` in its config gets one (`whsec_…`, the Standard Webhooks form),
//! shown in the answers so that the receiver can check signatures.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use base64::Engine as _;
use serde_json::{Value, json};

use super::views::{ChannelJson, said};
use super::{Answer, PeopleApiError, blocking, body, company, ok, resource, uuid_path};
use crate::api::fields::{Input, Val};
use crate::app::AppState;
use crate::people::{CHANNEL_EVENTS, Entity, NotificationChannel};
use crate::util;

const KINDS: [&str; 3] = ["email", "slack", "webhook"];

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/notification-channels").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            resource("/api/v1/notification-channels/{id}")
                .route(web::get().to(get))
                .route(web::put().to(update))
                .route(web::patch().to(update))
                .route(web::delete().to(delete)),
        );
}

/// `events`: an array of unique items of the enum.
fn events(input: &mut Input) -> Val<Vec<String>> {
    let v = input.strings("events");
    if let Val::Set(list) = &v {
        let unknown: Vec<&String> = list.iter().filter(|e| !CHANNEL_EVENTS.contains(&e.as_str())).collect();
        if !unknown.is_empty() {
            input.error(
                "events",
                format!("The selected events are invalid: {unknown:?} (one of {}).", CHANNEL_EVENTS.join(", ")),
            );
            return Val::Absent;
        }
        let mut seen = list.clone();
        seen.sort();
        seen.dedup();
        if seen.len() != list.len() {
            input.error("events", "The events must not repeat an item.");
            return Val::Absent;
        }
    }
    v
}

fn is_url(text: &str, https_only: bool) -> bool {
    let rest = text.strip_prefix("https://").or_else(|| if https_only { None } else { text.strip_prefix("http://") });
    rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/') && !r.chars().any(char::is_whitespace))
}

/// Checks `config` for a channel of `kind` (§2.1.11 [REC] shapes); fills a webhook's secret.
fn check_config(input: &mut Input, kind: &str, config: &mut Value) {
    let bad = |input: &mut Input, m: &str| input.error("config", m.to_string());
    match kind {
        "email" => {
            let ok = config["recipients"].as_array().is_some_and(|r| {
                !r.is_empty()
                    && r.iter().all(|e| {
                        e.as_str()
                            .is_some_and(|e| e.split('@').count() == 2 && !e.starts_with('@') && !e.ends_with('@'))
                    })
            });
            if !ok {
                bad(input, "An email channel needs config.recipients: a non-empty array of e-mail addresses.");
            }
        }
        "slack" => {
            if !config["webhook_url"].as_str().is_some_and(|u| is_url(u, true)) {
                bad(input, "A slack channel needs config.webhook_url: an https:// URL.");
            }
        }
        _ => {
            if !config["url"].as_str().is_some_and(|u| is_url(u, false)) {
                bad(input, "A webhook channel needs config.url: an http:// or https:// URL.");
            }
            if !(config["headers"].is_null()
                || config["headers"].as_object().is_some_and(|h| h.values().all(Value::is_string)))
            {
                bad(input, "config.headers must be an object of strings.");
            }
            if config["secret"].is_null() {
                let mut key = [0u8; 24];
                util::random_bytes(&mut key);
                config["secret"] = json!(format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(key)));
            } else if config["secret"].as_str().is_none_or(|s| s.len() < 16) {
                bad(input, "config.secret must be a string of at least 16 characters.");
            }
        }
    }
}

/// A channel's fields as sent: all required on create (P-74), none nullable on update (P-76).
pub(super) struct ChannelFields {
    name: Option<String>,
    kind: Option<String>,
    active: Option<bool>,
    events: Option<Vec<String>>,
    config: Option<Value>,
}

pub(super) fn channel_input(input: &mut Input, create: bool) -> ChannelFields {
    fn given<T>(input: &mut Input, field: &str, v: Val<T>, create: bool) -> Option<T> {
        if create { input.require(field, v, |_| false) } else { input.not_null(field, v) }
    }
    let name = input.string("name", 255);
    let name = if create { input.require("name", name, String::is_empty) } else { input.not_null("name", name) };
    let kind = input.one_of("type", &KINDS);
    let kind = if create { input.require("type", kind, String::is_empty) } else { input.not_null("type", kind) };
    let active = input.boolean("active");
    let active = given(input, "active", active, create);
    let events = events(input);
    let events = given(input, "events", events, create);
    let config = input.object("config");
    let config = given(input, "config", config, create);
    ChannelFields { name, kind, active, events, config }
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let all = blocking(&state, move |p| p.list::<NotificationChannel>(&c)).await?;
    Ok(ok(StatusCode::OK, all.iter().map(ChannelJson::of).collect::<Vec<_>>()))
}

async fn create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let ChannelFields { name, kind, active, events, mut config } = channel_input(&mut input, true);
    if let (Some(kind), Some(config)) = (&kind, config.as_mut()) {
        check_config(&mut input, kind, config);
    }
    input.finish().map_err(PeopleApiError::invalid)?;
    let now = util::now_ns();
    let channel = NotificationChannel {
        id: util::uuid_v4(),
        name: name.unwrap_or_default(),
        kind: kind.unwrap_or_default(),
        active: active.unwrap_or_default(),
        events: events.unwrap_or_default(),
        config: config.unwrap_or_default(),
        created_ns: now,
        updated_ns: now,
    };
    let channel = blocking(&state, move |p| p.create(&c, channel)).await?;
    Ok(ok(StatusCode::CREATED, ChannelJson::of(&channel)))
}

async fn get(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, NotificationChannel::NAME)?;
    let channel = blocking(&state, move |p| p.get::<NotificationChannel>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, ChannelJson::of(&channel)))
}

async fn update(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, NotificationChannel::NAME)?;
    let mut input = body(&state, &req, payload).await?;
    let ChannelFields { name, kind, active, events, config } = channel_input(&mut input, false);
    input.finish().map_err(PeopleApiError::invalid)?;
    let channel = blocking(&state, move |p| {
        p.update::<NotificationChannel>(&c, &id, |ch| {
            // The config is checked against the type the channel will have.
            let mut check = Input::new(serde_json::Map::new());
            let kind = kind.unwrap_or_else(|| ch.kind.clone());
            let mut config = config.unwrap_or_else(|| ch.config.clone());
            check_config(&mut check, &kind, &mut config);
            check.finish().map_err(crate::people::PeopleError::Validation)?;
            ch.kind = kind;
            ch.config = config;
            if let Some(n) = name {
                ch.name = n;
            }
            if let Some(a) = active {
                ch.active = a;
            }
            if let Some(e) = events {
                ch.events = e;
            }
            Ok(())
        })
    })
    .await?;
    Ok(ok(StatusCode::OK, ChannelJson::of(&channel)))
}

async fn delete(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, NotificationChannel::NAME)?;
    blocking(&state, move |p| p.delete::<NotificationChannel>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, said::OK))
}
