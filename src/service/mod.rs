//! The passwordless face service without HTTP: enrol, identify, list,
//! update, delete, over a [`Store`], a per-tenant [`Gallery`] and the
//! inference [`Engine`]. The HTTP handlers (`api/`) and the tools call this.
//!
//! Writes go to the store first (durable when it returns), then to the
//! in-memory gallery; at start-up the gallery is rebuilt from the store.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::biometrics::capture::{self, Capture, CaptureError, Rules};
use crate::decode::{DecodeError, DecodeLimits, decode_image};
use crate::engine::{Engine, EngineError};
use crate::gallery::{FaceId, Gallery, GalleryConfig, IndexOrigin, Layout};
use crate::store::{Enrolment, Images, Status, Store, StoreError, Template, User};
use crate::util;
use crate::video::{VideoConfig, VideoError, decode_video};
use crate::vision::{FaceAnalyzer, Stages, VisionConfig, embed};

/// The `[passwordless]` section of the config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordlessConfig {
    /// Judge single-frame liveness on photos too (videos always are).
    pub image_liveness: bool,
    /// Longest side of the stored thumbnail.
    pub thumbnail_side: u32,
}

impl Default for PasswordlessConfig {
    fn default() -> Self {
        PasswordlessConfig { image_liveness: false, thumbnail_side: 160 }
    }
}

/// The config sections the service reads (filled from the whole config by `config.rs`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub vision: VisionConfig,
    pub decode: DecodeLimits,
    pub video: VideoConfig,
    pub gallery: GalleryConfig,
    pub passwordless: PasswordlessConfig,
}

/// Where the face comes from.
#[derive(Debug, Clone)]
pub enum Media {
    Image(Vec<u8>),
    Video(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Image(#[from] DecodeError),
    #[error(transparent)]
    Video(#[from] VideoError),
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Busy(EngineError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What kind of failure a [`ServiceError`] is; each API maps kinds to its status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or its media cannot be used.
    Invalid,
    NotFound,
    Conflict,
    /// The inference pool is full: try again shortly.
    Busy,
    Internal,
}

impl ServiceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::Busy(_) => ErrorKind::Busy,
            ServiceError::Internal(_) | ServiceError::Video(VideoError::Setup(_) | VideoError::Timeout(_)) => {
                ErrorKind::Internal
            }
            ServiceError::Invalid(_) | ServiceError::Image(_) | ServiceError::Video(_) | ServiceError::Capture(_) => {
                ErrorKind::Invalid
            }
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DuplicateExternalId(_) => ServiceError::Conflict(e.to_string()),
            StoreError::NotFound => ServiceError::NotFound("user not found".into()),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

impl From<EngineError> for ServiceError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Busy(_) => ServiceError::Busy(e),
            EngineError::Stopped => ServiceError::Internal(e.to_string()),
        }
    }
}

/// What a new user gives besides a face.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub full_name: String,
    pub email: Option<String>,
    pub external_id: Option<String>,
}

/// Filters and page of a user listing.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: usize,
    pub page: usize,
    pub status: Option<Status>,
    pub full_name: Option<String>,
    pub min_created_ns: Option<i64>,
    pub max_created_ns: Option<i64>,
}

/// One page of users and how many matched in all.
#[derive(Debug, Clone)]
pub struct Page {
    pub users: Vec<User>,
    pub total: usize,
}

/// A user found by face.
#[derive(Debug, Clone)]
pub struct Found {
    pub user: User,
    pub images: Images,
    pub score: f32,
}

/// Who owns a gallery face.
#[derive(Debug, Clone)]
struct Owner {
    user: String,
    active: bool,
}

struct Index {
    gallery: Gallery,
    owners: HashMap<FaceId, Owner>,
}

/// Timings and counts of the start-up load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LoadReport {
    pub faces: usize,
    pub skipped_other_model: usize,
    pub millis: f64,
    /// Tenants whose approximate index was trained (and then saved), and
    /// those restored from the layout saved in the store.
    pub indexes_built: usize,
    pub indexes_restored: usize,
    /// Faces of restored indexes that the saved layout did not hold as stored.
    pub refiled: usize,
}

pub struct Service {
    store: Arc<dyn Store>,
    index: RwLock<Index>,
    engine: Engine,
    config: Arc<Settings>,
}

/// What the inference worker hands back for one piece of media.
struct Analysed {
    capture: Capture,
    /// For enrolments only: the image to keep (the upload itself, or the
    /// chosen video frame as JPEG) and its thumbnail.
    images: Option<Images>,
}

pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    img.write_with_encoder(encoder).expect("JPEG encoding into memory cannot fail");
    out
}

/// `bytes` as JPEG: returned as they are when they already are one.
pub fn as_jpeg(bytes: &[u8], config: &Settings) -> Vec<u8> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return bytes.to_vec();
    }
    decode_image(bytes, &config.decode).map(|img| jpeg(&img, 95)).unwrap_or_default()
}

fn thumbnail(img: &RgbImage, side: u32) -> Vec<u8> {
    let scale = (side as f32 / img.width().max(img.height()) as f32).min(1.0);
    let (w, h) =
        (((img.width() as f32 * scale).round() as u32).max(1), ((img.height() as f32 * scale).round() as u32).max(1));
    jpeg(&image::imageops::thumbnail(img, w, h), 85)
}

fn analyse(
    a: &mut FaceAnalyzer,
    media: Media,
    rules: Rules,
    config: &Settings,
    keep_images: bool,
) -> Result<Analysed, ServiceError> {
    let stages = Stages { liveness: rules.liveness_threshold.is_some(), embed: true };
    let internal = |e: crate::vision::VisionError| ServiceError::Internal(e.to_string());
    match media {
        Media::Image(bytes) => {
            let img = decode_image(&bytes, &config.decode)?;
            let analysis = a.analyze(&img, stages).map_err(internal)?;
            let capture = capture::choose(&[(&img, &analysis)], &rules)?;
            let images = keep_images
                .then(|| Images { thumbnail: thumbnail(&img, config.passwordless.thumbnail_side), original: bytes });
            Ok(Analysed { capture, images })
        }
        Media::Video(bytes) => {
            let frames = decode_video(&bytes, &config.video)?;
            let analyses =
                frames.iter().map(|f| a.analyze(&f.image, stages)).collect::<Result<Vec<_>, _>>().map_err(internal)?;
            let pairs: Vec<_> = frames.iter().map(|f| &f.image).zip(&analyses).collect();
            let capture = capture::choose(&pairs, &rules)?;
            let best = &frames[capture.frame].image;
            let images = keep_images.then(|| Images {
                original: jpeg(best, 95),
                thumbnail: thumbnail(best, config.passwordless.thumbnail_side),
            });
            Ok(Analysed { capture, images })
        }
    }
}

/// Builds the gallery from the store: every template of the current model,
/// with each user's status.
fn load_index(store: &dyn Store, config: &Settings) -> Result<(Index, LoadReport), ServiceError> {
    let t = Instant::now();
    let mut index = Index { gallery: Gallery::new(embed::DIM, config.gallery), owners: HashMap::new() };
    let mut skipped = 0;
    let mut by_tenant: HashMap<String, Vec<(FaceId, Vec<f32>)>> = HashMap::new();
    store.for_each_template(&mut |company, id, template| {
        if template.model != embed::MODEL {
            skipped += 1;
            return;
        }
        by_tenant.entry(company.to_string()).or_default().push((template.face_id, template.vector));
        index.owners.insert(template.face_id, Owner { user: id.to_string(), active: template.active });
    })?;
    // One insert per tenant: a large tenant restores its saved approximate
    // index (checked face by face against the store) or builds it once and saves it.
    let (mut built, mut restored, mut refiled) = (0, 0, 0);
    for (tenant, faces) in by_tenant {
        let faces: Vec<(FaceId, &[f32])> = faces.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        let layout = match config.gallery.wants_index(faces.len()) {
            true => store.gallery_layout(&tenant)?.and_then(|bytes| {
                let layout = Layout::from_bytes(&bytes);
                if layout.is_none() {
                    tracing::warn!(tenant, "the saved gallery index is unreadable; training it again");
                }
                layout
            }),
            false => None,
        };
        let origin = index
            .gallery
            .upsert_many_from(&tenant, &faces, layout.as_ref())
            .map_err(|e| ServiceError::Internal(format!("a stored template cannot be indexed: {e}")))?;
        match origin {
            IndexOrigin::Built => {
                built += 1;
                if let Some(layout) = index.gallery.tenant(&tenant).and_then(|t| t.layout()) {
                    store.save_gallery_layout(&tenant, &layout.to_bytes())?;
                }
            }
            IndexOrigin::Restored { refiled: n } => {
                restored += 1;
                refiled += n;
            }
            IndexOrigin::Unchanged => {}
        }
    }
    let report = LoadReport {
        faces: index.owners.len(),
        skipped_other_model: skipped,
        millis: t.elapsed().as_secs_f64() * 1e3,
        indexes_built: built,
        indexes_restored: restored,
        refiled,
    };
    Ok((index, report))
}

/// One search of `bench_load`: milliseconds, whether its best face is the exact
/// scan's best, and how many of the exact top 10 it returned.
#[derive(Debug, Clone, Copy)]
pub struct TimedHit {
    pub ms: f64,
    pub top1: Option<FaceId>,
    pub top1_exact: bool,
    pub of_exact_top10: usize,
}

/// The start-up load alone (no models): how long rebuilding the gallery from
/// `store` takes, then top-10 searches of `queries` against one tenant:
/// milliseconds and the best face of each; and the bytes the tenant's gallery holds.
pub fn bench_load(
    store: &dyn Store,
    config: &Settings,
    tenant: &str,
    queries: &[Vec<f32>],
) -> Result<(LoadReport, Vec<TimedHit>, usize), ServiceError> {
    let (index, report) = load_index(store, config)?;
    let internal = |e: crate::gallery::GalleryError| ServiceError::Internal(e.to_string());
    let mut results = Vec::with_capacity(queries.len());
    let Some(t_index) = index.gallery.tenant(tenant) else {
        return Ok((report, results, 0));
    };
    for q in queries {
        let t = Instant::now();
        let hits = index.gallery.search(tenant, q, 10).map_err(internal)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let exact = t_index.search_exact(q, 10).map_err(internal)?;
        results.push(TimedHit {
            ms,
            top1: hits.first().map(|m| m.id),
            top1_exact: hits.first().map(|m| m.id) == exact.first().map(|m| m.id),
            of_exact_top10: hits.iter().filter(|h| exact.iter().any(|e| e.id == h.id)).count(),
        });
    }
    Ok((report, results, t_index.memory_bytes()))
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
        && email.len() <= 254
}

impl Service {
    /// Opens the service over `store`, rebuilding the gallery from it.
    pub fn start(
        store: Arc<dyn Store>,
        engine: Engine,
        config: Arc<Settings>,
    ) -> Result<(Service, LoadReport), ServiceError> {
        let (index, report) = load_index(store.as_ref(), &config)?;
        Ok((Service { store, index: RwLock::new(index), engine, config }, report))
    }

    pub fn config(&self) -> &Settings {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The threshold at which a face is taken to be an enrolled user.
    pub fn threshold(&self) -> f32 {
        self.config.vision.match_threshold
    }

    /// Faces in every tenant's gallery.
    pub fn gallery_size(&self) -> usize {
        self.read().gallery.total()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rules(&self, media: &Media, single_face: bool) -> Rules {
        let v = &self.config.vision;
        let live = matches!(media, Media::Video(_)) || self.config.passwordless.image_liveness;
        Rules { single_face, liveness_threshold: live.then_some(v.liveness_threshold), same_person: v.match_threshold }
    }

    /// Runs the pipeline on a worker. An enrolment needs exactly one face and keeps its images.
    async fn analyse(&self, media: Media, enrolment: bool) -> Result<Analysed, ServiceError> {
        let rules = self.rules(&media, enrolment);
        let config = self.config.clone();
        self.engine.run(move |a| analyse(a, media, rules, &config, enrolment)).await?
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, ServiceError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(ServiceError::from)
    }

    /// Enrols a new user of `company` from a photo or video with exactly one face.
    pub async fn enroll(&self, company: &str, new: NewUser, media: Media) -> Result<(User, Images), ServiceError> {
        let full_name = new.full_name.trim().to_string();
        if full_name.is_empty() {
            return Err(ServiceError::Invalid("user.fullName is required".into()));
        }
        if let Some(email) = &new.email
            && !valid_email(email)
        {
            return Err(ServiceError::Invalid(format!("user.email {email:?} is not an e-mail address")));
        }
        if new.external_id.as_deref().is_some_and(|e| e.trim().is_empty()) {
            return Err(ServiceError::Invalid("user.externalId must not be empty".into()));
        }
        // Refuse a known duplicate before spending inference on it; the store checks again atomically.
        if let Some(ext) = new.external_id.clone() {
            let c = company.to_string();
            if self.blocking(move |s| s.find_external(&c, &ext)).await?.is_some() {
                return Err(StoreError::DuplicateExternalId(new.external_id.unwrap_or_default()).into());
            }
        }
        let analysed = self.analyse(media, true).await?;
        let now = util::now_ns();
        let user = User {
            id: util::object_id(),
            company_id: company.to_string(),
            full_name,
            email: new.email,
            external_id: new.external_id,
            meta: serde_json::json!({"extra": {}}),
            status: Status::Active,
            created_ns: now,
            updated_ns: now,
        };
        let images = analysed.images.ok_or_else(|| ServiceError::Internal("enrolment images missing".into()))?;
        let vector = analysed.capture.embedding.as_slice().to_vec();
        let e = self
            .blocking(move |s| {
                let face_id = s.next_face_id()?;
                let template = Template { face_id, model: embed::MODEL.into(), vector, active: true };
                let enrolment = Enrolment { user, template, images };
                s.enroll(&enrolment)?;
                Ok(enrolment)
            })
            .await?;
        let mut index = self.write();
        let face_id = e.template.face_id;
        index
            .gallery
            .upsert(company, face_id, &e.template.vector)
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        index.owners.insert(face_id, Owner { user: e.user.id.clone(), active: true });
        drop(index);
        Ok((e.user, e.images))
    }

    /// The `k` users of `company` most similar to the face in `media`, best
    /// first; only active ones when `active_only`.
    pub async fn identify(
        &self,
        company: &str,
        media: Media,
        k: usize,
        active_only: bool,
    ) -> Result<Vec<Found>, ServiceError> {
        let analysed = self.analyse(media, false).await?;
        let hits = self.search(company, analysed.capture.embedding.as_slice(), k, active_only, None)?;
        let company = company.to_string();
        self.blocking(move |s| {
            let mut found = Vec::with_capacity(hits.len());
            for (id, score) in hits {
                if let Some(user) = s.user(&company, &id)? {
                    let images = s.images(&company, &id)?.unwrap_or_default();
                    found.push(Found { user, images, score });
                }
            }
            Ok(found)
        })
        .await
    }

    /// The `k` gallery faces of `company` nearest `query`, as (user id, score), best first;
    /// only active users when `active_only`, only `only_user`'s faces when given.
    pub fn search(
        &self,
        company: &str,
        query: &[f32],
        k: usize,
        active_only: bool,
        only_user: Option<&str>,
    ) -> Result<Vec<(String, f32)>, ServiceError> {
        let index = self.read();
        let keep = |id: FaceId| {
            index.owners.get(&id).is_some_and(|o| (o.active || !active_only) && only_user.is_none_or(|u| o.user == u))
        };
        let matches =
            index.gallery.search_where(company, query, k, keep).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(matches.into_iter().filter_map(|m| index.owners.get(&m.id).map(|o| (o.user.clone(), m.score))).collect())
    }

    /// The user record alone (no images), if it exists.
    pub async fn user_record(&self, company: &str, id: &str) -> Result<Option<User>, ServiceError> {
        let (company, id) = (company.to_string(), id.to_string());
        self.blocking(move |s| s.user(&company, &id)).await
    }

    /// The best active match at or above the threshold.
    pub async fn verify(&self, company: &str, media: Media) -> Result<Found, ServiceError> {
        let threshold = self.threshold();
        let best = self.identify(company, media, 1, true).await?.into_iter().next();
        best.filter(|f| f.score >= threshold).ok_or_else(|| ServiceError::NotFound("No matching user".into()))
    }

    pub async fn user(&self, company: &str, id: &str) -> Result<(User, Images), ServiceError> {
        let (company, id) = (company.to_string(), id.to_string());
        self.blocking(move |s| {
            let user = s.user(&company, &id)?.ok_or(StoreError::NotFound)?;
            let images = s.images(&company, &id)?.unwrap_or_default();
            Ok((user, images))
        })
        .await
    }

    async fn list_all(&self, company: &str) -> Result<Vec<User>, ServiceError> {
        let company = company.to_string();
        self.blocking(move |s| s.users(Some(&company))).await
    }

    /// Users of `company` matching `q`, newest first, one page, with thumbnails.
    pub async fn list(&self, company: &str, q: ListQuery) -> Result<(Page, Vec<Vec<u8>>), ServiceError> {
        let needle = q.full_name.as_deref().map(util::fold);
        let mut users: Vec<User> = self
            .list_all(company)
            .await?
            .into_iter()
            .filter(|u| q.status.is_none_or(|s| u.status == s))
            .filter(|u| needle.as_ref().is_none_or(|n| util::fold(&u.full_name).contains(n.as_str())))
            .filter(|u| q.min_created_ns.is_none_or(|t| u.created_ns >= t))
            .filter(|u| q.max_created_ns.is_none_or(|t| u.created_ns <= t))
            .collect();
        users.sort_by(|a, b| b.created_ns.cmp(&a.created_ns).then_with(|| b.id.cmp(&a.id)));
        let total = users.len();
        let users: Vec<User> = users.into_iter().skip((q.page - 1).saturating_mul(q.limit)).take(q.limit).collect();
        let (company, ids) = (company.to_string(), users.iter().map(|u| u.id.clone()).collect::<Vec<_>>());
        let thumbs = self
            .blocking(move |s| {
                ids.iter().map(|id| Ok(s.images(&company, id)?.map(|i| i.thumbnail).unwrap_or_default())).collect()
            })
            .await?;
        Ok((Page { users, total }, thumbs))
    }

    /// Changes name and/or status.
    pub async fn update(
        &self,
        company: &str,
        id: &str,
        full_name: Option<String>,
        status: Option<Status>,
    ) -> Result<(User, Images), ServiceError> {
        let (mut user, images) = self.user(company, id).await?;
        if let Some(name) = full_name {
            user.full_name = name;
        }
        if let Some(status) = status {
            user.status = status;
        }
        user.updated_ns = util::now_ns().max(user.updated_ns + 1);
        let saved = user.clone();
        self.blocking(move |s| s.update_user(&saved)).await?;
        let (company, id) = (company.to_string(), id.to_string());
        let template = self.blocking(move |s| s.template(&company, &id)).await?;
        if let Some(t) = template
            && let Some(owner) = self.write().owners.get_mut(&t.face_id)
        {
            owner.active = user.status == Status::Active;
        }
        Ok((user, images))
    }

    /// Erases the user, its face template and images.
    pub async fn delete(&self, company: &str, id: &str) -> Result<(), ServiceError> {
        let (c, i) = (company.to_string(), id.to_string());
        let template = self.blocking(move |s| s.template(&c, &i)).await?;
        let (c, i) = (company.to_string(), id.to_string());
        self.blocking(move |s| s.delete_user(&c, &i)).await?.ok_or(StoreError::NotFound)?;
        if let Some(t) = template {
            let mut index = self.write();
            index.gallery.remove(company, t.face_id);
            index.owners.remove(&t.face_id);
        }
        Ok(())
    }
}

/// What `rostro reembed` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReembedReport {
    pub users: usize,
    pub reembedded: usize,
    /// `(company, user id, why)` of users whose image gave no usable face.
    pub failed: Vec<(String, String, String)>,
    pub millis: f64,
}

/// Recomputes every user's template from the kept enrolment image with the
/// models of `analyzer`, keeping each user's gallery id.
pub fn reembed(
    store: &dyn Store,
    analyzer: &mut FaceAnalyzer,
    config: &Settings,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ReembedReport, ServiceError> {
    let t = Instant::now();
    let users = store.users(None)?;
    let mut report = ReembedReport { users: users.len(), ..ReembedReport::default() };
    let rules = Rules { single_face: false, liveness_threshold: None, same_person: config.vision.match_threshold };
    for (n, user) in users.iter().enumerate() {
        let (company, id) = (user.company_id.as_str(), user.id.as_str());
        let outcome = (|| -> Result<(), ServiceError> {
            let images = store.images(company, id)?.ok_or(StoreError::NotFound)?;
            let old = store.template(company, id)?.ok_or(StoreError::NotFound)?;
            let analysed = analyse(analyzer, Media::Image(images.original), rules, config, false)?;
            let vector = analysed.capture.embedding.as_slice().to_vec();
            store.set_template(
                company,
                id,
                &Template { face_id: old.face_id, model: embed::MODEL.into(), vector, active: old.active },
            )?;
            Ok(())
        })();
        match outcome {
            Ok(()) => report.reembedded += 1,
            Err(e) => report.failed.push((company.to_string(), id.to_string(), e.to_string())),
        }
        progress(n + 1, users.len());
    }
    report.millis = t.elapsed().as_secs_f64() * 1e3;
    Ok(report)
}
