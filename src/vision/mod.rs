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

/// Faces embedded or checked for liveness per model run.
const MAX_BATCH: usize = 16;

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
            backend: BackendKind::default(),
            threads: Threads::default(),
            models: ModelChoices::default(),
            detect: DetectConfig::default(),
            liveness_threshold: 0.5,
            match_threshold: embed::DEFAULT_THRESHOLD,
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
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

impl FaceAnalyzer {
    /// Loads the three models, each with the backend and precision `config` names for it.
    pub fn new(files: &ModelFiles, config: VisionConfig) -> Result<FaceAnalyzer, VisionError> {
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
        Ok(FaceAnalyzer {
            detector: load(&files.detector, models.detector)?,
            liveness: load(&files.liveness, models.liveness)?,
            embedder: load(&files.embedder, models.embedder)?,
            config,
        })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.config
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

    /// The single-frame liveness verdict for each face.
    pub fn liveness(&mut self, img: &RgbImage, faces: &[Detection]) -> Result<Vec<Liveness>, VisionError> {
        let crops: Vec<RgbImage> = faces.iter().map(|d| liveness::crop(img, &d.bbox)).collect();
        let crops: Vec<&RgbImage> = crops.iter().collect();
        let logits = run_batched(self.liveness.as_mut(), &crops, ChannelOrder::Bgr, liveness::SIZE, 3)?;
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
        let mut raw =
            run_batched(self.embedder.as_mut(), &crops, ChannelOrder::Rgb, align::SIZE, embed::DIM)?.into_iter();
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
            run_batched(self.liveness.as_mut(), &[&live], ChannelOrder::Bgr, liveness::SIZE, 3)?;
            run_batched(self.embedder.as_mut(), &[&face], ChannelOrder::Rgb, align::SIZE, embed::DIM)?;
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

/// Runs `model` over square `side` x `side` crops in batches, returning
/// `out_len` values per crop.
fn run_batched(
    model: &mut dyn Model,
    crops: &[&RgbImage],
    order: ChannelOrder,
    side: u32,
    out_len: usize,
) -> Result<Vec<Vec<f32>>, VisionError> {
    let side = side as usize;
    let per = 3 * side * side;
    let mut results = Vec::with_capacity(crops.len());
    for chunk in crops.chunks(MAX_BATCH) {
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
