//! Refusals as values. A capability describes why it said no with a type
//! implementing [`Refusal`] (the audit action and outcome it is recorded
//! under); the only way to turn one into an answer is [`Recorded`], which
//! only [`AuditLog::refuse`] makes, after the row has committed. So a
//! handler cannot answer with a refusal that has no row.

use std::borrow::Cow;

use super::{Action, AuditError, AuditEvent, AuditLog};

/// Why something was refused, as the audit log records it.
pub trait Refusal {
    /// The action of the row (`decrypt_denied`, `access_denied`, ...).
    fn action(&self) -> Action;
    /// The row's outcome word (`role`, `budget_exceeded`, ...).
    fn outcome(&self) -> Cow<'static, str>;
    /// Words for the row's detail column (never a value or a secret).
    fn detail(&self) -> String {
        String::new()
    }
}

/// A refusal whose audit row has committed (at sequence `seq`).
#[must_use = "a recorded refusal is answered, not dropped"]
#[derive(Debug)]
pub struct Recorded<R> {
    refusal: R,
    seq: i64,
}

impl<R> Recorded<R> {
    pub fn refusal(&self) -> &R {
        &self.refusal
    }

    pub fn into_refusal(self) -> R {
        self.refusal
    }

    /// The audit row it was recorded as.
    pub fn seq(&self) -> i64 {
        self.seq
    }
}

impl AuditLog {
    /// Records `refusal` in a row built by `row` (who, what, where; the
    /// action, outcome and detail come from the refusal) and hands it back
    /// as [`Recorded`], ready to be answered.
    pub async fn refuse<R: Refusal>(
        &self,
        refusal: R,
        row: impl FnOnce(Action, &str, String) -> AuditEvent,
    ) -> Result<Recorded<R>, AuditError> {
        let event = row(refusal.action(), &refusal.outcome(), refusal.detail());
        let seq = self.append(event).await?.seq;
        Ok(Recorded { refusal, seq })
    }
}
