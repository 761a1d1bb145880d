//! The HTTP surface: one router per domain module, merged here, under one middleware stack.
//!
//! Stack, outermost first: request id → trace span (carries the id on every log line) → panic catcher →
//! load shedding, in-flight limit and global timeout (fast JSON 503 with Retry-After instead of a pile-up)
//! → CORS → compression → per-route metrics → handlers. Bodies are capped at `BODY_LIMIT_BYTES`.

pub mod extract;
pub mod page;
pub mod pages;
pub mod text;

use std::{any::Any, time::Duration};

use axum::{
    BoxError, Router,
    error_handling::HandleErrorLayer,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, HeaderValue, Method, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{
    accounts, admin, catalog, error::ApiError, health, openapi::ApiDoc, orders, payments, queue,
    state::AppState, tickets,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes and their OpenAPI document, completed with the shared answers and the links.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (api, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(catalog::routes::router())
        .merge(accounts::routes::router())
        .merge(queue::router())
        .merge(orders::router())
        .merge(payments::router())
        .merge(tickets::router())
        .merge(admin::router())
        .merge(health::router())
        .split_for_parts();
    crate::openapi::add_common_answers(&mut doc);
    crate::openapi::add_links(&mut doc);
    (api, doc)
}

/// The full application router for `state`.
pub fn router(state: AppState) -> std::io::Result<Router> {
    let (api, doc) = api();
    let doc_json = serde_json::to_string(&doc).expect("the OpenAPI document serialises");

    let config = state.config.clone();
    let web = pages::storefront(&config.web_dir)?;

    Ok(api
        .route(
            "/api/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], doc_json) }),
        )
        .route("/api/docs", get(|| async { Html(crate::openapi::VIEWER_HTML) }))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback_service(web)
        .layer(middleware::from_fn(track_metrics))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(CompressionLayer::new())
        .layer(cors(&config.cors_origin_list().unwrap_or_default()))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .concurrency_limit(config.max_in_flight_requests)
                .timeout(config.request_timeout()),
        )
        .layer(CatchPanicLayer::custom(panicked))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state))
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()).collect::<Vec<_>>())
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("admission-token"),
            HeaderName::from_static("visitor-token"),
        ])
        .expose_headers([REQUEST_ID, header::RETRY_AFTER, header::ETAG])
        .max_age(Duration::from_secs(600))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn overloaded(err: BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        metrics::counter!("http_timeouts_total").increment(1);
        ApiError::Unavailable {
            message: "the request took too long, retry shortly",
            retry_after: Duration::from_secs(1),
        }
    } else {
        metrics::counter!("http_shed_total").increment(1);
        ApiError::Unavailable {
            message: "the service is busy, retry shortly",
            retry_after: Duration::from_secs(1),
        }
    }
}

fn panicked(_: Box<dyn Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Request count and latency per route template (not per raw path, which would explode the label set).
async fn track_metrics(req: Request, next: Next) -> Response {
    let start = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
