//! Orders: checkout submission (the intake in front of the order stream, [`intake`]), request status and
//! the buyer's own orders ([`read`]), and cancelling an unpaid order ([`cancel`]). [`record`] writes
//! accepted requests, many to one commit.

pub mod cancel;
pub mod intake;
pub mod read;
pub mod record;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(intake::submit, read::list))
        .routes(routes!(read::request_status))
        .routes(routes!(read::get))
        .routes(routes!(cancel::cancel))
}
