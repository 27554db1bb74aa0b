//! Rostro: a real-time biometric edge service. This library holds all the
//! logic; `src/main.rs` is a thin command line over it.

pub mod api;
pub mod biometrics;
pub mod cli;
pub mod config;
pub mod decode;
pub mod engine;
pub mod gallery;
pub mod kiosk;
pub mod loadgen;
pub mod metrics;
pub mod service;
pub mod store;
pub mod stream;
pub mod util;
pub mod video;
pub mod vision;
