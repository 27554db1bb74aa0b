//! Face embeddings: SFace's 128 values for an aligned 112x112 RGB crop,
//! L2-normalised so that a dot product is the cosine similarity.

use serde::{Deserialize, Serialize};

pub const DIM: usize = 128;

/// Which model made an embedding; stored with every template so that a
/// gallery built by another model is never searched with this one's vectors.
pub const MODEL: &str = "sface-2021dec";

/// OpenCV's same-person threshold for SFace with cosine similarity.
pub const DEFAULT_THRESHOLD: f32 = 0.363;

/// A unit-length face embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Normalises raw model output; `None` for a zero or non-finite vector.
    pub fn from_raw(mut values: Vec<f32>) -> Option<Embedding> {
        let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm.is_nan() || norm <= f32::EPSILON || !norm.is_finite() {
            return None;
        }
        values.iter_mut().for_each(|v| *v /= norm);
        Some(Embedding(values))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity in [-1, 1].
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_and_cosine() {
        let a = Embedding::from_raw(vec![3.0, 4.0]).expect("non-zero");
        assert!((a.as_slice()[0] - 0.6).abs() < 1e-6);
        assert!((a.cosine(&a) - 1.0).abs() < 1e-6);
        let b = Embedding::from_raw(vec![-4.0, 3.0]).expect("non-zero");
        assert!(a.cosine(&b).abs() < 1e-6);
        assert!(Embedding::from_raw(vec![0.0, 0.0]).is_none());
        assert!(Embedding::from_raw(vec![f32::NAN, 1.0]).is_none());
    }
}
