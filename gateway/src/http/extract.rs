//! Request extractors whose rejections are [`ApiError`]s, so every bad input gets the contract's JSON error.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use pipeline::submission::KeyRefused;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{
    accounts::{Permission, Role, token::TokenError},
    error::ApiError,
    state::AppState,
};

/// `axum::Json` with JSON errors (400 malformed, 413 too large, 415 wrong content type). A whole number
/// written with a fraction (`3.0`) is an integer in JSON Schema and is taken as one; the body is read
/// a second time only when the first, strict reading failed.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("invalid_body", e.body_text())
            }
        })?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => {
                if let JsonRejection::JsonDataError(_) = rejection
                    && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes)
                    && whole_numbers_as_integers(&mut value)
                    && let Ok(parsed) = serde_json::from_value(value)
                {
                    return Ok(ApiJson(parsed));
                }
                Err(rejection.into())
            }
        }
    }
}

/// `application/json` or an `application/*+json` type, parameters (charset) ignored.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Rewrites every number with a zero fraction that an `i64` holds exactly (`-3.0`) as an integer;
/// whether anything changed.
fn whole_numbers_as_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => {
            items.iter_mut().fold(false, |changed, v| whole_numbers_as_integers(v) | changed)
        }
        Value::Object(fields) => {
            fields.values_mut().fold(false, |changed, v| whole_numbers_as_integers(v) | changed)
        }
        _ => false,
    }
}

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
    use super::{address_group, whole_numbers_as_integers};

    #[test]
    fn whole_numbers_with_a_fraction_read_as_integers_and_others_stay() {
        let mut v =
            serde_json::json!({ "quota": 3.0, "items": [{ "quantity": -2.0 }], "price": 1.5, "n": 7 });
        assert!(whole_numbers_as_integers(&mut v));
        assert_eq!(v, serde_json::json!({ "quota": 3, "items": [{ "quantity": -2 }], "price": 1.5, "n": 7 }));
        let mut unchanged = serde_json::json!({ "price": 1.5, "big": 1e300, "n": 7 });
        assert!(!whole_numbers_as_integers(&mut unchanged));
    }

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
