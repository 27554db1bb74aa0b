//! Simulated presentations for liveness tests: from one photo of a real face
//! and its detection, a clip of 640x480 frames as a camera would see a
//! living person (bona fide) or an attack (the photo repeated as a still, the
//! photo on a screen, the photo on paper). Everything is made here from the
//! fixture photos; no clip of a real attack exists in the test data.
//!
//! - bona fide: the head sways and turns (rigid motion plus a non-rigid
//!   shift around the nose that moves it against the eyes), blinks once
//!   mid-clip, the light breathes, the sensor adds noise;
//! - still: the same frame every time, with fresh sensor noise;
//! - screen: the photo inside a black bezel on a wall, a moiré grating
//!   where the screen's pixels beat with the camera's, a glare spot, a
//!   hand-held (rigid) wobble;
//! - print: the photo washed out (low contrast, little colour) on white
//!   paper on a dark desk, a hand-held wobble.

use image::{Rgb, RgbImage};
use serde::Serialize;

use crate::util::SynthRng;
use crate::vision::detect::Detection;

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Presentation {
    BonaFide,
    Still,
    Screen,
    Print,
}

impl Presentation {
    pub const ALL: [Presentation; 4] =
        [Presentation::BonaFide, Presentation::Still, Presentation::Screen, Presentation::Print];

    pub fn is_attack(self) -> bool {
        self != Presentation::BonaFide
    }

    pub fn name(self) -> &'static str {
        match self {
            Presentation::BonaFide => "bona fide",
            Presentation::Still => "still photo",
            Presentation::Screen => "screen replay",
            Presentation::Print => "print",
        }
    }
}

/// Maps canvas coordinates into the photo: the face scaled to ~180 px wide and centred.
struct Framing {
    scale: f32,
    face: (f32, f32),
    nose: (f32, f32),
    eyes: [(f32, f32); 2],
    iod: f32,
}

impl Framing {
    fn new(det: &Detection) -> Framing {
        let b = &det.bbox;
        let l = det.landmarks;
        let iod = ((l[1][0] - l[0][0]).powi(2) + (l[1][1] - l[0][1]).powi(2)).sqrt().max(4.0);
        Framing {
            scale: (180.0 / b.w.max(1.0)).clamp(0.2, 4.0),
            face: (b.x + b.w / 2.0, b.y + b.h / 2.0),
            nose: (l[2][0], l[2][1]),
            eyes: [(l[0][0], l[0][1]), (l[1][0], l[1][1])],
            iod,
        }
    }

    fn to_photo(&self, x: f32, y: f32) -> (f32, f32) {
        ((x - 320.0) / self.scale + self.face.0, (y - 230.0) / self.scale + self.face.1)
    }
}

/// Bilinear sample; outside the photo its edge is repeated (a constant fill
/// would draw straight borders that a real camera does not see).
fn sample(img: &RgbImage, x: f32, y: f32) -> Option<[f32; 3]> {
    let (w, h) = (img.width() as f32, img.height() as f32);
    if !(x.is_finite() && y.is_finite()) {
        return None;
    }
    let (x, y) = (x.clamp(0.0, w - 1.0), y.clamp(0.0, h - 1.0));
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (x1, y1) = ((x0 + 1).min(img.width() - 1), (y0 + 1).min(img.height() - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let (a, b, c, d) = (img.get_pixel(x0, y0), img.get_pixel(x1, y0), img.get_pixel(x0, y1), img.get_pixel(x1, y1));
    Some(std::array::from_fn(|k| {
        (a[k] as f32 * (1.0 - fx) + b[k] as f32 * fx) * (1.0 - fy) + (c[k] as f32 * (1.0 - fx) + d[k] as f32 * fx) * fy
    }))
}

fn noise(rng: &mut SynthRng, sigma: f32) -> f32 {
    // The sum of three uniforms: close enough to a Gaussian for sensor noise.
    (rng.uniform() + rng.uniform() + rng.uniform() - 1.5) * 2.0 * sigma
}

fn to_pixel(v: [f32; 3]) -> Rgb<u8> {
    Rgb(v.map(|c| c.round().clamp(0.0, 255.0) as u8))
}

/// A small hand-held motion: rotation, shift and zoom varying smoothly over the clip.
fn wobble(t: f32, phase: f32, amount: f32) -> impl Fn(f32, f32) -> (f32, f32) {
    let tau = std::f32::consts::TAU;
    let angle = amount * 0.03 * (tau * t + phase).sin();
    let (tx, ty) = (amount * 7.0 * (tau * t + 2.0 * phase).sin(), amount * 5.0 * (tau * t * 0.7 + phase).cos());
    let zoom = 1.0 + amount * 0.03 * (tau * t * 1.3 + phase).sin();
    let (c, s) = (angle.cos() / zoom, angle.sin() / zoom);
    move |x, y| {
        let (dx, dy) = (x - 320.0 - tx, y - 240.0 - ty);
        (c * dx + s * dy + 320.0, -s * dx + c * dy + 240.0)
    }
}

/// A clip of `frames` frames of `kind`, from `photo` whose face is `det`.
pub fn clip(photo: &RgbImage, det: &Detection, kind: Presentation, frames: usize, seed: u64) -> Vec<RgbImage> {
    let framing = Framing::new(det);
    let mut rng = SynthRng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let phase = rng.uniform() * std::f32::consts::TAU;
    let skin: [[f32; 3]; 2] = framing.eyes.map(|(ex, ey)| {
        let mut acc = [0.0f32; 3];
        let mut n = 0.0f32;
        for dy in -2..=2 {
            for dx in -2..=2 {
                if let Some(p) = sample(photo, ex + dx as f32, ey + 0.4 * framing.iod + dy as f32) {
                    for k in 0..3 {
                        acc[k] += p[k];
                    }
                    n += 1.0;
                }
            }
        }
        acc.map(|v| v / n.max(1.0))
    });
    let blink = frames / 2..frames / 2 + 2;
    (0..frames)
        .map(|i| {
            let t = i as f32 / frames.max(1) as f32;
            let mut out = RgbImage::new(WIDTH, HEIGHT);
            match kind {
                Presentation::BonaFide => {
                    let rigid = wobble(t, phase, 1.0);
                    let gain = 1.0 + 0.05 * (std::f32::consts::TAU * t * 1.5 + phase).sin();
                    let turn = 0.2 * framing.iod * (std::f32::consts::TAU * t + phase).sin();
                    let sigma = 0.25 * framing.iod;
                    let closed = blink.contains(&i);
                    for (x, y, px) in out.enumerate_pixels_mut() {
                        let (cx, cy) = rigid(x as f32, y as f32);
                        let (mut px_, py_) = framing.to_photo(cx, cy);
                        let d2 = (px_ - framing.nose.0).powi(2) + (py_ - framing.nose.1).powi(2);
                        px_ += turn * (-d2 / (2.0 * sigma * sigma)).exp();
                        let mut v = sample(photo, px_, py_).unwrap_or([110.0; 3]);
                        if closed {
                            for (e, s) in framing.eyes.iter().zip(&skin) {
                                let (ux, uy) = ((px_ - e.0) / (0.32 * framing.iod), (py_ - e.1) / (0.2 * framing.iod));
                                let r = ux * ux + uy * uy;
                                if r < 1.0 {
                                    let a = (3.0 * (1.0 - r)).min(1.0);
                                    v = std::array::from_fn(|k| v[k] * (1.0 - a) + s[k] * a);
                                }
                            }
                        }
                        let n = noise(&mut rng, 2.5);
                        *px = to_pixel(v.map(|c| c * gain + n));
                    }
                }
                Presentation::Still => {
                    for (x, y, px) in out.enumerate_pixels_mut() {
                        let (sx, sy) = framing.to_photo(x as f32, y as f32);
                        let v = sample(photo, sx, sy).unwrap_or([110.0; 3]);
                        let n = noise(&mut rng, 2.5);
                        *px = to_pixel(v.map(|c| c + n));
                    }
                }
                Presentation::Screen | Presentation::Print => {
                    let screen = kind == Presentation::Screen;
                    let hold = wobble(t, phase, 0.6);
                    let k = if screen { 0.74 } else { 0.68 };
                    let (half_w, half_h) = (320.0 * k, 240.0 * k);
                    let rim = if screen { 12.0 } else { 18.0 };
                    let (theta, period) = (0.35f32, 4.3f32);
                    let glare_at = (320.0 + 45.0, 210.0 - 30.0);
                    for (x, y, px) in out.enumerate_pixels_mut() {
                        let (qx, qy) = hold(x as f32, y as f32);
                        let (dx, dy) = (qx - 320.0, qy - 240.0);
                        let v = if dx.abs() <= half_w && dy.abs() <= half_h {
                            let (sx, sy) = framing.to_photo(dx / k + 320.0, dy / k + 240.0);
                            let v = sample(photo, sx, sy).unwrap_or([110.0; 3]);
                            if screen {
                                let beat = 1.0
                                    + 0.12
                                        * ((x as f32 * theta.cos() + y as f32 * theta.sin()) * std::f32::consts::TAU
                                            / period)
                                            .sin();
                                let g = 120.0
                                    * (-((qx - glare_at.0).powi(2) + (qy - glare_at.1).powi(2)) / (2.0 * 50.0 * 50.0))
                                        .exp();
                                v.map(|c| c * beat + g)
                            } else {
                                let grey = 0.299 * v[0] + 0.587 * v[1] + 0.114 * v[2];
                                v.map(|c| 40.0 + 0.7 * (grey + 0.45 * (c - grey)))
                            }
                        } else if dx.abs() <= half_w + rim && dy.abs() <= half_h + rim {
                            if screen { [12.0, 12.0, 14.0] } else { [236.0, 233.0, 226.0] }
                        } else if screen {
                            let g = 150.0 + 40.0 * (y as f32 / HEIGHT as f32);
                            [g, g - 4.0, g - 10.0]
                        } else {
                            [88.0, 74.0, 62.0]
                        };
                        let n = noise(&mut rng, 2.5);
                        *px = to_pixel(v.map(|c| c + n));
                    }
                }
            }
            out
        })
        .collect()
}
