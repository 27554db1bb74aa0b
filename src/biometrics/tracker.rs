//! A face tracker for cameras: boxes are linked across frames by overlap,
//! each track keeps its own liveness window and decision logic, and a track
//! is embedded when it appears and again only when its quality improves
//! clearly, not on every frame.

use image::RgbImage;

use super::capture;
use super::session::{Mode, Observation, Outcome, SessionLogic};
use super::stream_config::StreamConfig;
use super::temporal::{self, Signals};
use crate::vision::{BBox, Detection, Embedding, Face, FaceAnalyzer, VisionError};

/// Boxes overlapping at least this much are the same face.
pub const LINK_IOU: f32 = 0.3;
/// A track unseen for this many frames is gone.
const MAX_MISSED: usize = 5;
/// Re-embed when quality beats the embedded frame's by this factor.
const IMPROVE: f32 = 1.15;
/// Search the gallery again with a track's embedding every this many frames
/// (someone may have been enrolled, or deleted, since).
const RESEARCH_EVERY: usize = 5;

/// One face's embedding, kept while the face is followed: a face is embedded
/// when it appears and again only when its quality improves clearly, and its
/// gallery answer is refreshed every [`RESEARCH_EVERY`] frames. Camera tracks
/// and kiosk sessions both use it.
#[derive(Debug, Clone, Default)]
pub struct EmbedCache {
    /// Quality of the frame the embedding came from.
    quality: f32,
    embedding: Option<Embedding>,
    since_search: usize,
    best: Option<(String, f32)>,
}

impl EmbedCache {
    /// Whether a frame of this quality should be embedded.
    pub fn wants(&self, quality: f32) -> bool {
        self.bar().is_none_or(|bar| quality > bar)
    }

    /// The quality a frame must beat to be embedded; `None` when any will do.
    pub fn bar(&self) -> Option<f32> {
        self.embedding.as_ref().map(|_| self.quality * IMPROVE)
    }

    /// A new embedding of the face, from a frame of `quality`: searched at once.
    pub fn embedded(&mut self, quality: f32, embedding: Embedding) {
        self.quality = quality;
        self.embedding = Some(embedding);
        self.since_search = RESEARCH_EVERY;
    }

    /// One more frame of the face: searches with the kept embedding when it is
    /// new or its answer is [`RESEARCH_EVERY`] frames old, and returns the answer.
    pub fn answer(&mut self, search: impl FnOnce(&Embedding) -> Option<(String, f32)>) -> Option<(String, f32)> {
        self.since_search += 1;
        if self.since_search > RESEARCH_EVERY
            && let Some(e) = &self.embedding
        {
            self.best = search(e);
            self.since_search = 1;
        }
        self.best.clone()
    }

    /// The face is gone (or another one took its place).
    pub fn forget(&mut self) {
        *self = EmbedCache::default();
    }
}

struct Track {
    id: u64,
    bbox: BBox,
    missed: usize,
    logic: SessionLogic,
    cache: EmbedCache,
    decided: bool,
    denied: bool,
}

/// What happened to one track in one frame.
#[derive(Debug, Clone)]
pub struct TrackUpdate {
    pub track: u64,
    pub bbox: BBox,
    pub embedded: bool,
    pub best: Option<(String, f32)>,
    pub signals: Option<Signals>,
    /// The track's decision, reported once.
    pub outcome: Option<Outcome>,
}

pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    config: StreamConfig,
    threshold: f32,
    /// Embeddings computed so far (for the operator: far fewer than frames x faces).
    pub embeddings: u64,
}

impl Tracker {
    pub fn new(config: StreamConfig, threshold: f32) -> Tracker {
        Tracker { tracks: Vec::new(), next_id: 1, config, threshold, embeddings: 0 }
    }

    /// Detects, links, judges and (where needed) embeds and searches every face of `img`.
    pub fn step(
        &mut self,
        a: &mut FaceAnalyzer,
        img: &RgbImage,
        search: &dyn Fn(&Embedding) -> Option<(String, f32)>,
    ) -> Result<Vec<TrackUpdate>, VisionError> {
        let detections = a.detect(img)?;
        // Greedy linking, best overlaps first.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
            for (d, det) in detections.iter().enumerate() {
                let iou = track.bbox.iou(&det.bbox);
                if iou >= LINK_IOU {
                    pairs.push((iou, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut det_track: Vec<Option<usize>> = vec![None; detections.len()];
        let mut track_taken = vec![false; self.tracks.len()];
        for (_, t, d) in pairs {
            if !track_taken[t] && det_track[d].is_none() {
                track_taken[t] = true;
                det_track[d] = Some(t);
            }
        }
        for (t, taken) in track_taken.iter().enumerate() {
            if !taken {
                self.tracks[t].missed += 1;
            }
        }
        for slot in det_track.iter_mut().filter(|s| s.is_none()) {
            self.tracks.push(Track {
                id: self.next_id,
                bbox: BBox { x: 0.0, y: 0.0, w: 0.0, h: 0.0 },
                missed: 0,
                logic: SessionLogic::new(Mode::Identify, self.config.clone(), self.threshold),
                cache: EmbedCache::default(),
                decided: false,
                denied: false,
            });
            self.next_id += 1;
            *slot = Some(self.tracks.len() - 1);
        }
        let mut updates = Vec::with_capacity(detections.len());
        let live = if detections.is_empty() { Vec::new() } else { a.liveness(img, &detections)? };
        for (d, det) in detections.iter().enumerate() {
            let Some(t) = det_track[d] else { continue };
            let quality = capture::quality(img, &Face { detection: *det, liveness: None, embedding: None }).score;
            let track = &mut self.tracks[t];
            track.bbox = det.bbox;
            track.missed = 0;
            let mut embedding = None;
            if track.cache.wants(quality) {
                embedding = a.embed(img, std::slice::from_ref::<Detection>(det))?.pop().flatten();
                if let Some(e) = &embedding {
                    self.embeddings += 1;
                    track.cache.embedded(quality, e.clone());
                }
            }
            let best = track.cache.answer(search);
            let (signals, outcome) = track.logic.observe(Observation {
                faces: 1,
                features: Some(temporal::features(img, det, live[d].score)),
                embedding: embedding.as_ref(),
                best: best.clone(),
                quality,
            });
            // A grant ends the track's story; a denial is reported once, and the track
            // keeps being judged (the person may turn to the camera, or be enrolled meanwhile).
            let outcome = match outcome {
                Some(Outcome::Undecided) => {
                    track.logic.reset();
                    None
                }
                Some(o @ Outcome::Matched { .. }) if !track.decided => {
                    track.decided = true;
                    Some(o)
                }
                Some(o @ (Outcome::NoMatch { .. } | Outcome::Spoof)) if !track.decided => {
                    track.logic.reset();
                    (!std::mem::replace(&mut track.denied, true)).then_some(o)
                }
                _ => None,
            };
            updates.push(TrackUpdate {
                track: track.id,
                bbox: det.bbox,
                embedded: embedding.is_some(),
                best,
                signals,
                outcome,
            });
        }
        self.tracks.retain(|t| t.missed <= MAX_MISSED);
        Ok(updates)
    }

    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }
}
