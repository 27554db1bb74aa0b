//! Verification accuracy on the 300 labelled pairs of the deepface photos,
//! against OpenCV's figures for the same models (photos shrunk to 640 px:
//! accuracy 1.000, ROC AUC 1.000).

use std::collections::HashMap;

use rostro::biometrics::metrics::Scores;
use rostro::vision::{Embedding, Stages};

use crate::common::{analyzer, load, testdata};

#[test]
fn deepface_pairs_are_all_right() {
    let dir = testdata("faces/deepface");
    let csv = std::fs::read_to_string(dir.join("master.csv")).expect("master.csv");
    let pairs: Vec<(String, String, bool)> = csv
        .lines()
        .skip(1)
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 3, "bad line {l:?}");
            (f[0].to_string(), f[1].to_string(), f[2] == "Yes")
        })
        .collect();
    assert!(pairs.len() >= 299, "{} pairs", pairs.len());

    let mut analyzer = analyzer();
    let mut cache: HashMap<String, Embedding> = HashMap::new();
    let (mut live, mut photos) = (0, 0);
    let mut embed = |name: &str| -> Embedding {
        if let Some(e) = cache.get(name) {
            return e.clone();
        }
        let analysis = analyzer.analyze(&load(&dir.join(name)), Stages::ALL).expect("analyze");
        let face = analysis.faces.first().unwrap_or_else(|| panic!("{name}: no face found"));
        photos += 1;
        live += usize::from(face.liveness.is_some_and(|l| l.score >= 0.5));
        let e = face.embedding.clone().unwrap_or_else(|| panic!("{name}: not aligned"));
        cache.insert(name.to_string(), e.clone());
        e
    };
    let mut scores = Scores::default();
    let mut errors = Vec::new();
    for (a, b, same) in &pairs {
        let cos = embed(a).cosine(&embed(b));
        scores.push(cos, *same);
        if (cos >= 0.363) != *same {
            errors.push(format!("{a} {b} same={same} cosine={cos:.3}"));
        }
    }
    let r = scores.report(0.363);
    println!("{}", serde_json::to_string_pretty(&r).expect("json"));
    println!("liveness: {live} of {photos} bona fide photos judged live");
    assert!(errors.is_empty(), "misjudged pairs:\n{}", errors.join("\n"));
    assert_eq!(r.accuracy, 1.0);
    assert_eq!(r.roc_auc, 1.0);
    assert!(r.min_genuine > r.max_impostor, "{r:?}");
    assert!(live * 2 >= photos, "only {live} of {photos} real photos judged live: liveness preprocessing broken?");
}
