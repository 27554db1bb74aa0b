//! Addresses (P-35..P-39), person contacts with their SMS and e-mail
//! verification codes (P-44..P-52), and personal references (P-53..P-57).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};

use super::views::{AddressJson, ContactJson, ReferenceJson, said};
use super::{Answer, PeopleApiError, blocking, body, company, ok, page_params, paginator, resource, uuid_path};
use crate::api::fields::{Input, Val};
use crate::app::AppState;
use crate::people::codes::Channel;
use crate::people::{Address, Contact, Entity, Reference};
use crate::util;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/api/v1/addresses").route(web::get().to(addresses)).route(web::post().to(address_create)))
        .service(
            resource("/api/v1/addresses/{id}")
                .route(web::get().to(|s, r, id| get_one::<Address, _>(s, r, id, AddressJson::of)))
                .route(web::put().to(address_update))
                .route(web::patch().to(address_update))
                .route(web::delete().to(delete_one::<Address>)),
        )
        .service(
            resource("/api/v1/person-contacts/sms-code")
                .route(web::post().to(|s, r, p| send_code(s, r, p, Channel::Sms))),
        )
        .service(
            resource("/api/v1/person-contacts/sms-code/verify")
                .route(web::post().to(|s, r, p| verify_code(s, r, p, Channel::Sms))),
        )
        .service(
            resource("/api/v1/person-contacts/email-code")
                .route(web::post().to(|s, r, p| send_code(s, r, p, Channel::Email))),
        )
        .service(
            resource("/api/v1/person-contacts/email-code/verify")
                .route(web::post().to(|s, r, p| verify_code(s, r, p, Channel::Email))),
        )
        .service(
            resource("/api/v1/person-contacts")
                .route(web::get().to(|s, r| list_all::<Contact, _>(s, r, ContactJson::of)))
                .route(web::post().to(contact_create)),
        )
        .service(
            resource("/api/v1/person-contacts/{id}")
                .route(web::get().to(|s, r, id| get_one::<Contact, _>(s, r, id, ContactJson::of)))
                .route(web::put().to(contact_update))
                .route(web::patch().to(contact_update))
                .route(web::delete().to(delete_one::<Contact>)),
        )
        .service(
            resource("/api/v1/person-references")
                .route(web::get().to(|s, r| list_all::<Reference, _>(s, r, ReferenceJson::of)))
                .route(web::post().to(reference_create)),
        )
        .service(
            resource("/api/v1/person-references/{id}")
                .route(web::get().to(|s, r, id| get_one::<Reference, _>(s, r, id, ReferenceJson::of)))
                .route(web::put().to(reference_update))
                .route(web::patch().to(reference_update))
                .route(web::delete().to(delete_one::<Reference>)),
        );
}

/// Plain array lists (PG-A) of every record of the company, oldest first.
async fn list_all<R: Entity + Send + 'static, V: serde::Serialize>(
    state: web::Data<AppState>,
    req: HttpRequest,
    json: fn(&R) -> V,
) -> Answer {
    let c = company(&state, &req)?;
    let all = blocking(&state, move |p| p.list::<R>(&c)).await?;
    Ok(ok(StatusCode::OK, all.iter().map(json).collect::<Vec<_>>()))
}

async fn get_one<R: Entity + Send + 'static, V: serde::Serialize>(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    json: fn(&R) -> V,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, R::NAME)?;
    let r = blocking(&state, move |p| p.get::<R>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, json(&r)))
}

async fn delete_one<R: Entity + Send + 'static>(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, R::NAME)?;
    blocking(&state, move |p| p.delete::<R>(&c, &id)).await?;
    Ok(ok(StatusCode::OK, said::OK))
}

/// Creates `record` (its checks run in the write).
async fn create_one<R: Entity + Send + 'static, V: serde::Serialize>(
    state: &web::Data<AppState>,
    c: String,
    record: R,
    json: fn(&R) -> V,
) -> Answer {
    let r = blocking(state, move |p| p.create(&c, record)).await?;
    Ok(ok(StatusCode::CREATED, json(&r)))
}

/// Updates the record `id` with `edit`.
async fn update_one<R: Entity + Send + 'static, V: serde::Serialize>(
    state: &web::Data<AppState>,
    c: String,
    id: String,
    edit: impl FnOnce(&mut R) + Send + 'static,
    json: fn(&R) -> V,
) -> Answer {
    let r = blocking(state, move |p| {
        p.update::<R>(&c, &id, |r| {
            edit(r);
            Ok(())
        })
    })
    .await?;
    Ok(ok(StatusCode::OK, json(&r)))
}

/// The `person_id` of a new record: required, a UUID (its existence is checked in the write).
fn person_id(input: &mut Input, required: bool) -> Val<String> {
    let v = input.uuid("person_id");
    if required {
        return input.require("person_id", v, String::is_empty).map_or(Val::Absent, Val::Set);
    }
    input.not_null("person_id", v).map_or(Val::Absent, Val::Set)
}

fn set<T>(target: &mut T, v: Val<T>) {
    if let Val::Set(v) = v {
        *target = v;
    }
}

// ---------------------------------------------------------------- addresses

const ADDRESS_REQUIRED: [&str; 7] = ["street", "ext_num", "state", "municipality", "colony", "zip_code", "references"];

pub(super) struct AddressPatch {
    person_id: Val<String>,
    required: Vec<Val<String>>,
    int_num: Val<String>,
    city: Val<String>,
    latitude: Val<f64>,
    longitude: Val<f64>,
    ownership: Val<String>,
    dwelling_age: Val<String>,
    source: Val<String>,
    device_coordinates: Val<Vec<f64>>,
    is_current_address: Val<bool>,
}

pub(super) fn address_patch(input: &mut Input, create: bool) -> AddressPatch {
    let person_id = person_id(input, create);
    let required = ADDRESS_REQUIRED
        .iter()
        .map(|f| {
            let v = input.string(f, 255);
            if create {
                input.require(f, v, String::is_empty).map_or(Val::Absent, Val::Set)
            } else {
                input.not_null(f, v).map_or(Val::Absent, Val::Set)
            }
        })
        .collect();
    let latitude = input.number("latitude");
    if let Val::Set(l) = latitude
        && !(-90.0..=90.0).contains(&l)
    {
        input.error("latitude", "The latitude must be between -90 and 90.");
    }
    let longitude = input.number("longitude");
    if let Val::Set(l) = longitude
        && !(-180.0..=180.0).contains(&l)
    {
        input.error("longitude", "The longitude must be between -180 and 180.");
    }
    AddressPatch {
        person_id,
        required,
        int_num: input.string("int_num", 255),
        city: input.string("city", 255),
        latitude,
        longitude,
        ownership: input.string("ownership", 255),
        dwelling_age: input.string("dwelling_age", 255),
        source: input.string("source", 255),
        device_coordinates: input.numbers("device_coordinates"),
        is_current_address: input.boolean("is_current_address"),
    }
}

impl AddressPatch {
    fn apply(self, a: &mut Address) {
        set(&mut a.person_id, self.person_id);
        let mut required = self.required.into_iter();
        for target in [
            &mut a.street,
            &mut a.ext_num,
            &mut a.state,
            &mut a.municipality,
            &mut a.colony,
            &mut a.zip_code,
            &mut a.references,
        ] {
            set(target, required.next().unwrap_or(Val::Absent));
        }
        self.int_num.apply(&mut a.int_num);
        self.city.apply(&mut a.city);
        self.latitude.apply(&mut a.latitude);
        self.longitude.apply(&mut a.longitude);
        self.ownership.apply(&mut a.ownership);
        self.dwelling_age.apply(&mut a.dwelling_age);
        self.source.apply(&mut a.source);
        self.device_coordinates.apply(&mut a.device_coordinates);
        self.is_current_address.apply(&mut a.is_current_address);
    }
}

async fn addresses(state: web::Data<AppState>, req: HttpRequest) -> Answer {
    let c = company(&state, &req)?;
    let (page, per_page) = page_params(&req)?;
    let (rows, more) = blocking(&state, move |p| p.page::<Address>(&c, page, per_page)).await?;
    Ok(ok(StatusCode::OK, paginator(&req, page, per_page, rows.iter().map(AddressJson::of).collect(), more)))
}

async fn address_create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let (id, patch) = address_create_input(&mut input);
    input.finish().map_err(PeopleApiError::invalid)?;
    let now = util::now_ns();
    let mut a =
        Address { id: id.unwrap_or_else(util::uuid_v4), created_ns: now, updated_ns: now, ..Address::default() };
    patch.apply(&mut a);
    create_one(&state, c, a, AddressJson::of).await
}

/// P-36's body: A-19 lets the client choose the id (a taken one is a field error).
pub(super) fn address_create_input(input: &mut Input) -> (Option<String>, AddressPatch) {
    let id = input.uuid("id").value();
    (id, address_patch(input, true))
}

async fn address_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, Address::NAME)?;
    let mut input = body(&state, &req, payload).await?;
    let patch = address_patch(&mut input, false);
    input.finish().map_err(PeopleApiError::invalid)?;
    update_one(&state, c, id, move |a: &mut Address| patch.apply(a), AddressJson::of).await
}

// ---------------------------------------------------------------- contacts

/// one `@` with something on both sides.
fn email_field(input: &mut Input, required: bool) -> Val<String> {
    let v = input.string("email", 254);
    let v = if required { input.require("email", v, String::is_empty).map_or(Val::Absent, Val::Set) } else { v };
    if let Val::Set(e) = &v {
        let ok = e.split('@').count() == 2
            && e.split('@').all(|part| !part.is_empty())
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            input.error("email", "The email must be a valid email address.");
            return Val::Absent;
        }
    }
    v
}

/// Digits only, 10 to 15 of them, the country code included (§2.1.6).
fn phone_field(input: &mut Input, required: bool) -> Val<String> {
    let v = input.string("phone", 32);
    let v = if required { input.require("phone", v, String::is_empty).map_or(Val::Absent, Val::Set) } else { v };
    if let Val::Set(p) = &v
        && !(p.bytes().all(|b| b.is_ascii_digit()) && (10..=15).contains(&p.len()))
    {
        input.error("phone", "The phone must be 10 to 15 digits, country code included.");
        return Val::Absent;
    }
    v
}

/// P-45 (`create`: all three required) and P-47 (any may change, none be cleared).
pub(super) fn contact_input(input: &mut Input, create: bool) -> (Val<String>, Option<String>, Option<String>) {
    let person_id = person_id(input, create);
    let email = email_field(input, create);
    let email = input.not_null("email", email);
    let phone = phone_field(input, create);
    let phone = input.not_null("phone", phone);
    (person_id, email, phone)
}

async fn contact_create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let (person_id, email, phone) = contact_input(&mut input, true);
    input.finish().map_err(PeopleApiError::invalid)?;
    let now = util::now_ns();
    let contact = Contact {
        id: util::uuid_v4(),
        person_id: person_id.value().unwrap_or_default(),
        email: email.unwrap_or_default(),
        phone: phone.unwrap_or_default(),
        email_confirmation: false,
        sms_confirmation: false,
        created_ns: now,
        updated_ns: now,
    };
    create_one(&state, c, contact, ContactJson::of).await
}

async fn contact_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, Contact::NAME)?;
    let mut input = body(&state, &req, payload).await?;
    let (person_id, email, phone) = contact_input(&mut input, false);
    input.finish().map_err(PeopleApiError::invalid)?;
    let edit = move |k: &mut Contact| {
        set(&mut k.person_id, person_id);
        // A changed address is no longer confirmed (§2.1.6).
        if let Some(e) = email
            && e != k.email
        {
            k.email = e;
            k.email_confirmation = false;
        }
        if let Some(p) = phone
            && p != k.phone
        {
            k.phone = p;
            k.sms_confirmation = false;
        }
    };
    update_one(&state, c, id, edit, ContactJson::of).await
}

/// The person and the phone (e-mail) of a code request.
pub(super) fn code_target(input: &mut Input, channel: Channel) -> (Option<String>, Option<String>) {
    let person = person_id(input, true).value();
    let target = match channel {
        Channel::Sms => phone_field(input, true).value(),
        Channel::Email => email_field(input, true).value(),
    };
    (person, target)
}

/// P-49, P-51: the documented literals "Sms code send" / "Email code send".
async fn send_code(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, channel: Channel) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let (person, target) = code_target(&mut input, channel);
    input.finish().map_err(PeopleApiError::invalid)?;
    let (person, target) = (person.unwrap_or_default(), target.unwrap_or_default());
    blocking(&state, move |p| p.send_code(&c, &person, channel, &target)).await?;
    Ok(ok(StatusCode::OK, if channel == Channel::Sms { said::SMS_CODE_SENT } else { said::EMAIL_CODE_SENT }))
}

/// P-50, P-52's body: the code request's fields and the `code`.
pub(super) fn verify_input(input: &mut Input, channel: Channel) -> (Option<String>, Option<String>, Option<String>) {
    let (person, target) = code_target(input, channel);
    (person, target, input.required_string("code", 16))
}

/// P-50, P-52: "Phone validated" for both (A-18 keeps the documented literal).
async fn verify_code(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload, channel: Channel) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let (person, target, code) = verify_input(&mut input, channel);
    input.finish().map_err(PeopleApiError::invalid)?;
    let (person, target, code) = (person.unwrap_or_default(), target.unwrap_or_default(), code.unwrap_or_default());
    blocking(&state, move |p| p.verify_code(&c, &person, channel, &target, &code)).await?;
    Ok(ok(StatusCode::OK, said::VALIDATED))
}

// ---------------------------------------------------------------- references

pub(super) struct ReferencePatch {
    person_id: Val<String>,
    name: Val<String>,
    phone: Val<String>,
    person_relation_id: Val<i64>,
}

pub(super) fn reference_patch(input: &mut Input, create: bool) -> ReferencePatch {
    let person_id = person_id(input, create);
    let name = input.string("name", 255);
    let phone = input.string("phone", 32);
    let relation = input.int("person_relation_id");
    let (name, phone, relation) = if create {
        (
            input.require("name", name, String::is_empty).map_or(Val::Absent, Val::Set),
            input.require("phone", phone, String::is_empty).map_or(Val::Absent, Val::Set),
            input.require("person_relation_id", relation, |_| false).map_or(Val::Absent, Val::Set),
        )
    } else {
        (
            input.not_null("name", name).map_or(Val::Absent, Val::Set),
            input.not_null("phone", phone).map_or(Val::Absent, Val::Set),
            input.not_null("person_relation_id", relation).map_or(Val::Absent, Val::Set),
        )
    };
    ReferencePatch { person_id, name, phone, person_relation_id: relation }
}

impl ReferencePatch {
    fn apply(self, r: &mut Reference) {
        set(&mut r.person_id, self.person_id);
        set(&mut r.name, self.name);
        set(&mut r.phone, self.phone);
        set(&mut r.person_relation_id, self.person_relation_id);
    }
}

async fn reference_create(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> Answer {
    let c = company(&state, &req)?;
    let mut input = body(&state, &req, payload).await?;
    let patch = reference_patch(&mut input, true);
    input.finish().map_err(PeopleApiError::invalid)?;
    let now = util::now_ns();
    let mut r = Reference { id: util::uuid_v4(), created_ns: now, updated_ns: now, ..Reference::default() };
    patch.apply(&mut r);
    create_one(&state, c, r, ReferenceJson::of).await
}

async fn reference_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
) -> Answer {
    let c = company(&state, &req)?;
    let id = uuid_path(&id, Reference::NAME)?;
    let mut input = body(&state, &req, payload).await?;
    let patch = reference_patch(&mut input, false);
    input.finish().map_err(PeopleApiError::invalid)?;
    update_one(&state, c, id, move |r: &mut Reference| patch.apply(r), ReferenceJson::of).await
}
