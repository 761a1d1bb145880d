//! Admin: payments that need people — under review (amount mismatch, card fraud challenge) or owed a
//! refund that Midtrans has not confirmed yet — newest change first.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    accounts::Permission,
    error::{ApiError, ErrorBody},
    http::extract::{ApiQuery, AuthUser},
    state::AppState,
};

/// The statuses an operator may list.
const LISTABLE: [&str; 4] = ["needs_review", "challenge", "refund_pending", "reversed"];

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    /// `needs_review` (default), `challenge`, `refund_pending` or `reversed`.
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentToReview {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub midtrans_order_id: String,
    pub buyer_email: String,
    pub status: String,
    /// The Midtrans status last applied.
    pub midtrans_status: Option<String>,
    pub gross_amount: i64,
    pub refunded_amount: i64,
    pub refund_reason: Option<String>,
    pub order_status: String,
    pub updated_at: DateTime<Utc>,
}

/// Payments waiting for people (at most 200).
#[utoipa::path(get, path = "/api/admin/payments", tag = "admin", security(("bearer" = [])),
    params(ReviewFilter),
    responses((status = 200, body = Vec<PaymentToReview>), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(f): ApiQuery<ReviewFilter>,
) -> Result<axum::Json<Vec<PaymentToReview>>, ApiError> {
    user.require(Permission::ManagePayments)?;
    let status = f.status.unwrap_or_else(|| "needs_review".into());
    if !LISTABLE.contains(&status.as_str()) {
        return Err(ApiError::validation(format!("status must be one of {}", LISTABLE.join(", "))));
    }
    Ok(axum::Json(
        sqlx::query_as!(
            PaymentToReview,
            r#"select p.id as payment_id, p.order_id, p.midtrans_order_id, u.email as buyer_email, p.status,
                      p.midtrans_status, p.gross_amount, p.refunded_amount, p.refund_reason,
                      o.status as order_status, p.updated_at
               from payments p join orders o on o.id = p.order_id join users u on u.id = o.user_id
               where p.status = $1
               order by p.updated_at desc limit 200"#,
            status
        )
        .fetch_all(&state.db)
        .await?,
    ))
}
