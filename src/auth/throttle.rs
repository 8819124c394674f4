//! Sign-in and second-factor throttling per account and per client address
//! (OWASP ASVS 2.2.1), kept in the database so every replica sees the same
//! counts.
//!
//! Every attempt is counted before its password or code is checked, in one
//! conditional UPDATE (compare-and-set on the bucket's row): of any number of
//! parallel attempts, at most [`FREE_FAILURES`] get to the check before the
//! bucket locks. A success clears the bucket.

use crate::clock::SharedClock;
use crate::db::Db;

/// Attempts allowed before the first lock.
pub const FREE_FAILURES: i64 = 5;
const BASE_LOCK_US: i64 = 1_000_000;
const MAX_LOCK_US: i64 = 15 * 60 * 1_000_000;
/// Attempts older than this are forgotten.
const WINDOW_US: i64 = 15 * 60 * 1_000_000;
/// Lost compare-and-set races before an attempt is refused (fail closed).
const MAX_RACES: usize = 200;

#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleDecision {
    /// Counted: go on and check the password or code.
    Proceed,
    Locked {
        until_us: i64,
    },
}

/// One bucket's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Counter {
    attempts: i64,
    last_us: i64,
    locked_until_us: i64,
}

/// 1 s at the limit, doubling with each attempt past it, up to 15 minutes.
fn lock_for(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts - FREE_FAILURES).unwrap_or(0).min(20);
    (BASE_LOCK_US << exp).min(MAX_LOCK_US)
}

/// The decision for one more attempt at `now`, and the row after it.
/// Attempts while locked are refused uncounted, but keep the lock running
/// from the latest of them: a flood never finds a gap between locks.
fn step(now: i64, row: Option<Counter>) -> (ThrottleDecision, Counter) {
    let current = row.filter(|c| now - c.last_us < WINDOW_US);
    match current {
        Some(c) if c.locked_until_us > now => {
            let until = c
                .locked_until_us
                .max(now.saturating_add(lock_for(c.attempts)));
            (
                ThrottleDecision::Locked { until_us: until },
                Counter {
                    last_us: now,
                    locked_until_us: until,
                    ..c
                },
            )
        }
        _ => {
            let attempts = current.map_or(0, |c| c.attempts) + 1;
            let locked_until_us = if attempts >= FREE_FAILURES {
                now.saturating_add(lock_for(attempts))
            } else {
                0
            };
            (
                ThrottleDecision::Proceed,
                Counter {
                    attempts,
                    last_us: now,
                    locked_until_us,
                },
            )
        }
    }
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

    /// Counts an attempt on `bucket` unless it is locked. Call before the
    /// password or code is checked; `clear` after a success.
    pub async fn admit(&self, bucket: &str) -> Result<ThrottleDecision, sqlx::Error> {
        for _ in 0..MAX_RACES {
            let now = self.clock.now_us();
            let row: Option<(i64, i64, i64)> = sqlx::query_as(
                "SELECT failures, last_failure_us, locked_until_us FROM login_throttle WHERE bucket = $1",
            )
            .bind(bucket)
            .fetch_optional(&self.db.pool)
            .await?;
            let old = row.map(|(attempts, last_us, locked_until_us)| Counter {
                attempts,
                last_us,
                locked_until_us,
            });
            let (decision, new) = step(now, old);
            // Written only if the row is still what the decision was made
            // on; otherwise another attempt won the race: decide again.
            let written = match old {
                None => sqlx::query(
                    "INSERT INTO login_throttle (bucket, failures, last_failure_us, locked_until_us) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (bucket) DO NOTHING",
                )
                .bind(bucket)
                .bind(new.attempts)
                .bind(new.last_us)
                .bind(new.locked_until_us)
                .execute(&self.db.pool)
                .await?,
                Some(old) => sqlx::query(
                    "UPDATE login_throttle SET failures = $1, last_failure_us = $2, locked_until_us = $3 \
                     WHERE bucket = $4 AND failures = $5 AND last_failure_us = $6 AND locked_until_us = $7",
                )
                .bind(new.attempts)
                .bind(new.last_us)
                .bind(new.locked_until_us)
                .bind(bucket)
                .bind(old.attempts)
                .bind(old.last_us)
                .bind(old.locked_until_us)
                .execute(&self.db.pool)
                .await?,
            }
            .rows_affected();
            if written == 1 {
                return Ok(decision);
            }
        }
        tracing::warn!("throttle: too many concurrent attempts on one bucket; refusing");
        Ok(ThrottleDecision::Locked {
            until_us: self.clock.now_us(),
        })
    }

    pub async fn clear(&self, bucket: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM login_throttle WHERE bucket = $1")
            .bind(bucket)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_attempts_then_a_lock_that_a_flood_keeps_closed() {
        let mut row = None;
        let mut now = 1_000_000_000;
        for _ in 0..FREE_FAILURES {
            let (d, r) = step(now, row);
            assert_eq!(d, ThrottleDecision::Proceed);
            row = Some(r);
            now += 1_000;
        }
        // Locked from the fifth attempt on; attempts during the lock extend it.
        for _ in 0..100 {
            let (d, r) = step(now, row);
            assert!(matches!(d, ThrottleDecision::Locked { .. }));
            row = Some(r);
            now += 900_000;
        }
        // Quiet for longer than the lock: one more attempt, then locked again.
        now += 3_000_000;
        let (d, r) = step(now, row);
        assert_eq!(d, ThrottleDecision::Proceed);
        assert!(matches!(
            step(now + 1, Some(r)).0,
            ThrottleDecision::Locked { .. }
        ));
        // Forgotten after the window.
        assert_eq!(
            step(now + WINDOW_US + 1, Some(r)).0,
            ThrottleDecision::Proceed
        );
    }
}
