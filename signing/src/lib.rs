//! The deployment's signed tokens (HS256 JWT). Every kind of token (the gateway's access tokens, the
//! waiting room's visitor and admission tokens) is signed by one [`Signer`] under one issuer and its own
//! audience, so a token of one kind is refused where another is expected. Each owner defines its kinds'
//! claims; this crate only signs and checks.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Issuer of every token this deployment signs.
pub const ISSUER: &str = "queue-checkout";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("token invalid")]
    Invalid,
    #[error("token belongs to another event or visitor")]
    WrongHolder,
}

#[derive(Clone)]
pub struct Signer {
    encoding: Arc<EncodingKey>,
    decoding: Arc<DecodingKey>,
}

impl Signer {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: Arc::new(EncodingKey::from_secret(secret)),
            decoding: Arc::new(DecodingKey::from_secret(secret)),
        }
    }

    /// Signs any claims (HS256). The claims must carry `iss` = [`ISSUER`] and an `aud` to be verifiable.
    pub fn sign<T: Serialize>(&self, claims: &T) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// Checks signature, issuer, `audience` and expiry (no leeway) and returns the claims.
    pub fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str, audience: &str) -> Result<T, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[audience]);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        jsonwebtoken::decode::<T>(token, &self.decoding, &v).map(|d| d.claims).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })
    }
}
