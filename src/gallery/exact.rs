//! The exact 1:N scan: a dot product with every live vector, then top-k.

use super::kernels::dot;

/// The `k` best `(slot, score)` among slots that `keep` accepts, best first.
pub fn top_k_exact(
    vectors: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(usize, f32)> {
    if k == 0 || dim == 0 {
        return Vec::new();
    }
    let scored: Vec<(usize, f32)> = vectors
        .chunks_exact(dim)
        .enumerate()
        .filter(|&(slot, _)| keep(slot))
        .map(|(slot, v)| (slot, dot(v, query)))
        .collect();
    best_k(scored, k)
}

/// The `k` best of `scored`, best first (ties: lower slot first).
pub fn best_k(mut scored: Vec<(usize, f32)>, k: usize) -> Vec<(usize, f32)> {
    let by_score = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if k == 0 {
        return Vec::new();
    }
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, by_score);
        scored.truncate(k);
    }
    scored.sort_by(by_score);
    scored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_sorted_and_filtered() {
        let vectors = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8, -1.0, 0.0];
        let hits = top_k_exact(&vectors, 2, &[1.0, 0.0], 2, |_| true);
        assert_eq!(hits, vec![(0, 1.0), (2, 0.6)]);
        let hits = top_k_exact(&vectors, 2, &[1.0, 0.0], 10, |slot| slot != 0);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [2, 1, 3]);
    }
}
