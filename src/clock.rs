//! Time as a parameter: the app reads "now" from a [`Clock`] so that tests of
//! expiry, throttling and audit timestamps control it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// Microseconds since the Unix epoch (how times are stored).
    fn now_us(&self) -> i64 {
        self.now().timestamp_micros()
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock plus an adjustable offset (tests move time forward).
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_us: AtomicI64,
}

impl OffsetClock {
    pub fn advance(&self, by: std::time::Duration) {
        let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.offset_us.fetch_add(us, Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::microseconds(self.offset_us.load(Ordering::SeqCst))
    }
}

/// Formats a stored timestamp (µs since the epoch) as RFC 3339 UTC.
pub fn format_us(us: i64) -> String {
    Utc.timestamp_micros(us)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| us.to_string())
}

/// A stored timestamp in the reader's time zone, to the second
/// (`2026-12-07 15:04:05`); RFC 3339 UTC when the zone cannot show it.
pub fn local_time(us: i64, zone: chrono_tz::Tz) -> String {
    zone.timestamp_micros(us)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format_us(us))
}
