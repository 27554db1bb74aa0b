//! Streams: kiosk sessions over WebSocket and cameras, on the same inference
//! pool and gallery as the REST API.

mod config;
pub mod frame;
pub mod session;
pub mod ws;

pub use config::StreamConfig;
