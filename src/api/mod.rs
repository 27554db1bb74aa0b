//! HTTP: the REST APIs on actix-web, one module per API family
//! (`passwordless`, `people/`), each with its own error envelope (spec
//! §1.4). Handlers parse and check the request, call the services of
//! `app::AppState`, and shape the answer; they never run models themselves
//! (the inference pool does). Unknown routes are answered in the envelope of
//! the API their path belongs to.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

pub mod fields;
pub mod openapi;
mod passwordless;
pub mod people;

use crate::app::AppState;
use crate::auth::Api;
use crate::service::{ErrorKind, ServiceError};
use crate::util;

/// Per-request facts: the id to echo and when the request arrived.
pub struct Ctx {
    pub request_id: String,
    pub event_id: String,
    pub started: Instant,
}

impl Ctx {
    pub fn new(req: &HttpRequest) -> Ctx {
        let header = req.headers().get("request-id").and_then(|v| v.to_str().ok()).map(str::trim);
        match header.filter(|h| !h.is_empty() && h.len() <= 128) {
            Some(id) => Ctx { request_id: id.to_string(), event_id: util::uuid_v4(), started: Instant::now() },
            None => {
                let id = util::uuid_v4();
                Ctx { request_id: id.clone(), event_id: id, started: Instant::now() }
            }
        }
    }

    /// Whole milliseconds since the request arrived.
    pub fn process_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn fail(&self, status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into(), request_id: self.request_id.clone() }
    }

    pub fn ok<T: Serialize>(&self, body: &T) -> HttpResponse {
        HttpResponse::Ok().insert_header(("Request-Id", self.request_id.as_str())).json(body)
    }

    pub fn service_error(&self, e: ServiceError) -> ApiError {
        self.fail(status_of(&e), e.to_string())
    }
}

/// The Passwordless status of a service error (validation: 400, spec §1.5).
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e.kind() {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Invalid => StatusCode::BAD_REQUEST,
    }
}

/// An error answer in the Passwordless envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub request_id: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        r.insert_header(("Request-Id", self.request_id.as_str()));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            r.insert_header(("Retry-After", "1"));
        }
        r.json(serde_json::json!({"code": self.status.as_u16(), "message": self.message, "requestId": self.request_id}))
    }
}

/// Checks the Passwordless key (`Authorization: Bearer <key>` or the bare key); returns the caller's company.
pub fn authenticate(state: &AppState, req: &HttpRequest, ctx: &Ctx) -> Result<String, ApiError> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    state.keys.authenticate(header, util::now_ns(), Api::Passwordless).map(str::to_string).map_err(|f| {
        let status = match f {
            crate::auth::AuthFailure::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        };
        ctx.fail(status, f.message())
    })
}

/// Why a body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// 415: the content type is not the one required.
    ContentType(String),
    /// 413.
    TooLarge(usize),
    /// 408.
    Timeout(f32),
    /// 400: the connection broke.
    Broken(String),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::ContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(&self) -> String {
        match self {
            BodyError::ContentType(got) => format!("Content-Type must be application/json, got {got:?}"),
            BodyError::TooLarge(max) => format!("request body exceeds {max} bytes"),
            BodyError::Timeout(s) => format!("the body did not arrive within {s} s"),
            BodyError::Broken(e) => format!("cannot read the body: {e}"),
        }
    }
}

/// The media type of the request, lower-cased, without parameters.
pub fn mime(req: &HttpRequest) -> String {
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// Reads a whole body of at most `max` bytes within `server.body_timeout_s`;
/// a declared length over `max` is refused before anything is read.
pub async fn read_body(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
    max: usize,
) -> Result<web::Bytes, BodyError> {
    let declared =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge(max));
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(max));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| BodyError::Broken(e.to_string()))?;
            if body.len() + chunk.len() > max {
                return Err(BodyError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    let seconds = state.config.server.body_timeout_s;
    tokio::time::timeout(Duration::from_secs_f32(seconds.max(0.1)), read)
        .await
        .map_err(|_| BodyError::Timeout(seconds))?
}

/// Reads a Passwordless JSON body: `application/json` only, at most
/// `server.max_body` bytes, within `server.body_timeout_s`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    ctx: &Ctx,
) -> Result<T, ApiError> {
    let mime = mime(req);
    if mime != "application/json" {
        let got = if mime.is_empty() { "nothing".to_string() } else { mime };
        return Err(ctx.fail(StatusCode::UNSUPPORTED_MEDIA_TYPE, BodyError::ContentType(got).message()));
    }
    let body = read_body(state, req, payload, state.config.server.max_body)
        .await
        .map_err(|e| ctx.fail(e.status(), e.message()))?;
    if body.is_empty() {
        return Err(ctx.fail(StatusCode::BAD_REQUEST, "the request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(&body).map_err(|e| ctx.fail(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

/// The API family a path belongs to (spec §1.1), after the base path.
fn family(path: &str) -> Api {
    let people = [
        "/api/v1/catalogs",
        "/api/v1/people-groups",
        "/api/v1/people",
        "/api/v1/addresses",
        "/api/v1/biometrics",
        "/api/v1/person-contacts",
        "/api/v1/person-references",
        "/api/v1/validations",
        "/api/v1/validation-results",
        "/api/v1/files",
        "/api/v1/notification-channels",
    ];
    let workflows = [
        "/api/v1/workflows",
        "/api/v1/step-types",
        "/api/v1/steps",
        "/api/v1/workflow-templates",
        "/api/v1/template-bindings",
        "/api/v1/expressions",
        "/api/v1/knockout-rules",
        "/api/v1/rule-sets",
        "/api/v1/customizations",
    ];
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if people.iter().any(|p| under(p)) {
        Api::People
    } else if workflows.iter().any(|p| under(p)) {
        Api::Workflows
    } else if path.starts_with("/identity/") {
        Api::Sessions
    } else if [
        "/api/verificacion-documentos",
        "/api/listas-sanciones",
        "/api/validacion-curps",
        "/api/validacion-emails",
        "/api/identidad",
    ]
    .iter()
    .any(|p| under(p))
    {
        Api::Identity
    } else {
        Api::Passwordless
    }
}

/// Unknown routes: 404 in the envelope of the API the path belongs to.
pub async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let path = req.path().strip_prefix(state.config.server.base_path.as_str()).unwrap_or(req.path());
    let message = format!("no route for {} {}", req.method(), req.path());
    match family(path) {
        Api::People | Api::Workflows => {
            actix_web::ResponseError::error_response(&people::PeopleApiError::new(StatusCode::NOT_FOUND, message))
        }
        Api::Sessions => HttpResponse::NotFound()
            .json(serde_json::json!({"errors": [{"type": "not_found", "code": "not_found", "message": message}]})),
        Api::Identity => HttpResponse::NotFound().json(serde_json::json!({"errors": [{
            "type": "not_found", "code": "not_found", "message": message, "href": ""}]})),
        Api::Passwordless => {
            actix_web::ResponseError::error_response(&Ctx::new(&req).fail(StatusCode::NOT_FOUND, message))
        }
    }
}

async fn health(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.service.engine().stats();
    HttpResponse::Ok().json(serde_json::json!({
        "status": "ok",
        "galleryFaces": state.service.gallery_size(),
        "inferenceAccepted": stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
        "inferenceRefused": stats.refused.load(std::sync::atomic::Ordering::Relaxed),
    }))
}

/// The kiosk page: camera, frames over the WebSocket, answers drawn live.
async fn kiosk() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../web/kiosk.html"))
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let stats = state.service.engine().stats();
    let store = state.records.commit_stats();
    let text = state.metrics.render(&crate::metrics::Scrape {
        gallery_faces: state.service.gallery_size(),
        inference_accepted: stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
        inference_refused: stats.refused.load(std::sync::atomic::Ordering::Relaxed),
        store_writes: store.writes,
        store_flushes: store.flushes,
        store_flush_seconds: store.flush_seconds,
    });
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

/// The REST routes and the operational pages (health, metrics, kiosk).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::routes::documented;
    cfg.route(documented("/health"), web::get().to(health))
        .route(documented("/metrics"), web::get().to(metrics))
        .route(documented("/kiosk"), web::get().to(kiosk))
        .route(documented("/openapi.json"), web::get().to(openapi::openapi_json))
        .route(documented("/docs"), web::get().to(openapi::docs_page))
        .route(documented("/docs/{file}"), web::get().to(openapi::docs_asset))
        .configure(passwordless::routes)
        .configure(people::routes);
}
