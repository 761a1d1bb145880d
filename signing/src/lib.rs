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

    /// Checks signature, issuer, `audience` and expiry (no leeway) against the system clock and returns
    /// the claims.
    pub fn verify<T: for<'de> Deserialize<'de>>(&self, token: &str, audience: &str) -> Result<T, TokenError> {
        self.verify_at(token, audience, now_secs())
    }

    /// [`Signer::verify`] with the clock reading `now` (seconds since the epoch): a token is expired once
    /// `now` is past its `exp`. Only HS256 with this key is accepted (`alg: none`, other algorithms and
    /// other keys are refused).
    pub fn verify_at<T: for<'de> Deserialize<'de>>(
        &self,
        token: &str,
        audience: &str,
        now: i64,
    ) -> Result<T, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_audience(&[audience]);
        v.set_issuer(&[ISSUER]);
        v.leeway = 0;
        // Expiry is checked below against the given clock (the claim must still be there).
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &self.decoding, &v)
            .map_err(|_| TokenError::Invalid)?
            .claims;
        let exp = claims.get("exp").and_then(serde_json::Value::as_i64).ok_or(TokenError::Invalid)?;
        if exp < now {
            return Err(TokenError::Expired);
        }
        serde_json::from_value(claims).map_err(|_| TokenError::Invalid)
    }
}

/// The system clock, in seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use serde::{Deserialize, Serialize};

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
        iss: String,
        aud: String,
    }

    fn claims(exp: i64, aud: &str) -> Claims {
        Claims { sub: "someone".into(), exp, iss: ISSUER.into(), aud: aud.into() }
    }

    /// A token with any header and payload, signed (or not) as given.
    fn forge(header: &str, payload: &Claims, signature: &[u8]) -> String {
        let enc = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
        format!(
            "{}.{}.{}",
            enc(header.as_bytes()),
            enc(&serde_json::to_vec(payload).unwrap()),
            enc(signature)
        )
    }

    #[test]
    fn a_token_expires_when_the_clock_passes_its_exp_and_not_before() {
        let s = Signer::new(KEY);
        let now = 1_900_000_000;
        let t = s.sign(&claims(now + 60, "a"));
        assert_eq!(s.verify_at::<Claims>(&t, "a", now).unwrap().exp, now + 60);
        assert!(s.verify_at::<Claims>(&t, "a", now + 60).is_ok(), "valid through its last second");
        assert_eq!(s.verify_at::<Claims>(&t, "a", now + 61), Err(TokenError::Expired));
        assert_eq!(s.verify_at::<Claims>(&t, "a", now + 86_400 * 365), Err(TokenError::Expired));
    }

    #[test]
    fn alg_none_other_algorithms_other_keys_and_audiences_are_refused() {
        let s = Signer::new(KEY);
        let exp = now_secs() + 600;
        let good = s.sign(&claims(exp, "a"));
        assert!(s.verify::<Claims>(&good, "a").is_ok());
        // Unsigned (`alg: none`), with or without a signature part.
        let none = forge(r#"{"alg":"none","typ":"JWT"}"#, &claims(exp, "a"), b"");
        assert_eq!(s.verify::<Claims>(&none, "a"), Err(TokenError::Invalid));
        // An RS256 header over an HMAC of the key (the "public key as HMAC secret" confusion).
        let signature = good.rsplit('.').next().unwrap();
        let parts: Vec<&str> = good.split('.').collect();
        let rs =
            format!("{}.{}.{signature}", URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#), parts[1]);
        assert_eq!(s.verify::<Claims>(&rs, "a"), Err(TokenError::Invalid));
        let hs512 =
            format!("{}.{}.{signature}", URL_SAFE_NO_PAD.encode(br#"{"alg":"HS512","typ":"JWT"}"#), parts[1]);
        assert_eq!(s.verify::<Claims>(&hs512, "a"), Err(TokenError::Invalid));
        // Another deployment's key, another audience, another issuer, a changed payload.
        let foreign = Signer::new(b"fedcba9876543210fedcba9876543210").sign(&claims(exp, "a"));
        assert_eq!(s.verify::<Claims>(&foreign, "a"), Err(TokenError::Invalid));
        assert_eq!(s.verify::<Claims>(&good, "b"), Err(TokenError::Invalid));
        let other_issuer = s.sign(&Claims { iss: "someone-else".into(), ..claims(exp, "a") });
        assert_eq!(s.verify::<Claims>(&other_issuer, "a"), Err(TokenError::Invalid));
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(exp + 9_999, "a")).unwrap()),
            parts[2]
        );
        assert_eq!(s.verify::<Claims>(&tampered, "a"), Err(TokenError::Invalid));
        // Without an expiry at all.
        #[derive(Serialize)]
        struct Forever {
            sub: String,
            iss: String,
            aud: String,
        }
        let forever = s.sign(&Forever { sub: "x".into(), iss: ISSUER.into(), aud: "a".into() });
        assert_eq!(s.verify::<Claims>(&forever, "a"), Err(TokenError::Invalid));
        for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(10_000)] {
            assert_eq!(s.verify::<Claims>(junk, "a"), Err(TokenError::Invalid), "{junk:.20}");
        }
    }
}
