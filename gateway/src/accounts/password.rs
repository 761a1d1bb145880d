//! Password hashing with argon2id. Hashing is deliberately slow (tens of milliseconds), so it runs on the
//! blocking pool and at most a fixed number run at once: a login flood queues here briefly or is told to
//! retry, instead of starving every other request of CPU.

use std::{sync::Arc, time::Duration};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

use crate::error::ApiError;

#[derive(Clone)]
pub struct PasswordHasherPool {
    /// Bounds concurrent argon2 runs (each uses ~19 MiB and a core for tens of milliseconds).
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the email is unknown so that a login for a
    /// missing account takes as long as one for an existing account.
    dummy_hash: Arc<String>,
}

impl PasswordHasherPool {
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let dummy = hash_now(&uuid::Uuid::new_v4().to_string())?;
        Ok(Self { permits: Arc::new(Semaphore::new(concurrency.max(1))), dummy_hash: Arc::new(dummy) })
    }

    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.acquire().await?;
        tokio::task::spawn_blocking(move || hash_now(&password))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(ApiError::Internal)
    }

    /// `stored` is None when the account does not exist: a dummy hash is checked so timing stays the same.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let _permit = self.acquire().await?;
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.as_ref().clone());
        let ok = tokio::task::spawn_blocking(move || verify_now(&password, &hash))
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(known && ok)
    }

    async fn acquire(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        // Waiting longer than this means the hashers are saturated: ask the client to come back.
        match tokio::time::timeout(Duration::from_secs(3), self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ApiError::Unavailable {
                message: "too many sign-ins at once, retry shortly",
                retry_after: Duration::from_secs(2),
            }),
        }
    }
}

/// argon2id with the crate's default (OWASP-recommended) parameters and a fresh random salt.
pub fn hash_now(password: &str) -> anyhow::Result<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| anyhow::anyhow!("argon2 hash failed: {e}"))?;
    Ok(hash.to_string())
}

fn verify_now(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash_now("correct horse").unwrap();
        let b = hash_now("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_now("correct horse", &a));
        assert!(!verify_now("wrong horse", &a));
        assert!(!verify_now("anything", "not a hash"));
    }
}
