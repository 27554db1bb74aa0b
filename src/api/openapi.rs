//! The OpenAPI 3.1 document of every route this service serves (`/openapi.json`,
//! built with `utoipa`'s builders from [`crate::routes::OPERATIONS`]) and the
//! browsable page over it (`/docs`, Swagger UI from the npm package
//! `swagger-ui-dist`, fetched and pinned by `make setup`, served from
//! `server.docs_assets`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, Ref, Schema, SchemaFormat, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required, ServerBuilder,
};

use super::fields::{FieldShape, Input, Kind};
use super::people::BodyForm;
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

/// The named schemas the operations refer to, gathered while the document is built.
#[derive(Default)]
pub struct Schemas(BTreeMap<String, RefOr<Schema>>);

impl Schemas {
    /// A reference to `T`'s schema (derived from the type the handler answers with).
    pub fn of<T: utoipa::ToSchema>(&mut self) -> RefOr<Schema> {
        let schema = self.inline::<T>();
        self.0.insert(T::name().into_owned(), schema);
        RefOr::Ref(Ref::from_schema_name(T::name()))
    }

    /// `T`'s schema itself (for generic types such as `Page<T>`, whose name is not unique).
    pub fn inline<T: utoipa::ToSchema>(&mut self) -> RefOr<Schema> {
        let mut nested = Vec::new();
        T::schemas(&mut nested);
        self.0.extend(nested);
        T::schema()
    }
}

/// What an operation answers with on success.
// Built once per operation while the document is made; boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    Json(RefOr<Schema>),
    /// `text/csv` (P-20).
    Csv,
    /// The stored bytes, their sniffed content type.
    Binary,
}

/// An array of `items`.
pub fn array(items: RefOr<Schema>) -> RefOr<Schema> {
    ArrayBuilder::new().items(items).into()
}

/// One of these strings (the literal results of §2, e.g. `"Ok"`).
pub fn literal(texts: &[&str]) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(texts.iter().copied())).into()
}

fn primitive(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

fn field_schema(kind: &Kind) -> RefOr<Schema> {
    let string = || primitive(Type::String);
    let known = |f: KnownFormat| Some(SchemaFormat::KnownFormat(f));
    match kind {
        Kind::String { max } => string().max_length(Some(*max)).into(),
        Kind::Integer => primitive(Type::Integer).into(),
        Kind::Number => primitive(Type::Number).into(),
        Kind::Boolean => primitive(Type::Boolean).into(),
        Kind::Object => primitive(Type::Object).into(),
        Kind::Numbers => array(primitive(Type::Number).into()),
        Kind::Strings => array(string().into()),
        Kind::Objects => array(primitive(Type::Object).into()),
        Kind::OneOf(allowed) => string().enum_values(Some(allowed.iter().cloned())).into(),
        Kind::Date => string().format(known(KnownFormat::Date)).into(),
        Kind::Uuid => string().format(Some(SchemaFormat::Custom("uuid".into()))).into(),
        Kind::File => string().format(known(KnownFormat::Binary)).content_media_type("application/octet-stream").into(),
    }
}

/// The object of the fields under `prefix` (`""`, or `files.*.` for the items of `files`).
fn object_schema(fields: &[FieldShape], prefix: &str) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object));
    for f in fields {
        let Some(name) = f.path.strip_prefix(prefix).filter(|n| !n.contains('.')) else { continue };
        let schema = match f.kind {
            Kind::Objects => array(object_schema(fields, &format!("{}.*.", f.path))),
            _ => field_schema(&f.kind),
        };
        object = object.property(name, schema);
        if f.required {
            object = object.required(name);
        }
    }
    object.into()
}

/// The request body of People operation `op`, read off its handler's own field readers.
fn people_body(op: &str) -> Option<utoipa::openapi::request_body::RequestBody> {
    let mut input = Input::describing();
    let form = super::people::read_body(op, &mut input)?;
    let schema = object_schema(&input.shape().fields, "");
    let content = |s: &RefOr<Schema>| ContentBuilder::new().schema(Some(s.clone())).build();
    let mut body = RequestBodyBuilder::new().required(Some(Required::True));
    if matches!(form, BodyForm::Json | BodyForm::JsonOrForm) {
        body = body.content("application/json", content(&schema));
    }
    if matches!(form, BodyForm::Form | BodyForm::JsonOrForm) {
        body = body.content("multipart/form-data", content(&schema));
    }
    Some(body.build())
}

/// `{"success": true, "result": result}`.
fn envelope(result: RefOr<Schema>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("success", primitive(Type::Boolean).enum_values(Some([true])))
        .required("success")
        .property("result", result)
        .required("result")
        .into()
}

/// The document, with `base_path` as its server.
pub fn document(base_path: &str) -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut schemas = Schemas::default();
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
        let (body, answer) = match o.api {
            People => (people_body(o.id), super::people::answer(o.id, &mut schemas)),
            Passwordless => super::passwordless::documented(o.id, &mut schemas),
            Streams | Service => (None, None),
        };
        let mut response = ResponseBuilder::new().description(ok);
        response = match answer {
            Some(Answer::Json(s)) => response.content(
                "application/json",
                ContentBuilder::new().schema(Some(if o.api == People { envelope(s) } else { s })).build(),
            ),
            Some(Answer::Csv) => {
                response.content("text/csv", ContentBuilder::new().schema(Some(primitive(Type::String))).build())
            }
            Some(Answer::Binary) => response.content(
                "application/octet-stream",
                ContentBuilder::new().schema(Some(field_schema(&Kind::File))).build(),
            ),
            None => response,
        };
        b = b
            .request_body(body)
            .response(status, response)
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
        .schemas_from_iter(schemas.0)
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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn doc() -> Value {
        serde_json::to_value(super::document("/")).expect("document")
    }

    fn op<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
        &doc["paths"][path][method]
    }

    /// The schema `s`, following a `$ref` into the components.
    fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
        match s["$ref"].as_str().and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => &doc["components"]["schemas"][name],
            None => s,
        }
    }

    fn required(s: &Value) -> Vec<&str> {
        s["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn every_api_operation_has_its_body_and_answer_schemas() {
        let doc = doc();
        for o in crate::routes::OPERATIONS {
            if !matches!(o.api, crate::routes::Api::People | crate::routes::Api::Passwordless) {
                continue;
            }
            let m = o.method.to_lowercase();
            let item = op(&doc, o.path, &m);
            let responses = item["responses"].as_object().expect("responses");
            let ok = responses.iter().find(|(k, _)| k.starts_with('2')).map(|(_, v)| v).expect("a 2xx answer");
            let content = ok["content"].as_object().unwrap_or_else(|| panic!("{} {}: no answer schema", o.id, m));
            assert!(content.values().all(|c| c["schema"].is_object()), "{}: {content:?}", o.id);
            if matches!(o.method, "POST" | "PUT" | "PATCH") {
                let body = &item["requestBody"]["content"];
                let schema = body.as_object().and_then(|c| c.values().next()).map(|c| &c["schema"]);
                let schema = schema.unwrap_or_else(|| panic!("{} {}: no request body schema", o.id, m));
                let schema = resolve(&doc, schema);
                assert!(schema["properties"].as_object().is_some_and(|p| !p.is_empty()), "{}: {schema}", o.id);
            }
        }
    }

    #[test]
    fn body_schemas_say_what_the_readers_check() {
        let doc = doc();
        let body = |path: &str, m: &str, ct: &str| op(&doc, path, m)["requestBody"]["content"][ct]["schema"].clone();
        let create = body("/api/v1/people", "post", "application/json");
        assert_eq!(required(&create), ["national_id", "name", "first_lastname", "second_lastname"]);
        let p = &create["properties"];
        assert_eq!(p["gender"]["enum"], serde_json::json!(["MALE", "FEMALE"]));
        assert_eq!(p["people_group_id"]["format"], "uuid");
        assert_eq!(p["birthdate"]["format"], "date");
        assert_eq!(p["national_id"]["maxLength"], 255);
        assert_eq!(p["nationality_id"]["type"], "integer");
        // The update takes the same fields, none required.
        let update = body("/api/v1/people/{id}", "put", "application/json");
        assert!(required(&update).is_empty() && update["properties"]["national_id"].is_object());
        // The items of an array of objects are described from their own reader.
        let tmp = body("/api/v1/files/from-temporary", "post", "multipart/form-data");
        let item = &tmp["properties"]["files"]["items"];
        assert_eq!(required(item), ["model", "model_id", "file_tmp_id"], "{item}");
        // A multipart upload has its file part.
        let upload = body("/api/v1/files", "post", "multipart/form-data");
        assert_eq!(upload["properties"]["file"]["format"], "binary");
        assert_eq!(required(&upload), ["file", "model", "model_id"]);
        // Passwordless bodies come from the types serde reads.
        let enroll = resolve(&doc, &body("/api/v1/passwordless/client/enroll", "post", "application/json")).clone();
        assert!(enroll["properties"]["user"].is_object() && enroll["properties"]["video"].is_object(), "{enroll}");
    }

    #[test]
    fn answers_are_the_types_the_handlers_send_in_their_envelope() {
        let doc = doc();
        let answer = |path: &str, m: &str, status: &str| {
            op(&doc, path, m)["responses"][status]["content"]["application/json"]["schema"].clone()
        };
        let created = answer("/api/v1/people", "post", "201");
        assert_eq!(required(&created), ["success", "result"]);
        let person = resolve(&doc, &created["properties"]["result"]);
        for field in ["id", "national_id", "extra_data", "created_at", "updated_at"] {
            assert!(person["properties"][field].is_object(), "{field} in {person}");
        }
        let page = resolve(&doc, &answer("/api/v1/people", "get", "200")["properties"]["result"]).clone();
        assert!(page["properties"]["next_page_url"].is_object(), "{page}");
        let ok = answer("/api/v1/people/{id}", "delete", "200");
        assert_eq!(ok["properties"]["result"]["enum"], serde_json::json!(["Ok"]));
        let user = resolve(&doc, &answer("/api/v1/passwordless/client/{id}", "get", "200")).clone();
        assert!(user["properties"]["fullName"].is_object() && user["properties"]["images"].is_object(), "{user}");
        let csv = &op(&doc, "/api/v1/people/export", "post")["responses"]["200"]["content"];
        assert!(csv["text/csv"].is_object(), "{csv}");
    }
}
