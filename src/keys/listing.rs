//! How `keys list` shows a period key.

use lambda_encrypt::period::{date_of_us, KeyState, Period};

/// How a period key is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    /// Enabled, and new values are encrypted under it.
    Current,
    /// Enabled: its period's values can be revealed.
    Kept,
    /// Scheduled for deletion (KMS), unusable now.
    PendingDeletion { until_us: Option<i64> },
    /// Destroyed: its period's values are unrecoverable.
    Deleted,
    /// Disabled or another state the key store names.
    Other(String),
}

impl Listed {
    pub fn label(&self) -> String {
        match self {
            Self::Current => "current".into(),
            Self::Kept => "kept".into(),
            Self::PendingDeletion { until_us: Some(t) } => {
                format!("pending deletion until {}", date_of_us(*t))
            }
            Self::PendingDeletion { until_us: None } => "pending deletion".into(),
            Self::Deleted => "deleted".into(),
            Self::Other(s) => s.clone(),
        }
    }

    pub(crate) fn of(state: &KeyState, current: bool) -> Self {
        match state {
            KeyState::Enabled if current => Self::Current,
            KeyState::Enabled => Self::Kept,
            KeyState::PendingDeletion { until_us } => Self::PendingDeletion {
                until_us: *until_us,
            },
            KeyState::Deleted => Self::Deleted,
            other => Self::Other(other.label()),
        }
    }
}

/// One line of `keys list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedKey {
    pub period: Period,
    /// The KMS key id, or the key file's name.
    pub key_id: String,
    pub state: Listed,
    /// Whether every value of the period is past retention (None: no retention set).
    pub past_retention: Option<bool>,
}

impl ListedKey {
    /// `2025-01  <key id>  pending deletion until 2026-12-15  past retention`
    pub fn line(&self) -> String {
        let retention = match self.past_retention {
            Some(true) => "past retention",
            Some(false) => "inside retention",
            None => "retention not set",
        };
        format!(
            "{}  {}  {}  {}",
            self.period,
            self.key_id,
            self.state.label(),
            retention
        )
    }
}
