//! YuNet face detection: input packing, anchor decoding and non-maximum suppression.
//!
//! The 2023mar model emits, per stride s in {8, 16, 32}, `cls_s` and `obj_s`
//! (already sigmoid), `bbox_s` and `kps_s` for a grid of `W/s` x `H/s` anchors.
//! Decoding follows OpenCV's `FaceDetectorYN` so boxes match it to ~1e-4 px.

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::backend::Tensor;
use super::warp;

const STRIDES: [usize; 3] = [8, 16, 32];
/// YuNet's input sides must be multiples of its largest stride.
const ALIGN: u32 = 32;

/// An axis-aligned box in pixels of the original image.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BBox {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

impl BBox {
    pub fn area(&self) -> f32 {
        self.w.max(0.0) * self.h.max(0.0)
    }

    pub fn iou(&self, other: &BBox) -> f32 {
        let ix = (self.x + self.w).min(other.x + other.w) - self.x.max(other.x);
        let iy = (self.y + self.h).min(other.y + other.h) - self.y.max(other.y);
        let inter = ix.max(0.0) * iy.max(0.0);
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// One detected face: box, five landmarks (right eye, left eye, nose tip,
/// right and left mouth corners, as seen from the camera: the first is
/// leftmost in the image) and YuNet's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub landmarks: [[f32; 2]; 5],
    pub score: f32,
}

impl Detection {
    fn scaled(mut self, sx: f32, sy: f32) -> Detection {
        self.bbox = BBox { x: self.bbox.x * sx, y: self.bbox.y * sy, w: self.bbox.w * sx, h: self.bbox.h * sy };
        for p in &mut self.landmarks {
            p[0] *= sx;
            p[1] *= sy;
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectConfig {
    /// Minimum YuNet score, sqrt(cls * obj).
    pub score_threshold: f32,
    /// IoU above which the lower-scored of two boxes is suppressed.
    pub nms_iou: f32,
    /// Candidates kept before NMS, highest scores first.
    pub top_k: usize,
    /// Frames whose longer side exceeds this are detected on a downscaled
    /// copy (boxes mapped back to full resolution); 0 detects at native size.
    /// YuNet misplaces faces larger than ~500 px, so large photos need this.
    pub max_side: u32,
    /// Also enlarge smaller frames to `max_side` (OpenCV's letterbox into
    /// 640x640): finds smaller faces in small frames, at the cost of time.
    pub upscale: bool,
    /// Shrink with an antialiasing filter; `false` samples as OpenCV's
    /// `INTER_LINEAR` does (what OpenCV's published figures used).
    pub antialias: bool,
    /// Faces whose box is smaller than this (shorter side, in original pixels) are dropped.
    pub min_face: f32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            score_threshold: 0.75,
            nms_iou: 0.3,
            top_k: 5000,
            max_side: 640,
            upscale: false,
            antialias: true,
            min_face: 0.0,
        }
    }
}

/// The detector's input for one frame: a BGR NCHW tensor, zero-padded
/// bottom/right to multiples of 32, and how to map results back.
pub struct Prepared {
    pub shape: [usize; 4],
    pub data: Vec<f32>,
    scale_x: f32,
    scale_y: f32,
    width: u32,
    height: u32,
}

/// The size a `width` x `height` frame is detected at under `max_side`.
pub fn detection_size(width: u32, height: u32, max_side: u32, upscale: bool) -> (u32, u32) {
    let long = width.max(height);
    if max_side == 0 || long == max_side || (long < max_side && !upscale) {
        return (width, height);
    }
    let f = max_side as f64 / long as f64;
    (((width as f64 * f).round() as u32).max(1), ((height as f64 * f).round() as u32).max(1))
}

pub fn prepare(img: &RgbImage, cfg: &DetectConfig) -> Prepared {
    let (w, h) = detection_size(img.width(), img.height(), cfg.max_side, cfg.upscale);
    let resized;
    let src = if (w, h) == img.dimensions() {
        img
    } else {
        resized = warp::resize_bilinear(img, w, h, cfg.antialias);
        &resized
    };
    let (pw, ph) = (w.div_ceil(ALIGN).max(1) * ALIGN, h.div_ceil(ALIGN).max(1) * ALIGN);
    let data = super::pack_nchw(src, super::ChannelOrder::Bgr, pw as usize, ph as usize);
    Prepared {
        shape: [1, 3, ph as usize, pw as usize],
        data,
        scale_x: img.width() as f32 / w as f32,
        scale_y: img.height() as f32 / h as f32,
        width: img.width(),
        height: img.height(),
    }
}

/// Decodes YuNet's twelve outputs (named `cls_8` ... `kps_32`) for an input
/// of `prepared.shape`, applies the thresholds and NMS, and returns faces in
/// original-image pixels, largest first.
pub fn decode(
    prepared: &Prepared,
    names: &[String],
    outputs: &[Tensor],
    cfg: &DetectConfig,
) -> Result<Vec<Detection>, String> {
    let get = |name: &str| -> Result<&[f32], String> {
        names
            .iter()
            .position(|n| n == name)
            .and_then(|i| outputs.get(i))
            .map(|t| t.data.as_slice())
            .ok_or_else(|| format!("detector output {name} missing"))
    };
    let [_, _, ph, pw] = prepared.shape;
    let mut candidates = Vec::new();
    for stride in STRIDES {
        let (cols, rows) = (pw / stride, ph / stride);
        let (cls, obj) = (get(&format!("cls_{stride}"))?, get(&format!("obj_{stride}"))?);
        let (bbox, kps) = (get(&format!("bbox_{stride}"))?, get(&format!("kps_{stride}"))?);
        let n = rows * cols;
        if cls.len() < n || obj.len() < n || bbox.len() < 4 * n || kps.len() < 10 * n {
            return Err(format!("detector output for stride {stride} has the wrong size"));
        }
        let s = stride as f32;
        for idx in 0..n {
            let score = (cls[idx].clamp(0.0, 1.0) * obj[idx].clamp(0.0, 1.0)).sqrt();
            if score.is_nan() || score < cfg.score_threshold {
                continue;
            }
            let (r, c) = ((idx / cols) as f32, (idx % cols) as f32);
            let b = &bbox[idx * 4..idx * 4 + 4];
            let (cx, cy) = ((c + b[0]) * s, (r + b[1]) * s);
            let (w, h) = (b[2].exp() * s, b[3].exp() * s);
            let k = &kps[idx * 10..idx * 10 + 10];
            let landmarks = std::array::from_fn(|i| [(k[2 * i] + c) * s, (k[2 * i + 1] + r) * s]);
            candidates.push(Detection { bbox: BBox { x: cx - w / 2.0, y: cy - h / 2.0, w, h }, landmarks, score });
        }
    }
    let mut faces: Vec<Detection> = nms(candidates, cfg.nms_iou, cfg.top_k)
        .into_iter()
        .map(|d| d.scaled(prepared.scale_x, prepared.scale_y))
        .filter(|d| d.bbox.w.is_finite() && d.bbox.h.is_finite() && d.bbox.w.min(d.bbox.h) >= cfg.min_face)
        .filter(|d| overlaps_frame(&d.bbox, prepared.width, prepared.height))
        .collect();
    sort_faces(&mut faces);
    Ok(faces)
}

/// Whether at least part of the box lies inside the frame (the padding can
/// otherwise yield boxes wholly outside it).
fn overlaps_frame(b: &BBox, width: u32, height: u32) -> bool {
    b.x < width as f32 && b.y < height as f32 && b.x + b.w > 0.0 && b.y + b.h > 0.0
}

/// Greedy NMS, highest score first (OpenCV's `NMSBoxes`).
pub fn nms(mut candidates: Vec<Detection>, iou: f32, top_k: usize) -> Vec<Detection> {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    candidates.truncate(top_k);
    let mut kept: Vec<Detection> = Vec::new();
    for c in candidates {
        if kept.iter().all(|k| k.bbox.iou(&c.bbox) <= iou) {
            kept.push(c);
        }
    }
    kept
}

/// The stable order faces are reported in: largest box first, then top-to-bottom, left-to-right.
pub fn sort_faces(faces: &mut [Detection]) {
    faces.sort_by(|a, b| {
        b.bbox.area().total_cmp(&a.bbox.area()).then(a.bbox.y.total_cmp(&b.bbox.y)).then(a.bbox.x.total_cmp(&b.bbox.x))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(x: f32, y: f32, w: f32, score: f32) -> Detection {
        Detection { bbox: BBox { x, y, w, h: w }, landmarks: [[0.0; 2]; 5], score }
    }

    #[test]
    fn nms_keeps_best_of_overlapping() {
        let kept = nms(vec![det(0.0, 0.0, 10.0, 0.8), det(1.0, 1.0, 10.0, 0.9), det(50.0, 50.0, 10.0, 0.7)], 0.3, 100);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].score, 0.7);
    }

    #[test]
    fn detection_size_shrinks_large_frames_and_enlarges_on_request() {
        assert_eq!(detection_size(640, 480, 640, false), (640, 480));
        assert_eq!(detection_size(4000, 3000, 640, false), (640, 480));
        assert_eq!(detection_size(1000, 4000, 640, false), (160, 640));
        assert_eq!(detection_size(4000, 3000, 0, false), (4000, 3000));
        assert_eq!(detection_size(320, 240, 640, false), (320, 240));
        assert_eq!(detection_size(320, 240, 640, true), (640, 480));
    }

    #[test]
    fn faces_sorted_largest_first_then_position() {
        let mut faces = vec![det(50.0, 0.0, 10.0, 0.9), det(0.0, 0.0, 20.0, 0.8), det(0.0, 0.0, 10.0, 0.95)];
        sort_faces(&mut faces);
        assert_eq!(faces[0].bbox.w, 20.0);
        assert_eq!(faces[1].bbox.x, 0.0);
        assert_eq!(faces[2].bbox.x, 50.0);
    }

    #[test]
    fn prepare_pads_to_multiple_of_32_in_bgr() {
        let img = RgbImage::from_pixel(33, 10, image::Rgb([1, 2, 3]));
        let p = prepare(&img, &DetectConfig::default());
        assert_eq!(p.shape, [1, 3, 32, 64]);
        let plane = 32 * 64;
        assert_eq!((p.data[0], p.data[plane], p.data[2 * plane]), (3.0, 2.0, 1.0));
        assert_eq!(p.data[33], 0.0, "padding is zero");
    }
}
