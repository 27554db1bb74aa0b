//! The face pipeline as plain synchronous Rust: detect (YuNet) -> liveness
//! (MiniFASNet-style) -> align (5-point) -> embed (SFace).
//!
//! [`FaceAnalyzer`] owns one loaded copy of each model and is used by one
//! thread at a time; actors and tools make one per worker thread.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

pub mod align;
pub mod backend;
pub mod detect;
pub mod embed;
pub mod liveness;
pub mod warp;

pub use backend::{BackendKind, Precision, Threads};
pub use detect::{BBox, DetectConfig, Detection};
pub use embed::Embedding;
pub use liveness::Liveness;

use backend::{Backend, BackendError, Model};

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("unexpected model output: {0}")]
    Output(String),
}

/// Settings of the face pipeline (the `[vision]` section of the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisionConfig {
    /// Where the models run: `cpu` on `backend`, or `cuda` (ONNX Runtime's
    /// CUDA provider for all three models; the CPU when that cannot start).
    pub device: Device,
    /// The CUDA device number with `device = "cuda"`.
    pub cuda_device: i32,
    /// Faces (or frames) at most in one model run.
    pub max_batch: usize,
    /// The backend of every model that `models` does not name one for.
    pub backend: BackendKind,
    pub threads: Threads,
    /// Backend and precision per model.
    pub models: ModelChoices,
    pub detect: DetectConfig,
    /// Liveness score (probability of "real") at or above which one frame counts as live.
    pub liveness_threshold: f32,
    /// Cosine similarity at or above which two faces are the same person.
    pub match_threshold: f32,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            device: Device::Cpu,
            cuda_device: 0,
            max_batch: 16,
            backend: BackendKind::default(),
            threads: Threads::default(),
            models: ModelChoices::default(),
            detect: DetectConfig::default(),
            liveness_threshold: 0.5,
            match_threshold: embed::DEFAULT_THRESHOLD,
        }
    }
}

/// Where inference runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    #[default]
    Cpu,
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda),
            other => Err(format!("unknown device '{other}' (expected 'cpu' or 'cuda')")),
        }
    }
}

/// How one model runs (`[vision.models]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelChoice {
    /// This model's backend; none: `vision.backend`.
    pub backend: Option<BackendKind>,
    /// f32 unless set: bf16 could be neither timed nor checked against the
    /// golden and accuracy tests on the CPUs this ran on, which report no
    /// bf16 support to OpenVINO (README, "Speed").
    pub precision: Precision,
}

/// How each of the three models runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelChoices {
    pub detector: ModelChoice,
    pub liveness: ModelChoice,
    pub embedder: ModelChoice,
}

impl ModelChoices {
    /// Every model on `backend` at `precision`.
    pub fn all(backend: BackendKind, precision: Precision) -> ModelChoices {
        let one = ModelChoice { backend: Some(backend), precision };
        ModelChoices { detector: one, liveness: one, embedder: one }
    }
}

/// Where the fetched model files are (see `models/manifest.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    pub detector: PathBuf,
    pub liveness: PathBuf,
    pub embedder: PathBuf,
    /// ONNX Runtime's library.
    pub runtime: PathBuf,
    /// OpenVINO's C API library (the core, CPU plugin and ONNX frontend beside it).
    pub openvino: PathBuf,
    /// The GPU build of ONNX Runtime with its CUDA and cuDNN libraries (`make gpu`).
    pub gpu: PathBuf,
}

impl ModelFiles {
    pub fn in_dir(dir: &Path) -> ModelFiles {
        ModelFiles {
            detector: dir.join("yunet.onnx"),
            liveness: dir.join("liveness.onnx"),
            embedder: dir.join("sface.onnx"),
            runtime: std::env::var_os("ORT_DYLIB_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("runtime").join("libonnxruntime.so.1.31.1")),
            openvino: std::env::var_os("ROSTRO_OPENVINO_LIB")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("runtime").join("openvino").join("libopenvino_c.so.2641")),
            gpu: std::env::var_os("ROSTRO_GPU_RUNTIME_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("runtime").join("gpu")),
        }
    }

    /// The shared library the backend `kind` loads.
    pub fn runtime_for(&self, kind: BackendKind) -> &Path {
        match kind {
            BackendKind::Openvino => &self.openvino,
            BackendKind::Ort | BackendKind::Tract => &self.runtime,
        }
    }

    /// `dir` if given, else `$ROSTRO_MODELS_DIR`, else `./models` when it holds
    /// the models, else the `models/` of the source tree this was built from.
    pub fn locate(dir: Option<&Path>) -> ModelFiles {
        if let Some(dir) = dir {
            return Self::in_dir(dir);
        }
        if let Some(dir) = std::env::var_os("ROSTRO_MODELS_DIR") {
            return Self::in_dir(Path::new(&dir));
        }
        let local = Path::new("models");
        if local.join("yunet.onnx").is_file() {
            return Self::in_dir(local);
        }
        Self::in_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models"))
    }
}

/// Which planes order a packed tensor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelOrder {
    Rgb,
    Bgr,
}

/// Packs `img` into a 0-255 `f32` NCHW tensor of `width` x `height`,
/// zero-padding right and bottom.
pub fn pack_nchw(img: &RgbImage, order: ChannelOrder, width: usize, height: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; 3 * width * height];
    pack_nchw_into(img, order, width, height, &mut out);
    out
}

fn pack_nchw_into(img: &RgbImage, order: ChannelOrder, width: usize, height: usize, out: &mut [f32]) {
    let plane = width * height;
    let (iw, ih) = (img.width() as usize, img.height() as usize);
    let channels = match order {
        ChannelOrder::Rgb => [0, 1, 2],
        ChannelOrder::Bgr => [2, 1, 0],
    };
    let raw = img.as_raw();
    for y in 0..ih.min(height) {
        let row = &raw[y * iw * 3..(y + 1) * iw * 3];
        for (plane_index, &c) in channels.iter().enumerate() {
            let dst = &mut out[plane_index * plane + y * width..plane_index * plane + y * width + iw.min(width)];
            for (d, px) in dst.iter_mut().zip(row.chunks_exact(3)) {
                *d = px[c] as f32;
            }
        }
    }
}

/// Everything the pipeline found about one face.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Face {
    pub detection: Detection,
    pub liveness: Option<Liveness>,
    pub embedding: Option<Embedding>,
}

/// Which stages to run after detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stages {
    pub liveness: bool,
    pub embed: bool,
}

impl Stages {
    pub const ALL: Stages = Stages { liveness: true, embed: true };
}

/// Milliseconds spent in each stage of one [`FaceAnalyzer::analyze`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    pub detect_ms: f64,
    pub liveness_ms: f64,
    pub align_embed_ms: f64,
}

/// The faces of one frame, largest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<Face>,
    pub times: StageTimes,
}

pub struct FaceAnalyzer {
    detector: Box<dyn Model>,
    liveness: Box<dyn Model>,
    embedder: Box<dyn Model>,
    config: VisionConfig,
    /// Where the models run, in words (`cuda:0 (ONNX Runtime)`, `cpu (openvino)`).
    device: String,
    /// Why `device = "cuda"` runs on the CPU.
    fallback: Option<String>,
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl FaceAnalyzer {
    /// Loads the three models: on the GPU when `config.device` asks for it
    /// and it can start, else each with the backend and precision `config`
    /// names for it.
    pub fn new(files: &ModelFiles, config: VisionConfig) -> Result<FaceAnalyzer, VisionError> {
        let mut fallback = None;
        if config.device == Device::Cuda {
            match Self::on_cuda(files, &config) {
                Ok(analyzer) => return Ok(analyzer),
                Err(e) => fallback = Some(e.to_string()),
            }
        }
        let mut analyzer = Self::on_cpu(files, config)?;
        analyzer.fallback = fallback;
        Ok(analyzer)
    }

    fn on_cuda(files: &ModelFiles, config: &VisionConfig) -> Result<FaceAnalyzer, VisionError> {
        let gpu = backend::create_cuda(&files.gpu, config.cuda_device, config.threads)?;
        Ok(FaceAnalyzer {
            detector: gpu.load(&files.detector, Precision::F32)?,
            liveness: gpu.load(&files.liveness, Precision::F32)?,
            embedder: gpu.load(&files.embedder, Precision::F32)?,
            config: config.clone(),
            device: format!("cuda:{} (ONNX Runtime CUDA provider)", config.cuda_device),
            fallback: None,
        })
    }

    fn on_cpu(files: &ModelFiles, config: VisionConfig) -> Result<FaceAnalyzer, VisionError> {
        let mut backends: Vec<(BackendKind, Box<dyn Backend>)> = Vec::new();
        let mut load = |path: &Path, choice: ModelChoice| -> Result<Box<dyn Model>, VisionError> {
            let kind = choice.backend.unwrap_or(config.backend);
            let index = match backends.iter().position(|(k, _)| *k == kind) {
                Some(i) => i,
                None => {
                    backends.push((kind, backend::create(kind, files.runtime_for(kind), config.threads)?));
                    backends.len() - 1
                }
            };
            Ok(backends[index].1.load(path, choice.precision)?)
        };
        let models = config.models;
        let (detector, liveness, embedder) = (
            load(&files.detector, models.detector)?,
            load(&files.liveness, models.liveness)?,
            load(&files.embedder, models.embedder)?,
        );
        let names: Vec<&str> = backends.iter().map(|(_, b)| b.name()).collect();
        let device = format!("cpu ({})", names.join(", "));
        Ok(FaceAnalyzer { detector, liveness, embedder, config, device, fallback: None })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
    }

    /// Where the models run, in words.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Why the models run on the CPU although the config asks for CUDA.
    pub fn fallback(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Detects faces, largest first.
    pub fn detect(&mut self, img: &RgbImage) -> Result<Vec<Detection>, VisionError> {
        self.detect_at(img, self.config.detect.max_side)
    }

    /// Detects on a copy whose longer side is at most `max_side` (cheaper for
    /// large faces; boxes are in `img`'s pixels all the same).
    pub fn detect_at(&mut self, img: &RgbImage, max_side: u32) -> Result<Vec<Detection>, VisionError> {
        let cfg = DetectConfig { max_side, ..self.config.detect };
        let prepared = detect::prepare(img, &cfg);
        let outputs = self.detector.run(&prepared.shape, &prepared.data)?;
        detect::decode(&prepared, self.detector.output_names(), &outputs, &cfg).map_err(VisionError::Output)
    }

    /// Detects faces in several frames, each at its own `max_side`, one run
    /// per frame: the derived YuNet graph has a batch of one (its outputs are
    /// `[1, anchors, k]`), so only liveness and embedding run batched.
    pub fn detect_many(&mut self, frames: &[(&RgbImage, u32)]) -> Result<Vec<Vec<Detection>>, VisionError> {
        frames.iter().map(|&(img, side)| self.detect_at(img, side)).collect()
    }

    /// The single-frame liveness verdict for each face.
    pub fn liveness(&mut self, img: &RgbImage, faces: &[Detection]) -> Result<Vec<Liveness>, VisionError> {
        let crops: Vec<RgbImage> = faces.iter().map(|d| liveness::crop(img, &d.bbox)).collect();
        self.liveness_of(&crops.iter().collect::<Vec<_>>())
    }

    /// The liveness verdict of each crop made by [`liveness::crop`], in batches.
    pub fn liveness_of(&mut self, crops: &[&RgbImage]) -> Result<Vec<Liveness>, VisionError> {
        let batch = (liveness::SIZE, self.config.max_batch);
        let logits = run_batched(self.liveness.as_mut(), crops, ChannelOrder::Bgr, batch, 3)?;
        Ok(logits.iter().map(|l| liveness::from_logits(l)).collect())
    }

    /// The embedding of each face; `None` where the landmarks cannot be aligned.
    pub fn embed(&mut self, img: &RgbImage, faces: &[Detection]) -> Result<Vec<Option<Embedding>>, VisionError> {
        let aligned: Vec<Option<RgbImage>> = faces.iter().map(|d| align::align(img, &d.landmarks)).collect();
        self.embed_aligned(&aligned)
    }

    /// The embedding of each face already aligned by [`align::align`] (`None` stays `None`).
    pub fn embed_aligned(&mut self, aligned: &[Option<RgbImage>]) -> Result<Vec<Option<Embedding>>, VisionError> {
        let crops: Vec<&RgbImage> = aligned.iter().flatten().collect();
        let batch = (align::SIZE, self.config.max_batch);
        let mut raw = run_batched(self.embedder.as_mut(), &crops, ChannelOrder::Rgb, batch, embed::DIM)?.into_iter();
        Ok(aligned.iter().map(|a| a.as_ref().and_then(|_| raw.next()).and_then(Embedding::from_raw)).collect())
    }

    /// Runs each model twice on the shapes of a 640x480 frame with one face,
    /// so that a backend compiling per input shape (OpenVINO's static copies)
    /// does it now rather than in the first requests.
    pub fn warm_up(&mut self) -> Result<(), VisionError> {
        let frame = RgbImage::new(640, 480);
        let (live, face) = (RgbImage::new(liveness::SIZE, liveness::SIZE), RgbImage::new(align::SIZE, align::SIZE));
        for _ in 0..2 {
            self.detect(&frame)?;
            run_batched(self.liveness.as_mut(), &[&live], ChannelOrder::Bgr, (liveness::SIZE, 1), 3)?;
            run_batched(self.embedder.as_mut(), &[&face], ChannelOrder::Rgb, (align::SIZE, 1), embed::DIM)?;
        }
        Ok(())
    }

    /// Runs detection and the chosen later stages on one frame.
    pub fn analyze(&mut self, img: &RgbImage, stages: Stages) -> Result<Analysis, VisionError> {
        let mut times = StageTimes::default();
        let t = Instant::now();
        let detections = self.detect(img)?;
        times.detect_ms = ms_since(t);
        let mut faces: Vec<Face> =
            detections.iter().map(|&detection| Face { detection, liveness: None, embedding: None }).collect();
        if stages.liveness && !detections.is_empty() {
            let t = Instant::now();
            for (face, l) in faces.iter_mut().zip(self.liveness(img, &detections)?) {
                face.liveness = Some(l);
            }
            times.liveness_ms = ms_since(t);
        }
        if stages.embed && !detections.is_empty() {
            let t = Instant::now();
            for (face, e) in faces.iter_mut().zip(self.embed(img, &detections)?) {
                face.embedding = e;
            }
            times.align_embed_ms = ms_since(t);
        }
        Ok(Analysis { width: img.width(), height: img.height(), faces, times })
    }
}

/// The batch sizes `n` items run in: as many of the largest power of two up
/// to `max` as fit, then descending powers of two (37 at most 16: 16, 16, 4,
/// 1), so that a backend compiling per input shape sees a few shapes only.
pub fn batch_sizes(n: usize, max: usize) -> Vec<usize> {
    let top = 1usize << max.max(1).ilog2();
    let mut sizes = vec![top; n / top];
    let mut rest = n % top;
    while rest > 0 {
        let b = 1usize << rest.ilog2();
        sizes.push(b);
        rest -= b;
    }
    sizes
}

/// Runs `model` over square `side` x `side` crops in batches of at most
/// `max_batch` ([`batch_sizes`]), returning `out_len` values per crop.
fn run_batched(
    model: &mut dyn Model,
    crops: &[&RgbImage],
    order: ChannelOrder,
    (side, max_batch): (u32, usize),
    out_len: usize,
) -> Result<Vec<Vec<f32>>, VisionError> {
    let side = side as usize;
    let per = 3 * side * side;
    let mut results = Vec::with_capacity(crops.len());
    let mut start = 0;
    for size in batch_sizes(crops.len(), max_batch) {
        let chunk = &crops[start..start + size];
        start += size;
        let mut input = vec![0.0f32; per * chunk.len()];
        for (crop, dst) in chunk.iter().zip(input.chunks_exact_mut(per)) {
            pack_nchw_into(crop, order, side, side, dst);
        }
        let outputs = model.run(&[chunk.len(), 3, side, side], &input)?;
        let out = outputs.first().ok_or_else(|| VisionError::Output("model returned no output".into()))?;
        if out.data.len() != out_len * chunk.len() {
            return Err(VisionError::Output(format!(
                "expected {} values for {} faces, got {}",
                out_len * chunk.len(),
                chunk.len(),
                out.data.len()
            )));
        }
        results.extend(out.data.chunks_exact(out_len).map(<[f32]>::to_vec));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::batch_sizes;

    #[test]
    fn batches_are_powers_of_two_up_to_the_maximum() {
        assert_eq!(batch_sizes(0, 16), Vec::<usize>::new());
        assert_eq!(batch_sizes(1, 16), [1]);
        assert_eq!(batch_sizes(37, 16), [16, 16, 4, 1]);
        assert_eq!(batch_sizes(7, 4), [4, 2, 1]);
        // A maximum that is not a power of two rounds down; 0 counts as 1.
        assert_eq!(batch_sizes(13, 12), [8, 4, 1]);
        assert_eq!(batch_sizes(3, 0), [1, 1, 1]);
        for n in 0..100 {
            assert_eq!(batch_sizes(n, 8).iter().sum::<usize>(), n);
        }
    }
}
