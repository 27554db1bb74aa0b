//! The access-event feed `GET /v1/events`: each caller sees its own
//! company's access events (from `notify::Hub`) as they happen.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::AggregatedMessage;
use tokio::sync::broadcast;

use super::{StreamError, company};
use crate::app::AppState;

/// `GET /v1/events`: the caller's company's access events as they happen.
pub async fn feed(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, StreamError> {
    let company = company(&state, &req)?;
    let (response, mut session, messages) = actix_ws::handle(&req, body).map_err(|e| {
        StreamError::new(&req, actix_web::http::StatusCode::BAD_REQUEST, format!("not a WebSocket upgrade: {e}"))
    })?;
    let mut messages = messages.max_frame_size(4096).aggregate_continuations();
    let mut rx = state.events.subscribe();
    let timeout = Duration::from_secs_f32(state.config.stream.send_timeout_s.max(0.1));
    actix_web::rt::spawn(async move {
        loop {
            tokio::select! {
                msg = messages.recv() => match msg {
                    Some(Ok(AggregatedMessage::Ping(p))) => { let _ = session.pong(&p).await; }
                    Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                event = rx.recv() => match event {
                    Ok(e) if e["companyId"] == company.as_str() => {
                        if !matches!(tokio::time::timeout(timeout, session.text(e.to_string())).await, Ok(Ok(()))) {
                            break;
                        }
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
