//! 1:N gallery search latency (exact scan, top 10) at 10^4 and 10^5 (and,
//! with `ROSTRO_BENCH_GALLERY_MAX=1000000`, 10^6) faces clustered like real
//! identities, plus the time to load each gallery (start-up).
//!
//! `cargo bench --bench gallery`

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use rostro::gallery::{FaceId, GalleryConfig, TenantIndex};
use rostro::util::SynthRng;

const DIM: usize = 128;

fn gallery(c: &mut Criterion) {
    let max: usize = std::env::var("ROSTRO_BENCH_GALLERY_MAX").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let mut rng = SynthRng(0xBE1C4);
    for n in [10_000usize, 100_000, 1_000_000].into_iter().filter(|&n| n <= max) {
        let people = n / 10;
        let centres: Vec<Vec<f32>> = (0..people).map(|_| rng.unit(DIM, None, 1.0)).collect();
        let vectors: Vec<Vec<f32>> = (0..n).map(|i| rng.unit(DIM, Some(&centres[i / 10]), 0.051)).collect();
        let faces: Vec<(FaceId, &[f32])> =
            vectors.iter().enumerate().map(|(i, v)| (i as FaceId, v.as_slice())).collect();
        let queries: Vec<Vec<f32>> =
            (0..200).map(|i| rng.unit(DIM, Some(&centres[(i * 7919) % people]), 0.051)).collect();
        let t = Instant::now();
        let mut index = TenantIndex::new(DIM, GalleryConfig::default());
        index.upsert_many(&faces).expect("insert");
        eprintln!("n={n}: load {:.3} s", t.elapsed().as_secs_f64());
        let mut i = 0;
        c.bench_function(&format!("search_exact_{n}"), |b| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                index.search(black_box(&queries[i]), 10).expect("search")
            })
        });
    }
}

criterion_group!(benches, gallery);
criterion_main!(benches);
