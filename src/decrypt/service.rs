//! The one admission every reveal passes, in one order, for every channel:
//! role -> field -> reason -> case reference -> keyring -> dual control ->
//! authenticator -> step-up -> budget -> (the approved request, used once)
//! -> the stored value -> its context -> the `decrypt` row commits (within
//! the budget) with a single-use grant -> (when the grant is used, once)
//! decrypt in memory -> the value is handed back. A refusal
//! anywhere is recorded once, at the end of [`Reveals::reveal`], and only
//! then answered.

use std::sync::Arc;

use lambda_encrypt::context::FieldName;

use super::admission::{Ask, Channel, RevealError, RevealRefusal, SecondFactor};
use super::approvals::{ApprovalError, Approvals, DecryptRequest};
use super::grants::{self, Grant, Grants, GRANT_TTL};
use super::keypad::{self, KeypadPath};
use super::policy::{ApprovalMode, Budget, BudgetError, BudgetPermit, DecryptPolicy};
use super::{Decryptor, Reason};
use crate::audit::{Action, AuditLog};
use crate::auth::step_up::step_up_fresh;
use crate::auth::totp::{Enrolment, TotpStore};
use crate::auth::Role;
use crate::clock::{format_us, SharedClock};
use crate::sources::ContactDirectory;

/// What a reveal needs, built once per process (web) or per command (CLI).
#[derive(Clone)]
pub struct Reveals {
    pub audit: AuditLog,
    pub totp: TotpStore,
    pub clock: SharedClock,
    pub budget: Budget,
    pub approvals: Approvals,
    /// Where stored values are read; `None` when the asker must bring it.
    pub directory: Option<Arc<dyn ContactDirectory>>,
    /// None when no keyring is configured: nothing can be decrypted.
    pub decryptor: Option<Decryptor>,
    /// Amazon Connect's keypad fields and their keys, when configured.
    pub keypad: Option<Arc<KeypadPath>>,
    /// Admitted reveals waiting to be shown.
    pub grants: Grants,
    /// The reference solution's fixed context, accepted and marked legacy.
    pub legacy: Option<lambda_encrypt::context::ExpectedContext>,
    pub policy: DecryptPolicy,
    /// `CALLVAULT_RETENTION_DAYS`: values of contacts older are not revealed.
    pub retention: Option<crate::keys::RetentionDays>,
    /// Users signed in by an identity provider confirm there (its MFA is
    /// their second factor), always.
    pub external_sign_in: bool,
}

/// What an admitted ask became.
pub enum Outcome {
    /// Admitted and recorded: the value is shown once, when the grant is
    /// used ([`Reveals::open`]).
    Granted(Grant),
    /// Dual control: a request another supervisor decides (its row committed).
    Requested(DecryptRequest),
}

pub use super::open::OpenError;

/// Why [`Reveals::run`] stopped: a refusal to record, or a failure.
pub(super) enum Stop {
    Refused(RevealRefusal),
    Failed(RevealError),
}

impl From<RevealError> for Stop {
    fn from(e: RevealError) -> Self {
        Self::Failed(e)
    }
}

impl From<crate::audit::AuditError> for Stop {
    fn from(e: crate::audit::AuditError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<crate::auth::totp::TotpError> for Stop {
    fn from(e: crate::auth::totp::TotpError) -> Self {
        Self::Failed(e.into())
    }
}

pub(super) fn refuse<T>(r: RevealRefusal) -> Result<T, Stop> {
    Err(Stop::Refused(r))
}

impl Reveals {
    /// Admits `ask` and reveals its value, or records why not.
    pub async fn reveal(&self, mut ask: Ask, proof: SecondFactor) -> Result<Outcome, RevealError> {
        match self.run(&mut ask, proof).await {
            Ok(outcome) => Ok(outcome),
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::Refused(r)) => {
                let recorded = self
                    .audit
                    .refuse(r, |action, outcome, detail| {
                        ask.event(action, outcome, &detail)
                    })
                    .await?;
                Err(RevealError::Refused(recorded))
            }
        }
    }

    async fn run(&self, ask: &mut Ask, proof: SecondFactor) -> Result<Outcome, Stop> {
        // Every row of this ask records the reason and case reference once
        // they are valid (a refusal of the role included), never before.
        let reason = Reason::parse(&ask.reason_raw);
        let case = self.policy.case.parse(&ask.case_raw);
        if let Ok(r) = &reason {
            ask.reason_text = r.as_str().to_owned();
        }
        if let Ok(c) = &case {
            ask.case_text = c.clone();
        }
        let Some(principal) = ask.principal.clone().filter(|p| p.role == Role::Supervisor) else {
            return refuse(RevealRefusal::Role);
        };
        let Ok(field) = FieldName::parse(&ask.field_text) else {
            return refuse(RevealRefusal::BadField);
        };
        if let Err(e) = reason {
            return refuse(RevealRefusal::Reason(e));
        }
        if let Err(e) = case {
            return refuse(RevealRefusal::CaseRef(e));
        }
        let keypad_field = self
            .keypad
            .as_ref()
            .is_some_and(|k| k.validator(&field).is_some());
        if self.decryptor.is_none() && !keypad_field {
            return refuse(RevealRefusal::NotConfigured);
        }
        if self.policy.approval == ApprovalMode::Required {
            match ask.channel {
                Channel::Web => return self.request(ask, &field).await,
                Channel::Cli => return refuse(RevealRefusal::ApprovalRequired),
                Channel::Approval { .. } => {}
            }
        }
        let _permit = self.admit(ask, &principal, proof).await?;
        if let Channel::Approval { request_id, .. } = &ask.channel {
            match self
                .approvals
                .consume(request_id, &principal.username)
                .await
            {
                Ok(_) => {}
                Err(ApprovalError::Db(e)) => return Err(Stop::Failed(RevealError::Requests(e))),
                Err(e) => return refuse(RevealRefusal::Approval(e)),
            }
        }
        let stored = self.stored_value(ask, &field).await?;
        self.grant(ask, &field, &stored).await
    }

    /// The authenticator, a fresh step-up and room in the budget, checked
    /// before any key is used.
    async fn admit(
        &self,
        ask: &Ask,
        p: &crate::auth::principal::Principal,
        proof: SecondFactor,
    ) -> Result<BudgetPermit, Stop> {
        let enrolment = self.totp.enrolment(p.user_id).await?;
        let sso_user = p.sso_subject.is_some() && self.external_sign_in;
        if enrolment != Enrolment::Active && !sso_user && self.totp.mandatory().await? {
            return refuse(RevealRefusal::TotpNotEnrolled);
        }
        if enrolment == Enrolment::Active || sso_user {
            match proof {
                SecondFactor::Session(stepped) => {
                    if !step_up_fresh(
                        stepped.as_ref(),
                        p.user_id,
                        &p.generation,
                        self.clock.now_us(),
                        self.policy.step_up_window,
                    ) {
                        return refuse(RevealRefusal::StepUpRequired);
                    }
                }
                SecondFactor::Terminal(read) => {
                    let Some(code) = read().filter(|c| !c.trim().is_empty()) else {
                        return refuse(RevealRefusal::StepUpRequired);
                    };
                    let mut conn = self
                        .audit
                        .db()
                        .pool
                        .acquire()
                        .await
                        .map_err(|e| RevealError::Audit(e.into()))?;
                    let checked = self
                        .totp
                        .verify(&mut conn, p.user_id, code.trim(), false)
                        .await;
                    drop(conn);
                    if let Err(e) = checked {
                        return refuse(RevealRefusal::StepUpFailed(e.kind()));
                    }
                }
            }
        }
        match self.budget.reserve(&ask.actor).await {
            Ok(permit) => Ok(permit),
            Err(BudgetError::Exceeded { used, limit }) => {
                refuse(RevealRefusal::BudgetExceeded { used, limit })
            }
            Err(BudgetError::Audit(e)) => Err(e.into()),
        }
    }

    /// The contact's stored value of `field`, read from the directory (or
    /// as the asker gave it). Notes the contact it is bound to (its initial
    /// contact, after transfers).
    async fn stored_value(&self, ask: &mut Ask, field: &FieldName) -> Result<String, Stop> {
        // A keypad message names no contact: one the asker brings is taken
        // only as the very value the contact holds.
        let keypad = self
            .keypad
            .as_ref()
            .is_some_and(|k| k.validator(field).is_some());
        let Some(directory) = &self.directory else {
            return match &ask.given_value {
                Some(_) if keypad => refuse(RevealRefusal::GivenNotStored),
                Some(given) => Ok(given.clone()),
                None => refuse(RevealRefusal::NotConfigured),
            };
        };
        // A value the asker brings is still that of a contact the directory
        // describes: its start time is the value's age for retention.
        let summary = directory
            .describe(&ask.contact_id)
            .await
            .map_err(|e| Stop::Refused(RevealRefusal::Source(e)))?;
        ask.contact_started_us = summary.initiated_us;
        let initial = summary.initial_contact_id.unwrap_or(summary.id);
        if initial != ask.contact_id {
            ask.initial = Some(initial.clone());
        }
        if let (Some(given), false) = (&ask.given_value, keypad) {
            return Ok(given.clone());
        }
        let mut attributes = directory
            .fresh_attributes(&initial)
            .await
            .map_err(|e| Stop::Refused(RevealRefusal::Source(e)))?;
        match (attributes.remove(field.as_str()), &ask.given_value) {
            (Some(value), None) => Ok(value),
            (Some(value), Some(given)) if value.trim() == given.trim() => Ok(value),
            (_, Some(_)) => refuse(RevealRefusal::GivenNotStored),
            (None, None) => refuse(RevealRefusal::NoSuchField),
        }
    }

    /// Checks the stored value on its capture path (no key is used yet),
    /// then commits the `decrypt` row (within the budget) and a single-use
    /// grant in one transaction. The value is decrypted only when the grant
    /// is used ([`Reveals::open`]).
    async fn grant(&self, ask: &Ask, field: &FieldName, stored: &str) -> Result<Outcome, Stop> {
        let now = self.clock.now_us();
        let admitted = match self
            .keypad
            .as_ref()
            .filter(|k| k.validator(field).is_some())
        {
            Some(path) => self.admit_keypad(ask, path, stored, now)?,
            None => self.admit_lex(ask, field, stored, now).await?,
        };
        let principal = ask.principal.as_ref();
        let mut grant = Grant {
            id: grants::new_id().map_err(|e| RevealError::Audit(e.into()))?,
            user_id: principal.map_or(0, |p| p.user_id),
            generation: principal.map_or_else(String::new, |p| p.generation.clone()),
            actor: ask.actor.clone(),
            role: ask.role.clone(),
            contact_id: ask.contact_id.to_string(),
            bound_to: admitted.bound_to,
            initial_contact_id: ask
                .initial
                .as_ref()
                .map_or_else(String::new, |c| c.to_string()),
            field: field.to_string(),
            reason: ask.reason_text.clone(),
            case_ref: ask.case_text.clone(),
            stored_value: stored.trim().to_owned(),
            legacy: i64::from(admitted.legacy),
            capture: admitted.capture.as_str().to_owned(),
            audit_seq: 0,
            request_id: ask.meta.request_id.clone(),
            created_us: now,
            expires_us: now + i64::try_from(GRANT_TTL.as_micros()).unwrap_or(i64::MAX),
            used_us: 0,
        };
        let detail = format!("{}, grant {}{}", admitted.head, grant.id, admitted.tail);
        let event = ask.event(Action::Decrypt, "ok", &detail);
        let mut change = self.audit.begin_change().await?;
        if let Some(cap) = self.budget.cap() {
            // Spent meanwhile by reveals elsewhere (another replica)?
            let used = change.attempts_since(&ask.actor, cap.since_us).await?;
            if used >= i64::from(cap.limit) {
                change.rollback().await;
                return refuse(RevealRefusal::BudgetExceeded {
                    used,
                    limit: cap.limit,
                });
            }
        }
        grant.audit_seq = change.next_seq().await?;
        let store = |e: sqlx::Error| Stop::Failed(RevealError::Audit(e.into()));
        if let Some(tag) = &admitted.tag {
            // Transferred legs share their initial contact's values.
            let owner = ask.initial.as_ref().unwrap_or(&ask.contact_id);
            let first = keypad::claim(change.conn(), tag, owner.as_str(), grant.audit_seq, now)
                .await
                .map_err(store)?;
            if let Some(first_contact) = first {
                change.rollback().await;
                return refuse(RevealRefusal::CopiedMessage {
                    tag: tag.clone(),
                    first_contact,
                });
            }
        }
        Grants::create(change.conn(), &grant).await.map_err(store)?;
        change.commit(event).await?;
        Ok(Outcome::Granted(grant))
    }

    /// Dual control: the reveal becomes a request another supervisor
    /// decides. Only fields the contact holds can be requested; the request
    /// and its row commit together, or neither does.
    async fn request(&self, ask: &mut Ask, field: &FieldName) -> Result<Outcome, Stop> {
        self.stored_value(ask, field).await?;
        let mut change = self.audit.begin_change().await?;
        let request = self
            .approvals
            .create(
                change.conn(),
                &ask.actor,
                ask.contact_id.as_str(),
                field.as_str(),
                &ask.reason_text,
                &ask.case_text,
                self.policy.approval_expiry,
            )
            .await
            .map_err(|e| match e {
                ApprovalError::Db(e) => Stop::Failed(RevealError::Requests(e)),
                other => Stop::Refused(RevealRefusal::Approval(other)),
            })?;
        let detail = format!(
            "request {} expires {}",
            request.id,
            format_us(request.expires_us)
        );
        change
            .commit(ask.event(Action::DecryptRequest, "pending", &detail))
            .await?;
        Ok(Outcome::Requested(request))
    }
}
