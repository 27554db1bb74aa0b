//! [`Store`] (the Passwordless users) on the record layer: three
//! collections keyed by user id, written together in one record write:
//! `pl_users` (JSON, unique index on the external id), `pl_templates` and
//! `pl_images` (binary payloads of [`codec`]).
//!
//! A data folder written by the release before the record layer (one sled
//! tree, keys `u\0{company}\0{id}` user, `t\0…` template, `i\0…` images,
//! `x\0{company}\0{blind}` external id) is migrated when opened: oldest user
//! first, a chunk of users per atomic write that also removes their old keys,
//! so a crash mid-way resumes where it stopped.

use std::sync::Arc;

use super::codec::{self};
use super::records::{DEFAULT_TREE, IndexValue, JsonRecord, Record, Records};
use super::{Enrolment, Images, Store, StoreConfig, StoreError, Template, User};
use crate::gallery::FaceId;

impl JsonRecord for User {
    const COLLECTION: &'static str = "pl_users";

    fn id(&self) -> &str {
        &self.id
    }

    fn indexes(&self) -> Vec<IndexValue> {
        self.external_id.iter().map(|e| IndexValue::unique("external_id", e)).collect()
    }
}

/// `[id len u8][id][payload]`: the payloads of templates and images do not carry the user id.
fn with_id(id: &str, payload: Vec<u8>) -> Vec<u8> {
    let id = &id.as_bytes()[..id.len().min(255)];
    let mut out = Vec::with_capacity(1 + id.len() + payload.len());
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&payload);
    out
}

fn split_id(bytes: &[u8]) -> Result<(String, &[u8]), StoreError> {
    let n = *bytes.first().ok_or_else(|| StoreError::Corrupt("empty record".into()))? as usize;
    let id = bytes.get(1..1 + n).ok_or_else(|| StoreError::Corrupt("record id is truncated".into()))?;
    Ok((String::from_utf8_lossy(id).into_owned(), &bytes[1 + n..]))
}

/// A user's face template, as stored.
struct UserTemplate {
    user: String,
    template: Template,
}

impl Record for UserTemplate {
    const COLLECTION: &'static str = "pl_templates";

    fn id(&self) -> &str {
        &self.user
    }

    fn encode(&self) -> Vec<u8> {
        with_id(&self.user, codec::encode_template(&self.template))
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (user, rest) = split_id(bytes)?;
        Ok(UserTemplate { user, template: codec::decode_template(rest)? })
    }
}

/// A user's enrolment images, as stored.
struct UserImages {
    user: String,
    images: Images,
}

impl Record for UserImages {
    const COLLECTION: &'static str = "pl_images";

    fn id(&self) -> &str {
        &self.user
    }

    fn encode(&self) -> Vec<u8> {
        with_id(&self.user, codec::encode_images(&self.images))
    }

    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let (user, rest) = split_id(bytes)?;
        Ok(UserImages { user, images: codec::decode_images(rest)? })
    }
}

pub struct SledStore {
    records: Arc<Records>,
}

/// A duplicate external id, in the words of the Passwordless API.
fn external_conflict(e: StoreError, external_id: Option<&String>) -> StoreError {
    match e {
        StoreError::Unique { index: "external_id", .. } => {
            StoreError::DuplicateExternalId(external_id.cloned().unwrap_or_default())
        }
        other => other,
    }
}

impl SledStore {
    /// Opens the store in `config.data_dir` (see [`Records::open`]) and migrates a legacy layout.
    pub fn open(config: &StoreConfig) -> Result<SledStore, StoreError> {
        SledStore::on(Arc::new(Records::open(config)?))
    }

    /// The Passwordless users over `records`, after migrating a legacy layout.
    pub fn on(records: Arc<Records>) -> Result<SledStore, StoreError> {
        migrate_legacy(&records)?;
        Ok(SledStore { records })
    }

    pub fn records(&self) -> &Arc<Records> {
        &self.records
    }
}

/// Moves users of the pre-record layout into the collections (see the module doc).
/// Returns how many were moved.
pub fn migrate_legacy(records: &Records) -> Result<usize, StoreError> {
    let db = records.db();
    let sealer = records.sealer();
    let mut users = Vec::new();
    for kv in db.scan_prefix(b"u\0") {
        let (k, v) = kv?;
        users.push((k.to_vec(), codec::decode_user(&sealer.open(&k, &v)?)?));
    }
    if users.is_empty() {
        return Ok(0);
    }
    users.sort_by(|a, b| a.1.created_ns.cmp(&b.1.created_ns).then_with(|| a.1.id.cmp(&b.1.id)));
    let legacy_key = |kind: u8, company: &str, rest: &[u8]| {
        let mut k = vec![kind, 0];
        k.extend_from_slice(company.as_bytes());
        k.push(0);
        k.extend_from_slice(rest);
        k
    };
    let moved = users.len();
    for chunk in users.chunks(256) {
        records.write(|tx| {
            for (user_key, user) in chunk {
                let (company, id) = (user.company_id.as_str(), user.id.as_bytes());
                let t_key = legacy_key(b't', company, id);
                let i_key = legacy_key(b'i', company, id);
                if let Some(v) = db.get(&t_key)? {
                    let template = codec::decode_template(&sealer.open(&t_key, &v)?)?;
                    tx.put(company, &UserTemplate { user: user.id.clone(), template })?;
                }
                if let Some(v) = db.get(&i_key)? {
                    let images = codec::decode_images(&sealer.open(&i_key, &v)?)?;
                    tx.put(company, &UserImages { user: user.id.clone(), images })?;
                }
                tx.put(company, user)?;
                for key in [user_key.clone(), t_key, i_key] {
                    tx.raw_put(DEFAULT_TREE, key, None);
                }
                if let Some(ext) = &user.external_id {
                    let blind = sealer.blind(&format!("{company}\0{ext}"));
                    tx.raw_put(DEFAULT_TREE, legacy_key(b'x', company, &blind), None);
                }
            }
            Ok::<(), StoreError>(())
        })?;
    }
    Ok(moved)
}

impl Store for SledStore {
    fn next_face_id(&self) -> Result<FaceId, StoreError> {
        self.records.generate_id()
    }

    fn enroll(&self, e: &Enrolment) -> Result<(), StoreError> {
        self.enroll_many(std::slice::from_ref(e))
    }

    fn enroll_many(&self, enrolments: &[Enrolment]) -> Result<(), StoreError> {
        self.records.write(|tx| {
            for e in enrolments {
                let company = e.user.company_id.as_str();
                let user = e.user.id.clone();
                tx.put(company, &e.user).map_err(|err| external_conflict(err, e.user.external_id.as_ref()))?;
                tx.put(company, &UserTemplate { user: user.clone(), template: e.template.clone() })?;
                tx.put(company, &UserImages { user, images: e.images.clone() })?;
            }
            Ok(())
        })
    }

    fn user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError> {
        Ok(self.records.get::<User>(company, id)?.map(|s| s.record))
    }

    fn find_external(&self, company: &str, external_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.records.find_unique::<User>(company, "external_id", external_id)?.map(|s| s.record.id))
    }

    fn images(&self, company: &str, id: &str) -> Result<Option<Images>, StoreError> {
        Ok(self.records.get::<UserImages>(company, id)?.map(|s| s.record.images))
    }

    fn template(&self, company: &str, id: &str) -> Result<Option<Template>, StoreError> {
        Ok(self.records.get::<UserTemplate>(company, id)?.map(|s| s.record.template))
    }

    fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let company = user.company_id.as_str();
        self.records.write(|tx| {
            let old = tx.get::<User>(company, &user.id)?.ok_or(StoreError::NotFound)?;
            if old.record.status != user.status
                && let Some(mut t) = tx.get::<UserTemplate>(company, &user.id)?
            {
                t.record.template.active = user.status == super::Status::Active;
                tx.put(company, &t.record)?;
            }
            tx.put(company, user).map_err(|e| external_conflict(e, user.external_id.as_ref()))?;
            Ok(())
        })
    }

    fn set_template(&self, company: &str, id: &str, template: &Template) -> Result<(), StoreError> {
        self.records.write(|tx| {
            if tx.get::<User>(company, id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            tx.put(company, &UserTemplate { user: id.to_string(), template: template.clone() })?;
            Ok(())
        })
    }

    fn delete_user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError> {
        self.records.write(|tx| {
            let user = tx.delete::<User>(company, id)?;
            if user.is_some() {
                tx.delete::<UserTemplate>(company, id)?;
                tx.delete::<UserImages>(company, id)?;
            }
            Ok(user)
        })
    }

    fn users(&self, company: Option<&str>) -> Result<Vec<User>, StoreError> {
        let mut out = Vec::new();
        self.records.for_each::<User>(company, &mut |_, s| {
            out.push(s.record);
            Ok(())
        })?;
        Ok(out)
    }

    fn for_each_template(&self, each: &mut dyn FnMut(&str, &str, Template)) -> Result<(), StoreError> {
        self.records.for_each_parallel::<UserTemplate>(None, &mut |company, s| {
            each(company, &s.record.user, s.record.template);
            Ok(())
        })
    }

    fn gallery_layout(&self, company: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.records.local(&format!("gallery/{company}"))
    }

    fn save_gallery_layout(&self, company: &str, layout: &[u8]) -> Result<(), StoreError> {
        self.records.set_local(&format!("gallery/{company}"), layout)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.records.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Status;

    fn temp_config(name: &str) -> StoreConfig {
        let dir = std::env::temp_dir().join(format!("rostro-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        StoreConfig { data_dir: dir, key: String::new() }
    }

    fn user(company: &str, id: &str, ext: Option<&str>, created_ns: i64) -> User {
        User {
            id: id.into(),
            company_id: company.into(),
            full_name: "Ana Núñez".into(),
            email: None,
            external_id: ext.map(Into::into),
            meta: serde_json::json!({"extra": {}}),
            status: Status::Active,
            created_ns,
            updated_ns: created_ns,
        }
    }

    fn enrolment(store: &SledStore, company: &str, id: &str, ext: Option<&str>) -> Enrolment {
        Enrolment {
            user: user(company, id, ext, 1),
            template: Template {
                face_id: store.next_face_id().expect("id"),
                model: "m".into(),
                vector: vec![0.6, 0.8],
                active: true,
            },
            images: Images { original: b"ORIGINAL-IMAGE-BYTES".to_vec(), thumbnail: vec![9; 4] },
        }
    }

    #[test]
    fn enrol_read_update_delete_and_reopen() {
        let config = temp_config("crud");
        {
            let s = SledStore::open(&config).expect("open");
            let e = enrolment(&s, "a", "0001", Some("ext-1"));
            s.enroll(&e).expect("enrol");
            assert!(matches!(
                s.enroll(&enrolment(&s, "a", "0002", Some("ext-1"))),
                Err(StoreError::DuplicateExternalId(_))
            ));
            s.enroll(&enrolment(&s, "b", "0003", Some("ext-1"))).expect("same external id, other company");
            assert_eq!(s.user("a", "0001").expect("read"), Some(e.user.clone()));
            assert_eq!(s.user("b", "0001").expect("read"), None, "tenants are separate");
            assert_eq!(s.find_external("a", "ext-1").expect("read"), Some("0001".into()));
            let mut u = e.user.clone();
            u.status = Status::Inactive;
            u.external_id = Some("ext-2".into());
            s.update_user(&u).expect("update");
            s.enroll(&enrolment(&s, "a", "0004", Some("ext-1"))).expect("ext-1 was freed by the update");
            assert_eq!(s.users(Some("a")).expect("list").len(), 2);
            assert_eq!(s.users(None).expect("list").len(), 3);
            assert_eq!(s.delete_user("a", "0004").expect("delete").map(|u| u.id), Some("0004".into()));
            assert!(s.images("a", "0004").expect("read").is_none());
            assert!(s.template("a", "0004").expect("read").is_none());
        }
        let s = SledStore::open(&config).expect("reopen with the key file");
        let mut seen = Vec::new();
        s.for_each_template(&mut |c, id, t| seen.push((c.to_string(), id.to_string(), t.vector, t.active)))
            .expect("scan");
        seen.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0], ("a".into(), "0001".into(), vec![0.6, 0.8], false), "the status reached the template");
        assert_eq!(s.user("a", "0001").expect("read").map(|u| u.status), Some(Status::Inactive));
        drop(s);
        // Nothing personal is written in the clear.
        for entry in std::fs::read_dir(config.data_dir.join("db")).expect("db dir").flatten() {
            if entry.path().is_file() {
                let bytes = std::fs::read(entry.path()).expect("read");
                for secret in [&b"ORIGINAL-IMAGE-BYTES"[..], "Núñez".as_bytes(), b"ext-1"] {
                    assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{secret:?} in the clear");
                }
            }
        }
        let wrong = StoreConfig { key: "11".repeat(32), ..config.clone() };
        assert!(matches!(SledStore::open(&wrong), Err(StoreError::Decrypt(_))));
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }

    /// A data folder as the release before the record layer wrote it: the
    /// same codec, one tree, the old key layout (its `SledStore::enroll`).
    fn write_legacy(config: &StoreConfig, enrolments: &[Enrolment]) {
        std::fs::create_dir_all(&config.data_dir).expect("dir");
        // No background flusher: its thread could still hold the folder's lock
        // when the test opens the store right after this returns.
        let db = sled::Config::new().path(config.data_dir.join("db")).flush_every_ms(None).open().expect("sled");
        let sealer = codec::Sealer::new(&crate::util::from_hex(&config.key).expect("hex").try_into().expect("32"));
        let key = |kind: u8, company: &str, rest: &[u8]| {
            let mut k = vec![kind, 0];
            k.extend_from_slice(company.as_bytes());
            k.push(0);
            k.extend_from_slice(rest);
            k
        };
        db.insert(b"m\0check", sealer.seal(b"m\0check", b"rostro store key check")).expect("check");
        for e in enrolments {
            let (c, id) = (e.user.company_id.as_str(), e.user.id.as_bytes());
            let k = key(b'u', c, id);
            db.insert(&k, sealer.seal(&k, &codec::encode_user(&e.user))).expect("u");
            let k = key(b't', c, id);
            db.insert(&k, sealer.seal(&k, &codec::encode_template(&e.template))).expect("t");
            let k = key(b'i', c, id);
            db.insert(&k, sealer.seal(&k, &codec::encode_images(&e.images))).expect("i");
            if let Some(ext) = &e.user.external_id {
                db.insert(key(b'x', c, &sealer.blind(&format!("{c}\0{ext}"))), id).expect("x");
            }
        }
        db.flush().expect("flush");
    }

    #[test]
    fn a_legacy_data_folder_is_migrated_once_and_keeps_everything() {
        let config = StoreConfig { key: "42".repeat(32), ..temp_config("legacy") };
        let enrolments: Vec<Enrolment> = (0..300)
            .map(|i| Enrolment {
                user: User {
                    external_id: (i % 2 == 0).then(|| format!("ext-{i}")),
                    ..user(if i % 3 == 0 { "b" } else { "a" }, &format!("{i:024x}"), None, 1_000 + i)
                },
                template: Template {
                    face_id: 10 + i as u64,
                    model: "sface".into(),
                    vector: vec![i as f32, 1.0],
                    active: i % 5 != 0,
                },
                images: Images { original: format!("image-{i}").into_bytes(), thumbnail: vec![i as u8] },
            })
            .collect();
        write_legacy(&config, &enrolments);
        // sled can release the folder's lock a moment after its last handle is
        // dropped (a loaded machine showed it): retry that, nothing else.
        let mut tries = 0;
        let s = loop {
            match SledStore::open(&config) {
                Err(StoreError::Io(e)) if e.contains("could not acquire lock") && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                other => break other.expect("open migrates"),
            }
        };
        for e in &enrolments {
            let (c, id) = (e.user.company_id.as_str(), e.user.id.as_str());
            assert_eq!(s.user(c, id).expect("user").as_ref(), Some(&e.user));
            assert_eq!(s.template(c, id).expect("template").as_ref(), Some(&e.template));
            assert_eq!(s.images(c, id).expect("images").as_ref(), Some(&e.images));
            if let Some(ext) = &e.user.external_id {
                assert_eq!(s.find_external(c, ext).expect("ext").as_deref(), Some(id));
            }
        }
        let mut templates = 0;
        s.for_each_template(&mut |_, _, _| templates += 1).expect("scan");
        assert_eq!(templates, 300);
        let db = s.records().db();
        for prefix in [&b"u\0"[..], b"t\0", b"i\0", b"x\0"] {
            assert_eq!(db.scan_prefix(prefix).count(), 0, "old keys {prefix:?} are gone");
        }
        // Creation order is the old created time; the outbox has every migrated record.
        let newest = s.records().page::<User>("a", true, 0, 1).expect("page");
        assert_eq!(newest[0].record.id, format!("{:024x}", 299));
        assert_eq!(s.records().changes_after(0, 10_000).expect("outbox").len(), 900);
        drop(s);
        let s = SledStore::open(&config).expect("reopen");
        assert_eq!(s.users(None).expect("users").len(), 300, "a second open migrates nothing twice");
        let _ = std::fs::remove_dir_all(&config.data_dir);
    }
}
