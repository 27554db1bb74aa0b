//! Inference backends: one small trait over ONNX Runtime (default) and tract (feature `tract`).
//!
//! The vision code prepares NCHW `f32` tensors itself and reads plain `f32`
//! outputs back, so a backend only has to run a graph. One [`Model`] is one
//! loaded graph, owned by one thread (ONNX Runtime's `run` takes `&mut self`).

use std::fmt;
use std::path::{Path, PathBuf};

pub mod ort;
#[cfg(feature = "tract")]
pub mod tract;

/// A dense `f32` tensor in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Errors from loading or running a model. Always internal: bad user input is
/// caught before a tensor is built.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot load model {path}: {reason}")]
    Load { path: PathBuf, reason: String },
    #[error("inference failed in {model}: {reason}")]
    Run { model: String, reason: String },
}

/// One loaded model, ready to run.
pub trait Model: Send {
    /// Runs the graph on one input of `shape` and returns every output in the
    /// order the graph declares them.
    fn run(&mut self, shape: &[usize], input: &[f32]) -> Result<Vec<Tensor>, BackendError>;

    /// The graph's output names, in the order `run` returns them.
    fn output_names(&self) -> &[String];
}

/// A way of loading models.
pub trait Backend: Send + Sync {
    fn load(&self, path: &Path) -> Result<Box<dyn Model>, BackendError>;
    fn name(&self) -> &'static str;
}

/// The backends this build knows, as named in config and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Ort,
    Tract,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Ort => "ort",
            BackendKind::Tract => "tract",
        })
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ort" => Ok(BackendKind::Ort),
            "tract" => Ok(BackendKind::Tract),
            other => Err(format!("unknown backend '{other}' (expected 'ort' or 'tract')")),
        }
    }
}

/// Thread settings for a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threads {
    /// Threads one model run may use (ONNX Runtime intra-op threads).
    pub intra: usize,
    /// Whether idle intra-op threads spin before sleeping: lower latency, more CPU.
    pub spin: bool,
    /// One thread pool for every model in the process (ONNX Runtime's global
    /// pool) rather than one per model. Per-model pools that spin steal the
    /// cores from each other when the models run one after another.
    pub shared_pool: bool,
}

impl Default for Threads {
    fn default() -> Self {
        Threads { intra: 2, spin: true, shared_pool: true }
    }
}

/// Builds the backend named by `kind`.
pub fn create(kind: BackendKind, runtime_lib: &Path, threads: Threads) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Ort => Ok(Box::new(ort::OrtBackend::new(runtime_lib, threads)?)),
        #[cfg(feature = "tract")]
        BackendKind::Tract => Ok(Box::new(tract::TractBackend::new())),
        #[cfg(not(feature = "tract"))]
        BackendKind::Tract => Err(BackendError::Load {
            path: runtime_lib.to_path_buf(),
            reason: "this build has no tract backend; rebuild with `--features tract`".into(),
        }),
    }
}
