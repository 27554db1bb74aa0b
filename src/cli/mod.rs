//! The `detect`, `compare` and `embed` commands: files in, readable text or
//! JSON lines out, and the operator commands of [`people`]. Argument parsing
//! lives in `main.rs`.

pub mod people;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use crate::decode::{self, DecodeLimits};
use crate::util::Percentiles;
use crate::vision::{Analysis, Face, FaceAnalyzer, Stages};

/// How a command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// An error about one input file, reported next to the file's name.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Decode(#[from] decode::DecodeError),
    #[error("no face found")]
    NoFace,
    #[error("face pipeline failed: {0}")]
    Vision(#[from] crate::vision::VisionError),
}

pub struct Cli {
    pub analyzer: FaceAnalyzer,
    pub limits: DecodeLimits,
    pub output: Output,
}

impl Cli {
    fn analyze(&mut self, path: &Path, stages: Stages) -> Result<Analysis, InputError> {
        let bytes = std::fs::read(path).map_err(InputError::Read)?;
        let img = decode::decode_image(&bytes, &self.limits)?;
        Ok(self.analyzer.analyze(&img, stages)?)
    }

    /// `rostro detect`: faces with box, landmarks, score and liveness. Returns
    /// how many files failed.
    pub fn detect(&mut self, files: &[PathBuf], liveness: bool, out: &mut dyn Write) -> std::io::Result<usize> {
        let stages = Stages { liveness, embed: false };
        self.for_each(files, stages, out, false)
    }

    /// `rostro embed`: like detect, plus the 128 embedding values of each face.
    pub fn embed(&mut self, files: &[PathBuf], out: &mut dyn Write) -> std::io::Result<usize> {
        self.for_each(files, Stages::ALL, out, true)
    }

    fn for_each(
        &mut self,
        files: &[PathBuf],
        stages: Stages,
        out: &mut dyn Write,
        embeddings: bool,
    ) -> std::io::Result<usize> {
        let mut failed = 0;
        for file in files {
            let name = file.display().to_string();
            match (self.analyze(file, stages), self.output) {
                (Ok(a), Output::Json) => writeln!(out, "{}", analysis_json(&name, &a, self.threshold(), embeddings))?,
                (Ok(a), Output::Text) => write_analysis(out, &name, &a, self.threshold(), embeddings)?,
                (Err(e), Output::Json) => {
                    failed += 1;
                    writeln!(out, "{}", json!({ "file": name, "error": e.to_string() }))?
                }
                (Err(e), Output::Text) => {
                    failed += 1;
                    writeln!(out, "{name}: error: {e}")?
                }
            }
        }
        Ok(failed)
    }

    fn threshold(&self) -> f32 {
        self.analyzer.config().liveness_threshold
    }

    /// `rostro compare`: cosine similarity of the largest face in each image.
    pub fn compare(
        &mut self,
        a: &Path,
        b: &Path,
        threshold: f32,
        out: &mut dyn Write,
    ) -> Result<Comparison, CompareError> {
        let embed = |cli: &mut Cli, path: &Path| -> Result<(Analysis, crate::vision::Embedding), CompareError> {
            let fail = |error| CompareError { file: path.to_path_buf(), error };
            let analysis = cli.analyze(path, Stages { liveness: false, embed: true }).map_err(fail)?;
            let embedding =
                analysis.faces.first().and_then(|f| f.embedding.clone()).ok_or_else(|| fail(InputError::NoFace))?;
            Ok((analysis, embedding))
        };
        let (analysis_a, ea) = embed(self, a)?;
        let (analysis_b, eb) = embed(self, b)?;
        let cosine = ea.cosine(&eb);
        let result = Comparison { cosine, threshold, same: cosine >= threshold };
        let io = |e: std::io::Error| CompareError { file: PathBuf::from("<stdout>"), error: InputError::Read(e) };
        match self.output {
            Output::Json => writeln!(
                out,
                "{}",
                json!({
                    "a": a.display().to_string(), "b": b.display().to_string(),
                    "faces_a": analysis_a.faces.len(), "faces_b": analysis_b.faces.len(),
                    "cosine": round(cosine, 4), "threshold": threshold, "same": result.same,
                })
            )
            .map_err(io)?,
            Output::Text => {
                let note = |n: usize| {
                    if n > 1 { format!(" (largest of {n} faces)") } else { String::new() }
                };
                writeln!(
                    out,
                    "{}{}\n{}{}",
                    a.display(),
                    note(analysis_a.faces.len()),
                    b.display(),
                    note(analysis_b.faces.len())
                )
                .map_err(io)?;
                let verdict = if result.same { "same person" } else { "different people" };
                writeln!(out, "cosine {cosine:.4} -> {verdict} (threshold {threshold})").map_err(io)?;
            }
        }
        Ok(result)
    }

    /// `rostro bench`: decode and analyse one image `frames` times after a
    /// warm-up, printing per-stage percentiles (medians resist the outliers a
    /// shared machine produces better than criterion's means).
    pub fn bench(
        &mut self,
        path: &Path,
        frames: usize,
        plot: Option<&Path>,
        out: &mut dyn Write,
    ) -> Result<(), InputError> {
        let bytes = std::fs::read(path).map_err(InputError::Read)?;
        let io = InputError::Read;
        let mut stages: [Vec<f64>; 5] = Default::default();
        let warmup = (frames / 10).max(3);
        // On stderr, and only on a terminal (indicatif hides it otherwise).
        let bar = progress_bar(warmup + frames, "frames");
        for i in 0..warmup + frames {
            let t = std::time::Instant::now();
            let img = decode::decode_image(&bytes, &self.limits)?;
            let decode_ms = t.elapsed().as_secs_f64() * 1e3;
            let a = self.analyzer.analyze(&img, Stages::ALL)?;
            let total_ms = t.elapsed().as_secs_f64() * 1e3;
            if i >= warmup {
                for (v, x) in stages.iter_mut().zip([
                    decode_ms,
                    a.times.detect_ms,
                    a.times.liveness_ms,
                    a.times.align_embed_ms,
                    total_ms,
                ]) {
                    v.push(x);
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let names = ["decode", "detect", "liveness", "align+embed", "frame (all)"];
        if let Some(file) = plot {
            let series = names
                .iter()
                .zip(&stages)
                .map(|(n, v)| crate::plot::Series { name: n.to_string(), points: crate::plot::cdf(v, 200) })
                .collect();
            let panel = crate::plot::Panel {
                title: format!("{frames} frames of {}", path.display()),
                x: "ms".into(),
                y: "share of frames at or below".into(),
                series,
                legend: crate::plot::Corner::LowerRight,
            };
            let caption = format!("rostro bench on {}", self.analyzer.device());
            crate::plot::write_svg(file, &caption, &[panel]).map_err(|e| InputError::Read(std::io::Error::other(e)))?;
        }
        let p: Vec<Percentiles> = stages.into_iter().map(Percentiles::of).collect();
        match self.output {
            Output::Json => {
                let v: serde_json::Map<String, Value> =
                    names.iter().zip(&p).map(|(n, p)| (n.to_string(), json!(p))).collect();
                writeln!(out, "{}", json!({ "file": path.display().to_string(), "frames": frames, "ms": v }))
                    .map_err(io)?
            }
            Output::Text => {
                writeln!(out, "\r{}: {frames} frames (after {warmup} warm-up)", path.display()).map_err(io)?;
                writeln!(out, "{:<12} {:>8} {:>8} {:>8}", "stage (ms)", "p50", "p90", "p99").map_err(io)?;
                for (n, p) in names.iter().zip(&p) {
                    writeln!(out, "{n:<12} {:>8.2} {:>8.2} {:>8.2}", p.p50, p.p90, p.p99).map_err(io)?;
                }
                writeln!(out, "{:.1} frames/s at p50", 1000.0 / p[4].p50.max(1e-9)).map_err(io)?;
            }
        }
        Ok(())
    }
}

/// The median milliseconds of `runs` calls of `f`, after two untimed ones (a
/// backend compiling per input shape does it in those).
fn p50_ms(runs: usize, f: &mut dyn FnMut() -> Result<(), crate::vision::VisionError>) -> Result<f64, InputError> {
    f()?;
    f()?;
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    Ok(Percentiles::of(ms).p50)
}

/// One row of `rostro bench --batch`: a model run on `batch` copies at once.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BatchRow {
    pub model: &'static str,
    pub batch: usize,
    /// Milliseconds per run, p50 over the runs.
    pub ms_p50: f64,
    /// Faces (frames for the detector) per second at that p50.
    pub per_s: f64,
}

impl Cli {
    /// `rostro bench --batch`: the liveness model and the embedder on `batch`
    /// copies of the image's largest face per run, timed run by run: the
    /// faces per second an inference worker reaches at each batch. The
    /// detector (whose graph takes one frame) is timed once, on the frame.
    pub fn bench_batches(
        &mut self,
        path: &Path,
        sizes: &[usize],
        plot: Option<&Path>,
        out: &mut dyn Write,
    ) -> Result<(), InputError> {
        let io = InputError::Read;
        let bytes = std::fs::read(path).map_err(io)?;
        let img = decode::decode_image(&bytes, &self.limits)?;
        let face = *self.analyzer.detect(&img)?.first().ok_or(InputError::NoFace)?;
        let live = crate::vision::liveness::crop(&img, &face.bbox);
        let aligned = crate::vision::align::align(&img, &face.landmarks).ok_or(InputError::NoFace)?;
        let side = self.analyzer.config().detect.max_side;
        let a = &mut self.analyzer;
        let detect = p50_ms(50, &mut || a.detect_at(&img, side).map(drop))?;
        let mut rows = vec![BatchRow { model: "detector", batch: 1, ms_p50: detect, per_s: 1e3 / detect.max(1e-9) }];
        let bar = progress_bar(sizes.len() * 2, "model x batch");
        for &b in sizes {
            let runs = (256 / b.max(1)).clamp(5, 50);
            let crops = vec![&live; b];
            let liveness = p50_ms(runs, &mut || a.liveness_of(&crops).map(drop))?;
            bar.inc(1);
            let faces = vec![Some(aligned.clone()); b];
            let embed = p50_ms(runs, &mut || a.embed_aligned(&faces).map(drop))?;
            bar.inc(1);
            for (model, ms) in [("liveness", liveness), ("embedder", embed)] {
                rows.push(BatchRow { model, batch: b, ms_p50: ms, per_s: b as f64 * 1e3 / ms.max(1e-9) });
            }
        }
        bar.finish_and_clear();
        let device = self.analyzer.device().to_string();
        if let Some(file) = plot {
            let series = ["liveness", "embedder"]
                .iter()
                .map(|&m| crate::plot::Series {
                    name: m.into(),
                    points: rows.iter().filter(|r| r.model == m).map(|r| (r.batch as f64, r.per_s)).collect(),
                })
                .collect();
            let panel = crate::plot::Panel {
                title: "one worker, one model at a time".into(),
                x: "batch".into(),
                y: "faces per second".into(),
                series,
                legend: crate::plot::Corner::UpperLeft,
            };
            crate::plot::write_svg(file, &format!("rostro bench --batch on {device}"), &[panel])
                .map_err(|e| InputError::Read(std::io::Error::other(e)))?;
        }
        match self.output {
            Output::Json => {
                writeln!(out, "{}", json!({ "file": path.display().to_string(), "device": device, "rows": rows }))
                    .map_err(io)?
            }
            Output::Text => {
                writeln!(out, "{}: batch throughput on {device}", path.display()).map_err(io)?;
                writeln!(out, "{:<10} {:>6} {:>10} {:>10}", "model", "batch", "ms/run", "faces/s").map_err(io)?;
                for r in &rows {
                    writeln!(out, "{:<10} {:>6} {:>10.2} {:>10.1}", r.model, r.batch, r.ms_p50, r.per_s).map_err(io)?;
                }
            }
        }
        Ok(())
    }
}

/// Latency percentiles of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    pub cosine: f32,
    pub threshold: f32,
    pub same: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", file.display())]
pub struct CompareError {
    pub file: PathBuf,
    pub error: InputError,
}

/// The progress bar of every long command (`people import/export`, `load`,
/// `kiosk-sim`): drawn on a terminal's stderr, hidden when stderr is not one.
pub fn progress_bar(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    let style = indicatif::ProgressStyle::with_template(&format!(
        "{{spinner}} {{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
    ))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn round(x: f32, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x as f64 * f).round() / f
}

fn face_json(face: &Face, live_threshold: f32, embeddings: bool) -> Value {
    let d = &face.detection;
    let mut v = json!({
        "box": { "x": round(d.bbox.x, 2), "y": round(d.bbox.y, 2), "w": round(d.bbox.w, 2), "h": round(d.bbox.h, 2) },
        "landmarks": d.landmarks.iter().map(|p| [round(p[0], 2), round(p[1], 2)]).collect::<Vec<_>>(),
        "score": round(d.score, 4),
    });
    if let Some(l) = &face.liveness {
        v["liveness"] = json!({
            "score": round(l.score, 4),
            "live": l.score >= live_threshold,
            "probabilities": l.probabilities.iter().map(|&p| round(p, 4)).collect::<Vec<_>>(),
        });
    }
    if embeddings {
        v["embedding"] = json!(face.embedding.as_ref().map(|e| e.as_slice().to_vec()));
    }
    v
}

pub fn analysis_json(file: &str, a: &Analysis, live_threshold: f32, embeddings: bool) -> Value {
    json!({
        "file": file,
        "width": a.width,
        "height": a.height,
        "faces": a.faces.iter().map(|f| face_json(f, live_threshold, embeddings)).collect::<Vec<_>>(),
        "times_ms": a.times,
    })
}

fn write_analysis(
    out: &mut dyn Write,
    file: &str,
    a: &Analysis,
    live_threshold: f32,
    embeddings: bool,
) -> std::io::Result<()> {
    let plural = if a.faces.len() == 1 { "" } else { "s" };
    writeln!(out, "{file}: {}x{}, {} face{plural}", a.width, a.height, a.faces.len())?;
    for (i, face) in a.faces.iter().enumerate() {
        let d = &face.detection;
        write!(
            out,
            "  #{} box x={:.0} y={:.0} w={:.0} h={:.0}  score {:.3}",
            i + 1,
            d.bbox.x,
            d.bbox.y,
            d.bbox.w,
            d.bbox.h,
            d.score
        )?;
        if let Some(l) = &face.liveness {
            let verdict = if l.score >= live_threshold { "live" } else { "spoof?" };
            write!(out, "  liveness {:.3} ({verdict})", l.score)?;
        }
        writeln!(out)?;
        let marks: Vec<String> = d.landmarks.iter().map(|p| format!("({:.0},{:.0})", p[0], p[1])).collect();
        writeln!(out, "     landmarks {}", marks.join(" "))?;
        if embeddings {
            match &face.embedding {
                Some(e) => {
                    let head: Vec<String> = e.as_slice().iter().take(6).map(|v| format!("{v:+.4}")).collect();
                    writeln!(out, "     embedding [{} ...] ({} values)", head.join(", "), e.as_slice().len())?
                }
                None => writeln!(out, "     embedding: landmarks could not be aligned")?,
            }
        }
    }
    let t = &a.times;
    let mut times = vec![format!("detect {:.1} ms", t.detect_ms)];
    if a.faces.iter().any(|f| f.liveness.is_some()) {
        times.push(format!("liveness {:.1} ms", t.liveness_ms));
    }
    if embeddings && !a.faces.is_empty() {
        times.push(format!("align+embed {:.1} ms", t.align_embed_ms));
    }
    writeln!(out, "  time: {}", times.join(", "))
}

/// What `rostro bench-gallery` measured for one gallery size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GalleryBench {
    pub faces: usize,
    /// Writing the synthetic store (0 when an earlier run's was kept).
    pub write_s: f64,
    pub open_s: f64,
    /// Rebuilding the in-memory gallery from the store (what `serve` does at
    /// start-up), the first time: the approximate index is trained and saved
    /// (unless an earlier run's store with its saved index was kept).
    pub load_s: f64,
    /// The same load again, restoring the saved index (every later start-up).
    pub reload_s: f64,
    pub index: &'static str,
    /// The tenant's gallery in memory (vectors, ids, index), per face.
    pub bytes_per_face: f64,
    pub search_top10_ms: Percentiles,
    pub searches_per_s: f64,
    /// Whether the search went through the approximate (IVF) index.
    pub approximate: bool,
    /// Against the exact scan: the same best face; the share of the exact top 10 returned.
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    /// The enrolled face the query was made from came first.
    pub found_target: f64,
}

/// Builds a synthetic store of `faces` users (10 per identity cluster) in
/// `dir`, reopens it, rebuilds the gallery as start-up does, and times top-10
/// searches with noisy copies of enrolled faces.
pub fn bench_gallery(
    faces: usize,
    clustered: bool,
    keep: bool,
    dir: &Path,
    config: &crate::config::Config,
    progress: &mut dyn FnMut(&str),
) -> Result<GalleryBench, Box<dyn std::error::Error>> {
    use crate::store::{Enrolment, Images, SledStore, Status, Store, StoreConfig, Template, User};
    use crate::util::SynthRng;
    use crate::vision::embed;
    let store_config = StoreConfig { data_dir: dir.to_path_buf(), key: "ab".repeat(32) };
    let mut rng = SynthRng(0x5EED_0001);
    let identities = faces.div_ceil(10);
    let centres: Vec<Vec<f32>> = (0..identities).map(|_| rng.unit(embed::DIM, None, 1.0)).collect();
    let t = Instant::now();
    let kept = keep && dir.join("db").exists();
    if !kept {
        let _ = std::fs::remove_dir_all(dir);
        let store = SledStore::open(&store_config)?;
        for start in (0..faces).step_by(10_000) {
            let batch: Vec<Enrolment> = (start..faces.min(start + 10_000))
                .map(|i| Enrolment {
                    user: User {
                        id: format!("{i:024x}"),
                        company_id: "bench".into(),
                        full_name: format!("Synthetic {i}"),
                        email: None,
                        external_id: None,
                        meta: serde_json::json!({"extra": {}}),
                        status: Status::Active,
                        created_ns: i as i64,
                        updated_ns: i as i64,
                    },
                    template: Template {
                        face_id: i as u64,
                        model: embed::MODEL.into(),
                        vector: if clustered {
                            rng.unit(embed::DIM, Some(&centres[i / 10]), 0.051)
                        } else {
                            rng.unit(embed::DIM, None, 1.0)
                        },
                        active: true,
                    },
                    images: Images { original: Vec::new(), thumbnail: Vec::new() },
                })
                .collect();
            store.enroll_many(&batch)?;
            progress(&format!("written {}/{faces}", start + batch.len()));
        }
    }
    let write_s = if kept { 0.0 } else { t.elapsed().as_secs_f64() };
    let t = Instant::now();
    let store = SledStore::open(&store_config)?;
    let open_s = t.elapsed().as_secs_f64();
    progress("loading the gallery as start-up does");
    let targets: Vec<usize> = (0..500).map(|q| (q * 7919 + 13) % faces).collect();
    let queries: Vec<Vec<f32>> = targets
        .iter()
        .map(|&i| {
            let mut r = SynthRng(0xABCD ^ i as u64);
            let v = store.template("bench", &format!("{i:024x}")).ok().flatten().map(|t| t.vector).unwrap_or_default();
            // A new photo of the same person: the enrolled face plus noise, cosine ~0.87 to it.
            r.unit(embed::DIM, Some(&v), 0.05)
        })
        .collect();
    let settings = config.passwordless_settings();
    let (first, _, _) = crate::service::bench_load(&store, &settings, "bench", &[])?;
    progress("loading again, as every later start-up does");
    let (report, results, bytes) = crate::service::bench_load(&store, &settings, "bench", &queries)?;
    let times: Vec<f64> = results.iter().map(|r| r.ms).collect();
    let search_s: f64 = times.iter().sum::<f64>() / 1e3;
    let n = results.len().max(1) as f64;
    let recall_at_1 = results.iter().filter(|r| r.top1_exact).count() as f64 / n;
    let recall_at_10 = results.iter().map(|r| r.of_exact_top10).sum::<usize>() as f64 / (10.0 * n);
    let approximate = config.gallery.ann_min_faces > 0 && report.faces >= config.gallery.ann_min_faces;
    let found = results.iter().zip(&targets).filter(|(r, i)| r.top1 == Some(**i as u64)).count();
    let found_target = found as f64 / n;
    Ok(GalleryBench {
        faces: report.faces,
        write_s,
        open_s,
        load_s: first.millis / 1e3,
        reload_s: report.millis / 1e3,
        index: match (report.indexes_restored, first.indexes_built) {
            (1.., 1..) => "trained, saved, restored",
            (1.., _) => "restored",
            (_, 1..) => "trained twice (not restored)",
            _ => "exact scan",
        },
        bytes_per_face: bytes as f64 / report.faces.max(1) as f64,
        searches_per_s: times.len() as f64 / search_s.max(1e-9),
        search_top10_ms: Percentiles::of(times),
        approximate,
        recall_at_1,
        recall_at_10,
        found_target,
    })
}

/// `rostro pad-eval`: the simulated presentations of every photo, one progress
/// line per clip, then APCER/BPCER single-frame against temporal.
pub fn pad_eval(
    mut analyzer: FaceAnalyzer,
    dir: &Path,
    count: usize,
    frames: usize,
    config: &crate::config::Config,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    use crate::biometrics::pad;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jpg") && !p.to_string_lossy().contains("many"))
        .collect();
    files.sort();
    let mut photos = Vec::new();
    for f in files.iter().take(count) {
        photos.push(decode::decode_image(&std::fs::read(f)?, &config.decode)?);
    }
    let total = photos.len() * 4;
    let mut done = 0;
    let mut lines = Vec::new();
    let report = pad::evaluate(&mut analyzer, &photos, frames.max(2), config.stream.temporal, &mut |c| {
        done += 1;
        eprint!("\r\x1b[Kpad-eval: {done}/{total} clips ({} of photo {})", c.kind.name(), c.photo);
        if json {
            lines.push(serde_json::to_string(c).unwrap_or_default());
        }
    })?;
    eprintln!();
    for l in lines {
        writeln!(out, "{l}")?;
    }
    let kinds = crate::biometrics::simulate::Presentation::ALL;
    writeln!(out, "{:<14} {:>12} {:>12}", "", "single-frame", "temporal")?;
    for (k, kind) in kinds.iter().enumerate().skip(1) {
        writeln!(
            out,
            "APCER {:<8} {:>12.3} {:>12.3}",
            kind.name().split(' ').next().unwrap_or(""),
            report.single_frame.apcer_by_kind[k],
            report.temporal.apcer_by_kind[k]
        )?;
    }
    writeln!(out, "APCER (worst)  {:>12.3} {:>12.3}", report.single_frame.apcer, report.temporal.apcer)?;
    writeln!(out, "BPCER          {:>12.3} {:>12.3}", report.single_frame.bpcer, report.temporal.bpcer)?;
    writeln!(
        out,
        "({} of {} photos have one face: {} clips of {} frames; single-frame counts every frame)",
        report.clips.len() / 4,
        photos.len(),
        report.clips.len(),
        frames
    )?;
    Ok(())
}
