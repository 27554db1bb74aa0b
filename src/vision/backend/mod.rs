//! Inference backends: one small trait over OpenVINO (default), ONNX Runtime
//! and tract (feature `tract`).
//!
//! The vision code prepares NCHW `f32` tensors itself and reads plain `f32`
//! outputs back, so a backend only has to run a graph. One [`Model`] is one
//! loaded graph, owned by one thread (ONNX Runtime's `run` takes `&mut self`).

use std::fmt;
use std::path::{Path, PathBuf};

pub mod openvino;
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
    #[error("cannot load {path}: {reason}")]
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
    /// Loads the graph at `path` to run at `precision`; a backend that cannot
    /// refuses with a reason.
    fn load(&self, path: &Path, precision: Precision) -> Result<Box<dyn Model>, BackendError>;
    fn name(&self) -> &'static str;
}

/// The arithmetic a model runs in. The graphs are `f32`; `bf16` is OpenVINO's
/// inference-precision hint (bfloat16 convolutions on CPUs with AVX-512 BF16
/// or AMX, `f32` elsewhere); ONNX Runtime and tract run `f32` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
}

impl Precision {
    fn openvino_hint(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// Refuses anything but `f32` for a backend that runs only that.
    fn f32_only(self, backend: &str, path: &Path) -> Result<(), BackendError> {
        match self {
            Precision::F32 => Ok(()),
            other => Err(BackendError::Load {
                path: path.to_path_buf(),
                reason: format!("the {backend} backend runs f32 only; precision {other} needs backend \"openvino\""),
            }),
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("unknown precision '{other}' (expected 'f32' or 'bf16')")),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.openvino_hint())
    }
}

/// The backends this build knows, as named in config and on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    #[default]
    Openvino,
    Ort,
    Tract,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Openvino => "openvino",
            BackendKind::Ort => "ort",
            BackendKind::Tract => "tract",
        })
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openvino" => Ok(BackendKind::Openvino),
            "ort" => Ok(BackendKind::Ort),
            "tract" => Ok(BackendKind::Tract),
            other => Err(format!("unknown backend '{other}' (expected 'openvino', 'ort' or 'tract')")),
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

/// ONNX Runtime's GPU build on CUDA device `device`, with the libraries of
/// `gpu_dir` (`make gpu`); refuses with the reason it cannot start.
pub fn create_cuda(gpu_dir: &Path, device: i32, threads: Threads) -> Result<Box<dyn Backend>, BackendError> {
    Ok(Box::new(ort::OrtBackend::cuda(gpu_dir, device, threads)?))
}

/// Builds the backend named by `kind`; `runtime_lib` is its shared library
/// (OpenVINO's C API, ONNX Runtime; unused by tract).
pub fn create(kind: BackendKind, runtime_lib: &Path, threads: Threads) -> Result<Box<dyn Backend>, BackendError> {
    match kind {
        BackendKind::Openvino => Ok(Box::new(openvino::OpenvinoBackend::new(runtime_lib, threads)?)),
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
