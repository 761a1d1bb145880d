//! The one error type of the HTTP edge.
//!
//! Library modules return their own `thiserror` enums (or `sqlx::Error`); handlers turn them into
//! [`ApiError`], whose single [`ApiError::status`] match decides the HTTP status. Every error body has the
//! contract's shape `{"error":{"code","message"}}`. A 5xx is logged with its cause chain and the client gets
//! a generic message: internal details never leak.

use std::time::Duration;

use axum::{
    Json,
    extract::rejection::{JsonRejection, PathRejection, QueryRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is syntactically wrong (malformed JSON, bad query string, bad header).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request is well-formed but its content is not acceptable.
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("you do not have permission to do this")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    #[error("expected a JSON body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The path exists but not with this method (the `Allow` header lists the ones it has).
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("too many requests, retry later")]
    RateLimited { retry_after: Duration },
    #[error("{message}")]
    Unavailable { message: &'static str, retry_after: Duration },
    /// A provider we depend on (Midtrans) refused the call.
    #[error("{message}")]
    BadGateway { code: &'static str, message: String },
    /// A conflict whose answer carries more fields beside `code` and `message` (e.g. when and by whom a
    /// ticket was already scanned).
    #[error("{message}")]
    ConflictWith { code: &'static str, message: String, details: serde_json::Map<String, serde_json::Value> },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// The body of every error answer.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `validation_failed`, `email_taken`, `rate_limited`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Further fields of some errors (e.g. `checked_in_at`, `checked_in_by`).
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn validation(message: impl Into<String>) -> Self {
        ApiError::Validation(message.into())
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into() }
    }

    /// For `map_err` when Redis did not answer: logged, and the client is told to retry shortly.
    pub fn redis_down(message: &'static str) -> impl Fn(fred::error::Error) -> ApiError {
        move |e| {
            tracing::warn!(error = %e, message, "redis unavailable");
            ApiError::Unavailable { message, retry_after: Duration::from_secs(2) }
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } | ApiError::ConflictWith { .. } => StatusCode::CONFLICT,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::ConflictWith { code, .. }
            | ApiError::BadGateway { code, .. } => code,
            ApiError::Validation(_) => "validation_failed",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } | ApiError::Unavailable { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "request failed");
        }
        let code = self.code();
        let message = self.to_string();
        let retry_after = self.retry_after();
        let details = match self {
            ApiError::ConflictWith { details, .. } => details,
            _ => serde_json::Map::new(),
        };
        let body = ErrorBody { error: ErrorDetail { code, message, details } };
        let mut response = (status, Json(body)).into_response();
        if let Some(after) = retry_after {
            // Retry-After is whole seconds; never tell a client to retry "now".
            let secs = after.as_secs_f64().ceil().max(1.0) as u64;
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Pool exhausted for longer than DB_ACQUIRE_TIMEOUT_MS: shed load instead of piling up.
            sqlx::Error::PoolTimedOut => ApiError::Unavailable {
                message: "the service is busy, retry shortly",
                retry_after: Duration::from_secs(1),
            },
            // PostgreSQL unreachable, restarting or shutting down: nothing was done, and a retry in a
            // moment will find it back (the pool reconnects by itself).
            e if database_unreachable(&e) => {
                tracing::warn!(error = %e, "PostgreSQL unreachable");
                ApiError::Unavailable {
                    message: "the database is unavailable, retry shortly",
                    retry_after: Duration::from_secs(2),
                }
            }
            other => ApiError::Internal(anyhow::Error::new(other).context("database")),
        }
    }
}

/// Whether `e` says the database cannot be reached now (connection lost or refused, server restarting or
/// shutting down: SQLSTATE classes 08 and 57P) rather than that a statement failed.
fn database_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_body", body_text(&e)),
            JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", body_text(&e)),
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

/// serde's message (e.g. "unknown field `x`, expected ..." or "invalid type: string, expected i64") without
/// axum's generic preamble.
fn body_text(e: &dyn std::error::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        // A malformed id names nothing that exists.
        ApiError::NotFound("resource")
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

/// Maps a unique or check violation on a named constraint to an API error; anything else stays internal.
pub fn on_constraint(e: sqlx::Error, map: impl FnOnce(&str) -> Option<ApiError>) -> ApiError {
    if let sqlx::Error::Database(db) = &e
        && let Some(name) = db.constraint()
        && let Some(mapped) = map(name)
    {
        return mapped;
    }
    e.into()
}
