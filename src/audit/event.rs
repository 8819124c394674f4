//! What one audit row holds, and the bytes its hash covers.

use super::RequestMeta;

pub(super) const CANONICAL_TAG: &[u8] = b"callvault-audit-v1";

/// What happened. Stored as its `as_str()` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    ContactView,
    LogView,
    Decrypt,
    DecryptDenied,
    DecryptFailed,
    LeakFound,
    AuditView,
    AuditExport,
    AuditVerify,
    UserChange,
    AccessDenied,
    CsrfRejected,
    TotpEnrol,
    TotpReset,
    StepUp,
    StepUpFailed,
    DecryptRequest,
    DecryptApproval,
    SettingChange,
    /// A reveal waiting for the person to confirm it is them (a step-up):
    /// an interruption, not a refusal.
    StepUpRequired,
    /// `keys roll`: period keys made, `current` moved (or nothing to do).
    KeyRoll,
    /// `keys retire`: period keys scheduled for deletion or destroyed.
    KeyRetire,
    /// `keys cancel`: a pending deletion cancelled.
    KeyCancel,
    /// A shown value's page kept open one more showing (no value in it).
    RevealExtend,
}

impl Action {
    pub const ALL: [Action; 27] = [
        Self::Login,
        Self::LoginFailed,
        Self::Logout,
        Self::ContactView,
        Self::LogView,
        Self::Decrypt,
        Self::DecryptDenied,
        Self::DecryptFailed,
        Self::LeakFound,
        Self::AuditView,
        Self::AuditExport,
        Self::AuditVerify,
        Self::UserChange,
        Self::AccessDenied,
        Self::CsrfRejected,
        Self::TotpEnrol,
        Self::TotpReset,
        Self::StepUp,
        Self::StepUpFailed,
        Self::DecryptRequest,
        Self::DecryptApproval,
        Self::SettingChange,
        Self::StepUpRequired,
        Self::KeyRoll,
        Self::KeyRetire,
        Self::KeyCancel,
        Self::RevealExtend,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::ContactView => "contact_view",
            Self::LogView => "log_view",
            Self::Decrypt => "decrypt",
            Self::DecryptDenied => "decrypt_denied",
            Self::DecryptFailed => "decrypt_failed",
            Self::LeakFound => "leak_found",
            Self::AuditView => "audit_view",
            Self::AuditExport => "audit_export",
            Self::AuditVerify => "audit_verify",
            Self::UserChange => "user_change",
            Self::AccessDenied => "access_denied",
            Self::CsrfRejected => "csrf_rejected",
            Self::TotpEnrol => "totp_enrol",
            Self::TotpReset => "totp_reset",
            Self::StepUp => "step_up",
            Self::StepUpFailed => "step_up_failed",
            Self::DecryptRequest => "decrypt_request",
            Self::DecryptApproval => "decrypt_approval",
            Self::SettingChange => "setting_change",
            Self::StepUpRequired => "step_up_required",
            Self::KeyRoll => "key_roll",
            Self::KeyRetire => "key_retire",
            Self::KeyCancel => "key_cancel",
            Self::RevealExtend => "reveal_extend",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One thing to record. Never holds plaintext of an encrypted field.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub role: String,
    pub action: Action,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub outcome: String,
    pub detail: String,
    /// The case or ticket reference given with a reveal ('' if none).
    pub case_ref: String,
    /// The contact's initial contact id, on reveals of a transferred leg.
    pub initial_contact_id: String,
    pub meta: RequestMeta,
}

impl AuditEvent {
    pub fn new(action: Action, actor: &str, role: &str, outcome: &str, meta: &RequestMeta) -> Self {
        Self {
            actor: actor.to_owned(),
            role: role.to_owned(),
            action,
            contact_id: String::new(),
            field: String::new(),
            reason: String::new(),
            outcome: outcome.to_owned(),
            detail: String::new(),
            case_ref: String::new(),
            initial_contact_id: String::new(),
            meta: meta.clone(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn contact(mut self, contact_id: &str, field: &str) -> Self {
        self.contact_id = contact_id.to_owned();
        self.field = field.to_owned();
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_owned();
        self
    }

    /// The case or ticket reference the supervisor gave (stored cleaned,
    /// at most [`MAX_CASE_REF_CHARS`] characters).
    pub fn case_ref(mut self, case_ref: &str) -> Self {
        self.case_ref = case_ref.to_owned();
        self
    }

    /// The contact's initial contact id (stored cleaned, at most
    /// [`MAX_INITIAL_CONTACT_CHARS`] characters): a reveal on a transferred
    /// leg is then found by the id the call started with.
    pub fn initial_contact(mut self, initial_contact_id: &str) -> Self {
        self.initial_contact_id = initial_contact_id.to_owned();
        self
    }
}

/// Longest case reference stored.
pub const MAX_CASE_REF_CHARS: usize = 64;
/// Longest initial contact id stored.
pub const MAX_INITIAL_CONTACT_CHARS: usize = 128;

/// A committed row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub ts_us: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub outcome: String,
    pub client_addr: String,
    pub user_agent: String,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
    /// Added after the first chain layout; '' on older rows (and then outside the hash's
    /// canonical bytes, so older rows verify as they always did).
    #[serde(default)]
    pub case_ref: String,
    #[serde(default)]
    pub initial_contact_id: String,
}

pub(crate) const ROW_COLUMNS: &str =
    "seq, ts_us, actor, role, action, contact_id, field, reason, outcome, \
     client_addr, user_agent, request_id, detail, prev_hash, hash, \
     case_ref, initial_contact_id";

impl AuditRow {
    /// The bytes the HMAC covers: every column but the hashes, length-prefixed
    /// (the issue-16 columns only when either is set).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        super::verify::canonical_into(&mut out, &self.as_stored());
        out
    }
}

/// Caps a text column, dropping control characters (they have no place in a
/// log line and can forge line breaks in exports).
pub(super) fn clean(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

/// What a person typed into a row's reason or case reference, as stored:
/// nothing at all if it holds a card number. Auditors read these columns
/// (pages, exports, the shipped copy) and never see card data; the callers
/// refuse such input, and this keeps any path that records a refusal with
/// what was typed from storing one.
pub(crate) fn typed_text(text: String) -> String {
    if crate::guard::contains_card_number(&text) {
        String::new()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::MAX_REASON_CHARS;

    #[test]
    fn a_typed_reason_or_reference_holding_a_card_number_is_not_stored() {
        assert_eq!(typed_text("refund 4111 1111 1111 1111".into()), "");
        assert_eq!(typed_text("CB-4111_1111_1111_1111".into()), "");
        assert_eq!(
            typed_text("chargeback 2026-0042".into()),
            "chargeback 2026-0042"
        );
    }

    #[test]
    fn control_characters_and_overlong_text_are_cleaned() {
        assert_eq!(clean("a\nb\r\u{0}c", 10), "abc");
        assert_eq!(
            clean(&"x".repeat(600), MAX_REASON_CHARS).len(),
            MAX_REASON_CHARS
        );
    }

    #[test]
    fn canonical_bytes_separate_fields_unambiguously() {
        let mut a = AuditRow {
            seq: 1,
            ts_us: 2,
            actor: "ab".into(),
            role: "c".into(),
            action: "login".into(),
            contact_id: String::new(),
            field: String::new(),
            reason: String::new(),
            outcome: "ok".into(),
            client_addr: String::new(),
            user_agent: String::new(),
            request_id: String::new(),
            detail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            case_ref: String::new(),
            initial_contact_id: String::new(),
        };
        let before = a.canonical_bytes();
        a.actor = "a".into();
        a.role = "bc".into();
        assert_ne!(before, a.canonical_bytes());
        // The issue-16 columns: absent when both are empty, and never
        // interchangeable with each other.
        let v1 = a.canonical_bytes();
        a.case_ref = "x".into();
        let with_case = a.canonical_bytes();
        assert!(with_case.starts_with(&v1) && with_case.len() == v1.len() + 9);
        a.case_ref = String::new();
        a.initial_contact_id = "x".into();
        assert_ne!(with_case, a.canonical_bytes());
        assert!(a.canonical_bytes().starts_with(&v1));
    }

    const V1_GOLDEN: &str = "7b7e323778d890056a38c552bed1efcdd216f3988a7983c29c8c48f07e024803";

    /// A row as the first chain layout hashed it: the expected MAC
    /// was computed outside this code base from the v1 layout (tag, seq and
    /// ts_us as big-endian i64, then each text as a big-endian u32 length
    /// and its bytes), so a change to the canonical bytes of rows without a
    /// case reference or initial contact id fails here.
    #[test]
    fn rows_without_the_new_columns_hash_exactly_as_before() {
        use hmac::{Hmac, Mac};
        let row = AuditRow {
            seq: 42,
            ts_us: 1_764_763_200_000_000,
            actor: "sam".into(),
            role: "supervisor".into(),
            action: "decrypt".into(),
            contact_id: "c-1".into(),
            field: "creditcard".into(),
            reason: "chargeback 12".into(),
            outcome: "ok".into(),
            client_addr: "127.0.0.1".into(),
            user_agent: "agent".into(),
            request_id: "r-1".into(),
            detail: String::new(),
            prev_hash: "0".repeat(64),
            hash: String::new(),
            case_ref: String::new(),
            initial_contact_id: String::new(),
        };
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"k").unwrap();
        mac.update(row.prev_hash.as_bytes());
        mac.update(&row.canonical_bytes());
        assert_eq!(hex::encode(mac.finalize().into_bytes()), V1_GOLDEN);
    }

    #[test]
    fn actions_round_trip_by_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("drop table"), None);
    }
}
