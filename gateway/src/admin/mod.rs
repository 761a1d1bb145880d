//! Admin API under `/api/admin/`: catalog CRUD, users, waiting-room settings, the audit log.
//!
//! Every write goes through [`change`]: the [`Permission`](crate::accounts::Permission) first, the change
//! and its audit record in one transaction, and the catalog cache cleared so the change shows at once.

pub mod audit;
pub mod categories;
pub mod change;
pub mod events;
pub mod fields;
pub mod merchandise;
pub mod preview;
pub mod products;
pub mod schedules;
pub mod users;
pub mod waiting_room;

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(events::router())
        .merge(schedules::router())
        .merge(categories::router())
        .merge(merchandise::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(waiting_room::router())
}
