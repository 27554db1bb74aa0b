//! Operator metrics in the Prometheus text format (`GET /metrics`): per-stage
//! latency histograms, frames in / processed / dropped per source, sessions,
//! decisions, access events, gallery size and the inference queue.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Stages timed for every streamed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Waiting for a free inference worker.
    Queue,
    Decode,
    Detect,
    Liveness,
    Embed,
    Search,
    /// From the frame's arrival to its result being sent.
    Total,
}

const STAGES: [(Stage, &str); 7] = [
    (Stage::Queue, "queue"),
    (Stage::Decode, "decode"),
    (Stage::Detect, "detect"),
    (Stage::Liveness, "liveness"),
    (Stage::Embed, "embed"),
    (Stage::Search, "search"),
    (Stage::Total, "total"),
];

/// Upper bounds of the latency buckets, milliseconds.
const BUCKETS_MS: [f64; 14] = [1.0, 2.5, 5.0, 10.0, 20.0, 35.0, 50.0, 75.0, 100.0, 150.0, 250.0, 500.0, 1000.0, 2500.0];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS_MS.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, ms: f64) {
        if let Some(i) = BUCKETS_MS.iter().position(|&b| ms <= b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add((ms * 1000.0).max(0.0) as u64, Ordering::Relaxed);
    }
}

/// Frame counters of one source (`ws` for kiosk sessions, `camera:<id>`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceCounts {
    pub received: u64,
    pub processed: u64,
    pub dropped: u64,
    /// Faces embedded (cameras embed a tracked face only when it appears or improves).
    pub embedded: u64,
    /// Frames that ran through the models in one batch with other sessions' frames.
    pub batched: u64,
}

#[derive(Default)]
pub struct Metrics {
    stages: [Histogram; 7],
    sources: Mutex<BTreeMap<String, SourceCounts>>,
    decisions: Mutex<BTreeMap<(String, String), u64>>,
    events: Mutex<BTreeMap<String, u64>>,
    pub sessions: AtomicI64,
    pub sessions_total: AtomicU64,
    pub slow_clients: AtomicU64,
}

/// What other parts hold and `/metrics` reads when it is scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scrape {
    pub gallery_faces: usize,
    pub inference_accepted: u64,
    pub inference_refused: u64,
    /// Record writes made durable, the fsyncs that did it, and their time.
    pub store_writes: u64,
    pub store_flushes: u64,
    pub store_flush_seconds: f64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    pub fn observe(&self, stage: Stage, ms: f64) {
        let i = STAGES.iter().position(|(s, _)| *s == stage).unwrap_or(0);
        self.stages[i].observe(ms);
    }

    pub fn frames(&self, source: &str, edit: impl FnOnce(&mut SourceCounts)) {
        let mut sources = lock(&self.sources);
        edit(sources.entry(source.to_string()).or_default());
    }

    pub fn source(&self, source: &str) -> SourceCounts {
        lock(&self.sources).get(source).copied().unwrap_or_default()
    }

    pub fn decision(&self, mode: &str, decision: &str) {
        *lock(&self.decisions).entry((mode.to_string(), decision.to_string())).or_default() += 1;
    }

    pub fn event(&self, kind: &str) {
        *lock(&self.events).entry(kind.to_string()).or_default() += 1;
    }

    /// The Prometheus text exposition, with the values the caller reads at scrape time.
    pub fn render(&self, now: &Scrape) -> String {
        let mut out = String::new();
        let o = &mut out;
        let _ = writeln!(o, "# HELP rostro_stage_latency_ms Latency of one streamed frame per pipeline stage.");
        let _ = writeln!(o, "# TYPE rostro_stage_latency_ms histogram");
        for ((_, name), h) in STAGES.iter().zip(&self.stages) {
            let mut cumulative = 0;
            for (b, c) in BUCKETS_MS.iter().zip(&h.counts) {
                cumulative += c.load(Ordering::Relaxed);
                let _ = writeln!(o, "rostro_stage_latency_ms_bucket{{stage=\"{name}\",le=\"{b}\"}} {cumulative}");
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(o, "rostro_stage_latency_ms_bucket{{stage=\"{name}\",le=\"+Inf\"}} {count}");
            let sum = h.sum_us.load(Ordering::Relaxed) as f64 / 1000.0;
            let _ = writeln!(o, "rostro_stage_latency_ms_sum{{stage=\"{name}\"}} {sum}");
            let _ = writeln!(o, "rostro_stage_latency_ms_count{{stage=\"{name}\"}} {count}");
        }
        let sources = lock(&self.sources).clone();
        for (metric, help, get) in [
            (
                "rostro_frames_received_total",
                "Frames that arrived, per source.",
                (|c: &SourceCounts| c.received) as fn(&SourceCounts) -> u64,
            ),
            ("rostro_frames_processed_total", "Frames analysed, per source.", |c| c.processed),
            (
                "rostro_frames_dropped_total",
                "Frames dropped unprocessed (a newer one arrived, or no worker was free), per source.",
                |c| c.dropped,
            ),
            ("rostro_faces_embedded_total", "Faces embedded, per source.", |c| c.embedded),
            (
                "rostro_frames_batched_total",
                "Frames run through the models together with other sessions' frames, per source.",
                |c| c.batched,
            ),
        ] {
            let _ = writeln!(o, "# HELP {metric} {help}\n# TYPE {metric} counter");
            for (source, c) in &sources {
                let _ = writeln!(o, "{metric}{{source=\"{}\"}} {}", escape(source), get(c));
            }
        }
        let _ = writeln!(
            o,
            "# HELP rostro_decisions_total Final decisions of stream sessions.\n# TYPE rostro_decisions_total counter"
        );
        for ((mode, decision), n) in lock(&self.decisions).iter() {
            let _ = writeln!(o, "rostro_decisions_total{{mode=\"{mode}\",decision=\"{decision}\"}} {n}");
        }
        let _ = writeln!(
            o,
            "# HELP rostro_access_events_total Access events emitted by cameras.\n# TYPE rostro_access_events_total counter"
        );
        for (kind, n) in lock(&self.events).iter() {
            let _ = writeln!(o, "rostro_access_events_total{{kind=\"{kind}\"}} {n}");
        }
        let gauges = [
            (
                "rostro_sessions",
                "Open WebSocket stream sessions.",
                "gauge",
                self.sessions.load(Ordering::Relaxed) as f64,
            ),
            (
                "rostro_sessions_total",
                "WebSocket stream sessions opened.",
                "counter",
                self.sessions_total.load(Ordering::Relaxed) as f64,
            ),
            (
                "rostro_slow_clients_total",
                "Sessions closed because the client stopped reading.",
                "counter",
                self.slow_clients.load(Ordering::Relaxed) as f64,
            ),
            ("rostro_gallery_faces", "Faces in every tenant's gallery.", "gauge", now.gallery_faces as f64),
            (
                "rostro_inference_accepted_total",
                "Jobs taken by the inference pool.",
                "counter",
                now.inference_accepted as f64,
            ),
            (
                "rostro_inference_refused_total",
                "Jobs refused because the inference queue was full.",
                "counter",
                now.inference_refused as f64,
            ),
            (
                "rostro_store_writes_total",
                "Record writes committed and made durable.",
                "counter",
                now.store_writes as f64,
            ),
            (
                "rostro_store_flushes_total",
                "fsyncs of the store (concurrent writes share one).",
                "counter",
                now.store_flushes as f64,
            ),
            ("rostro_store_flush_seconds_total", "Time spent in those fsyncs.", "counter", now.store_flush_seconds),
        ];
        for (name, help, kind, value) in gauges {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        for ms in [0.5, 3.0, 3.0, 4000.0] {
            m.observe(Stage::Detect, ms);
        }
        m.frames("camera:door \"1\"", |c| c.dropped += 2);
        let text = m.render(&Scrape { gallery_faces: 7, inference_accepted: 1, ..Scrape::default() });
        assert!(text.contains("rostro_stage_latency_ms_bucket{stage=\"detect\",le=\"1\"} 1"), "{text}");
        assert!(text.contains("rostro_stage_latency_ms_bucket{stage=\"detect\",le=\"5\"} 3"));
        assert!(text.contains("rostro_stage_latency_ms_bucket{stage=\"detect\",le=\"+Inf\"} 4"));
        assert!(text.contains("rostro_frames_dropped_total{source=\"camera:door \\\"1\\\"\"} 2"));
        assert!(text.contains("rostro_gallery_faces 7"));
    }
}
