//! Passive liveness (presentation-attack detection) on one frame with the
//! MiniFASNet-style `fr_liveness.onnx`: crop 2.7x the face box, resize to
//! 128x128, BGR 0-255, softmax over {real, attack kinds}. One weak signal:
//! streams combine it with temporal cues.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::detect::BBox;
use super::warp::{self, Border};

pub const SIZE: u32 = 128;
/// How much context around the face box the model was trained with.
pub const CROP_SCALE: f64 = 2.7;

/// The model's verdict on one face.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Liveness {
    /// Probability that the face is a live person (class 0).
    pub score: f32,
    /// Softmax over the model's three classes; class 0 is "real".
    pub probabilities: [f32; 3],
}

/// The crop MiniFASNet expects, as inclusive integer corners: the box scaled
/// by `scale` around its centre (scale capped so the crop fits the image),
/// then shifted inside the image rather than shrunk.
pub fn crop_box(width: u32, height: u32, b: &BBox, scale: f64) -> (i64, i64, i64, i64) {
    let (sw, sh) = (width as f64, height as f64);
    let (bw, bh) = ((b.w as f64).max(1.0), (b.h as f64).max(1.0));
    let scale = scale.min((sh - 1.0) / bh).min((sw - 1.0) / bw).max(0.0);
    let (nw, nh) = (bw * scale, bh * scale);
    let (cx, cy) = (b.x as f64 + bw / 2.0, b.y as f64 + bh / 2.0);
    let (mut x0, mut y0, mut x1, mut y1) = (cx - nw / 2.0, cy - nh / 2.0, cx + nw / 2.0, cy + nh / 2.0);
    if x0 < 0.0 {
        x1 -= x0;
        x0 = 0.0;
    }
    if y0 < 0.0 {
        y1 -= y0;
        y0 = 0.0;
    }
    if x1 > sw - 1.0 {
        x0 -= x1 - sw + 1.0;
        x1 = sw - 1.0;
    }
    if y1 > sh - 1.0 {
        y0 -= y1 - sh + 1.0;
        y1 = sh - 1.0;
    }
    (x0.max(0.0) as i64, y0.max(0.0) as i64, x1 as i64, y1 as i64)
}

/// The 128x128 RGB crop the liveness model sees for this face.
pub fn crop(img: &RgbImage, b: &BBox) -> RgbImage {
    let (x0, y0, x1, y1) = crop_box(img.width(), img.height(), b, CROP_SCALE);
    let (w, h) = ((x1 - x0 + 1).max(1) as f64, (y1 - y0 + 1).max(1) as f64);
    let map = warp::crop_resize_map(x0 as f64, y0 as f64, w, h, SIZE, SIZE);
    warp::warp(img, &map, SIZE, SIZE, Border::Replicate)
}

/// Softmax of the model's three logits.
pub fn from_logits(logits: &[f32]) -> Liveness {
    let mut probabilities = [0.0f32; 3];
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().take(3).map(|&l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    for (p, e) in probabilities.iter_mut().zip(&exps) {
        *p = if sum > 0.0 && sum.is_finite() { e / sum } else { 0.0 };
    }
    Liveness { score: probabilities[0], probabilities }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_shifted_inside_not_shrunk() {
        // A 100 px face at the left edge of a 1000x1000 image: 270 px crop starting at 0.
        let b = BBox { x: 0.0, y: 450.0, w: 100.0, h: 100.0 };
        let (x0, y0, x1, y1) = crop_box(1000, 1000, &b, CROP_SCALE);
        assert_eq!((x0, x1 - x0), (0, 270));
        assert_eq!((y0, y1), (365, 635));
    }

    #[test]
    fn crop_scale_capped_for_big_faces() {
        let b = BBox { x: 10.0, y: 10.0, w: 80.0, h: 80.0 };
        let (x0, y0, x1, y1) = crop_box(100, 100, &b, CROP_SCALE);
        assert!(x0 >= 0 && y0 >= 0 && x1 <= 99 && y1 <= 99);
    }

    #[test]
    fn softmax_sums_to_one() {
        let l = from_logits(&[2.0, 0.5, -1.0]);
        assert!((l.probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(l.score > 0.7);
        assert_eq!(from_logits(&[f32::NAN, 0.0, 0.0]).score, 0.0);
    }
}
