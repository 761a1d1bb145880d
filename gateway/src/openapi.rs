//! The OpenAPI document, generated from the handlers' annotations, and a self-contained viewer page.

use utoipa::{
    Modify, OpenApi,
    openapi::{
        ContentBuilder, Ref, RefOr, Response, ResponseBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Queue-fronted checkout",
        description = "Virtual waiting room and checkout for event tickets and merchandise. \
                       Errors are `{\"error\":{\"code\",\"message\"}}`; money is integer rupiah; ids are UUIDs."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "catalog", description = "Public events and merchandise (no login)"),
        (name = "accounts", description = "Register, sign in"),
        (name = "waiting room", description = "Join, wait, get admitted: polling, WebSocket and SSE"),
        (name = "orders", description = "Checkout: submit a cart, follow the request, the buyer's orders"),
        (name = "admin", description = "Admin and staff operations"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// The answers that come from the shared edge rather than from a handler, added to every operation they
/// apply to, so that the document lists every status the server can give: a malformed body, path or
/// query (400) or a well-formed but unacceptable one (422), a body over the limit (413) or not JSON (415),
/// a missing or bad credential (401), a role that may not (403), an id that names nothing (404), and the load shedder, the global
/// timeout or an unreachable store (503 with `Retry-After`). Applied to the document the routers have
/// merged their operations into (a `Modify` on [`ApiDoc`] runs before they are there).
pub fn add_common_answers(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let staff_only = path.starts_with("/api/admin") || path == "/api/checkin";
        let names_a_resource = path.contains('{');
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch, &mut item.head];
        for op in operations.into_iter().flatten() {
            complete(op, staff_only, names_a_resource);
        }
    }
}

fn complete(op: &mut Operation, staff_only: bool, names_a_resource: bool) {
    let has_body = op.request_body.is_some();
    let has_input = has_body || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut answers: Vec<(u16, &str)> = Vec::new();
    if has_input {
        answers.push((400, "malformed request: a body, path or query parameter that does not parse"));
        answers.push((422, "well-formed but not acceptable (the message says which field and why)"));
    }
    if has_body {
        answers.push((413, "the body is larger than BODY_LIMIT_BYTES"));
        answers.push((415, "the body is not `application/json`"));
    }
    if secured {
        answers.push((401, "missing, malformed, expired or revoked bearer token"));
    }
    if names_a_resource {
        answers.push((404, "nothing with this id (a malformed id names nothing either)"));
    }
    if staff_only {
        answers.push((403, "the account's role may not do this"));
    }
    answers.push((503, "overloaded, timed out or a backing store is unreachable; retry after `Retry-After`"));
    for (status, description) in answers {
        op.responses.responses.entry(status.to_string()).or_insert_with(|| error_answer(description));
    }
}

fn error_answer(description: &str) -> RefOr<Response> {
    let body = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
    RefOr::T(ResponseBuilder::new().description(description).content("application/json", body).build())
}

/// Where a response leads: (operation, status) → the operations that take one of its fields, and how.
/// They let a client (and the API fuzzer's stateful phase) go from what it created to what it can do
/// with it: an event to its categories and settings, an order request to its order, the order to its
/// payment and tickets, a join to the queue status.
const LINKS: &[(&str, &str, &[Target])] = &[
    (
        "create_event",
        "201",
        &[
            ("admin_get_event", "id", "$response.body#/id"),
            ("update_event", "id", "$response.body#/id"),
            ("publish_event", "id", "$response.body#/id"),
            ("create_category", "id", "$response.body#/id"),
            ("create_schedule", "id", "$response.body#/id"),
            ("get_settings", "id", "$response.body#/id"),
            ("put_settings", "id", "$response.body#/id"),
            ("delete_event", "id", "$response.body#/id"),
        ],
    ),
    (
        "create_category",
        "201",
        &[("update_category", "id", "$response.body#/id"), ("delete_category", "id", "$response.body#/id")],
    ),
    (
        "create_schedule",
        "201",
        &[("update_schedule", "id", "$response.body#/id"), ("delete_schedule", "id", "$response.body#/id")],
    ),
    (
        "create_merchandise",
        "201",
        &[
            ("admin_get_merchandise", "id", "$response.body#/id"),
            ("update_merchandise", "id", "$response.body#/id"),
            ("delete_merchandise", "id", "$response.body#/id"),
        ],
    ),
    (
        "publish_event",
        "200",
        &[("get_event", "id", "$response.body#/id"), ("join_queue", "id", "$response.body#/id")],
    ),
    ("join_queue", "200", &[("queue_status", "visitor_token", "$response.body#/visitor_token")]),
    ("submit_order", "202", &[("get_order_request", "id", "$response.body#/request_id")]),
    (
        "get_order_request",
        "200",
        &[
            ("get_order", "id", "$response.body#/order_id"),
            ("start_payment", "id", "$response.body#/order_id"),
            ("cancel_order", "id", "$response.body#/order_id"),
            ("list_order_tickets", "id", "$response.body#/order_id"),
        ],
    ),
    ("start_payment", "200", &[("get_order", "id", "$response.body#/order_id")]),
];

/// (target operation, its parameter, the runtime expression that fills it).
type Target = (&'static str, &'static str, &'static str);

/// Adds [`LINKS`] to the responses they start from.
pub fn add_links(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::link::LinkBuilder;
    for item in openapi.paths.paths.values_mut() {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            let Some(&(_, status, targets)) =
                LINKS.iter().find(|(id, ..)| op.operation_id.as_deref() == Some(*id))
            else {
                continue;
            };
            let Some(RefOr::T(response)) = op.responses.responses.get_mut(status) else { continue };
            for &(target, parameter, value) in targets {
                let link = LinkBuilder::new().operation_id(target).parameter(parameter, value).build();
                response.links.insert(target.to_owned(), RefOr::T(link));
            }
        }
    }
}

/// `/api/docs`: renders `/api/openapi.json` in the browser without any external asset.
pub const VIEWER_HTML: &str = include_str!("openapi_viewer.html");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    #[test]
    fn operation_ids_are_unique_and_every_link_names_one() {
        let (_, doc) = crate::http::api();
        let mut ids = BTreeSet::new();
        let mut links = Vec::new();
        for (path, item) in &doc.paths.paths {
            let ops = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
            for op in ops.into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(ids.insert(id.clone()), "operationId `{id}` used twice (again at {path})");
                for response in op.responses.responses.values() {
                    if let super::RefOr::T(r) = response {
                        links.extend(r.links.values().filter_map(|l| match l {
                            super::RefOr::T(l) => Some(l.operation_id.clone()),
                            super::RefOr::Ref(_) => None,
                        }));
                    }
                }
            }
        }
        assert!(links.len() >= 20, "only {} links", links.len());
        for target in links {
            assert!(ids.contains(&target), "a link names `{target}`, which no operation has");
        }
        for (source, ..) in super::LINKS {
            assert!(ids.contains(*source), "LINKS starts from `{source}`, which no operation has");
        }
    }
}
