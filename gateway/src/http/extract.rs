//! Request extractors whose rejections are [`ApiError`]s, so every bad input gets the contract's JSON error.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts},
    http::{header, request::Parts},
};
use pipeline::submission::KeyRefused;
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

impl ClientIp {
    /// The address group that per-address limits count: an IPv4 address, or an IPv6 address's /64 (one
    /// host or one home network usually holds a whole /64, so counting its addresses one by one would
    /// give one machine millions of allowances). An IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn group(&self) -> String {
        address_group(self.0)
    }
}

pub fn address_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

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

/// The `Idempotency-Key` header: one per purchase or payment attempt (a retry sends the same), 1–255
/// visible ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.headers.get("idempotency-key").map_or(&[][..], |v| v.as_bytes());
        let key = pipeline::submission::idempotency_key(raw).map_err(|e| match e {
            KeyRefused::Missing => {
                ApiError::bad_request("missing_idempotency_key", "send an Idempotency-Key header")
            }
            KeyRefused::Invalid => ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be 1-255 visible ASCII characters",
            ),
        })?;
        Ok(IdempotencyKey(key.to_owned()))
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
        state.sessions.check(&claims).await?;
        Ok(AuthUser { id: claims.sub, role: claims.role })
    }
}

#[cfg(test)]
mod tests {
    use super::address_group;

    #[test]
    fn per_address_limits_count_ipv4_addresses_and_ipv6_networks() {
        let g = |s: &str| address_group(s.parse().unwrap());
        assert_eq!(g("203.0.113.7"), "203.0.113.7");
        assert_ne!(g("203.0.113.7"), g("203.0.113.8"));
        assert_eq!(g("2001:db8:1:2::1"), g("2001:db8:1:2:ffff:ffff:ffff:ffff"), "one /64, one group");
        assert_eq!(g("2001:db8:1:2::1"), "2001:db8:1:2::/64");
        assert_ne!(g("2001:db8:1:2::1"), g("2001:db8:1:3::1"));
        assert_eq!(g("::ffff:203.0.113.7"), "203.0.113.7");
    }
}
