//! The opening draw, published: its seed hash before the sale opens, the seed once the draw is done, and
//! everyone it placed (as participant hashes, in queue order), so anyone can recompute the order
//! (`scripts/verify-draw`).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{WAITING_ROOM_DOWN, event_window};
use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, ApiQuery},
    state::AppState,
};

#[derive(Serialize, ToSchema)]
pub struct DrawResponse {
    /// sha256 of the seed, published before the sale opens.
    pub seed_hash: String,
    /// The seed, revealed once the draw is done: sort the participants (`/queue/draw/participants`) by
    /// `hex(sha256(seed ":" participant))` to recompute the order.
    pub seed: Option<String>,
    pub drawn: bool,
}

/// The opening draw's fairness proof: the seed hash before the sale, the seed after the draw.
#[utoipa::path(get, path = "/api/events/{id}/queue/draw", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, body = DrawResponse)))]
pub async fn draw(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
) -> Result<axum::Json<DrawResponse>, ApiError> {
    event_window(&state, event).await?;
    let seed_hash = state.queue.seed_hash(event).await.map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?;
    let seed = state.queue.revealed_seed(event).await.map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?;
    Ok(axum::Json(DrawResponse { seed_hash, drawn: seed.is_some(), seed }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ParticipantsPage {
    /// First participant to return (0-based), default 0.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
    /// How many, 1–10,000, default 1,000.
    #[param(minimum = 1, maximum = 10_000)]
    pub limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DrawParticipants {
    pub seed_hash: String,
    pub seed: String,
    /// Everyone the draw placed.
    pub total: i64,
    /// The first `sorted` participants are in seed order (`hex(sha256(seed ":" participant))`, ascending);
    /// the rest joined while the draw ran and follow in arrival order.
    pub sorted: i64,
    pub offset: i64,
    /// `hex(sha256("participant:" visitor_id))` of each placed visitor, in queue order from `offset`. A
    /// visitor finds itself by hashing the id its visitor credential names.
    pub participants: Vec<String>,
}

/// After the opening draw: everyone it placed, in queue order, as participant hashes, with the seed, so
/// that anyone can recompute the order (`scripts/verify-draw`).
#[utoipa::path(get, path = "/api/events/{id}/queue/draw/participants", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id"), ParticipantsPage),
    responses((status = 200, body = DrawParticipants), (status = 409, description = "the draw has not happened yet", body = ErrorBody)))]
pub async fn draw_participants(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    ApiQuery(page): ApiQuery<ParticipantsPage>,
) -> Result<axum::Json<DrawParticipants>, ApiError> {
    let offset = page.offset.unwrap_or(0);
    let limit = page.limit.unwrap_or(1_000);
    if offset < 0 || !(1..=10_000).contains(&limit) {
        return Err(ApiError::validation("offset must be 0 or more and limit between 1 and 10000"));
    }
    event_window(&state, event).await?;
    let record = state
        .queue
        .draw_record(event, offset, limit)
        .await
        .map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?
        .ok_or_else(|| ApiError::conflict("draw_pending", "the opening draw has not happened yet"))?;
    Ok(axum::Json(DrawParticipants {
        seed_hash: waiting_room::queue::seed_hash(&record.seed),
        seed: record.seed,
        total: record.total,
        sorted: record.sorted,
        offset,
        participants: record.participants,
    }))
}
