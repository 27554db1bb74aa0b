//! An inverted-file (IVF) index over a tenant's vectors, for galleries too
//! large for the exact scan: spherical k-means puts every face in the list
//! of its nearest centroid; a search scans only the lists of the `probe`
//! centroids nearest the query. Recall is measured against the exact scan
//! (`tests`, `rostro bench-gallery`).

use super::exact::dot;
use crate::util::SynthRng;

/// Training sample per centroid, and k-means rounds.
const SAMPLE_PER_LIST: usize = 64;
const ROUNDS: usize = 6;

/// One inverted list: its slots and a contiguous copy of their vectors, so
/// that a probe reads memory sequentially (scattered rows made it ~10x slower).
#[derive(Clone, Default)]
struct List {
    slots: Vec<u32>,
    vectors: Vec<f32>,
}

pub struct Ivf {
    dim: usize,
    centroids: Vec<f32>,
    lists: Vec<List>,
}

/// How many lists for `n` faces: about sqrt(n)/4, so that assigning every
/// face costs n * sqrt(n)/4 dot products (1e6 faces: 250 lists).
pub fn lists_for(n: usize) -> usize {
    ((n as f64).sqrt() / 4.0).round().clamp(8.0, 4096.0) as usize
}

fn nearest(centroids: &[f32], dim: usize, v: &[f32]) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
        let s = dot(centroid, v);
        if s > best.1 {
            best = (c, s);
        }
    }
    best.0
}

/// The nearest centroid of every slot in `slots`, on all cores.
fn assign(centroids: &[f32], dim: usize, vectors: &[f32], slots: &[usize]) -> Vec<usize> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    let chunk = slots.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let parts: Vec<_> = slots
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|&slot| nearest(centroids, dim, &vectors[slot * dim..(slot + 1) * dim]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_default()).collect()
    })
}

impl Ivf {
    /// Trains `lists` centroids on a sample of the live slots, then files every live slot.
    pub fn build(vectors: &[f32], dim: usize, live: &[usize], lists: usize) -> Ivf {
        let k = lists.clamp(1, live.len().max(1));
        let mut rng = SynthRng(0x1F5E_ED00 ^ live.len() as u64);
        let mut sample: Vec<usize> = live.to_vec();
        // Partial Fisher-Yates: the first `want` entries become a uniform sample.
        let want = (k * SAMPLE_PER_LIST).min(sample.len());
        for i in 0..want {
            let j = i + (rng.next_u64() as usize) % (sample.len() - i);
            sample.swap(i, j);
        }
        sample.truncate(want);
        let mut centroids: Vec<f32> = sample[..k.min(sample.len())]
            .iter()
            .flat_map(|&slot| vectors[slot * dim..(slot + 1) * dim].iter().copied())
            .collect();
        for _ in 0..ROUNDS {
            let owners = assign(&centroids, dim, vectors, &sample);
            let mut sums = vec![0.0f32; centroids.len()];
            let mut counts = vec![0usize; k];
            for (&slot, &c) in sample.iter().zip(&owners) {
                counts[c] += 1;
                for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(&vectors[slot * dim..(slot + 1) * dim]) {
                    *s += x;
                }
            }
            for c in 0..centroids.len() / dim {
                let sum = &sums[c * dim..(c + 1) * dim];
                let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
                // An empty cluster keeps its centroid.
                if counts[c] > 0 && norm > f32::EPSILON {
                    for (dst, x) in centroids[c * dim..(c + 1) * dim].iter_mut().zip(sum) {
                        *dst = x / norm;
                    }
                }
            }
        }
        let mut ivf = Ivf { dim, lists: vec![List::default(); centroids.len() / dim], centroids };
        for (&slot, c) in live.iter().zip(assign(&ivf.centroids, dim, vectors, live)) {
            ivf.lists[c].slots.push(slot as u32);
            ivf.lists[c].vectors.extend_from_slice(&vectors[slot * dim..(slot + 1) * dim]);
        }
        ivf
    }

    /// The longest list and the mean list length (balance check).
    #[cfg(test)]
    pub fn balance(&self) -> (usize, f64) {
        let max = self.lists.iter().map(|l| l.slots.len()).max().unwrap_or(0);
        (max, self.lists.iter().map(|l| l.slots.len()).sum::<usize>() as f64 / self.lists.len().max(1) as f64)
    }

    /// Files a new slot under its nearest centroid.
    pub fn add(&mut self, slot: usize, v: &[f32]) {
        let c = nearest(&self.centroids, self.dim, v);
        self.lists[c].slots.push(slot as u32);
        self.lists[c].vectors.extend_from_slice(v);
    }

    /// `(slot, score)` of every face that `keep` accepts in the lists of the
    /// `probe` centroids nearest `query`.
    pub fn scored(&self, query: &[f32], probe: usize, keep: impl Fn(usize) -> bool) -> Vec<(usize, f32)> {
        let mut near: Vec<(usize, f32)> =
            self.centroids.chunks_exact(self.dim).map(|c| dot(c, query)).enumerate().collect();
        let probe = probe.clamp(1, near.len().max(1));
        if near.len() > probe {
            near.select_nth_unstable_by(probe - 1, |a, b| b.1.total_cmp(&a.1));
            near.truncate(probe);
        }
        let mut out = Vec::new();
        for (c, _) in near {
            let list = &self.lists[c];
            for (&slot, v) in list.slots.iter().zip(list.vectors.chunks_exact(self.dim)) {
                if keep(slot as usize) {
                    out.push((slot as usize, dot(v, query)));
                }
            }
        }
        out
    }
}
