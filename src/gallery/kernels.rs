//! The gallery's inner loops: f32 and int8 dot products, written as plain
//! lanes the compiler vectorises, and compiled a second time for AVX2 + FMA,
//! chosen at run time (the release build targets baseline x86-64, SSE2 only;
//! AVX2 made a 10^6 scan about 2x faster on this project's VM).

/// Lanes per accumulator block: two AVX registers of f32, one of i8 pairs.
const LANES: usize = 16;

#[inline(always)]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline(always)]
fn dot_i8_lanes(a: &[i8], b: &[i8]) -> i32 {
    let mut acc = [0i32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: i32 = ca.remainder().iter().zip(cb.remainder()).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += i32::from(i16::from(x[i]) * i16::from(y[i]));
        }
    }
    acc.iter().sum::<i32>() + tail
}

/// `out[j] = codes[j] . query` for every `dim`-long row of `codes`.
#[inline(always)]
fn scan_i8_lanes(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
    out.extend(codes.chunks_exact(dim).map(|row| dot_i8_lanes(row, query)));
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2,fma")]
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        super::dot_lanes(a, b)
    }

    use std::arch::x86_64::*;

    /// 32 codes at a time: `vpsignb` moves the query's signs onto the codes,
    /// `vpmaddubsw` multiplies them by the query's magnitudes (u8 x i8, pairs
    /// summed to i16: at most 2 x 127 x 127, no saturation), `vpmaddwd` sums
    /// pairs to i32. About 3x the compiler's own loop.
    #[target_feature(enable = "avx2,fma")]
    pub fn scan_i8(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
        if !dim.is_multiple_of(32) || query.contains(&i8::MIN) {
            return super::scan_i8_lanes(codes, dim, query, out);
        }
        let blocks = dim / 32;
        let load = |s: &[i8]| {
            // SAFETY: `s` holds at least 32 bytes (every caller slices 32), and loadu has no alignment need.
            unsafe { _mm256_loadu_si256(s.as_ptr().cast()) }
        };
        let q: Vec<(__m256i, __m256i)> = query.chunks_exact(32).map(|c| (_mm256_abs_epi8(load(c)), load(c))).collect();
        let ones = _mm256_set1_epi16(1);
        out.extend(codes.chunks_exact(dim).map(|row| {
            let mut acc = _mm256_setzero_si256();
            for b in 0..blocks {
                let (q_abs, q_sign) = q[b];
                let c = _mm256_sign_epi8(load(&row[b * 32..b * 32 + 32]), q_sign);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q_abs, c), ones));
            }
            let half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256::<1>(acc));
            let quad = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
            _mm_cvtsi128_si32(_mm_add_epi32(quad, _mm_shuffle_epi32::<0b10_11_00_01>(quad)))
        }));
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Dot product of two equally long vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU was just checked to have AVX2 and FMA.
        return unsafe { avx2::dot(a, b) };
    }
    dot_lanes(a, b)
}

/// Appends the int8 dot product of `query` with every `dim`-long row of `codes` to `out`.
pub fn scan_i8(codes: &[i8], dim: usize, query: &[i8], out: &mut Vec<i32>) {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU was just checked to have AVX2 and FMA.
        return unsafe { avx2::scan_i8(codes, dim, query, out) };
    }
    scan_i8_lanes(codes, dim, query, out)
}

/// `v` as int8 codes scaled to its largest magnitude, and the scale that
/// turns a code back into a value (`v[i] ~ codes[i] * scale`).
pub fn quantize(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_on_every_path() {
        let a: Vec<f32> = (0..131).map(|i| (i as f32).sin()).collect();
        let b: Vec<f32> = (0..131).map(|i| (i as f32 * 0.3).cos()).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-4);
        assert!((dot_lanes(&a, &b) - naive).abs() < 1e-4);
    }

    #[test]
    fn int8_scan_is_exact_integer_arithmetic_and_close_to_f32() {
        let mut rng = crate::util::SynthRng(3);
        let (q, rows): (Vec<f32>, Vec<Vec<f32>>) =
            (rng.unit(128, None, 1.0), (0..40).map(|_| rng.unit(128, None, 1.0)).collect());
        let (mut qc, mut codes, mut scales) = (Vec::new(), Vec::new(), Vec::new());
        let qs = quantize(&q, &mut qc);
        for r in &rows {
            scales.push(quantize(r, &mut codes));
        }
        let mut got = Vec::new();
        scan_i8(&codes, 128, &qc, &mut got);
        let mut portable = Vec::new();
        scan_i8_lanes(&codes, 128, &qc, &mut portable);
        assert_eq!(got, portable);
        for (j, r) in rows.iter().enumerate() {
            let naive: i32 =
                codes[j * 128..(j + 1) * 128].iter().zip(&qc).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum();
            assert_eq!(got[j], naive);
            let approx = got[j] as f32 * qs * scales[j];
            assert!((approx - dot(r, &q)).abs() < 0.01, "int8 {approx} vs f32 {}", dot(r, &q));
        }
    }
}
