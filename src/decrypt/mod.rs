//! The audited reveal (see docs/glossary in docs/architecture.md: a
//! *reveal* is a decrypt a person asked for, admitted and recorded). Every
//! channel goes through one admission (`service::Reveals::reveal`): the
//! reveal form (`reveal_form`), an approved request (`approvals_page`) and
//! `callvault decrypt`. If the audit row cannot commit, the plaintext is
//! dropped and the asker gets an error.

pub mod admission;
mod answer;
pub mod approvals;
mod approvals_page;
pub mod case;
pub mod grants;
pub mod keypad;
mod open;
pub mod policy;
mod reveal_extend;
mod reveal_form;
mod reveal_page;
pub mod service;
mod stored;

pub use admission::{Ask, Channel, RevealError, RevealRefusal, SecondFactor};
pub use keypad::{Capture, KeypadPath};
pub use open::OpenError;
pub use reveal_form::{contact_id, form_view, FixableForm, FormPage, RevealFormView};
pub use reveal_page::grouped;
pub use service::{Outcome, Reveals};

use std::sync::{Arc, OnceLock};

use lambda_encrypt::context::ExpectedContext;
use lambda_encrypt::crypto::{CryptoError, Decrypted, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::plaintext::Plaintext;

use crate::auth::Role;
use crate::web::{Access, Routes};

/// What the reveal and dual-control pages use; registered once as app data.
pub struct RevealState {
    /// The one admission every reveal passes.
    pub reveals: Reveals,
    /// The contact's page, for a reveal form to fix (`startup` fills it in
    /// from the contact pages; without it such a refusal is an error page).
    pub form_page: Option<FormPage>,
    /// Each user's time zone (request times are shown in it).
    pub users: crate::auth::users::Users,
}

pub fn configure(routes: &mut Routes) {
    let supervisor = Role::Supervisor.access();
    routes
        // Everyone signed in reaches the handler: refusals of other roles are
        // recorded as refused decrypts.
        .post(
            "/contacts/{id}/decrypt",
            Access::SignedIn,
            reveal_form::decrypt,
        )
        // Before `/reveals/{id}`, which would take "continue" for an id.
        .get(
            crate::account::CONTINUE_REVEAL,
            supervisor,
            reveal_form::continue_kept,
        )
        .get("/reveals/{id}", supervisor, reveal_page::reveal_page)
        .post("/reveals/{id}/extend", supervisor, reveal_extend::extend)
        .get("/approvals", supervisor, approvals_page::approvals_page)
        .post(
            "/approvals/{id}/approve",
            supervisor,
            approvals_page::approve,
        )
        .post("/approvals/{id}/reject", supervisor, approvals_page::reject)
        .post("/approvals/{id}/reveal", supervisor, approvals_page::reveal);
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

impl ReasonError {
    /// What the person is told beside the reason field: what to do, in
    /// plain words (never what they typed).
    pub fn advice(self) -> String {
        match self {
            Self::Empty => {
                "Say why you need this value, for example the chargeback or ticket you are working on.".into()
            }
            Self::NothingVisible => {
                "Write the reason in words or numbers: this one has nothing a person can read.".into()
            }
            Self::TooLong => format!("Shorten the reason to {MAX_REASON_CHARS} characters or fewer."),
            Self::CardNumber => {
                "Leave card numbers out of the reason (auditors read it); describe the case instead. What you typed was not kept.".into()
            }
        }
    }
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

    /// The period key a stored value names, and its state (no decrypt).
    pub async fn value_key(
        &self,
        ct: &Ciphertext,
    ) -> Result<Option<lambda_encrypt::period::ValueKey>, CryptoError> {
        let crypto = Arc::clone(&self.crypto);
        let ct = ct.clone();
        crypto_runtime()
            .spawn(async move { crypto.value_key(&ct).await })
            .await
            .map_err(|_| CryptoError::Setup("key lookup task failed".into()))?
    }

    /// Reads a period keyring's key listing again (start-up: fail early).
    pub async fn refresh(&self) -> Result<(), CryptoError> {
        let crypto = Arc::clone(&self.crypto);
        crypto_runtime()
            .spawn(async move { crypto.refresh_period_keys().await.map(|_| ()) })
            .await
            .map_err(|_| CryptoError::Setup("key listing task failed".into()))?
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

/// A value revealed through the admission, its row committed.
pub struct Revealed {
    pub plaintext: Plaintext,
    pub contact_id: lambda_encrypt::context::ContactId,
    pub field: String,
    pub case_ref: String,
    /// How it was captured (the Lex bot, or Connect's keypad encryption).
    pub capture: Capture,
    /// The Connect key id that opened a keypad value.
    pub connect_key: Option<String>,
    /// Decrypted under the reference solution's fixed context.
    pub legacy: bool,
    pub audit_seq: i64,
    /// The request whose audit row admitted it (matches KMS's CloudTrail
    /// event by time and encryption context).
    pub request_id: String,
    pub fingerprint: String,
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
