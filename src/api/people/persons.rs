//! Catalogs (P-01..P-08), people groups (P-09..P-13) and people
//! (P-14..P-25): create, read, partial update (PUT or PATCH), delete with
//! cascade, lookups by national, FaceTec and external id, upsert, and a
//! person from a CURP.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde_json::Value;

use super::views::{CatalogJson, GroupJson, PersonJson, said};
use super::{Answer, PeopleApiError, blocking, body, company, ok, page_params, paginator, resource, uuid_path};
use crate::api::fields::{Input, Val};
use crate::app::AppState;
use crate::people::{Catalog, PeopleGroup, Person, curp, field_error};
use crate::util;

pub fn routes(cfg: &mut web::ServiceConfig) {
    for (path, catalog) in [
        ("/api/v1/catalogs/person-relations", Catalog::PersonRelations),
        ("/api/v1/catalogs/marital-statuses", Catalog::MaritalStatuses),
        ("/api/v1/catalogs/nationalities", Catalog::Nationalities),
        ("/api/v1/catalogs/states", Catalog::States),
    ] {
        cfg.service(resource(path).route(web::get().to(move |s, r| catalog_list(s, r, catalog))));
        cfg.service(
            resource(&format!("{path}/{{id}}")).route(web::get().to(move |s, r, id| catalog_item(s, r, id, catalog))),
        );
    }
    cfg.service(resource("/api/v1/people-groups").route(web::get().to(groups)).route(web::post().to(group_create)))
        .service(
            resource("/api/v1/people-groups/{id}")
                .route(web::get().to(group_get))
                .route(web::put().to(group_update))
                .route(web::patch().to(group_update))
                .route(web::delete().to(group_delete)),
        )
        // Static segments before `{id}`.
        .service(resource("/api/v1/people/curp").route(web::post().to(from_curp)))
        .service(resource("/api/v1/people/upsert").route(web::post().to(upsert)))
        .service(resource("/api/v1/people/national-id/{national_id}").route(web::get().to(by_national_id)))
        .service(
            resource("/api/v1/people/facetec-id/{facetec_id}")
                .route(web::get().to(|s, r, v| by_reference(s, r, v, "facetec_ref_id"))),
        )
        .service(
            resource("/api/v1/people/external-id/{external_id}")
                .route(web::get().to(|s, r, v| by_reference(s, r, v, "external_ref_id"))),
        )
        .service(resource("/api/v1/people").route(web::get().to(list)).route(web::post().to(create)))
        .service(
            resource("/api/v1/people/{id}")
                .route(web::get().to(get))
                .route(web::put().to(update))
                .route(web::patch().to(update))
                .route(web::delete().to(delete)),
        );
}

async fn catalog_list(state: web::Data<AppState>, req: HttpRequest, catalog: Catalog) -> Answer {
    company(&state, &req)?;
    Ok(ok(StatusCode::OK, state.people.catalogs.items(catalog).iter().map(CatalogJson::of).collect::<Vec<_>>()))
}

/// P-02/04/06/08: `result` is an array of the one item.
async fn catalog_item(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>, catalog: Catalog) -> Answer {
    company(&state, &req)?;
    let item = id.parse::<i64>().ok().and_then(|id| state.people.catalogs.get(catalog, id));
    let item = item.ok_or_else(|| PeopleApiError::new(StatusCode::NOT_FOUND, "Catalog item not found"))?;
    Ok(ok(StatusCode::OK, [CatalogJson::of(item)]))
}

async fn groups(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let all = blocking(&state, move |p| p.list::<PeopleGroup>(&c)).await?;
    Ok(ok(StatusCode::OK, all.iter().map(GroupJson::of).collect::<Vec<_>>()))
}

async fn group_create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let (name, description) = group_input(&mut input, true);
    input.finish().map_err(PeopleApiError::invalid)?;
    let now = util::now_ns();
    let group = PeopleGroup {
        id: util::uuid_v4(),
        name: name.unwrap_or_default(),
        description: description.unwrap_or_default(),
        created_ns: now,
        updated_ns: now,
    };
    let group = blocking(&state, move |p| p.create(&c, group)).await?;
    Ok(ok(StatusCode::CREATED, GroupJson::of(&group)))
}

/// P-10 (`create`: both required) and P-12 (either may change, neither be cleared).
pub(super) fn group_input(input: &mut Input, create: bool) -> (Option<String>, Option<String>) {
    if create {
        return (input.required_string("name", 255), input.required_string("description", 65_535));
    }
    let name = input.string("name", 255);
    let name = input.not_null("name", name);
    let description = input.string("description", 65_535);
    let description = input.not_null("description", description);
    if name.as_ref().is_some_and(String::is_empty) {
        input.error("name", "The name field is required.");
    }
    (name, description)
}

async fn group_get(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "People group")?;
    let g = blocking(&state, move |p| p.get::<PeopleGroup>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, GroupJson::of(&g)))
}

async fn group_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "People group")?;
    let mut input = body(&state, &req, payload).await?;
    let (name, description) = group_input(&mut input, false);
    input.finish().map_err(PeopleApiError::invalid)?;
    let g = blocking(&state, move |p| {
        p.update::<PeopleGroup>(&c, &id, |g| {
            if let Some(n) = name {
                g.name = n;
            }
            if let Some(d) = description {
                g.description = d;
            }
            Ok(())
        })
    })
    .await?;
    Ok(ok(StatusCode::OK, GroupJson::of(&g)))
}

async fn group_delete(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "People group")?;
    blocking(&state, move |p| p.delete::<PeopleGroup>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, said::OK))
}

/// Which PersonInput column applies (§2.1.1): what is required.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
    Upsert,
}

/// The PersonInput fields as sent.
pub struct PersonPatch {
    national_id: Val<String>,
    name: Val<String>,
    first_lastname: Val<String>,
    second_lastname: Val<String>,
    birthdate: Val<String>,
    gender: Val<String>,
    tax_id: Val<String>,
    nationality_id: Val<i64>,
    state_id: Val<i64>,
    entity_of_birth: Val<String>,
    external_ref_id: Val<String>,
    facetec_ref_id: Val<String>,
    biometrics: Val<Value>,
    marital_status_id: Val<i64>,
    people_group_id: Val<String>,
    extra_data: Val<Value>,
}

/// Reads PersonInput; required fields per `mode` are marked in `input.errors`.
pub fn person_patch(input: &mut Input, mode: Mode) -> PersonPatch {
    let national_id = input.string("national_id", 255).map(|s| s.to_uppercase());
    let national_id = match mode {
        Mode::Create | Mode::Upsert => {
            input.require("national_id", national_id, String::is_empty).map_or(Val::Absent, Val::Set)
        }
        Mode::Update => match input.not_null("national_id", national_id) {
            Some(n) if n.is_empty() => {
                input.error("national_id", "The national_id field is required.");
                Val::Absent
            }
            Some(n) => Val::Set(n),
            None => Val::Absent,
        },
    };
    let mut names = Vec::new();
    for field in ["name", "first_lastname", "second_lastname"] {
        let v = input.string(field, 255);
        names.push(if mode == Mode::Create {
            input.require(field, v, String::is_empty).map_or(Val::Absent, Val::Set)
        } else {
            v
        });
    }
    let [name, first_lastname, second_lastname]: [Val<String>; 3] = names.try_into().unwrap_or_else(|_| unreachable!());
    let people_group_id = input.uuid("people_group_id");
    PersonPatch {
        national_id,
        name,
        first_lastname,
        second_lastname,
        birthdate: input.date("birthdate"),
        gender: input.one_of("gender", &["MALE", "FEMALE"]),
        tax_id: input.string("tax_id", 255),
        nationality_id: input.int("nationality_id"),
        state_id: input.int("state_id"),
        entity_of_birth: input.string("entity_of_birth", 255),
        external_ref_id: input.string("external_ref_id", 255),
        facetec_ref_id: input.string("facetec_ref_id", 255),
        biometrics: input.object("biometrics"),
        marital_status_id: input.int("marital_status_id"),
        people_group_id,
        extra_data: input.object("extra_data"),
    }
}

impl PersonPatch {
    pub fn national_id(&self) -> &Val<String> {
        &self.national_id
    }

    /// Applies the fields sent onto `p` (absent: unchanged; `null`: cleared).
    pub fn apply(self, p: &mut Person) {
        if let Val::Set(n) = self.national_id {
            p.national_id = n;
        }
        self.name.apply(&mut p.name);
        self.first_lastname.apply(&mut p.first_lastname);
        self.second_lastname.apply(&mut p.second_lastname);
        self.birthdate.apply(&mut p.birthdate);
        self.gender.apply(&mut p.gender);
        self.tax_id.apply(&mut p.tax_id);
        self.nationality_id.apply(&mut p.nationality_id);
        self.state_id.apply(&mut p.state_id);
        self.entity_of_birth.apply(&mut p.entity_of_birth);
        self.external_ref_id.apply(&mut p.external_ref_id);
        self.facetec_ref_id.apply(&mut p.facetec_ref_id);
        self.biometrics.apply(&mut p.biometrics);
        self.marital_status_id.apply(&mut p.marital_status_id);
        self.people_group_id.apply(&mut p.people_group_id);
        self.extra_data.apply(&mut p.extra_data);
    }

    /// A new person with these fields.
    pub fn into_new(self) -> Person {
        let now = util::now_ns();
        let mut p = Person { id: util::uuid_v4(), created_ns: now, updated_ns: now, ..Person::default() };
        self.apply(&mut p);
        p
    }
}

async fn list(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let (page, per_page) = page_params(&req)?;
    let (rows, more) = blocking(&state, move |p| p.page::<Person>(&c, page, per_page)).await?;
    Ok(ok(StatusCode::OK, paginator(&req, page, per_page, rows.iter().map(PersonJson::of).collect(), more)))
}

async fn create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let patch = person_patch(&mut input, Mode::Create);
    input.finish().map_err(PeopleApiError::invalid)?;
    let person = blocking(&state, move |p| p.create(&c, patch.into_new())).await?;
    Ok(ok(StatusCode::CREATED, PersonJson::of(&person)))
}

async fn get(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "Person")?;
    let person = blocking(&state, move |p| p.get::<Person>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, PersonJson::of(&person)))
}

async fn update(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "Person")?;
    let mut input = body(&state, &req, payload).await?;
    let patch = person_patch(&mut input, Mode::Update);
    input.finish().map_err(PeopleApiError::invalid)?;
    let person = blocking(&state, move |p| {
        p.update::<Person>(&c, &id, |person| {
            patch.apply(person);
            Ok(())
        })
    })
    .await?;
    Ok(ok(StatusCode::OK, PersonJson::of(&person)))
}

async fn delete(state: web::Data<AppState>, req: HttpRequest, id: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, "Person")?;
    blocking(&state, move |p| p.delete::<Person>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, said::OK))
}

/// P-19's body: `curp`.
pub(super) fn curp_input(input: &mut Input) -> Option<String> {
    input.required_string("curp", 255)
}

/// P-19: a person from the structure of a CURP; names stay null.
async fn from_curp(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let text = curp_input(&mut input);
    input.finish().map_err(PeopleApiError::invalid)?;
    let parsed = curp::parse(&text.unwrap_or_default())
        .map_err(|e| PeopleApiError::from(field_error("curp", format!("The curp {e}."))))?;
    let now = util::now_ns();
    let person = Person {
        id: util::uuid_v4(),
        national_id: parsed.text.clone(),
        birthdate: parsed.birthdate.clone(),
        gender: parsed.gender.map(str::to_string),
        entity_of_birth: Some(parsed.state_code.clone()),
        state_id: state.people.catalogs.state_by_code(&parsed.state_code),
        nationality_id: (parsed.state_code != "NE").then_some(144),
        created_ns: now,
        updated_ns: now,
        ..Person::default()
    };
    let person = blocking(&state, move |p| p.create(&c, person)).await?;
    Ok(ok(StatusCode::CREATED, PersonJson::of(&person)))
}

async fn by_national_id(state: web::Data<AppState>, req: HttpRequest, value: web::Path<String>) -> Answer {
    let c = company(&state, &req)?;
    let value = value.into_inner();
    let person = blocking(&state, move |p| p.by_national_id(&c, &value)).await?;
    Ok(ok(StatusCode::OK, PersonJson::of(&person)))
}

async fn by_reference(
    state: web::Data<AppState>,
    req: HttpRequest,
    value: web::Path<String>,
    index: &'static str,
) -> Answer {
    let c = company(&state, &req)?;
    let value = value.into_inner();
    let person = blocking(&state, move |p| p.by_reference(&c, index, &value)).await?;
    Ok(ok(StatusCode::OK, PersonJson::of(&person)))
}

/// P-25: 201 when created, 200 when updated.
async fn upsert(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let patch = person_patch(&mut input, Mode::Upsert);
    input.finish().map_err(PeopleApiError::invalid)?;
    let national_id = match &patch.national_id {
        Val::Set(n) => n.clone(),
        _ => String::new(),
    };
    let (person, created) = blocking(&state, move |p| {
        p.upsert(&c, &national_id, |existing| match existing {
            Some(mut person) => {
                patch.apply(&mut person);
                person
            }
            None => patch.into_new(),
        })
    })
    .await?;
    Ok(ok(if created { StatusCode::CREATED } else { StatusCode::OK }, PersonJson::of(&person)))
}
