//! Staying inside an AWS account's API quotas from the console's side: a
//! token bucket per API (Amazon Connect allows 2 requests per second with a
//! burst of 5 per API by default, shared with every other integration in the
//! account) and a limit on the calls one service has in flight at once.
//! The SDK's standard retry (with backoff) handles what still gets throttled.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::sources::SourceError;

/// How hard the console may call one AWS service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceQuota {
    /// Requests per second, per API.
    pub per_second: NonZeroU32,
    /// Requests one API may send at once after a quiet spell.
    pub burst: NonZeroU32,
    /// Calls to the service in flight at once.
    pub concurrency: usize,
    /// Attempts per call, the first included (the SDK's standard retry).
    pub max_attempts: u32,
    /// The SDK's first retry backoff (it grows exponentially, with jitter).
    pub initial_backoff: Duration,
    /// How long a call may wait for its turn here before the console says
    /// the service is busy.
    pub max_wait: Duration,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(n) => n,
        None => NonZeroU32::MIN,
    }
}

impl ServiceQuota {
    /// Amazon Connect's default: 2 requests per second, burst 5, per API.
    pub const CONNECT: Self = Self {
        per_second: nz(2),
        burst: nz(5),
        concurrency: 4,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(500),
        max_wait: Duration::from_secs(10),
    };

    /// CloudWatch Logs: FilterLogEvents and DescribeLogStreams allow 5
    /// requests per second per account and Region (GetLogEvents more).
    pub const LOGS: Self = Self {
        per_second: nz(5),
        burst: nz(5),
        concurrency: 4,
        max_attempts: 3,
        initial_backoff: Duration::from_millis(500),
        max_wait: Duration::from_secs(10),
    };

    /// The SDK retry configuration this quota asks for.
    pub fn retry_config(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard()
            .with_max_attempts(self.max_attempts.max(1))
            .with_initial_backoff(self.initial_backoff)
            .with_max_backoff(self.initial_backoff.saturating_mul(8))
    }
}

/// The token buckets of one service's APIs and its in-flight limit.
pub struct Limiter {
    quota: ServiceQuota,
    buckets: BTreeMap<&'static str, DefaultDirectRateLimiter>,
    in_flight: Arc<Semaphore>,
}

/// A call's turn: hold it until the call has answered.
pub struct Turn<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Limiter {
    /// Buckets for each of `apis` (operation names).
    pub fn new(quota: ServiceQuota, apis: &[&'static str]) -> Self {
        let per_api = Quota::per_second(quota.per_second).allow_burst(quota.burst);
        Self {
            quota,
            buckets: apis
                .iter()
                .map(|api| (*api, DefaultDirectRateLimiter::direct(per_api)))
                .collect(),
            in_flight: Arc::new(Semaphore::new(quota.concurrency.max(1))),
        }
    }

    pub fn quota(&self) -> ServiceQuota {
        self.quota
    }

    /// Waits for a free slot and a token of `api`'s bucket; `Throttled`
    /// if that takes longer than the quota's `max_wait`.
    pub async fn turn(&self, api: &'static str) -> Result<Turn<'_>, SourceError> {
        let wait = async {
            let permit = self
                .in_flight
                .acquire()
                .await
                .map_err(|_| SourceError::Unavailable("limiter closed".into()))?;
            if let Some(bucket) = self.buckets.get(api) {
                bucket.until_ready().await;
            }
            Ok(Turn { _permit: permit })
        };
        tokio::time::timeout(self.quota.max_wait, wait)
            .await
            .map_err(|_| SourceError::Throttled)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_served_without_waiting_and_unknown_apis_are_unlimited() {
        let limiter = Limiter::new(ServiceQuota::CONNECT, &["DescribeContact"]);
        for _ in 0..5 {
            let turn = limiter.turn("DescribeContact").await;
            assert!(turn.is_ok());
        }
        assert!(limiter.turn("Other").await.is_ok());
    }

    #[tokio::test]
    async fn a_call_that_cannot_get_a_turn_in_time_is_throttled() {
        let quota = ServiceQuota {
            concurrency: 1,
            max_wait: Duration::from_millis(1),
            ..ServiceQuota::CONNECT
        };
        let limiter = Limiter::new(quota, &["DescribeContact"]);
        let _held = limiter.turn("DescribeContact").await;
        assert!(matches!(
            limiter.turn("DescribeContact").await,
            Err(SourceError::Throttled)
        ));
    }
}
