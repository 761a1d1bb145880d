//! Signed tokens (HS256 JWT). Each kind of token has its own audience, so a token issued for one purpose
//! (an access token) is refused where another is expected (an admission token, a visitor credential).

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Role;

const ISSUER: &str = "queue-checkout";
const ACCESS_AUDIENCE: &str = "access";

/// Claims of an access token: who the user is and the role at issue time.
#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Signing keys, derived once from `JWT_SECRET`.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
    access_ttl_secs: i64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl_secs: u64) -> Self {
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
            access_ttl_secs: access_ttl_secs as i64,
        }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    pub fn issue_access(&self, user: Uuid, role: Role) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user,
            role,
            iat: now,
            exp: now + self.access_ttl_secs,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[ACCESS_AUDIENCE]);
        v.set_issuer(&[ISSUER]);
        // No clock leeway: an expired token is expired.
        v.leeway = 0;
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_verifies_and_carries_the_role() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let id = Uuid::new_v4();
        let token = keys.issue_access(id, Role::Staff).unwrap();
        let claims = keys.verify_access(&token).unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!(claims.role, Role::Staff);
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let a = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let b = TokenKeys::new(b"fedcba9876543210fedcba9876543210", 3600);
        let token = a.issue_access(Uuid::new_v4(), Role::Admin).unwrap();
        assert_eq!(b.verify_access(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_tampered_role_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let token = keys.issue_access(Uuid::new_v4(), Role::Buyer).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].replace('b', "c");
        assert!(keys.verify_access(&parts.join(".")).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            role: Role::Buyer,
            iat: now - 7200,
            exp: now - 10,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify_access(&token).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", 3600);
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: Uuid::new_v4(),
            role: Role::Admin,
            iat: now,
            exp: now + 60,
            iss: ISSUER.into(),
            aud: "admission".into(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap();
        assert_eq!(keys.verify_access(&token).unwrap_err(), TokenError::Invalid);
    }
}
