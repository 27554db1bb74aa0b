//! One streamed frame through the pipeline, on an inference worker: decode,
//! detect, then for the largest face the liveness model, the temporal
//! features and (when asked) the embedding.

use std::time::Instant;

use image::RgbImage;
use serde::Serialize;

use crate::biometrics::capture::{self, Quality};
use crate::biometrics::pad::primary_features;
use crate::biometrics::temporal::FrameFeatures;
use crate::decode::{DecodeLimits, decode_image};
use crate::vision::{BBox, Detection, Embedding, Face, FaceAnalyzer};

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
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs the frame through the models. `embed`: also embed the largest face;
/// `keep`: return the decoded image too.
pub fn analyse(
    a: &mut FaceAnalyzer,
    input: FrameInput,
    limits: &DecodeLimits,
    embed: bool,
    keep: bool,
) -> Result<FrameAnalysis, String> {
    let mut latency = Latency::default();
    let t = Instant::now();
    let img = match input {
        FrameInput::Encoded(bytes) => decode_image(&bytes, limits).map_err(|e| e.to_string())?,
        FrameInput::Pixels(img) => img,
    };
    latency.decode = ms(t);
    let t = Instant::now();
    let detections: Vec<Detection> = a.detect(&img).map_err(|e| e.to_string())?;
    latency.detect = ms(t);
    let faces: Vec<FaceOut> = detections
        .iter()
        .map(|d| FaceOut {
            bbox: d.bbox,
            landmarks: d.landmarks,
            score: d.score,
            quality: capture::quality(&img, &Face { detection: *d, liveness: None, embedding: None }),
        })
        .collect();
    let t = Instant::now();
    let found = primary_features(a, &img, &detections).map_err(|e| e.to_string())?;
    latency.liveness = ms(t);
    let primary = found.as_ref().map(|(i, _)| *i);
    let (mut features, mut embedding) = (None, None);
    if let Some((i, f)) = found {
        features = Some(f);
        if embed {
            let t = Instant::now();
            embedding = a.embed(&img, &detections[i..=i]).map_err(|e| e.to_string())?.pop().flatten();
            latency.embed = ms(t);
        }
    }
    Ok(FrameAnalysis {
        width: img.width(),
        height: img.height(),
        faces,
        primary,
        features,
        embedding,
        latency,
        image: keep.then_some(img),
    })
}
