//! Sign-in throttling per account and per client address (OWASP ASVS 2.2.1),
//! kept in the database so every replica sees the same counts.

use crate::clock::SharedClock;
use crate::db::Db;

/// Failures allowed before the first lock.
pub const FREE_FAILURES: i64 = 5;
const BASE_LOCK_US: i64 = 1_000_000;
const MAX_LOCK_US: i64 = 15 * 60 * 1_000_000;
/// Failures older than this are forgotten.
const WINDOW_US: i64 = 15 * 60 * 1_000_000;

#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    Proceed,
    Locked { until_us: i64 },
}

#[derive(Clone)]
pub struct Throttle {
    db: Db,
    clock: SharedClock,
}

pub fn user_bucket(username: &str) -> String {
    format!(
        "user:{}",
        username.chars().take(64).collect::<String>().to_lowercase()
    )
}

pub fn addr_bucket(addr: &str) -> String {
    format!("addr:{}", addr.chars().take(64).collect::<String>())
}

impl Throttle {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    pub async fn check(&self, bucket: &str) -> Result<ThrottleDecision, sqlx::Error> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT locked_until_us FROM login_throttle WHERE bucket = $1")
                .bind(bucket)
                .fetch_optional(&self.db.pool)
                .await?;
        let now = self.clock.now_us();
        Ok(match row {
            Some((until,)) if until > now => ThrottleDecision::Locked { until_us: until },
            _ => ThrottleDecision::Proceed,
        })
    }

    /// Counts a failure; from the sixth on, locks the bucket for 1 s, 2 s,
    /// 4 s... up to 15 minutes.
    pub async fn record_failure(&self, bucket: &str) -> Result<(), sqlx::Error> {
        let now = self.clock.now_us();
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT failures, last_failure_us FROM login_throttle WHERE bucket = $1",
        )
        .bind(bucket)
        .fetch_optional(&self.db.pool)
        .await?;
        let failures = match row {
            Some((n, last)) if now - last < WINDOW_US => n + 1,
            _ => 1,
        };
        let locked_until = if failures >= FREE_FAILURES {
            let exp = u32::try_from(failures - FREE_FAILURES)
                .unwrap_or(u32::MAX)
                .min(20);
            now + (BASE_LOCK_US << exp).min(MAX_LOCK_US)
        } else {
            0
        };
        sqlx::query(
            "INSERT INTO login_throttle (bucket, failures, last_failure_us, locked_until_us) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (bucket) DO UPDATE SET failures = $2, last_failure_us = $3, locked_until_us = $4",
        )
        .bind(bucket)
        .bind(failures)
        .bind(now)
        .bind(locked_until)
        .execute(&self.db.pool)
        .await?;
        Ok(())
    }

    pub async fn clear(&self, bucket: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_throttle WHERE bucket = $1")
            .bind(bucket)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}
