//! Orders: checkout submission (the intake in front of the order stream), request status, the buyer's own
//! orders, and cancelling an unpaid order.

pub mod intake;
pub mod views;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(intake::submit, views::list))
        .routes(routes!(views::request_status))
        .routes(routes!(views::get))
        .routes(routes!(views::cancel))
}
