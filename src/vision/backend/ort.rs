//! ONNX Runtime backend, loading `libonnxruntime.so` at run time (ort `load-dynamic`).
//!
//! On the CPU it runs the library of the `onnxruntime` wheel. With
//! [`OrtBackend::cuda`] it runs the `onnxruntime-gpu` wheel's library with the
//! CUDA execution provider, whose CUDA and cuDNN libraries (the `nvidia-*`
//! wheels, `make gpu`) are loaded from one folder first. A process loads one
//! ONNX Runtime library: the GPU one also runs models on its CPU provider.

use std::path::Path;
use std::sync::OnceLock;

use ort::environment::{Environment, GlobalThreadPoolOptions};
use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::TensorRef;

use super::{Backend, BackendError, Model, Precision, Tensor, Threads};

/// The process loads one ONNX Runtime library once; every backend shares its
/// environment, and with `Threads::shared_pool` its one thread pool, sized by
/// the first backend created.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

fn environment(lib: &Path, threads: Threads) -> Result<Environment, BackendError> {
    let load_error = |reason: String| BackendError::Load { path: lib.to_path_buf(), reason };
    if !lib.is_file() {
        return Err(load_error(
            "ONNX Runtime library not found; run `make setup` (scripts/fetch.py) or set ORT_DYLIB_PATH".into(),
        ));
    }
    ENVIRONMENT
        .get_or_init(|| {
            let mut builder = ort::init_from(lib).map_err(|e| e.to_string())?.with_name("rostro");
            if threads.shared_pool {
                let pool = GlobalThreadPoolOptions::default()
                    .with_intra_threads(threads.intra)
                    .and_then(|p| p.with_inter_threads(1))
                    .and_then(|p| p.with_spin_control(threads.spin))
                    .map_err(|e| e.to_string())?;
                builder = builder.with_global_thread_pool(pool);
            }
            builder.build().map_err(|e| e.to_string())
        })
        .clone()
        .map_err(load_error)
}

pub struct OrtBackend {
    env: Environment,
    threads: Threads,
    /// The CUDA device every session runs on; none: the CPU.
    cuda: Option<i32>,
}

/// Loaded before ort's lists of the CUDA and cuDNN libraries
/// (`ep::cuda::CUDA_DYLIBS`, `CUDNN_DYLIBS`), which they depend on: cuFFT's
/// JIT linker.
const LOADED_FIRST: &[&str] = &["libnvJitLink.so.13"];

impl OrtBackend {
    pub fn new(runtime_lib: &Path, threads: Threads) -> Result<Self, BackendError> {
        Ok(OrtBackend { env: environment(runtime_lib, threads)?, threads, cuda: None })
    }

    /// ONNX Runtime on CUDA device `device`, with the GPU build's library and
    /// the CUDA libraries of `gpu_dir`. Refuses with the reason when the
    /// libraries are missing or the provider is not in the library; a missing
    /// device shows when a model is loaded.
    pub fn cuda(gpu_dir: &Path, device: i32, threads: Threads) -> Result<Self, BackendError> {
        let lib = gpu_dir.join(GPU_LIBRARY);
        let fail = |reason: String| BackendError::Load { path: gpu_dir.to_path_buf(), reason };
        if !lib.is_file() {
            return Err(fail(format!("{GPU_LIBRARY} not found in {}; run `make gpu`", gpu_dir.display())));
        }
        for name in LOADED_FIRST.iter().chain(ep::cuda::CUDA_DYLIBS).chain(ep::cuda::CUDNN_DYLIBS) {
            ort::util::preload_dylib(gpu_dir.join(name)).map_err(|e| fail(format!("cannot load {name}: {e}")))?;
        }
        let env = environment(&lib, threads)?;
        match ep::CUDA::is_available() {
            Ok(true) => Ok(OrtBackend { env, threads, cuda: Some(device) }),
            Ok(false) => Err(fail(format!("{} has no CUDA execution provider", lib.display()))),
            Err(e) => Err(fail(e.to_string())),
        }
    }
}

/// The GPU build's library in the folder `make gpu` fills.
pub const GPU_LIBRARY: &str = "libonnxruntime.so.1.31.1";

impl Backend for OrtBackend {
    fn load(&self, path: &Path, precision: Precision) -> Result<Box<dyn Model>, BackendError> {
        precision.f32_only("ort", path)?;
        let fail = |e: &dyn std::fmt::Display| BackendError::Load { path: path.to_path_buf(), reason: e.to_string() };
        if !path.is_file() {
            return Err(fail(&"model file not found; run `make setup` (scripts/fetch.py)"));
        }
        let mut builder = session_builder(&self.env, self.threads).map_err(|e| fail(&e))?;
        if let Some(device) = self.cuda {
            let cuda = ep::CUDA::default().with_device_id(device).build().error_on_failure();
            builder = builder.with_execution_providers([cuda]).map_err(|e| fail(&e))?;
        }
        let session = builder.commit_from_file(path).map_err(|e| fail(&e))?;
        let outputs = session.outputs().iter().map(|o| o.name().to_string()).collect();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(Box::new(OrtModel { session, outputs, name }))
    }

    fn name(&self) -> &'static str {
        if self.cuda.is_some() { "ort-cuda" } else { "ort" }
    }
}

fn session_builder(env: &Environment, threads: Threads) -> ort::Result<SessionBuilder> {
    let builder = Session::builder(env)?.with_optimization_level(GraphOptimizationLevel::All)?;
    if threads.shared_pool {
        return Ok(builder);
    }
    // A pool per model: three spinning pools on two cores contend.
    Ok(builder
        .with_independent_thread_pool()?
        .with_intra_threads(threads.intra)?
        .with_inter_threads(1)?
        .with_intra_op_spinning(threads.spin)?)
}

struct OrtModel {
    session: Session,
    outputs: Vec<String>,
    name: String,
}

impl Model for OrtModel {
    fn run(&mut self, shape: &[usize], input: &[f32]) -> Result<Vec<Tensor>, BackendError> {
        let fail = |e: ort::Error| BackendError::Run { model: self.name.clone(), reason: e.to_string() };
        let tensor = TensorRef::from_array_view((shape.to_vec(), input)).map_err(fail)?;
        let outputs = self.session.run(ort::inputs![tensor]).map_err(fail)?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for name in &self.outputs {
            let value = outputs.get(name.as_str()).ok_or_else(|| BackendError::Run {
                model: self.name.clone(),
                reason: format!("output {name} missing"),
            })?;
            let (out_shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
            result.push(Tensor {
                shape: out_shape.iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect(),
                data: data.to_vec(),
            });
        }
        Ok(result)
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
