//! `POST /api/checkin`: the gate. The first scan of a valid code wins atomically (one conditional UPDATE);
//! a second scan learns when and by whom; void (refunded, reversed) codes are refused. Every scan that
//! finds a code is audited; scans are rate-limited per staff member.

use axum::extract::State;
use chrono::{DateTime, Utc};
use pipeline::states::{OrderStatus, TicketStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    accounts::Permission,
    admin::audit,
    error::{ApiError, ErrorBody},
    http::extract::{ApiJson, AuthUser},
    state::AppState,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scan {
    /// The code as scanned or typed: spaces and dashes are ignored, letters upper-cased.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[-A-Za-z0-9\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*[A-Za-z0-9][-A-Za-z0-9\\u0009-\\u000D\\u0020\\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]*$"
    )]
    pub code: String,
    /// The event this gate admits to: a code for another event is refused (409 `wrong_event`) and stays
    /// unused. Optional for scanners that check one event only.
    pub event_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct CheckedIn {
    /// `checked_in`.
    pub status: TicketStatus,
    pub ticket: ScannedTicket,
}

#[derive(Serialize, ToSchema)]
pub struct ScannedTicket {
    pub code: String,
    /// `ticket` or `merchandise_pickup`.
    pub kind: String,
    pub item_name: String,
    pub quantity: i32,
    pub holder_name: String,
    pub event_name: String,
    pub order_id: Uuid,
    pub checked_in_at: DateTime<Utc>,
}

/// Check a ticket in (or hand out merchandise) by its code. Staff only.
#[utoipa::path(post, path = "/api/checkin", tag = "tickets", security(("bearer" = [])),
    request_body = Scan,
    responses((status = 200, body = CheckedIn),
        (status = 404, description = "unknown code", body = ErrorBody),
        (status = 409, description = "already checked in (`checked_in_at`, `checked_in_by`), void, or for another event", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn checkin(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(scan): ApiJson<Scan>,
) -> Result<axum::Json<CheckedIn>, ApiError> {
    let user = user.require(Permission::CheckIn)?;
    state.limits.check(state.rules.checkin_user, &user.id.to_string()).await?;
    // Scanners add spaces or lower-case letters; codes are upper-case base32.
    let code: String =
        scan.code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect::<String>().to_uppercase();
    if code.is_empty() || scan.code.chars().count() > 64 {
        return Err(ApiError::validation("code must be 1-64 characters"));
    }
    if !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::validation("code must be letters and digits (spaces and dashes are ignored)"));
    }
    let mut tx = state.db.begin().await?;
    let won = admit(&mut tx, &code, user.id, scan.event_id).await?;
    let Some(ticket) = find(&mut tx, &code).await? else {
        metrics::counter!("checkins_total", "result" => "unknown").increment(1);
        return Err(ApiError::NotFound("ticket"));
    };
    let wrong_event = scan.event_id.is_some_and(|e| e != ticket.event_id);
    let result = match (won, ticket.status) {
        (Some(_), _) => TicketStatus::CheckedIn.as_str(),
        (None, _) if wrong_event => "wrong_event",
        (None, TicketStatus::CheckedIn) => "already_checked_in",
        (None, TicketStatus::Valid | TicketStatus::Void) => TicketStatus::Void.as_str(),
    };
    audit::record(
        &mut tx,
        user.id,
        &format!("ticket.scan.{result}"),
        "ticket",
        Some(ticket.id),
        serde_json::json!({ "order_id": ticket.order_id }),
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("checkins_total", "result" => result).increment(1);
    match won {
        Some(checked_in_at) => Ok(axum::Json(CheckedIn {
            status: TicketStatus::CheckedIn,
            ticket: ScannedTicket {
                code,
                kind: ticket.kind,
                item_name: ticket.item_name,
                quantity: ticket.quantity,
                holder_name: ticket.holder_name,
                event_name: ticket.event_name,
                order_id: ticket.order_id,
                checked_in_at,
            },
        })),
        None => Err(refusal(ticket, wrong_event)),
    }
}

/// The one conditional update that lets a valid code of a paid order in, once: when it was checked in,
/// or `None` when it was not (unknown, used, void, unpaid, or for another event).
async fn admit(
    conn: &mut PgConnection,
    code: &str,
    staff: Uuid,
    event: Option<Uuid>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"update tickets t set status = $4, checked_in_at = now(), checked_in_by = $2
           from orders o
           where t.code = $1 and t.status = 'valid' and o.id = t.order_id
             and o.status in ('paid', 'partially_refunded')
             and ($3::uuid is null or o.event_id = $3)
           returning t.checked_in_at as "checked_in_at!""#,
        code,
        staff,
        event,
        TicketStatus::CheckedIn as _
    )
    .fetch_optional(&mut *conn)
    .await
}

/// A scanned code's ticket, as the gate shows it.
struct Found {
    id: Uuid,
    kind: String,
    status: TicketStatus,
    checked_in_at: Option<DateTime<Utc>>,
    order_id: Uuid,
    item_name: String,
    quantity: i32,
    holder_name: String,
    event_name: String,
    order_status: OrderStatus,
    event_id: Uuid,
    checked_in_by: Option<String>,
}

async fn find(conn: &mut PgConnection, code: &str) -> Result<Option<Found>, sqlx::Error> {
    sqlx::query_as!(
        Found,
        r#"select t.id, t.kind, t.status as "status: TicketStatus", t.checked_in_at, t.order_id,
                  i.name as item_name, case when t.kind = 'ticket' then 1 else i.quantity end as "quantity!",
                  u.name as holder_name, e.name as event_name, o.status as "order_status: OrderStatus",
                  o.event_id, s.email as "checked_in_by?"
           from tickets t
           join order_items i on i.id = t.order_item_id
           join orders o on o.id = t.order_id
           join users u on u.id = o.user_id
           join events e on e.id = o.event_id
           left join users s on s.id = t.checked_in_by
           where t.code = $1"#,
        code
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Why a found code did not let anyone in.
fn refusal(ticket: Found, wrong_event: bool) -> ApiError {
    if wrong_event {
        return ApiError::conflict(
            "wrong_event",
            format!("this code is for another event ({}); it was not used", ticket.event_name),
        );
    }
    if ticket.status != TicketStatus::CheckedIn {
        return ApiError::conflict(
            "ticket_void",
            format!("this code is not valid for entry (order {})", ticket.order_status),
        );
    }
    let at = ticket.checked_in_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    let by = ticket.checked_in_by.unwrap_or_else(|| "unknown".into());
    let mut details = serde_json::Map::new();
    details.insert("checked_in_at".into(), at.clone().into());
    details.insert("checked_in_by".into(), by.clone().into());
    ApiError::ConflictWith {
        code: "already_checked_in",
        message: format!("already checked in at {at} by {by}"),
        details,
    }
}
