//! Key periods: each calendar month (UTC) has a wrapping key of its own, so
//! that the values of a month can be rendered unrecoverable by deleting one
//! key while later months stay readable.
//!
//! This module holds what both binaries and the key commands share: the
//! period itself (`YYYY-MM`), the KMS alias prefix of `kms-period:` and the
//! names it gives each period's alias, and the key directory of
//! `raw-aes-period:` (one `<YYYY-MM>.key` file per period).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// The alias name that the capture side encrypts under (`<prefix>/current`).
pub const CURRENT: &str = "current";

/// File suffix of a period key file in a `raw-aes-period:` directory.
pub const RAW_KEY_SUFFIX: &str = "key";
/// File suffix of the marker a retired raw period leaves behind (its
/// deletion time), so that `keys list` can say "deleted".
pub const RAW_TOMBSTONE_SUFFIX: &str = "deleted";

/// KMS limits alias names to 256 characters.
pub const MAX_ALIAS_LEN: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("'{0}' is not a period: write YYYY-MM (a month from 1970-01 to 9999-12)")]
    BadPeriod(String),
    #[error(
        "'{0}' is not a KMS alias prefix: it must start with 'alias/', not be under 'alias/aws/', \
         use only letters, digits, '/', '_' and '-', and not end with '/'"
    )]
    BadAliasPrefix(String),
}

/// One calendar month in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    year: u16,
    month: u8,
}

impl Period {
    pub fn new(year: u16, month: u8) -> Option<Self> {
        ((1970..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    /// Exactly `YYYY-MM`.
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        let bad = || PeriodError::BadPeriod(s.chars().take(40).collect());
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return Err(bad());
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u16> {
            let part = s.get(r)?;
            part.bytes()
                .all(|c| c.is_ascii_digit())
                .then(|| part.parse().ok())?
        };
        let (Some(year), Some(month)) = (digits(0..4), digits(5..7)) else {
            return Err(bad());
        };
        let month = u8::try_from(month).map_err(|_| bad())?;
        Self::new(year, month).ok_or_else(bad)
    }

    /// The month (UTC) holding an instant given in microseconds since the epoch.
    /// Instants before 1970 fall in 1970-01.
    pub fn of_unix_us(us: i64) -> Self {
        let days = us.max(0).div_euclid(MICROS_PER_DAY);
        let (y, m, _) = civil_from_days(days);
        Self::new(y.clamp(1970, 9999) as u16, m as u8).unwrap_or(Self {
            year: 9999,
            month: 12,
        })
    }

    /// The current month by the system clock.
    pub fn now() -> Self {
        Self::of_unix_us(now_us())
    }

    pub fn year(self) -> u16 {
        self.year
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// The next month (9999-12 is its own successor).
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self::new(self.year + 1, 1).unwrap_or(self)
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// The month before (1970-01 is its own predecessor).
    pub fn prev(self) -> Self {
        if self.month == 1 {
            Self::new(self.year.saturating_sub(1), 12).unwrap_or(self)
        } else {
            Self {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    /// First instant of the month, microseconds since the epoch.
    pub fn start_us(self) -> i64 {
        days_from_civil(i64::from(self.year), i64::from(self.month), 1) * MICROS_PER_DAY
    }

    /// First instant after the month (exclusive end).
    pub fn end_us(self) -> i64 {
        if self.year == 9999 && self.month == 12 {
            return days_from_civil(10000, 1, 1) * MICROS_PER_DAY;
        }
        self.next().start_us()
    }

    /// Whether an instant falls in this month.
    pub fn contains_us(self, us: i64) -> bool {
        (self.start_us()..self.end_us()).contains(&us)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Microseconds since the epoch by the system clock.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `YYYY-MM-DD` of an instant (UTC).
pub fn date_of_us(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(MICROS_PER_DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

// Howard Hinnant's civil-calendar algorithms (days since 1970-01-01).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The alias prefix of a `kms-period:` keyring, e.g. `alias/callvault/fields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasPrefix(String);

/// What an alias under the prefix names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasKind {
    /// `<prefix>/current`: the key the capture side encrypts under.
    Current,
    /// `<prefix>/<YYYY-MM>`: the key of one period.
    Period(Period),
}

impl AliasPrefix {
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        let bad = || PeriodError::BadAliasPrefix(s.chars().take(80).collect());
        let rest = s.strip_prefix("alias/").ok_or_else(bad)?;
        let ok = !rest.is_empty()
            && rest != "aws"
            && !rest.starts_with("aws/")
            && !rest.ends_with('/')
            && !rest.contains("//")
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
            // Room for "/current" and "/YYYY-MM".
            && s.len() + 1 + CURRENT.len() <= MAX_ALIAS_LEN;
        if !ok {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `<prefix>/current`.
    pub fn current_alias(&self) -> String {
        format!("{}/{CURRENT}", self.0)
    }

    /// `<prefix>/<YYYY-MM>`.
    pub fn period_alias(&self, period: Period) -> String {
        format!("{}/{period}", self.0)
    }

    /// What `alias_name` is under this prefix, if anything (other aliases,
    /// including ones under a longer prefix, are not ours).
    pub fn classify(&self, alias_name: &str) -> Option<AliasKind> {
        let rest = alias_name
            .strip_prefix(self.0.as_str())?
            .strip_prefix('/')?;
        if rest == CURRENT {
            Some(AliasKind::Current)
        } else {
            Period::parse(rest).ok().map(AliasKind::Period)
        }
    }
}

impl fmt::Display for AliasPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of one period's key, as the key's own store reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    Enabled,
    Disabled,
    /// Scheduled for deletion: unusable now, destroyed at `until_us`.
    PendingDeletion {
        until_us: Option<i64>,
    },
    /// Destroyed: every value wrapped only by it is unrecoverable.
    Deleted,
    /// Any other state the store names (e.g. KMS `PendingImport`).
    Other(String),
}

impl KeyState {
    /// Only an enabled key decrypts.
    pub fn usable(&self) -> bool {
        matches!(self, Self::Enabled)
    }

    /// Whether the key is on its way out or gone (retired by `keys retire`).
    pub fn retired(&self) -> bool {
        matches!(self, Self::PendingDeletion { .. } | Self::Deleted)
    }

    /// A short description for pages, listings and errors.
    pub fn label(&self) -> String {
        match self {
            Self::Enabled => "enabled".into(),
            Self::Disabled => "disabled".into(),
            Self::PendingDeletion { until_us: Some(t) } => {
                format!("pending deletion until {}", date_of_us(*t))
            }
            Self::PendingDeletion { until_us: None } => "pending deletion".into(),
            Self::Deleted => "deleted".into(),
            Self::Other(s) => s.chars().take(40).collect(),
        }
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The key a value was wrapped by, named by its period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueKey {
    pub period: Period,
    /// The KMS key ARN, or the raw key name (`YYYY-MM`).
    pub key_id: String,
    pub state: KeyState,
}

/// The key files of a `raw-aes-period:` directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPeriodDir(PathBuf);

impl RawPeriodDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self(dir.into())
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `<dir>/<YYYY-MM>.key`; its file stem is the ESDK key name.
    pub fn key_file(&self, period: Period) -> PathBuf {
        self.0.join(format!("{period}.{RAW_KEY_SUFFIX}"))
    }

    /// `<dir>/<YYYY-MM>.deleted`, left when the period's key is destroyed.
    pub fn tombstone(&self, period: Period) -> PathBuf {
        self.0.join(format!("{period}.{RAW_TOMBSTONE_SUFFIX}"))
    }

    /// Periods with a key file, and periods whose key was destroyed, sorted.
    pub fn scan(&self) -> std::io::Result<RawScan> {
        let mut scan = RawScan::default();
        for entry in std::fs::read_dir(&self.0)? {
            let path = entry?.path();
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            let Ok(period) = Period::parse(stem) else {
                continue;
            };
            match ext {
                RAW_KEY_SUFFIX => scan.keys.push(period),
                RAW_TOMBSTONE_SUFFIX => scan.deleted.push(period),
                _ => {}
            }
        }
        scan.keys.sort();
        scan.deleted.sort();
        scan.deleted.retain(|p| !scan.keys.contains(p));
        Ok(scan)
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RawScan {
    pub keys: Vec<Period>,
    pub deleted: Vec<Period>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_exactly_yyyy_mm() {
        let p = Period::parse("2025-01").unwrap();
        assert_eq!((p.year(), p.month()), (2025, 1));
        assert_eq!(p.to_string(), "2025-01");
        for bad in [
            "2025-1",
            "2025-13",
            "2025-00",
            "25-01",
            "2025/01",
            "2025-01-01",
            "",
            "１２３４-01",
            "1969-12",
            "+025-01",
            "2025-+1",
        ] {
            assert!(Period::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn months_have_their_calendar_bounds() {
        let feb = Period::parse("2024-02").unwrap();
        // 2024-02-01T00:00:00Z
        assert_eq!(feb.start_us(), 1_706_745_600 * 1_000_000);
        // Leap year: 29 days.
        assert_eq!(feb.end_us() - feb.start_us(), 29 * MICROS_PER_DAY);
        assert_eq!(Period::of_unix_us(feb.start_us()), feb);
        assert_eq!(Period::of_unix_us(feb.end_us() - 1), feb);
        assert_eq!(Period::of_unix_us(feb.end_us()), feb.next());
        assert_eq!(
            Period::parse("2024-12").unwrap().next().to_string(),
            "2025-01"
        );
        assert_eq!(
            Period::parse("2025-01").unwrap().prev().to_string(),
            "2024-12"
        );
        assert_eq!(date_of_us(feb.end_us()), "2024-03-01");
        assert!(feb.contains_us(feb.start_us()) && !feb.contains_us(feb.end_us()));
    }

    #[test]
    fn alias_prefixes_are_checked_and_classify_their_aliases() {
        let p = AliasPrefix::parse("alias/callvault/fields").unwrap();
        assert_eq!(p.current_alias(), "alias/callvault/fields/current");
        let jan = Period::parse("2025-01").unwrap();
        assert_eq!(p.period_alias(jan), "alias/callvault/fields/2025-01");
        assert_eq!(
            p.classify("alias/callvault/fields/current"),
            Some(AliasKind::Current)
        );
        assert_eq!(
            p.classify("alias/callvault/fields/2025-01"),
            Some(AliasKind::Period(jan))
        );
        for other in [
            "alias/callvault/fields",
            "alias/callvault/fields2/2025-01",
            "alias/callvault/fields/x/2025-01",
            "alias/callvault/fields/2025-13",
            "alias/other",
        ] {
            assert_eq!(p.classify(other), None, "{other}");
        }
        for bad in [
            "callvault/fields",
            "alias/",
            "alias/aws/fields",
            "alias/aws",
            "alias/callvault/",
            "alias/a//b",
            "alias/has space",
            "alias/colon:x",
            "arn:aws:kms:us-east-1:111122223333:alias/x",
        ] {
            assert!(AliasPrefix::parse(bad).is_err(), "{bad}");
        }
        let long = format!("alias/{}", "a".repeat(250));
        assert!(AliasPrefix::parse(&long).is_err());
    }

    #[test]
    fn raw_period_directories_list_keys_and_tombstones() {
        let dir = tempfile::tempdir().unwrap();
        let d = RawPeriodDir::new(dir.path());
        let (a, b) = (
            Period::parse("2025-01").unwrap(),
            Period::parse("2025-02").unwrap(),
        );
        std::fs::write(d.key_file(b), "x").unwrap();
        std::fs::write(d.tombstone(a), "x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "x").unwrap();
        let scan = d.scan().unwrap();
        assert_eq!(scan.keys, vec![b]);
        assert_eq!(scan.deleted, vec![a]);
    }
}
