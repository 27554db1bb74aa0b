//! HTTP: the Passwordless API (spec §6) on actix-web. Handlers parse and
//! check the request, call the [`Service`], and shape the answer; they
//! never run models themselves (the inference pool does).
//!
//! Errors use the Passwordless envelope `{"code", "message", "requestId"}`
//! (spec §1.4), for unknown routes too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

mod auth;
mod passwordless;

pub use auth::{ApiKey, AuthConfig, KeyRegistry, parse_key_list};

use crate::service::{Service, ServiceError};
use crate::util;

/// The `[server]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub bind: String,
    pub base_path: String,
    pub http_workers: usize,
    pub inference_workers: usize,
    pub queue: usize,
    pub max_body: usize,
    pub body_timeout_s: f32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            base_path: String::new(),
            http_workers: 2,
            inference_workers: 1,
            queue: 16,
            max_body: 15 * 1024 * 1024,
            body_timeout_s: 30.0,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub service: Service,
    pub keys: KeyRegistry,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub events: crate::stream::events::Hub,
}

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

/// The HTTP status of a service error.
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        ServiceError::Conflict(_) => StatusCode::CONFLICT,
        ServiceError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
        ServiceError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        ServiceError::Video(crate::video::VideoError::Setup(_) | crate::video::VideoError::Timeout(_)) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        ServiceError::Invalid(_) | ServiceError::Image(_) | ServiceError::Video(_) | ServiceError::Capture(_) => {
            StatusCode::BAD_REQUEST
        }
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

/// Checks the key; returns the caller's company.
pub fn authenticate(state: &AppState, req: &HttpRequest, ctx: &Ctx) -> Result<String, ApiError> {
    let header = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    state
        .keys
        .authenticate(header, util::now_ns())
        .map(str::to_string)
        .map_err(|f| ctx.fail(StatusCode::UNAUTHORIZED, f.message()))
}

/// Reads a JSON body: `application/json` only, at most `server.max_body`
/// bytes, within `server.body_timeout_s`.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    mut payload: web::Payload,
    ctx: &Ctx,
) -> Result<T, ApiError> {
    let server = &state.service.config().server;
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ctx.fail(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, got {:?}", if mime.is_empty() { "nothing" } else { mime }),
        ));
    }
    let too_large =
        || ctx.fail(StatusCode::PAYLOAD_TOO_LARGE, format!("request body exceeds {} bytes", server.max_body));
    let declared =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > server.max_body) {
        return Err(too_large());
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(0).min(server.max_body));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ctx.fail(StatusCode::BAD_REQUEST, format!("cannot read the body: {e}")))?;
            if body.len() + chunk.len() > server.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    let timeout = Duration::from_secs_f32(server.body_timeout_s.max(0.1));
    let body = tokio::time::timeout(timeout, read).await.map_err(|_| {
        ctx.fail(StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {} s", server.body_timeout_s))
    })??;
    if body.is_empty() {
        return Err(ctx.fail(StatusCode::BAD_REQUEST, "the request body is empty; a JSON object is required"));
    }
    serde_json::from_slice(&body).map_err(|e| ctx.fail(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx::new(&req);
    Err(ctx.fail(StatusCode::NOT_FOUND, format!("no route for {} {}", req.method(), req.path())))
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
    let text = state.metrics.render(
        state.service.gallery_size(),
        stats.accepted.load(std::sync::atomic::Ordering::Relaxed),
        stats.refused.load(std::sync::atomic::Ordering::Relaxed),
    );
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text)
}

/// Registers every route under `base_path`.
pub fn configure(state: web::Data<AppState>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let base = state.service.config().server.base_path.clone();
        cfg.app_data(state).service(
            web::scope(&base)
                .route("/health", web::get().to(health))
                .route("/metrics", web::get().to(metrics))
                .route("/kiosk", web::get().to(kiosk))
                .route("/v1/stream", web::get().to(crate::stream::ws::stream))
                .route("/v1/events", web::get().to(crate::stream::events::feed))
                .configure(passwordless::routes)
                .default_service(web::to(not_found)),
        );
    }
}

/// Runs the HTTP server until SIGINT/SIGTERM, then flushes the store.
pub async fn serve(state: AppState, on_ready: impl FnOnce(std::net::SocketAddr)) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let server_config = state.service.config().server.clone();
    let data = state.clone();
    let server = actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(data.clone())))
        .workers(server_config.http_workers.max(1))
        .client_request_timeout(Duration::from_secs(10))
        .shutdown_timeout(30)
        .bind(&server_config.bind)?;
    // Cameras and webhooks run on this (the main) actix system, beside the HTTP workers.
    let events = &state.service.config().events;
    for hook in &events.webhooks {
        crate::stream::events::start_webhook(&state.events, hook.clone(), events.attempts);
    }
    let mut cameras = Vec::new();
    for camera in &state.service.config().cameras {
        cameras.push(
            crate::stream::camera::start(state.clone().into_inner(), camera.clone()).map_err(std::io::Error::other)?,
        );
    }
    if let Some(addr) = server.addrs().first() {
        on_ready(*addr);
    }
    server.run().await?;
    drop(cameras);
    state.service.store().flush().map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}

/// The app state for `config`: opens the store, loads the models, rebuilds the gallery.
pub fn build_state(
    config: Arc<crate::config::Config>,
    files: &crate::vision::ModelFiles,
) -> anyhow::Result<(AppState, crate::service::LoadReport)> {
    let store = crate::store::SledStore::open(&config.store)?;
    let engine =
        crate::engine::Engine::start(files, &config.vision, config.server.inference_workers, config.server.queue)?;
    let (service, report) = Service::start(Arc::new(store), engine, config.clone())?;
    Ok((
        AppState { service, keys: KeyRegistry::new(&config.auth), metrics: Arc::default(), events: Default::default() },
        report,
    ))
}
