//! Admin API under `/api/admin/`: catalog CRUD, users, waiting-room settings, the audit log.
//!
//! Every handler checks a [`Permission`](crate::accounts::Permission) first, runs its change and its audit
//! record in one transaction, and clears the catalog cache so the change shows at once.

pub mod audit;
pub mod events;
pub mod fields;
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
        .merge(products::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(waiting_room::router())
}
