//! Rostro: a real-time biometric edge service. This library holds all the
//! logic; `src/main.rs` is a thin command line over it.

pub mod biometrics;
pub mod cli;
pub mod config;
pub mod decode;
pub mod gallery;
pub mod vision;
