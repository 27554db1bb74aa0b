//! Biometric decisions and how well they are made (no HTTP types here).

pub mod capture;
pub mod metrics;
pub mod pad;
pub mod simulate;
pub mod temporal;
