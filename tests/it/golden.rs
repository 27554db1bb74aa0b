//! Detector, aligner, embedder and liveness outputs versus the reference
//! implementation's values (`../shared/testdata/golden/reference.json`).

use rostro::vision::{BBox, Detection, Stages};
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::common::{analyzer, analyzer_with, fixture, load, testdata};

#[derive(Deserialize)]
struct Reference {
    score: f32,
    box_xywh: [f32; 4],
    lm5: [[f32; 2]; 5],
    sface_first8: [f32; 8],
    liveness_bgr_softmax: [f32; 3],
}

fn references() -> BTreeMap<String, Reference> {
    let text = std::fs::read_to_string(testdata("golden/reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

/// The detector setting the reference used: every photo letterboxed into
/// YuNet's 640x640 (longer side scaled to exactly 640, small photos enlarged)
/// with OpenCV's bilinear resize. Its README says "fed at its own size", but
/// only this setting reproduces its numbers (at native size boxes differ by
/// up to 28 px and embeddings by up to 0.09). Two smaller differences remain,
/// both on the reference's side or below a pixel:
/// - it maps x back with the letterbox factor 1/k rather than the true
///   W/round(W*k), a 0.1 % x-scale error (0.7 px at x = 644 in obama3.jpg);
/// - OpenCV's fixed-point bilinear rounds differently from our SIMD one
///   (~0.1 px in landmarks).
///
/// Embeddings move by up to 0.02 for such sub-pixel landmark offsets, so they are compared
/// tightly in `embeds_reference_landmarks_like_reference` instead.
fn reference_analyzer() -> rostro::vision::FaceAnalyzer {
    analyzer_with(|c| {
        c.detect.max_side = 640;
        c.detect.upscale = true;
        c.detect.antialias = false;
    })
}

#[test]
fn matches_reference() {
    let mut analyzer = reference_analyzer();
    let mut worst = (0.0f32, 0.0f32, 0.0f32);
    for (name, want) in references() {
        let img = load(&fixture(&name));
        let analysis = analyzer.analyze(&img, Stages::ALL).expect("analyze");
        let face = analysis.faces.iter().find(|f| f.detection.bbox.w.min(f.detection.bbox.h) >= 40.0).expect("a face");
        let d = &face.detection;
        assert!((d.score - want.score).abs() < 2e-3, "{name}: score {} vs {}", d.score, want.score);
        let got_box = [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h];
        for (g, w) in got_box.iter().zip(want.box_xywh) {
            worst.0 = worst.0.max((g - w).abs());
            assert!((g - w).abs() < 1.0, "{name}: box {got_box:?} vs {:?}", want.box_xywh);
        }
        for (g, w) in d.landmarks.iter().zip(want.lm5) {
            let err = (g[0] - w[0]).abs().max((g[1] - w[1]).abs());
            worst.1 = worst.1.max(err);
            assert!(err < 1.0, "{name}: landmarks {:?} vs {:?}", d.landmarks, want.lm5);
        }
        let e = face.embedding.as_ref().expect("embedding");
        for (g, w) in e.as_slice().iter().zip(want.sface_first8) {
            worst.2 = worst.2.max((g - w).abs());
            assert!((g - w).abs() < 0.03, "{name}: embedding {:?} vs {:?}", &e.as_slice()[..8], want.sface_first8);
        }
        let l = face.liveness.expect("liveness");
        for (g, w) in l.probabilities.iter().zip(want.liveness_bgr_softmax) {
            assert!((g - w).abs() < 0.02, "{name}: liveness {:?} vs {:?}", l.probabilities, want.liveness_bgr_softmax);
        }
    }
    println!("worst |box| {:.3} px, |landmark| {:.3} px, |embedding| {:.5}", worst.0, worst.1, worst.2);
}

/// Alignment and embedding alone: from the reference's own landmarks, the
/// first 8 values match to ~1e-3 (OpenCV's `alignCrop` + `feature` on the same
/// landmarks differ from the reference by up to 1.3e-3 too: rounding of the
/// published landmarks and JPEG decoders).
#[test]
fn embeds_reference_landmarks_like_reference() {
    let mut analyzer = analyzer();
    let mut worst = 0.0f32;
    for (name, want) in references() {
        let img = load(&fixture(&name));
        let [x, y, w, h] = want.box_xywh;
        let detection = Detection { bbox: BBox { x, y, w, h }, landmarks: want.lm5, score: want.score };
        let e = analyzer.embed(&img, &[detection]).expect("embed").remove(0).expect("aligned");
        for (g, w) in e.as_slice().iter().zip(want.sface_first8) {
            worst = worst.max((g - w).abs());
        }
        let l = analyzer.liveness(&img, &[detection]).expect("liveness").remove(0);
        for (g, w) in l.probabilities.iter().zip(want.liveness_bgr_softmax) {
            assert!((g - w).abs() < 0.01, "{name}: liveness {:?} vs {:?}", l.probabilities, want.liveness_bgr_softmax);
        }
    }
    println!("worst |embedding| from reference landmarks: {worst:.5}");
    assert!(worst < 2e-3, "embedding differs from the reference by {worst}");
}

/// Detecting on a copy no longer than 640 px (the default) finds the same
/// faces and embeddings of the same person.
#[test]
fn downscaled_detection_agrees_with_native() {
    let mut native = analyzer_with(|c| c.detect.max_side = 0);
    let mut default = analyzer();
    for name in ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg"] {
        let img = load(&fixture(name));
        let a = native.analyze(&img, Stages::ALL).expect("native");
        let b = default.analyze(&img, Stages::ALL).expect("downscaled");
        let (fa, fb) = (&a.faces[0], &b.faces[0]);
        let tolerance = 0.03 * fa.detection.bbox.w.max(fa.detection.bbox.h);
        assert!((fa.detection.bbox.x - fb.detection.bbox.x).abs() < tolerance, "{name}");
        assert!((fa.detection.bbox.w - fb.detection.bbox.w).abs() < tolerance, "{name}");
        let cos = fa.embedding.as_ref().expect("e").cosine(fb.embedding.as_ref().expect("e"));
        assert!(cos > 0.9, "{name}: cosine native vs downscaled {cos}");
    }
}

/// The reference's pairwise figures: three Obama photos match, Biden does not.
#[test]
fn reference_pair_scores() {
    let mut analyzer = reference_analyzer();
    let mut embed = |name: &str| {
        let img = load(&fixture(name));
        analyzer.analyze(&img, Stages::ALL).expect("analyze").faces[0].embedding.clone().expect("embedding")
    };
    let (o1, o2, o3, b) = (embed("obama.jpg"), embed("obama2.jpg"), embed("obama3.jpg"), embed("biden.jpg"));
    for (x, y, want) in [(&o1, &o2, 0.755), (&o1, &o3, 0.814), (&o2, &o3, 0.751)] {
        let cos = x.cosine(y);
        assert!((cos - want).abs() < 0.03, "genuine pair cosine {cos}, reference {want}");
    }
    for o in [&o1, &o2, &o3] {
        assert!(o.cosine(&b) < 0.363, "Obama vs Biden must not match: {}", o.cosine(&b));
    }
}
