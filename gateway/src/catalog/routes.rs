//! Public catalog endpoints (no login): cached for a second, with ETag revalidation.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{Audience, EventDetail, EventSummary, Merchandise, cache::Cached};
use crate::{
    error::{ApiError, ErrorBody},
    http::{
        extract::{ApiPath, ApiQuery},
        page::Page,
    },
    state::AppState,
};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_events))
        .routes(routes!(get_event))
        .routes(routes!(list_merchandise))
        .routes(routes!(get_merchandise))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MerchandiseFilter {
    /// Only merchandise of this event.
    pub event_id: Option<Uuid>,
}

/// Published events, soonest first.
#[utoipa::path(get, path = "/api/events", tag = "catalog", params(Page),
    responses((status = 200, body = Vec<EventSummary>)))]
async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, ApiError> {
    let (limit, offset) = page.bounds()?;
    let key = format!("events?{limit}&{offset}");
    serve(&state, &headers, &key, "events", async move |conn| {
        Ok(Some(super::list_events(conn, Audience::Public, limit, offset).await?))
    })
    .await
}

/// One published event with its schedules, ticket categories and merchandise.
#[utoipa::path(get, path = "/api/events/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, body = EventDetail), (status = 304)))]
async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    serve(&state, &headers, &format!("event:{id}"), "event", async move |conn| {
        Ok(super::event_detail(conn, id, Audience::Public).await?)
    })
    .await
}

/// Merchandise on sale: items of published events and standalone items.
#[utoipa::path(get, path = "/api/merchandise", tag = "catalog", params(MerchandiseFilter),
    responses((status = 200, body = Vec<Merchandise>), (status = 404, body = ErrorBody)))]
async fn list_merchandise(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(filter): ApiQuery<MerchandiseFilter>,
) -> Result<Response, ApiError> {
    let event = filter.event_id;
    let key = format!("merchandise?{}", event.map(|e| e.to_string()).unwrap_or_default());
    serve(&state, &headers, &key, "event", async move |conn| {
        if let Some(e) = event
            && !super::is_published(conn, e).await?
        {
            return Ok(None);
        }
        Ok(Some(super::list_merchandise(conn, event, Audience::Public).await?))
    })
    .await
}

/// One merchandise item.
#[utoipa::path(get, path = "/api/merchandise/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "merchandise id")),
    responses((status = 200, body = Merchandise)))]
async fn get_merchandise(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    serve(&state, &headers, &format!("merchandise:{id}"), "merchandise", async move |conn| {
        Ok(super::merchandise(conn, id, Audience::Public).await?)
    })
    .await
}

/// Answers from the catalog cache under `key`, loading with `load` on a miss (one load per key at a time);
/// nothing found is a 404 naming `missing`.
async fn serve<T: Serialize>(
    state: &AppState,
    headers: &HeaderMap,
    key: &str,
    missing: &'static str,
    load: impl AsyncFnOnce(&mut PgConnection) -> Result<Option<T>, ApiError>,
) -> Result<Response, ApiError> {
    let db = state.db.clone();
    let cached = state
        .catalog_cache
        .get_or_load(key, || async move {
            let mut conn = db.acquire().await?;
            load(&mut conn).await?.map(|v| to_json(&v)).transpose()
        })
        .await?;
    if cached.is_none() {
        return Err(ApiError::NotFound(missing));
    }
    Ok(respond(state, headers, cached))
}

fn to_json<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value).map(Bytes::from).map_err(|e| ApiError::Internal(e.into()))
}

/// 200 with the body, or 304 when the client already holds this version.
fn respond(state: &AppState, headers: &HeaderMap, cached: Option<Cached>) -> Response {
    let Some(cached) = cached else {
        return ApiError::NotFound("resource").into_response();
    };
    let max_age = state.catalog_cache.ttl().as_secs().max(1);
    let cache_control = format!("public, max-age={max_age}, stale-while-revalidate=5");
    let etag = HeaderValue::from_str(&cached.etag).expect("hex etag is a valid header");
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == cached.etag || t.trim() == "*"));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], cached.body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache_control).expect("ascii"));
    response
}
