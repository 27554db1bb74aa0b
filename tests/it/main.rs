//! The one integration-test binary: real models on real photos.
//! Models and fixtures come from `scripts/fetch.py` (`make test` runs it).

mod accuracy;
mod api;
mod backends;
mod bad_input;
mod camera;
mod cli;
mod common;
mod golden;
mod http;
mod inputs;
mod people;
mod server;
mod stream;
mod tidy;
