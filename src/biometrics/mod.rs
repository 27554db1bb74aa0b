//! Biometric decisions and how well they are made (no HTTP types here).

pub mod capture;
pub mod metrics;
pub mod pad;
pub mod session;
pub mod simulate;
pub mod stream_config;
pub mod temporal;
pub mod tracker;

pub use stream_config::StreamConfig;
