//! The inference pool: an actix `SyncArbiter` of [`InferenceActor`]s, each
//! owning one [`FaceAnalyzer`] (one model session per thread). Async callers
//! (HTTP handlers, stream sessions, cameras) submit a closure and await its
//! result. The arbiter's own queue is unbounded, so admission is bounded
//! here: at most `workers + queue` jobs are in flight, and one more is
//! refused at once ([`EngineError::Busy`], a 503 to HTTP clients, a dropped
//! frame to streams) instead of queueing without bound.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix::{Actor, Addr, Handler, Message, SyncArbiter, SyncContext};

use crate::vision::{FaceAnalyzer, ModelFiles, VisionConfig, VisionError};

/// One unit of work for a worker.
struct Job(Box<dyn FnOnce(&mut FaceAnalyzer) + Send>);

impl Message for Job {
    type Result = ();
}

/// A worker thread's actor: its own models.
pub struct InferenceActor {
    analyzer: FaceAnalyzer,
}

impl Actor for InferenceActor {
    type Context = SyncContext<Self>;
}

impl Handler<Job> for InferenceActor {
    type Result = ();

    fn handle(&mut self, job: Job, _: &mut SyncContext<Self>) {
        // A panicking job loses its own reply, not the worker.
        let analyzer = &mut self.analyzer;
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.0)(analyzer)));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("all {0} inference slots are taken; try again shortly")]
    Busy(usize),
    #[error("the inference workers have stopped")]
    Stopped,
}

/// Counters an operator can read.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
}

/// Gives a slot back when the job finishes or is dropped unrun.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[derive(Clone)]
pub struct Engine {
    addr: Addr<InferenceActor>,
    in_flight: Arc<AtomicUsize>,
    capacity: usize,
    queue: usize,
    stats: Arc<EngineStats>,
    config: Arc<VisionConfig>,
}

impl Engine {
    /// Starts `workers` inference actors, each loading its own copy of the
    /// models; at most `queue` jobs wait beyond those running. Must be called
    /// inside an actix `System`. The models are loaded once here first, so a
    /// missing or bad model file is an error rather than a worker's panic.
    pub fn start(
        files: &ModelFiles,
        config: &VisionConfig,
        workers: usize,
        queue: usize,
    ) -> Result<Engine, VisionError> {
        let mut first = FaceAnalyzer::new(files, config.clone())?;
        first.warm_up()?;
        let first = Mutex::new(Some(first));
        let (files, vision) = (files.clone(), config.clone());
        let workers = workers.max(1);
        let addr = SyncArbiter::start(workers, move || {
            let analyzer = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
            let analyzer = analyzer.unwrap_or_else(|| {
                let mut a = FaceAnalyzer::new(&files, vision.clone()).expect("these models loaded once already");
                a.warm_up().expect("these models ran once already");
                a
            });
            InferenceActor { analyzer }
        });
        Ok(Engine {
            addr,
            in_flight: Arc::default(),
            capacity: workers + queue,
            queue,
            stats: Arc::default(),
            config: Arc::new(config.clone()),
        })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Runs `f` on a worker and returns its result, or refuses at once when the pool is full.
    pub async fn run<R, F>(&self, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut FaceAnalyzer) -> R + Send + 'static,
    {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(EngineError::Busy(self.queue));
        }
        let slot = Slot(self.in_flight.clone());
        let (reply, result) = tokio::sync::oneshot::channel();
        let job = Job(Box::new(move |analyzer| {
            let _slot = slot;
            let _ = reply.send(f(analyzer));
        }));
        if !self.addr.connected() {
            return Err(EngineError::Stopped);
        }
        // Admission is bounded above; the arbiter's mailbox only hands jobs on.
        self.addr.do_send(job);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        result.await.map_err(|_| EngineError::Stopped)
    }
}
