//! `rostro kiosk-sim`: N kiosks streaming JPEG frames at a chosen rate over
//! WebSocket (tokio-tungstenite), measuring each frame's round trip, the
//! server's own per-frame latency, drops and decisions.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::util::Percentiles;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a stream session: connects with the key, sends `start`, waits for `ready`.
pub async fn connect(url: &str, key: &str, start: &Value) -> Result<(Socket, Value), String> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key}")
            .parse()
            .map_err(|e: tokio_tungstenite::tungstenite::http::header::InvalidHeaderValue| e.to_string())?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.map_err(|e| e.to_string())?;
    ws.send(Message::text(start.to_string())).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let v: Value = serde_json::from_str(&t).map_err(|e| e.to_string())?;
                if v["type"] == "ready" {
                    return Ok((ws, v));
                }
                return Err(format!("expected ready, got {v}"));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed before ready".into()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimPlan {
    pub url: String,
    pub key: String,
    pub start: Value,
    pub frames: Vec<Vec<u8>>,
    pub fps: f64,
    /// Frames each session sends (the clip loops).
    pub frames_per_session: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionStats {
    pub sent: usize,
    pub results: usize,
    pub dropped: u64,
    /// Round trip per answered frame, ms (client clock: send to result).
    pub rtt_ms: Vec<f64>,
    /// The server's own arrival-to-answer time per frame, ms.
    pub server_ms: Vec<f64>,
    pub decisions: Vec<String>,
    pub errors: Vec<String>,
    /// Answered frames the server ran together with other sessions' frames.
    pub batched: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    pub sessions: usize,
    pub fps: f64,
    pub sent: usize,
    pub results: usize,
    pub dropped: u64,
    /// Round trip per answered frame (client clock), ms.
    pub rtt_ms: Percentiles,
    /// The server's arrival-to-answer time per frame, ms.
    pub server_ms: Percentiles,
    /// Results per second, all sessions together.
    pub processed_fps: f64,
    /// Share of the answered frames that ran in a batch with other sessions' frames.
    pub batched_share: f64,
    pub decisions: HashMap<String, usize>,
    pub errors: Vec<String>,
    pub seconds: f64,
}

/// One kiosk: sends at `fps`, reads concurrently, stops after its frames
/// (plus a grace second for the last answers) or when the server closes.
pub async fn session(plan: &SimPlan, progress: &(dyn Fn(usize) + Sync)) -> SessionStats {
    let mut stats = SessionStats::default();
    let (ws, _) = match connect(&plan.url, &plan.key, &plan.start).await {
        Ok(x) => x,
        Err(e) => {
            stats.errors.push(e);
            return stats;
        }
    };
    let (mut tx, mut rx) = ws.split();
    let sent_at = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
    let interval = Duration::from_secs_f64(1.0 / plan.fps.max(0.1));
    let sender = {
        let (frames, n, sent_at) = (plan.frames.clone(), plan.frames_per_session, sent_at.clone());
        async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            for i in 0..n {
                tick.tick().await;
                sent_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Instant::now());
                if tx.send(Message::binary(frames[i % frames.len()].clone())).await.is_err() {
                    return (tx, i);
                }
            }
            (tx, n)
        }
    };
    let reader = async {
        while let Some(Ok(msg)) = rx.next().await {
            let Message::Text(t) = msg else { continue };
            let Ok(v) = serde_json::from_str::<Value>(&t) else { continue };
            match v["type"].as_str() {
                Some("frame") => {
                    let seq = v["seq"].as_u64().unwrap_or(0) as usize;
                    if let Some(at) =
                        sent_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(seq.wrapping_sub(1))
                    {
                        stats.rtt_ms.push(at.elapsed().as_secs_f64() * 1e3);
                    }
                    stats.server_ms.push(v["latencyMs"]["total"].as_f64().unwrap_or(f64::NAN));
                    stats.dropped = v["dropped"].as_u64().unwrap_or(stats.dropped);
                    stats.batched += (v["batch"].as_u64().unwrap_or(1) > 1) as usize;
                    stats.results += 1;
                    progress(1);
                }
                Some("decision") => stats.decisions.push(v["decision"].as_str().unwrap_or("?").to_string()),
                Some("error") => stats.errors.push(v["message"].as_str().unwrap_or("?").to_string()),
                _ => {}
            }
        }
    };
    tokio::pin!(reader);
    let sending = async {
        let (tx, sent) = sender.await;
        // Let the last answers come back.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        (tx, sent)
    };
    tokio::select! {
        (mut tx, sent) = sending => {
            stats.sent = sent;
            let _ = tx.send(Message::text(json!({"type": "stop"}).to_string())).await;
            let _ = tokio::time::timeout(Duration::from_secs(2), &mut reader).await;
        }
        _ = &mut reader => {
            stats.sent = sent_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len();
        }
    }
    stats
}

/// The chart of a run over several session counts: round-trip percentiles,
/// and frames answered per second against those sent.
pub fn plot(reports: &[SimReport], path: &std::path::Path) -> Result<(), String> {
    use crate::plot::{Corner, Panel, Series};
    let line = |name: &str, f: &dyn Fn(&SimReport) -> f64| Series {
        name: name.into(),
        points: reports.iter().map(|r| (r.sessions as f64, f(r))).collect(),
    };
    let latency = Panel {
        title: "round trip per answered frame".into(),
        x: "kiosk sessions".into(),
        y: "ms".into(),
        series: vec![line("p50", &|r| r.rtt_ms.p50), line("p90", &|r| r.rtt_ms.p90), line("p99", &|r| r.rtt_ms.p99)],
        legend: Corner::UpperLeft,
    };
    let answered = Panel {
        title: "frames per second".into(),
        x: "kiosk sessions".into(),
        y: "frames/s".into(),
        series: vec![
            // Both over the run's wall time (connects and the last answers' grace included).
            line("sent", &|r| r.sent as f64 / r.seconds.max(1e-9)),
            line("answered", &|r| r.processed_fps),
            line("answered in a batch", &|r| r.processed_fps * r.batched_share),
        ],
        legend: Corner::UpperLeft,
    };
    let fps = reports.first().map_or(0.0, |r| r.fps);
    crate::plot::write_svg(path, &format!("rostro kiosk-sim: kiosks at {fps} fps"), &[latency, answered])
}

/// Runs `sessions` kiosks at once and sums them up.
pub async fn run(plan: &SimPlan, sessions: usize, progress: &(dyn Fn(usize) + Sync)) -> SimReport {
    let t = Instant::now();
    let all = futures_util::future::join_all((0..sessions.max(1)).map(|_| session(plan, progress))).await;
    let seconds = t.elapsed().as_secs_f64();
    let rtt: Vec<f64> = all.iter().flat_map(|s| s.rtt_ms.iter().copied()).collect();
    let server: Vec<f64> = all.iter().flat_map(|s| s.server_ms.iter().copied()).filter(|v| v.is_finite()).collect();
    let mut decisions = HashMap::new();
    for d in all.iter().flat_map(|s| s.decisions.iter()) {
        *decisions.entry(d.clone()).or_insert(0) += 1;
    }
    let results: usize = all.iter().map(|s| s.results).sum();
    SimReport {
        sessions: sessions.max(1),
        fps: plan.fps,
        sent: all.iter().map(|s| s.sent).sum(),
        results,
        dropped: all.iter().map(|s| s.dropped).sum(),
        rtt_ms: Percentiles::of(rtt),
        server_ms: Percentiles::of(server),
        processed_fps: results as f64 / seconds.max(1e-9),
        batched_share: all.iter().map(|s| s.batched).sum::<usize>() as f64 / results.max(1) as f64,
        decisions,
        errors: all.into_iter().flat_map(|s| s.errors).collect(),
        seconds,
    }
}
