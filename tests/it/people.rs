//! The People API (spec §2) over real HTTP on loopback, in this process, on
//! a fresh sled store: every served route, its errors, and tenants.

use serde_json::{Value, json};

use crate::http::{Client, KEY_A, KEY_B, Resp, in_process, request};

/// Asserts the status and the People envelope; returns `result` (or the error body).
fn expect(r: &Resp, status: u16) -> Value {
    let body: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{} not JSON ({e}): {}", r.status, String::from_utf8_lossy(&r.body)));
    assert_eq!(r.status, status, "{body}");
    if status < 400 {
        assert_eq!(body["success"], true, "{body}");
        body["result"].clone()
    } else {
        assert_eq!(body["success"], false, "{body}");
        assert_eq!(body["code"], status, "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
        body
    }
}

/// A 422 whose `errors` name exactly `fields`.
fn expect_fields(r: &Resp, fields: &[&str]) {
    let body = expect(r, 422);
    let mut got: Vec<&str> =
        body["errors"].as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    got.sort_unstable();
    let mut want = fields.to_vec();
    want.sort_unstable();
    assert_eq!(got, want, "{body}");
}

fn person(national_id: &str) -> Value {
    json!({"national_id": national_id, "name": "Juan", "first_lastname": "Perez", "second_lastname": "Suares",
        "birthdate": "1988-02-12T00:00:00.000000Z", "gender": "MALE", "tax_id": null, "nationality_id": 144,
        "state_id": 7, "entity_of_birth": "DF", "external_ref_id": null, "facetec_ref_id": null, "biometrics": null,
        "marital_status_id": null, "people_group_id": null, "extra_data": null})
}

fn is_s0_time(v: &Value) -> bool {
    // 2022-07-29T21:54:22.000000Z
    v.as_str().is_some_and(|t| {
        t.len() == 27 && t.ends_with('Z') && &t[19..20] == "." && rostro::util::parse_datetime(t).is_some()
    })
}

#[test]
fn people_catalogs_groups_lookups_upsert_curp_and_errors() {
    let addr = in_process("people", |_| {});
    let a = Client { addr, key: KEY_A };
    let b = Client { addr, key: KEY_B };

    // Catalogs: arrays; an element is an array of one (A-09); 144 = México; 32 states.
    let n = expect(&a.get("/api/v1/catalogs/nationalities/144"), 200);
    assert_eq!(n[0]["name"], "México", "{n}");
    assert_eq!(expect(&a.get("/api/v1/catalogs/states"), 200).as_array().map(Vec::len), Some(32));
    for path in ["person-relations", "marital-statuses"] {
        let items = expect(&a.get(&format!("/api/v1/catalogs/{path}")), 200);
        assert!(
            items
                .as_array()
                .is_some_and(|v| !v.is_empty() && v.iter().all(|i| i["id"].is_i64() && i["name"].is_string()))
        );
    }
    expect(&a.get("/api/v1/catalogs/states/99"), 404);
    expect(&a.get("/api/v1/catalogs/states/abc"), 404);

    // Auth: missing, unknown, X-API-Key, Bearer; the documented 401 body.
    let r = request(addr, "GET", "/api/v1/people", &[], None);
    assert_eq!(expect(&r, 401)["error"], "Failed authorization");
    expect(&Client { addr, key: "not-a-key-at-all" }.get("/api/v1/people"), 401);
    let r = request(addr, "GET", "/api/v1/catalogs/states/1", &[("X-API-Key", KEY_A)], None);
    assert_eq!(expect(&r, 200)[0]["name"], "Aguascalientes");

    // Groups.
    let g = expect(&a.post("/api/v1/people-groups", &json!({"name": "Deudores", "description": "Con deuda"})), 201);
    let gid = g["id"].as_str().expect("id").to_string();
    assert!(is_s0_time(&g["created_at"]) && is_s0_time(&g["updated_at"]), "{g}");
    expect_fields(&a.post("/api/v1/people-groups", &json!({"name": ""})), &["description", "name"]);
    let g2 = expect(&a.put(&format!("/api/v1/people-groups/{gid}"), &json!({"description": "Deuda pendiente"})), 200);
    assert_eq!((g2["name"].as_str(), g2["description"].as_str()), (Some("Deudores"), Some("Deuda pendiente")));
    assert_eq!(expect(&a.get("/api/v1/people-groups"), 200).as_array().map(Vec::len), Some(1));
    expect(&b.get(&format!("/api/v1/people-groups/{gid}")), 404);
    expect(&a.get("/api/v1/people-groups/not-a-uuid"), 404);

    // Create (the spec sample), read, the shapes.
    let mut sample = person("pesj880212hdfhlx01");
    sample["people_group_id"] = json!(gid);
    let p = expect(&a.post("/api/v1/people", &sample), 201);
    let pid = p["id"].as_str().expect("id").to_string();
    assert_eq!(p["national_id"], "PESJ880212HDFHLX01", "stored upper-case");
    assert_eq!(p["birthdate"], "1988-02-12", "date-time input keeps the date");
    assert_eq!(
        (p["gender"].as_str(), p["nationality_id"].as_i64(), p["people_group_id"].as_str()),
        (Some("MALE"), Some(144), Some(gid.as_str()))
    );
    assert!(p["tax_id"].is_null() && is_s0_time(&p["created_at"]), "{p}");
    assert_eq!(expect(&a.get(&format!("/api/v1/people/{pid}")), 200), p);

    // Validation: required fields, enums, catalogs, group, duplicate national id (all 422 with errors).
    expect_fields(
        &a.post("/api/v1/people", &json!({"name": "X"})),
        &["first_lastname", "national_id", "second_lastname"],
    );
    let mut bad = person("AAAA000000HDFXXX00");
    bad["gender"] = json!("OTHER");
    bad["nationality_id"] = json!(9999);
    bad["marital_status_id"] = json!("x");
    expect_fields(&a.post("/api/v1/people", &bad), &["gender", "marital_status_id"]);
    bad["gender"] = json!("FEMALE");
    bad["marital_status_id"] = json!(1);
    bad["people_group_id"] = json!("6f1f7c2e-1111-4222-8333-444455556666");
    expect_fields(&a.post("/api/v1/people", &bad), &["nationality_id", "people_group_id"]);
    expect_fields(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), &["national_id"]);
    // Another tenant may hold the same national id, and sees nothing of A's.
    let pb = expect(&b.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201);
    expect(&b.get(&format!("/api/v1/people/{pid}")), 404);
    expect(&b.put(&format!("/api/v1/people/{pid}"), &json!({"name": "Hijacked"})), 404);
    expect(&b.delete(&format!("/api/v1/people/{pid}")), 404);

    // Partial PUT and PATCH; null clears; unknown fields ignored.
    let u = expect(&a.put(&format!("/api/v1/people/{pid}"), &json!({"tax_id": "PESJ880212AB1", "whatever": 1})), 200);
    assert_eq!((u["tax_id"].as_str(), u["name"].as_str()), (Some("PESJ880212AB1"), Some("Juan")));
    assert!(u["updated_at"].as_str() > p["updated_at"].as_str(), "{u}");
    let body =
        serde_json::to_vec(&json!({"tax_id": null, "facetec_ref_id": "dev-71266b80", "external_ref_id": "crm-1"}))
            .expect("json");
    let auth = format!("Bearer {KEY_A}");
    let r = request(
        addr,
        "PATCH",
        &format!("/api/v1/people/{pid}"),
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(&body),
    );
    let u = expect(&r, 200);
    assert!(u["tax_id"].is_null() && u["facetec_ref_id"] == "dev-71266b80", "{u}");
    expect_fields(&a.put(&format!("/api/v1/people/{pid}"), &json!({"national_id": null})), &["national_id"]);

    // Lookups: national id (any case), FaceTec id, external id.
    assert_eq!(expect(&a.get("/api/v1/people/national-id/pesj880212hdfhlx01"), 200)["id"], pid.as_str());
    assert_eq!(expect(&a.get("/api/v1/people/facetec-id/dev-71266b80"), 200)["id"], pid.as_str());
    assert_eq!(expect(&a.get("/api/v1/people/external-id/crm-1"), 200)["id"], pid.as_str());
    expect(&a.get("/api/v1/people/external-id/nobody"), 404);
    expect(&b.get("/api/v1/people/facetec-id/dev-71266b80"), 404);

    // Upsert: 200 updating by national id, 201 creating.
    let up = expect(
        &a.post("/api/v1/people/upsert", &json!({"national_id": "PESJ880212HDFHLX01", "name": "Juan Carlos"})),
        200,
    );
    assert_eq!(
        (up["id"].as_str(), up["name"].as_str(), up["first_lastname"].as_str()),
        (Some(pid.as_str()), Some("Juan Carlos"), Some("Perez"))
    );
    let created = expect(&a.post("/api/v1/people/upsert", &json!({"national_id": "NEW0000000XXXXXX00"})), 201);
    assert!(created["name"].is_null());
    expect_fields(&a.post("/api/v1/people/upsert", &json!({"name": "no id"})), &["national_id"]);

    // P-19: the CURP's structure; a wrong check digit or length is a field error; a duplicate too.
    let c = expect(&a.post("/api/v1/people/curp", &json!({"curp": "GODE561231HDFNRD05"})), 201);
    assert_eq!(
        (c["birthdate"].as_str(), c["gender"].as_str(), c["entity_of_birth"].as_str()),
        (Some("1956-12-31"), Some("MALE"), Some("DF"))
    );
    assert_eq!((c["nationality_id"].as_i64(), c["state_id"].as_i64()), (Some(144), Some(9)));
    assert!(c["name"].is_null());
    expect_fields(&a.post("/api/v1/people/curp", &json!({"curp": "GODE561231HDFNRD06"})), &["curp"]);
    expect_fields(&a.post("/api/v1/people/curp", &json!({"curp": "GODE561231"})), &["curp"]);
    expect_fields(&a.post("/api/v1/people/curp", &json!({"curp": "GODE561231HDFNRD05"})), &["national_id"]);

    // P-14: PG-L pages, newest first.
    for i in 0..3 {
        expect(&a.post("/api/v1/people", &person(&format!("PAGE{i:014}"))), 201);
    }
    let page1 = expect(&a.get("/api/v1/people?per_page=2"), 200);
    assert_eq!(page1["current_page"], 1);
    assert_eq!((page1["from"].as_i64(), page1["to"].as_i64(), page1["per_page"].as_i64()), (Some(1), Some(2), Some(2)));
    assert_eq!(page1["data"][0]["national_id"], "PAGE00000000000002", "newest first");
    assert!(page1["prev_page_url"].is_null());
    assert_eq!(page1["next_page_url"], "/api/v1/people?per_page=2&page=2");
    let last = expect(&a.get("/api/v1/people?per_page=2&page=3"), 200);
    assert_eq!((last["data"].as_array().map(Vec::len), last["from"].as_i64()), (Some(2), Some(5)), "6 people in A");
    assert!(last["next_page_url"].is_null());
    let empty = expect(&a.get("/api/v1/people?page=9"), 200);
    assert!(empty["from"].is_null() && empty["to"].is_null() && empty["data"] == json!([]));
    expect_fields(&a.get("/api/v1/people?page=0"), &["page"]);
    expect_fields(&a.get("/api/v1/people?per_page=101"), &["per_page"]);
    assert_eq!(expect(&b.get("/api/v1/people"), 200)["data"].as_array().map(Vec::len), Some(1));

    // Deleting the group detaches its people.
    expect(&a.delete(&format!("/api/v1/people-groups/{gid}")), 200);
    assert!(expect(&a.get(&format!("/api/v1/people/{pid}")), 200)["people_group_id"].is_null());

    // Bad bodies, methods and routes, all in the People envelope.
    let r = request(
        addr,
        "POST",
        "/api/v1/people",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(b"{not json"),
    );
    expect(&r, 422);
    let r = request(
        addr,
        "POST",
        "/api/v1/people",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(b"[1,2]"),
    );
    expect(&r, 422);
    let r = request(
        addr,
        "POST",
        "/api/v1/people",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        Some(b"x=1"),
    );
    expect(&r, 415);
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = request(
        addr,
        "POST",
        "/api/v1/people",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(&big),
    );
    expect(&r, 413);
    expect(&a.delete("/api/v1/people"), 405);
    expect(&a.get("/api/v1/people/nothing/here"), 404);
    expect(&a.get("/api/v1/workflows"), 404);
    let s3 = request(addr, "GET", "/identity/v1/nothing", &[], None);
    assert_eq!(s3.status, 404);
    let s3: Value = serde_json::from_slice(&s3.body).expect("json");
    assert!(s3["errors"][0]["message"].is_string(), "{s3}");
    // After all of that, A's person is as it was.
    let still = expect(&a.get(&format!("/api/v1/people/{pid}")), 200);
    assert_eq!(still["name"], "Juan Carlos");
    assert_eq!(pb["national_id"], "PESJ880212HDFHLX01");

    // Delete.
    expect(&a.delete(&format!("/api/v1/people/{pid}")), 200);
    expect(&a.get(&format!("/api/v1/people/{pid}")), 404);
    expect(&a.delete(&format!("/api/v1/people/{pid}")), 404);
    expect(&a.get("/api/v1/people/national-id/PESJ880212HDFHLX01"), 404);
    expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201);
}

#[test]
fn a_key_without_the_people_api_is_forbidden() {
    let addr = in_process("people-scope", |c| {
        c.auth.keys.extend(rostro::auth::parse_key_list("face-only-key-1:company-a:passwordless").expect("keys"));
    });
    let k = Client { addr, key: "face-only-key-1" };
    expect(&k.get("/api/v1/people"), 403);
    assert_eq!(k.get("/api/v1/passwordless/client").status, 200);
}

#[test]
fn addresses_contacts_codes_references_and_the_cascade() {
    let addr = in_process("people-records", |c| c.people.codes.fixed_code = "006421".into());
    let a = Client { addr, key: KEY_A };
    let b = Client { addr, key: KEY_B };
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();

    // Addresses: the documented sample with a client id; numbers as strings; one current address.
    let sample = json!({"id": "acaef745-b616-4c91-99c4-b8fd2dc8a83c", "person_id": pid, "street": "Marte", "ext_num": "12",
        "int_num": "DEP 8", "state": "DF", "municipality": "IZTACALCO", "colony": "Cristobal Colon", "zip_code": "08016",
        "references": "Al lado de una tienda", "latitude": null, "longitude": "-99.1", "source": null,
        "device_coordinates": null, "is_current_address": true, "city": "Ciudad de Mexico"});
    let ad = expect(&a.post("/api/v1/addresses", &sample), 201);
    assert_eq!(
        (ad["id"].as_str(), ad["zip_code"].as_str(), ad["longitude"].as_f64()),
        (Some("acaef745-b616-4c91-99c4-b8fd2dc8a83c"), Some("08016"), Some(-99.1))
    );
    assert!(ad["latitude"].is_null() && ad["ownership"].is_null() && ad["city"] == "Ciudad de Mexico", "{ad}");
    expect_fields(&a.post("/api/v1/addresses", &sample), &["id"]);
    let mut second = sample.clone();
    second["id"] = json!(null);
    second["street"] = json!("Venus");
    let ad2 = expect(&a.post("/api/v1/addresses", &second), 201);
    assert_eq!(
        expect(&a.get("/api/v1/addresses/acaef745-b616-4c91-99c4-b8fd2dc8a83c"), 200)["is_current_address"],
        false
    );
    expect_fields(
        &a.post("/api/v1/addresses", &json!({"person_id": pid})),
        &["colony", "ext_num", "municipality", "references", "state", "street", "zip_code"],
    );
    let mut orphan = second.clone();
    orphan["person_id"] = json!("6f1f7c2e-1111-4222-8333-444455556666");
    expect_fields(&a.post("/api/v1/addresses", &orphan), &["person_id"]);
    orphan["person_id"] = json!(pid);
    orphan["latitude"] = json!("north");
    expect_fields(&a.post("/api/v1/addresses", &orphan), &["latitude"]);
    let moved = expect(
        &a.put(
            &format!("/api/v1/addresses/{}", ad2["id"].as_str().expect("id")),
            &json!({"int_num": null, "latitude": 19.4}),
        ),
        200,
    );
    assert!(moved["int_num"].is_null() && moved["latitude"] == 19.4 && moved["street"] == "Venus", "{moved}");
    let list = expect(&a.get("/api/v1/addresses?per_page=1"), 200);
    assert_eq!(list["data"][0]["street"], "Venus");
    assert!(list["next_page_url"].is_string());
    expect(&b.get(&format!("/api/v1/addresses/{}", ad2["id"].as_str().expect("id"))), 404);

    // Contacts: the sample e-mail without a TLD is accepted (A-17); confirmations start false.
    let k = expect(
        &a.post(
            "/api/v1/person-contacts",
            &json!({"person_id": pid, "email": "user@example", "phone": "525591038054"}),
        ),
        201,
    );
    let kid = k["id"].as_str().expect("id").to_string();
    assert_eq!((k["email_confirmation"].as_bool(), k["sms_confirmation"].as_bool()), (Some(false), Some(false)));
    expect_fields(
        &a.post("/api/v1/person-contacts", &json!({"person_id": pid, "email": "a@@b", "phone": "12"})),
        &["email", "phone"],
    );
    assert_eq!(expect(&a.get("/api/v1/person-contacts"), 200).as_array().map(Vec::len), Some(1));
    assert_eq!(expect(&b.get("/api/v1/person-contacts"), 200), json!([]));

    // SMS code: send, a wrong code, the right one (single use), the contact confirmed.
    let send = json!({"person_id": pid, "phone": "525591038054"});
    assert_eq!(expect(&a.post("/api/v1/person-contacts/sms-code", &send), 200), "Sms code send");
    let mut wrong = send.clone();
    wrong["code"] = json!("000000");
    assert_eq!(expect(&a.post("/api/v1/person-contacts/sms-code/verify", &wrong), 422)["error"], "Invalid code");
    let mut right = send.clone();
    right["code"] = json!("006421");
    assert_eq!(expect(&a.post("/api/v1/person-contacts/sms-code/verify", &right), 200), "Phone validated");
    expect(&a.post("/api/v1/person-contacts/sms-code/verify", &right), 422);
    let k = expect(&a.get(&format!("/api/v1/person-contacts/{kid}")), 200);
    assert_eq!((k["sms_confirmation"].as_bool(), k["email_confirmation"].as_bool()), (Some(true), Some(false)));
    // Five wrong tries spend a code, even the right one after them.
    expect(&a.post("/api/v1/person-contacts/sms-code", &send), 200);
    for _ in 0..5 {
        expect(&a.post("/api/v1/person-contacts/sms-code/verify", &wrong), 422);
    }
    expect(&a.post("/api/v1/person-contacts/sms-code/verify", &right), 422);
    // Unknown person: 404; another tenant cannot use A's code.
    let mut nobody = send.clone();
    nobody["person_id"] = json!("6f1f7c2e-1111-4222-8333-444455556666");
    expect(&a.post("/api/v1/person-contacts/sms-code", &nobody), 404);
    expect(&b.post("/api/v1/person-contacts/sms-code/verify", &right), 404);
    // E-mail code: "Phone validated" as documented; a changed e-mail is unconfirmed again.
    let email = json!({"person_id": pid, "email": "User@Example"});
    assert_eq!(expect(&a.post("/api/v1/person-contacts/email-code", &email), 200), "Email code send");
    let mut e = email.clone();
    e["code"] = json!("006421");
    assert_eq!(expect(&a.post("/api/v1/person-contacts/email-code/verify", &e), 200), "Phone validated");
    assert_eq!(expect(&a.get(&format!("/api/v1/person-contacts/{kid}")), 200)["email_confirmation"], true);
    let k = expect(&a.put(&format!("/api/v1/person-contacts/{kid}"), &json!({"email": "new@example.com"})), 200);
    assert_eq!((k["email_confirmation"].as_bool(), k["sms_confirmation"].as_bool()), (Some(false), Some(true)));

    // References: catalog-checked relation.
    let r = expect(
        &a.post(
            "/api/v1/person-references",
            &json!({"person_id": pid, "name": "Juan Perez Suares", "phone": "525586128954", "person_relation_id": 1}),
        ),
        201,
    );
    let rid = r["id"].as_str().expect("id").to_string();
    expect_fields(
        &a.post(
            "/api/v1/person-references",
            &json!({"person_id": pid, "name": "X", "phone": "1", "person_relation_id": 999}),
        ),
        &["person_relation_id"],
    );
    expect_fields(
        &a.post("/api/v1/person-references", &json!({})),
        &["name", "person_id", "person_relation_id", "phone"],
    );
    assert_eq!(
        expect(&a.put(&format!("/api/v1/person-references/{rid}"), &json!({"name": "Ana"})), 200)["name"],
        "Ana"
    );
    assert_eq!(expect(&a.get("/api/v1/person-references"), 200).as_array().map(Vec::len), Some(1));
    expect(&a.delete(&format!("/api/v1/person-references/{rid}")), 200);
    expect(&a.get(&format!("/api/v1/person-references/{rid}")), 404);

    // Deleting the person takes addresses and contacts along (A-32).
    expect(
        &a.post(
            "/api/v1/person-references",
            &json!({"person_id": pid, "name": "B", "phone": "525586128954", "person_relation_id": 2}),
        ),
        201,
    );
    expect(&a.delete(&format!("/api/v1/people/{pid}")), 200);
    expect(&a.get(&format!("/api/v1/person-contacts/{kid}")), 404);
    expect(&a.get("/api/v1/addresses/acaef745-b616-4c91-99c4-b8fd2dc8a83c"), 404);
    assert_eq!(expect(&a.get("/api/v1/addresses"), 200)["data"], json!([]));
    assert_eq!(expect(&a.get("/api/v1/person-references"), 200), json!([]));
    assert_eq!(expect(&a.get("/api/v1/person-contacts"), 200), json!([]));
}

#[test]
fn notification_channels_are_checked_per_type() {
    let addr = in_process("people-channels", |_| {});
    let a = Client { addr, key: KEY_A };
    let b = Client { addr, key: KEY_B };
    let slack = json!({"name": "SlackFailValidations", "type": "slack", "active": true,
        "events": ["person_fail_validation", "person_register"], "config": {"webhook_url": "https://hooks.slack.com/services/T0/B0/x"}});
    let ch = expect(&a.post("/api/v1/notification-channels", &slack), 201);
    let id = ch["id"].as_str().expect("id").to_string();
    assert_eq!((ch["type"].as_str(), ch["active"].as_bool()), (Some("slack"), Some(true)));
    assert!(is_s0_time(&ch["created_at"]), "{ch}");
    // A webhook channel gets a signing secret when it brings none.
    let hook = expect(&a.post("/api/v1/notification-channels", &json!({"name": "CRM", "type": "webhook", "active": false,
        "events": ["media_added_to_model"], "config": {"url": "http://10.0.0.2:9000/hook", "headers": {"X-Token": "t"}}})), 201);
    assert!(hook["config"]["secret"].as_str().is_some_and(|s| s.starts_with("whsec_")), "{hook}");
    // Required fields, enums, unique events, config shapes: 422 with the fields named.
    expect_fields(
        &a.post("/api/v1/notification-channels", &json!({})),
        &["active", "config", "events", "name", "type"],
    );
    expect_fields(&a.post("/api/v1/notification-channels", &json!({"name": "x", "type": "fax", "active": true, "events": ["person_register", "person_register"], "config": []})), &["config", "events", "type"]);
    expect_fields(
        &a.post(
            "/api/v1/notification-channels",
            &json!({"name": "x", "type": "email", "active": true, "events": ["nope"], "config": {"recipients": []}}),
        ),
        &["config", "events"],
    );
    expect_fields(&a.post("/api/v1/notification-channels", &json!({"name": "x", "type": "slack", "active": true, "events": [], "config": {"webhook_url": "http://insecure"}})), &["config"]);
    // Update: partial; a type change is checked against the config it will have.
    let up = expect(
        &a.put(
            &format!("/api/v1/notification-channels/{id}"),
            &json!({"active": false, "events": ["updated_data_to_person"]}),
        ),
        200,
    );
    assert_eq!((up["active"].as_bool(), up["events"].clone()), (Some(false), json!(["updated_data_to_person"])));
    expect_fields(&a.put(&format!("/api/v1/notification-channels/{id}"), &json!({"type": "email"})), &["config"]);
    let email = expect(
        &a.put(
            &format!("/api/v1/notification-channels/{id}"),
            &json!({"type": "email", "config": {"recipients": ["ops@acme.mx"]}}),
        ),
        200,
    );
    assert_eq!(email["type"], "email");
    assert_eq!(expect(&a.get("/api/v1/notification-channels"), 200).as_array().map(Vec::len), Some(2));
    assert_eq!(expect(&b.get("/api/v1/notification-channels"), 200), json!([]));
    expect(&b.delete(&format!("/api/v1/notification-channels/{id}")), 404);
    expect(&a.delete(&format!("/api/v1/notification-channels/{id}")), 200);
    expect(&a.get(&format!("/api/v1/notification-channels/{id}")), 404);
}

/// A multipart/form-data body with the given (name, filename, bytes) parts.
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "rostro-test-boundary-7d1f";
    let mut body = Vec::new();
    for (name, filename, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match filename {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[test]
fn export_and_import_csv_round_trip_with_row_errors() {
    let addr = in_process("people-transfer", |_| {});
    let a = Client { addr, key: KEY_A };
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();
    expect(&a.post("/api/v1/addresses", &json!({"person_id": pid, "street": "Marte", "ext_num": "12", "state": "DF",
        "municipality": "IZTACALCO", "colony": "Cristobal Colon", "zip_code": "08016", "references": "Tienda, \"la azul\""})), 201);
    expect(
        &a.post(
            "/api/v1/person-contacts",
            &json!({"person_id": pid, "email": "juan@example.com", "phone": "525591038054"}),
        ),
        201,
    );
    expect(&a.post("/api/v1/people", &person("GODE561231HDFNRD05")), 201);

    // Export: a CSV attachment, header then one row per person, quoting as RFC 4180.
    let auth = format!("Bearer {KEY_A}");
    let r = request(
        addr,
        "POST",
        "/api/v1/people/export",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(b"{}"),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/csv")));
    assert!(r.header("content-disposition").is_some_and(|d| d.contains("people.csv")));
    let csv = String::from_utf8(r.body.clone()).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[0].starts_with("id,national_id,name,")
            && lines[0].ends_with("email,phone,email_confirmation,sms_confirmation"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains("PESJ880212HDFHLX01") && lines[1].contains("08016") && lines[1].contains("juan@example.com"),
        "{}",
        lines[1]
    );
    let excluded = request(
        addr,
        "POST",
        "/api/v1/people/export",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(br#"{"exclude": ["address", "contact"], "start_date": "2000-01-01"}"#),
    );
    let head = String::from_utf8_lossy(&excluded.body).lines().next().map(str::to_string).unwrap_or_default();
    assert!(head.ends_with("created_at,updated_at"), "{head}");
    let none = request(
        addr,
        "POST",
        "/api/v1/people/export",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(br#"{"end_date": "2000-01-01"}"#),
    );
    assert_eq!(String::from_utf8_lossy(&none.body).lines().count(), 1, "only the header before 2000");
    expect_fields(
        &a.post(
            "/api/v1/people/export",
            &json!({"start_date": "2024-02-01", "end_date": "2024-01-01", "exclude": ["jobs"]}),
        ),
        &["end_date", "exclude"],
    );

    // Import: the export itself (upserts, no change of ids), new rows, and bad rows reported by number.
    // (The people columns only: the export without addresses and contacts.)
    let mut file = String::from_utf8(excluded.body.clone()).expect("utf-8");
    file.push_str("x,NEWP000000XXXXXX01,Ana,Lopez,Diaz,1990-05-01,FEMALE,,144,9,DF,,,,,,\n");
    file.push_str("x,BADP000000XXXXXX01,Bad,Row,Here,not-a-date,OTHER,,9999,,,,,,,,\n");
    file.push_str("short,row\n");
    file.push_str("x,,Nameless,No,Id,,,,,,,,,,,,\n");
    let (ct, body) = multipart(&[("file", Some("people.csv"), file.as_bytes())]);
    let r =
        request(addr, "POST", "/api/v1/people/import", &[("Authorization", &auth), ("Content-Type", &ct)], Some(&body));
    let errors = expect(&r, 200);
    let rows: Vec<u64> = errors.as_array().expect("array").iter().map(|e| e["row"].as_u64().expect("row")).collect();
    assert_eq!(rows, [4, 5, 6], "{errors}");
    let bad = errors[0]["error"].as_str().expect("message");
    assert!(bad.contains("birthdate") && bad.contains("gender"), "{bad}");
    assert!(errors[2]["error"].as_str().is_some_and(|e| e.contains("national_id")), "{errors}");
    let ana = expect(&a.get("/api/v1/people/national-id/NEWP000000XXXXXX01"), 200);
    assert_eq!(
        (ana["name"].as_str(), ana["birthdate"].as_str(), ana["state_id"].as_i64()),
        (Some("Ana"), Some("1990-05-01"), Some(9))
    );
    assert_eq!(
        expect(&a.get("/api/v1/people/national-id/PESJ880212HDFHLX01"), 200)["id"],
        pid.as_str(),
        "upserted, same person"
    );
    assert_eq!(expect(&a.get("/api/v1/people"), 200)["data"].as_array().map(Vec::len), Some(3));
    // A catalog id that does not exist is refused in the write, the rest of the chunk lands.
    let (ct, body) = multipart(&[(
        "file",
        Some("p.csv"),
        b"national_id,name,nationality_id\nCATP000000XXXXXX01,Cat,9999\nOKPP000000XXXXXX01,Ok,144\n",
    )]);
    let r =
        request(addr, "POST", "/api/v1/people/import", &[("Authorization", &auth), ("Content-Type", &ct)], Some(&body));
    let errors = expect(&r, 200);
    assert_eq!((errors[0]["row"].as_u64(), errors.as_array().map(Vec::len)), (Some(1), Some(1)), "{errors}");
    expect(&a.get("/api/v1/people/national-id/OKPP000000XXXXXX01"), 200);
    expect(&a.get("/api/v1/people/national-id/CATP000000XXXXXX01"), 404);
    // Neither or both of file and s3_path, s3_path alone, no national_id column, XLSX, not multipart.
    let (ct, body) = multipart(&[("file", Some("a.csv"), b"national_id\nX\n"), ("s3_path", None, b"s3://b/k")]);
    expect_fields(
        &request(
            addr,
            "POST",
            "/api/v1/people/import",
            &[("Authorization", &auth), ("Content-Type", &ct)],
            Some(&body),
        ),
        &["file"],
    );
    let (ct, body) = multipart(&[("comment", None, b"no file here")]);
    expect_fields(
        &request(
            addr,
            "POST",
            "/api/v1/people/import",
            &[("Authorization", &auth), ("Content-Type", &ct)],
            Some(&body),
        ),
        &["file"],
    );
    let (ct, body) = multipart(&[("s3_path", None, b"s3://bucket/people.csv")]);
    expect_fields(
        &request(
            addr,
            "POST",
            "/api/v1/people/import",
            &[("Authorization", &auth), ("Content-Type", &ct)],
            Some(&body),
        ),
        &["s3_path"],
    );
    let (ct, body) = multipart(&[("file", Some("a.csv"), b"name,phone\nAna,1\n")]);
    expect_fields(
        &request(
            addr,
            "POST",
            "/api/v1/people/import",
            &[("Authorization", &auth), ("Content-Type", &ct)],
            Some(&body),
        ),
        &["file"],
    );
    let (ct, body) = multipart(&[("file", Some("a.xlsx"), b"PK\x03\x04 not really a workbook")]);
    expect_fields(
        &request(
            addr,
            "POST",
            "/api/v1/people/import",
            &[("Authorization", &auth), ("Content-Type", &ct)],
            Some(&body),
        ),
        &["file"],
    );
    let r = request(
        addr,
        "POST",
        "/api/v1/people/import",
        &[("Authorization", &auth), ("Content-Type", "application/json")],
        Some(b"{}"),
    );
    expect(&r, 415);
    // Nothing above harmed what was stored.
    assert_eq!(expect(&a.get("/api/v1/people"), 200)["data"].as_array().map(Vec::len), Some(4));
    // A real XLSX: rows numbered below the header as in a CSV.
    let sheet = rostro::people::sheet::write_xlsx(&[
        vec!["national_id".into(), "name".into(), "birthdate".into()],
        vec!["XLSX00000000000001".into(), "Hoja".into(), "1991-03-04".into()],
        vec!["XLSX00000000000002".into(), "Mala".into(), "yesterday".into()],
    ]);
    let (ct, body) = multipart(&[("file", Some("people.xlsx"), &sheet)]);
    let r =
        request(addr, "POST", "/api/v1/people/import", &[("Authorization", &auth), ("Content-Type", &ct)], Some(&body));
    let errors = expect(&r, 200);
    assert_eq!((errors[0]["row"].as_u64(), errors.as_array().map(Vec::len)), (Some(2), Some(1)), "{errors}");
    let hoja = expect(&a.get("/api/v1/people/national-id/XLSX00000000000001"), 200);
    assert_eq!((hoja["name"].as_str(), hoja["birthdate"].as_str()), (Some("Hoja"), Some("1991-03-04")));
}

#[test]
fn files_are_sniffed_sealed_signed_and_cascaded() {
    let tmp = crate::http::temp_dir("people-tmpfiles");
    let tmp_dir = tmp.to_str().expect("utf-8").to_string();
    let addr = in_process("people-files", move |c| c.people.files.temporary_dir = tmp_dir);
    let a = Client { addr, key: KEY_A };
    let b = Client { addr, key: KEY_B };
    let auth = format!("Bearer {KEY_A}");
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();
    let photo = std::fs::read(crate::common::fixture("obama.jpg")).expect("fixture");
    let upload = |parts: &[(&str, Option<&str>, &[u8])]| {
        let (ct, body) = multipart(parts);
        request(addr, "POST", "/api/v1/files", &[("Authorization", &auth), ("Content-Type", &ct)], Some(&body))
    };
    // The part claims text/csv (see `multipart`); the bytes say JPEG.
    let r = upload(&[
        ("file", Some("ine.jpg"), &photo),
        ("model", None, b"person"),
        ("model_id", None, pid.as_bytes()),
        ("collection", None, b"license"),
    ]);
    assert_eq!(expect(&r, 200), "File saved");
    expect(
        &upload(&[
            ("file", Some("note.txt"), b"plain words"),
            ("model", None, b"person"),
            ("model_id", None, pid.as_bytes()),
        ]),
        200,
    );
    let list = expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}")), 200);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(
        (list[0]["mime"].as_str(), list[0]["collection"].as_str(), list[0]["size"].as_u64()),
        (Some("image/jpeg"), Some("license"), Some(photo.len() as u64))
    );
    assert_eq!((list[1]["mime"].as_str(), list[1]["collection"].as_str()), (Some("text/plain"), Some("default")));
    let license = expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}&collection=license")), 200);
    assert_eq!(license.as_array().map(Vec::len), Some(1));
    let uuid = license[0]["uuid"].as_str().expect("uuid").to_string();
    assert_eq!(expect(&b.get(&format!("/api/v1/files?model=person&model_id={pid}")), 200), json!([]));

    // Refused: over 2 MiB, no file, a bad model, a model_id that does not exist.
    let big = vec![7u8; 2 * 1024 * 1024 + 1];
    expect_fields(
        &upload(&[("file", Some("big.bin"), &big), ("model", None, b"person"), ("model_id", None, pid.as_bytes())]),
        &["file"],
    );
    expect_fields(&upload(&[("model", None, b"person"), ("model_id", None, pid.as_bytes())]), &["file"]);
    expect_fields(
        &upload(&[("file", Some("a"), b"x"), ("model", None, b"job"), ("model_id", None, b"nope")]),
        &["model", "model_id"],
    );
    expect_fields(
        &upload(&[("file", Some("a"), b"x"), ("model", None, b"address"), ("model_id", None, pid.as_bytes())]),
        &["model_id"],
    );
    expect_fields(&a.get("/api/v1/files?model=person"), &["model_id"]);

    // P-71 and X-01: the signed URL serves the bytes; a changed signature or expiry is 403.
    let t = expect(&a.get(&format!("/api/v1/files/{uuid}/temporary-url?expires_in_min=2")), 200);
    let url = t["url"].as_str().expect("url");
    assert!(is_s0_time(&t["expires_at"]), "{t}");
    let path = &url[url.find("/api/").expect("path")..];
    let got = request(addr, "GET", path, &[], None);
    assert_eq!(got.status, 200);
    assert_eq!(got.body, photo);
    assert_eq!(got.header("content-type"), Some("image/jpeg"));
    let tampered = path.replace("signature=", "signature=0");
    assert_eq!(request(addr, "GET", &tampered, &[], None).status, 403);
    let (head, expires_rest) = path.split_once("expires=").expect("expires");
    let later = format!("{head}expires=9{expires_rest}");
    assert_eq!(request(addr, "GET", &later, &[], None).status, 403, "a longer life is a changed signature");
    expect_fields(&a.get(&format!("/api/v1/files/{uuid}/temporary-url?expires_in_min=0")), &["expires_in_min"]);
    expect(&b.get(&format!("/api/v1/files/{uuid}/temporary-url")), 404);
    expect(&a.get("/api/v1/files/not-a-uuid/temporary-url"), 404);

    // P-69: from the temporary-file store, now and queued.
    let tmp_id = "0d0f8a62-6c7e-4b35-9d8f-2d1c6f0b9a01";
    std::fs::write(tmp.join(tmp_id), b"%PDF-1.4 a tiny pdf").expect("tmp file");
    let one = json!({"files": [{"file_tmp_id": tmp_id, "model": "person", "model_id": pid, "collection": "docs"}]});
    assert_eq!(expect(&a.post("/api/v1/files/from-temporary", &one), 200), "Files saved");
    let docs = expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}&collection=docs")), 200);
    assert_eq!(docs[0]["mime"], "application/pdf");
    let missing =
        json!({"files": [{"file_tmp_id": "9d0f8a62-6c7e-4b35-9d8f-2d1c6f0b9a09", "model": "person", "model_id": pid}]});
    expect_fields(&a.post("/api/v1/files/from-temporary", &missing), &["files.0.file_tmp_id"]);
    let mut queued = one.clone();
    queued["async"] = json!(true);
    assert_eq!(expect(&a.post("/api/v1/files/from-temporary", &queued), 200), "Files queued");
    let t0 = std::time::Instant::now();
    while expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}&collection=docs")), 200)
        .as_array()
        .map(Vec::len)
        != Some(2)
    {
        assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the queued file was not stored");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    // P-72: the collection must match; then the file and its URL are gone.
    let del = |collection: &str| {
        a.delete(&format!("/api/v1/files?model=person&model_id={pid}&media_uuid={uuid}&collection={collection}"))
    };
    expect(&del("default"), 404);
    assert_eq!(expect(&del("license"), 200), "Ok");
    assert_eq!(request(addr, "GET", path, &[], None).status, 403);
    // Deleting the person takes the rest of their files along.
    expect(&a.delete(&format!("/api/v1/people/{pid}")), 200);
    assert_eq!(expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}")), 200), json!([]));
}

/// Checks a delivery's Standard Webhooks headers against the channel's secret; returns the body.
fn signed_body(hit: &crate::http::Hit, secret: &str) -> Value {
    let id = hit.headers.get("webhook-id").expect("webhook-id");
    let ts: i64 = hit.headers.get("webhook-timestamp").and_then(|t| t.parse().ok()).expect("webhook-timestamp");
    assert!((rostro::util::now_ns() / 1_000_000_000 - ts).abs() < 60, "timestamp {ts}");
    let want = rostro::notify::queue::standard_signature(secret, id, ts, &hit.body);
    let got = hit.headers.get("webhook-signature").expect("webhook-signature");
    assert!(got.split(' ').any(|s| s == want), "signature {got} is not {want}");
    serde_json::from_slice(&hit.body).expect("JSON body")
}

#[test]
fn channel_events_are_queued_signed_retried_and_scoped() {
    let addr = in_process("people-events", |c| c.events.backoff_s = 0.2);
    let a = Client { addr, key: KEY_A };
    let b = Client { addr, key: KEY_B };
    let hooks = crate::http::Hooks::start(&[500]);
    let quiet = crate::http::Hooks::start(&[]);
    let events = json!(["person_register", "updated_data_to_person", "media_added_to_model"]);
    let ch = expect(
        &a.post(
            "/api/v1/notification-channels",
            &json!({"name": "CRM", "type": "webhook", "active": true,
        "events": events, "config": {"url": hooks.url, "headers": {"X-Token": "t0k"}}}),
        ),
        201,
    );
    let secret = ch["config"]["secret"].as_str().expect("secret").to_string();
    // Not delivered: an inactive channel, a channel without the event, another tenant's channel.
    for (client, active, events) in [
        (&a, false, json!(["person_register"])),
        (&a, true, json!(["person_fail_validation"])),
        (&b, true, json!(["person_register"])),
    ] {
        expect(
            &client.post(
                "/api/v1/notification-channels",
                &json!({"name": "Q", "type": "webhook", "active": active,
            "events": events, "config": {"url": quiet.url}}),
            ),
            201,
        );
    }

    let p = expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201);
    let pid = p["id"].as_str().expect("id");
    // The first attempt is answered 500; the retry repeats the same message id.
    let first = hooks.next(std::time::Duration::from_secs(10));
    let second = hooks.next(std::time::Duration::from_secs(10));
    assert_eq!(first.headers.get("webhook-id"), second.headers.get("webhook-id"));
    assert_eq!(first.path, "/hook");
    assert_eq!(second.headers.get("x-token").map(String::as_str), Some("t0k"));
    let body = signed_body(&second, &secret);
    assert_eq!(
        (body["event"].as_str(), body["model"].as_str(), body["model_id"].as_str()),
        (Some("person_register"), Some("person"), Some(pid)),
        "{body}"
    );
    assert_eq!(body["data"]["national_id"], "PESJ880212HDFHLX01", "{body}");
    assert!(is_s0_time(&body["data"]["created_at"]) && body["data"].get("created_ns").is_none(), "{body}");
    assert!(rostro::util::parse_datetime(body["occurred_at"].as_str().unwrap_or("")).is_some(), "{body}");

    // An update, an address of the person, a file: one event each, in order.
    expect(&a.put(&format!("/api/v1/people/{pid}"), &json!({"name": "Juana"})), 200);
    let addr_body = json!({"person_id": pid, "street": "Marte", "ext_num": "12", "int_num": null, "state": "DF",
        "municipality": "IZTACALCO", "colony": "Cristobal Colon", "zip_code": "08016", "references": "Al lado de una tienda", "latitude": null,
        "longitude": null, "source": null, "device_coordinates": null, "is_current_address": true, "city": "Ciudad de Mexico"});
    expect(&a.post("/api/v1/addresses", &addr_body), 201);
    let (ct, form) = multipart(&[
        ("file", Some("x.jpg"), &std::fs::read(crate::common::fixture("obama.jpg")).expect("photo")),
        ("model", None, b"person"),
        ("model_id", None, pid.as_bytes()),
    ]);
    let auth = format!("Bearer {KEY_A}");
    expect(
        &request(addr, "POST", "/api/v1/files", &[("Authorization", &auth), ("Content-Type", &ct)], Some(&form)),
        200,
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let b = signed_body(&hooks.next(std::time::Duration::from_secs(10)), &secret);
        seen.push((b["event"].as_str().unwrap_or("").to_string(), b["model"].as_str().unwrap_or("").to_string()));
    }
    assert_eq!(seen[0], ("updated_data_to_person".into(), "person".into()));
    assert_eq!(seen[1], ("updated_data_to_person".into(), "address".into()));
    assert_eq!(seen[2], ("media_added_to_model".into(), "person".into()));
    assert!(
        quiet.hits.recv_timeout(std::time::Duration::from_millis(800)).is_err(),
        "a channel that should not hear got a delivery"
    );
}

/// A delivery accepted before a kill -9 is sent after the restart.
#[test]
fn queued_deliveries_survive_a_kill() {
    let dir = crate::http::temp_dir("people-queue-kill");
    let config = dir.join("rostro.toml");
    std::fs::write(&config, "[events]\nbackoff_s = 0.2\nattempts = 1000\n").expect("config");
    let data = dir.join("data");
    // A port where nobody listens yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hook_addr = listener.local_addr().expect("addr");
    drop(listener);
    let server = crate::http::Binary::start_with(&data, Some(&config));
    let a = Client { addr: server.addr, key: KEY_A };
    let ch = expect(
        &a.post(
            "/api/v1/notification-channels",
            &json!({"name": "CRM", "type": "webhook", "active": true,
        "events": ["person_register"], "config": {"url": format!("http://{hook_addr}/hook")}}),
        ),
        201,
    );
    let secret = ch["config"]["secret"].as_str().expect("secret").to_string();
    let p = expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201);
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(server); // SIGKILL
    let hooks = crate::http::Hooks::on(std::net::TcpListener::bind(hook_addr).expect("rebind"), &[]);
    let _server = crate::http::Binary::start_with(&data, Some(&config));
    let body = signed_body(&hooks.next(std::time::Duration::from_secs(30)), &secret);
    assert_eq!(
        (body["event"].as_str(), body["model_id"].as_str()),
        (Some("person_register"), p["id"].as_str()),
        "{body}"
    );
    assert!(hooks.hits.recv_timeout(std::time::Duration::from_millis(800)).is_err(), "delivered twice");
}

/// The digits after `lead` in `text`.
fn code_after(text: &str, lead: &str) -> String {
    let at = text.find(lead).unwrap_or_else(|| panic!("no {lead:?} in {text}")) + lead.len();
    text[at..].chars().take_while(char::is_ascii_digit).collect()
}

/// Verification codes by a real SMTP server and an HTTP SMS gateway (retried
/// after a 500), random codes read back from what was sent; an e-mail channel
/// is delivered by SMTP too.
#[test]
fn codes_and_email_channels_go_out_by_smtp_and_sms_by_the_gateway() {
    use std::time::Duration;
    let smtp = crate::http::Smtp::start();
    let gateway = crate::http::Hooks::start(&[500]);
    let (port, url) = (smtp.port, gateway.url.clone());
    let addr = in_process("people-transports", move |c| {
        c.events.mail.transport = "smtp".into();
        c.events.mail.port = port;
        c.events.mail.from = "Rostro <codes@rostro.test>".into();
        c.events.sms.transport = "http".into();
        c.events.sms.url = url;
        c.events.sms.headers.insert("authorization".into(), "Bearer gw-token".into());
        c.events.backoff_s = 0.1;
    });
    let a = Client { addr, key: KEY_A };
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();
    let contact = json!({"person_id": pid, "email": "ana@example.com", "phone": "525546134819"});
    let cid = expect(&a.post("/api/v1/person-contacts", &contact), 201)["id"].as_str().expect("id").to_string();
    let channel = json!({"name": "Ops", "type": "email", "active": true,
        "events": ["person_register", "updated_data_to_person"], "config": {"recipients": ["ops@example.com"]}});
    expect(&a.post("/api/v1/notification-channels", &channel), 201);

    let send = json!({"person_id": pid, "email": "Ana@Example.com"});
    assert_eq!(expect(&a.post("/api/v1/person-contacts/email-code", &send), 200), "Email code send");
    let mail = smtp.message_with("To: ana@example.com", Duration::from_secs(20));
    assert!(
        mail.contains("From: Rostro <codes@rostro.test>") && mail.contains("Subject: Your verification code"),
        "{mail}"
    );
    let code = code_after(&mail, "Your verification code is ");
    assert_eq!(code.len(), 6, "{mail}");
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let verify = |code: &str| json!({"person_id": pid, "email": "ana@example.com", "code": code});
    expect(&a.post("/api/v1/person-contacts/email-code/verify", &verify(wrong)), 422);
    assert_eq!(expect(&a.post("/api/v1/person-contacts/email-code/verify", &verify(&code)), 200), "Phone validated");
    assert_eq!(expect(&a.get(&format!("/api/v1/person-contacts/{cid}")), 200)["email_confirmation"], true);
    // The confirmation is a change of the contact: the e-mail channel hears it.
    let mail = smtp.message_with("\"email_confirmation\": true", Duration::from_secs(20));
    assert!(mail.contains("Subject: Rostro: updated_data_to_person") && mail.contains(&cid), "{mail}");

    let send = json!({"person_id": pid, "phone": "525546134819"});
    assert_eq!(expect(&a.post("/api/v1/person-contacts/sms-code", &send), 200), "Sms code send");
    let refused = gateway.next(Duration::from_secs(10));
    let retried = gateway.next(Duration::from_secs(10));
    assert_eq!(refused.body, retried.body, "the retry repeats the message");
    assert_eq!(retried.headers.get("authorization").map(String::as_str), Some("Bearer gw-token"));
    let sms: Value = serde_json::from_slice(&retried.body).expect("JSON");
    assert_eq!(sms["to"], "525546134819", "{sms}");
    let code = code_after(sms["message"].as_str().expect("message"), "Your verification code is ");
    let verify = json!({"person_id": pid, "phone": "525546134819", "code": code});
    assert_eq!(expect(&a.post("/api/v1/person-contacts/sms-code/verify", &verify), 200), "Phone validated");
    assert_eq!(expect(&a.get(&format!("/api/v1/person-contacts/{cid}")), 200)["sms_confirmation"], true);

    let p = expect(&a.post("/api/v1/people", &person("GOMA900101MDFMRN02")), 201);
    let mail = smtp.message_with("Subject: Rostro: person_register", Duration::from_secs(20));
    assert!(mail.contains("To: ops@example.com") && mail.contains(p["id"].as_str().expect("id")), "{mail}");
}

/// P-68 over a real loopback file server: JSON and multipart, bytes sniffed,
/// and every failure (404, too big, too slow, not a URL) a 422 naming the URL
/// with nothing stored.
#[test]
fn files_from_urls_are_fetched_within_limits_or_not_at_all() {
    use crate::http::{Served, serve_files};
    use std::time::Duration;
    let photo = std::fs::read(crate::common::fixture("obama.jpg")).expect("fixture");
    let png = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(4, 4).write_to(&mut out, image::ImageFormat::Png).expect("png");
        out.into_inner()
    };
    let ok = |body: Vec<u8>| Served { status: 200, body, delay: Duration::ZERO };
    let base = serve_files(vec![
        ("/ine/front.jpg", ok(photo.clone())),
        ("/proof.png", ok(png)),
        ("/big.bin", ok(vec![1u8; 2 * 1024 * 1024 + 1])),
        ("/slow.jpg", Served { status: 200, body: photo.clone(), delay: Duration::from_secs(3) }),
        ("/empty", ok(Vec::new())),
    ]);
    let addr = in_process("people-from-urls", |c| {
        c.people.files.allow_private_urls = true;
        c.people.files.fetch_timeout_s = 1.0;
    });
    let a = Client { addr, key: KEY_A };
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();
    let count = || expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}")), 200);
    let body = |urls: Vec<String>| json!({"files": urls, "model": "person", "model_id": pid, "collection": "ine"});

    let two = vec![format!("{base}/ine/front.jpg?v=2"), format!("{base}/proof.png")];
    assert_eq!(expect(&a.post("/api/v1/files/from-urls", &body(two)), 200), "Files saved");
    let list = count();
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(
        (list[0]["mime"].as_str(), list[0]["size"].as_u64(), list[0]["name"].as_str()),
        (Some("image/jpeg"), Some(photo.len() as u64), Some("front.jpg")),
        "{list}"
    );
    assert_eq!((list[1]["mime"].as_str(), list[1]["collection"].as_str()), (Some("image/png"), Some("ine")));

    // Multipart: one part per URL.
    let url = format!("{base}/proof.png");
    let (ct, form) = multipart(&[
        ("files[]", None, url.as_bytes()),
        ("files[]", None, url.as_bytes()),
        ("model", None, b"person"),
        ("model_id", None, pid.as_bytes()),
    ]);
    let auth = format!("Bearer {KEY_A}");
    let r = request(
        addr,
        "POST",
        "/api/v1/files/from-urls",
        &[("Authorization", &auth), ("Content-Type", &ct)],
        Some(&form),
    );
    assert_eq!(expect(&r, 200), "Files saved");
    assert_eq!(count().as_array().map(Vec::len), Some(4));

    // Each failure names its URL; the good URL before it is not stored either.
    for (path, why) in [
        ("/missing.jpg", "HTTP 404"),
        ("/big.bin", "larger than"),
        ("/slow.jpg", "within 1 s"),
        ("/empty", "empty file"),
    ] {
        let urls = vec![format!("{base}/proof.png"), format!("{base}{path}")];
        let r = expect(&a.post("/api/v1/files/from-urls", &body(urls)), 422);
        let message = r["errors"]["files.1"][0].as_str().unwrap_or_default();
        assert!(message.contains(&format!("{base}{path}")) && message.contains(why), "{path}: {r}");
    }
    assert_eq!(count().as_array().map(Vec::len), Some(4), "a refused request stored nothing");
    expect_fields(&a.post("/api/v1/files/from-urls", &body(vec![])), &["files"]);
    expect_fields(&a.post("/api/v1/files/from-urls", &body(vec!["file:///etc/passwd".into()])), &["files.0"]);
    let mut orphan = body(vec![format!("{base}/proof.png")]);
    orphan["model_id"] = json!("6f1f7c2e-1111-4222-8333-444455556666");
    expect_fields(&a.post("/api/v1/files/from-urls", &orphan), &["model_id"]);
}

/// By default P-68 does not reach this box or its network: a loopback URL
/// (here a live file server) is refused before anything is asked of it.
#[test]
fn files_from_urls_refuse_loopback_by_default() {
    let base = crate::http::serve_files(vec![(
        "/ok.txt",
        crate::http::Served { status: 200, body: b"words".to_vec(), delay: std::time::Duration::ZERO },
    )]);
    let addr = in_process("people-from-urls-default", |_| {});
    let a = Client { addr, key: KEY_A };
    let pid =
        expect(&a.post("/api/v1/people", &person("PESJ880212HDFHLX01")), 201)["id"].as_str().expect("id").to_string();
    let r = expect(
        &a.post(
            "/api/v1/files/from-urls",
            &json!({"files": [format!("{base}/ok.txt")], "model": "person", "model_id": pid}),
        ),
        422,
    );
    assert!(r["errors"]["files.0"][0].as_str().is_some_and(|m| m.contains("not a public address")), "{r}");
    assert_eq!(expect(&a.get(&format!("/api/v1/files?model=person&model_id={pid}")), 200), json!([]));
}
