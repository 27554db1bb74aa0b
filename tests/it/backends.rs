//! The derived model copies and the two backends agree with each other.

use rostro::vision::backend::{self, Backend, BackendKind, Precision, Threads};
use rostro::vision::{FaceAnalyzer, VisionConfig};

use crate::common::{models, root};

fn ort() -> Box<dyn Backend> {
    backend::create(BackendKind::Ort, &models().runtime, Threads::default()).expect("ort")
}

/// A deterministic pseudo-image input in 0..255.
fn input(len: usize) -> Vec<f32> {
    (0..len).map(|i| ((i * 7919) % 256) as f32).collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// The fetch step rewrites how each graph is declared; the numbers it computes must not change.
#[test]
fn derived_models_compute_what_the_originals_do() {
    let ort = ort();
    let original = root().join("models/original");
    let m = models();
    for (orig, derived, shape) in [
        ("face_detection_yunet_2023mar.onnx", &m.detector, [1, 3, 640, 640]),
        ("face_recognition_sface_2021dec.onnx", &m.embedder, [1, 3, 112, 112]),
        ("fr_liveness.onnx", &m.liveness, [1, 3, 128, 128]),
    ] {
        let x = input(shape.iter().product());
        let a = ort.load(&original.join(orig), Precision::F32).expect("original").run(&shape, &x).expect("run");
        let b = ort.load(derived, Precision::F32).expect("derived").run(&shape, &x).expect("run");
        assert_eq!(a.len(), b.len(), "{orig}");
        for (ta, tb) in a.iter().zip(&b) {
            assert_eq!(ta.shape, tb.shape, "{orig}");
            let scale = ta.data.iter().map(|v| v.abs()).fold(1.0, f32::max);
            assert!(max_diff(&ta.data, &tb.data) <= 1e-4 * scale, "{orig}: {}", max_diff(&ta.data, &tb.data));
        }
    }
}

/// Two analyzers find the same faces with the same scores, liveness and embeddings.
fn same_faces(a: BackendKind, b: BackendKind) {
    use crate::common::{fixture, load};
    use rostro::vision::{ModelChoices, Precision, Stages};
    let config = |backend| VisionConfig {
        backend,
        models: ModelChoices::all(backend, Precision::F32),
        ..VisionConfig::default()
    };
    let mut x = FaceAnalyzer::new(&models(), config(a)).expect("first backend");
    let mut y = FaceAnalyzer::new(&models(), config(b)).expect("second backend");
    for name in ["obama.jpg", "astronaut.png", "biden.jpg"] {
        let img = load(&fixture(name));
        // Twice: the first run of a shape uses OpenVINO's dynamic copy, the second a static one.
        for round in 0..2 {
            let (fa, fb) =
                (x.analyze(&img, Stages::ALL).expect("first"), y.analyze(&img, Stages::ALL).expect("second"));
            assert_eq!(fa.faces.len(), fb.faces.len(), "{name} {a} {b}");
            for (p, q) in fa.faces.iter().zip(&fb.faces) {
                let (dp, dq) = (&p.detection, &q.detection);
                assert!((dp.score - dq.score).abs() < 1e-3, "{name} {a} {b} round {round}");
                assert!(
                    (dp.bbox.x - dq.bbox.x).abs() < 0.05 && (dp.bbox.w - dq.bbox.w).abs() < 0.05,
                    "{name} {a} {b}: {dp:?} {dq:?}"
                );
                let (ep, eq) = (p.embedding.as_ref().expect("e"), q.embedding.as_ref().expect("e"));
                assert!(max_diff(ep.as_slice(), eq.as_slice()) < 1e-3, "{name} {a} {b}");
                let (lp, lq) = (p.liveness.expect("l"), q.liveness.expect("l"));
                assert!(max_diff(&lp.probabilities, &lq.probabilities) < 1e-3, "{name} {a} {b}");
            }
        }
    }
}

#[test]
fn openvino_and_ort_give_the_same_faces() {
    same_faces(BackendKind::Openvino, BackendKind::Ort);
}

#[cfg(feature = "tract")]
#[test]
fn ort_and_tract_give_the_same_faces() {
    same_faces(BackendKind::Ort, BackendKind::Tract);
}

/// A model on a backend of its own, and bf16 where only f32 runs.
#[test]
fn backend_and_precision_are_chosen_per_model() {
    use rostro::vision::{ModelChoice, Precision, Stages};
    let mut config = VisionConfig { backend: BackendKind::Openvino, ..VisionConfig::default() };
    config.models.detector = ModelChoice { backend: Some(BackendKind::Ort), precision: Precision::F32 };
    let mut mixed = FaceAnalyzer::new(&models(), config.clone()).expect("ort detector, openvino for the rest");
    let faces =
        mixed.analyze(&crate::common::load(&crate::common::fixture("obama.jpg")), Stages::ALL).expect("analyze");
    assert_eq!(faces.faces.len(), 1);
    assert!(faces.faces[0].embedding.is_some());

    config.models.detector.precision = Precision::Bf16;
    let err = FaceAnalyzer::new(&models(), config).err().expect("ONNX Runtime runs f32 only");
    assert!(err.to_string().contains("precision bf16 needs backend \"openvino\""), "{err}");
}

#[test]
fn a_missing_openvino_library_is_a_clear_load_error() {
    let mut files = models();
    files.openvino = root().join("models/runtime/openvino/no-such-lib.so");
    let err = FaceAnalyzer::new(&files, VisionConfig { backend: BackendKind::Openvino, ..VisionConfig::default() })
        .err()
        .expect("no library");
    assert!(err.to_string().contains("OpenVINO library not found"), "{err}");
}

#[cfg(not(feature = "tract"))]
#[test]
fn tract_backend_is_refused_with_a_clear_message_when_not_built() {
    let err = FaceAnalyzer::new(&models(), VisionConfig { backend: BackendKind::Tract, ..VisionConfig::default() })
        .err()
        .expect("no tract in this build");
    assert!(err.to_string().contains("--features tract"), "{err}");
}

/// `device = "cuda"` without the GPU libraries (`make gpu` not run, or no
/// device): the models run on the CPU as configured, and the analyzer says why.
#[test]
fn cuda_without_its_libraries_falls_back_to_the_cpu_and_says_why() {
    use rostro::vision::{Device, Stages};
    let mut files = models();
    files.gpu = root().join("models/runtime/no-such-gpu-dir");
    let config = VisionConfig { device: Device::Cuda, ..VisionConfig::default() };
    let mut a = FaceAnalyzer::new(&files, config).expect("falls back to the CPU");
    assert_eq!(a.device(), "cpu (openvino)");
    let why = a.fallback().expect("a reason");
    assert!(why.contains("libonnxruntime.so.1.31.1 not found") && why.contains("make gpu"), "{why}");
    let img = crate::common::load(&crate::common::fixture("obama.jpg"));
    let on_cpu = crate::common::analyzer().analyze(&img, Stages::ALL).expect("analyze");
    let fallen_back = a.analyze(&img, Stages::ALL).expect("analyze");
    assert_eq!(fallen_back.faces.len(), on_cpu.faces.len());
    assert_eq!(fallen_back.faces[0].detection, on_cpu.faces[0].detection);
    // Asked for the CPU, nothing to explain.
    assert!(crate::common::analyzer().fallback().is_none());
}

/// Batched runs answer as runs of one: several frames through the detector
/// at once, several crops through liveness and the embedder.
#[test]
fn batched_model_runs_answer_as_single_ones() {
    use rostro::vision::{align, liveness};
    let mut a = crate::common::analyzer_with(|v| v.max_batch = 4);
    let photos: Vec<_> = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "obama.jpg"]
        .iter()
        .map(|p| crate::common::load(&crate::common::fixture(p)))
        .collect();
    let side = a.config().detect.max_side;
    let frames: Vec<_> = photos.iter().map(|p| (p, side)).collect();
    let many = a.detect_many(&frames).expect("detect many");
    let mut crops = Vec::new();
    let mut aligned = Vec::new();
    for (p, found) in photos.iter().zip(&many) {
        let alone = a.detect(p).expect("detect");
        assert_eq!(found.len(), alone.len());
        for (x, y) in found.iter().zip(&alone) {
            for (u, v) in [(x.bbox.x, y.bbox.x), (x.bbox.y, y.bbox.y), (x.bbox.w, y.bbox.w), (x.score, y.score)] {
                assert!((u - v).abs() < 1e-2, "batched {x:?} alone {y:?}");
            }
        }
        crops.push(liveness::crop(p, &alone[0].bbox));
        aligned.push(align::align(p, &alone[0].landmarks));
    }
    let live = a.liveness_of(&crops.iter().collect::<Vec<_>>()).expect("liveness");
    let embedded = a.embed_aligned(&aligned).expect("embed");
    for i in 0..photos.len() {
        let one = a.liveness_of(&[&crops[i]]).expect("liveness")[0].score;
        assert!((one - live[i].score).abs() < 1e-3, "alone {one}, batched {}", live[i].score);
        let e = a.embed_aligned(&aligned[i..=i]).expect("embed")[0].clone().expect("embedding");
        assert!(e.cosine(embedded[i].as_ref().expect("embedding")) > 0.9999);
    }
}
