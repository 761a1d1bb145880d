//! Operations endpoints: liveness, readiness (PostgreSQL and Redis reachable), Prometheus metrics.

use std::time::Duration;

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{ratelimit::redis_ready, state::AppState};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub postgres: bool,
    pub redis: bool,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// PostgreSQL and Redis are reachable; 503 otherwise (load balancers stop sending traffic).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let pg = async {
        matches!(
            tokio::time::timeout(
                Duration::from_millis(1000),
                sqlx::query_scalar!("select 1 as \"one!\"").fetch_one(&state.db)
            )
            .await,
            Ok(Ok(1))
        )
    };
    let (postgres, redis) = tokio::join!(pg, redis_ready(&state.redis));
    let ok = postgres && redis;
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ok { "ready" } else { "not_ready" }, postgres, redis }))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    metrics::gauge!("db_pool_connections").set(f64::from(state.db.size()));
    metrics::gauge!("db_pool_idle_connections").set(state.db.num_idle() as f64);
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], telemetry::metrics_handle().render())
}
