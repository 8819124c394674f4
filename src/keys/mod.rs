//! Period keys (`kms-period:` and `raw-aes-period:`): roll, list, retire and
//! cancel, each audited. Retiring a period renders its values unrecoverable
//! (a KMS key scheduled for deletion, a key file destroyed), so it is refused
//! while any day of the period is inside retention or its key is `current`,
//! and its audit row commits before any key is touched.

mod kms;
mod listing;
mod raw;
pub mod retention;

use lambda_encrypt::keyring::KeyringSpec;
use lambda_encrypt::period::{date_of_us, AliasPrefix, KeyState, Period, RawPeriodDir};

use crate::audit::{Action, AuditError, AuditEvent, AuditLog, RequestMeta};
use crate::clock::SharedClock;
pub use listing::{Listed, ListedKey};
pub use retention::{
    past_retention, period_of_contact, period_past_retention, period_past_retention_at,
    RetentionDays, RetentionError,
};

/// KMS's bounds on the waiting period of a key deletion, in days.
pub const PENDING_DAYS: std::ops::RangeInclusive<u32> = 7..=30;
pub const DEFAULT_PENDING_DAYS: u32 = 30;

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("CALLVAULT_KEYRING is not a period keyring (kms-period:<alias-prefix> or raw-aes-period:<dir>)")]
    NotPeriodic,
    #[error("--pending-days must be from 7 to 30 (KMS's waiting period), not {0}")]
    PendingDays(u32),
    #[error("retiring needs a retention: set --retention-days or CALLVAULT_RETENTION_DAYS")]
    NoRetention,
    #[error("refused: the key of {0} is current (new values are encrypted under it)")]
    RetireCurrent(Period),
    #[error(
        "refused: {period} is still inside retention ({days}); its last values pass retention \
         on {until}"
    )]
    InsideRetention {
        period: Period,
        days: RetentionDays,
        until: String,
    },
    #[error("no period key through {0}: nothing to retire")]
    NothingToRetire(Period),
    #[error("no key for {0}")]
    NoSuchPeriod(Period),
    #[error("the key of {period} is {state}, not pending deletion: nothing to cancel")]
    NotPending { period: Period, state: String },
    #[error("the key of {period} is {state}: `keys roll` will not use it (cancel its deletion or enable it first)")]
    Unusable { period: Period, state: String },
    #[error("{0} was destroyed: its key cannot be made again")]
    Destroyed(Period),
    #[error("raw-aes-period keys are destroyed at once: there is no pending deletion to cancel")]
    NoPendingRaw,
    #[error(
        "the first key needs a key policy to copy: pass --policy-from <key> (the template's field key)"
    )]
    NoPolicySource,
    #[error(transparent)]
    PeriodKeys(#[from] lambda_encrypt::period_kms::PeriodKeysError),
    #[error("KMS {operation} failed: {code}")]
    Kms {
        operation: &'static str,
        code: String,
    },
    #[error("key directory {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Keyring(#[from] lambda_encrypt::keyring::KeyringError),
    #[error("the audit log could not be written: nothing was changed")]
    Audit(#[from] AuditError),
}

/// A period key as a backend reports it.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub period: Period,
    pub key_id: String,
    pub state: KeyState,
    pub current: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Kms(kms::KmsKeys),
    Raw(RawPeriodDir),
}

/// What `keys roll` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollReport {
    /// Periods whose key was created.
    pub created: Vec<Period>,
    /// The period `current` now names, when it moved.
    pub moved_current: Option<Period>,
    pub current: Option<Period>,
}

/// What `keys retire` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetireReport {
    /// Each retired period and, for KMS, when its key is deleted.
    pub retired: Vec<(Period, String, Option<i64>)>,
    /// Periods already pending deletion (left as they were).
    pub already_pending: Vec<Period>,
}

/// Who runs the commands, for the audit rows.
#[derive(Debug, Clone)]
pub struct Operator {
    pub actor: String,
    pub role: String,
    pub meta: RequestMeta,
}

/// The settings of the key commands.
#[derive(Debug, Clone, Default)]
pub struct KeyOptions {
    /// Tag value naming the deployment on every key made.
    pub deployment: String,
    /// The key whose policy new KMS keys copy when there is no period key yet.
    pub policy_from: Option<String>,
}

pub struct PeriodKeyService {
    backend: Backend,
    audit: AuditLog,
    clock: SharedClock,
    operator: Operator,
}

impl PeriodKeyService {
    /// The service for a period keyring; `sdk` is needed for `kms-period:`.
    pub fn new(
        spec: &KeyringSpec,
        sdk: Option<&aws_config::SdkConfig>,
        options: KeyOptions,
        audit: AuditLog,
        clock: SharedClock,
        operator: Operator,
    ) -> Result<Self, KeysError> {
        let backend = match (spec, sdk) {
            (KeyringSpec::KmsPeriod { prefix }, Some(sdk)) => Backend::Kms(kms::KmsKeys::new(
                aws_sdk_kms::Client::new(sdk),
                prefix.clone(),
                options,
            )),
            (KeyringSpec::KmsPeriod { prefix }, None) => {
                return Err(KeysError::Kms {
                    operation: "setup",
                    code: format!("no AWS configuration for {prefix}"),
                })
            }
            (KeyringSpec::RawAesPeriod { dir }, _) => Backend::Raw(RawPeriodDir::new(dir)),
            _ => return Err(KeysError::NotPeriodic),
        };
        Ok(Self {
            backend,
            audit,
            clock,
            operator,
        })
    }

    /// The alias prefix of a `kms-period:` backend.
    pub fn prefix(&self) -> Option<&AliasPrefix> {
        match &self.backend {
            Backend::Kms(k) => Some(&k.prefix),
            Backend::Raw(_) => None,
        }
    }

    fn event(&self, action: Action, outcome: &str, detail: String) -> AuditEvent {
        AuditEvent::new(
            action,
            &self.operator.actor,
            &self.operator.role,
            outcome,
            &self.operator.meta,
        )
        .detail(detail)
    }

    /// Records a refusal; the refusal stands whether or not the row commits.
    async fn refused(&self, action: Action, err: KeysError) -> KeysError {
        if let Err(e) = self
            .audit
            .append(self.event(action, "refused", err.to_string()))
            .await
        {
            tracing::warn!(error = %e, "the refusal could not be recorded");
        }
        err
    }

    async fn stored(&self) -> Result<Vec<StoredKey>, KeysError> {
        let now = self.clock.now_us();
        match &self.backend {
            Backend::Kms(k) => k.stored().await,
            Backend::Raw(dir) => raw::stored(dir, Period::of_unix_us(now)),
        }
    }

    /// One entry per period key, oldest first.
    pub async fn list(
        &self,
        retention: Option<RetentionDays>,
    ) -> Result<Vec<ListedKey>, KeysError> {
        let now = self.clock.now_us();
        let mut stored = self.stored().await?;
        if matches!(self.backend, Backend::Kms(_)) {
            stored.extend(self.deleted_kms_keys(&stored).await?);
            stored.sort_by_key(|k| k.period);
        }
        Ok(stored
            .into_iter()
            .map(|k| ListedKey {
                period: k.period,
                state: Listed::of(&k.state, k.current),
                past_retention: retention
                    .map(|days| period_past_retention(k.period, now, days).is_some()),
                key_id: k.key_id,
            })
            .collect())
    }

    /// KMS forgets a deleted key and its aliases: the keys that retire
    /// scheduled (its audit rows) and KMS no longer lists are deleted.
    async fn deleted_kms_keys(&self, listed: &[StoredKey]) -> Result<Vec<StoredKey>, KeysError> {
        let filter = crate::audit::AuditFilter {
            actions: vec![Action::KeyRetire.as_str().to_owned()],
            outcomes: vec!["scheduled".to_owned()],
            ..Default::default()
        };
        let mut out: Vec<StoredKey> = Vec::new();
        for row in self.audit.query(&filter, None, 100_000).await? {
            for (period, key_id) in retired_in_detail(&row.detail) {
                let known = listed.iter().chain(out.iter()).any(|k| k.key_id == key_id);
                if !known {
                    out.push(StoredKey {
                        period,
                        key_id,
                        state: KeyState::Deleted,
                        current: false,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Makes sure this month's and next month's keys exist and `current`
    /// names this month's. Idempotent; the row commits before any change.
    pub async fn roll(&self) -> Result<RollReport, KeysError> {
        let this = Period::of_unix_us(self.clock.now_us());
        let stored = self.stored().await?;
        let mut create = Vec::new();
        for period in [this, this.next()] {
            match stored.iter().find(|k| k.period == period) {
                None => create.push(period),
                Some(k) if k.state.usable() => {}
                Some(k) if k.state == KeyState::Deleted => {
                    return Err(self
                        .refused(Action::KeyRoll, KeysError::Destroyed(period))
                        .await)
                }
                Some(k) => {
                    let err = KeysError::Unusable {
                        period,
                        state: k.state.label(),
                    };
                    return Err(self.refused(Action::KeyRoll, err).await);
                }
            }
        }
        let current_ok = stored.iter().any(|k| k.period == this && k.current);
        let moved_current = (!current_ok).then_some(this);
        let detail = format!(
            "create: {}; current: {}",
            join(&create),
            match moved_current {
                Some(p) => format!("moves to {p}"),
                None => format!("stays on {this}"),
            }
        );
        let outcome = if create.is_empty() && moved_current.is_none() {
            "unchanged"
        } else {
            "ok"
        };
        // The policy new keys copy is read first: without one, nothing is
        // recorded as done.
        let policy = match &self.backend {
            Backend::Kms(k) if !create.is_empty() => match k.policy(&stored).await {
                Ok(p) => Some(p),
                Err(e) => return Err(self.refused(Action::KeyRoll, e).await),
            },
            _ => None,
        };
        self.audit
            .append(self.event(Action::KeyRoll, outcome, detail))
            .await?;
        let done = match &self.backend {
            Backend::Kms(k) => {
                let current = moved_current.is_some();
                k.roll(&stored, &create, policy.as_deref(), this, current)
                    .await
            }
            Backend::Raw(dir) => raw::roll(dir, &create),
        };
        if let Err(e) = done {
            let _ = self
                .audit
                .append(self.event(Action::KeyRoll, "failed", e.to_string()))
                .await;
            return Err(e);
        }
        Ok(RollReport {
            created: create,
            moved_current,
            current: Some(this),
        })
    }

    /// Schedules the deletion of every period key through `through` (KMS,
    /// after `pending_days`), or destroys their files (raw). Refused, with
    /// nothing touched, when any of those periods is inside retention or a
    /// key is current.
    pub async fn retire(
        &self,
        through: Period,
        pending_days: u32,
        retention: Option<RetentionDays>,
    ) -> Result<RetireReport, KeysError> {
        if !PENDING_DAYS.contains(&pending_days) {
            return Err(self
                .refused(Action::KeyRetire, KeysError::PendingDays(pending_days))
                .await);
        }
        let Some(days) = retention else {
            return Err(self
                .refused(Action::KeyRetire, KeysError::NoRetention)
                .await);
        };
        let now = self.clock.now_us();
        let stored = self.stored().await?;
        let through_keys: Vec<&StoredKey> = stored
            .iter()
            .filter(|k| k.period <= through && k.state != KeyState::Deleted)
            .collect();
        if through_keys.is_empty() {
            return Err(self
                .refused(Action::KeyRetire, KeysError::NothingToRetire(through))
                .await);
        }
        if let Some(k) = through_keys.iter().find(|k| k.current) {
            return Err(self
                .refused(Action::KeyRetire, KeysError::RetireCurrent(k.period))
                .await);
        }
        // Every day of every month through `through` counts, with or
        // without a key: its last day is the newest.
        if period_past_retention(through, now, days).is_none() {
            let err = KeysError::InsideRetention {
                period: through,
                days,
                until: date_of_us(period_past_retention_at(through, days)),
            };
            return Err(self.refused(Action::KeyRetire, err).await);
        }
        let (pending, targets): (Vec<&StoredKey>, Vec<&StoredKey>) = through_keys
            .into_iter()
            .partition(|k| matches!(k.state, KeyState::PendingDeletion { .. }));
        let already_pending: Vec<Period> = pending.iter().map(|k| k.period).collect();
        if targets.is_empty() {
            return Ok(RetireReport {
                retired: Vec::new(),
                already_pending,
            });
        }
        let detail = format!(
            "through {through}: {}; pending {pending_days} days; retention {days}",
            targets
                .iter()
                .map(|k| format!("{} key {}", k.period, k.key_id))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // The record of the retirement commits before any key is touched:
        // if it cannot, nothing is scheduled.
        self.audit
            .append(self.event(Action::KeyRetire, "scheduled", detail))
            .await?;
        let mut retired = Vec::new();
        for k in targets {
            let result = match &self.backend {
                Backend::Kms(kms) => kms.schedule_deletion(&k.key_id, pending_days).await,
                Backend::Raw(dir) => raw::destroy(dir, k.period, now).map(|()| None),
            };
            match result {
                Ok(until) => retired.push((k.period, k.key_id.clone(), until)),
                Err(e) => {
                    let _ = self
                        .audit
                        .append(self.event(
                            Action::KeyRetire,
                            "failed",
                            format!(
                                "{} key {}: {e}; retired before it: {}",
                                k.period,
                                k.key_id,
                                join(&retired.iter().map(|r| r.0).collect::<Vec<_>>())
                            ),
                        ))
                        .await;
                    return Err(e);
                }
            }
        }
        Ok(RetireReport {
            retired,
            already_pending,
        })
    }

    /// Cancels the pending deletion of one period's key and enables it again.
    pub async fn cancel(&self, period: Period) -> Result<(), KeysError> {
        let Backend::Kms(kms) = &self.backend else {
            return Err(self
                .refused(Action::KeyCancel, KeysError::NoPendingRaw)
                .await);
        };
        let stored = self.stored().await?;
        let Some(key) = stored.iter().find(|k| k.period == period) else {
            return Err(self
                .refused(Action::KeyCancel, KeysError::NoSuchPeriod(period))
                .await);
        };
        if !matches!(key.state, KeyState::PendingDeletion { .. }) {
            let err = KeysError::NotPending {
                period,
                state: key.state.label(),
            };
            return Err(self.refused(Action::KeyCancel, err).await);
        }
        self.audit
            .append(self.event(
                Action::KeyCancel,
                "ok",
                format!("{period} key {}", key.key_id),
            ))
            .await?;
        kms.cancel_deletion(&key.key_id).await
    }
}

/// The (period, key id) pairs of a `key_retire` row's detail
/// (`through P: P key ID, P key ID; pending ...`).
fn retired_in_detail(detail: &str) -> Vec<(Period, String)> {
    let Some((_, rest)) = detail.split_once(": ") else {
        return Vec::new();
    };
    let list = rest.split(';').next().unwrap_or_default();
    list.split(", ")
        .filter_map(|item| {
            let (period, key_id) = item.trim().split_once(" key ")?;
            Some((Period::parse(period).ok()?, key_id.trim().to_owned()))
        })
        .collect()
}

fn join(periods: &[Period]) -> String {
    if periods.is_empty() {
        return "none".into();
    }
    periods
        .iter()
        .map(Period::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retired_keys_are_read_back_from_a_retire_row() {
        let got = retired_in_detail(
            "through 2024-02: 2024-01 key k-1, 2024-02 key k-2; pending 7 days; retention 365 days",
        );
        let want: Vec<(Period, String)> = vec![
            (Period::parse("2024-01").unwrap(), "k-1".into()),
            (Period::parse("2024-02").unwrap(), "k-2".into()),
        ];
        assert_eq!(got, want);
        assert!(retired_in_detail("nonsense").is_empty());
    }
}
