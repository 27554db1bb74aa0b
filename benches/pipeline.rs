//! Per-stage latency of the face pipeline on the 640x480 frame that OpenCV
//! 5.0 was measured on (DESIGN.md: decode 1.6 ms, detect 10.0, liveness 2.9,
//! align+embed 10.9, detect+liveness+align+embed 25.5).
//!
//! `cargo bench --bench pipeline`. Thread settings from the environment:
//! `ROSTRO_BENCH_THREADS=1`, `ROSTRO_BENCH_SPIN=false`, `ROSTRO_BENCH_SHARED_POOL=false`.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use rostro::decode::{DecodeLimits, decode_image};
use rostro::vision::{FaceAnalyzer, ModelFiles, Stages, VisionConfig};

fn frame_bytes() -> Vec<u8> {
    let path = std::env::var_os("ROSTRO_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"))
        .join("bench/frame_640x480.jpg");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn analyzer(edit: impl FnOnce(&mut VisionConfig)) -> FaceAnalyzer {
    let mut config = VisionConfig::default();
    let env = |name: &str| std::env::var(name).ok();
    if let Some(t) = env("ROSTRO_BENCH_THREADS").and_then(|v| v.parse().ok()) {
        config.threads.intra = t;
    }
    if let Some(spin) = env("ROSTRO_BENCH_SPIN").and_then(|v| v.parse().ok()) {
        config.threads.spin = spin;
    }
    if let Some(shared) = env("ROSTRO_BENCH_SHARED_POOL").and_then(|v| v.parse().ok()) {
        config.threads.shared_pool = shared;
    }
    edit(&mut config);
    FaceAnalyzer::new(&ModelFiles::locate(None), config).expect("models: run `make setup`")
}

fn stages(c: &mut Criterion) {
    let bytes = frame_bytes();
    let limits = DecodeLimits::default();
    let img = decode_image(&bytes, &limits).expect("frame decodes");
    let mut a = analyzer(|_| {});
    let faces = a.detect(&img).expect("detect");
    assert_eq!(faces.len(), 1, "the bench frame has one face");
    eprintln!("threads: {:?}", a.config().threads);

    c.bench_function("decode_jpeg_640x480", |b| b.iter(|| decode_image(black_box(&bytes), &limits).expect("decode")));
    c.bench_function("detect_640x480", |b| b.iter(|| a.detect(black_box(&img)).expect("detect")));
    c.bench_function("liveness", |b| b.iter(|| a.liveness(black_box(&img), &faces).expect("liveness")));
    c.bench_function("align_embed", |b| b.iter(|| a.embed(black_box(&img), &faces).expect("embed")));
    c.bench_function("frame_detect_liveness_embed", |b| {
        b.iter(|| a.analyze(black_box(&img), Stages::ALL).expect("analyze"))
    });
    c.bench_function("frame_with_decode", |b| {
        b.iter(|| {
            let img = decode_image(black_box(&bytes), &limits).expect("decode");
            a.analyze(&img, Stages::ALL).expect("analyze")
        })
    });

    // Large faces need no full-resolution detection: a 320 px copy finds this one.
    let mut small = analyzer(|c| c.detect.max_side = 320);
    assert_eq!(small.detect(&img).expect("detect").len(), 1);
    c.bench_function("detect_at_320", |b| b.iter(|| small.detect(black_box(&img)).expect("detect")));
    c.bench_function("frame_detect_at_320", |b| {
        b.iter(|| small.analyze(black_box(&img), Stages::ALL).expect("analyze"))
    });
}

criterion_group!(benches, stages);
criterion_main!(benches);
