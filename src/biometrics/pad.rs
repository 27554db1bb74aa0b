//! Presentation-attack detection measured (ISO/IEC 30107-3 terms): APCER,
//! the share of attack presentations accepted (per attack species; the
//! worst species is the headline), and BPCER, the share of bona fide
//! presentations refused, for the single-frame model against the temporal
//! decision of [`super::temporal`], on clips from [`super::simulate`].

use image::RgbImage;
use serde::Serialize;

use super::simulate::{self, Presentation};
use super::temporal::{self, Signals, TemporalConfig, Window};
use crate::vision::{FaceAnalyzer, VisionError};

/// One clip's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ClipResult {
    pub photo: usize,
    pub kind: Presentation,
    pub frames: usize,
    /// Frames whose face the model alone calls real.
    pub frames_accepted: usize,
    pub signals: Option<Signals>,
    pub accepted: bool,
}

/// Error rates of one decision rule.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Rates {
    /// Accepted / presented, per attack species, in `Presentation::ALL` order (bona fide's slot unused).
    pub apcer_by_kind: [f64; 4],
    /// The worst species.
    pub apcer: f64,
    pub bpcer: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PadReport {
    pub clips: Vec<ClipResult>,
    /// Every frame a presentation, decided by the model alone.
    pub single_frame: Rates,
    /// Every clip a presentation, decided over time.
    pub temporal: Rates,
}

/// The face the stream follows: the largest.
pub fn primary(faces: &[crate::vision::Detection]) -> Option<usize> {
    (0..faces.len()).max_by(|&a, &b| faces[a].bbox.area().total_cmp(&faces[b].bbox.area()))
}

/// The liveness model and the temporal features of the largest of `faces` in
/// `img`, with its index; what a stream computes per frame.
pub fn primary_features(
    a: &mut FaceAnalyzer,
    img: &RgbImage,
    faces: &[crate::vision::Detection],
) -> Result<Option<(usize, temporal::FrameFeatures)>, VisionError> {
    let Some(i) = primary(faces) else { return Ok(None) };
    let live = a.liveness(img, &faces[i..=i])?;
    Ok(Some((i, temporal::features(img, &faces[i], live[0].score))))
}

/// Detection, then [`primary_features`].
pub fn frame_features(a: &mut FaceAnalyzer, img: &RgbImage) -> Result<Option<temporal::FrameFeatures>, VisionError> {
    let faces = a.detect(img)?;
    Ok(primary_features(a, img, &faces)?.map(|(_, f)| f))
}

fn rates(decisions: impl Iterator<Item = (Presentation, bool)>) -> Rates {
    let mut shown = [0usize; 4];
    let mut accepted = [0usize; 4];
    for (kind, ok) in decisions {
        let k = Presentation::ALL.iter().position(|p| *p == kind).unwrap_or(0);
        shown[k] += 1;
        accepted[k] += ok as usize;
    }
    let share = |n: usize, d: usize| if d == 0 { 0.0 } else { n as f64 / d as f64 };
    let mut r = Rates { bpcer: share(shown[0] - accepted[0], shown[0]), ..Rates::default() };
    for k in 1..4 {
        r.apcer_by_kind[k] = share(accepted[k], shown[k]);
        r.apcer = r.apcer.max(r.apcer_by_kind[k]);
    }
    r
}

/// Makes every kind of clip from each photo (its largest face) and decides each.
/// `progress` hears about every finished clip.
pub fn evaluate(
    a: &mut FaceAnalyzer,
    photos: &[RgbImage],
    frames: usize,
    config: TemporalConfig,
    progress: &mut dyn FnMut(&ClipResult),
) -> Result<PadReport, VisionError> {
    let mut clips = Vec::new();
    let mut frame_decisions = Vec::new();
    for (p, photo) in photos.iter().enumerate() {
        // One face per photo: with two, the largest may change hands between frames.
        let faces = a.detect(photo)?;
        if faces.len() != 1 {
            continue;
        }
        let i = 0;
        for kind in Presentation::ALL {
            let mut window = Window::new(config);
            let mut frames_accepted = 0;
            for img in simulate::clip(photo, &faces[i], kind, frames, p as u64 * 4 + kind as u64) {
                let features = frame_features(a, &img)?;
                let ok = features.as_ref().is_some_and(|f| f.model >= config.model_threshold);
                frames_accepted += ok as usize;
                frame_decisions.push((kind, ok));
                if let Some(f) = features {
                    window.push(f);
                }
            }
            let signals = window.verdict();
            let result = ClipResult {
                photo: p,
                kind,
                frames,
                frames_accepted,
                signals,
                accepted: signals.is_some_and(|s| s.live),
            };
            progress(&result);
            clips.push(result);
        }
    }
    let single_frame = rates(frame_decisions.into_iter());
    let temporal = rates(clips.iter().map(|c| (c.kind, c.accepted)));
    Ok(PadReport { clips, single_frame, temporal })
}
