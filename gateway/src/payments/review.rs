//! Admin: payments that need people — under review (amount mismatch, card fraud challenge) or owed a
//! refund that Midtrans has not confirmed yet — newest change first; and resolving a review (accept or
//! refund; see `checkout_worker::payments::review`).

use axum::extract::State;
use chrono::{DateTime, Utc};
use pipeline::states::{OrderStatus, PaymentStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use serde_json::json;

use crate::{
    accounts::Permission,
    admin::change::{Audited, catalog_change},
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, ApiPath, ApiQuery, AuthUser},
    state::AppState,
};

/// The statuses an operator may list.
const LISTABLE: [PaymentStatus; 4] = [
    PaymentStatus::NeedsReview,
    PaymentStatus::Challenge,
    PaymentStatus::RefundPending,
    PaymentStatus::Reversed,
];

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    /// `needs_review` (default), `challenge`, `refund_pending` or `reversed`.
    #[param(pattern = "^(needs_review|challenge|refund_pending|reversed)$")]
    pub status: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentToReview {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub midtrans_order_id: String,
    pub buyer_email: String,
    pub status: PaymentStatus,
    /// The Midtrans status last applied.
    pub midtrans_status: Option<String>,
    pub gross_amount: i64,
    pub refunded_amount: i64,
    pub refund_reason: Option<String>,
    pub order_status: OrderStatus,
    pub updated_at: DateTime<Utc>,
    /// When the review began (`needs_review`); unresolved past `REVIEW_DEADLINE_SECS` it is refunded.
    pub review_started_at: Option<DateTime<Utc>>,
    /// For a payment under review: the amount Midtrans reported (as it sent it, e.g. `"1000.00"`), which
    /// differs from `gross_amount`, the amount charged.
    pub reported_gross_amount: Option<String>,
}

/// Payments waiting for people (at most 200).
#[utoipa::path(get, operation_id = "list_payments_to_review", path = "/api/admin/payments", tag = "admin", security(("bearer" = [])),
    params(ReviewFilter),
    responses((status = 200, body = Vec<PaymentToReview>)))]
pub async fn list(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(f): ApiQuery<ReviewFilter>,
) -> Result<axum::Json<Vec<PaymentToReview>>, ApiError> {
    user.require(Permission::ManagePayments)?;
    let status = match f.status.as_deref().map(str::parse::<PaymentStatus>) {
        None => PaymentStatus::NeedsReview,
        Some(Ok(s)) if LISTABLE.contains(&s) => s,
        Some(_) => {
            let listable: Vec<&str> = LISTABLE.iter().map(|s| s.as_str()).collect();
            return Err(ApiError::validation(format!("status must be one of {}", listable.join(", "))));
        }
    };
    Ok(axum::Json(
        sqlx::query_as!(
            PaymentToReview,
            r#"select p.id as payment_id, p.order_id, p.midtrans_order_id, u.email as buyer_email,
                      p.status as "status: PaymentStatus", p.midtrans_status, p.gross_amount, p.refunded_amount, p.refund_reason,
                      o.status as "order_status: OrderStatus", p.updated_at, p.review_started_at,
                      (select e.gross_amount from payment_events e
                       where e.payment_id = p.id and e.outcome = 'amount_mismatch'
                       order by e.id desc limit 1) as reported_gross_amount
               from payments p join orders o on o.id = p.order_id join users u on u.id = o.user_id
               where p.status = $1
               order by p.updated_at desc limit 200"#,
            status as _
        )
        .fetch_all(&state.db)
        .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveReview {
    /// `accept`: the payment is honoured (order paid, tickets issued); `refund`: the order is cancelled
    /// and the payment refunded.
    pub decision: ReviewDecision,
    /// Why, for the audit log (at most 500 characters).
    #[schema(max_length = 500)]
    pub note: Option<String>,
}

#[derive(Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Accept,
    Refund,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewResolved {
    pub payment_id: Uuid,
    /// `paid`, `paid_late` (after the hold ended, the items were still free) or `refund_owed`.
    pub outcome: &'static str,
    pub payment_status: PaymentStatus,
    pub order_status: OrderStatus,
}

/// Resolve a payment under review (`needs_review`: its amount did not match): accept it or refund it.
#[utoipa::path(post, operation_id = "resolve_review", path = "/api/admin/payments/{id}/review", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "payment id")), request_body = ResolveReview,
    responses((status = 200, body = ReviewResolved),
        (status = 409, description = "not under review, or accepting is no longer possible", body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(req): ApiJson<ResolveReview>,
) -> Result<axum::Json<ReviewResolved>, ApiError> {
    use checkout_worker::payments::review::{self, Decision, ReviewError};
    user.require(Permission::ManagePayments)?;
    if req.note.as_ref().is_some_and(|n| n.chars().count() > 500) {
        return Err(ApiError::validation("note must be at most 500 characters"));
    }
    let decision = match req.decision {
        ReviewDecision::Accept => Decision::Accept,
        ReviewDecision::Refund => Decision::Refund,
    };
    // Stock moved: a catalog change.
    catalog_change(&state, user, Permission::ManagePayments, async move |tx: &mut PgConnection| {
        let resolved = review::resolve(tx, id, decision, "review_refund").await.map_err(|e| match e {
            ReviewError::NotFound => ApiError::NotFound("payment"),
            ReviewError::NotUnderReview(_) => ApiError::conflict("not_under_review", e.to_string()),
            ReviewError::ItemsGone => {
                ApiError::conflict("items_gone", format!("{e}; refund this payment instead"))
            }
            ReviewError::OrderClosed(_) => ApiError::conflict("order_closed", e.to_string()),
            ReviewError::Db(e) => e.into(),
        })?;
        let now = sqlx::query!(
            r#"select p.status as "payment_status: PaymentStatus", o.status as "order_status: OrderStatus"
               from payments p join orders o on o.id = p.order_id where p.id = $1"#,
            id
        )
        .fetch_one(&mut *tx)
        .await?;
        let details = json!({ "decision": req.decision, "outcome": resolved.as_str(), "note": req.note });
        let answer = ReviewResolved {
            payment_id: id,
            outcome: resolved.as_str(),
            payment_status: now.payment_status,
            order_status: now.order_status,
        };
        Ok((axum::Json(answer), Audited::new("payment.review", "payment", id, details)))
    })
    .await
}
