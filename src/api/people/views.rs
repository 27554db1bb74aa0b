//! The wire objects of the People API (spec §2.1), one type each: the
//! handlers answer with them and `/openapi.json` takes their schemas from
//! the same types (`utoipa::ToSchema`), so the document is what is sent.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::people::catalogs::CatalogItem;
use crate::people::files::Media;
use crate::people::{Address, Contact, NotificationChannel, PeopleGroup, Person, Reference};
use crate::util::rfc3339_us;

/// A catalog element (P-01..P-08).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CatalogItem)]
pub struct CatalogJson {
    pub id: i64,
    pub name: String,
    /// The official two-letter code (states only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl CatalogJson {
    pub fn of(c: &CatalogItem) -> Self {
        CatalogJson { id: c.id, name: c.name.clone(), code: c.code.clone() }
    }
}

/// A people group (§2.1.2).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PeopleGroup)]
pub struct GroupJson {
    pub id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
}

impl GroupJson {
    pub fn of(g: &PeopleGroup) -> Self {
        GroupJson {
            id: g.id.clone(),
            name: g.name.clone(),
            description: g.description.clone(),
            created_at: rfc3339_us(g.created_ns),
            updated_at: rfc3339_us(g.updated_ns),
        }
    }
}

/// The Person object of §2.1.1.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Person)]
pub struct PersonJson {
    pub id: String,
    /// The CURP (unique per company, A-15).
    pub national_id: String,
    pub name: Option<String>,
    pub first_lastname: Option<String>,
    pub second_lastname: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthdate: Option<String>,
    /// `MALE` or `FEMALE`.
    pub gender: Option<String>,
    pub tax_id: Option<String>,
    pub nationality_id: Option<i64>,
    pub state_id: Option<i64>,
    pub entity_of_birth: Option<String>,
    pub external_ref_id: Option<String>,
    pub facetec_ref_id: Option<String>,
    pub biometrics: Option<Value>,
    pub marital_status_id: Option<i64>,
    pub people_group_id: Option<String>,
    pub extra_data: Option<Value>,
    pub created_at: String,
    pub updated_at: String,
}

impl PersonJson {
    pub fn of(p: &Person) -> Self {
        PersonJson {
            id: p.id.clone(),
            national_id: p.national_id.clone(),
            name: p.name.clone(),
            first_lastname: p.first_lastname.clone(),
            second_lastname: p.second_lastname.clone(),
            birthdate: p.birthdate.clone(),
            gender: p.gender.clone(),
            tax_id: p.tax_id.clone(),
            nationality_id: p.nationality_id,
            state_id: p.state_id,
            entity_of_birth: p.entity_of_birth.clone(),
            external_ref_id: p.external_ref_id.clone(),
            facetec_ref_id: p.facetec_ref_id.clone(),
            biometrics: p.biometrics.clone(),
            marital_status_id: p.marital_status_id,
            people_group_id: p.people_group_id.clone(),
            extra_data: p.extra_data.clone(),
            created_at: rfc3339_us(p.created_ns),
            updated_at: rfc3339_us(p.updated_ns),
        }
    }
}

/// An address (§2.1.5).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Address)]
pub struct AddressJson {
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
    pub is_current_address: Option<bool>,
    pub device_coordinates: Option<Vec<f64>>,
    pub created_at: String,
    pub updated_at: String,
}

impl AddressJson {
    pub fn of(a: &Address) -> Self {
        AddressJson {
            id: a.id.clone(),
            person_id: a.person_id.clone(),
            street: a.street.clone(),
            ext_num: a.ext_num.clone(),
            int_num: a.int_num.clone(),
            state: a.state.clone(),
            city: a.city.clone(),
            municipality: a.municipality.clone(),
            colony: a.colony.clone(),
            zip_code: a.zip_code.clone(),
            references: a.references.clone(),
            latitude: a.latitude,
            longitude: a.longitude,
            ownership: a.ownership.clone(),
            dwelling_age: a.dwelling_age.clone(),
            source: a.source.clone(),
            is_current_address: a.is_current_address,
            device_coordinates: a.device_coordinates.clone(),
            created_at: rfc3339_us(a.created_ns),
            updated_at: rfc3339_us(a.updated_ns),
        }
    }
}

/// A person's contact (§2.1.6); a changed address is no longer confirmed.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PersonContact)]
pub struct ContactJson {
    pub id: String,
    pub person_id: String,
    pub email: String,
    pub phone: String,
    pub email_confirmation: bool,
    pub sms_confirmation: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl ContactJson {
    pub fn of(k: &Contact) -> Self {
        ContactJson {
            id: k.id.clone(),
            person_id: k.person_id.clone(),
            email: k.email.clone(),
            phone: k.phone.clone(),
            email_confirmation: k.email_confirmation,
            sms_confirmation: k.sms_confirmation,
            created_at: rfc3339_us(k.created_ns),
            updated_at: rfc3339_us(k.updated_ns),
        }
    }
}

/// A personal reference (§2.1.7).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PersonReference)]
pub struct ReferenceJson {
    pub id: String,
    pub person_id: String,
    pub name: String,
    pub phone: String,
    pub person_relation_id: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl ReferenceJson {
    pub fn of(r: &Reference) -> Self {
        ReferenceJson {
            id: r.id.clone(),
            person_id: r.person_id.clone(),
            name: r.name.clone(),
            phone: r.phone.clone(),
            person_relation_id: r.person_relation_id,
            created_at: rfc3339_us(r.created_ns),
            updated_at: rfc3339_us(r.updated_ns),
        }
    }
}

/// A stored file (§2.1.10); the content type is sniffed from its bytes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Media)]
pub struct MediaJson {
    pub uuid: String,
    pub collection: String,
    pub model: String,
    pub model_id: String,
    pub name: String,
    pub file_name: String,
    pub mime: String,
    pub size: usize,
    pub custom_properties: Value,
    pub created_at: String,
}

impl MediaJson {
    pub fn of(m: &Media) -> Self {
        MediaJson {
            uuid: m.uuid.clone(),
            collection: m.collection.clone(),
            model: m.model.clone(),
            model_id: m.model_id.clone(),
            name: m.name.clone(),
            file_name: m.file_name.clone(),
            mime: m.mime.clone(),
            size: m.size,
            custom_properties: m.custom_properties.clone(),
            created_at: rfc3339_us(m.created_ns),
        }
    }
}

/// P-71: a signed download URL and when it stops working.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporaryUrl {
    pub url: String,
    pub expires_at: String,
}

/// A notification channel (§2.1.11).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = NotificationChannel)]
pub struct ChannelJson {
    pub id: String,
    pub name: String,
    /// `email`, `slack` or `webhook`.
    #[serde(rename = "type")]
    pub kind: String,
    pub active: bool,
    pub events: Vec<String>,
    pub config: Value,
    pub created_at: String,
    pub updated_at: String,
}

impl ChannelJson {
    pub fn of(c: &NotificationChannel) -> Self {
        ChannelJson {
            id: c.id.clone(),
            name: c.name.clone(),
            kind: c.kind.clone(),
            active: c.active,
            events: c.events.clone(),
            config: c.config.clone(),
            created_at: rfc3339_us(c.created_ns),
            updated_at: rfc3339_us(c.updated_ns),
        }
    }
}

/// One refused row of an import (P-21): its line and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowError {
    pub row: usize,
    pub error: String,
}

/// The Laravel simple paginator (PG-L, spec §1.7) around one page.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub current_page: usize,
    pub data: Vec<T>,
    pub from: Option<usize>,
    pub next_page_url: Option<String>,
    pub per_page: usize,
    pub prev_page_url: Option<String>,
    pub to: Option<usize>,
}

/// The literal `result`s of §2: sent by the handlers, documented from here.
pub mod said {
    pub const OK: &str = "Ok";
    /// P-49 (spelt as documented).
    pub const SMS_CODE_SENT: &str = "Sms code send";
    /// P-51.
    pub const EMAIL_CODE_SENT: &str = "Email code send";
    /// P-50 and P-52 (A-18 keeps the documented literal for both).
    pub const VALIDATED: &str = "Phone validated";
    /// P-67.
    pub const FILE_SAVED: &str = "File saved";
    /// P-68, P-69.
    pub const FILES_SAVED: &str = "Files saved";
    /// P-69 with `async=true`.
    pub const FILES_QUEUED: &str = "Files queued";
}
