//! The `rostro` command line: a thin layer over the library.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rostro::cli::{Cli, Output};
use rostro::config::Config;
use rostro::vision::{BackendKind, Device, FaceAnalyzer, ModelFiles, Precision};

#[derive(Parser)]
#[command(name = "rostro", version, about = "Real-time biometric edge service")]
struct Args {
    /// Config file overlaid on config/default.toml.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Folder holding yunet.onnx, sface.onnx, liveness.onnx and runtime/ (default: ./models).
    #[arg(long, global = true)]
    models: Option<PathBuf>,
    /// Inference backend of every model: openvino, ort or tract.
    #[arg(long, global = true)]
    backend: Option<BackendKind>,
    /// Precision of every model: f32, or bf16 (OpenVINO only).
    #[arg(long, global = true)]
    precision: Option<Precision>,
    /// Threads per model run.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Detect on a copy whose longer side is at most this (0 = native size).
    #[arg(long, global = true)]
    detect_max_side: Option<u32>,
    /// Where the models run: cpu, or cuda (falls back to the CPU, saying why).
    #[arg(long, global = true)]
    device: Option<Device>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect faces: box, 5 landmarks, score and liveness.
    Detect {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// One JSON object per image per line.
        #[arg(long)]
        json: bool,
        /// Skip the liveness model.
        #[arg(long)]
        no_liveness: bool,
    },
    /// Compare the largest face of two images: cosine similarity and same/different.
    Compare {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
        /// Same-person threshold (default: vision.match_threshold).
        #[arg(long)]
        threshold: Option<f32>,
    },
    /// Per-stage latency percentiles of the whole pipeline on one image, decode included.
    Bench {
        image: PathBuf,
        /// Frames measured (after a warm-up of a tenth as many).
        #[arg(long, default_value_t = 200)]
        frames: usize,
        /// Instead: each model's faces per second at these batch sizes, e.g. 1,8,32,64.
        #[arg(long, value_delimiter = ',')]
        batch: Vec<usize>,
        #[arg(long)]
        json: bool,
        /// Also draw the latency distribution of each stage (or faces/s per batch) into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Faces with their 128 embedding values.
    Embed {
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Run the HTTP service (Passwordless API) on the embedded store. API keys come from
    /// the config's [auth] and from ROSTRO_API_KEYS=key1:companyA,key2:companyB.
    Serve {
        /// Address to listen on (default: server.bind, or ROSTRO_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// Store folder (default: store.data_dir, or ROSTRO_DATA_DIR).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Load a running Rostro with concurrent clients; latency percentiles per client count.
    Load {
        /// Base URL of the service, e.g. http://127.0.0.1:8080
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// API key (default: the first of ROSTRO_API_KEYS).
        #[arg(long)]
        key: Option<String>,
        /// Passwordless route: face-enroll, face-verify, facial, enroll (video) or verify
        /// (video); or people-create (P-15) or people-list (P-14).
        #[arg(long, default_value = "face-verify")]
        route: String,
        /// The photo (or video, for enroll/verify) every Passwordless request sends.
        #[arg(long)]
        media: Option<PathBuf>,
        /// Client counts to run one after another, e.g. 1,8.
        #[arg(long, value_delimiter = ',', default_value = "1,8")]
        clients: Vec<usize>,
        /// Requests each client sends.
        #[arg(long, default_value_t = 50)]
        requests: usize,
        #[arg(long)]
        json: bool,
    },
    /// Build synthetic galleries in a sled store, then time start-up (rebuilding the gallery)
    /// and top-10 search, as `serve` would.
    BenchGallery {
        /// Gallery sizes, e.g. 100000,1000000.
        #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
        faces: Vec<usize>,
        /// Random directions instead of identity clusters (10 faces around each of n/10 centres).
        #[arg(long)]
        random: bool,
        /// Reuse a store an earlier run left in the scratch folder (and its saved index).
        #[arg(long)]
        keep: bool,
        /// Scratch folder for the stores (erased first, unless --keep).
        #[arg(long, default_value = "target/bench-gallery")]
        dir: PathBuf,
    },
    /// Simulated kiosks: N WebSocket sessions streaming frames at a chosen rate; per-frame
    /// latency percentiles, drops and decisions per session count.
    KioskSim {
        /// The stream endpoint.
        #[arg(long, default_value = "ws://127.0.0.1:8080/v1/stream")]
        url: String,
        /// API key (default: the first of ROSTRO_API_KEYS).
        #[arg(long)]
        key: Option<String>,
        /// identify, verify, enroll or liveness.
        #[arg(long, default_value = "identify")]
        mode: String,
        /// The claimed user (verify).
        #[arg(long)]
        user_id: Option<String>,
        /// A folder of JPEG/PNG frames, or one photo.
        #[arg(long)]
        frames: PathBuf,
        /// Turn one photo into a clip of a living, moving face (head turn, blink).
        #[arg(long)]
        simulate: bool,
        #[arg(long, default_value_t = 15.0)]
        fps: f64,
        /// Session counts to run one after another, e.g. 1,4,8.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        sessions: Vec<usize>,
        /// Seconds each session streams.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Keep deciding (the server resets after each decision) instead of closing at the first.
        #[arg(long)]
        continuous: bool,
        #[arg(long)]
        json: bool,
        /// Also draw latency and answered frames per session count into this SVG file.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
    /// Liveness on simulated presentations (bona fide, still photo, screen, print) made from
    /// photos: APCER/BPCER of the single-frame model against the temporal decision.
    PadEval {
        /// Photos of real faces (default: the deepface fixture photos).
        #[arg(long, default_value = "../shared/testdata/faces/deepface")]
        photos: PathBuf,
        /// How many photos (in name order) to use.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Frames per clip.
        #[arg(long, default_value_t = 12)]
        frames: usize,
        /// Every clip's signals as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Bulk People work on the store of a stopped service (the code of P-20 and P-21).
    People {
        #[command(subcommand)]
        action: PeopleCommand,
    },
    /// Recompute every stored face template from the kept enrolment images with the
    /// current models (run with the service stopped).
    Reembed {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PeopleCommand {
    /// Upsert the rows of a CSV or XLSX file (a header row of export columns) by national_id.
    Import {
        file: PathBuf,
        #[arg(long)]
        company: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// `{"done", "total"}` after each committed chunk, then the report, as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Write the P-20 CSV of a company's people.
    Export {
        #[arg(long)]
        company: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Leave out `address` and/or `contact` columns.
        #[arg(long, value_parser = ["address", "contact"])]
        exclude: Vec<String>,
        /// Only people created on or after this day (YYYY-MM-DD, UTC).
        #[arg(long, value_parser = parse_day)]
        start_date: Option<String>,
        /// Only people created on or before this day.
        #[arg(long, value_parser = parse_day)]
        end_date: Option<String>,
    },
}

fn parse_day(text: &str) -> Result<String, String> {
    rostro::util::parse_date(text).map(|d| d.to_string()).ok_or_else(|| format!("{text:?} is not a YYYY-MM-DD date"))
}

fn people(mut config: Config, action: PeopleCommand) -> anyhow::Result<ExitCode> {
    config.apply_env()?;
    match action {
        PeopleCommand::Import { file, company, data_dir, json } => {
            config.store.data_dir = data_dir.unwrap_or(config.store.data_dir);
            let stdout = std::io::stdout();
            let report = rostro::cli::people::import(&config, &company, &file, json, &mut stdout.lock())?;
            let summary = serde_json::json!({"rows": report.rows, "imported": report.rows - report.errors.len(),
                "failed": report.errors.len(), "errors": report.errors});
            if json {
                println!("{summary}");
            } else {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            }
            Ok(if report.errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        PeopleCommand::Export { company, data_dir, out, exclude, start_date, end_date } => {
            config.store.data_dir = data_dir.unwrap_or(config.store.data_dir);
            let spec = rostro::people::transfer::Export {
                start_date,
                end_date,
                addresses: !exclude.iter().any(|e| e == "address"),
                contacts: !exclude.iter().any(|e| e == "contact"),
            };
            let rows = match &out {
                Some(path) => {
                    let mut file =
                        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                    rostro::cli::people::export(&config, &company, &spec, &mut file)?
                }
                None => rostro::cli::people::export(&config, &company, &spec, &mut std::io::stdout().lock())?,
            };
            eprintln!("rostro: exported {rows} people");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(args.config.as_deref())?;
    let models = &mut config.vision.models;
    for choice in [&mut models.detector, &mut models.liveness, &mut models.embedder] {
        if args.backend.is_some() {
            choice.backend = None;
        }
        if let Some(p) = args.precision {
            choice.precision = p;
        }
    }
    if let Some(b) = args.backend {
        config.vision.backend = b;
    }
    if let Some(t) = args.threads {
        config.vision.threads.intra = t;
    }
    if let Some(m) = args.detect_max_side {
        config.vision.detect.max_side = m;
    }
    if let Some(d) = args.device {
        config.vision.device = d;
    }
    if let Command::Bench { batch, .. } = &args.command {
        config.vision.max_batch = config.vision.max_batch.max(batch.iter().copied().max().unwrap_or(0));
    }
    config.validate()?;
    let files = ModelFiles::locate(args.models.as_deref());
    match args.command {
        Command::Load { url, key, route, media, clients, requests, json } => {
            return load(&url, key, route, media.as_deref(), &clients, requests, json);
        }
        Command::KioskSim {
            url,
            key,
            mode,
            user_id,
            frames,
            simulate,
            fps,
            sessions,
            seconds,
            continuous,
            json,
            plot,
        } => {
            let key = api_key(key)?;
            let clip = kiosk_frames(&frames, simulate, &files, &config)?;
            let start = serde_json::json!({"type": "start", "mode": mode, "userId": user_id, "continuous": continuous,
                "user": (mode == "enroll").then(|| serde_json::json!({"fullName": "Kiosk Sim"}))});
            let plan = rostro::kiosk::SimPlan {
                url,
                key,
                start,
                frames: clip,
                fps,
                frames_per_session: (seconds * fps).ceil().max(1.0) as usize,
            };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let mut reports = Vec::new();
            for n in sessions {
                let bar = rostro::cli::progress_bar(
                    n * plan.frames_per_session,
                    &format!("frames answered, {n} sessions at {fps} fps"),
                );
                let progress = |k: usize| bar.inc(k as u64);
                let r = rt.block_on(rostro::kiosk::run(&plan, n, &progress));
                bar.finish_and_clear();
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "{} sessions x {} fps: sent {} answered {} dropped {} | round trip p50 {:.1} p90 {:.1} p99 {:.1} ms | server p50 {:.1} p99 {:.1} ms | {:.1} frames/s, {:.0} % batched | decisions {:?}{}",
                        r.sessions,
                        r.fps,
                        r.sent,
                        r.results,
                        r.dropped,
                        r.rtt_ms.p50,
                        r.rtt_ms.p90,
                        r.rtt_ms.p99,
                        r.server_ms.p50,
                        r.server_ms.p99,
                        r.processed_fps,
                        100.0 * r.batched_share,
                        r.decisions,
                        if r.errors.is_empty() { String::new() } else { format!(" | errors {:?}", r.errors) }
                    );
                }
                reports.push(r);
            }
            if let Some(path) = plot {
                rostro::kiosk::plot(&reports, &path).map_err(anyhow::Error::msg)?;
                eprintln!("rostro: wrote {}", path.display());
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::BenchGallery { faces, random, keep, dir } => {
            for n in faces {
                let mut progress = |m: &str| eprint!("\r\x1b[Kbench-gallery {n}: {m}");
                let r = rostro::cli::bench_gallery(
                    n.max(1),
                    !random,
                    keep,
                    &dir.join(n.to_string()),
                    &config,
                    &mut progress,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                eprintln!();
                println!("{}", serde_json::to_string(&r)?);
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Serve { bind, data_dir } => {
            config.apply_env()?;
            config.server.bind = bind.unwrap_or(config.server.bind);
            config.store.data_dir = data_dir.unwrap_or(config.store.data_dir);
            return serve(config, &files);
        }
        Command::People { action } => return people(config, action),
        Command::Reembed { data_dir } => {
            config.apply_env()?;
            config.store.data_dir = data_dir.unwrap_or(config.store.data_dir);
            let store = rostro::store::SledStore::open(&config.store)?;
            let mut analyzer = FaceAnalyzer::new(&files, config.vision.clone()).context("loading the face models")?;
            let report = rostro::service::reembed(
                &store,
                &mut analyzer,
                &config.passwordless_settings(),
                &mut |done, total| {
                    eprint!("\rrostro: re-embedded {done}/{total}");
                },
            )?;
            eprintln!();
            println!("{}", serde_json::to_string(&report)?);
            return Ok(if report.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE });
        }
        _ => {}
    }
    let analyzer = FaceAnalyzer::new(&files, config.vision.clone()).context("loading the face models")?;
    if let Some(why) = analyzer.fallback() {
        eprintln!("rostro: CUDA unavailable ({why}); running on {}", analyzer.device());
    }
    let output = |json: bool| if json { Output::Json } else { Output::Text };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let failed = match args.command {
        Command::Detect { images, json, no_liveness } => {
            Cli { analyzer, limits: config.decode, output: output(json) }.detect(&images, !no_liveness, &mut out)?
        }
        Command::Embed { images, json } => {
            Cli { analyzer, limits: config.decode, output: output(json) }.embed(&images, &mut out)?
        }
        Command::Bench { image, frames, batch, json, plot } => {
            let mut cli = Cli { analyzer, limits: config.decode, output: output(json) };
            let run = if batch.is_empty() {
                cli.bench(&image, frames.max(1), plot.as_deref(), &mut out)
            } else {
                cli.bench_batches(&image, &batch, plot.as_deref(), &mut out)
            };
            match run {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("rostro: {}: {e}", image.display());
                    1
                }
            }
        }
        Command::PadEval { photos, count, frames, json } => {
            rostro::cli::pad_eval(analyzer, &photos, count, frames, &config, json, &mut out)?;
            0
        }
        Command::Serve { .. }
        | Command::Reembed { .. }
        | Command::People { .. }
        | Command::Load { .. }
        | Command::BenchGallery { .. }
        | Command::KioskSim { .. } => {
            unreachable!("handled above")
        }
        Command::Compare { a, b, json, threshold } => {
            let threshold = threshold.unwrap_or(config.vision.match_threshold);
            let mut cli = Cli { analyzer, limits: config.decode, output: output(json) };
            match cli.compare(&a, &b, threshold, &mut out) {
                Ok(_) => 0,
                Err(e) => {
                    out.flush()?;
                    eprintln!("rostro: {e}");
                    1
                }
            }
        }
    };
    out.flush()?;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `--key`, or the first key of ROSTRO_API_KEYS.
fn api_key(key: Option<String>) -> anyhow::Result<String> {
    key.or_else(|| std::env::var("ROSTRO_API_KEYS").ok().and_then(|k| k.split(':').next().map(str::to_string)))
        .context("give --key or set ROSTRO_API_KEYS")
}

/// The JPEG frames a simulated kiosk sends.
fn kiosk_frames(
    path: &std::path::Path,
    simulate: bool,
    files: &ModelFiles,
    config: &Config,
) -> anyhow::Result<Vec<Vec<u8>>> {
    if path.is_dir() {
        let mut names: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jpg" || x == "jpeg" || x == "png"))
            .collect();
        names.sort();
        anyhow::ensure!(!names.is_empty(), "no .jpg/.png frames in {}", path.display());
        return names.iter().map(|p| std::fs::read(p).with_context(|| p.display().to_string())).collect();
    }
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if !simulate {
        return Ok(vec![bytes]);
    }
    let photo = rostro::decode::decode_image(&bytes, &config.decode)?;
    let mut analyzer = FaceAnalyzer::new(files, config.vision.clone()).context("loading the face models")?;
    let faces = analyzer.detect(&photo)?;
    let face = faces.first().context("no face in the photo to simulate")?;
    let clip =
        rostro::biometrics::simulate::clip(&photo, face, rostro::biometrics::simulate::Presentation::BonaFide, 30, 1);
    Ok(clip.iter().map(|f| rostro::service::jpeg(f, 90)).collect())
}

fn load(
    url: &str,
    key: Option<String>,
    route: String,
    media: Option<&std::path::Path>,
    clients: &[usize],
    requests: usize,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let key = api_key(key)?;
    let (addr, base_path) = rostro::util::resolve_http(url).map_err(anyhow::Error::msg)?;
    let media = match media {
        Some(path) => std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
        None if route.starts_with("people-") => Vec::new(),
        None => anyhow::bail!("--media is required for the Passwordless route {route}"),
    };
    let plan = rostro::loadgen::LoadPlan { addr, base_path, key, route, media, requests_per_client: requests.max(1) };
    if plan.route.contains("verify") || plan.route == "facial" {
        plan.prepare().map_err(anyhow::Error::msg)?;
    }
    for &n in clients {
        let bar = rostro::cli::progress_bar(
            n.max(1) * plan.requests_per_client,
            &format!("{} answered, {n} clients", plan.route),
        );
        let progress = |done: usize, _total: usize| bar.set_position(done as u64);
        let r = plan.run(n.max(1), &progress);
        bar.finish_and_clear();
        if json {
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!(
                "{:<12} clients {:>3}  ok {:>4}/{:<4}  p50 {:>8.1} ms  p90 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms  {:>6.1} req/s  other {:?}",
                r.route,
                r.clients,
                r.ok,
                r.requests,
                r.latency_ms.p50,
                r.latency_ms.p90,
                r.latency_ms.p99,
                r.max_ms,
                r.requests_per_s,
                r.other_statuses
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(config: Config, files: &ModelFiles) -> anyhow::Result<ExitCode> {
    let config = std::sync::Arc::new(config);
    if config.auth.keys.is_empty() {
        tracing::warn!("no API keys configured; every request will get 401 (set ROSTRO_API_KEYS)");
    }
    // The inference actors start inside the actix system that serves.
    let system = actix_web::rt::System::new();
    let (state, report) = rostro::app::build_state(config.clone(), files)?;
    tracing::info!(
        store = %config.store.data_dir.display(),
        faces = report.faces,
        millis = report.millis.round(),
        other_model = report.skipped_other_model,
        indexes_built = report.indexes_built,
        indexes_restored = report.indexes_restored,
        refiled = report.refiled,
        "store opened; gallery loaded"
    );
    system.block_on(rostro::serve::serve(state, |addr| {
        tracing::info!("listening on http://{addr}{}", config.server.base_path);
    }))?;
    tracing::info!("stopped; store flushed");
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr through `tracing`: level from `ROSTRO_LOG` (default `info`),
/// one JSON object per line with `ROSTRO_LOG_FORMAT=json` (for fleets).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROSTRO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var("ROSTRO_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}

fn main() -> ExitCode {
    init_logs();
    match run(Args::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rostro: {e:#}");
            ExitCode::from(2)
        }
    }
}
