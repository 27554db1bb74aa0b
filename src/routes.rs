//! The list of every route this service serves, by the ids of the spec's
//! tables (API.md): the OpenAPI document (`api/openapi.rs`) is built from it,
//! and every registration site in `api/` and `stream/` passes its path
//! through [`documented`], so a route registered without an entry here stops
//! every debug build at start (every test), and the test
//! `api::openapi_lists_every_route_served` probes each entry over HTTP.

/// Which API a route belongs to (its tag, envelope and auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    People,
    Passwordless,
    /// Kiosk streams and the access-event feed (WebSocket; the Passwordless key).
    Streams,
    /// Health, metrics, pages and these docs: no key.
    Service,
}

/// One documented operation: the spec's id (§ tables of API.md), method, path, summary.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    pub id: &'static str,
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub api: Api,
}

const fn op(id: &'static str, method: &'static str, path: &'static str, summary: &'static str, api: Api) -> Operation {
    Operation { id, method, path, summary, api }
}

use Api::{Passwordless, People, Service, Streams};

/// Every route served, in the order of the spec's tables.
pub const OPERATIONS: &[Operation] = &[
    op("P-01", "GET", "/api/v1/catalogs/person-relations", "Person-relations catalog", People),
    op("P-02", "GET", "/api/v1/catalogs/person-relations/{id}", "Person-relations catalog element", People),
    op("P-03", "GET", "/api/v1/catalogs/marital-statuses", "Marital-status catalog", People),
    op("P-04", "GET", "/api/v1/catalogs/marital-statuses/{id}", "Marital-status catalog element", People),
    op("P-05", "GET", "/api/v1/catalogs/nationalities", "Nationalities catalog", People),
    op("P-06", "GET", "/api/v1/catalogs/nationalities/{id}", "Nationalities catalog element", People),
    op("P-07", "GET", "/api/v1/catalogs/states", "(Mexican) states catalog", People),
    op("P-08", "GET", "/api/v1/catalogs/states/{id}", "States catalog element", People),
    op("P-09", "GET", "/api/v1/people-groups", "List people groups", People),
    op("P-10", "POST", "/api/v1/people-groups", "Create people group", People),
    op("P-11", "GET", "/api/v1/people-groups/{id}", "Get people group", People),
    op("P-12", "PUT", "/api/v1/people-groups/{id}", "Update people group", People),
    op("P-12", "PATCH", "/api/v1/people-groups/{id}", "Update people group (PATCH alias of PUT, §1.8)", People),
    op("P-13", "DELETE", "/api/v1/people-groups/{id}", "Delete people group", People),
    op("P-14", "GET", "/api/v1/people", "List people (paged)", People),
    op("P-15", "POST", "/api/v1/people", "Create person", People),
    op("P-16", "GET", "/api/v1/people/{id}", "Get person by id", People),
    op("P-17", "PUT", "/api/v1/people/{id}", "Update person by id", People),
    op("P-17", "PATCH", "/api/v1/people/{id}", "Update person by id (PATCH alias of PUT, §1.8)", People),
    op("P-18", "DELETE", "/api/v1/people/{id}", "Delete person", People),
    op("P-19", "POST", "/api/v1/people/curp", "Create person from CURP", People),
    op("P-20", "POST", "/api/v1/people/export", "Download people as CSV", People),
    op("P-21", "POST", "/api/v1/people/import", "Import people from CSV/XLSX", People),
    op("P-22", "GET", "/api/v1/people/national-id/{national_id}", "Get person by national id (CURP)", People),
    op("P-23", "GET", "/api/v1/people/facetec-id/{facetec_id}", "Get person by FaceTec id", People),
    op("P-24", "GET", "/api/v1/people/external-id/{external_id}", "Get person by external id", People),
    op("P-25", "POST", "/api/v1/people/upsert", "Create or update person by national id", People),
    op("P-35", "GET", "/api/v1/addresses", "List addresses", People),
    op("P-36", "POST", "/api/v1/addresses", "Create address", People),
    op("P-37", "GET", "/api/v1/addresses/{id}", "Get address", People),
    op("P-38", "PUT", "/api/v1/addresses/{id}", "Update address", People),
    op("P-38", "PATCH", "/api/v1/addresses/{id}", "Update address (PATCH alias of PUT, §1.8)", People),
    op("P-39", "DELETE", "/api/v1/addresses/{id}", "Delete address", People),
    op("P-44", "GET", "/api/v1/person-contacts", "List contact info of all people", People),
    op("P-45", "POST", "/api/v1/person-contacts", "Create contact info for a person", People),
    op("P-46", "GET", "/api/v1/person-contacts/{id}", "Get contact info", People),
    op("P-47", "PUT", "/api/v1/person-contacts/{id}", "Update contact info", People),
    op("P-47", "PATCH", "/api/v1/person-contacts/{id}", "Update contact info (PATCH alias of PUT, §1.8)", People),
    op("P-48", "DELETE", "/api/v1/person-contacts/{id}", "Delete contact info", People),
    op("P-49", "POST", "/api/v1/person-contacts/sms-code", "Send SMS verification code", People),
    op("P-50", "POST", "/api/v1/person-contacts/sms-code/verify", "Validate SMS verification code", People),
    op("P-51", "POST", "/api/v1/person-contacts/email-code", "Send e-mail verification code", People),
    op("P-52", "POST", "/api/v1/person-contacts/email-code/verify", "Validate e-mail verification code", People),
    op("P-53", "GET", "/api/v1/person-references", "List personal references", People),
    op("P-54", "POST", "/api/v1/person-references", "Create personal reference", People),
    op("P-55", "GET", "/api/v1/person-references/{id}", "Get personal reference", People),
    op("P-56", "PUT", "/api/v1/person-references/{id}", "Update personal reference", People),
    op(
        "P-56",
        "PATCH",
        "/api/v1/person-references/{id}",
        "Update personal reference (PATCH alias of PUT, §1.8)",
        People,
    ),
    op("P-57", "DELETE", "/api/v1/person-references/{id}", "Delete personal reference", People),
    op("P-67", "POST", "/api/v1/files", "Save an uploaded file on a model", People),
    op("P-68", "POST", "/api/v1/files/from-urls", "Save files from URLs on a model", People),
    op("P-69", "POST", "/api/v1/files/from-temporary", "Save files from the temporary-files API on a model", People),
    op("P-70", "GET", "/api/v1/files", "List files of a model", People),
    op("P-71", "GET", "/api/v1/files/{id}/temporary-url", "Get a temporary URL for a file", People),
    op("P-72", "DELETE", "/api/v1/files", "Delete a file from a model", People),
    op("P-73", "GET", "/api/v1/notification-channels", "List notification channels", People),
    op("P-74", "POST", "/api/v1/notification-channels", "Create notification channel", People),
    op("P-75", "GET", "/api/v1/notification-channels/{id}", "Get notification channel", People),
    op("P-76", "PUT", "/api/v1/notification-channels/{id}", "Update notification channel", People),
    op(
        "P-76",
        "PATCH",
        "/api/v1/notification-channels/{id}",
        "Update notification channel (PATCH alias of PUT, §1.8)",
        People,
    ),
    op("P-77", "DELETE", "/api/v1/notification-channels/{id}", "Delete notification channel", People),
    op("PL-01", "POST", "/api/v1/passwordless/client/enroll", "Enroll with video", Passwordless),
    op("PL-02", "POST", "/api/v1/passwordless/client/face-enroll", "Enroll with image", Passwordless),
    op("PL-03", "POST", "/api/v1/passwordless/client/verify", "Verify with video", Passwordless),
    op("PL-04", "POST", "/api/v1/passwordless/client/face-verify", "Verify with image", Passwordless),
    op("PL-05", "POST", "/api/v1/passwordless/client/facial", "1:N search by image (rankingTop)", Passwordless),
    op("PL-06", "GET", "/api/v1/passwordless/client", "List enrolled clients", Passwordless),
    op("PL-07", "GET", "/api/v1/passwordless/client/{id}", "Get client", Passwordless),
    op("PL-08", "PUT", "/api/v1/passwordless/client/{id}", "Update client (fullName, status)", Passwordless),
    op("PL-09", "DELETE", "/api/v1/passwordless/client/{id}", "Delete client (permanent)", Passwordless),
    op("X-01", "GET", "/api/v1/files/{id}/download", "Signed, unauthenticated download target for P-71 URLs", People),
    op("S-01", "GET", "/health", "Liveness of the service and its models", Service),
    op("S-02", "GET", "/metrics", "Prometheus metrics", Service),
    op("S-03", "GET", "/kiosk", "The kiosk page (camera, live boxes, decision)", Service),
    op("S-04", "GET", "/openapi.json", "This OpenAPI document", Service),
    op("S-05", "GET", "/docs", "Browsable API docs (Swagger UI)", Service),
    op("S-06", "GET", "/docs/{file}", "Swagger UI assets", Service),
    op("WS-01", "GET", "/v1/stream", "Kiosk session over WebSocket (docs/ws-protocol.md)", Streams),
    op("WS-02", "GET", "/v1/events", "Access-event feed over WebSocket", Streams),
];

/// `path` itself; in debug builds, panics unless [`OPERATIONS`] documents it.
pub fn documented(path: &str) -> &str {
    debug_assert!(
        OPERATIONS.iter().any(|o| o.path == path),
        "route {path} is registered but not in api::openapi::OPERATIONS"
    );
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(debug_assertions, should_panic(expected = "not in api::openapi::OPERATIONS"))]
    fn an_undocumented_route_is_refused() {
        documented("/api/v1/undocumented");
    }

    #[test]
    fn operations_are_unique_and_their_paths_absolute() {
        let mut seen = std::collections::HashSet::new();
        for o in OPERATIONS {
            assert!(o.path.starts_with('/'), "{}", o.path);
            assert!(seen.insert((o.method, o.path)), "{} {} twice", o.method, o.path);
        }
    }
}
