//! Streams: kiosk sessions over WebSocket and cameras, on the same inference
//! pool and gallery as the REST API.

pub mod camera;
pub mod events;
pub mod frame;
pub mod ws;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::metrics::Metrics;

/// The stream routes: kiosk sessions and the access-event feed.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::routes::documented;
    cfg.route(documented("/v1/stream"), web::get().to(ws::stream))
        .route(documented("/v1/events"), web::get().to(events::feed));
}

/// An error before the WebSocket upgrade, in the Passwordless envelope
/// `{"code", "message", "requestId"}` (streams belong to that API).
#[derive(Debug)]
pub struct StreamError {
    status: StatusCode,
    message: String,
    request_id: String,
}

impl StreamError {
    pub fn new(req: &HttpRequest, status: StatusCode, message: impl Into<String>) -> StreamError {
        let id = req.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::trim);
        let request_id =
            id.filter(|h| !h.is_empty() && h.len() <= 128).map_or_else(crate::util::uuid_v4, str::to_string);
        StreamError { status, message: message.into(), request_id }
    }
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl actix_web::ResponseError for StreamError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).insert_header(("Request-Id", self.request_id.as_str())).json(
            serde_json::json!({"code": self.status.as_u16(), "message": self.message, "requestId": self.request_id}),
        )
    }
}

/// The status code a stream reports for a service error (the Passwordless table).
pub fn code_of(e: &crate::service::ServiceError) -> u16 {
    use crate::service::ErrorKind;
    match e.kind() {
        ErrorKind::Invalid => 400,
        ErrorKind::NotFound => 404,
        ErrorKind::Conflict => 409,
        ErrorKind::Busy => 503,
        ErrorKind::Internal => 500,
    }
}

/// The caller's company: the key in the Authorization header (`Bearer <key>`
/// or bare), or in `?key=` (browsers cannot set headers on a WebSocket).
pub fn company(state: &AppState, req: &HttpRequest) -> Result<String, StreamError> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    let from_query;
    let presented = match header {
        Some(h) => Some(h),
        None => {
            from_query = web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.get("key").cloned());
            from_query.as_deref()
        }
    };
    state
        .keys
        .authenticate(presented, crate::util::now_ns(), crate::auth::Api::Passwordless)
        .map(str::to_string)
        .map_err(|f| {
            let status = match f {
                crate::auth::AuthFailure::Forbidden => StatusCode::FORBIDDEN,
                _ => StatusCode::UNAUTHORIZED,
            };
            StreamError::new(req, status, f.message())
        })
}

/// A source's mailbox: the newest unprocessed frame only. A frame that
/// arrives while another waits replaces it; the replaced one, and any frame
/// the inference pool refuses, is counted as dropped (here and in the
/// source's metrics). One reader waits on `ready`.
pub struct Newest<T> {
    item: Mutex<Option<T>>,
    pub ready: tokio::sync::Notify,
    dropped: AtomicU64,
    metrics: Arc<Metrics>,
    source: String,
}

impl<T> Newest<T> {
    pub fn new(metrics: Arc<Metrics>, source: &str) -> Newest<T> {
        Newest {
            item: Mutex::new(None),
            ready: tokio::sync::Notify::new(),
            dropped: AtomicU64::new(0),
            metrics,
            source: source.to_string(),
        }
    }

    /// Keeps `item` as the newest frame.
    pub fn put(&self, item: T) {
        self.metrics.frames(&self.source, |c| c.received += 1);
        let replaced = self.item.lock().unwrap_or_else(std::sync::PoisonError::into_inner).replace(item);
        if replaced.is_some() {
            self.count_drop();
        }
        self.ready.notify_one();
    }

    pub fn take(&self) -> Option<T> {
        self.item.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }

    /// Counts a frame dropped unprocessed (replaced, or refused by a full pool).
    pub fn count_drop(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        self.metrics.frames(&self.source, |c| c.dropped += 1);
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
