//! OpenVINO backend: the `openvino` crate with runtime linking, loading the C
//! API (`libopenvino_c.so`) of the libraries taken from the `openvino` PyPI
//! wheel (`models/manifest.toml`); the CPU plugin and the ONNX frontend are
//! found beside it.
//!
//! The CPU plugin is fastest on static shapes: each model is compiled at load
//! for any input shape, and again for each shape it is run with a second time
//! (a stream's frame size, a batch of one face), up to [`MAX_SHAPES`] copies. Precision is OpenVINO's
//! inference-precision hint: `bf16` runs the convolutions in bfloat16 on CPUs
//! with AVX-512 BF16 or AMX, and is plain `f32` elsewhere.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, PartialShape, PropertyKey, RwPropertyKey, Shape,
};

use super::{Backend, BackendError, Model, Precision, Tensor, Threads};

/// Static copies kept per model, one per input shape (each holds its own
/// repacked weights: ~40 MB for SFace).
const MAX_SHAPES: usize = 4;

/// The process loads the OpenVINO C library once.
static LIBRARY: OnceLock<Result<(), String>> = OnceLock::new();

#[derive(Clone)]
pub struct OpenvinoBackend {
    core: Arc<Mutex<Core>>,
    lib: PathBuf,
}

impl OpenvinoBackend {
    pub fn new(lib: &Path, threads: Threads) -> Result<Self, BackendError> {
        let fail = |reason: String| BackendError::Load { path: lib.to_path_buf(), reason };
        if !lib.is_file() {
            return Err(fail(
                "OpenVINO library not found; run `make setup` (scripts/fetch.py) or set ROSTRO_OPENVINO_LIB".into(),
            ));
        }
        LIBRARY.get_or_init(|| openvino_sys::library::load_from(lib)).clone().map_err(fail)?;
        let mut core = Core::new().map_err(|e| fail(e.to_string()))?;
        let intra = threads.intra.max(1).to_string();
        core.set_properties(
            &DeviceType::CPU,
            [
                // One stream, answering one request as fast as it can: the engine
                // already runs one analyzer per worker thread.
                (RwPropertyKey::HintPerformanceMode, "LATENCY"),
                (RwPropertyKey::NumStreams, "1"),
                (RwPropertyKey::InferenceNumThreads, intra.as_str()),
                // Workers, the HTTP server and the store share the cores: don't pin.
                (RwPropertyKey::HintEnableCpuPinning, "NO"),
                // Kernels the dynamic copies prepare per input shape are cached;
                // bound the cache so that photos of ever new sizes cannot grow it
                // without end (openvinotoolkit/openvino#20633).
                (RwPropertyKey::Other("CPU_RUNTIME_CACHE_CAPACITY".into()), "200"),
            ],
        )
        .map_err(|e| fail(e.to_string()))?;
        Ok(OpenvinoBackend { core: Arc::new(Mutex::new(core)), lib: lib.to_path_buf() })
    }
}

impl OpenvinoBackend {
    /// Compiles `model` for the CPU at `precision`, warning when the CPU runs another.
    fn compile(&self, model: &openvino::Model, precision: Precision, name: &str) -> Result<Compiled, String> {
        let mut core = self.core.lock().unwrap_or_else(|e| e.into_inner());
        // The hint is a property of the core's CPU device at compile time.
        core.set_property(&DeviceType::CPU, &RwPropertyKey::HintInferencePrecision, precision.openvino_hint())
            .map_err(|e| e.to_string())?;
        let mut compiled = core.compile_model(model, DeviceType::CPU).map_err(|e| e.to_string())?;
        drop(core);
        let request = compiled.create_infer_request().map_err(|e| e.to_string())?;
        let key = PropertyKey::Rw(RwPropertyKey::HintInferencePrecision);
        let running = compiled.get_property(&key).map(|p| p.into_owned()).unwrap_or_default();
        if running != precision.openvino_hint() {
            tracing::warn!(model = %name, requested = %precision, running = %running,
                "OpenVINO runs this model at another precision than requested (the CPU lacks support)");
        }
        tracing::debug!(model = %name, dynamic = model.is_dynamic(), precision = %running, "OpenVINO compiled");
        Ok(Compiled { _model: compiled, request })
    }
}

impl Backend for OpenvinoBackend {
    fn load(&self, path: &Path, precision: Precision) -> Result<Box<dyn Model>, BackendError> {
        let fail = |e: &dyn std::fmt::Display| BackendError::Load { path: path.to_path_buf(), reason: e.to_string() };
        if !path.is_file() {
            return Err(fail(&"model file not found; run `make setup` (scripts/fetch.py)"));
        }
        let file = path.to_str().ok_or_else(|| fail(&"the model path is not UTF-8"))?;
        let read = || self.core.lock().unwrap_or_else(|e| e.into_inner()).read_model_from_file(file, "");
        let (graph, reshaped) = (read().map_err(|e| fail(&e))?, read().map_err(|e| fail(&e))?);
        let count = graph.get_outputs_len().map_err(|e| fail(&e))?;
        let outputs = (0..count)
            .map(|i| graph.get_output_by_index(i).and_then(|node| node.get_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(&e))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        // Compiled now, so that no request pays for it.
        let dynamic = self.compile(&graph, precision, &name).map_err(|e| fail(&e))?;
        Ok(Box::new(OpenvinoModel {
            backend: self.clone(),
            reshaped,
            precision,
            dynamic,
            seen: Vec::new(),
            fixed: Vec::new(),
            outputs,
            name,
        }))
    }

    fn name(&self) -> &'static str {
        "openvino"
    }
}

struct Compiled {
    // Kept alive for the request made from it.
    _model: CompiledModel,
    request: InferRequest,
}

/// One model: a copy compiled for any input shape, and copies compiled for
/// the shapes it is run with again and again, which run ~15 % faster.
struct OpenvinoModel {
    backend: OpenvinoBackend,
    /// The graph, its input reshaped to each shape compiled for.
    reshaped: openvino::Model,
    precision: Precision,
    /// Compiled with the graph's own (symbolic) input shape.
    dynamic: Compiled,
    /// Shapes run once on the dynamic copy, most recent last: a second run
    /// compiles a static copy. Bounded, so one-off photo sizes never compile.
    seen: Vec<Vec<usize>>,
    /// Static copies by shape, most recently used last.
    fixed: Vec<(Vec<usize>, Compiled)>,
    outputs: Vec<String>,
    name: String,
}

impl OpenvinoModel {
    /// The compiled copy to run `shape` on.
    fn compiled(&mut self, shape: &[usize]) -> Result<&mut Compiled, String> {
        if let Some(i) = self.fixed.iter().position(|(s, _)| s == shape) {
            let hit = self.fixed.remove(i);
            self.fixed.push(hit);
            return Ok(&mut self.fixed.last_mut().expect("just pushed").1);
        }
        let Some(i) = self.seen.iter().position(|s| s == shape) else {
            if self.seen.len() >= 2 * MAX_SHAPES {
                self.seen.remove(0);
            }
            self.seen.push(shape.to_vec());
            return Ok(&mut self.dynamic);
        };
        self.seen.remove(i);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let partial = PartialShape::new_static(dims.len() as i64, &dims).map_err(|e| e.to_string())?;
        self.reshaped.reshape_single_input(&partial).map_err(|e| e.to_string())?;
        let compiled = self.backend.compile(&self.reshaped, self.precision, &self.name)?;
        if self.fixed.len() >= MAX_SHAPES {
            self.fixed.remove(0);
        }
        self.fixed.push((shape.to_vec(), compiled));
        Ok(&mut self.fixed.last_mut().expect("just pushed").1)
    }

    fn infer(&mut self, shape: &[usize], input: &[f32]) -> Result<Vec<Tensor>, String> {
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let mut tensor = openvino::Tensor::new(ElementType::F32, &Shape::new(&dims).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let data = tensor.get_data_mut::<f32>().map_err(|e| e.to_string())?;
        if data.len() != input.len() {
            return Err(format!("input of {} values for shape {shape:?}", input.len()));
        }
        data.copy_from_slice(input);
        let count = self.outputs.len();
        let compiled = self.compiled(shape)?;
        compiled.request.set_input_tensor(&tensor).map_err(|e| e.to_string())?;
        compiled.request.infer().map_err(|e| e.to_string())?;
        (0..count)
            .map(|i| {
                let out = compiled.request.get_output_tensor_by_index(i)?;
                let shape =
                    out.get_shape()?.get_dimensions().iter().map(|&d| usize::try_from(d).unwrap_or(0)).collect();
                Ok(Tensor { shape, data: out.get_data::<f32>()?.to_vec() })
            })
            .collect::<Result<Vec<_>, openvino::InferenceError>>()
            .map_err(|e| e.to_string())
    }
}

impl Model for OpenvinoModel {
    fn run(&mut self, shape: &[usize], input: &[f32]) -> Result<Vec<Tensor>, BackendError> {
        self.infer(shape, input).map_err(|reason| BackendError::Run {
            model: self.name.clone(),
            reason: format!("{reason} (OpenVINO from {})", self.backend.lib.display()),
        })
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }
}
