//! People in bulk: P-20 export (CSV download, A-28) and P-21 import
//! (multipart `file`, CSV or XLSX, A-29): a header row of export column
//! names, each row upserted by `national_id` as P-25 does, every bad row
//! reported by number. `rostro people import` runs the same code.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};

use super::persons::{Mode, person_patch};
use super::views::RowError;
use super::{Answer, PeopleApiError, blocking, body, company, ok, resource};
use crate::api::fields::{Input, Val};
use crate::app::AppState;
use crate::people::transfer::{Export, PERSON_COLUMNS, Table, UpsertRow};
use crate::people::{FieldErrors, People, PeopleError, Person};

/// The largest import file.
const MAX_IMPORT: usize = 64 * 1024 * 1024;
/// Rows per record write.
const CHUNK: usize = 500;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/people/export").route(web::post().to(export)))
        .service(resource("/api/v1/people/import").route(web::post().to(import)));
}

/// P-20's body: the date range and what to leave out.
pub(super) fn export_input(input: &mut Input) -> Export {
    let start_date = input.date("start_date").value();
    let end_date = input.date("end_date").value();
    let exclude = input.strings("exclude").value().unwrap_or_default();
    if exclude.iter().any(|e| e != "address" && e != "contact") {
        input.error("exclude", "The selected exclude is invalid (items: address, contact).");
    }
    if let (Some(s), Some(e)) = (&start_date, &end_date)
        && s > e
    {
        input.error("end_date", "The end_date must be a date after or equal to start_date.");
    }
    Export {
        start_date,
        end_date,
        addresses: !exclude.iter().any(|e| e == "address"),
        contacts: !exclude.iter().any(|e| e == "contact"),
    }
}

async fn export(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, PeopleApiError> {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let spec = export_input(&mut input);
    input.finish().map_err(PeopleApiError::invalid)?;
    let csv = blocking(&state, move |p| p.export_csv(&c, &spec, &mut |_| {})).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header(("Content-Disposition", "attachment; filename=\"people.csv\""))
        .body(csv))
}

/// One bad row of an import.
fn row_error(row: usize, error: String) -> RowError {
    RowError { row, error }
}

/// Field errors on one line: `field: message; field: message`.
pub fn describe(errors: &FieldErrors) -> String {
    errors.iter().map(|(f, m)| format!("{f}: {}", m.join(" "))).collect::<Vec<_>>().join("; ")
}

fn file_error(message: String) -> PeopleApiError {
    PeopleApiError::from(crate::people::field_error("file", message))
}

/// An RFC 4180 CSV.
fn read_csv(bytes: &[u8]) -> Result<Table, PeopleApiError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| file_error(format!("The file has no readable header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .enumerate()
        .map(|(n, r)| (n + 1, r.map(|r| r.iter().map(str::to_string).collect()).map_err(|e| e.to_string())))
        .collect();
    Ok(Table { header, rows })
}

/// The CSV or (by its ZIP signature) XLSX `bytes` as rows to upsert and the rows refused already.
pub fn parse_import(bytes: &[u8]) -> Result<(Vec<UpsertRow>, Vec<RowError>), PeopleApiError> {
    let table = if bytes.starts_with(b"PK\x03\x04") {
        crate::people::sheet::read_xlsx(bytes).map_err(file_error)?
    } else {
        read_csv(bytes)?
    };
    parse_table(table)
}

/// The rows of `table` to upsert, and the rows refused already.
fn parse_table(table: Table) -> Result<(Vec<UpsertRow>, Vec<RowError>), PeopleApiError> {
    let header: Vec<String> =
        table.header.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect();
    if !header.iter().any(|h| h == "national_id") {
        return Err(crate::people::field_error("file", "The header row must name a national_id column.").into());
    }
    let columns: Vec<Option<&str>> = header
        .iter()
        .map(|h| PERSON_COLUMNS.iter().copied().find(|c| c == h && !["id", "created_at", "updated_at"].contains(c)))
        .collect();
    let (mut rows, mut refused) = (Vec::new(), Vec::new());
    for (row, record) in table.rows {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                refused.push(row_error(row, format!("unreadable row: {e}")));
                continue;
            }
        };
        if record.len() != header.len() {
            refused.push(row_error(row, format!("{} fields, the header has {}", record.len(), header.len())));
            continue;
        }
        let mut map = Map::new();
        for (col, cell) in columns.iter().zip(record.iter()) {
            if let Some(col) = col
                && !cell.trim().is_empty()
            {
                map.insert(col.to_string(), Value::String(cell.to_string()));
            }
        }
        let mut input = Input::new(map);
        let patch = person_patch(&mut input, Mode::Upsert);
        if let Err(errors) = input.finish() {
            refused.push(row_error(row, describe(&errors)));
            continue;
        }
        let national_id = match patch.national_id() {
            Val::Set(n) => n.clone(),
            _ => String::new(),
        };
        let build = Box::new(move |existing: Option<Person>| match existing {
            Some(mut p) => {
                patch.apply(&mut p);
                p
            }
            None => patch.into_new(),
        });
        rows.push(UpsertRow { row, national_id, build });
    }
    Ok((rows, refused))
}

/// P-21's form: a `file` part (read by [`import`]) or an `s3_path`.
pub(super) fn import_input(input: &mut Input) -> Option<String> {
    input.file("file", false);
    input.string("s3_path", 1024).value().filter(|s| !s.is_empty())
}

async fn import(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let too_big = || PeopleApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the file exceeds {MAX_IMPORT} bytes"));
    let form = super::parts(&state, &req, payload, MAX_IMPORT, MAX_IMPORT + 64 * 1024, too_big).await?;
    let (mut file, mut fields) = (None, serde_json::Map::new());
    for part in form {
        match part.name.as_str() {
            "file" => file = Some(part.bytes),
            _ => {
                fields.insert(part.name, String::from_utf8_lossy(&part.bytes).into());
            }
        }
    }
    let s3_path = import_input(&mut Input::new(fields));
    let file = match (file, s3_path) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(crate::people::field_error("file", "Give exactly one of file and s3_path.").into());
        }
        (None, Some(_)) => {
            return Err(
                crate::people::field_error("s3_path", "s3_path not supported: no object store is configured.").into()
            );
        }
        (Some(f), None) => f,
    };
    let (rows, errors) = parse_import(&file)?;
    let errors = blocking(&state, move |p| upsert_in_chunks(p, &c, rows, errors, &mut |_| {})).await?;
    Ok(ok(StatusCode::OK, errors))
}

/// Upserts `rows` in chunks of [`CHUNK`], one record write each, calling
/// `progress(rows done)` after each write has committed; returns
/// `refused` with the rows that failed their checks, in row order.
pub fn upsert_in_chunks(
    people: &People,
    company: &str,
    rows: Vec<UpsertRow>,
    mut refused: Vec<RowError>,
    progress: &mut dyn FnMut(usize),
) -> Result<Vec<RowError>, PeopleError> {
    let mut rows = rows.into_iter().peekable();
    let mut done = 0;
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(CHUNK).collect();
        done += chunk.len();
        for (row, e) in people.upsert_rows(company, chunk)? {
            let message = match e {
                PeopleError::Validation(f) => describe(&f),
                other => other.to_string(),
            };
            refused.push(row_error(row, message));
        }
        progress(done);
    }
    refused.sort_by_key(|e| e.row);
    Ok(refused)
}
