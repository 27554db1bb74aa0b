//! The derived model copies and the two backends agree with each other.

use rostro::vision::backend::{self, Backend, BackendKind, Threads};
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
        let a = ort.load(&original.join(orig)).expect("original").run(&shape, &x).expect("run");
        let b = ort.load(derived).expect("derived").run(&shape, &x).expect("run");
        assert_eq!(a.len(), b.len(), "{orig}");
        for (ta, tb) in a.iter().zip(&b) {
            assert_eq!(ta.shape, tb.shape, "{orig}");
            let scale = ta.data.iter().map(|v| v.abs()).fold(1.0, f32::max);
            assert!(max_diff(&ta.data, &tb.data) <= 1e-4 * scale, "{orig}: {}", max_diff(&ta.data, &tb.data));
        }
    }
}

#[cfg(feature = "tract")]
#[test]
fn ort_and_tract_give_the_same_faces() {
    use crate::common::{fixture, load};
    use rostro::vision::Stages;
    let config = |backend| VisionConfig { backend, ..VisionConfig::default() };
    let mut a = FaceAnalyzer::new(&models(), config(BackendKind::Ort)).expect("ort");
    let mut b = FaceAnalyzer::new(&models(), config(BackendKind::Tract)).expect("tract");
    for name in ["obama.jpg", "astronaut.png"] {
        let img = load(&fixture(name));
        let (fa, fb) = (a.analyze(&img, Stages::ALL).expect("ort"), b.analyze(&img, Stages::ALL).expect("tract"));
        assert_eq!(fa.faces.len(), fb.faces.len(), "{name}");
        for (x, y) in fa.faces.iter().zip(&fb.faces) {
            let (dx, dy) = (&x.detection, &y.detection);
            assert!((dx.score - dy.score).abs() < 1e-3, "{name}");
            assert!(
                (dx.bbox.x - dy.bbox.x).abs() < 0.05 && (dx.bbox.w - dy.bbox.w).abs() < 0.05,
                "{name}: {dx:?} {dy:?}"
            );
            let (ex, ey) = (x.embedding.as_ref().expect("e"), y.embedding.as_ref().expect("e"));
            assert!(max_diff(ex.as_slice(), ey.as_slice()) < 1e-3, "{name}");
            let (lx, ly) = (x.liveness.expect("l"), y.liveness.expect("l"));
            assert!(max_diff(&lx.probabilities, &ly.probabilities) < 1e-3, "{name}");
        }
    }
}

#[cfg(not(feature = "tract"))]
#[test]
fn tract_backend_is_refused_with_a_clear_message_when_not_built() {
    let err = FaceAnalyzer::new(&models(), VisionConfig { backend: BackendKind::Tract, ..VisionConfig::default() })
        .err()
        .expect("no tract in this build");
    assert!(err.to_string().contains("--features tract"), "{err}");
}
