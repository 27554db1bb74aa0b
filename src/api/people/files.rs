//! Files (P-67..P-72) and the signed download X-01.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::views::{MediaJson, TemporaryUrl, said};
use super::{Answer, PeopleApiError, blocking, company, ok, parts, query, resource, uuid_path};
use crate::api::fields::{Input, Val};
use crate::app::AppState;
use crate::people::FieldErrors;
use crate::people::files::{MAX_FILE, MODELS, Upload};
use crate::util;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/files/from-temporary").route(web::post().to(from_temporary)))
        .service(resource("/api/v1/files/from-urls").route(web::post().to(from_urls)))
        .service(
            resource("/api/v1/files")
                .route(web::post().to(upload))
                .route(web::get().to(list))
                .route(web::delete().to(delete)),
        )
        .service(resource("/api/v1/files/{id}/temporary-url").route(web::get().to(temporary_url)))
        .service(
            web::resource(crate::routes::documented("/api/v1/files/{id}/download")).route(web::get().to(download)),
        );
}

fn too_big() -> PeopleApiError {
    PeopleApiError::invalid(FieldErrors::from([(
        "file".to_string(),
        vec!["The file may not be greater than 2048 kilobytes.".to_string()],
    )]))
}

/// `model`, `model_id` and `collection`, as read (None where invalid).
type Target = (Option<String>, Option<String>, String);

/// `model` (one of the 8), `model_id` (a UUID) and `collection` (default `default`).
fn target(input: &mut Input) -> Target {
    let model = input.one_of("model", &MODELS);
    let model = input.require("model", model, String::is_empty);
    let model_id = input.uuid("model_id");
    let model_id = input.require("model_id", model_id, String::is_empty);
    let collection =
        input.string("collection", 255).value().filter(|c| !c.is_empty()).unwrap_or_else(|| "default".into());
    (model, model_id, collection)
}

/// The query string as an [`Input`].
fn query_input(req: &HttpRequest) -> Input {
    Input::new(query(req).into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// P-67's text fields (the `file` part itself is read by [`upload`]).
pub(super) fn upload_input(input: &mut Input) -> ((Option<String>, Option<String>, String), Val<String>) {
    input.file("file", true);
    (target(input), input.uuid("file_tmp_id"))
}

/// P-67: `file` (at most 2 MiB), `model`, `model_id`, `collection`, `file_tmp_id` (kept as metadata).
async fn upload(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let form = parts(&state, &req, payload, MAX_FILE, MAX_FILE + 64 * 1024, too_big).await?;
    let mut fields = serde_json::Map::new();
    let mut file = None;
    for p in form {
        if p.name == "file" {
            file = Some((p.filename.unwrap_or_default(), p.bytes));
        } else {
            fields.insert(p.name, Value::String(String::from_utf8_lossy(&p.bytes).trim().to_string()));
        }
    }
    let mut input = Input::new(fields);
    let ((model, model_id, collection), tmp) = upload_input(&mut input);
    match &file {
        None => input.missing("file"),
        Some((_, b)) if b.is_empty() => input.error("file", "The file must not be empty."),
        _ => {}
    }
    input.finish().map_err(PeopleApiError::invalid)?;
    let (name, bytes) = file.unwrap_or_default();
    let custom_properties = match tmp {
        Val::Set(t) => json!({"file_tmp_id": t}),
        _ => json!({}),
    };
    let upload = Upload {
        model: model.unwrap_or_default(),
        model_id: model_id.unwrap_or_default(),
        collection,
        name,
        bytes,
        custom_properties,
    };
    blocking(&state, move |p| p.attach(&c, vec![upload])).await?;
    Ok(ok(StatusCode::OK, said::FILE_SAVED))
}

/// A JSON body, or a multipart form of text fields where `files` is an
/// array: a JSON array in one part, or one part per item (`files`,
/// `files[]` or `files[N]` repeated).
async fn form_or_json(state: &AppState, req: &HttpRequest, payload: web::Payload) -> Result<Input, PeopleApiError> {
    if super::super::mime(req) != "multipart/form-data" {
        return super::body(state, req, payload).await;
    }
    let form = parts(state, req, payload, super::MAX_JSON, super::MAX_JSON, || {
        PeopleApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "the form exceeds 1 MiB")
    })
    .await?;
    let mut map = serde_json::Map::new();
    let mut items = Vec::new();
    for p in form {
        let text = String::from_utf8_lossy(&p.bytes).trim().to_string();
        if p.name == "files" || p.name.starts_with("files[") {
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(list)) => items.extend(list),
                Ok(v @ Value::Object(_)) => items.push(v),
                _ => items.push(Value::String(text)),
            }
        } else {
            map.insert(p.name, Value::String(text));
        }
    }
    if !items.is_empty() {
        map.insert("files".into(), Value::Array(items));
    }
    Ok(Input::new(map))
}

/// The most URLs one P-68 request may name.
const MAX_URLS: usize = 20;

/// P-68's body.
pub(super) fn urls_input(input: &mut Input) -> (Target, Option<Vec<String>>) {
    let target = target(input);
    let urls = input.strings("files");
    let urls = input.require("files", urls, Vec::is_empty);
    if let Some(u) = &urls {
        if u.len() > MAX_URLS {
            input.error("files", format!("The files may not have more than {MAX_URLS} items."));
        }
        for (i, url) in u.iter().enumerate() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                input.error(&format!("files.{i}"), "The files item must be an http or https URL.");
            }
        }
    }
    (target, urls)
}

/// P-68: `files` (http URLs, 1..=20), `model`, `model_id`, `collection`; each
/// URL is fetched (`people.files.fetch_timeout_s`, 2 MiB, public addresses
/// only unless `allow_private_urls`); any failure is a 422 naming the URL, and
/// then nothing is stored.
async fn from_urls(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = form_or_json(&state, &req, payload).await?;
    let ((model, model_id, collection), urls) = urls_input(&mut input);
    input.finish().map_err(PeopleApiError::invalid)?;
    let (model, model_id, urls) = (model.unwrap_or_default(), model_id.unwrap_or_default(), urls.unwrap_or_default());
    let files = &state.config.people.files;
    let limits = crate::notify::http::FetchLimits {
        timeout: std::time::Duration::from_secs_f32(files.fetch_timeout_s.clamp(0.1, 600.0)),
        max_bytes: MAX_FILE,
        allow_private: files.allow_private_urls,
    };
    blocking(&state, move |p| {
        let mut uploads = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let bytes = crate::notify::http::fetch(url, limits).map_err(|why| {
                crate::people::field_error(&format!("files.{i}"), format!("{url} could not be fetched: {why}."))
            })?;
            if bytes.is_empty() {
                return Err(crate::people::field_error(&format!("files.{i}"), format!("{url} sent an empty file.")));
            }
            let name = url.split(['?', '#']).next().and_then(|u| u.rsplit('/').next()).unwrap_or_default();
            uploads.push(Upload {
                model: model.clone(),
                model_id: model_id.clone(),
                collection: collection.clone(),
                name: if name.is_empty() { "file".into() } else { name.to_string() },
                bytes,
                custom_properties: json!({"source_url": url}),
            });
        }
        p.attach(&c, uploads)
    })
    .await?;
    Ok(ok(StatusCode::OK, said::FILES_SAVED))
}

/// One item of P-69: its index, model, model id, collection and `file_tmp_id`.
type TemporaryItem = (usize, String, String, String, String);

/// P-69's body: `async` and the items that passed their checks (the others are errors in `input`).
pub(super) fn temporary_input(input: &mut Input) -> (bool, Vec<TemporaryItem>) {
    let run_async = match input.boolean("async") {
        Val::Set(b) => b,
        _ => false,
    };
    if !input.has("files") {
        input.missing("files");
    }
    let files = input.object_array("files");
    let mut items = Vec::new();
    for (i, f) in files.into_iter().enumerate() {
        let mut item = input.item("files", f);
        let (model, model_id, collection) = target(&mut item);
        let tmp = item.uuid("file_tmp_id");
        let tmp = item.require("file_tmp_id", tmp, String::is_empty);
        for (field, messages) in std::mem::take(&mut item.errors) {
            for m in messages {
                input.error(&format!("files.{i}.{field}"), m);
            }
        }
        if let (Some(model), Some(model_id), Some(tmp)) = (model, model_id, tmp) {
            items.push((i, model, model_id, collection, tmp));
        }
    }
    (run_async, items)
}

/// P-69: files of the configured temporary-file store (`people.files.temporary_dir`, one
/// file per `file_tmp_id`). `async=true` answers "Files queued" and stores them afterwards.
async fn from_temporary(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = form_or_json(&state, &req, payload).await?;
    let (run_async, files) = temporary_input(&mut input);
    let dir = state.config.people.files.temporary_dir.clone();
    let mut uploads = Vec::new();
    for (i, model, model_id, collection, tmp) in files {
        let path = std::path::Path::new(&dir).join(&tmp);
        let bytes = match (!dir.is_empty()).then(|| std::fs::read(&path)) {
            Some(Ok(b)) => b,
            _ if run_async => {
                tracing::warn!(file_tmp_id = %tmp, "temporary file not found; skipped");
                continue;
            }
            _ => {
                input.error(&format!("files.{i}.file_tmp_id"), "No temporary file with this file_tmp_id.");
                continue;
            }
        };
        uploads.push(Upload {
            model,
            model_id,
            collection,
            name: tmp.clone(),
            bytes,
            custom_properties: json!({"file_tmp_id": tmp}),
        });
    }
    input.finish().map_err(PeopleApiError::invalid)?;
    if run_async {
        let state = state.clone();
        actix_web::rt::spawn(async move {
            if let Err(e) = blocking(&state, move |p| p.attach(&c, uploads)).await {
                tracing::warn!(error = %e, "queued temporary files not stored");
            }
        });
        return Ok(ok(StatusCode::OK, said::FILES_QUEUED));
    }
    blocking(&state, move |p| p.attach(&c, uploads)).await?;
    Ok(ok(StatusCode::OK, said::FILES_SAVED))
}

/// P-70.
async fn list(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let mut input = query_input(&req);
    let collection = input.string("collection", 255).value().filter(|s| !s.is_empty());
    let (model, model_id, _) = target(&mut input);
    input.finish().map_err(PeopleApiError::invalid)?;
    let (model, model_id) = (model.unwrap_or_default(), model_id.unwrap_or_default());
    let all = blocking(&state, move |p| p.files(&c, &model, &model_id, collection.as_deref())).await?;
    Ok(ok(StatusCode::OK, all.iter().map(MediaJson::of).collect::<Vec<_>>()))
}

/// P-72: `media_uuid` may be any string (the documented sample is no UUID).
async fn delete(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let mut input = query_input(&req);
    let (model, model_id, collection) = target(&mut input);
    let media = input.required_string("media_uuid", 255);
    input.finish().map_err(PeopleApiError::invalid)?;
    let (model, model_id, media) = (model.unwrap_or_default(), model_id.unwrap_or_default(), media.unwrap_or_default());
    blocking(&state, move |p| p.detach(&c, &model, &model_id, &collection, &media)).await?;
    Ok(ok(StatusCode::OK, said::OK))
}

/// P-71: `{url, expires_at}`, the URL of X-01 signed until `expires_in_min` (1..10080, default 5).
async fn temporary_url(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "File")?;
    let mut input = query_input(&req);
    let minutes = input.int("expires_in_min").value().unwrap_or(5);
    if !(1..=10_080).contains(&minutes) {
        input.error("expires_in_min", "The expires_in_min must be between 1 and 10080.");
    }
    input.finish().map_err(PeopleApiError::invalid)?;
    let file = id.clone();
    blocking(&state, move |p| p.file(&c, &file)).await?;
    let expires = util::now_ns() / 1_000_000_000 + minutes * 60;
    let info = req.connection_info();
    let url = format!(
        "{}://{}{}/api/v1/files/{id}/download?{}",
        info.scheme(),
        info.host(),
        state.config.server.base_path,
        state.people.signed_query(&id, expires)
    );
    Ok(ok(StatusCode::OK, TemporaryUrl { url, expires_at: util::rfc3339_us(expires * 1_000_000_000) }))
}

/// no API key; a changed signature, a late request or no file is 403.
async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, PeopleApiError> {
    let q = query(&req);
    let forbidden = || PeopleApiError::new(StatusCode::FORBIDDEN, "Invalid or expired signature");
    let expires = q.get("expires").and_then(|e| e.parse::<i64>().ok()).ok_or_else(forbidden)?;
    let signature = q.get("signature").cloned().unwrap_or_default();
    let id = id.into_inner();
    let now_s = util::now_ns() / 1_000_000_000;
    let found = blocking(&state, move |p| p.download(&id, expires, &signature, now_s)).await?;
    let (media, bytes) = found.ok_or_else(forbidden)?;
    Ok(HttpResponse::Ok()
        .content_type(media.mime.as_str())
        .insert_header(("Content-Disposition", format!("inline; filename=\"{}\"", media.file_name)))
        .body(bytes))
}
