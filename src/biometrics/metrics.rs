//! Verification quality from labelled comparison scores: accuracy at a
//! threshold, ROC AUC, and the true-accept rate at a fixed false-accept rate.

use serde::Serialize;

/// Scores of genuine (same person) and impostor (different people) pairs.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    pub genuine: Vec<f32>,
    pub impostor: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Report {
    pub genuine: usize,
    pub impostor: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub roc_auc: f64,
    pub min_genuine: f32,
    pub max_impostor: f32,
    /// True-accept rate at the threshold where at most 0.1 %, 1 % of impostors pass.
    pub tar_at_far_0_1pct: f64,
    pub tar_at_far_1pct: f64,
}

impl Scores {
    pub fn push(&mut self, score: f32, same: bool) {
        if same { self.genuine.push(score) } else { self.impostor.push(score) }
    }

    /// Fraction of pairs decided right at `threshold` (score >= threshold means same).
    pub fn accuracy(&self, threshold: f32) -> f64 {
        let right = self.genuine.iter().filter(|&&s| s >= threshold).count()
            + self.impostor.iter().filter(|&&s| s < threshold).count();
        ratio(right, self.genuine.len() + self.impostor.len())
    }

    /// Area under the ROC curve: the chance a random genuine pair outscores a
    /// random impostor pair (ties count half).
    pub fn roc_auc(&self) -> f64 {
        let mut wins = 0.0;
        for g in &self.genuine {
            for i in &self.impostor {
                wins += match g.total_cmp(i) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                };
            }
        }
        let pairs = (self.genuine.len() * self.impostor.len()) as f64;
        if pairs > 0.0 { wins / pairs } else { 0.0 }
    }

    /// The share of genuine pairs accepted at the lowest threshold that lets
    /// through at most `far` of the impostors.
    pub fn tar_at_far(&self, far: f64) -> f64 {
        let mut impostor = self.impostor.clone();
        impostor.sort_by(|a, b| b.total_cmp(a));
        let allowed = (far * impostor.len() as f64).floor() as usize;
        // Accept strictly above the (allowed+1)-th highest impostor score.
        let threshold = impostor.get(allowed).copied().unwrap_or(f32::NEG_INFINITY);
        ratio(self.genuine.iter().filter(|&&g| g > threshold).count(), self.genuine.len())
    }

    pub fn report(&self, threshold: f32) -> Report {
        Report {
            genuine: self.genuine.len(),
            impostor: self.impostor.len(),
            threshold,
            accuracy: self.accuracy(threshold),
            roc_auc: self.roc_auc(),
            min_genuine: self.genuine.iter().copied().fold(f32::INFINITY, f32::min),
            max_impostor: self.impostor.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            tar_at_far_0_1pct: self.tar_at_far(0.001),
            tar_at_far_1pct: self.tar_at_far(0.01),
        }
    }
}

fn ratio(n: usize, d: usize) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(genuine: &[f32], impostor: &[f32]) -> Scores {
        Scores { genuine: genuine.to_vec(), impostor: impostor.to_vec() }
    }

    #[test]
    fn separated_scores_are_perfect() {
        let s = scores(&[0.8, 0.9], &[0.1, 0.2, 0.3]);
        let r = s.report(0.5);
        assert_eq!((r.accuracy, r.roc_auc, r.tar_at_far_1pct), (1.0, 1.0, 1.0));
    }

    #[test]
    fn overlap_lowers_auc_and_accuracy() {
        let s = scores(&[0.4, 0.9], &[0.5, 0.1]);
        assert_eq!(s.roc_auc(), 0.75);
        assert_eq!(s.accuracy(0.45), 0.5);
        assert_eq!(s.roc_auc(), scores(&[0.9, 0.4], &[0.1, 0.5]).roc_auc());
        assert_eq!(scores(&[0.5], &[0.5]).roc_auc(), 0.5);
    }

    #[test]
    fn tar_at_far_excludes_the_top_impostors() {
        // 100 impostors: at 1 % FAR one may pass, so the threshold is the second highest (0.6).
        let mut impostor = vec![0.0f32; 98];
        impostor.extend([0.6, 0.7]);
        let s = scores(&[0.65, 0.5, 0.9], &impostor);
        assert!((s.tar_at_far(0.01) - 2.0 / 3.0).abs() < 1e-9);
        assert!((s.tar_at_far(0.0) - 1.0 / 3.0).abs() < 1e-9);
    }
}
