//! The decision logic of one stream session, apart from any I/O: frames go
//! in with their match, a decision comes out once enough consistent, live
//! frames agree.

use serde::{Deserialize, Serialize};

use super::temporal::{Signals, Window};
use crate::vision::Embedding;

use super::stream_config::StreamConfig;

/// What the client asks of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Identify,
    Verify,
    Enroll,
    Liveness,
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Identify => "identify",
            Mode::Verify => "verify",
            Mode::Enroll => "enroll",
            Mode::Liveness => "liveness",
        }
    }

    pub fn needs_embedding(&self) -> bool {
        *self != Mode::Liveness
    }
}

/// A final decision (before any store write an enrolment needs).
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// identify: this user, live. verify: the claimed user, live.
    Matched { user: String, score: f32 },
    /// identify: a live face that is no one enrolled. verify: not the claimed user.
    NoMatch { score: f32 },
    /// enroll: enough live, consistent frames; enrol the best one (index kept by the caller).
    Capture,
    /// liveness: live.
    Live,
    /// A presentation attack (or a face that never showed signs of life).
    Spoof,
    /// No decision within `max_frames`.
    Undecided,
}

impl Outcome {
    pub fn name(&self, mode: &Mode) -> &'static str {
        match (self, mode) {
            (Outcome::Matched { .. }, Mode::Verify) => "verified",
            (Outcome::Matched { .. }, _) => "identified",
            (Outcome::NoMatch { .. }, Mode::Verify) => "not_verified",
            (Outcome::NoMatch { .. }, _) => "unknown",
            (Outcome::Capture, _) => "enrolled",
            (Outcome::Live, _) => "live",
            (Outcome::Spoof, _) => "spoof",
            (Outcome::Undecided, _) => "undecided",
        }
    }
}

/// One processed frame as the session sees it.
pub struct Observation<'a> {
    pub faces: usize,
    pub features: Option<crate::biometrics::temporal::FrameFeatures>,
    pub embedding: Option<&'a Embedding>,
    /// Best gallery match (user, score) of the largest face, any score.
    pub best: Option<(String, f32)>,
    pub quality: f32,
}

pub struct SessionLogic {
    mode: Mode,
    config: StreamConfig,
    threshold: f32,
    window: Window,
    /// Consecutive frames agreeing on `streak_key`.
    streak: usize,
    streak_key: Option<String>,
    /// Consecutive full-window verdicts that were not live.
    not_live: usize,
    frames: usize,
    last_embedding: Option<Embedding>,
    /// Best quality seen in the current streak (enrolment) and whether the latest frame is it.
    best_quality: f32,
    pub latest_is_best: bool,
}

impl SessionLogic {
    pub fn new(mode: Mode, config: StreamConfig, threshold: f32) -> SessionLogic {
        SessionLogic {
            window: Window::new(config.temporal),
            mode,
            config,
            threshold,
            streak: 0,
            streak_key: None,
            not_live: 0,
            frames: 0,
            last_embedding: None,
            best_quality: -1.0,
            latest_is_best: false,
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// Starts over (a continuous session after a decision).
    pub fn reset(&mut self) {
        *self = SessionLogic::new(self.mode.clone(), self.config.clone(), self.threshold);
    }

    fn break_streak(&mut self) {
        self.streak = 0;
        self.streak_key = None;
        self.best_quality = -1.0;
    }

    /// Takes one frame; returns the liveness signals so far and, once sure, the outcome.
    pub fn observe(&mut self, o: Observation<'_>) -> (Option<Signals>, Option<Outcome>) {
        self.frames += 1;
        self.latest_is_best = false;
        let usable = o.faces == 1 || (o.faces > 1 && self.mode != Mode::Enroll);
        let Some(features) = o.features.filter(|_| usable) else {
            // Nobody there (or a crowd at an enrolment): start over.
            self.window.clear();
            self.break_streak();
            self.last_embedding = None;
            return (None, (self.frames >= self.config.max_frames).then_some(Outcome::Undecided));
        };
        self.window.push(features);
        let signals = self.window.verdict();
        let full = self.window.len() >= self.config.temporal.window;
        let live = signals.is_some_and(|s| s.live);
        self.not_live = if full && !live { self.not_live + 1 } else { 0 };
        // What this frame says, as a key that must repeat.
        let key = match self.mode {
            Mode::Identify | Mode::Verify => Some(match &o.best {
                Some((user, score)) if *score >= self.threshold => format!("match:{user}"),
                _ => "nomatch".to_string(),
            }),
            Mode::Enroll => {
                let same = match (&self.last_embedding, o.embedding) {
                    (Some(prev), Some(cur)) => prev.cosine(cur) >= self.threshold,
                    (None, Some(_)) => true,
                    _ => false,
                };
                self.last_embedding = o.embedding.cloned();
                same.then(|| "face".to_string())
            }
            Mode::Liveness => Some("face".to_string()),
        };
        match key {
            Some(k) if self.streak_key.as_ref() == Some(&k) => self.streak += 1,
            Some(k) => {
                self.break_streak();
                self.streak = 1;
                self.streak_key = Some(k);
            }
            None => self.break_streak(),
        }
        if o.quality > self.best_quality {
            self.best_quality = o.quality;
            self.latest_is_best = true;
        }
        let n = self.config.decide_frames.max(1);
        let outcome = if self.not_live >= n {
            Some(Outcome::Spoof)
        } else if live && self.streak >= n {
            let score = o.best.as_ref().map_or(0.0, |b| b.1);
            match (self.mode.clone(), self.streak_key.as_deref()) {
                (Mode::Identify | Mode::Verify, Some("nomatch")) => Some(Outcome::NoMatch { score }),
                (Mode::Identify | Mode::Verify, Some(k)) => {
                    Some(Outcome::Matched { user: k.trim_start_matches("match:").to_string(), score })
                }
                (Mode::Enroll, _) => Some(Outcome::Capture),
                (Mode::Liveness, _) => Some(Outcome::Live),
                _ => None,
            }
        } else if self.frames >= self.config.max_frames {
            Some(Outcome::Undecided)
        } else {
            None
        };
        (signals, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::biometrics::temporal::FrameFeatures;

    /// Features of a frame: a head that turns (nose moving against the eyes) or a flat, still picture.
    fn frame(i: usize, moving: bool) -> FrameFeatures {
        let turn = if moving { 6.0 * (i as f32 * 0.7).sin() } else { 0.0 };
        FrameFeatures {
            landmarks: [[100.0, 100.0], [160.0, 100.0], [130.0 + turn, 130.0], [108.0, 160.0], [152.0, 160.0]],
            grey: vec![100; 56 * 56],
            eye_contrast: 20.0,
            moire: 5.0,
            border_sides: 0,
            glare: 0.0,
            model: 0.9,
        }
    }

    fn run(logic: &mut SessionLogic, n: usize, moving: bool, best: Option<(&str, f32)>) -> Vec<Outcome> {
        (0..n)
            .filter_map(|i| {
                logic
                    .observe(Observation {
                        faces: 1,
                        features: Some(frame(i, moving)),
                        embedding: None,
                        best: best.map(|(u, s)| (u.to_string(), s)),
                        quality: 0.5,
                    })
                    .1
            })
            .collect()
    }

    #[test]
    fn identify_needs_agreeing_live_frames() {
        let mut logic = SessionLogic::new(Mode::Identify, StreamConfig::default(), 0.363);
        // The verdict needs min_frames (6); the streak needs decide_frames (5): the 6th frame decides.
        let outcomes = run(&mut logic, 6, true, Some(("u1", 0.8)));
        assert_eq!(outcomes, vec![Outcome::Matched { user: "u1".into(), score: 0.8 }]);
        // Below the threshold it is a live stranger.
        let mut logic = SessionLogic::new(Mode::Identify, StreamConfig::default(), 0.363);
        assert_eq!(run(&mut logic, 6, true, Some(("u1", 0.2))), vec![Outcome::NoMatch { score: 0.2 }]);
    }

    #[test]
    fn a_change_of_answer_or_a_missing_face_restarts_the_count() {
        let mut logic = SessionLogic::new(Mode::Identify, StreamConfig::default(), 0.363);
        assert!(run(&mut logic, 5, true, Some(("u1", 0.8))).is_empty());
        assert!(run(&mut logic, 1, true, Some(("u2", 0.8))).is_empty(), "u2 breaks u1's streak");
        let none = logic.observe(Observation { faces: 0, features: None, embedding: None, best: None, quality: 0.0 });
        assert_eq!(none.1, None);
        assert!(run(&mut logic, 5, true, Some(("u2", 0.8))).is_empty(), "the window starts over");
    }

    #[test]
    fn a_still_picture_is_a_spoof_and_never_matches() {
        let mut logic = SessionLogic::new(Mode::Identify, StreamConfig::default(), 0.363);
        let outcomes = run(&mut logic, 20, false, Some(("u1", 0.9)));
        // The window fills at 10 frames; 5 more not-live verdicts make it a spoof.
        assert_eq!(outcomes.first(), Some(&Outcome::Spoof));
        assert!(!outcomes.iter().any(|o| matches!(o, Outcome::Matched { .. })));
    }

    #[test]
    fn an_enrolment_refuses_crowds() {
        let mut logic = SessionLogic::new(Mode::Enroll, StreamConfig::default(), 0.363);
        for i in 0..10 {
            let o = logic.observe(Observation {
                faces: 2,
                features: Some(frame(i, true)),
                embedding: None,
                best: None,
                quality: 0.5,
            });
            assert_eq!(o, (None, None), "two faces never count toward an enrolment");
        }
    }
}
