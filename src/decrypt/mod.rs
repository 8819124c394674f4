//! The audited reveal: authorise -> check context -> decrypt in memory ->
//! commit the audit row (durably) -> respond. If the commit fails, the
//! plaintext is dropped and the caller gets an error. Used by the web form
//! and by `callvault decrypt` alike.

mod approval_pages;
pub mod approvals;
pub mod case;
pub mod policy;
pub mod refusal;
pub mod reveal;

use std::sync::{Arc, OnceLock};

use lambda_encrypt::context::{ContactId, ExpectedContext, FieldContext, FieldName};
use lambda_encrypt::crypto::{CryptoError, Decrypted, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::plaintext::Plaintext;

use crate::audit::{Action, AuditError, AuditEvent, AuditLog, RequestMeta};
use crate::auth::totp::TotpStore;
use crate::auth::Role;
use crate::clock::SharedClock;
use crate::sources::ContactDirectory;
use crate::web::{Access, Routes};

/// What the reveal and dual-control pages use; registered once as app data.
pub struct RevealState {
    pub audit: AuditLog,
    pub totp: TotpStore,
    pub clock: SharedClock,
    pub budget: policy::Budget,
    pub approvals: approvals::Approvals,
    pub directory: Arc<dyn ContactDirectory>,
    /// None when no keyring is configured: nothing can be decrypted.
    pub revealer: Option<Revealer>,
    pub policy: policy::DecryptPolicy,
    /// Sign-in at an identity provider: its users step up there, always.
    pub external: crate::auth::external::ExternalHook,
}

pub fn configure(routes: &mut Routes) {
    use approval_pages::*;
    let supervisor = Role::Supervisor.access();
    routes
        // Everyone signed in reaches the handler: refusals of other roles are
        // recorded as refused decrypts.
        .post("/contacts/{id}/decrypt", Access::SignedIn, reveal::decrypt)
        .get("/approvals", supervisor, approvals_page)
        .post("/approvals/{id}/approve", supervisor, approve)
        .post("/approvals/{id}/reject", supervisor, reject)
        .post("/approvals/{id}/reveal", supervisor, reveal);
}

pub const MAX_REASON_CHARS: usize = crate::audit::MAX_REASON_CHARS;

/// Why a value is being revealed. Required, bounded, one line of plain text
/// with something to read in it: line breaks (including U+2028/U+2029) are
/// spaces, bidi controls and invisible characters are gone, and at least one
/// letter or digit with a visible glyph is left (a Hangul filler is not one),
/// so the audit log and its exports show a reason a person can read and a
/// line-based reader cannot be fooled by. A reason holding a card number is
/// refused: auditors read reasons, and they never see card data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReasonError {
    #[error("a reason is required")]
    Empty,
    #[error("a reason must contain letters or digits")]
    NothingVisible,
    #[error("the reason is longer than {MAX_REASON_CHARS} characters")]
    TooLong,
    #[error("a reason must not contain a card number")]
    CardNumber,
}

impl Reason {
    pub fn parse(s: &str) -> Result<Self, ReasonError> {
        let cleaned = crate::text::one_line(s);
        let trimmed = cleaned.trim();
        if trimmed.is_empty() {
            return Err(ReasonError::Empty);
        }
        if !crate::text::has_visible_letter_or_digit(trimmed) {
            return Err(ReasonError::NothingVisible);
        }
        if trimmed.chars().count() > MAX_REASON_CHARS {
            return Err(ReasonError::TooLong);
        }
        if crate::guard::contains_card_number(trimmed) {
            return Err(ReasonError::CardNumber);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// ESDK operations that may call KMS run on their own multi-thread runtime:
/// the SDK's KMS client blocks in place, which a current-thread runtime (each
/// actix worker) can only do by starting a thread and a runtime per call.
fn crypto_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        #[allow(clippy::expect_used)]
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("callvault-crypto")
            .enable_all()
            .build()
            .expect("the crypto runtime starts")
    })
}

#[derive(Clone)]
pub struct Decryptor {
    crypto: Arc<FieldCrypto>,
}

impl Decryptor {
    pub fn new(crypto: FieldCrypto) -> Self {
        Self {
            crypto: Arc::new(crypto),
        }
    }

    pub async fn decrypt(
        &self,
        ct: Ciphertext,
        expected: ExpectedContext,
    ) -> Result<Decrypted, CryptoError> {
        let crypto = Arc::clone(&self.crypto);
        crypto_runtime()
            .spawn(async move { crypto.decrypt(&ct, &expected).await })
            .await
            .map_err(|_| CryptoError::Setup("decrypt task failed".into()))?
    }
}

/// One reveal, as asked for.
pub struct RevealRequest {
    pub actor: String,
    pub role: String,
    pub contact_id: ContactId,
    /// The contact's initial contact id, when it differs (transfers): a value
    /// captured earlier in the same call is bound to it.
    pub initial_contact_id: Option<ContactId>,
    pub field: FieldName,
    /// The stored attribute value (base64 ESDK message).
    pub stored_value: String,
    pub reason: Reason,
    /// The case or ticket reference ("" when none was given).
    pub case_ref: String,
    pub meta: RequestMeta,
    /// Extra context for every row this reveal writes (e.g. its approval).
    pub detail: String,
    /// The actor's decrypt budget, enforced again when the row commits.
    pub budget: Option<policy::BudgetCap>,
}

pub struct Revealed {
    pub plaintext: Plaintext,
    /// Decrypted under the reference solution's fixed context.
    pub legacy: bool,
    pub audit_seq: i64,
    pub fingerprint: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    /// Refused before any key was used (not ciphertext, wrong contact or field).
    #[error("decrypt refused: {kind}")]
    Denied { kind: &'static str },
    /// The decryption itself failed (wrong key, tampered, key service).
    #[error("decrypt failed: {kind}")]
    Failed { kind: &'static str },
    /// The budget was spent by reveals elsewhere (another replica) while
    /// this one was under way: nothing is revealed.
    #[error("decrypt budget used: {used} of {limit} in the last hour")]
    OverBudget { used: i64, limit: u32 },
    /// The audit row could not be committed: nothing is revealed.
    #[error("the audit log could not be written")]
    Audit(#[from] AuditError),
}

#[derive(Clone)]
pub struct Revealer {
    decryptor: Decryptor,
    audit: AuditLog,
    legacy: Option<ExpectedContext>,
}

impl Revealer {
    pub fn new(decryptor: Decryptor, audit: AuditLog, legacy: Option<ExpectedContext>) -> Self {
        Self {
            decryptor,
            audit,
            legacy,
        }
    }

    fn event(req: &RevealRequest, action: Action, outcome: &str, detail: String) -> AuditEvent {
        AuditEvent::new(action, &req.actor, &req.role, outcome, &req.meta)
            .contact(req.contact_id.as_str(), req.field.as_str())
            .reason(req.reason.as_str())
            .case_ref(&req.case_ref)
            .initial_contact(req.initial_contact_id.as_ref().map_or("", |c| c.as_str()))
            .detail(match (req.detail.is_empty(), detail.is_empty()) {
                (true, _) => detail,
                (_, true) => req.detail.clone(),
                _ => format!("{detail}; {}", req.detail),
            })
    }

    async fn record(
        &self,
        req: &RevealRequest,
        action: Action,
        outcome: &str,
        detail: String,
    ) -> Result<i64, AuditError> {
        let event = Self::event(req, action, outcome, detail);
        Ok(self.audit.append(event).await?.seq)
    }

    /// Commits the `decrypt` row, within the budget if there is one.
    async fn record_reveal(&self, req: &RevealRequest, detail: String) -> Result<i64, RevealError> {
        let event = Self::event(req, Action::Decrypt, "ok", detail);
        let Some(cap) = req.budget else {
            return Ok(self.audit.append(event).await?.seq);
        };
        match self
            .audit
            .append_within_budget(event, cap.limit, cap.since_us)
            .await?
        {
            Ok(row) => Ok(row.seq),
            Err(used) => {
                self.record(
                    req,
                    Action::DecryptDenied,
                    "budget_exceeded",
                    format!("{used} of {} per hour used", cap.limit),
                )
                .await?;
                Err(RevealError::OverBudget {
                    used,
                    limit: cap.limit,
                })
            }
        }
    }

    pub async fn reveal(&self, req: RevealRequest) -> Result<Revealed, RevealError> {
        let ct = match Ciphertext::from_base64(req.stored_value.trim()) {
            Ok(ct) => ct,
            Err(e) => {
                let kind = CryptoError::from(e).kind();
                self.record(&req, Action::DecryptFailed, kind, String::new())
                    .await?;
                return Err(RevealError::Failed { kind });
            }
        };
        let fingerprint = ct.fingerprint();
        let context = &ct.header().encryption_context;
        let mut candidates = vec![(
            FieldContext::new(req.contact_id.clone(), req.field.clone()).to_expected(),
            false,
        )];
        if let Some(initial) = &req.initial_contact_id {
            candidates.push((
                FieldContext::new(initial.clone(), req.field.clone()).to_expected(),
                false,
            ));
        }
        if let Some(legacy) = &self.legacy {
            candidates.push((legacy.clone(), true));
        }
        let Some((expected, legacy)) = candidates.into_iter().find(|(e, _)| e.matches(context))
        else {
            self.record(
                &req,
                Action::DecryptDenied,
                "context_mismatch",
                format!("ciphertext {fingerprint}"),
            )
            .await?;
            return Err(RevealError::Denied {
                kind: "context_mismatch",
            });
        };
        let decrypted = match self.decryptor.decrypt(ct, expected).await {
            Ok(d) => d,
            Err(e) => {
                let kind = e.kind();
                tracing::warn!(request_id = req.meta.request_id.as_str(), error_kind = kind, error = %e, "decrypt failed");
                self.record(
                    &req,
                    Action::DecryptFailed,
                    kind,
                    format!("ciphertext {fingerprint}"),
                )
                .await?;
                return Err(RevealError::Failed { kind });
            }
        };
        let detail = format!(
            "ciphertext {fingerprint}, suite 0x{:04X}{}",
            decrypted.suite_id,
            if legacy { ", legacy context" } else { "" }
        );
        // The row is committed before the value leaves this function; if the
        // commit fails, `decrypted` is dropped (and wiped) here.
        let audit_seq = self.record_reveal(&req, detail).await?;
        Ok(Revealed {
            plaintext: decrypted.plaintext,
            legacy,
            audit_seq,
            fingerprint,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_required_bounded_and_plain() {
        assert_eq!(Reason::parse("  "), Err(ReasonError::Empty));
        assert_eq!(Reason::parse(&"x".repeat(501)), Err(ReasonError::TooLong));
        assert_eq!(
            Reason::parse(" chargeback\ncase 7 ").unwrap().as_str(),
            "chargeback case 7"
        );
    }

    #[test]
    fn a_reason_of_only_invisible_characters_is_refused() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{200B}\u{FEFF}\u{2060}",
            "\u{202E}\u{2066}\u{200E}",
            " \u{2028}\u{2029} ",
            "\u{3000}\t",
        ] {
            assert_eq!(
                Reason::parse(invisible),
                Err(ReasonError::Empty),
                "{invisible:?}"
            );
        }
        for no_text in ["...", "\u{200C}\u{200D}", "-- !!"] {
            assert_eq!(
                Reason::parse(no_text),
                Err(ReasonError::NothingVisible),
                "{no_text:?}"
            );
        }
    }

    #[test]
    fn separators_and_bidi_controls_are_removed_from_reasons() {
        let r =
            Reason::parse("case 7\u{2028}approved: yes\u{2029}\u{202E}kcabegrahc\u{202C}\u{85}ok")
                .unwrap();
        assert_eq!(r.as_str(), "case 7 approved: yes kcabegrahc ok");
        assert!(!r.as_str().chars().any(crate::text::is_unsafe_in_a_line));
        assert_eq!(Reason::parse("\u{200B}7").unwrap().as_str(), "7");
        assert_eq!(Reason::parse("Prüfung №5").unwrap().as_str(), "Prüfung №5");
    }
}
