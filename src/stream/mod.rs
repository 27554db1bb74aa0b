//! Streams: kiosk sessions over WebSocket and cameras, on the same inference
//! pool and gallery as the REST API.

pub mod camera;
mod config;
pub mod events;
pub mod frame;
pub mod session;
pub mod tracker;
pub mod ws;

pub use camera::CameraConfig;
pub use config::StreamConfig;
pub use events::{EventsConfig, Webhook};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

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
