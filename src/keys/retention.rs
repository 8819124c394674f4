//! The retention rule: a value may be revealed only while its contact is
//! younger than the documented retention period; after that it is past
//! retention, and so is a whole key period once its last day is.

use std::fmt;
use std::str::FromStr;

use lambda_encrypt::period::{Period, MICROS_PER_DAY};

/// Ten years: anything longer is a typo, not a retention policy.
pub const MAX_RETENTION_DAYS: u32 = 3660;

/// A retention period in whole days, 1 to [`MAX_RETENTION_DAYS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RetentionDays(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    #[error("a retention of 0 days would refuse every value: give at least 1 day")]
    Zero,
    #[error("a retention of {0} days is more than the {MAX_RETENTION_DAYS}-day limit (ten years)")]
    TooLong(u64),
    #[error("the retention must be a whole number of days (1 to {MAX_RETENTION_DAYS})")]
    NotANumber,
}

impl RetentionDays {
    pub fn new(days: u64) -> Result<Self, RetentionError> {
        match days {
            0 => Err(RetentionError::Zero),
            d if d > u64::from(MAX_RETENTION_DAYS) => Err(RetentionError::TooLong(d)),
            d => Ok(Self(d as u32)),
        }
    }

    pub fn days(self) -> u32 {
        self.0
    }

    pub fn as_us(self) -> i64 {
        i64::from(self.0) * MICROS_PER_DAY
    }
}

impl FromStr for RetentionDays {
    type Err = RetentionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RetentionError::NotANumber);
        }
        // Digits only: a parse failure is an overflow, so "too long".
        match s.parse::<u64>() {
            Ok(d) => Self::new(d),
            Err(_) => Err(RetentionError::TooLong(u64::MAX)),
        }
    }
}

impl fmt::Display for RetentionDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} days", self.0)
    }
}

/// When a value of a contact that started at `contact_start_us` went past
/// retention, if it has by `now_us`: `Some(since_us)`, else `None` (still
/// inside retention, may be revealed).
pub fn past_retention(contact_start_us: i64, now_us: i64, days: RetentionDays) -> Option<i64> {
    // A start so late that the sum overflows is never past retention.
    let since = contact_start_us.checked_add(days.as_us())?;
    (now_us >= since).then_some(since)
}

/// The key period a contact's values were captured in (the month, UTC, in
/// which the contact started). The capture side encrypts under `current`,
/// which `keys roll` moves at the start of each month.
pub fn period_of_contact(contact_start_us: i64) -> Period {
    Period::of_unix_us(contact_start_us)
}

/// When every value of a period is past retention (its last instant is),
/// if that has happened by `now_us`.
pub fn period_past_retention(period: Period, now_us: i64, days: RetentionDays) -> Option<i64> {
    past_retention(period.end_us() - 1, now_us, days)
}

/// The first instant at which every value of `period` is past retention.
pub fn period_past_retention_at(period: Period, days: RetentionDays) -> i64 {
    (period.end_us() - 1).saturating_add(days.as_us())
}

/// Contacts that started before this instant are past retention at `now_us`.
pub fn retention_horizon_us(now_us: i64, days: RetentionDays) -> i64 {
    now_us.saturating_sub(days.as_us())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MICROS_PER_DAY;

    fn days(n: u64) -> RetentionDays {
        RetentionDays::new(n).unwrap()
    }

    #[test]
    fn a_value_is_past_retention_exactly_when_its_days_have_passed() {
        let start = 1_700_000_000_000_000;
        assert_eq!(past_retention(start, start, days(30)), None);
        assert_eq!(past_retention(start, start + 30 * DAY - 1, days(30)), None);
        assert_eq!(
            past_retention(start, start + 30 * DAY, days(30)),
            Some(start + 30 * DAY)
        );
        assert_eq!(
            past_retention(start, start + 400 * DAY, days(30)),
            Some(start + 30 * DAY)
        );
        // No overflow at the far end.
        assert_eq!(past_retention(i64::MAX - 5, i64::MAX, days(1)), None);
    }

    #[test]
    fn retention_is_bounded() {
        assert_eq!("0".parse::<RetentionDays>(), Err(RetentionError::Zero));
        assert!(matches!(
            "3661".parse::<RetentionDays>(),
            Err(RetentionError::TooLong(3661))
        ));
        assert!(matches!(
            "99999999999999999999999".parse::<RetentionDays>(),
            Err(RetentionError::TooLong(_))
        ));
        for bad in ["", "-1", "1.5", "ten", "+3"] {
            assert_eq!(
                bad.parse::<RetentionDays>(),
                Err(RetentionError::NotANumber),
                "{bad}"
            );
        }
        assert_eq!(" 365 ".parse::<RetentionDays>().unwrap().days(), 365);
        assert_eq!("3660".parse::<RetentionDays>().unwrap().days(), 3660);
    }

    #[test]
    fn a_period_is_past_retention_when_its_last_day_is() {
        let jan = Period::parse("2025-01").unwrap();
        let last = jan.end_us() - 1;
        assert_eq!(period_of_contact(last), jan);
        assert_eq!(period_of_contact(jan.end_us()), jan.next());
        // Its first contact is past, its last is not: the period is not.
        let now = jan.start_us() + 31 * DAY + DAY / 2;
        assert!(past_retention(jan.start_us(), now, days(31)).is_some());
        assert_eq!(period_past_retention(jan, now, days(31)), None);
        let at = period_past_retention_at(jan, days(31));
        assert_eq!(period_past_retention(jan, at, days(31)), Some(at));
        assert_eq!(period_past_retention(jan, at - 1, days(31)), None);
        assert_eq!(retention_horizon_us(now, days(31)), now - 31 * DAY);
    }
}
