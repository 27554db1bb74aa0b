//! The WebSocket endpoint `GET /v1/stream` (docs/ws-protocol.md). One task
//! reads the socket and keeps only the newest unprocessed frame (a newer one
//! replaces it, and the replaced one is counted as dropped); another takes
//! that frame to the inference pool, matches it, and answers. Latency stays
//! bounded by one frame in flight per session, whatever the client sends.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::Newest;
use super::frame::{self, FrameAnalysis, FrameInput, FrameLane};
use super::{StreamError, company};
use crate::app::AppState;
use crate::biometrics::session::{Mode, Observation, Outcome, SessionLogic};
use crate::metrics::Stage;
use crate::service::{Media, NewUser};

const SOURCE: &str = "ws";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewUserMsg {
    full_name: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Start {
    #[serde(rename = "type")]
    kind: String,
    mode: Mode,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    user: Option<NewUserMsg>,
    #[serde(default)]
    continuous: bool,
    #[serde(default)]
    format: Option<String>,
}

/// A frame waiting for the processor: arrival order, arrival time, the frame.
struct Pending {
    seq: u64,
    at: Instant,
    input: FrameInput,
}

/// A session's mailbox: its newest unprocessed frame, and why an encoded stream failed.
struct Slot {
    frames: Newest<Pending>,
    /// Set when an encoded stream cannot be decoded.
    error: Mutex<Option<String>>,
}

pub async fn stream(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
    frames: web::Data<FrameLane>,
) -> Result<HttpResponse, StreamError> {
    let company = company(&state, &req)?;
    let (response, session, messages) = actix_ws::handle(&req, body).map_err(|e| {
        StreamError::new(&req, actix_web::http::StatusCode::BAD_REQUEST, format!("not a WebSocket upgrade: {e}"))
    })?;
    let max = state.config.stream.max_frame_bytes;
    let messages = messages.max_frame_size(max).aggregate_continuations().max_continuation_size(max);
    actix_web::rt::spawn(run(state.into_inner(), frames.into_inner(), company, session, messages));
    Ok(response)
}

fn close(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason { code, description: Some(description.to_string()) })
}

/// Sends `msg`, or gives up on a client that has not read for `send_timeout_s`.
async fn send(state: &AppState, session: &mut actix_ws::Session, msg: &Value) -> bool {
    let timeout = Duration::from_secs_f32(state.config.stream.send_timeout_s.max(0.1));
    match tokio::time::timeout(timeout, session.text(msg.to_string())).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            state.metrics.slow_clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }
}

async fn run(
    state: Arc<AppState>,
    frames: Arc<FrameLane>,
    company: String,
    mut session: actix_ws::Session,
    mut messages: actix_ws::AggregatedMessageStream,
) {
    let metrics = state.metrics.clone();
    metrics.sessions.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    metrics.sessions_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let reason = serve_session(&state, frames, &company, &mut session, &mut messages).await;
    metrics.sessions.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    let _ = session.close(reason).await;
}

/// Reads the start message, then frames, until a decision, a close or an error.
async fn serve_session(
    state: &Arc<AppState>,
    frames: Arc<FrameLane>,
    company: &str,
    session: &mut actix_ws::Session,
    messages: &mut actix_ws::AggregatedMessageStream,
) -> Option<CloseReason> {
    let config = state.config.stream.clone();
    let idle = Duration::from_secs_f32(config.idle_timeout_s.max(0.1));
    let error = |code: u16, message: String| json!({"type": "error", "code": code, "message": message});
    // 1. The start message.
    let start = loop {
        match tokio::time::timeout(idle, messages.recv()).await {
            Err(_) => return close(CloseCode::Policy, "no start message"),
            Ok(None) => return None,
            Ok(Some(Ok(AggregatedMessage::Text(text)))) => match serde_json::from_str::<Start>(&text) {
                Ok(s) if s.kind == "start" => break s,
                Ok(s) => {
                    send(state, session, &error(400, format!("expected a start message, got type {:?}", s.kind))).await;
                    return close(CloseCode::Policy, "bad start message");
                }
                Err(e) => {
                    send(state, session, &error(400, format!("invalid start message: {e}"))).await;
                    return close(CloseCode::Policy, "bad start message");
                }
            },
            Ok(Some(Ok(AggregatedMessage::Ping(p)))) => {
                let _ = session.pong(&p).await;
            }
            Ok(Some(Ok(AggregatedMessage::Close(_)))) => return None,
            Ok(Some(Ok(_))) => {
                send(state, session, &error(400, "the first message must be a JSON start message".into())).await;
                return close(CloseCode::Policy, "no start message");
            }
            Ok(Some(Err(e))) => return protocol_error(state, session, e).await,
        }
    };
    let encoded = match start.format.as_deref() {
        None | Some("jpeg" | "image") => None,
        Some(f @ ("webm" | "h264")) => Some(f.to_string()),
        Some(f) => {
            let message = format!("format {f:?} is not supported: send JPEG/PNG frames, or a webm or h264 stream");
            send(state, session, &error(400, message)).await;
            return close(CloseCode::Unsupported, "unsupported format");
        }
    };
    let target = match (&start.mode, &start.user_id, &start.user) {
        (Mode::Verify, Some(id), _) => match state.service.user_record(company, id).await {
            Ok(Some(_)) => Some(id.clone()),
            Ok(None) => {
                send(state, session, &error(404, format!("user {id} not found"))).await;
                return close(CloseCode::Policy, "unknown user");
            }
            Err(e) => {
                send(state, session, &error(500, e.to_string())).await;
                return close(CloseCode::Error, "internal error");
            }
        },
        (Mode::Verify, None, _) => {
            send(state, session, &error(400, "verify needs userId".into())).await;
            return close(CloseCode::Policy, "bad start message");
        }
        (Mode::Enroll, _, None) => {
            send(state, session, &error(400, "enroll needs user {fullName, email?, externalId?}".into())).await;
            return close(CloseCode::Policy, "bad start message");
        }
        _ => None,
    };
    let session_id = crate::util::uuid_v4();
    let ready = json!({"type": "ready", "session": session_id, "mode": start.mode.name(), "decideFrames": config.decide_frames,
        "threshold": state.service.threshold()});
    if !send(state, session, &ready).await {
        return None;
    }
    // 2. Frames: this task reads; the processor answers.
    let slot = Arc::new(Slot { frames: Newest::new(state.metrics.clone(), SOURCE), error: Mutex::default() });
    let done = Arc::new(Notify::new());
    let processor = {
        let (state, company, slot, done, session) =
            (state.clone(), company.to_string(), slot.clone(), done.clone(), session.clone());
        let new_user =
            start.user.map(|u| NewUser { full_name: u.full_name, email: u.email, external_id: u.external_id });
        actix_web::rt::spawn(async move {
            let user = frames.join();
            let reason =
                process(state, &frames, company, start.mode, target, new_user, start.continuous, slot, session).await;
            drop(user);
            done.notify_one();
            reason
        })
    };
    // An encoded stream: chunks go to a GStreamer decoder whose frames land in the slot.
    let decoder = match &encoded {
        None => None,
        Some(format) => {
            let (on_frame_slot, on_error_slot) = (slot.clone(), slot.clone());
            let mut n = 0u64;
            let on_frame = move |img| {
                n += 1;
                on_frame_slot.frames.put(Pending { seq: n, at: Instant::now(), input: FrameInput::Pixels(img) });
            };
            let on_error = move |e: String| {
                *on_error_slot.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                on_error_slot.frames.ready.notify_one();
            };
            match crate::video::StreamDecoder::start(format, state.config.video.max_side, on_frame, on_error) {
                Ok(d) => Some(d),
                Err(e) => {
                    processor.abort();
                    send(state, session, &error(500, format!("cannot start the {format} decoder: {e}"))).await;
                    return close(CloseCode::Error, "decoder");
                }
            }
        }
    };
    let mut seq = 0u64;
    let reason = loop {
        tokio::select! {
            _ = done.notified() => break None,
            msg = tokio::time::timeout(idle, messages.recv()) => match msg {
                Err(_) => break close(CloseCode::Policy, "idle"),
                Ok(None) | Ok(Some(Ok(AggregatedMessage::Close(_)))) => break None,
                Ok(Some(Ok(AggregatedMessage::Binary(bytes)))) => match &decoder {
                    Some(d) => {
                        if let Err(e) = d.push(&bytes) {
                            send(state, session, &error(400, e.to_string())).await;
                            break close(CloseCode::Invalid, "undecodable stream");
                        }
                    }
                    None => {
                        seq += 1;
                        slot.frames.put(Pending { seq, at: Instant::now(), input: FrameInput::Encoded(bytes.to_vec()) });
                    }
                },
                Ok(Some(Ok(AggregatedMessage::Text(text)))) => {
                    if serde_json::from_str::<Value>(&text).ok().and_then(|v| v.get("type").cloned()) == Some(json!("stop")) {
                        break close(CloseCode::Normal, "stopped by the client");
                    }
                    if !send(state, session, &error(400, "after start, send frames as binary messages or {\"type\":\"stop\"}".into())).await {
                        break None;
                    }
                }
                Ok(Some(Ok(AggregatedMessage::Ping(p)))) => { let _ = session.pong(&p).await; }
                Ok(Some(Ok(AggregatedMessage::Pong(_)))) => {}
                Ok(Some(Err(e))) => break protocol_error(state, session, e).await,
            }
        }
    };
    drop(decoder);
    processor.abort();
    match processor.await {
        Ok(r) => r.or(reason),
        Err(_) => reason,
    }
}

async fn protocol_error(
    state: &AppState,
    session: &mut actix_ws::Session,
    e: actix_ws::ProtocolError,
) -> Option<CloseReason> {
    let (code, close_code) = match e {
        actix_ws::ProtocolError::Overflow => (413, CloseCode::Size),
        _ => (400, CloseCode::Protocol),
    };
    let max = state.config.stream.max_frame_bytes;
    let message = match code {
        413 => format!("message larger than {max} bytes"),
        _ => format!("WebSocket protocol error: {e}"),
    };
    send(state, session, &json!({"type": "error", "code": code, "message": message})).await;
    close(close_code, &message)
}

/// The processor: takes the newest frame, runs it, answers, decides.
#[allow(clippy::too_many_arguments)]
async fn process(
    state: Arc<AppState>,
    frames: &FrameLane,
    company: String,
    mode: Mode,
    target: Option<String>,
    new_user: Option<NewUser>,
    continuous: bool,
    slot: Arc<Slot>,
    mut session: actix_ws::Session,
) -> Option<CloseReason> {
    let service = &state.service;
    let metrics = &state.metrics;
    let config = state.config.clone();
    let mut logic = SessionLogic::new(mode.clone(), config.stream.clone(), service.threshold());
    let reuse = matches!(mode, Mode::Identify | Mode::Verify);
    let mut planner = frame::Planner::new(mode.needs_embedding(), reuse, &config.stream);
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    let mut best_frame: Option<Vec<u8>> = None;
    let started = Instant::now();
    loop {
        slot.frames.ready.notified().await;
        let failed = slot.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(e) = failed {
            send(&state, &mut session, &json!({"type": "error", "code": 400, "message": format!("video stream: {e}")}))
                .await;
            return close(CloseCode::Invalid, "undecodable stream");
        }
        let Some(p) = slot.frames.take() else { continue };
        let limits = config.decode;
        // An enrolment keeps its best frame: the JPEG as sent, or the decoded pixels.
        let (bytes_for_enrol, keep) = match (&p.input, &mode) {
            (FrameInput::Encoded(b), Mode::Enroll) => (Some(b.clone()), false),
            (FrameInput::Pixels(_), Mode::Enroll) => (None, true),
            _ => (None, false),
        };
        let (seq, at) = (p.seq, p.at);
        let plan = planner.plan(keep);
        let job = frames.submit(frame::FrameJob { input: p.input, plan, limits });
        let result: Result<FrameAnalysis, (u16, String)> = match job.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(message)) => Err((400, format!("frame {}: {message}", seq))),
            Err(crate::engine::EngineError::Busy(_)) => {
                // No worker free: this frame is dropped like a stale one.
                slot.frames.count_drop();
                continue;
            }
            Err(e) => Err((503, e.to_string())),
        };
        let mut analysis = match result {
            Ok(a) => a,
            Err((code, message)) => {
                metrics.frames(SOURCE, |c| c.processed += 1);
                if !send(&state, &mut session, &json!({"type": "error", "code": code, "seq": seq, "message": message}))
                    .await
                {
                    return None;
                }
                continue;
            }
        };
        metrics.frames(SOURCE, |c| {
            c.processed += 1;
            c.embedded += analysis.embedding.is_some() as u64;
            c.batched += (analysis.batch > 1) as u64;
        });
        // Waiting: everything between arrival and the result but the worker's own stages.
        let lat = &mut analysis.latency;
        lat.queue = (at.elapsed().as_secs_f64() * 1e3 - lat.decode - lat.detect - lat.liveness - lat.embed).max(0.0);
        let t = Instant::now();
        let best = planner.observe(&analysis, |e| {
            service.search(&company, e.as_slice(), 1, true, target.as_deref()).ok().and_then(|h| h.into_iter().next())
        });
        analysis.latency.search = t.elapsed().as_secs_f64() * 1e3;
        analysis.latency.total = at.elapsed().as_secs_f64() * 1e3;
        let quality = analysis.primary.map_or(0.0, |i| analysis.faces[i].quality.score);
        let (signals, outcome) = logic.observe(Observation {
            faces: analysis.faces.len(),
            features: analysis.features.clone(),
            embedding: analysis.embedding.as_ref(),
            best: best.clone(),
            quality,
        });
        if logic.latest_is_best {
            best_frame = bytes_for_enrol.or_else(|| analysis.image.take().map(|img| crate::service::jpeg(&img, 95)));
        }
        let mut matched = Value::Null;
        if let Some((user, score)) = &best {
            if !names.contains_key(user)
                && let Ok(Some(u)) = service.user_record(&company, user).await
            {
                names.insert(user.clone(), u.full_name);
            }
            matched = json!({"userId": user, "fullName": names.get(user), "score": score,
                "matched": *score >= service.threshold()});
        }
        for (stage, ms) in [
            (Stage::Queue, analysis.latency.queue),
            (Stage::Decode, analysis.latency.decode),
            (Stage::Detect, analysis.latency.detect),
            (Stage::Liveness, analysis.latency.liveness),
            (Stage::Embed, analysis.latency.embed),
            (Stage::Search, analysis.latency.search),
            (Stage::Total, analysis.latency.total),
        ] {
            metrics.observe(stage, ms);
        }
        let result = json!({
            "type": "frame",
            "seq": seq,
            "dropped": slot.frames.dropped(),
            "width": analysis.width,
            "height": analysis.height,
            "faces": analysis.faces,
            "primary": analysis.primary,
            "liveness": {"model": analysis.features.as_ref().map(|f| f.model), "signals": signals},
            "match": matched,
            "embedded": analysis.embedding.is_some(),
            "batch": analysis.batch,
            "latencyMs": analysis.latency,
        });
        if !send(&state, &mut session, &result).await {
            return None;
        }
        let Some(outcome) = outcome else { continue };
        let mut decision = json!({
            "type": "decision",
            "decision": outcome.name(&mode),
            "seq": seq,
            "liveness": signals,
            "elapsedMs": started.elapsed().as_secs_f64() * 1e3,
        });
        match &outcome {
            Outcome::Matched { user, score } => {
                decision["userId"] = json!(user);
                decision["fullName"] = json!(names.get(user));
                decision["score"] = json!(score);
            }
            Outcome::NoMatch { score } => decision["score"] = json!(score),
            Outcome::Capture => {
                let (Some(new), Some(jpeg)) = (new_user.clone(), best_frame.take()) else {
                    return close(CloseCode::Error, "no frame to enrol");
                };
                match service.enroll(&company, new, Media::Image(jpeg)).await {
                    Ok((user, _)) => {
                        decision["userId"] = json!(user.id);
                        decision["fullName"] = json!(user.full_name);
                    }
                    Err(e) => {
                        let code = super::code_of(&e);
                        send(&state, &mut session, &json!({"type": "error", "code": code, "message": e.to_string()}))
                            .await;
                        return close(CloseCode::Policy, "enrolment refused");
                    }
                }
            }
            _ => {}
        }
        metrics.decision(mode.name(), outcome.name(&mode));
        if !send(&state, &mut session, &decision).await {
            return None;
        }
        if !continuous || mode == Mode::Enroll {
            return close(CloseCode::Normal, outcome.name(&mode));
        }
        logic.reset();
    }
}
