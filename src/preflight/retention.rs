//! Retention (PCI DSS v4.0.1 requirement 3.2.1): a retention is set, the
//! capture side encrypts under this month's key, and no key whose period is
//! wholly past retention can still decrypt.

use lambda_encrypt::keyring::KeyringSpec;
use lambda_encrypt::period::{AliasPrefix, KeyState, Period, RawPeriodDir};
use lambda_encrypt::period_kms::PeriodKeys;

use super::{Ctx, Outcome};
use crate::keys::{period_past_retention, RetentionDays};

pub const RETENTION: &str = "retention";
pub const PCI: &str = "pci dss 3.2.1";

const RETIRE_FIX: &str =
    "callvault keys retire --through <the newest month past retention> (then keys list)";

/// The retention line: set, off (a warning), or not a valid number of days.
pub(super) fn retention_line(value: Option<&str>) -> (Outcome, Option<RetentionDays>) {
    match value {
        None => (
            Outcome::warn(
                "CALLVAULT_RETENTION_DAYS is not set: every value can be revealed for as long as its key exists",
                "set CALLVAULT_RETENTION_DAYS to the documented retention in days (e.g. 365)",
            ),
            None,
        ),
        Some(v) => match v.parse::<RetentionDays>() {
            Ok(days) => (Outcome::Pass, Some(days)),
            Err(e) => (
                Outcome::fail(
                    format!("CALLVAULT_RETENTION_DAYS: {e}"),
                    "set it to the documented retention in whole days (1 to 3660)",
                ),
                None,
            ),
        },
    }
}

/// What can be decided without AWS; `None` when KMS must be asked.
pub(super) fn decided(
    keyring: Option<&KeyringSpec>,
    retention: Option<RetentionDays>,
    now_us: i64,
) -> Option<Outcome> {
    let spec = match keyring {
        None => {
            return Some(Outcome::Skip {
                why: "no keyring configured".into(),
            })
        }
        Some(spec) => spec,
    };
    if !spec.is_periodic() {
        return Some(Outcome::warn(
            "the keyring has one key for every period, so no period's values can be rendered unrecoverable",
            "use CALLVAULT_KEYRING=kms-period:<alias-prefix> and run callvault keys roll on a schedule",
        ));
    }
    if retention.is_none() {
        return Some(Outcome::fail(
            "period keys without a retention: nothing says which periods to retire",
            "set CALLVAULT_RETENTION_DAYS",
        ));
    }
    match spec {
        KeyringSpec::RawAesPeriod { dir } => {
            let dir = RawPeriodDir::new(dir);
            let scan = match dir.scan() {
                Ok(s) => s,
                Err(_) => {
                    return Some(Outcome::fail(
                        "the raw-aes-period key directory cannot be read",
                        "run callvault keys roll",
                    ))
                }
            };
            let keys: Vec<(Period, KeyState, bool)> = scan
                .keys
                .iter()
                .map(|p| (*p, KeyState::Enabled, *p == Period::of_unix_us(now_us)))
                .collect();
            Some(judge(&keys, retention, now_us))
        }
        _ => None,
    }
}

/// The `kms-period:` check: the keys under the prefix as KMS lists them.
pub(super) async fn kms_period(
    ctx: &Ctx,
    prefix: &AliasPrefix,
    retention: Option<RetentionDays>,
) -> Outcome {
    let now = ctx.clock.now_us();
    match lambda_encrypt::period_kms::load(&ctx.kms, prefix).await {
        Ok(keys) => judge(&triples(&keys), retention, now),
        Err(e) => Outcome::fail(
            format!("cannot list the period keys under {prefix}: {e}"),
            "allow kms:ListAliases and kms:DescribeKey to this role, and check the alias prefix",
        ),
    }
}

fn triples(keys: &PeriodKeys) -> Vec<(Period, KeyState, bool)> {
    keys.keys
        .iter()
        .map(|k| (k.period, k.state.clone(), k.current))
        .collect()
}

/// The verdict on a listing: (period, state, current) per key.
pub(super) fn judge(
    keys: &[(Period, KeyState, bool)],
    retention: Option<RetentionDays>,
    now_us: i64,
) -> Outcome {
    let this = Period::of_unix_us(now_us);
    let mut problems = Vec::new();
    match keys.iter().find(|(_, _, current)| *current) {
        Some((p, state, _)) if *p == this && state.usable() => {}
        Some((p, state, _)) => {
            problems.push(format!("current is the {p} key ({state}), not {this}'s"))
        }
        None => problems.push(format!("no current key (this month is {this})")),
    }
    if let Some(days) = retention {
        let kept: Vec<String> = keys
            .iter()
            .filter(|(p, state, _)| {
                state.usable() && period_past_retention(*p, now_us, days).is_some()
            })
            .map(|(p, _, _)| p.to_string())
            .collect();
        if !kept.is_empty() {
            problems.push(format!(
                "keys past retention are still enabled: {}",
                kept.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        Outcome::Pass
    } else {
        let fix = if problems.iter().any(|p| p.contains("current")) {
            format!("callvault keys roll; {RETIRE_FIX}")
        } else {
            RETIRE_FIX.to_owned()
        };
        Outcome::fail(problems.join("; "), fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Period {
        Period::parse(s).unwrap()
    }

    #[test]
    fn the_check_needs_current_on_this_month_and_nothing_past_retention_enabled() {
        let now = p("2026-12").start_us() + 5 * lambda_encrypt::period::MICROS_PER_DAY;
        let days = Some("90".parse().unwrap());
        let ok = [
            (
                p("2026-01"),
                KeyState::PendingDeletion { until_us: None },
                false,
            ),
            (p("2026-11"), KeyState::Enabled, false),
            (p("2026-12"), KeyState::Enabled, true),
        ];
        assert_eq!(judge(&ok, days, now), Outcome::Pass);
        let old_enabled = [
            (p("2026-01"), KeyState::Enabled, false),
            (p("2026-12"), KeyState::Enabled, true),
        ];
        let Outcome::Fail { problem, .. } = judge(&old_enabled, days, now) else {
            panic!()
        };
        assert!(problem.contains("2026-01"), "{problem}");
        let stale_current = [(p("2026-11"), KeyState::Enabled, true)];
        let Outcome::Fail { problem, fix } = judge(&stale_current, days, now) else {
            panic!()
        };
        assert!(problem.contains("not 2026-12"), "{problem}");
        assert!(fix.contains("keys roll"));
    }

    #[test]
    fn retention_off_warns_and_bad_values_fail() {
        assert!(matches!(retention_line(None).0, Outcome::Warn { .. }));
        assert!(matches!(retention_line(Some("0")).0, Outcome::Fail { .. }));
        assert!(matches!(
            retention_line(Some("99999")).0,
            Outcome::Fail { .. }
        ));
        assert_eq!(retention_line(Some("365")).0, Outcome::Pass);
    }
}
