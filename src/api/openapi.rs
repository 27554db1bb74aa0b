//! The OpenAPI 3.1 document of every route this service serves (`/openapi.json`,
//! built with `utoipa`'s builders from [`crate::routes::OPERATIONS`]) and the
//! browsable page over it (`/docs`, Swagger UI from the npm package
//! `swagger-ui-dist`, fetched and pinned by `make setup`, served from
//! `server.docs_assets`).

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Required, ServerBuilder};

use crate::app::AppState;
use crate::routes::Api::{Passwordless, People, Service, Streams};
use crate::routes::{Api, OPERATIONS};

fn method(m: &str) -> HttpMethod {
    match m {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn tag(api: Api) -> &'static str {
    match api {
        People => "People",
        Passwordless => "Passwordless",
        Streams => "Streams",
        Service => "Service",
    }
}

/// The document, with `base_path` as its server.
pub fn document(base_path: &str) -> OpenApi {
    let mut paths = PathsBuilder::new();
    for o in OPERATIONS {
        let id = if o.method == "PATCH" { format!("{}-patch", o.id) } else { o.id.to_string() };
        let mut b = OperationBuilder::new().operation_id(Some(id)).summary(Some(o.summary)).tag(tag(o.api));
        for name in o.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')) {
            b = b
                .parameter(ParameterBuilder::new().name(name).parameter_in(ParameterIn::Path).required(Required::True));
        }
        let (ok, errors) = match o.api {
            People => (
                "`{\"success\": true, \"result\": …}`",
                "`{\"success\": false, \"code\", \"error\", \"errors\"?}` (spec §1.4)",
            ),
            Passwordless => ("The result (spec §6)", "`{\"code\", \"message\", \"requestId\"}` (spec §1.4)"),
            Streams => {
                ("Switching protocols to a WebSocket", "`{\"code\", \"message\", \"requestId\"}` before the upgrade")
            }
            Service => ("The page, document or figures", "Not found"),
        };
        let status = if o.method == "POST" && o.summary.starts_with("Create") { "201" } else { "200" };
        let status = if o.api == Streams { "101" } else { status };
        b = b
            .response(status, ResponseBuilder::new().description(ok))
            .response("default", ResponseBuilder::new().description(errors));
        b = match o.api {
            People => b
                .security(SecurityRequirement::new("apiKey", Vec::<String>::new()))
                .security(SecurityRequirement::new("bearer", Vec::<String>::new())),
            Passwordless | Streams => b.security(SecurityRequirement::new("bearer", Vec::<String>::new())),
            Service => b,
        };
        if o.id == "X-01" {
            b = b.description(Some("Signed, unauthenticated: `expires` (epoch seconds) and `signature` from P-71."));
        }
        paths = paths.path(o.path, PathItem::new(method(o.method), b.build()));
    }
    let security = ComponentsBuilder::new()
        .security_scheme("apiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))))
        .security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    let base = if base_path.is_empty() { "/" } else { base_path };
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new().title("Rostro").version(env!("CARGO_PKG_VERSION")).description(Some(
                "Real-time biometric edge service: the Passwordless and People APIs, kiosk streams.",
            )),
        )
        .servers(Some([ServerBuilder::new().url(base).build()]))
        .paths(paths)
        .components(Some(security.build()))
        .tags(Some([People, Passwordless, Streams, Service].map(|a| TagBuilder::new().name(tag(a)).build())))
        .build()
}

/// `GET /openapi.json`.
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let text = DOC.get_or_init(|| document(&state.config.server.base_path).to_json().unwrap_or_default());
    HttpResponse::Ok().content_type("application/json").body(text.clone())
}

/// `GET /docs`: Swagger UI over `openapi.json` (relative, so `base_path` holds).
pub async fn docs_page() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(include_str!("../../web/docs.html"))
}

/// `GET /docs/{file}`: the two Swagger UI files, from `server.docs_assets`.
pub async fn docs_asset(state: web::Data<AppState>, file: web::Path<String>) -> HttpResponse {
    let content_type = match file.as_str() {
        "swagger-ui-bundle.js" => "text/javascript; charset=utf-8",
        "swagger-ui.css" => "text/css; charset=utf-8",
        _ => return HttpResponse::NotFound().body("no such file"),
    };
    let path = std::path::Path::new(&state.config.server.docs_assets).join(file.as_str());
    match std::fs::read(&path) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(content_type)
            .insert_header(("Cache-Control", "public, max-age=86400"))
            .body(bytes),
        Err(_) => HttpResponse::NotFound().body(format!("{} is missing: run `make setup`", path.display())),
    }
}
