//! The OpenAPI document, generated from the handlers' annotations, and a self-contained viewer page.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
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

/// `/api/docs`: renders `/api/openapi.json` in the browser without any external asset.
pub const VIEWER_HTML: &str = include_str!("openapi_viewer.html");
