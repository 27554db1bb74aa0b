//! Affine resampling of RGB frames (bilinear): face alignment and liveness crops,
//! plus the resize that fits a frame to the detector.

use image::RgbImage;

/// What a sample outside the source image reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// Black, as OpenCV's `warpAffine` with `BORDER_CONSTANT` (face alignment).
    Zero,
    /// The nearest edge pixel, as OpenCV's `resize` (liveness crops).
    Replicate,
}

/// A 2x3 affine map `[a b c; d e f]`: `x' = a x + b y + c`, `y' = d x + e y + f`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine(pub [[f64; 3]; 2]);

impl Affine {
    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.0;
        (m[0][0] * x + m[0][1] * y + m[0][2], m[1][0] * x + m[1][1] * y + m[1][2])
    }

    /// The inverse map, or `None` when the map is singular.
    pub fn invert(&self) -> Option<Affine> {
        let [[a, b, c], [d, e, f]] = self.0;
        let det = a * e - b * d;
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        Some(Affine([[ia, ib, -(ia * c + ib * f)], [id, ie, -(id * c + ie * f)]]))
    }
}

/// Fills a `width` x `height` image whose pixel `(x, y)` samples `src` at
/// `dst_to_src(x, y)` (integer pixel centres, OpenCV's convention).
pub fn warp(src: &RgbImage, dst_to_src: &Affine, width: u32, height: u32, border: Border) -> RgbImage {
    let (sw, sh) = (src.width() as i64, src.height() as i64);
    let raw = src.as_raw();
    let pixel = |x: i64, y: i64| -> [f32; 3] {
        let (x, y) = match border {
            Border::Zero if x < 0 || y < 0 || x >= sw || y >= sh => return [0.0; 3],
            Border::Zero => (x, y),
            Border::Replicate => (x.clamp(0, sw - 1), y.clamp(0, sh - 1)),
        };
        let i = ((y * sw + x) * 3) as usize;
        [raw[i] as f32, raw[i + 1] as f32, raw[i + 2] as f32]
    };
    let mut out = RgbImage::new(width, height);
    if sw == 0 || sh == 0 {
        return out;
    }
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (sx, sy) = dst_to_src.apply(x as f64, y as f64);
        if !sx.is_finite() || !sy.is_finite() {
            continue;
        }
        let (x0, y0) = (sx.floor(), sy.floor());
        let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
        let (x0, y0) = (x0 as i64, y0 as i64);
        let (p00, p01, p10, p11) = (pixel(x0, y0), pixel(x0 + 1, y0), pixel(x0, y0 + 1), pixel(x0 + 1, y0 + 1));
        for c in 0..3 {
            let top = p00[c] + (p01[c] - p00[c]) * fx;
            let bottom = p10[c] + (p11[c] - p10[c]) * fx;
            px.0[c] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The map that `resize` of the rectangle `[x0, x0+w) x [y0, y0+h)` to
/// `out_w` x `out_h` samples with (half-pixel centres, as OpenCV's `resize`).
pub fn crop_resize_map(x0: f64, y0: f64, w: f64, h: f64, out_w: u32, out_h: u32) -> Affine {
    let (sx, sy) = (w / out_w as f64, h / out_h as f64);
    Affine([[sx, 0.0, x0 + 0.5 * sx - 0.5], [0.0, sy, y0 + 0.5 * sy - 0.5]])
}

/// Resizes `src` to `width` x `height` with a bilinear filter (SIMD, via
/// fast_image_resize). With `antialias` the filter widens when shrinking, so
/// every source pixel contributes (as PIL's bilinear); without, it samples
/// four pixels (OpenCV's `resize(INTER_LINEAR)`).
pub fn resize_bilinear(src: &RgbImage, width: u32, height: u32, antialias: bool) -> RgbImage {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let alg = if antialias {
        ResizeAlg::Convolution(FilterType::Bilinear)
    } else {
        ResizeAlg::Interpolation(FilterType::Bilinear)
    };
    let options = ResizeOptions::new().resize_alg(alg);
    let resized = ImageRef::new(src.width(), src.height(), src.as_raw(), PixelType::U8x3)
        .ok()
        .and_then(|view| Resizer::new().resize(&view, &mut dst, &options).ok());
    match resized.and_then(|()| RgbImage::from_raw(width, height, dst.into_vec())) {
        Some(img) => img,
        // Unreachable for a well-formed RgbImage; the scalar sampler computes the same map.
        None => {
            let map = crop_resize_map(0.0, 0.0, src.width() as f64, src.height() as f64, width, height);
            warp(src, &map, width, height, Border::Replicate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_warp_copies() {
        let src = RgbImage::from_fn(5, 4, |x, y| image::Rgb([x as u8 * 10, y as u8 * 20, 7]));
        let out = warp(&src, &Affine([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), 5, 4, Border::Zero);
        assert_eq!(out, src);
    }

    #[test]
    fn zero_border_is_black_and_replicate_is_edge() {
        let src = RgbImage::from_pixel(2, 2, image::Rgb([200, 100, 50]));
        let shift = Affine([[1.0, 0.0, 10.0], [0.0, 1.0, 10.0]]);
        assert_eq!(warp(&src, &shift, 1, 1, Border::Zero).get_pixel(0, 0).0, [0, 0, 0]);
        assert_eq!(warp(&src, &shift, 1, 1, Border::Replicate).get_pixel(0, 0).0, [200, 100, 50]);
    }

    #[test]
    fn bilinear_midpoint_averages() {
        let src = RgbImage::from_fn(2, 1, |x, _| image::Rgb([if x == 0 { 0 } else { 100 }; 3]));
        let half = Affine([[1.0, 0.0, 0.5], [0.0, 1.0, 0.0]]);
        assert_eq!(warp(&src, &half, 1, 1, Border::Replicate).get_pixel(0, 0).0, [50; 3]);
    }

    #[test]
    fn simd_resize_matches_the_scalar_sampler() {
        let src = RgbImage::from_fn(37, 23, |x, y| image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x * y) % 256) as u8]));
        for (w, h) in [(20, 12), (64, 40), (37, 23)] {
            let fast = resize_bilinear(&src, w, h, false);
            let slow = warp(&src, &crop_resize_map(0.0, 0.0, 37.0, 23.0, w, h), w, h, Border::Replicate);
            let worst = fast.as_raw().iter().zip(slow.as_raw()).map(|(a, b)| a.abs_diff(*b)).max();
            assert!(worst <= Some(1), "{w}x{h}: off by {worst:?}");
        }
    }

    #[test]
    fn invert_round_trips() {
        let m = Affine([[0.8, -0.3, 12.0], [0.3, 0.8, -4.0]]);
        let inv = m.invert().expect("invertible");
        let (x, y) = m.apply(3.0, 7.0);
        let (bx, by) = inv.apply(x, y);
        assert!((bx - 3.0).abs() < 1e-9 && (by - 7.0).abs() < 1e-9);
        assert!(Affine([[0.0; 3]; 2]).invert().is_none());
    }
}
