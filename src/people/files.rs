//! Files attached to People records (P-67..P-72, X-01, A-24): at most
//! 2 MiB each, the media type sniffed from the bytes (the client's claim is
//! ignored), stored encrypted in the record layer, and handed out through
//! temporary URLs signed with a secret derived from the store key.

use serde::{Deserialize, Serialize};

use super::{Address, Contact, People, PeopleError, Person, Reference, field_error};
use crate::store::{IndexValue, JsonRecord, Record, StoreError};
use crate::util;

/// The largest file (spec: "máximo 2mb").
pub const MAX_FILE: usize = 2 * 1024 * 1024;

/// The models a file may belong to (§2.11).
pub const MODELS: [&str; 8] = [
    "address",
    "person",
    "person_contact",
    "person_reference",
    "validation",
    "person_financial_data",
    "person_employment_data",
    "person_bank_data",
];

/// A stored file's description (§2.1.10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Media {
    pub uuid: String,
    pub collection: String,
    pub model: String,
    pub model_id: String,
    pub name: String,
    pub file_name: String,
    pub mime: String,
    pub size: usize,
    pub custom_properties: serde_json::Value,
    pub created_ns: i64,
}

impl JsonRecord for Media {
    const COLLECTION: &'static str = "media";
    fn id(&self) -> &str {
        &self.uuid
    }
    fn indexes(&self) -> Vec<IndexValue> {
        vec![IndexValue::plain("owner", owner(&self.model, &self.model_id))]
    }
}

fn owner(model: &str, model_id: &str) -> String {
    format!("{model}:{model_id}")
}

/// A file's bytes, apart from its description so that lists never read them.
struct Blob {
    uuid: String,
    bytes: Vec<u8>,
}

impl Record for Blob {
    const COLLECTION: &'static str = "media_blobs";
    fn id(&self) -> &str {
        &self.uuid
    }
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.uuid.len() + self.bytes.len());
        out.push(self.uuid.len() as u8);
        out.extend_from_slice(self.uuid.as_bytes());
        out.extend_from_slice(&self.bytes);
        out
    }
    fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let n = *bytes.first().ok_or_else(|| StoreError::Corrupt("empty blob".into()))? as usize;
        let uuid = bytes.get(1..1 + n).ok_or_else(|| StoreError::Corrupt("blob id".into()))?;
        Ok(Blob { uuid: String::from_utf8_lossy(uuid).into_owned(), bytes: bytes[1 + n..].to_vec() })
    }
}

/// Where an unauthenticated download finds a file's company.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Locator {
    uuid: String,
    company: String,
}

impl JsonRecord for Locator {
    const COLLECTION: &'static str = "media_locators";
    fn id(&self) -> &str {
        &self.uuid
    }
}

/// Locators live outside every company.
const NO_COMPANY: &str = "";

/// The media type of `bytes`, from their content.
pub fn sniff(bytes: &[u8]) -> String {
    match infer::get(bytes) {
        Some(t) => t.mime_type().to_string(),
        None if std::str::from_utf8(bytes).is_ok() => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

/// A file to attach.
pub struct Upload {
    pub model: String,
    pub model_id: String,
    pub collection: String,
    pub name: String,
    pub bytes: Vec<u8>,
    pub custom_properties: serde_json::Value,
}

fn sign(secret: &[u8; 32], id: &str, expires: i64) -> String {
    util::hex(&util::hmac_sha256(secret, &[format!("{id}:{expires}").as_bytes()]))
}

/// Deletes every file of a model's record (a cascade of A-32).
pub(super) fn delete_files_of(
    tx: &mut crate::store::Tx<'_>,
    company: &str,
    model: &str,
    id: &str,
) -> Result<(), PeopleError> {
    let ids: Vec<String> =
        tx.records().find::<Media>(company, "owner", &owner(model, id))?.into_iter().map(|s| s.record.uuid).collect();
    for uuid in ids {
        tx.delete::<Media>(company, &uuid)?;
        tx.delete::<Blob>(company, &uuid)?;
        tx.delete::<Locator>(NO_COMPANY, &uuid)?;
    }
    Ok(())
}

impl People {
    /// Checks that `model_id` exists for the models this API serves;
    /// the others (and validations, not served yet) are taken as given.
    fn owner_exists(
        &self,
        tx: &crate::store::Tx<'_>,
        company: &str,
        model: &str,
        id: &str,
    ) -> Result<bool, PeopleError> {
        Ok(match model {
            "person" => tx.get::<Person>(company, id)?.is_some(),
            "address" => tx.get::<Address>(company, id)?.is_some(),
            "person_contact" => tx.get::<Contact>(company, id)?.is_some(),
            "person_reference" => tx.get::<Reference>(company, id)?.is_some(),
            _ => true,
        })
    }

    /// Stores files (one write for all: any failure stores none).
    pub fn attach(&self, company: &str, uploads: Vec<Upload>) -> Result<Vec<Media>, PeopleError> {
        self.write(|tx| {
            let listeners = super::events::Listeners::of(tx, company)?;
            let mut out = Vec::with_capacity(uploads.len());
            for u in uploads {
                if u.bytes.len() > MAX_FILE {
                    return Err(field_error("file", "The file may not be greater than 2048 kilobytes."));
                }
                if !self.owner_exists(tx, company, &u.model, &u.model_id)? {
                    return Err(field_error("model_id", format!("No {} with this model_id.", u.model)));
                }
                let uuid = util::uuid_v4();
                let mime = sniff(&u.bytes);
                let media = Media {
                    file_name: format!(
                        "{uuid}{}",
                        infer::get(&u.bytes).map(|t| format!(".{}", t.extension())).unwrap_or_default()
                    ),
                    uuid: uuid.clone(),
                    collection: u.collection,
                    model: u.model,
                    model_id: u.model_id,
                    name: u.name,
                    mime,
                    size: u.bytes.len(),
                    custom_properties: u.custom_properties,
                    created_ns: util::now_ns(),
                };
                tx.put(company, &media)?;
                tx.put(company, &Blob { uuid: uuid.clone(), bytes: u.bytes })?;
                tx.put(NO_COMPANY, &Locator { uuid, company: company.to_string() })?;
                let data = super::events::data_of(&media);
                listeners.emit(tx, company, "media_added_to_model", &media.model, &media.model_id, data)?;
                out.push(media);
            }
            Ok(out)
        })
    }

    /// The files of a model, oldest first, of one collection or all.
    pub fn files(
        &self,
        company: &str,
        model: &str,
        model_id: &str,
        collection: Option<&str>,
    ) -> Result<Vec<Media>, PeopleError> {
        let mut all: Vec<Media> = self
            .records()
            .find::<Media>(company, "owner", &owner(model, model_id))?
            .into_iter()
            .map(|s| s.record)
            .filter(|m| collection.is_none_or(|c| m.collection == c))
            .collect();
        all.sort_by_key(|m| m.created_ns);
        Ok(all)
    }

    pub fn file(&self, company: &str, uuid: &str) -> Result<Media, PeopleError> {
        self.get_media(company, uuid)?.ok_or(PeopleError::NotFound("File"))
    }

    fn get_media(&self, company: &str, uuid: &str) -> Result<Option<Media>, PeopleError> {
        Ok(self.records().get::<Media>(company, uuid)?.map(|s| s.record))
    }

    /// P-72: deletes the file `uuid` of that model and collection.
    pub fn detach(
        &self,
        company: &str,
        model: &str,
        model_id: &str,
        collection: &str,
        uuid: &str,
    ) -> Result<(), PeopleError> {
        self.records().write(|tx| {
            let found = tx.get::<Media>(company, uuid)?.map(|s| s.record);
            match found {
                Some(m) if m.model == model && m.model_id == model_id && m.collection == collection => {
                    tx.delete::<Media>(company, uuid)?;
                    tx.delete::<Blob>(company, uuid)?;
                    tx.delete::<Locator>(NO_COMPANY, uuid)?;
                    Ok(())
                }
                _ => Err(PeopleError::NotFound("File")),
            }
        })
    }

    /// The query of a signed download URL for `uuid`, valid until `expires` (Unix seconds).
    pub fn signed_query(&self, uuid: &str, expires: i64) -> String {
        format!("expires={expires}&signature={}", sign(&self.records().secret("files/url"), uuid, expires))
    }

    /// the file behind a signed URL, or `None` (refused: bad or late signature, no file).
    pub fn download(
        &self,
        uuid: &str,
        expires: i64,
        signature: &str,
        now_s: i64,
    ) -> Result<Option<(Media, Vec<u8>)>, PeopleError> {
        let expected = sign(&self.records().secret("files/url"), uuid, expires);
        if now_s > expires || !util::constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Ok(None);
        }
        let Some(locator) = self.records().get::<Locator>(NO_COMPANY, uuid)?.map(|s| s.record) else {
            return Ok(None);
        };
        let media = self.get_media(&locator.company, uuid)?;
        let blob = self.records().get::<Blob>(&locator.company, uuid)?.map(|s| s.record.bytes);
        Ok(media.zip(blob))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_late_or_changed_signature_is_refused() {
        let dir = std::env::temp_dir().join(format!("rostro-files-sign-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let records = std::sync::Arc::new(
            crate::store::Records::open(&crate::store::StoreConfig { data_dir: dir.clone(), key: "07".repeat(32) })
                .expect("open"),
        );
        let queue = std::sync::Arc::new(crate::notify::Queue::new(records.clone(), &Default::default()).unwrap());
        let people = People::new(records, queue, &super::super::PeopleConfig::default()).expect("people");
        let upload = Upload {
            model: "person_bank_data".into(),
            model_id: util::uuid_v4(),
            collection: "default".into(),
            name: "a.png".into(),
            bytes: b"\x89PNG\r\n\x1a\n0000".to_vec(),
            custom_properties: serde_json::json!({}),
        };
        let media = people.attach("acme", vec![upload]).expect("attach").remove(0);
        assert_eq!(media.mime, "image/png");
        let now = 1_000_000;
        let query = people.signed_query(&media.uuid, now + 60);
        let signature = query.split("signature=").nth(1).expect("signature");
        assert!(people.download(&media.uuid, now + 60, signature, now).expect("download").is_some());
        assert!(people.download(&media.uuid, now + 60, signature, now + 61).expect("download").is_none(), "late");
        assert!(people.download(&media.uuid, now + 61, signature, now).expect("download").is_none(), "changed expiry");
        let mut changed = signature.to_string();
        changed.replace_range(0..1, if changed.starts_with('0') { "1" } else { "0" });
        assert!(
            people.download(&media.uuid, now + 60, &changed, now).expect("download").is_none(),
            "changed signature"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
