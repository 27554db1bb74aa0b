//! Wiring and shared state: opens the store, loads the models, builds the
//! services, and holds what every handler and stream shares ([`AppState`]).
//! `api/` and `stream/` sit above this module and never use each other's
//! internals; nothing below it knows HTTP.

use std::sync::Arc;

use crate::auth::KeyRegistry;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::notify::{Hub, Queue};
use crate::people::People;
use crate::service::{LoadReport, Service};
use crate::store::{Records, SledStore};

/// What every handler shares.
pub struct AppState {
    pub config: Arc<Config>,
    /// The Passwordless face service.
    pub service: Service,
    /// The People API's records and rules.
    pub people: People,
    pub records: Arc<Records>,
    pub keys: KeyRegistry,
    pub metrics: Arc<Metrics>,
    /// Access events, for the event feed and webhooks.
    pub events: Hub,
    /// The delivery queue of every outgoing notification (started by `serve`).
    pub queue: Arc<Queue>,
}

/// The app state for `config`: opens the store (migrating an older layout),
/// loads the models, rebuilds the gallery.
pub fn build_state(config: Arc<Config>, files: &crate::vision::ModelFiles) -> anyhow::Result<(AppState, LoadReport)> {
    let records = Arc::new(Records::open(&config.store)?);
    let store = SledStore::on(records.clone())?;
    let engine =
        crate::engine::Engine::start(files, &config.vision, config.server.inference_workers, config.server.queue)?;
    let (service, report) = Service::start(Arc::new(store), engine, Arc::new(config.passwordless_settings()))?;
    let queue = Arc::new(Queue::new(records.clone(), &config.events).map_err(anyhow::Error::msg)?);
    let people = People::new(records.clone(), queue.clone(), &config.people).map_err(anyhow::Error::msg)?;
    Ok((
        AppState {
            keys: KeyRegistry::new(&config.auth),
            config,
            service,
            people,
            records,
            metrics: Arc::default(),
            events: Hub::default(),
            queue,
        },
        report,
    ))
}
