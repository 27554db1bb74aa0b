//! The HTTP server: one actix-web app mounting the REST APIs (`api/`) and
//! the streams (`stream/`) under `server.base_path`, unknown routes answered
//! in the envelope of the API their path belongs to; cameras and webhooks
//! start beside it; SIGINT/SIGTERM drains requests, then flushes the store.

use std::time::Duration;

use actix_web::web;

use crate::app::AppState;
use crate::stream::frame::FrameLane;

/// Registers every route under `base_path`.
pub fn configure(state: web::Data<AppState>, frames: web::Data<FrameLane>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let base = state.config.server.base_path.clone();
        cfg.app_data(state).app_data(frames).service(
            web::scope(&base)
                .configure(crate::api::routes)
                .configure(crate::stream::routes)
                .default_service(web::to(crate::api::not_found)),
        );
    }
}

/// Runs the HTTP server until SIGINT/SIGTERM, then flushes the store.
pub async fn serve(state: AppState, on_ready: impl FnOnce(std::net::SocketAddr)) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let server_config = state.config.server.clone();
    let data = state.clone();
    // One frame lane for every HTTP worker's sessions: frames batch across them.
    let frames = web::Data::new(crate::stream::frame::lane(state.service.engine(), &state.config.stream));
    let server =
        actix_web::HttpServer::new(move || actix_web::App::new().configure(configure(data.clone(), frames.clone())))
            .workers(server_config.http_workers.max(1))
            .client_request_timeout(Duration::from_secs(10))
            .shutdown_timeout(30)
            .bind(&server_config.bind)?;
    // Cameras and webhooks run on this (the main) actix system, beside the HTTP workers.
    state.queue.start()?;
    for hook in &state.config.events.webhooks {
        crate::notify::start_access_hook(&state.events, state.queue.clone(), hook.clone());
    }
    let mut cameras = Vec::new();
    for camera in &state.config.cameras {
        cameras.push(
            crate::stream::camera::start(state.clone().into_inner(), camera.clone()).map_err(std::io::Error::other)?,
        );
    }
    if let Some(addr) = server.addrs().first() {
        on_ready(*addr);
    }
    server.run().await?;
    drop(cameras);
    state.records.flush().map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(())
}
