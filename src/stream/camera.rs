//! Cameras: a GStreamer pipeline per camera (a template from
//! `gst-pipelines/`, filled with the camera's parameters) feeding the newest
//! frame to a loop that runs `identify` continuously with a face tracker and
//! publishes access events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use image::RgbImage;
use serde_json::json;

use super::Newest;
use crate::app::AppState;
use crate::biometrics::session::Outcome;
use crate::biometrics::tracker::Tracker;
use crate::metrics::Stage;
use crate::video::{CameraConfig, launch_line};

/// A camera's mailbox: its newest frame and when it arrived.
type Latest = Newest<(Instant, RgbImage)>;

/// A running camera; stops when dropped.
pub struct Camera {
    stop: Arc<AtomicBool>,
}

impl Drop for Camera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts capture (a thread) and analysis (a task on the current actix system).
pub fn start(state: Arc<AppState>, camera: CameraConfig) -> Result<Camera, String> {
    let line = launch_line(&camera)?;
    crate::video::init().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let source = format!("camera:{}", camera.id);
    let latest = Arc::new(Latest::new(state.metrics.clone(), &source));
    {
        let (stop, latest, camera) = (stop.clone(), latest.clone(), camera.clone());
        std::thread::Builder::new()
            .name(format!("camera-{}", camera.id))
            .spawn(move || capture(&line, &camera, &stop, &latest))
            .map_err(|e| e.to_string())?;
    }
    actix_web::rt::spawn(analyse(state, camera, latest, stop.clone(), source));
    Ok(Camera { stop })
}

/// Pulls frames until stopped; reconnects after errors (files end unless looped).
fn capture(line: &str, camera: &CameraConfig, stop: &AtomicBool, latest: &Latest) {
    while !stop.load(Ordering::Relaxed) {
        match run_pipeline(line, stop, latest) {
            Ok(()) if !camera.looped => {
                tracing::info!(camera = %camera.id, "camera: end of stream");
                return;
            }
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(camera = %camera.id, error = %e, "camera failed; retrying in 2 s");
                std::thread::sleep(Duration::from_secs(2));
            }
        }
    }
}

fn run_pipeline(line: &str, stop: &AtomicBool, latest: &Latest) -> Result<(), String> {
    let (running, sink, bus) = crate::video::launch(line).map_err(|e| e.to_string())?;
    running.0.set_state(gst::State::Playing).map_err(|e| format!("cannot start: {e}"))?;
    while !stop.load(Ordering::Relaxed) {
        if let Some(e) = crate::video::first_error(&bus) {
            return Err(e.to_string());
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(200)) else {
            if sink.is_eos() {
                return Ok(());
            }
            continue;
        };
        let Ok(img) = crate::video::sample_rgb(&sample, u32::MAX) else { continue };
        latest.put((Instant::now(), img));
    }
    Ok(())
}

/// Takes the newest frame, tracks and identifies faces on a worker, publishes events.
async fn analyse(
    state: Arc<AppState>,
    camera: CameraConfig,
    latest: Arc<Latest>,
    stop: Arc<AtomicBool>,
    source: String,
) {
    let config = state.config.clone();
    let mut tracker = Some(Tracker::new(config.stream.clone(), state.service.threshold()));
    let mut granted: HashMap<String, Instant> = HashMap::new();
    let min_gap = if camera.fps > 0.0 { Duration::from_secs_f32(1.0 / camera.fps) } else { Duration::ZERO };
    let mut last = Instant::now() - min_gap;
    while !stop.load(Ordering::Relaxed) {
        if tokio::time::timeout(Duration::from_millis(500), latest.ready.notified()).await.is_err() {
            continue;
        }
        let since = last.elapsed();
        if since < min_gap {
            tokio::time::sleep(min_gap - since).await;
        }
        let Some((arrived, img)) = latest.take() else { continue };
        last = Instant::now();
        let Some(mut t) = tracker.take() else { return };
        let (st, company) = (state.clone(), camera.company.clone());
        let job = state.service.engine().run(move |a| {
            let search = |e: &crate::vision::Embedding| {
                st.service.search(&company, e.as_slice(), 1, true, None).ok().and_then(|h| h.into_iter().next())
            };
            let updates = t.step(a, &img, &search);
            (t, updates)
        });
        let (t, updates) = match job.await {
            Ok(r) => r,
            Err(crate::engine::EngineError::Busy(_)) => {
                latest.count_drop();
                // The tracker went with the refused job; start a new one.
                tracker = Some(Tracker::new(config.stream.clone(), state.service.threshold()));
                continue;
            }
            Err(_) => return,
        };
        tracker = Some(t);
        state.metrics.frames(&source, |c| c.processed += 1);
        state.metrics.observe(Stage::Total, arrived.elapsed().as_secs_f64() * 1e3);
        let updates = match updates {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(camera = %camera.id, error = %e, "camera");
                continue;
            }
        };
        let embedded = updates.iter().filter(|u| u.embedded).count() as u64;
        state.metrics.frames(&source, |c| c.embedded += embedded);
        for u in updates {
            let Some(outcome) = u.outcome else { continue };
            let (decision, reason, user, score) = match &outcome {
                Outcome::Matched { user, score } => ("granted", "matched", Some(user.clone()), Some(*score)),
                Outcome::NoMatch { score } => ("denied", "unknown", None, Some(*score)),
                Outcome::Spoof => ("denied", "spoof", None, u.best.as_ref().map(|b| b.1)),
                _ => continue,
            };
            if let Some(user) = &user {
                let cooldown = Duration::from_secs_f32(config.events.cooldown_s.max(0.0));
                if granted.get(user).is_some_and(|t| t.elapsed() < cooldown) {
                    continue;
                }
                granted.insert(user.clone(), Instant::now());
            }
            let full_name = match &user {
                Some(id) => state.service.user_record(&camera.company, id).await.ok().flatten().map(|u| u.full_name),
                None => None,
            };
            state.metrics.event(decision);
            state.events.publish(json!({
                "type": "access",
                "id": crate::util::uuid_v4(),
                "decision": decision,
                "reason": reason,
                "camera": camera.id,
                "companyId": camera.company,
                "userId": user,
                "fullName": full_name,
                "score": score,
                "track": u.track,
                "box": u.bbox,
                "liveness": u.signals,
                "time": crate::util::rfc3339_ns(crate::util::now_ns()),
            }));
        }
    }
}
