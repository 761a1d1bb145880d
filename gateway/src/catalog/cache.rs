//! A tiny in-process cache for the public catalog, with one loader per key at a time.
//!
//! When a sale opens, thousands of browsers ask for the same event page in the same second. Serving them
//! from memory for `CATALOG_CACHE_TTL_MS` (one second by default) turns thousands of identical queries into
//! one per second per gateway, while the live stock people act on comes from the push channel and every
//! sale is still decided by PostgreSQL. Concurrent misses of one key share a single load.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::body::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::error::ApiError;

/// Upper bound on cached keys; past it the cache starts over (protects memory from random-id floods).
const MAX_KEYS: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Cached {
    pub body: Bytes,
    /// Strong validator: a hash of the body, quoted as HTTP requires.
    pub etag: String,
}

impl Cached {
    pub fn new(body: Bytes) -> Self {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", &hex::encode(digest)[..32]);
        Cached { body, etag }
    }
}

struct Slot {
    born: Instant,
    /// `None` inside means "not found", which is cached too.
    cell: OnceCell<Option<Cached>>,
}

#[derive(Clone)]
pub struct CatalogCache {
    ttl: Duration,
    slots: Arc<Mutex<HashMap<String, Arc<Slot>>>>,
}

impl CatalogCache {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, slots: Arc::new(Mutex::new(HashMap::new())) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The cached answer for `key`, or the result of `load` (shared with concurrent callers).
    pub async fn get_or_load<F, Fut>(&self, key: &str, load: F) -> Result<Option<Cached>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, ApiError>>,
    {
        if self.ttl.is_zero() {
            return Ok(load().await?.map(Cached::new));
        }
        let slot = {
            let mut slots = self.slots.lock().expect("cache lock");
            match slots.get(key) {
                Some(s) if s.born.elapsed() < self.ttl => s.clone(),
                _ => {
                    if slots.len() >= MAX_KEYS {
                        slots.clear();
                    }
                    let s = Arc::new(Slot { born: Instant::now(), cell: OnceCell::new() });
                    slots.insert(key.to_owned(), s.clone());
                    s
                }
            }
        };
        let value =
            slot.cell.get_or_try_init(|| async { Ok::<_, ApiError>(load().await?.map(Cached::new)) }).await?;
        Ok(value.clone())
    }

    /// Forget everything (after an admin change, so this gateway shows it at once).
    pub fn clear(&self) {
        self.slots.lock().expect("cache lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_misses_share_one_load() {
        let cache = CatalogCache::new(Duration::from_secs(60));
        let loads = Arc::new(AtomicUsize::new(0));
        let barrier = Arc::new(tokio::sync::Barrier::new(50));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, loads, barrier) = (cache.clone(), loads.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_or_load("k", || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(Some(Bytes::from_static(b"{}")))
                    })
                    .await
                    .unwrap()
                    .unwrap()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().body, Bytes::from_static(b"{}"));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn clear_forces_a_reload_and_etags_follow_the_body() {
        let cache = CatalogCache::new(Duration::from_secs(60));
        let a =
            cache.get_or_load("k", || async { Ok(Some(Bytes::from_static(b"a"))) }).await.unwrap().unwrap();
        cache.clear();
        let b =
            cache.get_or_load("k", || async { Ok(Some(Bytes::from_static(b"b"))) }).await.unwrap().unwrap();
        assert_eq!(b.body, Bytes::from_static(b"b"));
        assert_ne!(a.etag, b.etag);
    }

    #[tokio::test]
    async fn a_failed_load_is_not_cached() {
        let cache = CatalogCache::new(Duration::from_secs(60));
        let err = cache.get_or_load("k", || async { Err(ApiError::Forbidden) }).await;
        assert!(err.is_err());
        let ok = cache.get_or_load("k", || async { Ok(Some(Bytes::from_static(b"x"))) }).await.unwrap();
        assert!(ok.is_some());
    }
}
