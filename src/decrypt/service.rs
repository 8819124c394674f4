//! The one admission every reveal passes, in one order, for every channel:
//! role -> field -> reason -> case reference -> keyring -> dual control ->
//! authenticator -> step-up -> budget -> (the approved request, used once)
//! -> the stored value -> its context -> decrypt in memory -> the `decrypt`
//! row commits (within the budget) -> the value is handed back. A refusal
//! anywhere is recorded once, at the end of [`Reveals::reveal`], and only
//! then answered.

use std::sync::Arc;

use lambda_encrypt::context::{FieldContext, FieldName};
use lambda_encrypt::crypto::CryptoError;
use lambda_encrypt::envelope::Ciphertext;

use super::admission::{Ask, Channel, RevealError, RevealRefusal, SecondFactor};
use super::approvals::{ApprovalError, Approvals, DecryptRequest};
use super::policy::{ApprovalMode, Budget, BudgetError, BudgetPermit, DecryptPolicy};
use super::{Decryptor, Reason, Revealed};
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
    /// The reference solution's fixed context, accepted and marked legacy.
    pub legacy: Option<lambda_encrypt::context::ExpectedContext>,
    pub policy: DecryptPolicy,
    /// Users signed in by an identity provider confirm there (its MFA is
    /// their second factor), always.
    pub external_sign_in: bool,
}

/// What an admitted ask became.
pub enum Outcome {
    Revealed(Revealed),
    /// Dual control: a request another supervisor decides (its row committed).
    Requested(DecryptRequest),
}

/// Why [`Reveals::run`] stopped: a refusal to record, or a failure.
enum Stop {
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

fn refuse<T>(r: RevealRefusal) -> Result<T, Stop> {
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
        let Some(decryptor) = self.decryptor.clone() else {
            return refuse(RevealRefusal::NotConfigured);
        };
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
        self.decrypt(ask, &field, &stored, decryptor).await
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
        if let Some(given) = &ask.given_value {
            return Ok(given.clone());
        }
        let Some(directory) = &self.directory else {
            return refuse(RevealRefusal::NotConfigured);
        };
        let summary = directory
            .describe(&ask.contact_id)
            .await
            .map_err(|e| Stop::Refused(RevealRefusal::Source(e)))?;
        let initial = summary.initial_contact_id.unwrap_or(summary.id);
        if initial != ask.contact_id {
            ask.initial = Some(initial.clone());
        }
        let mut attributes = directory
            .fresh_attributes(&initial)
            .await
            .map_err(|e| Stop::Refused(RevealRefusal::Source(e)))?;
        match attributes.remove(field.as_str()) {
            Some(value) => Ok(value),
            None => refuse(RevealRefusal::NoSuchField),
        }
    }

    /// Checks the ciphertext's context, decrypts it in memory and commits
    /// the `decrypt` row (within the budget); the value leaves only after.
    async fn decrypt(
        &self,
        ask: &Ask,
        field: &FieldName,
        stored: &str,
        decryptor: Decryptor,
    ) -> Result<Outcome, Stop> {
        let ct = match Ciphertext::from_base64(stored.trim()) {
            Ok(ct) => ct,
            Err(e) => {
                return refuse(RevealRefusal::Failed {
                    kind: CryptoError::from(e).kind(),
                    fingerprint: String::new(),
                })
            }
        };
        let fingerprint = ct.fingerprint();
        let context = &ct.header().encryption_context;
        let bound_to = std::iter::once(&ask.contact_id).chain(ask.initial.as_ref());
        let mut candidates: Vec<_> = bound_to
            .map(|c| {
                (
                    FieldContext::new(c.clone(), field.clone()).to_expected(),
                    false,
                )
            })
            .collect();
        if let Some(legacy) = &self.legacy {
            candidates.push((legacy.clone(), true));
        }
        let Some((expected, legacy)) = candidates.into_iter().find(|(e, _)| e.matches(context))
        else {
            return refuse(RevealRefusal::ContextMismatch { fingerprint });
        };
        let decrypted = match decryptor.decrypt(ct, expected).await {
            Ok(d) => d,
            Err(e) => {
                let kind = e.kind();
                tracing::warn!(request_id = ask.meta.request_id.as_str(), error_kind = kind, error = %e, "decrypt failed");
                return refuse(RevealRefusal::Failed { kind, fingerprint });
            }
        };
        let detail = format!(
            "ciphertext {fingerprint}, suite 0x{:04X}{}",
            decrypted.suite_id,
            if legacy { ", legacy context" } else { "" }
        );
        // The row commits before the value leaves this function; if the
        // commit fails, `decrypted` is dropped (and wiped) here.
        let event = ask.event(Action::Decrypt, "ok", &detail);
        let audit_seq = match self.budget.cap() {
            None => self.audit.append(event).await?.seq,
            Some(cap) => match self
                .audit
                .append_within_budget(event, cap.limit, cap.since_us)
                .await?
            {
                Ok(row) => row.seq,
                // Spent by reveals elsewhere (another replica) meanwhile.
                Err(used) => {
                    return refuse(RevealRefusal::BudgetExceeded {
                        used,
                        limit: cap.limit,
                    })
                }
            },
        };
        Ok(Outcome::Revealed(Revealed {
            plaintext: decrypted.plaintext,
            legacy,
            audit_seq,
            fingerprint,
        }))
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
