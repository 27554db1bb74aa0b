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
