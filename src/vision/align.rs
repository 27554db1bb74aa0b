//! Five-point face alignment: a similarity transform (rotation, uniform scale,
//! translation; never a reflection) onto SFace's 112x112 template, then a
//! bilinear warp. Reproduces OpenCV's `FaceRecognizerSF::alignCrop` to within
//! one grey level.

use image::RgbImage;

use super::warp::{self, Affine, Border};

pub const SIZE: u32 = 112;

/// Where SFace (and ArcFace) expect the five landmarks in the 112x112 crop.
pub const TEMPLATE: [[f64; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// The least-squares similarity transform mapping `src` onto `dst`
/// (Umeyama 1991, restricted to proper rotations). In 2-D its closed form is
/// `[a -b; b a]` with `a`, `b` from the centred point sets.
pub fn similarity(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Affine> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[[f64; 2]]| {
        let (sx, sy) = pts[..n].iter().fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        (sx / n as f64, sy / n as f64)
    };
    let (smx, smy) = mean(src);
    let (dmx, dmy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (sx, sy, dx, dy) = (s[0] - smx, s[1] - smy, d[0] - dmx, d[1] - dmy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if norm.is_nan() || norm <= 1e-9 || !dot.is_finite() || !cross.is_finite() {
        return None;
    }
    let (a, b) = (dot / norm, cross / norm);
    Some(Affine([[a, -b, dmx - (a * smx - b * smy)], [b, a, dmy - (b * smx + a * smy)]]))
}

/// The aligned 112x112 RGB face for these landmarks (image pixels), or `None`
/// when the landmarks are degenerate (all in one point).
pub fn align(img: &RgbImage, landmarks: &[[f32; 2]; 5]) -> Option<RgbImage> {
    let src = landmarks.map(|p| [p[0] as f64, p[1] as f64]);
    let to_template = similarity(&src, &TEMPLATE)?;
    Some(warp::warp(img, &to_template.invert()?, SIZE, SIZE, Border::Zero))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_a_known_similarity() {
        let (scale, angle, tx, ty) = (1.7_f64, 0.3_f64, 12.0, -5.0);
        let (c, s) = (scale * angle.cos(), scale * angle.sin());
        let dst: Vec<[f64; 2]> =
            TEMPLATE.iter().map(|p| [c * p[0] - s * p[1] + tx, s * p[0] + c * p[1] + ty]).collect();
        let m = similarity(&TEMPLATE, &dst).expect("solvable");
        let expected = [[c, -s, tx], [s, c, ty]];
        for (row, want) in m.0.iter().zip(expected) {
            for (got, want) in row.iter().zip(want) {
                assert!((got - want).abs() < 1e-9, "{:?}", m);
            }
        }
    }

    #[test]
    fn never_reflects() {
        let mirrored: Vec<[f64; 2]> = TEMPLATE.iter().map(|p| [112.0 - p[0], p[1]]).collect();
        let m = similarity(&TEMPLATE, &mirrored).expect("solvable").0;
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        assert!(det >= 0.0, "a similarity must keep orientation, det {det}");
    }

    #[test]
    fn degenerate_landmarks_are_refused() {
        let img = RgbImage::new(10, 10);
        assert!(align(&img, &[[5.0, 5.0]; 5]).is_none());
    }
}
