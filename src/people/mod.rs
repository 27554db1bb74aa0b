//! The People domain (spec §2) without HTTP: people, groups, addresses,
//! contacts with their verification codes, references and the catalogs, as
//! records on the record layer. Referential checks, unique national
//! ids, cascades and the verification-code rules live
//! here; request parsing and the wire shapes are `api/people/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub mod catalogs;
pub mod codes;
pub mod curp;
pub mod events;
pub mod files;
pub mod sheet;
pub mod transfer;

pub use catalogs::{Catalog, CatalogItem, Catalogs};

use crate::store::{IndexValue, JsonRecord, Record, Records, StoreError, Tx};

/// The `[people]` config section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeopleConfig {
    /// A catalogs file of the layout of `config/catalogs.toml` (empty: the compiled-in seed).
    pub catalogs: String,
    /// Verification codes (P-49..P-52).
    pub codes: codes::CodesConfig,
    /// Files (P-67..P-72).
    pub files: FilesConfig,
}

/// `[people.files]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesConfig {
    /// The temporary-file store of P-69: a folder with one file per `file_tmp_id` (empty: none).
    pub temporary_dir: String,
    /// P-68: the time limit of fetching one URL, connection included.
    pub fetch_timeout_s: f32,
    /// P-68 may fetch from loopback and private addresses (tests, closed networks).
    pub allow_private_urls: bool,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig { temporary_dir: String::new(), fetch_timeout_s: 10.0, allow_private_urls: false }
    }
}

impl PeopleConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.codes.validate()
    }
}

/// Field -> messages, the `errors` of a 422 (spec §1.4).
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// One field error.
pub fn field_error(field: &str, message: impl Into<String>) -> PeopleError {
    PeopleError::Validation(BTreeMap::from([(field.to_string(), vec![message.into()])]))
}

#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    #[error("The given data was invalid")]
    Validation(FieldErrors),
    /// A refusal with one message and no field (e.g. "Invalid code").
    #[error("{0}")]
    Refused(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for PeopleError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique { index, .. } => field_error(index, format!("The {index} has already been taken.")),
            other => PeopleError::Internal(other.to_string()),
        }
    }
}

/// A people group (§2.1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeopleGroup {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for PeopleGroup {
    const COLLECTION: &'static str = "people_groups";
    fn id(&self) -> &str {
        &self.id
    }
}

/// A person (§2.1.1). `birthdate` is `YYYY-MM-DD`; `national_id` upper-case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Person {
    pub id: String,
    pub national_id: String,
    pub name: Option<String>,
    pub first_lastname: Option<String>,
    pub second_lastname: Option<String>,
    pub birthdate: Option<String>,
    pub gender: Option<String>,
    pub tax_id: Option<String>,
    pub nationality_id: Option<i64>,
    pub state_id: Option<i64>,
    pub entity_of_birth: Option<String>,
    pub external_ref_id: Option<String>,
    pub facetec_ref_id: Option<String>,
    pub biometrics: Option<serde_json::Value>,
    pub marital_status_id: Option<i64>,
    pub people_group_id: Option<String>,
    pub extra_data: Option<serde_json::Value>,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for Person {
    const COLLECTION: &'static str = "people";
    fn id(&self) -> &str {
        &self.id
    }
    fn indexes(&self) -> Vec<IndexValue> {
        let mut v = vec![IndexValue::unique("national_id", &self.national_id)];
        v.extend(self.facetec_ref_id.iter().map(|f| IndexValue::plain("facetec_ref_id", f)));
        v.extend(self.external_ref_id.iter().map(|f| IndexValue::plain("external_ref_id", f)));
        v.extend(self.people_group_id.iter().map(|g| IndexValue::plain("people_group_id", g)));
        v
    }
}

/// An address (§2.1.4).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Address {
    pub id: String,
    pub person_id: String,
    pub street: String,
    pub ext_num: String,
    pub int_num: Option<String>,
    pub state: String,
    pub city: Option<String>,
    pub municipality: String,
    pub colony: String,
    pub zip_code: String,
    pub references: String,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub ownership: Option<String>,
    pub dwelling_age: Option<String>,
    pub source: Option<String>,
    pub device_coordinates: Option<Vec<f64>>,
    pub is_current_address: Option<bool>,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for Address {
    const COLLECTION: &'static str = "addresses";
    fn id(&self) -> &str {
        &self.id
    }
    fn indexes(&self) -> Vec<IndexValue> {
        vec![IndexValue::plain("person_id", &self.person_id)]
    }
}

/// A person's contact (§2.1.6).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub person_id: String,
    pub email: String,
    pub phone: String,
    pub email_confirmation: bool,
    pub sms_confirmation: bool,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for Contact {
    const COLLECTION: &'static str = "person_contacts";
    fn id(&self) -> &str {
        &self.id
    }
    fn indexes(&self) -> Vec<IndexValue> {
        vec![IndexValue::plain("person_id", &self.person_id)]
    }
}

/// A personal reference (§2.1.7).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reference {
    pub id: String,
    pub person_id: String,
    pub name: String,
    pub phone: String,
    pub person_relation_id: i64,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for Reference {
    const COLLECTION: &'static str = "person_references";
    fn id(&self) -> &str {
        &self.id
    }
    fn indexes(&self) -> Vec<IndexValue> {
        vec![IndexValue::plain("person_id", &self.person_id)]
    }
}

/// A notification channel (§2.1.11): where events of this company go.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NotificationChannel {
    pub id: String,
    pub name: String,
    /// `email`, `slack` or `webhook`.
    pub kind: String,
    pub active: bool,
    pub events: Vec<String>,
    pub config: serde_json::Value,
    pub created_ns: i64,
    pub updated_ns: i64,
}

impl JsonRecord for NotificationChannel {
    const COLLECTION: &'static str = "notification_channels";
    fn id(&self) -> &str {
        &self.id
    }
}

/// The events a channel may list (§2.1.11).
pub const CHANNEL_EVENTS: [&str; 6] = [
    "person_register",
    "person_pass_validation",
    "person_fail_validation",
    "person_restore",
    "updated_data_to_person",
    "media_added_to_model",
];

/// What happened to a record (for its §2.1.11 event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

const UPDATED: &str = "updated_data_to_person";

/// A record kind of this API: what it must reference, and what goes with it.
pub trait Entity: Record + Clone + serde::Serialize {
    /// Singular name for "not found" messages.
    const NAME: &'static str;
    /// The §2.1.11 event a change of this record emits, and its `model`.
    fn event(_change: Change) -> Option<(&'static str, &'static str)> {
        None
    }
    /// Checks references (catalog ids, the person) inside the write; may also
    /// change other records (a new current address unsets the others).
    fn check(&self, people: &People, tx: &mut Tx<'_>, company: &str) -> Result<(), PeopleError>;
    /// Deletes or detaches what depends on this record.
    fn cascade(_tx: &mut Tx<'_>, _company: &str, _id: &str) -> Result<(), PeopleError> {
        Ok(())
    }
    fn touch(&mut self, now_ns: i64);
}

fn person_exists(tx: &Tx<'_>, company: &str, person_id: &str) -> Result<(), PeopleError> {
    match tx.get::<Person>(company, person_id)? {
        Some(_) => Ok(()),
        None => Err(field_error("person_id", "The selected person_id is invalid.")),
    }
}

impl Entity for PeopleGroup {
    const NAME: &'static str = "People group";
    fn check(&self, _: &People, _: &mut Tx<'_>, _: &str) -> Result<(), PeopleError> {
        Ok(())
    }
    /// People of a deleted group leave it (§2.3).
    fn cascade(tx: &mut Tx<'_>, company: &str, id: &str) -> Result<(), PeopleError> {
        let members = tx.records().find::<Person>(company, "people_group_id", id)?;
        for mut p in members.into_iter().map(|s| s.record) {
            p.people_group_id = None;
            tx.put(company, &p)?;
        }
        Ok(())
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

impl Entity for Person {
    const NAME: &'static str = "Person";
    fn event(change: Change) -> Option<(&'static str, &'static str)> {
        match change {
            Change::Created => Some(("person_register", "person")),
            Change::Updated => Some((UPDATED, "person")),
            Change::Deleted => None,
        }
    }
    fn check(&self, people: &People, tx: &mut Tx<'_>, company: &str) -> Result<(), PeopleError> {
        let mut errors = FieldErrors::new();
        for (field, catalog, id) in [
            ("nationality_id", Catalog::Nationalities, self.nationality_id),
            ("state_id", Catalog::States, self.state_id),
            ("marital_status_id", Catalog::MaritalStatuses, self.marital_status_id),
        ] {
            if let Some(id) = id
                && people.catalogs.get(catalog, id).is_none()
            {
                errors.entry(field.into()).or_default().push(format!("The selected {field} is invalid."));
            }
        }
        if let Some(g) = &self.people_group_id
            && tx.get::<PeopleGroup>(company, g)?.is_none()
        {
            errors.entry("people_group_id".into()).or_default().push("The selected people_group_id is invalid.".into());
        }
        if let Some(other) = tx.find_unique::<Person>(company, "national_id", &self.national_id)?
            && other.record.id != self.id
        {
            errors.entry("national_id".into()).or_default().push("The national_id has already been taken.".into());
        }
        if errors.is_empty() { Ok(()) } else { Err(PeopleError::Validation(errors)) }
    }
    /// A person takes their addresses, contacts, references, codes and the
    /// files of all of them along.
    fn cascade(tx: &mut Tx<'_>, company: &str, id: &str) -> Result<(), PeopleError> {
        fn delete_all<R: Record>(tx: &mut Tx<'_>, company: &str, person: &str, model: &str) -> Result<(), PeopleError> {
            let ids: Vec<String> = tx
                .records()
                .find::<R>(company, "person_id", person)?
                .iter()
                .map(|s| s.record.id().to_string())
                .collect();
            for id in ids {
                tx.delete::<R>(company, &id)?;
                files::delete_files_of(tx, company, model, &id)?;
            }
            Ok(())
        }
        delete_all::<Address>(tx, company, id, "address")?;
        delete_all::<Contact>(tx, company, id, "person_contact")?;
        delete_all::<Reference>(tx, company, id, "person_reference")?;
        delete_all::<codes::Code>(tx, company, id, "verification_code")?;
        files::delete_files_of(tx, company, "person", id)
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

impl Entity for Address {
    fn event(_: Change) -> Option<(&'static str, &'static str)> {
        Some((UPDATED, "address"))
    }
    const NAME: &'static str = "Address";
    fn check(&self, _: &People, tx: &mut Tx<'_>, company: &str) -> Result<(), PeopleError> {
        person_exists(tx, company, &self.person_id)?;
        // One current address per person (§2.5).
        if self.is_current_address == Some(true) {
            let others = tx.records().find::<Address>(company, "person_id", &self.person_id)?;
            for mut a in others.into_iter().map(|s| s.record) {
                if a.id != self.id && a.is_current_address == Some(true) {
                    a.is_current_address = Some(false);
                    tx.put(company, &a)?;
                }
            }
        }
        Ok(())
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

impl Entity for Contact {
    fn event(_: Change) -> Option<(&'static str, &'static str)> {
        Some((UPDATED, "person_contact"))
    }
    const NAME: &'static str = "Contact";
    fn check(&self, _: &People, tx: &mut Tx<'_>, company: &str) -> Result<(), PeopleError> {
        person_exists(tx, company, &self.person_id)
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

impl Entity for Reference {
    fn event(_: Change) -> Option<(&'static str, &'static str)> {
        Some((UPDATED, "person_reference"))
    }
    const NAME: &'static str = "Reference";
    fn check(&self, people: &People, tx: &mut Tx<'_>, company: &str) -> Result<(), PeopleError> {
        let mut errors = FieldErrors::new();
        if tx.get::<Person>(company, &self.person_id)?.is_none() {
            errors.insert("person_id".into(), vec!["The selected person_id is invalid.".into()]);
        }
        if people.catalogs.get(Catalog::PersonRelations, self.person_relation_id).is_none() {
            errors.insert("person_relation_id".into(), vec!["The selected person_relation_id is invalid.".into()]);
        }
        if errors.is_empty() { Ok(()) } else { Err(PeopleError::Validation(errors)) }
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

impl Entity for NotificationChannel {
    const NAME: &'static str = "Notification channel";
    fn check(&self, _: &People, _: &mut Tx<'_>, _: &str) -> Result<(), PeopleError> {
        Ok(())
    }
    fn touch(&mut self, now_ns: i64) {
        self.updated_ns = now_ns;
    }
}

/// The People service: every operation is one record write (or read).
pub struct People {
    records: Arc<Records>,
    queue: Arc<crate::notify::Queue>,
    pub catalogs: Catalogs,
    pub codes: codes::Codes,
}

impl People {
    pub fn new(
        records: Arc<Records>,
        queue: Arc<crate::notify::Queue>,
        config: &PeopleConfig,
    ) -> Result<People, String> {
        let path = (!config.catalogs.is_empty()).then(|| std::path::Path::new(&config.catalogs));
        Ok(People { records, queue, catalogs: Catalogs::load(path)?, codes: codes::Codes::new(&config.codes)? })
    }

    /// Runs `f` as one record write and wakes the delivery queue after it
    /// committed (what `f` emitted is then sent).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, PeopleError>) -> Result<T, PeopleError> {
        // The delivery worker is woken only when this write queued a delivery.
        let (out, queued) = self.records.write(|tx| {
            let out = f(tx)?;
            Ok::<_, PeopleError>((out, tx.touches::<crate::notify::Delivery>()))
        })?;
        if queued {
            self.queue.wake();
        }
        Ok(out)
    }

    pub fn records(&self) -> &Arc<Records> {
        &self.records
    }

    pub fn get<R: Entity>(&self, company: &str, id: &str) -> Result<R, PeopleError> {
        self.records.get::<R>(company, id)?.map(|s| s.record).ok_or(PeopleError::NotFound(R::NAME))
    }

    /// Every record of `company`, oldest first (the unpaged lists of §2).
    pub fn list<R: Entity>(&self, company: &str) -> Result<Vec<R>, PeopleError> {
        Ok(self.records.page::<R>(company, false, 0, usize::MAX)?.into_iter().map(|s| s.record).collect())
    }

    /// Page `page` (1-based) of `per_page`, newest first, and whether another follows.
    pub fn page<R: Entity>(&self, company: &str, page: usize, per_page: usize) -> Result<(Vec<R>, bool), PeopleError> {
        let skip = (page - 1).saturating_mul(per_page);
        let mut rows: Vec<R> =
            self.records.page::<R>(company, true, skip, per_page + 1)?.into_iter().map(|s| s.record).collect();
        let more = rows.len() > per_page;
        rows.truncate(per_page);
        Ok((rows, more))
    }

    /// Stores a new record after its checks. An id already taken is a field error.
    pub fn create<R: Entity>(&self, company: &str, record: R) -> Result<R, PeopleError> {
        self.write(|tx| {
            if tx.get::<R>(company, record.id())?.is_some() {
                return Err(field_error("id", "The id has already been taken."));
            }
            record.check(self, tx, company)?;
            tx.put(company, &record)?;
            emit(tx, company, Change::Created, &record)?;
            Ok(record)
        })
    }

    /// Changes a record with `edit` and stores it after its checks, in one write.
    pub fn update<R: Entity>(
        &self,
        company: &str,
        id: &str,
        edit: impl FnOnce(&mut R) -> Result<(), PeopleError>,
    ) -> Result<R, PeopleError> {
        self.write(|tx| {
            let mut record = tx.get::<R>(company, id)?.ok_or(PeopleError::NotFound(R::NAME))?.record;
            edit(&mut record)?;
            record.touch(crate::util::now_ns());
            record.check(self, tx, company)?;
            tx.put(company, &record)?;
            emit(tx, company, Change::Updated, &record)?;
            Ok(record)
        })
    }

    /// Deletes a record and what depends on it.
    pub fn delete<R: Entity>(&self, company: &str, id: &str) -> Result<(), PeopleError> {
        self.write(|tx| {
            let old = tx.delete::<R>(company, id)?.ok_or(PeopleError::NotFound(R::NAME))?;
            R::cascade(tx, company, id)?;
            emit(tx, company, Change::Deleted, &old)
        })
    }

    /// The person with this national id (compared upper-case).
    pub fn by_national_id(&self, company: &str, national_id: &str) -> Result<Person, PeopleError> {
        self.records
            .find_unique::<Person>(company, "national_id", &national_id.trim().to_uppercase())?
            .map(|s| s.record)
            .ok_or(PeopleError::NotFound("Person"))
    }

    /// The most recently updated person whose plain `index` (facetec_ref_id, external_ref_id) is `value`.
    pub fn by_reference(&self, company: &str, index: &str, value: &str) -> Result<Person, PeopleError> {
        self.records
            .find::<Person>(company, index, value)?
            .into_iter()
            .map(|s| s.record)
            .max_by_key(|p| p.updated_ns)
            .ok_or(PeopleError::NotFound("Person"))
    }

    /// P-25: the person with `national_id` given to `build`, or `None` when
    /// there is none; stores what `build` returns. `true` when created.
    pub fn upsert(
        &self,
        company: &str,
        national_id: &str,
        build: impl FnOnce(Option<Person>) -> Person,
    ) -> Result<(Person, bool), PeopleError> {
        self.write(|tx| {
            let (person, created) = upserted(tx, company, national_id, build)?;
            person.check(self, tx, company)?;
            tx.put(company, &person)?;
            emit(tx, company, if created { Change::Created } else { Change::Updated }, &person)?;
            Ok((person, created))
        })
    }
}

/// Queues the event of `change` to `record`, if it has one, for the tenant's channels.
fn emit<R: Entity>(tx: &mut Tx<'_>, company: &str, change: Change, record: &R) -> Result<(), PeopleError> {
    if let Some((event, model)) = R::event(change) {
        events::Listeners::of(tx, company)?.emit(tx, company, event, model, record.id(), events::data_of(record))?;
    }
    Ok(())
}

/// The person an upsert by `national_id` stores (P-25, import rows): what
/// `build` makes of the existing one (touched) or of nothing; `true` when new.
pub(crate) fn upserted(
    tx: &Tx<'_>,
    company: &str,
    national_id: &str,
    build: impl FnOnce(Option<Person>) -> Person,
) -> Result<(Person, bool), StoreError> {
    let existing = tx.find_unique::<Person>(company, "national_id", national_id)?.map(|s| s.record);
    let created = existing.is_none();
    let mut person = build(existing);
    if !created {
        person.touch(crate::util::now_ns());
    }
    Ok((person, created))
}
