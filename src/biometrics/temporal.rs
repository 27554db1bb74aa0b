//! Liveness over time. A stream gives more than one photo: besides the
//! model's per-frame P(real), it shows whether the face moves like a head
//! (non-rigid landmark motion, texture change inside the aligned face, a
//! blink) or like a flat picture (rigid or no motion), and whether the
//! picture carries the marks of a screen or a print (moiré peaks in the
//! spectrum, glare, straight borders around the face). [`Window`] keeps the
//! last frames' [`FrameFeatures`] and turns them into one [`Signals`] verdict
//! that reports every signal.

use std::collections::VecDeque;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::vision::align;
use crate::vision::detect::Detection;

/// Side of the grey aligned crop kept per frame (the 112 crop halved).
const GREY: usize = 56;
/// Side of the native-resolution window whose spectrum is searched for moiré.
const SPECTRUM: usize = 64;

/// What one frame tells about liveness; computed on the inference worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameFeatures {
    pub landmarks: [[f32; 2]; 5],
    /// The aligned face, grey, GREY x GREY.
    #[serde(skip)]
    pub grey: Vec<u8>,
    /// Contrast of the two eye patches of the aligned face (falls when the eyes close).
    pub eye_contrast: f32,
    /// Strongest periodic peak in the face's spectrum over the band's median.
    pub moire: f32,
    /// Sides (0-4) of the face's surroundings crossed by a long straight edge.
    pub border_sides: u8,
    /// Share of saturated pixels in the face box.
    pub glare: f32,
    /// The model's P(real) for this face.
    pub model: f32,
}

/// Thresholds of the temporal decision.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemporalConfig {
    /// Frames kept; the verdict uses all of them.
    pub window: usize,
    /// No verdict before this many frames.
    pub min_frames: usize,
    /// Non-rigid landmark motion (share of the eye distance) that counts as a moving head.
    pub motion: f32,
    /// 95th percentile of the grey change inside the aligned face that counts as a living face.
    pub change: f32,
    /// Eye contrast below this share of its median counts as closed eyes.
    pub blink_drop: f32,
    /// Spectral peak ratio above which the picture is taken for a screen.
    pub moire: f32,
    /// Share of saturated face pixels above which there is glare.
    pub glare: f32,
    /// Sides with a straight border from which the face is taken to be framed.
    pub border_sides: u8,
    /// Minimum mean model P(real): the model alone cannot accept, but it can refuse.
    pub model_floor: f32,
    /// Single-frame decision: model P(real) at or above this.
    pub model_threshold: f32,
}

impl Default for TemporalConfig {
    fn default() -> Self {
        TemporalConfig {
            window: 10,
            min_frames: 6,
            motion: 0.015,
            change: 14.0,
            blink_drop: 0.6,
            moire: 30.0,
            glare: 0.1,
            border_sides: 2,
            model_floor: 0.15,
            model_threshold: 0.5,
        }
    }
}

/// Every signal of one verdict, and the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signals {
    pub frames: usize,
    /// Mean model P(real).
    pub model: f32,
    /// Largest non-rigid landmark motion against the window's first frame (share of eye distance).
    pub motion: f32,
    /// Largest 95th-percentile grey change between consecutive aligned faces.
    pub change: f32,
    pub blink: bool,
    /// Largest moiré peak ratio.
    pub moire: f32,
    /// Most sides framed by a straight border in any frame.
    pub border_sides: u8,
    pub glare: f32,
    /// Some sign of a living, moving face.
    pub alive: bool,
    /// A screen or print mark.
    pub attack_cue: bool,
    pub live: bool,
}

/// The per-frame features of `det` in `img`, with the model's P(real).
pub fn features(img: &RgbImage, det: &Detection, model: f32) -> FrameFeatures {
    features_aligned(img, det, model, align::align(img, &det.landmarks).as_ref())
}

/// [`features`] with the face's crop already aligned by [`align::align`].
pub fn features_aligned(img: &RgbImage, det: &Detection, model: f32, aligned: Option<&RgbImage>) -> FrameFeatures {
    let grey = aligned.map(halve_grey).unwrap_or_else(|| vec![0; GREY * GREY]);
    FrameFeatures {
        landmarks: det.landmarks,
        eye_contrast: eye_contrast(&grey),
        moire: moire(img, det),
        border_sides: border_sides(img, det),
        glare: glare(img, det),
        model,
        grey,
    }
}

fn luma(p: &image::Rgb<u8>) -> f32 {
    0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32
}

fn halve_grey(crop: &RgbImage) -> Vec<u8> {
    let mut out = vec![0u8; GREY * GREY];
    for y in 0..GREY {
        for x in 0..GREY {
            let mut s = 0.0;
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                s += luma(crop.get_pixel((2 * x + dx) as u32, (2 * y + dy) as u32));
            }
            out[y * GREY + x] = (s / 4.0).round() as u8;
        }
    }
    out
}

/// Standard deviation of the grey levels in the two eye patches of the aligned
/// face (the template puts the eyes at (38, 52) and (73, 52) of 112).
fn eye_contrast(grey: &[u8]) -> f32 {
    let mut values = Vec::with_capacity(2 * 10 * 6);
    for cx in [19usize, 37] {
        for y in 23..29 {
            for x in cx - 5..cx + 5 {
                values.push(grey[y * GREY + x] as f32);
            }
        }
    }
    let mean = values.iter().sum::<f32>() / values.len() as f32;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32).sqrt()
}

fn face_centre(det: &Detection) -> (f32, f32) {
    let (sx, sy) = det.landmarks.iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
    (sx / 5.0, sy / 5.0)
}

/// Ratio of the strongest mid/high-frequency peak to the band's median in the
/// spectrum of a SPECTRUM x SPECTRUM native-resolution window at the face
/// centre (Hann-windowed; the axes and JPEG's 8-pixel harmonics are left out,
/// since edges and block artefacts live there).
fn moire(img: &RgbImage, det: &Detection) -> f32 {
    let n = SPECTRUM;
    if (img.width() as usize) < n || (img.height() as usize) < n {
        return 0.0;
    }
    let (cx, cy) = face_centre(det);
    let x0 = (cx as i64 - n as i64 / 2).clamp(0, img.width() as i64 - n as i64) as u32;
    let y0 = (cy as i64 - n as i64 / 2).clamp(0, img.height() as i64 - n as i64) as u32;
    let hann: Vec<f32> =
        (0..n).map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / (n - 1) as f32).cos()).collect();
    let mut block = vec![0.0f32; n * n];
    let mut mean = 0.0;
    for y in 0..n {
        for x in 0..n {
            let v = luma(img.get_pixel(x0 + x as u32, y0 + y as u32));
            block[y * n + x] = v;
            mean += v;
        }
    }
    mean /= (n * n) as f32;
    for y in 0..n {
        for x in 0..n {
            block[y * n + x] = (block[y * n + x] - mean) * hann[x] * hann[y];
        }
    }
    let power = dft_power(&block, n);
    let mut band = Vec::new();
    let mut peak = 0.0f32;
    for v in 1..n / 2 {
        for u in 1..n {
            // Half the plane suffices (the spectrum of a real signal is symmetric).
            let fu = if u <= n / 2 { u as i64 } else { u as i64 - n as i64 };
            let r = ((fu * fu + (v * v) as i64) as f32).sqrt();
            if !(10.0..=30.0).contains(&r) || (fu.unsigned_abs() as usize).is_multiple_of(8) || v.is_multiple_of(8) {
                continue;
            }
            let p = power[v * n + u];
            peak = peak.max(p);
            band.push(p);
        }
    }
    if band.is_empty() {
        return 0.0;
    }
    band.sort_by(f32::total_cmp);
    let median = band[band.len() / 2].max(1e-6);
    (peak / median).sqrt()
}

/// Power spectrum of an n x n real block by two passes of a direct DFT
/// (n = 64: ~0.5 M multiply-adds, well under a millisecond).
fn dft_power(block: &[f32], n: usize) -> Vec<f32> {
    let (cos, sin): (Vec<f32>, Vec<f32>) = (0..n)
        .map(|k| {
            let a = -2.0 * std::f32::consts::PI * k as f32 / n as f32;
            (a.cos(), a.sin())
        })
        .unzip();
    // Rows: real input, complex output.
    let mut re = vec![0.0f32; n * n];
    let mut im = vec![0.0f32; n * n];
    for y in 0..n {
        let row = &block[y * n..(y + 1) * n];
        for u in 0..n {
            let (mut sr, mut si) = (0.0, 0.0);
            for (x, &v) in row.iter().enumerate() {
                let k = (u * x) % n;
                sr += v * cos[k];
                si += v * sin[k];
            }
            re[y * n + u] = sr;
            im[y * n + u] = si;
        }
    }
    // Columns, only the rows of frequency v < n/2 that the caller reads.
    let mut power = vec![0.0f32; n * n];
    for v in 0..n / 2 {
        for u in 0..n {
            let (mut sr, mut si) = (0.0, 0.0);
            for y in 0..n {
                let k = (v * y) % n;
                let (c, s) = (cos[k], sin[k]);
                let (a, b) = (re[y * n + u], im[y * n + u]);
                sr += a * c - b * s;
                si += a * s + b * c;
            }
            power[v * n + u] = sr * sr + si * si;
        }
    }
    power
}

/// Counts the sides of the face's surroundings (up to ~1.5 face sizes away)
/// crossed by one long straight edge: the rim of a photo, a paper or a screen.
fn border_sides(img: &RgbImage, det: &Detection) -> u8 {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let b = &det.bbox;
    let (cx, cy) = (b.x + b.w / 2.0, b.y + b.h / 2.0);
    let grey = |x: i64, y: i64| luma(img.get_pixel(x.clamp(0, w - 1) as u32, y.clamp(0, h - 1) as u32));
    // Vertical lines: left and right of the face, spanning its height and more.
    let (y_lo, y_hi) = (((cy - 1.0 * b.h) as i64).max(1), ((cy + 1.0 * b.h) as i64).min(h - 2));
    let (x_lo, x_hi) = (((cx - 1.6 * b.w) as i64).max(1), ((cx + 1.6 * b.w) as i64).min(w - 2));
    let column = |x: i64| {
        let span = (y_hi - y_lo).max(1);
        let hits = (y_lo..y_hi).filter(|&y| (grey(x + 1, y) - grey(x - 1, y)).abs() > 24.0).count();
        hits as f32 / span as f32
    };
    let row = |y: i64| {
        let (lo, hi) = (((cx - 1.0 * b.w) as i64).max(1), ((cx + 1.0 * b.w) as i64).min(w - 2));
        let span = (hi - lo).max(1);
        let hits = (lo..hi).filter(|&x| (grey(x, y + 1) - grey(x, y - 1)).abs() > 24.0).count();
        hits as f32 / span as f32
    };
    let best = |it: &mut dyn Iterator<Item = f32>| it.fold(0.0f32, f32::max);
    let left = best(&mut (x_lo..(cx - 0.65 * b.w) as i64).map(column));
    let right = best(&mut (((cx + 0.65 * b.w) as i64)..x_hi).map(column));
    let (ty_lo, by_hi) = (((cy - 1.5 * b.h) as i64).max(1), ((cy + 1.6 * b.h) as i64).min(h - 2));
    let top = best(&mut (ty_lo..(cy - 0.7 * b.h) as i64).map(row));
    let bottom = best(&mut (((cy + 0.8 * b.h) as i64)..by_hi).map(row));
    [left, right, top, bottom].iter().filter(|&&c| c >= 0.7).count() as u8
}

fn glare(img: &RgbImage, det: &Detection) -> f32 {
    let b = &det.bbox;
    let (x0, y0) = (b.x.max(0.0) as u32, b.y.max(0.0) as u32);
    let (x1, y1) = (((b.x + b.w) as u32).min(img.width()), ((b.y + b.h) as u32).min(img.height()));
    let (mut bright, mut all) = (0usize, 0usize);
    for y in y0..y1 {
        for x in x0..x1 {
            all += 1;
            if luma(img.get_pixel(x, y)) >= 250.0 {
                bright += 1;
            }
        }
    }
    if all == 0 { 0.0 } else { bright as f32 / all as f32 }
}

/// Residual of the best similarity from `a` to `b`, as a share of b's eye distance:
/// ~0 when a flat picture moves, larger when a head turns or the face changes.
fn nonrigid(a: &[[f32; 2]; 5], b: &[[f32; 2]; 5]) -> f32 {
    let (sa, sb) = (a.map(|p| [p[0] as f64, p[1] as f64]), b.map(|p| [p[0] as f64, p[1] as f64]));
    let Some(t) = align::similarity(&sa, &sb) else { return 0.0 };
    let iod = ((sb[1][0] - sb[0][0]).powi(2) + (sb[1][1] - sb[0][1]).powi(2)).sqrt().max(1.0);
    let sq: f64 = sa
        .iter()
        .zip(&sb)
        .map(|(p, q)| {
            let (x, y) = t.apply(p[0], p[1]);
            (x - q[0]).powi(2) + (y - q[1]).powi(2)
        })
        .sum();
    ((sq / 5.0).sqrt() / iod) as f32
}

fn change(a: &[u8], b: &[u8]) -> f32 {
    let mut diffs: Vec<u8> = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).collect();
    if diffs.is_empty() {
        return 0.0;
    }
    let k = diffs.len() * 95 / 100;
    *diffs.select_nth_unstable(k).1 as f32
}

/// The last frames of one face and the verdict they support.
#[derive(Debug, Clone)]
pub struct Window {
    config: TemporalConfig,
    frames: VecDeque<FrameFeatures>,
}

impl Window {
    pub fn new(config: TemporalConfig) -> Window {
        Window { config, frames: VecDeque::with_capacity(config.window) }
    }

    pub fn push(&mut self, f: FrameFeatures) {
        if self.frames.len() == self.config.window.max(2) {
            self.frames.pop_front();
        }
        self.frames.push_back(f);
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn clear(&mut self) {
        self.frames.clear();
    }

    /// The signals so far; `None` before `min_frames`.
    pub fn verdict(&self) -> Option<Signals> {
        let c = &self.config;
        if self.frames.len() < c.min_frames.max(2) {
            return None;
        }
        let first = &self.frames[0];
        let n = self.frames.len();
        let model = self.frames.iter().map(|f| f.model).sum::<f32>() / n as f32;
        // The third quartile against the first frame: a head keeps moving, one bad landmark fit does not count.
        let mut motions: Vec<f32> =
            self.frames.iter().skip(1).map(|f| nonrigid(&first.landmarks, &f.landmarks)).collect();
        motions.sort_by(f32::total_cmp);
        let motion = motions[(motions.len() * 3 / 4).min(motions.len() - 1)];
        let change = self
            .frames
            .iter()
            .zip(self.frames.iter().skip(1))
            .map(|(a, b)| change(&a.grey, &b.grey))
            .fold(0.0, f32::max);
        let mut eyes: Vec<f32> = self.frames.iter().map(|f| f.eye_contrast).collect();
        let lowest = eyes.iter().copied().fold(f32::INFINITY, f32::min);
        eyes.sort_by(f32::total_cmp);
        let blink = lowest < c.blink_drop * eyes[n / 2];
        let moire = self.frames.iter().map(|f| f.moire).fold(0.0, f32::max);
        let border_sides = self.frames.iter().map(|f| f.border_sides).max().unwrap_or(0);
        let glare = self.frames.iter().map(|f| f.glare).fold(0.0, f32::max);
        let alive = motion >= c.motion || blink;
        let attack_cue = moire >= c.moire || glare >= c.glare || border_sides >= c.border_sides;
        let live = alive && !attack_cue && model >= c.model_floor;
        Some(Signals { frames: n, model, motion, change, blink, moire, border_sides, glare, alive, attack_cue, live })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flat_picture_moved_rigidly_has_no_nonrigid_motion() {
        let a = [[100.0, 100.0], [160.0, 100.0], [130.0, 130.0], [108.0, 160.0], [152.0, 160.0]];
        let (s, r) = (1.1f32, 0.2f32);
        let b = a.map(|p| [s * (r.cos() * p[0] - r.sin() * p[1]) + 7.0, s * (r.sin() * p[0] + r.cos() * p[1]) - 3.0]);
        assert!(nonrigid(&a, &b) < 1e-4);
        let mut c = a;
        c[2][0] += 6.0; // the nose turns with the head
        assert!(nonrigid(&a, &c) > 0.03);
    }

    #[test]
    fn a_grating_has_a_spectral_peak_and_noise_has_none() {
        let mut rng = crate::util::SynthRng(0x9E37_79B9_7F4A_7C15);
        let noise = RgbImage::from_fn(128, 128, |_, _| {
            let v = (128.0 + 20.0 * (rng.uniform() - 0.5)) as u8;
            image::Rgb([v, v, v])
        });
        let grating = RgbImage::from_fn(128, 128, |x, y| {
            let t = (x as f32 * 0.2f32.cos() + y as f32 * 0.2f32.sin()) * 2.0 * std::f32::consts::PI / 4.5;
            let v = (128.0 + 30.0 * t.sin()) as u8;
            image::Rgb([v, v, v])
        });
        let det = Detection {
            bbox: crate::vision::BBox { x: 32.0, y: 32.0, w: 64.0, h: 64.0 },
            landmarks: [[50.0, 50.0], [78.0, 50.0], [64.0, 64.0], [52.0, 80.0], [76.0, 80.0]],
            score: 0.9,
        };
        assert!(moire(&noise, &det) < 6.0, "{}", moire(&noise, &det));
        assert!(moire(&grating, &det) > 20.0, "{}", moire(&grating, &det));
    }
}
