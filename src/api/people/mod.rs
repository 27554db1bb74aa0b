//! The People API (spec §2): `{"success": true, "result": …}` answers,
//! `{"success": false, "code", "error"[, "errors"]}` errors with 422 for
//! validation (§1.4, §1.5), keys in `X-API-Key` or `Authorization: Bearer`
//! (§1.3). Handlers parse with [`Input`], call `people::People` on a
//! blocking thread, and shape the wire objects of §2.1.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use serde_json::Value;

use super::fields::Input;
use super::openapi::{self, Schemas};
use crate::app::AppState;
use crate::auth::{Api, AuthFailure};
use crate::people::{FieldErrors, People, PeopleError};

mod channels;
mod contacts;
mod files;
mod persons;
pub mod transfer;
pub mod views;

/// JSON bodies of this API (spec §1.8).
const MAX_JSON: usize = 1024 * 1024;

/// An error in the People envelope.
#[derive(Debug)]
pub struct PeopleApiError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Option<FieldErrors>,
}

impl PeopleApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PeopleApiError {
        PeopleApiError { status, message: message.into(), errors: None }
    }

    pub fn invalid(errors: FieldErrors) -> PeopleApiError {
        PeopleApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "The given data was invalid.".into(),
            errors: Some(errors),
        }
    }

    fn not_found(what: &str) -> PeopleApiError {
        PeopleApiError::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
}

impl std::fmt::Display for PeopleApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl actix_web::ResponseError for PeopleApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = serde_json::json!({"success": false, "code": self.status.as_u16(), "error": self.message});
        if let Some(errors) = &self.errors {
            body["errors"] = serde_json::to_value(errors).unwrap_or_default();
        }
        HttpResponse::build(self.status).json(body)
    }
}

impl From<PeopleError> for PeopleApiError {
    fn from(e: PeopleError) -> Self {
        match e {
            PeopleError::Validation(errors) => PeopleApiError::invalid(errors),
            PeopleError::Refused(m) => PeopleApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            PeopleError::NotFound(what) => PeopleApiError::not_found(what),
            PeopleError::Internal(m) => {
                tracing::error!(error = %m, "people API internal error");
                PeopleApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error")
            }
        }
    }
}

pub type Answer = Result<HttpResponse, PeopleApiError>;

/// `{"success": true, "result": result}` with `status`.
pub fn ok<T: Serialize>(status: StatusCode, result: T) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({"success": true, "result": result}))
}

/// The caller's company: `X-API-Key: <key>` or `Authorization: Bearer <key>`.
pub fn company(state: &AppState, req: &HttpRequest) -> Result<String, PeopleApiError> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let presented = match (header("x-api-key"), header("authorization")) {
        (Some(k), _) if !k.is_empty() => Some(k),
        (_, Some(auth)) => match auth.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Some(rest.trim()),
            _ => None,
        },
        _ => None,
    };
    let failed = || PeopleApiError::new(StatusCode::UNAUTHORIZED, "Failed authorization");
    let presented = presented.ok_or_else(failed)?;
    match state.keys.check(presented, crate::util::now_ns(), Api::People) {
        Ok(c) => Ok(c.to_string()),
        Err(AuthFailure::Forbidden) => {
            Err(PeopleApiError::new(StatusCode::FORBIDDEN, AuthFailure::Forbidden.message()))
        }
        Err(_) => Err(failed()),
    }
}

/// The JSON object of the body (at most 1 MiB; an empty body is an empty object).
pub async fn body(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<Input, PeopleApiError> {
    let mime = super::mime(req);
    let bytes = super::read_body(state, req, payload, MAX_JSON)
        .await
        .map_err(|e| PeopleApiError::new(e.status(), e.message()))?;
    if !bytes.is_empty() && mime != "application/json" {
        return Err(PeopleApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be application/json, got {mime:?}"),
        ));
    }
    Input::parse(&bytes).map_err(|m| PeopleApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m))
}

/// One part of a multipart/form-data body.
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub bytes: Vec<u8>,
}

/// Reads a multipart/form-data body: at most `per_part` bytes a part (else
/// `too_big`), within `server.body_timeout_s`. A declared length over
/// `max_total` is refused with `too_big` before anything is read.
pub async fn parts(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
    per_part: usize,
    max_total: usize,
    too_big: fn() -> PeopleApiError,
) -> Result<Vec<Part>, PeopleApiError> {
    use futures_util::StreamExt;
    let declared =
        req.headers().get("content-length").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max_total) {
        return Err(too_big());
    }
    if super::mime(req) != "multipart/form-data" {
        return Err(PeopleApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be multipart/form-data",
        ));
    }
    let malformed =
        |e: String| PeopleApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("malformed multipart body: {e}"));
    let read = async {
        let mut form = actix_multipart::Multipart::new(req.headers(), payload);
        let mut out = Vec::new();
        while let Some(field) = form.next().await {
            let mut field = field.map_err(|e| malformed(e.to_string()))?;
            let name = field.name().unwrap_or_default().to_string();
            let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_string);
            let bytes = match field.bytes(per_part).await {
                Ok(Ok(b)) => b.to_vec(),
                Ok(Err(e)) => return Err(malformed(e.to_string())),
                Err(_) => return Err(too_big()),
            };
            out.push(Part { name, filename, bytes });
        }
        Ok(out)
    };
    let seconds = state.config.server.body_timeout_s;
    tokio::time::timeout(std::time::Duration::from_secs_f32(seconds.max(0.1)), read).await.map_err(|_| {
        PeopleApiError::new(StatusCode::REQUEST_TIMEOUT, format!("the body did not arrive within {seconds} s"))
    })?
}

/// Runs `f` on the People service off the async threads.
pub async fn blocking<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&People) -> Result<T, PeopleError> + Send + 'static,
) -> Result<T, PeopleApiError> {
    let state = state.clone();
    web::block(move || f(&state.people))
        .await
        .map_err(|e| PeopleApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(PeopleApiError::from)
}

/// A path id that must be a UUID; anything else is not found (spec §1.1).
pub fn uuid_path(id: &str, what: &str) -> Result<String, PeopleApiError> {
    crate::util::parse_uuid(id).ok_or_else(|| PeopleApiError::not_found(what))
}

/// The query string as a map; repeated names keep the last value.
pub fn query(req: &HttpRequest) -> BTreeMap<String, String> {
    url_pairs(req.query_string()).into_iter().collect()
}

fn url_pairs(q: &str) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(q).map(|v| v.into_inner()).unwrap_or_default()
}

/// `page` (from 1) and `per_page` (1..100, default 20) of a PG-L list.
pub fn page_params(req: &HttpRequest) -> Result<(usize, usize), PeopleApiError> {
    let q = query(req);
    let mut input = Input::new(q.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect());
    let page = input.int("page").value().unwrap_or(1);
    let per_page = input.int("per_page").value().unwrap_or(20);
    if page < 1 {
        input.error("page", "The page must be at least 1.");
    }
    if !(1..=100).contains(&per_page) {
        input.error("per_page", "The per_page must be between 1 and 100.");
    }
    input.finish().map_err(PeopleApiError::invalid)?;
    Ok((page as usize, per_page as usize))
}

/// The Laravel simple paginator (PG-L, spec §1.7) around one page of `rows`.
pub fn paginator<T>(req: &HttpRequest, page: usize, per_page: usize, rows: Vec<T>, more: bool) -> views::Page<T> {
    let link = |p: usize| {
        let mut pairs: Vec<(String, String)> =
            url_pairs(req.query_string()).into_iter().filter(|(k, _)| k != "page").collect();
        pairs.push(("page".into(), p.to_string()));
        let q: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
        format!("{}?{}", req.path(), q.join("&"))
    };
    let first = (page - 1) * per_page + 1;
    let n = rows.len();
    views::Page {
        current_page: page,
        data: rows,
        from: (n > 0).then_some(first),
        next_page_url: more.then(|| link(page + 1)),
        per_page,
        prev_page_url: (page > 1).then(|| link(page - 1)),
        to: (n > 0).then(|| first + n - 1),
    }
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A resource whose other methods get a 405 in this API's envelope; `PATCH`
/// is accepted wherever `PUT` is (spec §1.8).
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(crate::routes::documented(path)).default_service(web::to(|req: HttpRequest| async move {
        Err::<HttpResponse, _>(PeopleApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} is not allowed on {}", req.method(), req.path()),
        ))
    }))
}

/// How an operation's body is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyForm {
    Json,
    /// `multipart/form-data`.
    Form,
    /// Either (P-68, P-69).
    JsonOrForm,
}

/// Runs operation `op`'s body readers, the very functions its handler
/// calls, on `input` (a describing one, for `/openapi.json`); `None` when
/// the operation takes no body.
pub fn read_body(op: &str, input: &mut Input) -> Option<BodyForm> {
    use crate::people::codes::Channel;
    use persons::Mode;
    // What was read is dropped: only the fields it recorded matter here.
    fn json<T>(_read: T) -> BodyForm {
        BodyForm::Json
    }
    fn form<T>(_read: T) -> BodyForm {
        BodyForm::Form
    }
    fn either<T>(_read: T) -> BodyForm {
        BodyForm::JsonOrForm
    }
    Some(match op {
        "P-10" | "P-12" => json(persons::group_input(input, op == "P-10")),
        "P-15" => json(persons::person_patch(input, Mode::Create)),
        "P-17" => json(persons::person_patch(input, Mode::Update)),
        "P-25" => json(persons::person_patch(input, Mode::Upsert)),
        "P-19" => json(persons::curp_input(input)),
        "P-20" => json(transfer::export_input(input)),
        "P-21" => form(transfer::import_input(input)),
        "P-36" => json(contacts::address_create_input(input)),
        "P-38" => json(contacts::address_patch(input, false)),
        "P-45" | "P-47" => json(contacts::contact_input(input, op == "P-45")),
        "P-49" => json(contacts::code_target(input, Channel::Sms)),
        "P-51" => json(contacts::code_target(input, Channel::Email)),
        "P-50" => json(contacts::verify_input(input, Channel::Sms)),
        "P-52" => json(contacts::verify_input(input, Channel::Email)),
        "P-54" | "P-56" => json(contacts::reference_patch(input, op == "P-54")),
        "P-67" => form(files::upload_input(input)),
        "P-68" => either(files::urls_input(input)),
        "P-69" => either(files::temporary_input(input)),
        "P-74" | "P-76" => json(channels::channel_input(input, op == "P-74")),
        _ => return None,
    })
}

/// What operation `op` answers with: the `result` type its handler sends.
pub fn answer(op: &str, schemas: &mut Schemas) -> Option<openapi::Answer> {
    use openapi::{Answer, array, literal};
    use views::*;
    let one = |n: u8| format!("P-{n:02}");
    let id = |list: &[u8]| list.iter().any(|&n| one(n) == op);
    Some(match op {
        _ if id(&[1, 2, 3, 4, 5, 6, 7, 8]) => Answer::Json(array(schemas.of::<CatalogJson>())),
        "P-09" => Answer::Json(array(schemas.of::<GroupJson>())),
        "P-10" | "P-11" | "P-12" => Answer::Json(schemas.of::<GroupJson>()),
        "P-14" => Answer::Json(schemas.inline::<Page<PersonJson>>()),
        _ if id(&[15, 16, 17, 19, 22, 23, 24, 25]) => Answer::Json(schemas.of::<PersonJson>()),
        "P-20" => Answer::Csv,
        "P-21" => Answer::Json(array(schemas.of::<RowError>())),
        "P-35" => Answer::Json(schemas.inline::<Page<AddressJson>>()),
        "P-36" | "P-37" | "P-38" => Answer::Json(schemas.of::<AddressJson>()),
        "P-44" => Answer::Json(array(schemas.of::<ContactJson>())),
        "P-45" | "P-46" | "P-47" => Answer::Json(schemas.of::<ContactJson>()),
        "P-49" => Answer::Json(literal(&[said::SMS_CODE_SENT])),
        "P-51" => Answer::Json(literal(&[said::EMAIL_CODE_SENT])),
        "P-50" | "P-52" => Answer::Json(literal(&[said::VALIDATED])),
        "P-53" => Answer::Json(array(schemas.of::<ReferenceJson>())),
        "P-54" | "P-55" | "P-56" => Answer::Json(schemas.of::<ReferenceJson>()),
        "P-67" => Answer::Json(literal(&[said::FILE_SAVED])),
        "P-68" => Answer::Json(literal(&[said::FILES_SAVED])),
        "P-69" => Answer::Json(literal(&[said::FILES_SAVED, said::FILES_QUEUED])),
        "P-70" => Answer::Json(array(schemas.of::<MediaJson>())),
        "P-71" => Answer::Json(schemas.of::<TemporaryUrl>()),
        "P-73" => Answer::Json(array(schemas.of::<ChannelJson>())),
        "P-74" | "P-75" | "P-76" => Answer::Json(schemas.of::<ChannelJson>()),
        _ if id(&[13, 18, 39, 48, 57, 72, 77]) => Answer::Json(literal(&[said::OK])),
        "X-01" => Answer::Binary,
        _ => return None,
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    // `/api/v1/people/export` and `/import` before `/api/v1/people/{id}`.
    transfer::routes(cfg);
    persons::routes(cfg);
    contacts::routes(cfg);
    channels::routes(cfg);
    files::routes(cfg);
}
