//! People in bulk: the CSV export (P-20, A-28) and the row writes of an
//! import (P-21, A-29), many rows per record write.

use super::{Address, Contact, Entity, People, PeopleError, Person};
use crate::util;

/// The Person columns of the export, in order (also the import's header names).
pub const PERSON_COLUMNS: [&str; 17] = [
    "id",
    "national_id",
    "name",
    "first_lastname",
    "second_lastname",
    "birthdate",
    "gender",
    "tax_id",
    "nationality_id",
    "state_id",
    "entity_of_birth",
    "external_ref_id",
    "facetec_ref_id",
    "marital_status_id",
    "people_group_id",
    "created_at",
    "updated_at",
];
pub const ADDRESS_COLUMNS: [&str; 8] =
    ["street", "ext_num", "int_num", "state", "city", "municipality", "colony", "zip_code"];
pub const CONTACT_COLUMNS: [&str; 4] = ["email", "phone", "email_confirmation", "sms_confirmation"];

/// What P-20 exports.
#[derive(Debug, Clone, Default)]
pub struct Export {
    /// Inclusive `YYYY-MM-DD` bounds on the creation date (UTC).
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    pub addresses: bool,
    pub contacts: bool,
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

/// The current address, else the most recent one.
fn address_of(people: &People, company: &str, person: &str) -> Result<Option<Address>, PeopleError> {
    let all = people.records().find::<Address>(company, "person_id", person)?;
    let current = all.iter().find(|a| a.record.is_current_address == Some(true)).map(|a| a.record.clone());
    Ok(current.or_else(|| all.into_iter().max_by_key(|a| (a.record.created_ns, a.seq)).map(|a| a.record)))
}

fn contact_of(people: &People, company: &str, person: &str) -> Result<Option<Contact>, PeopleError> {
    let all = people.records().find::<Contact>(company, "person_id", person)?;
    Ok(all.into_iter().max_by_key(|c| (c.record.created_ns, c.seq)).map(|c| c.record))
}

/// A sheet as text: the header row, then each data row with its 1-based
/// number (its distance below the header) and its cells, or why it is unreadable.
#[derive(Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Result<Vec<String>, String>)>,
}

/// One row of an import: its number, the national id it upserts, and how
/// it makes the person from the existing one (or from nothing).
pub struct UpsertRow {
    pub row: usize,
    pub national_id: String,
    pub build: Box<dyn FnOnce(Option<Person>) -> Person + Send>,
}

impl People {
    /// The CSV of P-20 (RFC 4180 quoting), oldest person first; `progress(rows)` after each row.
    pub fn export_csv(
        &self,
        company: &str,
        export: &Export,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<u8>, PeopleError> {
        let internal = |e: csv::Error| PeopleError::Internal(e.to_string());
        let mut out = csv::Writer::from_writer(Vec::new());
        let mut header: Vec<&str> = PERSON_COLUMNS.to_vec();
        if export.addresses {
            header.extend(ADDRESS_COLUMNS);
        }
        if export.contacts {
            header.extend(CONTACT_COLUMNS);
        }
        out.write_record(&header).map_err(internal)?;
        let mut rows = 0;
        let mut failure = None;
        self.records()
            .for_each_in_order::<Person>(company, &mut |p| {
                let created = util::date_of(p.created_ns);
                if export.start_date.as_ref().is_some_and(|s| created < *s)
                    || export.end_date.as_ref().is_some_and(|e| created > *e)
                {
                    return Ok(());
                }
                let mut row = vec![
                    p.id.clone(),
                    p.national_id.clone(),
                    opt(&p.name),
                    opt(&p.first_lastname),
                    opt(&p.second_lastname),
                    opt(&p.birthdate),
                    opt(&p.gender),
                    opt(&p.tax_id),
                    opt(&p.nationality_id),
                    opt(&p.state_id),
                    opt(&p.entity_of_birth),
                    opt(&p.external_ref_id),
                    opt(&p.facetec_ref_id),
                    opt(&p.marital_status_id),
                    opt(&p.people_group_id),
                    util::rfc3339_us(p.created_ns),
                    util::rfc3339_us(p.updated_ns),
                ];
                let mut extra = || -> Result<(), PeopleError> {
                    if export.addresses {
                        let a = address_of(self, company, &p.id)?;
                        row.extend(match a {
                            Some(a) => vec![
                                a.street,
                                a.ext_num,
                                opt(&a.int_num),
                                a.state,
                                opt(&a.city),
                                a.municipality,
                                a.colony,
                                a.zip_code,
                            ],
                            None => vec![String::new(); ADDRESS_COLUMNS.len()],
                        });
                    }
                    if export.contacts {
                        let c = contact_of(self, company, &p.id)?;
                        row.extend(match c {
                            Some(c) => {
                                vec![c.email, c.phone, c.email_confirmation.to_string(), c.sms_confirmation.to_string()]
                            }
                            None => vec![String::new(); CONTACT_COLUMNS.len()],
                        });
                    }
                    Ok(())
                };
                if let Err(e) = extra() {
                    failure = Some(e);
                    return Err(crate::store::StoreError::Io("export stopped".into()));
                }
                out.write_record(&row).map_err(|e| crate::store::StoreError::Io(e.to_string()))?;
                rows += 1;
                progress(rows);
                Ok(())
            })
            .map_err(|e| failure.take().unwrap_or_else(|| PeopleError::from(e)))?;
        out.into_inner().map_err(|e| PeopleError::Internal(e.to_string()))
    }

    /// Upserts many people by national id in one record write (an import
    /// chunk): each row is built by its closure from the existing person (if
    /// any), checked, and stored; a row that fails its checks is reported
    /// and skipped, the others are written. Returns (row, error) pairs.
    pub fn upsert_rows(&self, company: &str, rows: Vec<UpsertRow>) -> Result<Vec<(usize, PeopleError)>, PeopleError> {
        self.write(|tx| {
            let mut failed = Vec::new();
            let listeners = super::events::Listeners::of(tx, company)?;
            for UpsertRow { row, national_id, build } in rows {
                let (person, created) = super::upserted(tx, company, &national_id, build)?;
                match person.check(self, tx, company) {
                    Ok(()) => {
                        tx.put(company, &person)?;
                        let event = if created { "person_register" } else { "updated_data_to_person" };
                        listeners.emit(tx, company, event, "person", &person.id, super::events::data_of(&person))?;
                    }
                    Err(e) => failed.push((row, e)),
                }
            }
            Ok(failed)
        })
    }
}
