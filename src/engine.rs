//! The inference pool: worker threads that each own one [`FaceAnalyzer`],
//! fed through one bounded queue. Async callers (HTTP handlers) submit a
//! closure and await its result; when the queue is full the job is refused
//! at once ([`EngineError::Busy`], a 503 to HTTP clients) instead of queueing
//! without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use crate::vision::{FaceAnalyzer, ModelFiles, VisionConfig, VisionError};

type Job = Box<dyn FnOnce(&mut FaceAnalyzer) + Send>;

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

#[derive(Clone)]
pub struct Engine {
    tx: SyncSender<Job>,
    queue: usize,
    stats: Arc<EngineStats>,
    config: Arc<VisionConfig>,
}

impl Engine {
    /// Starts `workers` threads, each loading its own copy of the models, and
    /// waits until all have loaded (or one failed). At most `queue` jobs wait.
    pub fn start(
        files: &ModelFiles,
        config: &VisionConfig,
        workers: usize,
        queue: usize,
    ) -> Result<Engine, VisionError> {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        for n in 0..workers.max(1) {
            let (rx, ready_tx, files, config) = (rx.clone(), ready_tx.clone(), files.clone(), config.clone());
            std::thread::Builder::new()
                .name(format!("inference-{n}"))
                .spawn(move || {
                    let mut analyzer = match FaceAnalyzer::new(&files, config) {
                        Ok(a) => {
                            let _ = ready_tx.send(Ok(()));
                            a
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    loop {
                        let job = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner).recv();
                        match job {
                            // A panicking job loses its own reply, not the worker.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut analyzer)));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("spawning an inference thread");
        }
        drop(ready_tx);
        for _ in 0..workers.max(1) {
            ready_rx.recv().map_err(|_| VisionError::Output("an inference worker died while loading".into()))??;
        }
        Ok(Engine { tx, queue, stats: Arc::default(), config: Arc::new(config.clone()) })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Runs `f` on a worker and returns its result, or refuses at once when the queue is full.
    pub async fn run<R, F>(&self, f: F) -> Result<R, EngineError>
    where
        R: Send + 'static,
        F: FnOnce(&mut FaceAnalyzer) -> R + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |analyzer| {
            let _ = reply.send(f(analyzer));
        });
        match self.tx.try_send(job) {
            Ok(()) => self.stats.accepted.fetch_add(1, Ordering::Relaxed),
            Err(TrySendError::Full(_)) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                return Err(EngineError::Busy(self.queue));
            }
            Err(TrySendError::Disconnected(_)) => return Err(EngineError::Stopped),
        };
        result.await.map_err(|_| EngineError::Stopped)
    }
}
