//! An inverted-file (IVF) index over a tenant's vectors, for galleries too
//! large for the exact scan: spherical k-means puts every face in the list
//! of its nearest centroid; a search scans the int8 codes of the lists of
//! the `probe` centroids nearest the query and hands the best candidates to
//! an exact f32 re-rank (`TenantIndex::search_where`). Recall is measured
//! against the exact scan (`tests`, `rostro bench-gallery`).
//!
//! The layout (centroids and which face sits in which list) can be saved
//! and restored ([`Layout`]), so that start-up files each stored vector
//! under a known list instead of training again; the layout never supplies
//! a vector, and a face whose vector does not match its recorded checksum is
//! filed afresh.

use ndarray::ArrayView2;

use super::FaceId;
use super::kernels::{dot, quantize, scan_i8};
use crate::util::SynthRng;

/// Training sample per centroid, and k-means rounds.
const SAMPLE_PER_LIST: usize = 64;
const ROUNDS: usize = 6;
/// Vectors per matrix product when assigning faces to centroids.
const BLOCK: usize = 1024;

/// One inverted list: its slots and their int8 codes and scales, contiguous,
/// so that a probe reads memory sequentially (scattered rows made it ~10x slower).
#[derive(Clone, Default)]
struct List {
    slots: Vec<u32>,
    codes: Vec<i8>,
    scales: Vec<f32>,
}

pub struct Ivf {
    dim: usize,
    centroids: Vec<f32>,
    lists: Vec<List>,
}

/// How many lists for `n` faces: about sqrt(n), so that a probe of 32 lists
/// reads ~3 % of 10^6 faces.
pub fn lists_for(n: usize) -> usize {
    (n as f64).sqrt().round().clamp(8.0, 4096.0) as usize
}

/// The nearest centroid of every slot in `slots`: blocks of vectors times the
/// centroid matrix (matrixmultiply's GEMM), on all cores.
fn assign(centroids: &[f32], dim: usize, vectors: &[f32], slots: &[usize]) -> Vec<usize> {
    let k = centroids.len() / dim;
    let Ok(c) = ArrayView2::from_shape((k, dim), centroids) else {
        return vec![0; slots.len()];
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from).min(8);
    let chunk = slots.len().div_ceil(threads).max(1);
    let part = |part: &[usize]| {
        let mut out = Vec::with_capacity(part.len());
        let mut block = Vec::with_capacity(BLOCK * dim);
        for rows in part.chunks(BLOCK) {
            block.clear();
            for &slot in rows {
                block.extend_from_slice(&vectors[slot * dim..(slot + 1) * dim]);
            }
            let Ok(a) = ArrayView2::from_shape((rows.len(), dim), &block[..]) else {
                out.extend(std::iter::repeat_n(0, rows.len()));
                continue;
            };
            let scores = a.dot(&c.t());
            out.extend(scores.rows().into_iter().map(|row| {
                row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &s)| if s > b.1 { (i, s) } else { b }).0
            }));
        }
        out
    };
    std::thread::scope(|s| {
        let parts: Vec<_> = slots.chunks(chunk).map(|p| s.spawn(move || part(p))).collect();
        parts.into_iter().flat_map(|p| p.join().unwrap_or_default()).collect()
    })
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

/// A cheap checksum of a vector's bits (FNV-1a over its words): tells a
/// restored layout whether the stored vector is still the one it filed.
pub fn checksum(v: &[f32]) -> u32 {
    v.iter().fold(0x811C_9DC5u32, |h, x| (h ^ x.to_bits()).wrapping_mul(0x0100_0193))
}

/// What a saved index holds: the centroids, and per list the faces filed there
/// with the checksum of the vector they had.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub dim: usize,
    /// The live count the index was built for (it is rebuilt at twice that).
    pub built_for: usize,
    pub centroids: Vec<f32>,
    pub lists: Vec<Vec<(FaceId, u32)>>,
}

const LAYOUT_MAGIC: &[u8; 8] = b"rIVF\0\0\0\x01";

impl Layout {
    pub fn to_bytes(&self) -> Vec<u8> {
        let faces: usize = self.lists.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(32 + self.centroids.len() * 4 + self.lists.len() * 4 + faces * 12);
        out.extend_from_slice(LAYOUT_MAGIC);
        for n in [self.dim, self.built_for, self.lists.len()] {
            out.extend_from_slice(&(n as u64).to_le_bytes());
        }
        for x in &self.centroids {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for list in &self.lists {
            out.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for (id, sum) in list {
                out.extend_from_slice(&id.to_le_bytes());
                out.extend_from_slice(&sum.to_le_bytes());
            }
        }
        out
    }

    /// The layout in `bytes`, or `None` when they are not a whole layout.
    pub fn from_bytes(bytes: &[u8]) -> Option<Layout> {
        let mut r = Reader(bytes.strip_prefix(LAYOUT_MAGIC)?);
        let (dim, built_for, lists) = (r.u64()? as usize, r.u64()? as usize, r.u64()? as usize);
        if dim == 0 || lists == 0 || lists > 1 << 20 || r.0.len() < dim * lists * 4 {
            return None;
        }
        let centroids = (0..dim * lists).map(|_| r.u32().map(f32::from_bits)).collect::<Option<Vec<_>>>()?;
        let mut out = Vec::with_capacity(lists);
        for _ in 0..lists {
            let n = r.u32()? as usize;
            if r.0.len() < n * 12 {
                return None;
            }
            out.push((0..n).map(|_| Some((r.u64()?, r.u32()?))).collect::<Option<Vec<_>>>()?);
        }
        r.0.is_empty().then_some(Layout { dim, built_for, centroids, lists: out })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
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
        let mut ivf = Ivf::empty(dim, centroids);
        for (&slot, c) in live.iter().zip(assign(&ivf.centroids, dim, vectors, live)) {
            ivf.file(c, slot, &vectors[slot * dim..(slot + 1) * dim]);
        }
        ivf
    }

    fn empty(dim: usize, centroids: Vec<f32>) -> Ivf {
        Ivf { dim, lists: vec![List::default(); centroids.len() / dim.max(1)], centroids }
    }

    /// Rebuilds the index of `layout` over the live slots: a slot filed there
    /// with a matching checksum goes back to its list, any other live slot to
    /// its nearest centroid. Returns the index and how many slots were filed
    /// afresh (`None`: the layout does not fit these vectors).
    pub fn restore(
        layout: &Layout,
        vectors: &[f32],
        dim: usize,
        slot_of: impl Fn(FaceId) -> Option<usize>,
        live: &[usize],
    ) -> Option<(Ivf, usize)> {
        if layout.dim != dim || layout.centroids.len() != dim * layout.lists.len() {
            return None;
        }
        let mut ivf = Ivf::empty(dim, layout.centroids.clone());
        let mut placed = vec![false; vectors.len() / dim];
        for (c, list) in layout.lists.iter().enumerate() {
            for &(id, sum) in list {
                if let Some(slot) = slot_of(id) {
                    let v = &vectors[slot * dim..(slot + 1) * dim];
                    if !placed[slot] && checksum(v) == sum {
                        placed[slot] = true;
                        ivf.file(c, slot, v);
                    }
                }
            }
        }
        let rest: Vec<usize> = live.iter().copied().filter(|&s| !placed[s]).collect();
        for (&slot, c) in rest.iter().zip(assign(&ivf.centroids, dim, vectors, &rest)) {
            ivf.file(c, slot, &vectors[slot * dim..(slot + 1) * dim]);
        }
        Some((ivf, rest.len()))
    }

    /// The layout to save, naming slots by the face ids `id_of` gives.
    pub fn layout(&self, built_for: usize, vectors: &[f32], id_of: impl Fn(usize) -> FaceId) -> Layout {
        let dim = self.dim;
        let lists = self
            .lists
            .iter()
            .map(|l| {
                l.slots
                    .iter()
                    .map(|&s| (id_of(s as usize), checksum(&vectors[s as usize * dim..(s as usize + 1) * dim])))
                    .collect()
            })
            .collect();
        Layout { dim, built_for, centroids: self.centroids.clone(), lists }
    }

    fn file(&mut self, list: usize, slot: usize, v: &[f32]) {
        let list = &mut self.lists[list];
        list.slots.push(slot as u32);
        list.scales.push(quantize(v, &mut list.codes));
    }

    /// The longest list and the mean list length (balance check).
    #[cfg(test)]
    pub fn balance(&self) -> (usize, f64) {
        let max = self.lists.iter().map(|l| l.slots.len()).max().unwrap_or(0);
        (max, self.lists.iter().map(|l| l.slots.len()).sum::<usize>() as f64 / self.lists.len().max(1) as f64)
    }

    /// Bytes held: centroids and lists.
    pub fn memory_bytes(&self) -> usize {
        let lists: usize =
            self.lists.iter().map(|l| l.slots.capacity() * 4 + l.codes.capacity() + l.scales.capacity() * 4).sum();
        self.centroids.capacity() * 4 + lists
    }

    /// Files a new slot under its nearest centroid.
    pub fn add(&mut self, slot: usize, v: &[f32]) {
        let c = nearest(&self.centroids, self.dim, v);
        self.file(c, slot, v);
    }

    /// The `want` best slots that `keep` accepts by their int8 score, among the
    /// lists of the `probe` centroids nearest `query`, in no order, with that
    /// score (an estimate of the cosine, within ~0.01).
    pub fn candidates(
        &self,
        query: &[f32],
        probe: usize,
        want: usize,
        keep: impl Fn(usize) -> bool,
    ) -> Vec<(usize, f32)> {
        let mut near: Vec<(usize, f32)> =
            self.centroids.chunks_exact(self.dim).map(|c| dot(c, query)).enumerate().collect();
        let probe = probe.clamp(1, near.len().max(1));
        if near.len() > probe {
            near.select_nth_unstable_by(probe - 1, |a, b| b.1.total_cmp(&a.1));
            near.truncate(probe);
        }
        let mut q = Vec::with_capacity(self.dim);
        let q_scale = quantize(query, &mut q);
        let (mut out, mut dots) = (Vec::new(), Vec::new());
        // The `want` best so far are kept with the score they must beat, so
        // that most of the ~64k codes of a probe at 10^6 lose at one
        // comparison instead of being collected and selected among.
        let room = want.saturating_mul(4).max(64);
        let mut floor = f32::NEG_INFINITY;
        for (c, _) in near {
            let list = &self.lists[c];
            dots.clear();
            scan_i8(&list.codes, self.dim, &q, &mut dots);
            for ((&slot, &d), &scale) in list.slots.iter().zip(&dots).zip(&list.scales) {
                let score = d as f32 * scale * q_scale;
                if score > floor && keep(slot as usize) {
                    out.push((slot as usize, score));
                    if want > 0 && out.len() >= room {
                        out.select_nth_unstable_by(want - 1, |a, b| b.1.total_cmp(&a.1));
                        out.truncate(want);
                        floor = out[want - 1].1;
                    }
                }
            }
        }
        if out.len() > want && want > 0 {
            out.select_nth_unstable_by(want - 1, |a, b| b.1.total_cmp(&a.1));
            out.truncate(want);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The running floor changes nothing: the candidates are the best `want`
    /// of every probed code the filter keeps, as collecting them all gives.
    #[test]
    fn candidates_are_the_best_of_all_probed_codes() {
        let (dim, n) = (16, 3000);
        let mut rng = crate::util::SynthRng(7);
        let vectors: Vec<f32> = (0..n).flat_map(|_| rng.unit(dim, None, 1.0)).collect();
        let live: Vec<usize> = (0..n).collect();
        let ivf = Ivf::build(&vectors, dim, &live, 20);
        let query = &vectors[5 * dim..6 * dim];
        let keep = |slot: usize| !slot.is_multiple_of(3);
        let all = ivf.candidates(query, 8, 0, keep);
        let mut best = all.clone();
        best.sort_by(|a, b| b.1.total_cmp(&a.1));
        for want in [1, 10, 64, 200] {
            let mut got = ivf.candidates(query, 8, want, keep);
            got.sort_by(|a, b| b.1.total_cmp(&a.1));
            assert_eq!(got.len(), want.min(all.len()));
            assert_eq!(got, best[..got.len()], "want {want}");
            assert!(got.iter().all(|&(slot, _)| keep(slot)));
        }
    }

    #[test]
    fn a_layout_survives_bytes_and_refuses_damage() {
        let layout =
            Layout { dim: 2, built_for: 3, centroids: vec![1.0, 0.0, 0.0, 1.0], lists: vec![vec![(7, 9)], vec![]] };
        let bytes = layout.to_bytes();
        assert_eq!(Layout::from_bytes(&bytes), Some(layout));
        assert_eq!(Layout::from_bytes(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Layout::from_bytes(&[bytes.as_slice(), &[0]].concat()), None);
        assert_eq!(Layout::from_bytes(b"rIVF"), None);
    }
}
