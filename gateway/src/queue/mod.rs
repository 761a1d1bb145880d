//! The waiting room's HTTP side: join, status (polling), WebSocket and SSE push; the opening draw's
//! publication is in [`draw`].
//!
//! No login is needed to wait. A join returns a signed visitor credential, also set as a cookie scoped to
//! the event's queue paths; every queue call accepts the cookie or a `visitor_token` query parameter
//! (browsers cannot set headers on a WebSocket).

pub mod draw;
pub mod hub;
pub mod push;

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::{
        Query, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use axum_extra::extract::CookieJar;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use waiting_room::{queue::Standing, tokens::RoomTokens};

use self::push::{Push, ms_to_time};
use crate::{
    error::{ApiError, ErrorBody},
    http::extract::{ApiPath, ClientIp},
    state::AppState,
};

const COOKIE: &str = "wr_visitor";
/// A WebSocket ping this often keeps proxies from closing an idle connection.
const KEEPALIVE: Duration = Duration::from_secs(20);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(join))
        .routes(routes!(status))
        .routes(routes!(websocket))
        .routes(routes!(sse))
        .routes(routes!(draw::draw))
        .routes(routes!(draw::draw_participants))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VisitorQuery {
    /// The visitor credential from the join answer (alternative to the cookie).
    pub visitor_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct JoinResponse {
    pub visitor_token: String,
    /// `waiting`, `pre_queue` or `admitted`.
    pub status: &'static str,
    /// 1 = next in line; null before the opening draw.
    pub position: Option<i64>,
    pub people_ahead: Option<i64>,
    pub sale_opens_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct StatusResponse {
    /// `waiting`, `pre_queue`, `admitted` or `left`.
    pub status: &'static str,
    pub position: Option<i64>,
    /// The latest push messages that apply to this visitor (position or admission, stock, pause).
    pub messages: Vec<Push>,
}

pub(super) struct EventWindow {
    sale_opens_at: Option<DateTime<Utc>>,
    sale_closes_at: Option<DateTime<Utc>>,
}

/// The published event's sale window, from the per-event sale rules the order intake also uses (cached
/// for a second, dropped on any admin change), so a rush of joins does not query PostgreSQL each time.
pub(super) async fn event_window(state: &AppState, event: Uuid) -> Result<EventWindow, ApiError> {
    let rules = state
        .sale_rules
        .get(&state.db, event)
        .await?
        .filter(|r| r.status == crate::catalog::EventStatus::Published)
        .ok_or(ApiError::NotFound("event"))?;
    Ok(EventWindow { sale_opens_at: rules.sale_opens_at, sale_closes_at: rules.sale_closes_at })
}

/// Once the sale has opened, makes sure its opening draw is done (cheap after the first time).
async fn draw_if_opened(
    state: &AppState,
    event: Uuid,
    sale_opens_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    if sale_opens_at.is_none_or(|t| t <= now) {
        state.queue.ensure_drawn(event).await.map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?;
    }
    Ok(())
}

/// The visitor named by the cookie or the `visitor_token` parameter, if it is valid for `event`.
fn visitor_of(state: &AppState, event: Uuid, jar: &CookieJar, query: &VisitorQuery) -> Option<Uuid> {
    let token = query.visitor_token.as_deref().or_else(|| jar.get(COOKIE).map(|c| c.value()))?;
    state.signer.verify_visitor(token, event).ok()
}

fn require_visitor(
    state: &AppState,
    event: Uuid,
    jar: &CookieJar,
    query: &VisitorQuery,
) -> Result<Uuid, ApiError> {
    visitor_of(state, event, jar, query)
        .ok_or(ApiError::Unauthorized("missing or invalid visitor credential; join the queue first"))
}

pub(super) const WAITING_ROOM_DOWN: &str = "the waiting room is briefly unavailable, retry shortly";

/// Join the event's waiting room (no login). Joining again with the same credential keeps the place.
#[utoipa::path(post, operation_id = "join_queue", path = "/api/events/{id}/queue", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id"), VisitorQuery),
    responses((status = 200, body = JoinResponse),
        (status = 409, description = "the sale has closed", body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn join(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    ip: ClientIp,
    jar: CookieJar,
    Query(query): Query<VisitorQuery>,
) -> Result<Response, ApiError> {
    // A new visitor takes a place: limited per address group. A rejoin keeps its place, so it costs what a
    // status call costs.
    let known = visitor_of(&state, event, &jar, &query);
    let rule = if known.is_some() { state.rules.status_ip } else { state.rules.join_ip };
    state.limits.check(rule, &ip.group()).await?;
    let window = event_window(&state, event).await?;
    let now = Utc::now();
    if window.sale_closes_at.is_some_and(|t| t <= now) {
        return Err(ApiError::conflict("sale_closed", "the sale for this event has closed"));
    }
    let visitor = known.unwrap_or_else(Uuid::new_v4);
    // Only arrivals before the opening take part in the draw: once it has passed, this join gets a
    // first-come-first-served place now, paused room or not, even before a controller has ticked.
    draw_if_opened(&state, event, window.sale_opens_at, now).await?;
    let standing = state
        .queue
        .join(event, visitor, now.timestamp_millis())
        .await
        .map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?;
    let token = state.signer.visitor(event, visitor, now.timestamp());
    // Same numbers as /status: position 1 is next in line, 0 means admitted.
    let (status, position, ahead) = match standing {
        Standing::Waiting { ahead, .. } => ("waiting", Some(ahead + 1), Some(ahead)),
        Standing::Admitted { .. } => ("admitted", Some(0), Some(0)),
        _ => ("pre_queue", None, None),
    };
    let body = JoinResponse {
        visitor_token: token.clone(),
        status,
        position,
        people_ahead: ahead,
        sale_opens_at: window.sale_opens_at,
    };
    let secure =
        if state.config.process.app_env == crate::config::AppEnv::Production { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={token}; Path=/api/events/{event}/queue; Max-Age=604800; HttpOnly; SameSite=Lax{secure}"
    );
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).expect("ascii cookie"));
    Ok(response)
}

/// Polling fallback: the visitor's standing and the latest messages for it.
#[utoipa::path(get, operation_id = "queue_status", path = "/api/events/{id}/queue/status", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id"), VisitorQuery),
    responses((status = 200, body = StatusResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn status(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    ip: ClientIp,
    jar: CookieJar,
    Query(query): Query<VisitorQuery>,
) -> Result<axum::Json<StatusResponse>, ApiError> {
    state.limits.check(state.rules.status_ip, &ip.group()).await?;
    let visitor = require_visitor(&state, event, &jar, &query)?;
    state.limits.check(state.rules.status_visitor, &format!("{event}:{visitor}")).await?;
    let window = event_window(&state, event).await?;
    let (standing, messages) = snapshot(&state, event, visitor, window.sale_opens_at).await?;
    let (status, position) = match standing {
        Standing::Waiting { ahead, .. } => ("waiting", Some(ahead + 1)),
        Standing::Admitted { .. } => ("admitted", Some(0)),
        Standing::PreQueue => ("pre_queue", None),
        Standing::Left { .. } | Standing::Unknown => ("left", None),
    };
    Ok(axum::Json(StatusResponse { status, position, messages }))
}

/// The messages that describe `visitor` right now (sent first on every new push connection too).
async fn snapshot(
    state: &AppState,
    event: Uuid,
    visitor: Uuid,
    sale_opens_at: Option<DateTime<Utc>>,
) -> Result<(Standing, Vec<Push>), ApiError> {
    let now = Utc::now();
    // A pre-queue visitor learns its drawn place as soon as the sale has opened.
    draw_if_opened(state, event, sale_opens_at, now).await?;
    let standing = state
        .queue
        .standing(event, visitor, now.timestamp_millis())
        .await
        .map_err(ApiError::redis_down(WAITING_ROOM_DOWN))?;
    let last = state.hub.last(event);
    let mut messages = Vec::with_capacity(3);
    match &standing {
        Standing::Waiting { ahead, .. } => messages.push(Push::position(*ahead, last.as_deref())),
        Standing::Admitted { seq, expires_ms } => messages.push(Push::Admitted {
            admission_token: state.signer.admission(event, visitor, *seq, now.timestamp(), *expires_ms),
            expires_at: ms_to_time(*expires_ms),
            admitted_at: None,
        }),
        Standing::PreQueue => messages.push(Push::pre_queue(last.as_deref(), sale_opens_at)),
        Standing::Left { .. } | Standing::Unknown => messages.push(Push::Left),
    }
    if let Some(p) = &last {
        messages.push(Push::Paused { paused: p.paused });
        messages.push(Push::stock(p));
    }
    Ok((standing, messages))
}

fn seq_of(standing: &Standing) -> Option<i64> {
    match standing {
        Standing::Waiting { seq, .. } | Standing::Admitted { seq, .. } | Standing::Left { seq } => Some(*seq),
        _ => None,
    }
}

/// WebSocket push: `position`, `admitted`, `stock`, `paused` messages as JSON text frames.
#[utoipa::path(get, path = "/api/events/{id}/queue/ws", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id"), VisitorQuery),
    responses((status = 101, description = "switching to WebSocket"), (status = 401, body = ErrorBody),
        (status = 429, description = "this visitor or address holds all the connections it may", body = ErrorBody),
        (status = 503, description = "this gateway holds all the connections it can", body = ErrorBody)))]
async fn websocket(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    ip: ClientIp,
    jar: CookieJar,
    Query(query): Query<VisitorQuery>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let (registration, rx, first) = subscribe(&state, event, ip, &jar, &query).await?;
    // Small buffers: a waiting visitor sends almost nothing and receives small messages, and with
    // 100,000 sockets the library's 128 KiB defaults would cost gigabytes. A write buffer of 0 flushes each
    // message at once.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(4 * 1024)
        .on_upgrade(move |socket| serve_socket(state, registration, rx, first, socket)))
}

/// A new push connection, waiting for its first messages.
type Subscription = (hub::Registration, tokio::sync::mpsc::Receiver<Push>, Vec<Push>);

/// Checks the visitor, registers it with the hub (within the push limits), then reads its standing:
/// registering first means a tick published in between is still delivered (it queues behind the snapshot).
async fn subscribe(
    state: &AppState,
    event: Uuid,
    ip: ClientIp,
    jar: &CookieJar,
    query: &VisitorQuery,
) -> Result<Subscription, ApiError> {
    let visitor = require_visitor(state, event, jar, query)?;
    let window = event_window(state, event).await?;
    let (registration, rx) = state.hub.register(event, visitor, ip.group()).map_err(|refused| {
        metrics::counter!("push_refused_total", "why" => format!("{refused:?}")).increment(1);
        match refused {
            hub::Refused::VisitorFull | hub::Refused::AddressFull => {
                ApiError::RateLimited { retry_after: Duration::from_secs(5) }
            }
            hub::Refused::GatewayFull => ApiError::Unavailable {
                message: "this gateway holds all the live connections it can; retry (another may take you)",
                retry_after: Duration::from_secs(2),
            },
        }
    })?;
    let (standing, first) = snapshot(state, event, visitor, window.sale_opens_at).await?;
    let admitted = matches!(standing, Standing::Admitted { .. });
    state.hub.set_place(&registration, seq_of(&standing), admitted);
    Ok((registration, rx, first))
}

async fn serve_socket(
    state: AppState,
    _registration: hub::Registration,
    mut rx: tokio::sync::mpsc::Receiver<Push>,
    first: Vec<Push>,
    mut socket: WebSocket,
) {
    for push in first {
        if send(&mut socket, &push).await.is_err() {
            return;
        }
    }
    let mut keepalive = tokio::time::interval(KEEPALIVE);
    keepalive.tick().await;
    loop {
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            _ = keepalive.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() { return; }
            }
            push = rx.recv() => match push {
                Some(push) => if send(&mut socket, &push).await.is_err() { return; },
                // The hub dropped us as too slow.
                None => { let _ = socket.send(Message::Close(None)).await; return; }
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {} // pings are answered by the library; other frames are ignored
            },
        }
    }
}

async fn send(socket: &mut WebSocket, push: &Push) -> Result<(), axum::Error> {
    let text = serde_json::to_string(push).expect("push messages serialise");
    socket.send(Message::Text(text.into())).await
}

/// Server-Sent Events push (fallback when WebSocket is blocked); resumes with `Last-Event-ID` by sending
/// the current state first.
#[utoipa::path(get, path = "/api/events/{id}/queue/sse", tag = "waiting room",
    params(("id" = Uuid, Path, description = "event id"), VisitorQuery),
    responses((status = 200, content_type = "text/event-stream"), (status = 401, body = ErrorBody),
        (status = 429, description = "this visitor or address holds all the connections it may", body = ErrorBody),
        (status = 503, description = "this gateway holds all the connections it can", body = ErrorBody)))]
async fn sse(
    State(state): State<AppState>,
    ApiPath(event): ApiPath<Uuid>,
    ip: ClientIp,
    jar: CookieJar,
    Query(query): Query<VisitorQuery>,
) -> Result<Response, ApiError> {
    let (registration, rx, first) = subscribe(&state, event, ip, &jar, &query).await?;
    let shutdown = state.shutdown.clone();
    let counter = std::sync::atomic::AtomicU64::new(0);
    let initial = futures::stream::iter(first);
    let live = futures::stream::unfold((rx, registration, shutdown), |(mut rx, reg, shutdown)| async move {
        tokio::select! {
            _ = shutdown.cancelled() => None,
            push = rx.recv() => push.map(|p| (p, (rx, reg, shutdown))),
        }
    });
    use futures::StreamExt;
    let stream = initial.chain(live).map(move |push| {
        let id = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, Infallible>(
            SseEvent::default()
                .event(push.kind())
                .id(format!("{}-{id}", Utc::now().timestamp_millis()))
                .json_data(&push)
                .expect("push messages serialise"),
        )
    });
    let mut response =
        Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
