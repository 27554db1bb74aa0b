//! The inference pool: an actix `SyncArbiter` of [`InferenceActor`]s, each
//! owning one [`FaceAnalyzer`] (one model session per thread). Async callers
//! (HTTP handlers, stream sessions, cameras) submit a closure and await its
//! result. The arbiter's own queue is unbounded, so admission is bounded
//! here: at most `workers + queue` jobs are in flight, and one more is
//! refused at once ([`EngineError::Busy`], a 503 to HTTP clients, a dropped
//! frame to streams) instead of queueing without bound.
//!
//! A [`Lane`] batches across callers: items of one kind (the frames of every
//! kiosk session) wait in the lane's queue, and the worker that takes one
//! takes every other waiting item too, up to a maximum batch, and runs them
//! in one call, so that the models see one batch instead of several runs of
//! one.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
        match first.fallback() {
            Some(why) => {
                tracing::warn!(device = %first.device(), reason = %why, "CUDA unavailable; inference runs on the CPU")
            }
            None => tracing::info!(device = %first.device(), workers, "inference device"),
        }
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

    /// A slot for one more job, or `Busy` when the pool is full.
    fn admit(&self) -> Result<Slot, EngineError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            return Err(EngineError::Busy(self.queue));
        }
        Ok(Slot(self.in_flight.clone()))
    }

    /// Hands `job` to the workers (admission is bounded by [`Engine::admit`];
    /// the arbiter's mailbox only hands jobs on).
    fn send(&self, job: Job) -> Result<(), EngineError> {
        if !self.addr.connected() {
            return Err(EngineError::Stopped);
        }
        self.addr.do_send(job);
        self.stats.accepted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Runs `f` on a worker and returns its result, or refuses at once when the pool is full.
    pub async fn run<R, F>(&self, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut FaceAnalyzer) -> R + Send + 'static,
    {
        let slot = self.admit()?;
        let (reply, result) = tokio::sync::oneshot::channel();
        self.send(Job(Box::new(move |analyzer| {
            let _slot = slot;
            let _ = reply.send(f(analyzer));
        })))?;
        result.await.map_err(|_| EngineError::Stopped)
    }

    /// A lane whose items run together through `run`, at most `max_batch` at a
    /// time; a worker that finds fewer waits up to `max_wait` for the items of
    /// the lane's other users ([`Lane::join`]), and never when it has no other.
    pub fn lane<T, R>(
        &self,
        max_batch: usize,
        max_wait: Duration,
        run: impl Fn(&mut FaceAnalyzer, Vec<T>) -> Vec<R> + Send + Sync + 'static,
    ) -> Lane<T, R>
    where
        T: Send + 'static,
        R: Send + 'static,
    {
        Lane {
            engine: self.clone(),
            shared: Arc::new(LaneShared {
                queue: Mutex::new(VecDeque::new()),
                arrived: Condvar::new(),
                users: Arc::default(),
                max_batch: max_batch.max(1),
                max_wait,
                run: Box::new(run),
            }),
        }
    }
}

type Waiting<T, R> = (T, tokio::sync::oneshot::Sender<R>, Slot);

struct LaneShared<T, R> {
    queue: Mutex<VecDeque<Waiting<T, R>>>,
    arrived: Condvar,
    /// Open users of the lane ([`Lane::join`]).
    users: Arc<AtomicUsize>,
    max_batch: usize,
    max_wait: Duration,
    #[allow(clippy::type_complexity)]
    run: Box<dyn Fn(&mut FaceAnalyzer, Vec<T>) -> Vec<R> + Send + Sync>,
}

/// Items of many callers run in batches on the engine's workers (see the module doc).
pub struct Lane<T, R> {
    engine: Engine,
    shared: Arc<LaneShared<T, R>>,
}

/// One user of a lane (a stream session) while it lives.
pub struct LaneUser(Arc<AtomicUsize>);

impl Drop for LaneUser {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: Send + 'static, R: Send + 'static> Lane<T, R> {
    /// Counts the caller as a user until the guard is dropped: workers wait
    /// for other users' items only while there are other users.
    pub fn join(&self) -> LaneUser {
        self.shared.users.fetch_add(1, Ordering::AcqRel);
        LaneUser(self.shared.users.clone())
    }

    /// Runs `item` in the next batch and returns its result, or refuses at
    /// once when the pool is full (each item holds one slot until it is run).
    pub async fn submit(&self, item: T) -> Result<R, EngineError> {
        let slot = self.engine.admit()?;
        let (reply, result) = tokio::sync::oneshot::channel();
        self.shared.queue.lock().unwrap_or_else(PoisonError::into_inner).push_back((item, reply, slot));
        self.shared.arrived.notify_all();
        // One job per item: the first to reach a worker takes the batch; the
        // others find the queue emptied and return at once.
        let shared = self.shared.clone();
        self.engine.send(Job(Box::new(move |analyzer| shared.drain(analyzer))))?;
        result.await.map_err(|_| EngineError::Stopped)
    }
}

impl<T, R> LaneShared<T, R> {
    /// Takes the waiting items (waiting for more as [`Engine::lane`] says) and runs them.
    fn drain(&self, analyzer: &mut FaceAnalyzer) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.is_empty() {
            return;
        }
        let want = self.max_batch.min(self.users.load(Ordering::Acquire).max(1));
        let deadline = Instant::now() + self.max_wait;
        while queue.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = self.arrived.wait_timeout(queue, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        // Another worker may have taken them while this one waited.
        let take = queue.len().min(self.max_batch);
        if take == 0 {
            return;
        }
        let batch: Vec<Waiting<T, R>> = queue.drain(..take).collect();
        drop(queue);
        let (items, replies): (Vec<T>, Vec<_>) =
            batch.into_iter().map(|(item, reply, slot)| (item, (reply, slot))).unzip();
        let results = (self.run)(analyzer, items);
        for ((reply, _slot), result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}
