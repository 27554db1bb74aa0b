//! [`Store`] on sled 0.34: one tree, key prefixes per record kind, one
//! atomic batch per operation, flushed before returning.
//!
//! Keys (company ids never contain NUL; user ids are hex):
//! `u\0{company}\0{id}` user, `t\0…` template, `i\0…` images,
//! `x\0{company}\0{blind(externalId)}` -> user id, `m\0check` key check.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use super::codec::{self, Sealer};
use super::{Enrolment, Images, Store, StoreConfig, StoreError, Template, User};
use crate::gallery::FaceId;
use crate::util::{from_hex, hex, random_bytes};

const CHECK_KEY: &[u8] = b"m\0check";
const CHECK_TEXT: &[u8] = b"rostro store key check";

pub struct SledStore {
    db: sled::Db,
    sealer: Sealer,
    /// Serialises writers, so that checking an external id and writing it are one step.
    write: Mutex<()>,
}

fn key(kind: u8, company: &str, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + company.len() + rest.len());
    k.push(kind);
    k.push(0);
    k.extend_from_slice(company.as_bytes());
    k.push(0);
    k.extend_from_slice(rest);
    k
}

/// Splits `kind\0company\0rest` into (company, rest).
fn split_key(k: &[u8]) -> Option<(&str, &str)> {
    let body = k.get(2..)?;
    let nul = body.iter().position(|&b| b == 0)?;
    Some((std::str::from_utf8(&body[..nul]).ok()?, std::str::from_utf8(&body[nul + 1..]).ok()?))
}

fn resolve_key(config: &StoreConfig, fresh: bool) -> Result<[u8; 32], StoreError> {
    let parse = |text: &str, origin: &str| -> Result<[u8; 32], StoreError> {
        from_hex(text.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| StoreError::Key(format!("{origin} must be 64 hex characters (32 bytes)")))
    };
    if !config.key.is_empty() {
        return parse(&config.key, "store.key");
    }
    if let Ok(text) = std::env::var("ROSTRO_STORE_KEY") {
        return parse(&text, "ROSTRO_STORE_KEY");
    }
    let file = config.data_dir.join("store.key");
    match std::fs::read_to_string(&file) {
        Ok(text) => parse(&text, &file.display().to_string()),
        Err(_) if fresh => {
            let mut k = [0u8; 32];
            random_bytes(&mut k);
            write_private(&file, hex(&k).as_bytes())
                .map_err(|e| StoreError::Key(format!("cannot write {}: {e}", file.display())))?;
            Ok(k)
        }
        Err(e) => Err(StoreError::Key(format!(
            "the store in {} holds data but {} cannot be read ({e}); give the key in store.key or ROSTRO_STORE_KEY",
            config.data_dir.display(),
            file.display()
        ))),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

impl SledStore {
    /// Opens (or creates) the store in `config.data_dir`. Fails with
    /// [`StoreError::Decrypt`] when the key is not the one the data was written with.
    pub fn open(config: &StoreConfig) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", config.data_dir.display())))?;
        let db = sled::Config::new().path(config.data_dir.join("db")).open()?;
        let fresh = db.get(CHECK_KEY)?.is_none();
        let sealer = Sealer::new(&resolve_key(config, fresh)?);
        match db.get(CHECK_KEY)? {
            Some(v) => {
                if sealer.open(CHECK_KEY, &v)? != CHECK_TEXT {
                    return Err(StoreError::Decrypt("m/check".into()));
                }
            }
            None => {
                db.insert(CHECK_KEY, sealer.seal(CHECK_KEY, CHECK_TEXT))?;
                db.flush()?;
            }
        }
        Ok(SledStore { db, sealer, write: Mutex::new(()) })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get_open(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(k)?.map(|v| self.sealer.open(k, &v)).transpose()
    }

    fn external_key(&self, company: &str, external_id: &str) -> Vec<u8> {
        key(b'x', company, &self.sealer.blind(&format!("{company}\0{external_id}")))
    }

    fn commit(&self, batch: sled::Batch) -> Result<(), StoreError> {
        self.db.apply_batch(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn put_user(&self, batch: &mut sled::Batch, user: &User) {
        let k = key(b'u', &user.company_id, user.id.as_bytes());
        batch.insert(k.clone(), self.sealer.seal(&k, &codec::encode_user(user)));
    }

    fn put_template(&self, batch: &mut sled::Batch, company: &str, id: &str, t: &Template) {
        let k = key(b't', company, id.as_bytes());
        batch.insert(k.clone(), self.sealer.seal(&k, &codec::encode_template(t)));
    }

    /// Checks that `external_id` is free in `company` (or belongs to `owner`).
    fn external_free(&self, company: &str, external_id: &str, owner: &str) -> Result<bool, StoreError> {
        Ok(self.db.get(self.external_key(company, external_id))?.is_none_or(|v| v.as_ref() == owner.as_bytes()))
    }
}

impl Store for SledStore {
    fn next_face_id(&self) -> Result<FaceId, StoreError> {
        Ok(self.db.generate_id()?)
    }

    fn enroll(&self, e: &Enrolment) -> Result<(), StoreError> {
        self.enroll_many(std::slice::from_ref(e))
    }

    fn enroll_many(&self, enrolments: &[Enrolment]) -> Result<(), StoreError> {
        let _guard = self.lock();
        let mut batch = sled::Batch::default();
        for e in enrolments {
            let (company, id) = (e.user.company_id.as_str(), e.user.id.as_str());
            if let Some(ext) = &e.user.external_id {
                if !self.external_free(company, ext, id)? {
                    return Err(StoreError::DuplicateExternalId(ext.clone()));
                }
                batch.insert(self.external_key(company, ext), id.as_bytes());
            }
            self.put_user(&mut batch, &e.user);
            self.put_template(&mut batch, company, id, &e.template);
            let k = key(b'i', company, id.as_bytes());
            batch.insert(k.clone(), self.sealer.seal(&k, &codec::encode_images(&e.images)));
        }
        self.commit(batch)
    }

    fn user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError> {
        self.get_open(&key(b'u', company, id.as_bytes()))?.map(|b| codec::decode_user(&b)).transpose()
    }

    fn find_external(&self, company: &str, external_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.db.get(self.external_key(company, external_id))?.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn images(&self, company: &str, id: &str) -> Result<Option<Images>, StoreError> {
        self.get_open(&key(b'i', company, id.as_bytes()))?.map(|b| codec::decode_images(&b)).transpose()
    }

    fn template(&self, company: &str, id: &str) -> Result<Option<Template>, StoreError> {
        self.get_open(&key(b't', company, id.as_bytes()))?.map(|b| codec::decode_template(&b)).transpose()
    }

    fn update_user(&self, user: &User) -> Result<(), StoreError> {
        let _guard = self.lock();
        let old = self.user(&user.company_id, &user.id)?.ok_or(StoreError::NotFound)?;
        let mut batch = sled::Batch::default();
        if old.status != user.status
            && let Some(mut t) = self.template(&user.company_id, &user.id)?
        {
            t.active = user.status == super::Status::Active;
            self.put_template(&mut batch, &user.company_id, &user.id, &t);
        }
        if old.external_id != user.external_id {
            if let Some(ext) = &user.external_id {
                if !self.external_free(&user.company_id, ext, &user.id)? {
                    return Err(StoreError::DuplicateExternalId(ext.clone()));
                }
                batch.insert(self.external_key(&user.company_id, ext), user.id.as_bytes());
            }
            if let Some(ext) = &old.external_id {
                batch.remove(self.external_key(&user.company_id, ext));
            }
        }
        self.put_user(&mut batch, user);
        self.commit(batch)
    }

    fn set_template(&self, company: &str, id: &str, template: &Template) -> Result<(), StoreError> {
        let _guard = self.lock();
        if self.db.get(key(b'u', company, id.as_bytes()))?.is_none() {
            return Err(StoreError::NotFound);
        }
        let mut batch = sled::Batch::default();
        self.put_template(&mut batch, company, id, template);
        self.commit(batch)
    }

    fn delete_user(&self, company: &str, id: &str) -> Result<Option<User>, StoreError> {
        let _guard = self.lock();
        let Some(user) = self.user(company, id)? else {
            return Ok(None);
        };
        let mut batch = sled::Batch::default();
        for kind in [b'u', b't', b'i'] {
            batch.remove(key(kind, company, id.as_bytes()));
        }
        if let Some(ext) = &user.external_id {
            batch.remove(self.external_key(company, ext));
        }
        self.commit(batch)?;
        Ok(Some(user))
    }

    fn users(&self, company: Option<&str>) -> Result<Vec<User>, StoreError> {
        let prefix = match company {
            Some(c) => key(b'u', c, b""),
            None => b"u\0".to_vec(),
        };
        self.db
            .scan_prefix(prefix)
            .map(|kv| {
                let (k, v) = kv?;
                codec::decode_user(&self.sealer.open(&k, &v)?)
            })
            .collect()
    }

    fn for_each_template(&self, each: &mut dyn FnMut(&str, &str, Template)) -> Result<(), StoreError> {
        for kv in self.db.scan_prefix(b"t\0") {
            let (k, v) = kv?;
            let (company, id) = split_key(&k).ok_or_else(|| StoreError::Corrupt("template key".into()))?;
            each(company, id, codec::decode_template(&self.sealer.open(&k, &v)?)?);
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
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

    fn enrolment(store: &SledStore, company: &str, id: &str, ext: Option<&str>) -> Enrolment {
        Enrolment {
            user: User {
                id: id.into(),
                company_id: company.into(),
                full_name: "Ana Núñez".into(),
                email: None,
                external_id: ext.map(Into::into),
                meta: serde_json::json!({"extra": {}}),
                status: Status::Active,
                created_ns: 1,
                updated_ns: 1,
            },
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
}
