//! Access tokens: who the user is, the role and the account's session version at issue time, signed with
//! the deployment's [`Signer`] under their own audience, so a waiting-room token is never accepted as an
//! access token. Whether the session still stands is [`super::sessions`]' question.

use serde::{Deserialize, Serialize};
pub use signing::TokenError;
use signing::{ISSUER, Signer};
use uuid::Uuid;

use super::Role;

const ACCESS_AUDIENCE: &str = "access";

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: Uuid,
    pub role: Role,
    /// The account's `token_version` at issue: a role change or a password reset moves it on.
    #[serde(default)]
    pub ver: i32,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

#[derive(Clone)]
pub struct TokenKeys {
    signer: Signer,
    access_ttl_secs: i64,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_ttl_secs: u64) -> Self {
        Self { signer: Signer::new(secret), access_ttl_secs: access_ttl_secs as i64 }
    }

    pub fn access_ttl_secs(&self) -> i64 {
        self.access_ttl_secs
    }

    pub fn issue_access(&self, user: Uuid, role: Role, version: i32) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        Ok(self.signer.sign(&AccessClaims {
            sub: user,
            role,
            ver: version,
            iat: now,
            exp: now + self.access_ttl_secs,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
        }))
    }

    pub fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.signer.verify(token, ACCESS_AUDIENCE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims(exp_in: i64, aud: &str) -> AccessClaims {
        let now = chrono::Utc::now().timestamp();
        AccessClaims {
            sub: Uuid::new_v4(),
            role: Role::Admin,
            ver: 0,
            iat: now,
            exp: now + exp_in,
            iss: ISSUER.into(),
            aud: aud.into(),
        }
    }

    #[test]
    fn an_issued_token_verifies_and_carries_the_role() {
        let keys = TokenKeys::new(SECRET, 3600);
        let id = Uuid::new_v4();
        let token = keys.issue_access(id, Role::Staff, 3).unwrap();
        let claims = keys.verify_access(&token).unwrap();
        assert_eq!(claims.sub, id);
        assert_eq!((claims.role, claims.ver), (Role::Staff, 3));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let a = TokenKeys::new(SECRET, 3600);
        let b = TokenKeys::new(b"fedcba9876543210fedcba9876543210", 3600);
        let token = a.issue_access(Uuid::new_v4(), Role::Admin, 0).unwrap();
        assert_eq!(b.verify_access(&token).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_tampered_role_is_refused() {
        let keys = TokenKeys::new(SECRET, 3600);
        let token = keys.issue_access(Uuid::new_v4(), Role::Buyer, 0).unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].replace('b', "c");
        assert!(keys.verify_access(&parts.join(".")).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let keys = TokenKeys::new(SECRET, 3600);
        let token = Signer::new(SECRET).sign(&claims(-10, ACCESS_AUDIENCE));
        assert_eq!(keys.verify_access(&token).unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn with_the_clock_moved_past_its_lifetime_an_access_token_is_expired() {
        let keys = TokenKeys::new(SECRET, 3600);
        let token = keys.issue_access(Uuid::new_v4(), Role::Buyer, 0).unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(keys.signer.verify_at::<AccessClaims>(&token, ACCESS_AUDIENCE, now + 3599).is_ok());
        let later = keys.signer.verify_at::<AccessClaims>(&token, ACCESS_AUDIENCE, now + 3601);
        assert_eq!(later.unwrap_err(), TokenError::Expired);
    }

    #[test]
    fn a_token_for_another_audience_is_refused() {
        let keys = TokenKeys::new(SECRET, 3600);
        let token = Signer::new(SECRET).sign(&claims(60, "admission"));
        assert_eq!(keys.verify_access(&token).unwrap_err(), TokenError::Invalid);
    }
}
