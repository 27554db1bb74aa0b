//! The `[stream]` config section: WebSocket sessions and the temporal liveness thresholds.

use serde::{Deserialize, Serialize};

use super::temporal::TemporalConfig;

/// The `[stream]` section: WebSocket sessions and cameras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Largest WebSocket message (a JPEG frame or a chunk of encoded video).
    pub max_frame_bytes: usize,
    /// Consecutive frames that must agree (same user, one face) before a decision.
    pub decide_frames: usize,
    /// A session that reaches no decision within this many processed frames ends undecided.
    pub max_frames: usize,
    /// A client that does not take a message within this many seconds is disconnected.
    pub send_timeout_s: f32,
    /// A session that sends nothing for this many seconds is closed.
    pub idle_timeout_s: f32,
    /// Identify and verify sessions embed the face they follow when it appears
    /// and again only when its quality clearly improves (false: every frame).
    pub reuse_embeddings: bool,
    /// While the followed face is at least `fast_detect_min_face` pixels on its
    /// shorter side, detect on a copy whose longer side is this (0: never, the
    /// default: the landmarks of a reduced copy are coarser and shift when the
    /// scale changes, which the motion cue of the liveness check reads as
    /// life; a repeated still photo was judged live with 320).
    pub fast_detect_side: u32,
    pub fast_detect_min_face: f32,
    /// Frames of concurrent sessions run through the models together, at most
    /// this many (1, the default: each on its own; on this project's 2-core
    /// CPU batches of 4 answered no more frames and had a worse p99, README).
    pub batch_frames: usize,
    /// A worker holding fewer frames than there are open sessions waits this
    /// long at most for theirs (never with one session open).
    pub batch_wait_ms: f32,
    /// The liveness decision over time.
    pub temporal: TemporalConfig,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            max_frame_bytes: 8 * 1024 * 1024,
            decide_frames: 5,
            max_frames: 300,
            send_timeout_s: 5.0,
            idle_timeout_s: 30.0,
            reuse_embeddings: true,
            fast_detect_side: 0,
            fast_detect_min_face: 120.0,
            batch_frames: 1,
            batch_wait_ms: 2.0,
            temporal: TemporalConfig::default(),
        }
    }
}
