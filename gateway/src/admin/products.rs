//! Admin: what ticket categories ([`super::categories`]) and merchandise ([`super::merchandise`]), the
//! two things a buyer can put in a cart, have in common: deleting one nobody ordered, and never letting
//! quota or stock drop below the units already sold or held.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::change::{Audited, catalog_change};
use crate::{accounts::Permission, error::ApiError, http::extract::AuthUser, state::AppState};

/// The product families.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Category,
    Merchandise,
}

impl Family {
    fn entity(self) -> &'static str {
        match self {
            Family::Category => "ticket_category",
            Family::Merchandise => "merchandise",
        }
    }

    fn not_found(self) -> ApiError {
        ApiError::NotFound(match self {
            Family::Category => "ticket category",
            Family::Merchandise => "merchandise",
        })
    }
}

/// A quota or stock below what is sold or held, caught by the database as the last line of defence.
pub fn oversell_constraint(name: &str) -> Option<ApiError> {
    matches!(name, "ticket_categories_no_oversell" | "merchandise_no_oversell")
        .then(|| ApiError::validation("quota or stock cannot go below the units already sold or held"))
}

/// `quota` or `stock` (`what`) may not go below the `committed` units (sold + held).
pub fn not_below_committed(what: &str, value: i32, committed: i32) -> Result<(), ApiError> {
    if value < committed {
        return Err(ApiError::validation(format!(
            "{what} cannot go below the {committed} units already sold or held"
        )));
    }
    Ok(())
}

/// Locks the event row so its products are not added to while it is deleted; 404 if it does not exist.
pub async fn lock_event(conn: &mut PgConnection, event: Uuid) -> Result<(), ApiError> {
    sqlx::query_scalar!("select id from events where id = $1 for share", event)
        .fetch_optional(conn)
        .await?
        .map(|_| ())
        .ok_or(ApiError::NotFound("event"))
}

/// Deletes a product nobody has ordered (409 otherwise: set its quota or stock instead).
pub async fn delete_unordered(
    state: &AppState,
    user: AuthUser,
    id: Uuid,
    family: Family,
) -> Result<StatusCode, ApiError> {
    catalog_change(state, user, Permission::ManageCatalog, async move |tx: &mut PgConnection| {
        let ordered = sqlx::query_scalar!(
            r#"select exists(select 1 from order_items where ticket_category_id = $1 or merchandise_id = $1) as "e!""#,
            id
        )
        .fetch_one(&mut *tx)
        .await?;
        if ordered {
            let message = match family {
                Family::Category => "this category has orders; set its quota instead",
                Family::Merchandise => "this item has orders; set its stock instead",
            };
            return Err(ApiError::conflict("has_orders", message));
        }
        let name = match family {
            Family::Category => {
                sqlx::query_scalar!("delete from ticket_categories where id = $1 returning name", id)
                    .fetch_optional(&mut *tx)
                    .await?
            }
            Family::Merchandise => {
                sqlx::query_scalar!("delete from merchandise where id = $1 returning name", id)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        }
        .ok_or_else(|| family.not_found())?;
        let action = if family == Family::Category { "ticket_category.delete" } else { "merchandise.delete" };
        Ok((StatusCode::NO_CONTENT, Audited::new(action, family.entity(), id, json!({ "name": name }))))
    })
    .await
}
