//! Payments: starting a Midtrans payment for an order, receiving Midtrans' notifications, and the admin
//! views of notifications that could not be applied and of payments that need people.

pub mod charge;
pub mod dead_letters;
pub mod notifications;
pub mod review;
pub mod start;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start::start))
        .routes(routes!(notifications::receive))
        .routes(routes!(dead_letters::list))
        .routes(routes!(dead_letters::replay))
        .routes(routes!(review::list))
        .routes(routes!(review::resolve))
}
