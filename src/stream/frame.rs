//! One streamed frame through the pipeline, on an inference worker: decode,
//! detect, then for the largest face the liveness model, the temporal
//! features and (when the [`Plan`] asks) the embedding. A session's
//! [`Planner`] remembers the face it follows so that the next frame pays only
//! for what changed: no new embedding while the same face is in view and its
//! quality has not clearly improved, and detection on a reduced copy while
//! the face is large. One aligned crop per face serves quality, the temporal
//! features and the embedding.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::biometrics::capture::{self, Quality};
use crate::biometrics::pad::primary;
use crate::biometrics::stream_config::StreamConfig;
use crate::biometrics::temporal::{self, FrameFeatures};
use crate::biometrics::tracker::{EmbedCache, LINK_IOU};
use crate::decode::{DecodeLimits, decode_image};
use crate::engine::{Engine, Lane};
use crate::vision::{BBox, Detection, Embedding, FaceAnalyzer, align, liveness};

/// A frame as it arrives: an encoded still, or pixels from a video decoder.
pub enum FrameInput {
    Encoded(Vec<u8>),
    Pixels(RgbImage),
}

#[derive(Debug, Clone, Serialize)]
pub struct FaceOut {
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
    pub quality: Quality,
}

/// Per-stage milliseconds of one frame.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    pub queue: f64,
    pub decode: f64,
    pub detect: f64,
    pub liveness: f64,
    pub embed: f64,
    pub search: f64,
    pub total: f64,
}

/// What the worker learned from one frame.
pub struct FrameAnalysis {
    pub width: u32,
    pub height: u32,
    pub faces: Vec<FaceOut>,
    /// Index of the largest face in `faces`.
    pub primary: Option<usize>,
    pub features: Option<FrameFeatures>,
    pub embedding: Option<Embedding>,
    pub latency: Latency,
    /// The frame itself, kept only when asked (an enrolment's candidate).
    pub image: Option<RgbImage>,
    /// Frames that ran through the models together with this one (itself included).
    pub batch: usize,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// When the largest face is embedded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EmbedWhen {
    Never,
    Always,
    /// Unless it is the face at `bbox` (overlapping it by [`LINK_IOU`]) and its
    /// quality does not beat `bar`.
    Changed {
        bbox: BBox,
        bar: f32,
    },
}

/// How one frame is run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub embed: EmbedWhen,
    /// Detect on a copy whose longer side is at most this (None: `vision.detect.max_side`).
    pub detect_side: Option<u32>,
    /// Return the decoded image too (an enrolment's candidate).
    pub keep: bool,
}

/// What a session remembers between frames (see the module doc).
pub struct Planner {
    embed: bool,
    reuse: bool,
    fast_side: u32,
    fast_min_face: f32,
    /// The largest face of the last frame.
    last: Option<BBox>,
    cache: EmbedCache,
}

impl Planner {
    /// `embed`: the session needs embeddings; `reuse`: one may serve the
    /// following frames of the same face (identify, verify; not an enrolment,
    /// which checks every frame against the last).
    pub fn new(embed: bool, reuse: bool, config: &StreamConfig) -> Planner {
        Planner {
            embed,
            reuse: reuse && config.reuse_embeddings,
            fast_side: config.fast_detect_side,
            fast_min_face: config.fast_detect_min_face,
            last: None,
            cache: EmbedCache::default(),
        }
    }

    pub fn plan(&self, keep: bool) -> Plan {
        let embed = match (self.embed, self.reuse, self.last, self.cache.bar()) {
            (false, ..) => EmbedWhen::Never,
            (true, true, Some(bbox), Some(bar)) => EmbedWhen::Changed { bbox, bar },
            _ => EmbedWhen::Always,
        };
        let large = self.last.is_some_and(|b| b.w.min(b.h) >= self.fast_min_face);
        let detect_side = (self.fast_side > 0 && large).then_some(self.fast_side);
        Plan { embed, detect_side, keep }
    }

    /// Takes in a frame run with [`Planner::plan`]; returns the gallery answer
    /// for its largest face: searched with a new embedding, or the kept one's
    /// (refreshed every few frames).
    pub fn observe(
        &mut self,
        analysis: &FrameAnalysis,
        search: impl FnOnce(&Embedding) -> Option<(String, f32)>,
    ) -> Option<(String, f32)> {
        let face = analysis.primary.map(|i| &analysis.faces[i]);
        let same = matches!((face, self.last), (Some(f), Some(b)) if f.bbox.iou(&b) >= LINK_IOU);
        self.last = face.map(|f| f.bbox);
        match (&analysis.embedding, face) {
            (Some(e), Some(f)) => self.cache.embedded(f.quality.score, e.clone()),
            (None, Some(_)) if same && self.reuse => {}
            _ => {
                self.cache.forget();
                return None;
            }
        }
        self.cache.answer(search)
    }
}

/// One frame waiting for a worker: its pixels or bytes, its plan and the
/// limits its decoding obeys.
pub struct FrameJob {
    pub input: FrameInput,
    pub plan: Plan,
    pub limits: DecodeLimits,
}

/// The lane the frames of every kiosk session share (see [`crate::engine::Lane`]).
pub type FrameLane = Lane<FrameJob, Result<FrameAnalysis, String>>;

/// The frame lane on `engine`, batching as `config` says.
pub fn lane(engine: &Engine, config: &StreamConfig) -> FrameLane {
    let wait = std::time::Duration::from_secs_f32(config.batch_wait_ms.max(0.0) / 1e3);
    engine.lane(config.batch_frames, wait, analyse_batch)
}

/// Runs one frame through the models as its plan says.
pub fn analyse(a: &mut FaceAnalyzer, job: FrameJob) -> Result<FrameAnalysis, String> {
    analyse_batch(a, vec![job]).pop().unwrap_or_else(|| Err("no result".into()))
}

/// A decoded frame on its way through [`analyse_batch`].
struct Work {
    img: RgbImage,
    plan: Plan,
    detections: Vec<Detection>,
    aligned: Vec<Option<RgbImage>>,
    faces: Vec<FaceOut>,
    primary: Option<usize>,
    features: Option<FrameFeatures>,
    embedding: Option<Embedding>,
}

/// Runs frames of concurrent sessions through the models together: each is
/// decoded and searched for faces on its own, then the liveness model runs
/// once on every largest face and the embedder once on the faces whose plans
/// ask for it. Each frame answers as [`analyse`] alone
/// would; a stage's latency is that of the whole batched run.
pub fn analyse_batch(a: &mut FaceAnalyzer, jobs: Vec<FrameJob>) -> Vec<Result<FrameAnalysis, String>> {
    let mut latency = vec![Latency::default(); jobs.len()];
    let mut results: Vec<Result<Work, String>> = jobs
        .into_iter()
        .zip(latency.iter_mut())
        .map(|(job, lat)| {
            let t = Instant::now();
            let img = match job.input {
                FrameInput::Encoded(bytes) => decode_image(&bytes, &job.limits).map_err(|e| e.to_string()),
                FrameInput::Pixels(img) => Ok(img),
            };
            lat.decode = ms(t);
            img.map(|img| Work {
                img,
                plan: job.plan,
                detections: Vec::new(),
                aligned: Vec::new(),
                faces: Vec::new(),
                primary: None,
                features: None,
                embedding: None,
            })
        })
        .collect();
    if let Err(e) = run_models(a, &mut results, &mut latency) {
        return latency.iter().map(|_| Err(e.clone())).collect();
    }
    let batch = results.len();
    results.into_iter().zip(latency).map(|(w, latency)| w.map(|w| finish(w, latency, batch))).collect()
}

/// The batched model runs of [`analyse_batch`]; an error fails every frame.
fn run_models(
    a: &mut FaceAnalyzer,
    results: &mut [Result<Work, String>],
    latency: &mut [Latency],
) -> Result<(), String> {
    let full = a.config().detect.max_side;
    let mut work: Vec<(&mut Work, &mut Latency)> =
        results.iter_mut().zip(latency.iter_mut()).filter_map(|(w, l)| w.as_mut().ok().map(|w| (w, l))).collect();
    let t = Instant::now();
    let frames: Vec<(&RgbImage, u32)> =
        work.iter().map(|(w, _)| (&w.img, w.plan.detect_side.unwrap_or(full))).collect();
    let detected = a.detect_many(&frames).map_err(|e| e.to_string())?;
    let detect_ms = ms(t);
    for ((w, lat), detections) in work.iter_mut().zip(detected) {
        lat.detect = detect_ms;
        w.aligned = detections.iter().map(|d| align::align(&w.img, &d.landmarks)).collect();
        w.faces = detections
            .iter()
            .zip(&w.aligned)
            .map(|(d, crop)| FaceOut {
                bbox: d.bbox,
                landmarks: d.landmarks,
                score: d.score,
                quality: capture::quality_aligned(d, crop.as_ref()),
            })
            .collect();
        w.primary = primary(&detections);
        w.detections = detections;
    }
    let t = Instant::now();
    let crops: Vec<RgbImage> =
        work.iter().filter_map(|(w, _)| w.primary.map(|i| liveness::crop(&w.img, &w.detections[i].bbox))).collect();
    let mut live = a.liveness_of(&crops.iter().collect::<Vec<_>>()).map_err(|e| e.to_string())?.into_iter();
    let liveness_ms = ms(t);
    for (w, lat) in work.iter_mut() {
        lat.liveness = liveness_ms;
        w.features = w.primary.map(|i| {
            let score = live.next().map_or(0.0, |l| l.score);
            temporal::features_aligned(&w.img, &w.detections[i], score, w.aligned[i].as_ref())
        });
    }
    let wanted: Vec<bool> = work.iter().map(|(w, _)| wants_embedding(w)).collect();
    let t = Instant::now();
    let faces: Vec<Option<RgbImage>> = work
        .iter_mut()
        .zip(&wanted)
        .filter(|(_, want)| **want)
        .map(|((w, _), _)| w.primary.and_then(|i| w.aligned[i].take()))
        .collect();
    let mut embedded = if faces.is_empty() {
        Vec::new().into_iter()
    } else {
        a.embed_aligned(&faces).map_err(|e| e.to_string())?.into_iter()
    };
    let embed_ms = ms(t);
    for ((w, lat), want) in work.iter_mut().zip(wanted) {
        if want {
            lat.embed = embed_ms;
            w.embedding = embedded.next().flatten();
        }
    }
    Ok(())
}

fn finish(w: Work, latency: Latency, batch: usize) -> FrameAnalysis {
    FrameAnalysis {
        width: w.img.width(),
        height: w.img.height(),
        faces: w.faces,
        primary: w.primary,
        features: w.features,
        embedding: w.embedding,
        latency,
        image: w.plan.keep.then_some(w.img),
        batch,
    }
}

/// Whether the plan of `w` wants its largest face embedded.
fn wants_embedding(w: &Work) -> bool {
    let Some(i) = w.primary else { return false };
    match w.plan.embed {
        EmbedWhen::Never => false,
        EmbedWhen::Always => true,
        EmbedWhen::Changed { bbox, bar } => w.faces[i].bbox.iou(&bbox) < LINK_IOU || w.faces[i].quality.score > bar,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(x: f32, side: f32, quality: f32, embedding: Option<Embedding>) -> FrameAnalysis {
        let bbox = BBox { x, y: 50.0, w: side, h: side };
        FrameAnalysis {
            width: 640,
            height: 480,
            faces: vec![FaceOut {
                bbox,
                landmarks: [[0.0; 2]; 5],
                score: 0.9,
                quality: Quality { score: quality, size: 1.0, frontal: 1.0, sharpness: 1.0 },
            }],
            primary: Some(0),
            features: None,
            embedding,
            latency: Latency::default(),
            image: None,
            batch: 1,
        }
    }

    fn unit(i: usize) -> Embedding {
        Embedding::from_raw((0..128).map(|j| if j == i { 1.0 } else { 0.0 }).collect()).expect("unit")
    }

    #[test]
    fn a_followed_face_is_embedded_again_only_when_it_improves_or_changes() {
        let mut p = Planner::new(true, true, &StreamConfig::default());
        assert_eq!(p.plan(false).embed, EmbedWhen::Always, "nothing followed yet");
        let searches = std::cell::Cell::new(0);
        let search = |_: &Embedding| {
            searches.set(searches.get() + 1);
            Some(("u1".to_string(), 0.8))
        };
        assert_eq!(p.observe(&frame(100.0, 200.0, 0.5, Some(unit(0))), search), Some(("u1".into(), 0.8)));
        let Plan { embed: EmbedWhen::Changed { bbox, bar }, detect_side: None, .. } = p.plan(false) else {
            panic!("{:?}", p.plan(false))
        };
        assert_eq!(bbox.x, 100.0);
        assert!((bar - 0.575).abs() < 1e-6, "15 % better than 0.5: {bar}");
        // The same face, not embedded: the kept answer, searched again every 5 frames.
        for _ in 0..10 {
            assert_eq!(p.observe(&frame(104.0, 200.0, 0.5, None), search), Some(("u1".into(), 0.8)));
        }
        assert_eq!(searches.get(), 3, "once when embedded, then every 5 frames");
        // A face elsewhere is another face: nothing kept.
        assert_eq!(p.observe(&frame(400.0, 150.0, 0.5, None), search), None);
        assert_eq!(p.plan(false).embed, EmbedWhen::Always);
        // No reuse (an enrolment): every frame.
        let mut e = Planner::new(true, false, &StreamConfig::default());
        e.observe(&frame(100.0, 200.0, 0.5, Some(unit(1))), |_| None);
        assert_eq!(e.plan(false).embed, EmbedWhen::Always);
        assert_eq!(Planner::new(false, true, &StreamConfig::default()).plan(true).embed, EmbedWhen::Never);
    }

    #[test]
    fn reduced_detection_only_when_configured_and_the_face_is_large() {
        let mut p = Planner::new(true, true, &StreamConfig::default());
        p.observe(&frame(100.0, 200.0, 0.5, Some(unit(0))), |_| None);
        assert_eq!(p.plan(false).detect_side, None, "off by default");
        let config = StreamConfig { fast_detect_side: 320, ..StreamConfig::default() };
        let mut p = Planner::new(true, true, &config);
        assert_eq!(p.plan(false).detect_side, None, "no face yet");
        p.observe(&frame(100.0, 200.0, 0.5, Some(unit(0))), |_| None);
        assert_eq!(p.plan(false).detect_side, Some(320));
        p.observe(&frame(100.0, 80.0, 0.5, Some(unit(0))), |_| None);
        assert_eq!(p.plan(false).detect_side, None, "a small face needs the full frame");
    }
}
