//! Choosing the face to enrol or verify from one photo or the sampled frames
//! of a video: quality per face (size, pose, sharpness, detector score),
//! one person only, liveness judged across frames.

use image::RgbImage;
use serde::Serialize;

use crate::vision::{Analysis, Embedding, Face, align};

/// Below this short side (pixels) a face is too small to enrol well.
const GOOD_FACE_SIDE: f32 = 112.0;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaptureError {
    #[error("no face found")]
    NoFace,
    #[error("{count} faces found{where_}; exactly one is required")]
    ManyFaces { count: usize, where_: String },
    #[error("the face could not be aligned (landmarks degenerate)")]
    NotAligned,
    #[error("the video shows more than one person (similarity {score:.3} between frames {a} and {b})")]
    DifferentPeople { a: usize, b: usize, score: f32 },
    #[error("liveness check failed: {live} of {frames} frames look live (mean score {mean:.3}, {threshold} needed)")]
    NotLive { live: usize, frames: usize, mean: f32, threshold: f32 },
}

/// How good a face is for recognition, in [0, 1], and its parts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    pub score: f32,
    /// Short side of the box relative to 112 px, capped at 1.
    pub size: f32,
    /// 1 for a frontal face; falls as the nose moves off the eyes' midline.
    pub frontal: f32,
    /// Variance of the Laplacian of the aligned grey crop, mapped to [0, 1).
    pub sharpness: f32,
}

/// Scores a face in `img` (the aligned crop is recomputed: ~0.1 ms).
pub fn quality(img: &RgbImage, face: &Face) -> Quality {
    quality_aligned(&face.detection, align::align(img, &face.detection.landmarks).as_ref())
}

/// [`quality`] from the face's crop already aligned by [`align::align`].
pub fn quality_aligned(d: &crate::vision::Detection, aligned: Option<&RgbImage>) -> Quality {
    let size = (d.bbox.w.min(d.bbox.h) / GOOD_FACE_SIDE).clamp(0.0, 1.0);
    let [re, le, nose, _, _] = d.landmarks;
    let eye_dist = ((le[0] - re[0]).powi(2) + (le[1] - re[1]).powi(2)).sqrt().max(1.0);
    let mid = (re[0] + le[0]) / 2.0;
    let frontal = (1.0 - 2.0 * (nose[0] - mid).abs() / eye_dist).clamp(0.0, 1.0);
    let laplacian = aligned.map_or(0.0, laplacian_variance);
    let sharpness = laplacian / (laplacian + 100.0);
    let score = size * (0.5 + 0.5 * frontal) * (0.5 + 0.5 * sharpness) * d.score.clamp(0.0, 1.0);
    Quality { score, size, frontal, sharpness }
}

fn laplacian_variance(img: &RgbImage) -> f32 {
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w < 3 || h < 3 {
        return 0.0;
    }
    let grey: Vec<f32> =
        img.pixels().map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32).collect();
    let mut values = Vec::with_capacity((w - 2) * (h - 2));
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let c = grey[y * w + x];
            values.push(
                grey[y * w + x - 1] + grey[y * w + x + 1] + grey[(y - 1) * w + x] + grey[(y + 1) * w + x] - 4.0 * c,
            );
        }
    }
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32
}

/// The chosen face and what was learned about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// Which frame (0 for a photo) and which face in it.
    pub frame: usize,
    pub face: usize,
    pub embedding: Embedding,
    pub quality: Quality,
    /// Mean liveness score over the frames with a face (None when liveness was not run).
    pub liveness: Option<f32>,
    pub frames_with_face: usize,
}

/// What a capture requires.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Refuse frames with more than one face (enrolment); otherwise use the largest.
    pub single_face: bool,
    /// Require the mean liveness score, and at least half the frames, to reach this.
    pub liveness_threshold: Option<f32>,
    /// Faces of one video whose similarity to the chosen face is below this are another person.
    pub same_person: f32,
}

/// Picks the best face across `frames` (each an image and its analysis).
pub fn choose(frames: &[(&RgbImage, &Analysis)], rules: &Rules) -> Result<Capture, CaptureError> {
    let mut best: Option<(usize, usize, Quality)> = None;
    let mut with_face = Vec::new();
    for (i, (img, analysis)) in frames.iter().enumerate() {
        if analysis.faces.is_empty() {
            continue;
        }
        if rules.single_face && analysis.faces.len() > 1 {
            let where_ = if frames.len() > 1 { format!(" in frame {i}") } else { String::new() };
            return Err(CaptureError::ManyFaces { count: analysis.faces.len(), where_ });
        }
        with_face.push(i);
        // Faces come largest first: the main face of a frame is the first.
        let face = &analysis.faces[0];
        if face.embedding.is_none() {
            continue;
        }
        let q = quality(img, face);
        if best.is_none_or(|(_, _, b)| q.score > b.score) {
            best = Some((i, 0, q));
        }
    }
    if with_face.is_empty() {
        return Err(CaptureError::NoFace);
    }
    let (frame, face, quality) = best.ok_or(CaptureError::NotAligned)?;
    let embedding = frames[frame].1.faces[face].embedding.clone().ok_or(CaptureError::NotAligned)?;
    for &i in &with_face {
        if let Some(other) = &frames[i].1.faces[0].embedding {
            let score = embedding.cosine(other);
            if score.is_nan() || score < rules.same_person {
                return Err(CaptureError::DifferentPeople { a: frame, b: i, score });
            }
        }
    }
    let scores: Vec<f32> = with_face.iter().filter_map(|&i| frames[i].1.faces[0].liveness.map(|l| l.score)).collect();
    let liveness = (!scores.is_empty()).then(|| scores.iter().sum::<f32>() / scores.len() as f32);
    if let Some(threshold) = rules.liveness_threshold {
        let live = scores.iter().filter(|&&s| s >= threshold).count();
        let mean = liveness.unwrap_or(0.0);
        if scores.is_empty() || mean.is_nan() || mean < threshold || 2 * live < scores.len() {
            return Err(CaptureError::NotLive { live, frames: scores.len(), mean, threshold });
        }
    }
    Ok(Capture { frame, face, embedding, quality, liveness, frames_with_face: with_face.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laplacian_of_flat_is_zero_and_of_edges_is_large() {
        let flat = RgbImage::from_pixel(20, 20, image::Rgb([90, 90, 90]));
        assert_eq!(laplacian_variance(&flat), 0.0);
        let checker =
            RgbImage::from_fn(20, 20, |x, y| if (x + y) % 2 == 0 { image::Rgb([255; 3]) } else { image::Rgb([0; 3]) });
        assert!(laplacian_variance(&checker) > 1000.0);
    }

    #[test]
    fn no_frames_means_no_face() {
        let rules = Rules { single_face: true, liveness_threshold: None, same_person: 0.363 };
        assert_eq!(choose(&[], &rules), Err(CaptureError::NoFace));
    }
}
