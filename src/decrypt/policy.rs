//! What a reveal needs besides the supervisor role: a fresh second factor
//! (step-up), room in the user's decrypt budget, and, where the deployment
//! asks for it, another supervisor's approval (see `approvals`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::audit::{AuditError, AuditLog};
use crate::clock::SharedClock;

const HOUR_US: i64 = 3_600_000_000;

/// `CALLVAULT_DECRYPT_APPROVAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ApprovalMode {
    #[default]
    None,
    Required,
}

impl std::str::FromStr for ApprovalMode {
    type Err = PolicyConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "none" | "off" => Ok(Self::None),
            "required" => Ok(Self::Required),
            _ => Err(PolicyConfigError::Approval),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("CALLVAULT_DECRYPT_APPROVAL is none or required")]
    Approval,
    #[error("CALLVAULT_DECRYPT_BUDGET is N/h (decrypts per user per hour), or off")]
    Budget,
}

/// Decrypts allowed per user per rolling hour; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetLimit(pub Option<u32>);

impl std::str::FromStr for BudgetLimit {
    type Err = PolicyConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "off" || s == "unlimited" {
            return Ok(Self(None));
        }
        let n = s.strip_suffix("/h").unwrap_or(s);
        match n.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(Self(Some(n))),
            _ => Err(PolicyConfigError::Budget),
        }
    }
}

/// Each default is declared once, here: clap's `default_value` for the
/// variable and `DecryptPolicy::default` both use it.
pub const DEFAULT_STEP_UP_MIN: u64 = 5;
pub const DEFAULT_DECRYPT_BUDGET: BudgetLimit = BudgetLimit(Some(20));
pub const DEFAULT_APPROVAL_EXPIRY_MIN: u64 = 15;
pub const DEFAULT_REVEAL_SHOW_SECS: u64 = 60;

impl std::fmt::Display for BudgetLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(n) => write!(f, "{n}/h"),
            None => f.write_str("off"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct DecryptPolicy {
    /// How long a step-up stays fresh.
    pub step_up_window: Duration,
    pub budget: BudgetLimit,
    pub approval: ApprovalMode,
    /// How long a decrypt request stays open (approval and reveal).
    pub approval_expiry: Duration,
    /// How long a revealed value's page stays before it replaces itself.
    pub show_for: Duration,
    /// The case or ticket reference asked for beside the reason.
    pub case: super::case::CaseRule,
}

impl Default for DecryptPolicy {
    fn default() -> Self {
        Self {
            step_up_window: Duration::from_secs(DEFAULT_STEP_UP_MIN * 60),
            budget: DEFAULT_DECRYPT_BUDGET,
            approval: ApprovalMode::None,
            approval_expiry: Duration::from_secs(DEFAULT_APPROVAL_EXPIRY_MIN * 60),
            show_for: Duration::from_secs(DEFAULT_REVEAL_SHOW_SECS),
            case: super::case::CaseRule::default(),
        }
    }
}

/// A budget as the reveal's audit row checks it: `limit` attempts since
/// `since_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetCap {
    pub limit: u32,
    pub since_us: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("decrypt budget used: {used} of {limit} in the last hour")]
    Exceeded { used: i64, limit: u32 },
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Per-user decrypt budget over a rolling hour, counted from the audit log
/// (so every replica sees the same history) plus this process's in-flight
/// reveals (so a burst of parallel requests cannot overshoot it). Reveals in
/// flight on other replicas are caught when the `decrypt` row commits: it is
/// written only inside the budget (`AuditLog::append_within_budget`).
#[derive(Clone)]
pub struct Budget {
    audit: AuditLog,
    clock: SharedClock,
    limit: BudgetLimit,
    in_flight: InFlight,
    gates: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// Reveals under way, per actor.
type InFlight = Arc<Mutex<HashMap<String, i64>>>;

/// Holds a place in the budget until the reveal is over.
pub struct BudgetPermit {
    in_flight: Option<(InFlight, String)>,
}

impl Drop for BudgetPermit {
    fn drop(&mut self) {
        if let Some((map, actor)) = self.in_flight.take() {
            let mut m = map.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = m.get_mut(&actor) {
                *n -= 1;
                if *n <= 0 {
                    m.remove(&actor);
                }
            }
        }
    }
}

impl Budget {
    pub fn new(audit: AuditLog, clock: SharedClock, limit: BudgetLimit) -> Self {
        Self {
            audit,
            clock,
            limit,
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            gates: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn limit(&self) -> BudgetLimit {
        self.limit
    }

    /// The budget for the final check, made when the reveal's row commits
    /// (the reservation below is exact within one process only).
    pub fn cap(&self) -> Option<BudgetCap> {
        self.limit.0.map(|limit| BudgetCap {
            limit,
            since_us: self.clock.now_us() - HOUR_US,
        })
    }

    /// Decrypt attempts (revealed or failed) by `actor` in the last hour.
    pub async fn used(&self, actor: &str) -> Result<i64, AuditError> {
        self.audit
            .decrypt_attempts_since(actor, self.clock.now_us() - HOUR_US)
            .await
    }

    /// What is left of `actor`'s budget this hour, and the limit; `None`
    /// when there is no budget. (Reveals in flight are not counted: this is
    /// for showing, the reservation below decides.)
    pub async fn remaining(&self, actor: &str) -> Result<Option<(i64, u32)>, AuditError> {
        let Some(limit) = self.limit.0 else {
            return Ok(None);
        };
        let used = self.used(actor).await?;
        Ok(Some(((i64::from(limit) - used).max(0), limit)))
    }

    /// When `actor` can reveal again, once the budget is used: when the
    /// attempt that keeps it full leaves the hour (the oldest one counted,
    /// when exactly the limit is used), rounded up to the next second.
    /// `None` while there is room, or without a budget.
    pub async fn next_possible_us(&self, actor: &str) -> Result<Option<i64>, AuditError> {
        let Some(limit) = self.limit.0 else {
            return Ok(None);
        };
        let since = self.clock.now_us() - HOUR_US;
        let used = self.audit.decrypt_attempts_since(actor, since).await?;
        if used < i64::from(limit) {
            return Ok(None);
        }
        let nth = used - i64::from(limit);
        let at = self.audit.decrypt_attempt_at(actor, since, nth).await?;
        // Counted while `ts >= now - hour`: free a microsecond later.
        Ok(at.map(|ts| (ts + HOUR_US) / 1_000_000 * 1_000_000 + 1_000_000))
    }

    pub async fn reserve(&self, actor: &str) -> Result<BudgetPermit, BudgetError> {
        let Some(limit) = self.limit.0 else {
            return Ok(BudgetPermit { in_flight: None });
        };
        // One reservation at a time per actor. In-flight reveals are read
        // before the log: a reveal drops its permit only after its row is
        // committed, so it is counted at least once, never zero times.
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(gates.entry(actor.to_owned()).or_default())
        };
        let _serialised = gate.lock().await;
        let pending = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(actor)
            .copied()
            .unwrap_or(0);
        let used = self.used(actor).await?;
        if used + pending >= i64::from(limit) {
            return Err(BudgetError::Exceeded {
                used: used + pending,
                limit,
            });
        }
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(actor.to_owned())
            .or_insert(0) += 1;
        Ok(BudgetPermit {
            in_flight: Some((Arc::clone(&self.in_flight), actor.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse() {
        assert_eq!(
            "20/h".parse::<BudgetLimit>().unwrap(),
            BudgetLimit(Some(20))
        );
        assert_eq!("5".parse::<BudgetLimit>().unwrap(), BudgetLimit(Some(5)));
        assert_eq!("off".parse::<BudgetLimit>().unwrap(), BudgetLimit(None));
        for bad in ["0", "-1", "x/h", "20/d", ""] {
            assert!(bad.parse::<BudgetLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn approval_modes_parse() {
        assert_eq!(
            "required".parse::<ApprovalMode>().unwrap(),
            ApprovalMode::Required
        );
        assert_eq!("none".parse::<ApprovalMode>().unwrap(), ApprovalMode::None);
        assert!("yes".parse::<ApprovalMode>().is_err());
    }
}
