//! A short-lived, bounded cache of contact descriptions and attributes in
//! front of a `ContactDirectory`, so a repeat view or a reveal soon after a
//! view costs no Connect call. Concurrent requests for the same contact are
//! coalesced into one call (`moka`'s `try_get_with`). Only what Connect
//! returns is held (attribute values are ciphertext or plain metadata);
//! decrypted values never pass through here. Errors are not cached.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lambda_encrypt::context::ContactId;
use moka::future::Cache;

use crate::clock::SharedClock;
use crate::sources::contacts::{ContactDirectory, ContactSearch, ContactSummary, DirectoryNames};
use crate::sources::{Page, SourceError};

/// How long and how much the cache keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Entries older than this are read again (0: no cache).
    pub ttl: Duration,
    /// Contacts kept at most (per kind).
    pub capacity: u64,
    /// A reveal re-reads the attributes unless the cached copy is younger.
    pub reveal_max_age: Duration,
}

impl CacheSettings {
    /// The defaults (`CALLVAULT_CONTACT_CACHE_SECS` declares its default from `ttl`).
    pub const DEFAULT: Self = Self {
        ttl: Duration::from_secs(60),
        capacity: 10_000,
        reveal_max_age: Duration::from_secs(30),
    };
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self::DEFAULT
    }
}

type Attributes = BTreeMap<String, String>;

/// `ContactDirectory` with a cache of `describe` and `attributes`.
pub struct CachedDirectory {
    inner: Arc<dyn ContactDirectory>,
    clock: SharedClock,
    settings: CacheSettings,
    described: Cache<String, Arc<ContactSummary>>,
    /// (fetched at, µs; attributes)
    attributes: Cache<String, Arc<(i64, Attributes)>>,
    /// The instance's agents and queues, read again after [`NAMES_TTL`].
    names: Cache<(), Arc<DirectoryNames>>,
}

/// Agents and queues change rarely: their names are read every five minutes
/// at most (two to a few dozen calls, whatever the number of supervisors).
pub const NAMES_TTL: Duration = Duration::from_secs(300);

impl CachedDirectory {
    pub fn new(
        inner: Arc<dyn ContactDirectory>,
        settings: CacheSettings,
        clock: SharedClock,
    ) -> Self {
        let ttl = settings.ttl.max(Duration::from_millis(1));
        Self {
            inner,
            clock,
            settings,
            described: Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(ttl)
                .build(),
            attributes: Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(ttl)
                .build(),
            names: Cache::builder()
                .max_capacity(1)
                .time_to_live(NAMES_TTL)
                .build(),
        }
    }

    fn enabled(&self) -> bool {
        !self.settings.ttl.is_zero() && self.settings.capacity > 0
    }
}

fn unshare(e: Arc<SourceError>) -> SourceError {
    (*e).clone()
}

#[async_trait::async_trait]
impl ContactDirectory for CachedDirectory {
    fn page_size(&self) -> usize {
        self.inner.page_size()
    }

    async fn search(&self, query: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        // An exact id is a describe: served from the cache like the contact page.
        if let Some(id) = &query.contact_id {
            return match self.describe(id).await {
                Ok(c) => Ok(Page {
                    items: vec![c],
                    next_token: None,
                    total: Some(1),
                }),
                Err(SourceError::NotFound) => Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                    total: Some(0),
                }),
                Err(e) => Err(e),
            };
        }
        self.inner.search(query).await
    }

    async fn describe(&self, id: &ContactId) -> Result<ContactSummary, SourceError> {
        if !self.enabled() {
            return self.inner.describe(id).await;
        }
        let inner = Arc::clone(&self.inner);
        let found = self
            .described
            .try_get_with(id.as_str().to_owned(), async move {
                inner.describe(id).await.map(Arc::new)
            })
            .await
            .map_err(unshare)?;
        Ok((*found).clone())
    }

    async fn attributes(&self, initial: &ContactId) -> Result<Attributes, SourceError> {
        if !self.enabled() {
            return self.inner.attributes(initial).await;
        }
        let inner = Arc::clone(&self.inner);
        let clock = Arc::clone(&self.clock);
        let found = self
            .attributes
            .try_get_with(initial.as_str().to_owned(), async move {
                let attrs = inner.attributes(initial).await?;
                Ok::<_, SourceError>(Arc::new((clock.now_us(), attrs)))
            })
            .await
            .map_err(unshare)?;
        Ok(found.1.clone())
    }

    async fn fresh_attributes(&self, initial: &ContactId) -> Result<Attributes, SourceError> {
        if self.enabled() {
            if let Some(entry) = self.attributes.get(initial.as_str()).await {
                let age_us = self.clock.now_us().saturating_sub(entry.0);
                let max_us =
                    i64::try_from(self.settings.reveal_max_age.as_micros()).unwrap_or(i64::MAX);
                if age_us <= max_us {
                    return Ok(entry.1.clone());
                }
            }
            self.attributes.invalidate(initial.as_str()).await;
        }
        self.attributes(initial).await
    }

    async fn names(&self) -> Result<Arc<DirectoryNames>, SourceError> {
        let inner = Arc::clone(&self.inner);
        self.names
            .try_get_with((), async move { inner.names().await })
            .await
            .map_err(unshare)
    }
}
