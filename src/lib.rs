//! Rostro: a real-time biometric edge service. This library holds all the
//! logic; `src/main.rs` is a thin command line over it.
//!
//! Layers, each using only those below it (`tests/it/tidy.rs` checks):
//! util; decode, vision, gallery, video, metrics, store; biometrics, engine;
//! auth, serving, notify, service, people; config; app, routes; api, stream (which
//! never use each other); serve; cli, kiosk, loadgen.

pub mod api;
pub mod app;
pub mod auth;
pub mod biometrics;
pub mod cli;
pub mod config;
pub mod decode;
pub mod engine;
pub mod gallery;
pub mod kiosk;
pub mod loadgen;
pub mod metrics;
pub mod notify;
pub mod people;
pub mod plot;
pub mod routes;
pub mod serve;
pub mod service;
pub mod serving;
pub mod store;
pub mod stream;
pub mod util;
pub mod video;
pub mod vision;
