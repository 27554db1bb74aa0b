//! Persistent state. [`records`] is the record layer every API stands on
//! (typed, tenant-scoped collections over sled, indexes, creation order, an
//! outbox of changes, grouped fsyncs); every value goes through the
//! versioned, encrypted codec of [`codec`]. The Passwordless users sit on it
//! behind the [`Store`] trait ([`SledStore`]). No HTTP, no routes here.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod codec;
mod passwordless;
pub mod records;

pub use passwordless::{SledStore, migrate_legacy};
pub use records::{Change, CommitStats, IndexValue, JsonRecord, Op, Record, Records, Stored, Tx};

use crate::gallery::FaceId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Inactive,
}

impl Status {
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "active" => Some(Status::Active),
            "inactive" => Some(Status::Inactive),
            _ => None,
        }
    }
}

/// An enrolled person (the passwordless "client"), without face data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub company_id: String,
    pub full_name: String,
    pub email: Option<String>,
    pub external_id: Option<String>,
    pub meta: serde_json::Value,
    pub status: Status,
    /// Nanoseconds since the Unix epoch, UTC.
    pub created_ns: i64,
    pub updated_ns: i64,
}

/// A user's face template: the embedding, which model made it, its id in the
/// gallery, and whether the user is active (kept here too so that start-up
/// reads templates only).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub face_id: FaceId,
    pub model: String,
    pub vector: Vec<f32>,
    pub active: bool,
}

/// The enrolment image as received (or the chosen video frame, as JPEG), and a JPEG thumbnail.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Images {
    pub original: Vec<u8>,
    pub thumbnail: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("externalId {0:?} is already enrolled in this company")]
    DuplicateExternalId(String),
    #[error("no such user")]
    NotFound,
    #[error("{index} is already taken in {collection}")]
    Unique { collection: &'static str, index: &'static str },
    #[error("stored value cannot be decrypted ({0}): wrong store key, or the data was tampered with")]
    Decrypt(String),
    #[error("stored value has format version {0}, newer than this build understands")]
    Version(u8),
    #[error("stored value is corrupt: {0}")]
    Corrupt(String),
    #[error("store key: {0}")]
    Key(String),
    #[error("store I/O: {0}")]
    Io(String),
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Io(e.to_string())
    }
}

/// The `[store]` section of the config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Where sled keeps its files.
    pub data_dir: PathBuf,
    /// The 32-byte encryption key as 64 hex characters. Empty: `$ROSTRO_STORE_KEY`,
    /// else `store.key` inside `data_dir` (made on first start).
    pub key: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { data_dir: PathBuf::from("data"), key: String::new() }
    }
}

/// Everything written when a person enrols.
#[derive(Debug, Clone)]
pub struct Enrolment {
    pub user: User,
    pub template: Template,
    pub images: Images,
}

/// The persistent state of enrolled users. All reads and writes are scoped by
/// company; a user of another company is simply not found.
pub trait Store: Send + Sync {
    /// A gallery id never handed out before.
    fn next_face_id(&self) -> Result<FaceId, StoreError>;
    /// Writes user, template and images at once. Refuses a duplicate `externalId` within the company.
    fn enroll(&self, enrolment: &Enrolment) -> Result<(), StoreError>;
    /// Writes many enrolments in one batch (imports, synthetic galleries). External ids are
    /// checked against the store, not among the batch.
    fn enroll_many(&self, enrolments: &[Enrolment]) -> Result<(), StoreError>;
    fn user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError>;
    /// The id of the user of `company` with this `externalId`.
    fn find_external(&self, company: &str, external_id: &str) -> Result<Option<String>, StoreError>;
    fn images(&self, company: &str, id: &str) -> Result<Option<Images>, StoreError>;
    fn template(&self, company: &str, id: &str) -> Result<Option<Template>, StoreError>;
    /// Replaces the user's fields (not its face; the template's `active` follows the status).
    /// The user must exist.
    fn update_user(&self, user: &User) -> Result<(), StoreError>;
    /// Replaces the user's template (re-embedding with another model). The user must exist.
    fn set_template(&self, company: &str, id: &str, template: &Template) -> Result<(), StoreError>;
    /// Erases the user, its template and images; returns what was there.
    fn delete_user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError>;
    /// Every user of `company`, or of every company when `None`.
    fn users(&self, company: Option<&str>) -> Result<Vec<User>, StoreError>;
    /// Calls `each(company, user id, template)` for every stored template (the gallery's start-up load).
    fn for_each_template(&self, each: &mut dyn FnMut(&str, &str, Template)) -> Result<(), StoreError>;
    /// The gallery index saved for `company` by [`Store::save_gallery_layout`] (edge-local).
    fn gallery_layout(&self, company: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Saves `company`'s gallery index, so that start-up need not train it again.
    fn save_gallery_layout(&self, company: &str, layout: &[u8]) -> Result<(), StoreError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError>;
}
