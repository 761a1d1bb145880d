//! The waiting room's signed tokens (HS256 JWT, signed by the deployment's [`Signer`] from the `signing`
//! crate, each kind under its own audience, so one kind is refused where another is expected):
//!
//! - the **visitor token** names one visitor of one event; a rejoin with it keeps the place;
//! - the **admission token** lets that visitor, once admitted, submit one checkout for that event before it
//!   expires. Its `jti` is stored with the checkout request it pays for, under a unique constraint in
//!   PostgreSQL (the gateway's order intake), so it cannot be replayed, and it is bound to the visitor, so
//!   it cannot be shared.

use serde::{Deserialize, Serialize};
pub use signing::{ISSUER, Signer, TokenError};
use uuid::Uuid;

const VISITOR: &str = "visitor";
const ADMISSION: &str = "admission";
/// A visitor credential outlives any realistic wait.
const VISITOR_TTL_SECS: i64 = 7 * 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct VisitorClaims {
    /// The visitor id.
    pub sub: Uuid,
    pub event: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AdmissionClaims {
    /// The admitted visitor.
    pub sub: Uuid,
    pub event: Uuid,
    /// The visitor's place in the queue.
    pub seq: i64,
    /// Spent at checkout. The same admission re-sent (a reconnect, a status poll) carries the same `jti`;
    /// it names the visitor, its sequence number and its expiry, so it stays unique per event even after a
    /// Redis restart starts the sequence numbers again.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// The waiting room's own kinds of token, signed by the deployment's [`Signer`].
pub trait RoomTokens {
    fn visitor(&self, event: Uuid, visitor: Uuid, now_secs: i64) -> String;
    /// The visitor named by `token`, which must belong to `event`.
    fn verify_visitor(&self, token: &str, event: Uuid) -> Result<Uuid, TokenError>;
    /// Signs `visitor`'s admission (number `seq`, valid until `expires_ms`). Signing the same admission
    /// again gives a token with the same `jti`.
    fn admission(&self, event: Uuid, visitor: Uuid, seq: i64, now_secs: i64, expires_ms: i64) -> String;
    /// Checks signature, expiry, event and holder. Spending the `jti` is the caller's next step.
    fn verify_admission(
        &self,
        token: &str,
        event: Uuid,
        visitor: Uuid,
    ) -> Result<AdmissionClaims, TokenError> {
        self.verify_admission_at(token, event, visitor, signing::now_secs())
    }
    /// [`RoomTokens::verify_admission`] with the clock reading `now_secs`.
    fn verify_admission_at(
        &self,
        token: &str,
        event: Uuid,
        visitor: Uuid,
        now_secs: i64,
    ) -> Result<AdmissionClaims, TokenError>;
}

impl RoomTokens for Signer {
    fn visitor(&self, event: Uuid, visitor: Uuid, now_secs: i64) -> String {
        self.sign(&VisitorClaims {
            sub: visitor,
            event,
            iat: now_secs,
            exp: now_secs + VISITOR_TTL_SECS,
            iss: ISSUER.into(),
            aud: VISITOR.into(),
        })
    }

    fn verify_visitor(&self, token: &str, event: Uuid) -> Result<Uuid, TokenError> {
        let claims: VisitorClaims = self.verify(token, VISITOR)?;
        if claims.event != event {
            return Err(TokenError::WrongHolder);
        }
        Ok(claims.sub)
    }

    fn admission(&self, event: Uuid, visitor: Uuid, seq: i64, now_secs: i64, expires_ms: i64) -> String {
        self.sign(&AdmissionClaims {
            sub: visitor,
            event,
            seq,
            jti: admission_jti(visitor, seq, expires_ms),
            iat: now_secs,
            exp: expires_ms.div_euclid(1000),
            iss: ISSUER.into(),
            aud: ADMISSION.into(),
        })
    }

    fn verify_admission_at(
        &self,
        token: &str,
        event: Uuid,
        visitor: Uuid,
        now_secs: i64,
    ) -> Result<AdmissionClaims, TokenError> {
        let claims: AdmissionClaims = self.verify_at(token, ADMISSION, now_secs)?;
        if claims.event != event || claims.sub != visitor {
            return Err(TokenError::WrongHolder);
        }
        Ok(claims)
    }
}

/// One admission's identity: who, which place, until when.
fn admission_jti(visitor: Uuid, seq: i64, expires_ms: i64) -> String {
    format!("{}.{seq}.{expires_ms}", visitor.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    #[test]
    fn a_visitor_token_is_bound_to_its_event() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let (e, v) = (Uuid::new_v4(), Uuid::new_v4());
        let t = s.visitor(e, v, now());
        assert_eq!(s.verify_visitor(&t, e), Ok(v));
        assert_eq!(s.verify_visitor(&t, Uuid::new_v4()), Err(TokenError::WrongHolder));
    }

    #[test]
    fn an_admission_token_is_bound_to_its_visitor_and_expires() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let (e, v) = (Uuid::new_v4(), Uuid::new_v4());
        let t = s.admission(e, v, 7, now(), (now() + 60) * 1000);
        let c = s.verify_admission(&t, e, v).unwrap();
        assert_eq!(c.seq, 7);
        let again = s.admission(e, v, 7, now() + 5, (now() + 60) * 1000);
        assert_eq!(s.verify_admission(&again, e, v).unwrap().jti, c.jti, "a re-sent admission is the same");
        let (w, exp) = (Uuid::new_v4(), (now() + 60) * 1000);
        assert_ne!(
            admission_jti(v, 7, exp),
            admission_jti(w, 7, exp),
            "another visitor with the same number"
        );
        assert_ne!(admission_jti(v, 7, exp), admission_jti(v, 7, exp + 1), "a later admission after a reset");
        assert_eq!(s.verify_admission(&t, e, Uuid::new_v4()), Err(TokenError::WrongHolder));
        let old = s.admission(e, v, 7, now() - 100, (now() - 5) * 1000);
        assert_eq!(s.verify_admission(&old, e, v), Err(TokenError::Expired));
    }

    #[test]
    fn with_the_clock_moved_forward_an_admission_expires_at_its_end_and_a_visitor_credential_at_its_own() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let (e, v, t0) = (Uuid::new_v4(), Uuid::new_v4(), now());
        let admission = s.admission(e, v, 3, t0, (t0 + 120) * 1000);
        assert!(s.verify_admission_at(&admission, e, v, t0 + 119).is_ok());
        assert_eq!(s.verify_admission_at(&admission, e, v, t0 + 121), Err(TokenError::Expired));
        let visitor = s.visitor(e, v, t0);
        let claims: VisitorClaims = s.verify_at(&visitor, VISITOR, t0 + VISITOR_TTL_SECS).unwrap();
        assert_eq!(claims.sub, v);
        assert_eq!(
            s.verify_at::<VisitorClaims>(&visitor, VISITOR, t0 + VISITOR_TTL_SECS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn kinds_and_keys_do_not_mix() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let other = Signer::new(b"fedcba9876543210fedcba9876543210");
        let (e, v) = (Uuid::new_v4(), Uuid::new_v4());
        let visitor = s.visitor(e, v, now());
        assert_eq!(s.verify_admission(&visitor, e, v), Err(TokenError::Invalid));
        let admission = s.admission(e, v, 1, now(), (now() + 60) * 1000);
        assert_eq!(s.verify_visitor(&admission, e), Err(TokenError::Invalid));
        assert_eq!(other.verify_admission(&admission, e, v), Err(TokenError::Invalid));
    }
}
