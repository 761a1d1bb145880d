//! Request extractors whose rejections are [`ApiError`]s, so every bad input gets the contract's JSON error.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts},
    http::{header, request::Parts},
};
use uuid::Uuid;

use crate::{
    accounts::{Permission, Role, token::TokenError},
    error::ApiError,
    state::AppState,
};

/// `axum::Json` with JSON errors (400 malformed, 413 too large, 415 wrong content type).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path`; a malformed id is a 404 (it names nothing that exists).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with a 400 JSON error.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The client's address: the socket peer, or the last `X-Forwarded-For` hop when the gateway runs behind a
/// trusted proxy (`TRUST_FORWARDED_FOR`).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config.trust_forwarded_for
            && let Some(ip) = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse::<IpAddr>().ok())
        {
            return Ok(ClientIp(ip));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientIp(peer))
    }
}

/// A request carrying a valid access token.
#[derive(Clone, Copy, Debug)]
pub struct AuthUser {
    pub id: Uuid,
    pub role: Role,
}

impl AuthUser {
    /// Continues only if the user's role grants `permission` (403 otherwise).
    pub fn require(self, permission: Permission) -> Result<Self, ApiError> {
        if self.role.grants(permission) { Ok(self) } else { Err(ApiError::Forbidden) }
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header =
            parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized("missing bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized("authorization must be `Bearer <token>`"))?;
        let claims = state.tokens.verify_access(token).map_err(|e| match e {
            TokenError::Expired => ApiError::Unauthorized("token expired"),
            TokenError::Invalid | TokenError::WrongHolder => ApiError::Unauthorized("invalid token"),
        })?;
        Ok(AuthUser { id: claims.sub, role: claims.role })
    }
}
