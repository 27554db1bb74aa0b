//! Encoded video (WebM/VP8, MP4 or MOV with H.264, ...) -> sampled RGB
//! frames, with GStreamer: `filesrc ! decodebin ! videoconvert ! appsink`.
//!
//! The bytes go to a private temporary file first so that demuxers which
//! need to seek (MP4 with its index at the end) work. Frames are sampled by
//! presentation time at `sample_fps`; decoding stops after `max_frames`
//! samples or `max_seconds` of video.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use image::RgbImage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VideoConfig {
    /// Frames taken per second of video.
    pub sample_fps: f32,
    /// At most this many frames are taken.
    pub max_frames: usize,
    /// Video after this many seconds is ignored.
    pub max_seconds: f32,
    /// Larger frames are refused (either side, pixels).
    pub max_side: u32,
    /// Decoding taking longer than this (wall clock) is abandoned.
    pub timeout_s: f32,
    /// Fewer sampled frames than this is not a video (a still image, a blip).
    pub min_frames: usize,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            sample_fps: 5.0,
            max_frames: 40,
            max_seconds: 30.0,
            max_side: 4096,
            timeout_s: 20.0,
            min_frames: 3,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VideoError {
    #[error("the video is empty (0 bytes)")]
    Empty,
    #[error("not a video in a supported format: {0}")]
    Unsupported(String),
    #[error("the video is truncated or corrupt: {0}")]
    Corrupt(String),
    #[error("the video has no decodable frames: it is corrupt, truncated or empty")]
    NoFrames,
    #[error("the video is too short: {got} frames sampled at {fps} fps, at least {min} needed")]
    TooShort { got: usize, min: usize, fps: f32 },
    #[error("the video is truncated: frames stop at {last_ms} ms of the {duration_ms} ms it declares")]
    Truncated { last_ms: u64, duration_ms: u64 },
    #[error("video frames are {width}x{height}; at most {max_side} pixels per side are accepted")]
    TooLarge { width: u32, height: u32, max_side: u32 },
    #[error("decoding took longer than {0} s")]
    Timeout(f32),
    #[error("GStreamer is not usable: {0}")]
    Setup(String),
}

/// No new frame for this long (and no EOS, no error) means the decoder is stuck.
const STALL: Duration = Duration::from_secs(3);
/// Before the first frame the decoder also has to find its plug-ins and
/// preroll, which on a loaded machine has taken longer than STALL.
const FIRST_FRAME_STALL: Duration = Duration::from_secs(10);

/// One sampled frame and its presentation time.
#[derive(Debug, Clone)]
pub struct VideoFrame {
    pub pts_ms: u64,
    pub image: RgbImage,
}

pub(crate) fn init() -> Result<(), VideoError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| e.to_string())).clone().map_err(VideoError::Setup)
}

/// Removes the temporary copy whatever happens.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_temp(bytes: &[u8]) -> Result<TempFile, VideoError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = std::env::temp_dir().join(format!("rostro-video-{}", crate::util::uuid_v4()));
    let file = TempFile(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&file.0)
        .map_err(|e| VideoError::Setup(format!("temporary file: {e}")))?;
    f.write_all(bytes).map_err(|e| VideoError::Setup(format!("temporary file: {e}")))?;
    Ok(file)
}

/// Stops the pipeline whatever happens.
pub(crate) struct Running(pub(crate) gst::Pipeline);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.set_state(gst::State::Null);
    }
}

/// Parses a launch line that ends in `appsink name=sink`: the pipeline (not
/// yet playing, stopped when the guard drops), its appsink and its bus.
pub(crate) fn launch(line: &str) -> Result<(Running, gst_app::AppSink, gst::Bus), VideoError> {
    let pipeline = gst::parse::launch(line)
        .map_err(|e| VideoError::Setup(e.to_string()))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| VideoError::Setup("not a pipeline".into()))?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or_else(|| VideoError::Setup("no appsink named sink".into()))?;
    let bus = pipeline.bus().ok_or_else(|| VideoError::Setup("no bus".into()))?;
    Ok((Running(pipeline), sink, bus))
}

/// The RGB frame of an appsink sample, refused when a side exceeds `max_side`.
pub(crate) fn sample_rgb(sample: &gst::Sample, max_side: u32) -> Result<RgbImage, VideoError> {
    let caps = sample.caps().ok_or_else(|| VideoError::Corrupt("frame without caps".into()))?;
    let s = caps.structure(0).ok_or_else(|| VideoError::Corrupt("frame without caps".into()))?;
    let (w, h) = (s.get::<i32>("width").unwrap_or(0), s.get::<i32>("height").unwrap_or(0));
    let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
    if w > max_side || h > max_side {
        return Err(VideoError::TooLarge { width: w, height: h, max_side });
    }
    let buffer = sample.buffer().ok_or_else(|| VideoError::Corrupt("frame without data".into()))?;
    let map = buffer.map_readable().map_err(|_| VideoError::Corrupt("unreadable frame".into()))?;
    packed_rgb(map.as_slice(), w, h)
}

/// Decodes `bytes` and returns the sampled frames, in order.
pub fn decode_video(bytes: &[u8], config: &VideoConfig) -> Result<Vec<VideoFrame>, VideoError> {
    if bytes.is_empty() {
        return Err(VideoError::Empty);
    }
    init()?;
    let file = write_temp(bytes)?;
    let (running, sink, bus) = launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false max-buffers=2",
    )?;
    let src = running.0.by_name("src").ok_or_else(|| VideoError::Setup("no filesrc".into()))?;
    src.set_property("location", file.0.to_string_lossy().as_ref());
    running
        .0
        .set_state(gst::State::Playing)
        .map_err(|_| first_error(&bus).unwrap_or(VideoError::Unsupported("cannot start decoding".into())))?;

    let started = Instant::now();
    let step_ns = (1e9 / config.sample_fps.max(0.01) as f64) as u64;
    let max_ns = (config.max_seconds.max(0.0) as f64 * 1e9) as u64;
    let mut next_ns = 0u64;
    let mut last_ns = 0u64;
    let mut stopped_early = false;
    let mut frames = Vec::new();
    let mut last_sample = Instant::now();
    loop {
        if let Some(e) = first_error(&bus) {
            return Err(e);
        }
        if started.elapsed() > Duration::from_secs_f32(config.timeout_s.max(0.1)) {
            return Err(VideoError::Timeout(config.timeout_s));
        }
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            if sink.is_eos() {
                break;
            }
            // A cut-off file can leave decodebin waiting for data that never
            // comes (no error, no EOS): a stall ends the decode.
            let stall = if frames.is_empty() { FIRST_FRAME_STALL } else { STALL };
            if last_sample.elapsed() > stall {
                if frames.is_empty() {
                    return Err(VideoError::NoFrames);
                }
                break;
            }
            continue;
        };
        last_sample = Instant::now();
        let Some(buffer) = sample.buffer() else { continue };
        let pts = buffer.pts().map_or(next_ns, gst::ClockTime::nseconds);
        last_ns = last_ns.max(pts + buffer.duration().map_or(0, gst::ClockTime::nseconds));
        if pts > max_ns {
            stopped_early = true;
            break;
        }
        if pts + step_ns / 10 < next_ns {
            continue;
        }
        next_ns = pts + step_ns;
        frames.push(VideoFrame { pts_ms: pts / 1_000_000, image: sample_rgb(&sample, config.max_side)? });
        if frames.len() >= config.max_frames {
            stopped_early = true;
            break;
        }
    }
    if frames.is_empty() {
        return Err(VideoError::NoFrames);
    }
    // Demuxers end a cut-off file quietly; the container's declared duration tells.
    if !stopped_early && let Some(duration) = running.0.query_duration::<gst::ClockTime>() {
        let (duration_ms, last_ms) = (duration.mseconds(), last_ns / 1_000_000);
        if duration_ms > 0 && last_ms + 250 < duration_ms * 9 / 10 {
            return Err(VideoError::Truncated { last_ms, duration_ms });
        }
    }
    if frames.len() < config.min_frames {
        return Err(VideoError::TooShort { got: frames.len(), min: config.min_frames, fps: config.sample_fps });
    }
    Ok(frames)
}

/// Copies GStreamer's RGB rows (each padded to a multiple of 4 bytes) into an image.
fn packed_rgb(data: &[u8], w: u32, h: u32) -> Result<RgbImage, VideoError> {
    let row = w as usize * 3;
    if w == 0 || h == 0 || data.len() < row * h as usize {
        return Err(VideoError::Corrupt(format!("a {w}x{h} frame with {} bytes", data.len())));
    }
    let stride = data.len() / h as usize;
    let mut out = Vec::with_capacity(row * h as usize);
    for y in 0..h as usize {
        out.extend_from_slice(&data[y * stride..y * stride + row]);
    }
    RgbImage::from_raw(w, h, out).ok_or_else(|| VideoError::Corrupt("frame size".into()))
}

/// The first error on the bus, if one was posted.
pub(crate) fn first_error(bus: &gst::Bus) -> Option<VideoError> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
        if let gst::MessageView::Error(err) = msg.view() {
            let text = err.error().to_string();
            // typefind: "Could not determine type of stream"; decodebin: "Your GStreamer
            // installation is missing a plug-in" for a container or codec we cannot read.
            let unsupported = text.contains("determine type") || text.contains("missing a plug-in");
            return Some(if unsupported { VideoError::Unsupported(text) } else { VideoError::Corrupt(text) });
        }
    }
    None
}

/// Decodes a live encoded stream pushed in chunks (a kiosk's WebM/VP8 or
/// H.264 Annex-B byte stream): a GStreamer pipeline fed through appsrc, whose
/// frames a thread hands to `on_frame` as they are decoded.
pub struct StreamDecoder {
    src: gst_app::AppSrc,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Dropped after `Drop::drop` has sent end-of-stream: stops the pipeline.
    _running: Running,
}

impl StreamDecoder {
    /// `format`: "webm" or "h264". `on_error` is called once if the stream cannot be decoded.
    pub fn start(
        format: &str,
        max_side: u32,
        mut on_frame: impl FnMut(RgbImage) + Send + 'static,
        on_error: impl FnOnce(String) + Send + 'static,
    ) -> Result<StreamDecoder, VideoError> {
        init()?;
        let head = match format {
            "webm" => "appsrc name=src format=bytes ! matroskademux ! decodebin",
            "h264" => {
                "appsrc name=src format=bytes caps=video/x-h264,stream-format=byte-stream ! h264parse ! avdec_h264"
            }
            other => return Err(VideoError::Unsupported(format!("stream format {other:?}"))),
        };
        let line = format!(
            "{head} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink max-buffers=2 drop=false sync=false"
        );
        let (running, sink, bus) = launch(&line)?;
        let src = running
            .0
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| VideoError::Setup("no appsrc".into()))?;
        running.0.set_state(gst::State::Playing).map_err(|e| VideoError::Setup(e.to_string()))?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("stream-decoder".into())
            .spawn(move || {
                let mut on_error = Some(on_error);
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(e) = first_error(&bus) {
                        if let Some(f) = on_error.take() {
                            f(e.to_string());
                        }
                        return;
                    }
                    let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
                        if sink.is_eos() {
                            return;
                        }
                        continue;
                    };
                    match sample_rgb(&sample, max_side) {
                        Ok(img) => on_frame(img),
                        Err(e @ VideoError::TooLarge { .. }) => {
                            if let Some(f) = on_error.take() {
                                f(e.to_string());
                            }
                            return;
                        }
                        Err(_) => continue,
                    }
                }
            })
            .map_err(|e| VideoError::Setup(e.to_string()))?;
        Ok(StreamDecoder { src, stop, _running: running })
    }

    /// Feeds the next chunk of the stream.
    pub fn push(&self, chunk: &[u8]) -> Result<(), VideoError> {
        self.src
            .push_buffer(gst::Buffer::from_slice(chunk.to_vec()))
            .map(|_| ())
            .map_err(|e| VideoError::Corrupt(format!("the decoder refused data: {e}")))
    }
}

impl Drop for StreamDecoder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.src.end_of_stream();
    }
}

/// Templates shipped in `gst-pipelines/`, compiled in.
const TEMPLATES: [(&str, &str); 4] = [
    ("file", include_str!("../gst-pipelines/file.pipeline")),
    ("v4l2", include_str!("../gst-pipelines/v4l2.pipeline")),
    ("rtsp", include_str!("../gst-pipelines/rtsp.pipeline")),
    ("test", include_str!("../gst-pipelines/test.pipeline")),
];

/// One `[[cameras]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    pub id: String,
    /// The tenant whose gallery this camera searches.
    pub company: String,
    /// A template name (file, v4l2, rtsp, test) or a path to a `.pipeline` file.
    pub pipeline: String,
    /// Values for the template's `{placeholders}`.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// At most this many frames per second are analysed (0: as many as the pool takes).
    #[serde(default = "default_fps")]
    pub fps: f32,
    /// Play files at their own pace, as a camera would (false: as fast as decoded).
    #[serde(default = "yes")]
    pub realtime: bool,
    /// Start a file over at its end.
    #[serde(default, rename = "loop")]
    pub looped: bool,
}

fn default_fps() -> f32 {
    10.0
}

fn yes() -> bool {
    true
}

/// The launch line of `camera`: its template with the parameters filled in, then the
/// common tail that hands RGB frames to Rostro.
pub fn launch_line(camera: &CameraConfig) -> Result<String, String> {
    let text = match TEMPLATES.iter().find(|(n, _)| *n == camera.pipeline) {
        Some((_, t)) => t.to_string(),
        None => std::fs::read_to_string(&camera.pipeline)
            .map_err(|e| format!("camera {}: pipeline {:?}: {e}", camera.id, camera.pipeline))?,
    };
    let mut line: String =
        text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join(" ").trim().to_string();
    for (k, v) in &camera.params {
        if v.contains(['"', '!', '\n']) {
            return Err(format!("camera {}: parameter {k} may not contain quotes, '!' or newlines", camera.id));
        }
        line = line.replace(&format!("{{{k}}}"), v);
    }
    if let Some(start) = line.find('{')
        && let Some(len) = line[start..].find('}')
    {
        return Err(format!("camera {}: no value for {}", camera.id, &line[start..start + len + 1]));
    }
    Ok(format!(
        "{line} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink max-buffers=1 drop=true sync={}",
        camera.realtime
    ))
}
