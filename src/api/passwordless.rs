//! The nine Passwordless routes (spec §6, PL-01..PL-09).

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::openapi::{Answer, Schemas};
use super::{ApiError, Ctx, authenticate, read_json};
use crate::app::AppState;
use crate::service::{ListQuery, Media, NewUser, as_jpeg};
use crate::store::{Images, Status, User};
use crate::util;
use utoipa::openapi::Required;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::request_body::{RequestBody, RequestBodyBuilder};
use utoipa::openapi::schema::ObjectBuilder;

pub fn routes(cfg: &mut web::ServiceConfig) {
    // Static segments first: they win over `{id}`.
    cfg.service(
        web::scope(SCOPE)
            // PL-01, PL-02: enrol by video, by image.
            .service(resource("/enroll").route(web::post().to(|s, r, p| enroll(s, r, p, true))))
            .service(resource("/face-enroll").route(web::post().to(|s, r, p| enroll(s, r, p, false))))
            // PL-03, PL-04: verify by video, by image.
            .service(resource("/verify").route(web::post().to(|s, r, p| verify(s, r, p, true))))
            .service(resource("/face-verify").route(web::post().to(|s, r, p| verify(s, r, p, false))))
            .service(resource("/facial").route(web::post().to(search)))
            .service(resource("").route(web::get().to(list)))
            .service(
                resource("/{id}")
                    .route(web::get().to(get))
                    .route(web::put().to(update))
                    .route(web::delete().to(delete)),
            ),
    );
}

/// Operation `op`'s request body and answer, from the types its handler reads and sends.
pub fn documented(op: &str, schemas: &mut Schemas) -> (Option<RequestBody>, Option<Answer>) {
    let body = |schema| {
        let content = ContentBuilder::new().schema(Some(schema)).build();
        Some(RequestBodyBuilder::new().required(Some(Required::True)).content("application/json", content).build())
    };
    match op {
        "PL-01" | "PL-02" => (body(schemas.of::<EnrollIn>()), Some(Answer::Json(schemas.of::<EventJson>()))),
        "PL-03" | "PL-04" => (body(schemas.of::<MediaIn>()), Some(Answer::Json(schemas.of::<EventJson>()))),
        "PL-05" => (body(schemas.of::<MediaIn>()), Some(Answer::Json(schemas.of::<SearchJson>()))),
        "PL-06" => (None, Some(Answer::Json(schemas.of::<DocListJson>()))),
        "PL-07" => (None, Some(Answer::Json(schemas.of::<UserJson>()))),
        "PL-08" => (body(schemas.of::<UpdateIn>()), Some(Answer::Json(schemas.of::<UserJson>()))),
        "PL-09" => (None, Some(Answer::Json(ObjectBuilder::new().into()))),
        _ => (None, None),
    }
}

const SCOPE: &str = "/api/v1/passwordless/client";

/// A resource of [`SCOPE`] whose unsupported methods get a 405 in the error envelope.
fn resource(path: &str) -> actix_web::Resource {
    crate::routes::documented(&format!("{SCOPE}{path}"));
    web::resource(path).default_service(web::to(|req: HttpRequest| async move {
        let ctx = Ctx::new(&req);
        Err::<HttpResponse, _>(
            ctx.fail(StatusCode::METHOD_NOT_ALLOWED, format!("{} is not allowed on {}", req.method(), req.path())),
        )
    }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = PasswordlessImages)]
struct ImagesJson {
    /// The enrolment image, JPEG in Base64.
    original: String,
    /// A small JPEG in Base64.
    thumbnail: String,
}

/// PasswordlessUser (§6.1).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessUser)]
struct UserJson {
    id: String,
    created_at: String,
    updated_at: String,
    company_id: String,
    full_name: String,
    email: String,
    external_id: String,
    images: ImagesJson,
    meta: serde_json::Value,
    /// `active` or `inactive`.
    #[schema(value_type = String)]
    status: Status,
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn user_json(state: &AppState, user: User, images: Option<&Images>) -> UserJson {
    let config = state.service.config();
    let (original, thumbnail) = match images {
        Some(i) => (B64.encode(as_jpeg(&i.original, config)), B64.encode(&i.thumbnail)),
        None => (String::new(), String::new()),
    };
    UserJson {
        id: user.id,
        created_at: util::rfc3339_ns(user.created_ns),
        updated_at: util::rfc3339_ns(user.updated_ns),
        company_id: user.company_id,
        full_name: user.full_name,
        email: user.email.unwrap_or_default(),
        external_id: user.external_id.unwrap_or_default(),
        images: ImagesJson { original, thumbnail },
        meta: user.meta,
        status: user.status,
    }
}

/// §6.2.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessEvent)]
struct EventJson {
    event_id: String,
    request_id: String,
    user: UserJson,
    process_time: u64,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessUserInput)]
struct UserIn {
    email: Option<String>,
    external_id: Option<String>,
    full_name: Option<String>,
}

/// PL-01 takes `video`, PL-02 `image` (Base64); `user.fullName` is required.
#[derive(Deserialize, ToSchema)]
#[schema(as = PasswordlessEnroll)]
struct EnrollIn {
    #[schema(required = true)]
    user: Option<UserIn>,
    video: Option<String>,
    image: Option<String>,
}

/// PL-03 takes `video`, PL-04 and PL-05 `image` (Base64); PL-05 also `rankingTop`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessMedia)]
struct MediaIn {
    video: Option<String>,
    image: Option<String>,
    ranking_top: Option<serde_json::Value>,
}

/// At least one of the two.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessUpdate)]
struct UpdateIn {
    full_name: Option<String>,
    status: Option<String>,
}

/// Decodes Base64 (standard or URL-safe alphabet, padding optional, line
/// breaks and a `data:...;base64,` prefix tolerated).
fn base64_field(ctx: &Ctx, name: &str, value: Option<String>) -> Result<Vec<u8>, ApiError> {
    let value = value.ok_or_else(|| ctx.fail(StatusCode::BAD_REQUEST, format!("{name} is required (Base64)")))?;
    let text = match value.split_once(";base64,") {
        Some((prefix, rest)) if prefix.starts_with("data:") => rest,
        _ => value.as_str(),
    };
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if clean.is_empty() {
        return Err(ctx.fail(StatusCode::BAD_REQUEST, format!("{name} is empty")));
    }
    let lenient = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(&clean)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(&clean))
        .map_err(|e| ctx.fail(StatusCode::BAD_REQUEST, format!("{name} is not valid Base64: {e}")))
}

/// What every POST/PUT handler starts with: the request context, the
/// caller's company (401 otherwise) and the parsed JSON body.
async fn begin<T: serde::de::DeserializeOwned>(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<(Ctx, String, T), ApiError> {
    let ctx = Ctx::new(req);
    let company = authenticate(state, req, &ctx)?;
    let body = read_json(state, req, payload, &ctx).await?;
    Ok((ctx, company, body))
}

async fn enroll(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    video: bool,
) -> Result<HttpResponse, ApiError> {
    let (ctx, company, body): (_, _, EnrollIn) = begin(&state, &req, payload).await?;
    let user = body.user.ok_or_else(|| ctx.fail(StatusCode::BAD_REQUEST, "user is required"))?;
    let full_name = user.full_name.filter(|n| !n.trim().is_empty());
    let full_name = full_name.ok_or_else(|| ctx.fail(StatusCode::BAD_REQUEST, "user.fullName is required"))?;
    let media = media(&ctx, video, body.video, body.image)?;
    let new = NewUser { full_name, email: user.email.filter(|e| !e.is_empty()), external_id: user.external_id };
    let (user, images) = state.service.enroll(&company, new, media).await.map_err(|e| ctx.service_error(e))?;
    Ok(event(&ctx, &state, user, &images))
}

/// The video or image field, as the route wants.
fn media(ctx: &Ctx, video: bool, video_field: Option<String>, image_field: Option<String>) -> Result<Media, ApiError> {
    Ok(if video {
        Media::Video(base64_field(ctx, "video", video_field)?)
    } else {
        Media::Image(base64_field(ctx, "image", image_field)?)
    })
}

/// The §6.2 answer.
fn event(ctx: &Ctx, state: &AppState, user: User, images: &Images) -> HttpResponse {
    ctx.ok(&EventJson {
        event_id: ctx.event_id.clone(),
        request_id: ctx.request_id.clone(),
        user: user_json(state, user, Some(images)),
        process_time: ctx.process_ms(),
    })
}

async fn verify(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    video: bool,
) -> Result<HttpResponse, ApiError> {
    let (ctx, company, body): (_, _, MediaIn) = begin(&state, &req, payload).await?;
    let media = media(&ctx, video, body.video, body.image)?;
    let found = state.service.verify(&company, media).await.map_err(|e| ctx.service_error(e))?;
    Ok(event(&ctx, &state, found.user, &found.images))
}

#[derive(Serialize, ToSchema)]
#[schema(as = PasswordlessRanked)]
struct RankedJson {
    user: UserJson,
    distance: f32,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessSearch)]
struct SearchJson {
    client_list: Vec<RankedJson>,
    threshold: f32,
}

/// PL-05: 1:N search; `distance` is the similarity in [0, 1], best first.
async fn search(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let (ctx, company, body): (_, _, MediaIn) = begin(&state, &req, payload).await?;
    let top = match &body.ranking_top {
        None | Some(serde_json::Value::Null) => 10,
        Some(v) => v.as_u64().filter(|n| (1..=100).contains(n)).ok_or_else(|| {
            ctx.fail(StatusCode::BAD_REQUEST, format!("rankingTop must be an integer from 1 to 100, got {v}"))
        })? as usize,
    };
    let media = Media::Image(base64_field(&ctx, "image", body.image)?);
    let found = state.service.identify(&company, media, top, false).await.map_err(|e| ctx.service_error(e))?;
    let list: Vec<RankedJson> = found
        .into_iter()
        .map(|f| RankedJson { user: user_json(&state, f.user, Some(&f.images)), distance: f.score.clamp(0.0, 1.0) })
        .collect();
    Ok(ctx.ok(&SearchJson { client_list: list, threshold: state.service.threshold() }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PasswordlessList)]
struct DocListJson {
    doc_list: Vec<UserJson>,
    limit: usize,
    page: usize,
    next_page: bool,
    prev_page: bool,
    total_docs: usize,
    total_pages: usize,
}

fn list_query(ctx: &Ctx, req: &HttpRequest) -> Result<ListQuery, ApiError> {
    let params = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map_err(|e| ctx.fail(StatusCode::BAD_REQUEST, format!("invalid query string: {e}")))?
        .into_inner();
    let bad = |m: String| ctx.fail(StatusCode::BAD_REQUEST, m);
    let int = |name: &str, default: usize, max: usize| -> Result<usize, ApiError> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| bad(format!("{name} must be an integer from 1 to {max}, got {v:?}"))),
        }
    };
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        params
            .get(name)
            .map(|v| {
                util::parse_datetime(v).ok_or_else(|| bad(format!("{name} must be RFC 3339 or YYYY-MM-DD, got {v:?}")))
            })
            .transpose()
    };
    let status = params
        .get("status")
        .map(|v| Status::parse(v).ok_or_else(|| bad(format!("status must be active or inactive, got {v:?}"))))
        .transpose()?;
    let mut max_created_ns = time("max-created-at")?;
    // A bare date as the upper bound means the whole of that day.
    if let (Some(t), Some(v)) = (max_created_ns.as_mut(), params.get("max-created-at"))
        && v.len() == 10
    {
        *t += 86_400 * 1_000_000_000 - 1;
    }
    Ok(ListQuery {
        limit: int("limit", 10, 100)?,
        page: int("page", 1, usize::MAX / 1024)?,
        status,
        full_name: params.get("fullName").filter(|n| !n.is_empty()).cloned(),
        min_created_ns: time("min-created-at")?,
        max_created_ns,
    })
}

/// PL-06.
async fn list(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx::new(&req);
    let company = authenticate(&state, &req, &ctx)?;
    let q = list_query(&ctx, &req)?;
    let (limit, page) = (q.limit, q.page);
    let (found, thumbs) = state.service.list(&company, q).await.map_err(|e| ctx.service_error(e))?;
    let total_pages = found.total.div_ceil(limit);
    let doc_list = found
        .users
        .into_iter()
        .zip(thumbs)
        .map(|(u, thumb)| {
            let mut j = user_json(&state, u, None);
            j.images.thumbnail = B64.encode(thumb);
            j
        })
        .collect();
    Ok(ctx.ok(&DocListJson {
        doc_list,
        limit,
        page,
        next_page: page < total_pages,
        prev_page: page > 1,
        total_docs: found.total,
        total_pages,
    }))
}

/// PL-07.
async fn get(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx::new(&req);
    let company = authenticate(&state, &req, &ctx)?;
    let (user, images) = state.service.user(&company, &id).await.map_err(|e| ctx.service_error(e))?;
    Ok(ctx.ok(&user_json(&state, user, Some(&images))))
}

/// PL-08.
async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (ctx, company, body): (_, _, UpdateIn) = begin(&state, &req, payload).await?;
    if body.full_name.is_none() && body.status.is_none() {
        return Err(ctx.fail(StatusCode::BAD_REQUEST, "nothing to update: give fullName and/or status"));
    }
    if body.full_name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(ctx.fail(StatusCode::BAD_REQUEST, "fullName must not be empty"));
    }
    let status = body
        .status
        .map(|s| {
            Status::parse(&s).ok_or_else(|| {
                ctx.fail(StatusCode::BAD_REQUEST, format!("status must be active or inactive, got {s:?}"))
            })
        })
        .transpose()?;
    let full_name = body.full_name.map(|n| n.trim().to_string());
    let (user, images) =
        state.service.update(&company, &id, full_name, status).await.map_err(|e| ctx.service_error(e))?;
    Ok(ctx.ok(&user_json(&state, user, Some(&images))))
}

/// PL-09.
async fn delete(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let ctx = Ctx::new(&req);
    let company = authenticate(&state, &req, &ctx)?;
    state.service.delete(&company, &id).await.map_err(|e| ctx.service_error(e))?;
    Ok(ctx.ok(&serde_json::json!({})))
}
