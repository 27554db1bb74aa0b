//! The one integration-test binary: real models on real photos.
//! Models and fixtures come from `scripts/fetch.py` (`make test` runs it).

mod accuracy;
mod backends;
mod bad_input;
mod cli;
mod common;
mod golden;
mod inputs;
mod tidy;
