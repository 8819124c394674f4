//! What guards a reveal, as flags with environment fallbacks: step-up, dual
//! control, budgets, the case reference, retention, and shipping the audit
//! log. Applied onto [`Settings`].

use std::time::Duration;

use clap::Args;

use super::{Settings, SettingsError};
use crate::audit::ship::ShipSettings;
use crate::decrypt::case::DEFAULT_CASE_LABEL;
use crate::decrypt::policy::{
    DecryptPolicy, DEFAULT_APPROVAL_EXPIRY_MIN, DEFAULT_DECRYPT_BUDGET, DEFAULT_REVEAL_SHOW_SECS,
    DEFAULT_STEP_UP_MIN,
};
use crate::sources::LogGroupName;

/// What guards a reveal: step-up, dual control, budgets, the case reference.
#[derive(Debug, Clone, Args)]
pub struct ProtectionArgs {
    /// Minutes a password + TOTP step-up stays valid for decrypting.
    #[arg(long, env = "CALLVAULT_STEP_UP_MIN", default_value_t = DEFAULT_STEP_UP_MIN)]
    pub step_up_min: u64,
    /// none, or required: a decrypt needs another supervisor's approval.
    #[arg(long, env = "CALLVAULT_DECRYPT_APPROVAL", default_value = "none")]
    pub decrypt_approval: String,
    /// Minutes a decrypt request stays open for approval and the one reveal.
    #[arg(long, env = "CALLVAULT_APPROVAL_EXPIRY_MIN", default_value_t = DEFAULT_APPROVAL_EXPIRY_MIN)]
    pub approval_expiry_min: u64,
    /// Decrypts per user per rolling hour (N/h), or off.
    #[arg(long, env = "CALLVAULT_DECRYPT_BUDGET", default_value_t = DEFAULT_DECRYPT_BUDGET.to_string())]
    pub decrypt_budget: String,
    /// Seconds a revealed value's page stays before it replaces itself with
    /// the contact page (the value is hidden until asked for meanwhile).
    #[arg(long, env = "CALLVAULT_REVEAL_SHOW_SECS", default_value_t = DEFAULT_REVEAL_SHOW_SECS)]
    pub reveal_show_secs: u64,
    /// What the reveal form calls the case or ticket reference.
    #[arg(long, env = "CALLVAULT_CASE_LABEL", default_value = DEFAULT_CASE_LABEL)]
    pub case_label: String,
    /// Regular expression a case reference must match whole (default: a
    /// letter or digit, then letters, digits and . _ : / # -).
    #[arg(long, env = "CALLVAULT_CASE_PATTERN", default_value = "")]
    pub case_pattern: String,
    /// true: a reveal without a case reference is refused.
    #[arg(long, env = "CALLVAULT_CASE_REQUIRED", default_value_t = false)]
    pub case_required: bool,
    /// Days a captured value may be revealed, counted from the contact's
    /// start (1 to 3660); unset: no retention limit (preflight warns).
    #[arg(long = "retention-days", env = "CALLVAULT_RETENTION_DAYS")]
    pub retention_days: Option<String>,
    #[command(flatten)]
    pub ship: ShipArgs,
}

/// Shipping the audit log to CloudWatch Logs and signing checkpoints.
#[derive(Debug, Clone, Args)]
pub struct ShipArgs {
    /// KMS asymmetric key (SIGN_VERIFY) that signs chain checkpoints.
    #[arg(long, env = "CALLVAULT_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<String>,
    /// Sign a checkpoint after this many new rows...
    #[arg(long, env = "CALLVAULT_CHECKPOINT_ROWS", default_value_t = 1000)]
    pub checkpoint_rows: i64,
    /// ...or after this many seconds with new rows.
    #[arg(long, env = "CALLVAULT_CHECKPOINT_SECS", default_value_t = 300)]
    pub checkpoint_secs: u64,
}

impl ShipArgs {
    pub fn settings(&self, group: Option<&str>) -> Result<Option<ShipSettings>, SettingsError> {
        let key = self
            .checkpoint_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        let Some(group) = group else {
            return if key.is_some() {
                Err(SettingsError::CheckpointWithoutGroup)
            } else {
                Ok(None)
            };
        };
        if LogGroupName::parse(group).is_none() {
            return Err(SettingsError::LogGroup);
        }
        if self.checkpoint_rows < 1 || self.checkpoint_secs < 1 {
            return Err(SettingsError::Checkpoints);
        }
        Ok(Some(ShipSettings {
            log_group: group.to_owned(),
            checkpoint_key: key,
            checkpoint_every_rows: self.checkpoint_rows,
            checkpoint_every: Duration::from_secs(self.checkpoint_secs),
            poll: Duration::from_millis(500),
            checkpoint_retry: Duration::from_secs(30),
        }))
    }
}

impl ProtectionArgs {
    pub fn apply(
        &self,
        settings: &mut Settings,
        audit_log_group: Option<&str>,
    ) -> Result<(), SettingsError> {
        if self.step_up_min == 0 || self.approval_expiry_min == 0 {
            return Err(SettingsError::Timeouts);
        }
        if !(5..=3600).contains(&self.reveal_show_secs) {
            return Err(SettingsError::RevealShow);
        }
        settings.policy = DecryptPolicy {
            step_up_window: Duration::from_secs(self.step_up_min * 60),
            budget: self.decrypt_budget.parse()?,
            approval: self.decrypt_approval.parse()?,
            approval_expiry: Duration::from_secs(self.approval_expiry_min * 60),
            show_for: Duration::from_secs(self.reveal_show_secs),
            case: crate::decrypt::case::CaseRule::new(
                &self.case_label,
                &self.case_pattern,
                self.case_required,
            )?,
        };
        settings.retention = self
            .retention_days
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::parse)
            .transpose()?;
        settings.ship = self.ship.settings(audit_log_group)?;
        Ok(())
    }
}
