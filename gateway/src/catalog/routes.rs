//! Public catalog endpoints (no login): cached for a second, with ETag revalidation.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
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
#[serde(deny_unknown_fields)]
pub struct MerchandiseFilter {
    /// Only merchandise of this event.
    pub event_id: Option<Uuid>,
}

/// Published events, soonest first.
#[utoipa::path(get, path = "/api/events", tag = "catalog", params(Page),
    responses((status = 200, body = Vec<EventSummary>), (status = 400, body = ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Response, ApiError> {
    let (limit, offset) = page.bounds()?;
    let key = format!("events?{limit}&{offset}");
    let db = state.db.clone();
    let cached = state
        .catalog_cache
        .get_or_load(&key, || async move {
            let mut conn = db.acquire().await?;
            let events = super::list_events(&mut conn, Audience::Public, limit, offset).await?;
            Ok(Some(to_json(&events)?))
        })
        .await?;
    Ok(respond(&state, &headers, cached))
}

/// One published event with its schedules, ticket categories and merchandise.
#[utoipa::path(get, path = "/api/events/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "event id")),
    responses((status = 200, body = EventDetail), (status = 304), (status = 404, body = ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let db = state.db.clone();
    let cached = state
        .catalog_cache
        .get_or_load(&format!("event:{id}"), || async move {
            let mut conn = db.acquire().await?;
            match super::event_detail(&mut conn, id, Audience::Public).await? {
                Some(event) => Ok(Some(to_json(&event)?)),
                None => Ok(None),
            }
        })
        .await?;
    if cached.is_none() {
        return Err(ApiError::NotFound("event"));
    }
    Ok(respond(&state, &headers, cached))
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
    let db = state.db.clone();
    let cached = state
        .catalog_cache
        .get_or_load(&key, || async move {
            let mut conn = db.acquire().await?;
            if let Some(e) = event
                && !super::is_published(&mut conn, e).await?
            {
                return Ok(None);
            }
            let items = super::list_merchandise(&mut conn, event, Audience::Public).await?;
            Ok(Some(to_json(&items)?))
        })
        .await?;
    if cached.is_none() {
        return Err(ApiError::NotFound("event"));
    }
    Ok(respond(&state, &headers, cached))
}

/// One merchandise item.
#[utoipa::path(get, path = "/api/merchandise/{id}", tag = "catalog",
    params(("id" = Uuid, Path, description = "merchandise id")),
    responses((status = 200, body = Merchandise), (status = 404, body = ErrorBody)))]
async fn get_merchandise(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let db = state.db.clone();
    let cached = state
        .catalog_cache
        .get_or_load(&format!("merchandise:{id}"), || async move {
            let mut conn = db.acquire().await?;
            match super::merchandise(&mut conn, id, Audience::Public).await? {
                Some(m) => Ok(Some(to_json(&m)?)),
                None => Ok(None),
            }
        })
        .await?;
    if cached.is_none() {
        return Err(ApiError::NotFound("merchandise"));
    }
    Ok(respond(&state, &headers, cached))
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
