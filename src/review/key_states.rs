//! What has happened to the period keys, as the audit log records it
//! (`key_retire`, `key_cancel` rows; no call to KMS): which months' values
//! are, or will be, unrecoverable, and when.

use chrono_tz::Tz;

use crate::audit::{Action, AuditError, AuditFilter, AuditLog};
use crate::clock::local_time;

const DAY_US: i64 = 86_400_000_000;

/// One line of the auditor's key states ("values of 2025-01, 2025-02
/// unrecoverable after 2026-12-15 ...").
pub struct KeyStateView {
    pub text: String,
    pub cancelled: bool,
}

/// The last key retirements and cancellations, newest first.
pub async fn key_states(audit: &AuditLog, zone: Tz) -> Result<Vec<KeyStateView>, AuditError> {
    let filter = AuditFilter {
        actions: vec![
            Action::KeyRetire.as_str().to_owned(),
            Action::KeyCancel.as_str().to_owned(),
        ],
        outcomes: vec!["scheduled".to_owned(), "ok".to_owned()],
        ..Default::default()
    };
    let rows = audit.query(&filter, None, 20).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let when = local_time(r.ts_us, zone);
            if r.action == Action::KeyCancel.as_str() {
                return KeyStateView {
                    text: format!("{when}: deletion cancelled ({})", r.detail),
                    cancelled: true,
                };
            }
            let periods = retired_periods(&r.detail);
            let days = pending_days(&r.detail).unwrap_or(30);
            let after = local_time(r.ts_us + days * DAY_US, zone);
            KeyStateView {
                text: format!(
                    "{when}: the keys of {} scheduled for deletion by {}; their values are unrecoverable after {after}",
                    if periods.is_empty() { "?".to_owned() } else { periods.join(", ") },
                    r.actor
                ),
                cancelled: false,
            }
        })
        .collect())
}

/// "through 2025-02: 2025-01 key X, 2025-02 key Y; pending 30 days; ..."
fn retired_periods(detail: &str) -> Vec<String> {
    detail
        .split_once(": ")
        .map(|(_, rest)| rest.split(';').next().unwrap_or(""))
        .unwrap_or("")
        .split(", ")
        .filter_map(|k| k.split_whitespace().next())
        .filter(|p| p.len() == 7 && p.as_bytes()[4] == b'-')
        .map(str::to_owned)
        .collect()
}

fn pending_days(detail: &str) -> Option<i64> {
    detail
        .split("; ")
        .find_map(|p| p.strip_prefix("pending "))
        .and_then(|p| p.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retire_rows_periods_and_pending_days_are_read_back() {
        let d = "through 2025-02: 2025-01 key arn:aws:kms:k1, 2025-02 key 2025-02; pending 7 days; retention 365";
        assert_eq!(retired_periods(d), ["2025-01", "2025-02"]);
        assert_eq!(pending_days(d), Some(7));
        assert!(retired_periods("nonsense").is_empty());
    }
}
