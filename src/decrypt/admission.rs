//! What a reveal is asked with, and every way it can be refused.
//!
//! Every entry point (the web form, an approved dual-control request,
//! `callvault decrypt`) builds one [`Ask`] and hands it to
//! [`Reveals::reveal`](super::service::Reveals::reveal). A refusal is a
//! [`RevealRefusal`] value; the service records it once, and only a
//! recorded refusal ([`Recorded`]) can be answered, on the web
//! (`From<RevealError> for AppError`) or on the command line.

use std::borrow::Cow;

use lambda_encrypt::context::ContactId;

use super::approvals::ApprovalError;
use super::case::CaseError;
use super::keypad::Capture;
use super::ReasonError;
use crate::audit::{Action, AuditEvent, Recorded, Refusal, RequestMeta};
use crate::auth::principal::Principal;
use crate::auth::step_up::StepUp;
use crate::sources::SourceError;

/// Where a reveal was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// The reveal form on a contact's page.
    Web,
    /// The requester's one reveal of a request another supervisor approved.
    Approval {
        request_id: String,
        approved_by: String,
    },
    /// `callvault decrypt` (its rows carry the client address `cli`).
    Cli,
}

/// The asker's proof of a fresh second factor, as their channel has it.
pub enum SecondFactor {
    /// The web session's last passed step-up.
    Session(Option<StepUp>),
    /// A code typed at the terminal, read only when one is needed.
    Terminal(Box<dyn FnOnce() -> Option<String> + Send>),
}

/// One reveal as asked for. The texts are kept as the audit row records
/// them: a reason or case reference only once it is valid, so a refused
/// one (a card number typed into it, say) never reaches the log.
pub struct Ask {
    /// The account asking; `None` when no enabled account has that name
    /// (the command line names its operator).
    pub principal: Option<Principal>,
    /// The name recorded as the actor.
    pub actor: String,
    /// The role recorded: the account's own, or `none`.
    pub role: String,
    pub channel: Channel,
    pub contact_id: ContactId,
    /// The contact's initial contact id, once read, when it differs
    /// (transferred legs): on every row, so auditors find it by either id.
    pub initial: Option<ContactId>,
    /// The field as asked for (one line, cut short).
    pub field_text: String,
    pub reason_raw: String,
    pub case_raw: String,
    /// The reason and case reference once they are valid.
    pub reason_text: String,
    pub case_text: String,
    /// When the contact started, once read from the directory.
    pub contact_started_us: Option<i64>,
    /// The stored value, when the asker brings it (`--ciphertext`);
    /// otherwise it is read from the contact directory.
    pub given_value: Option<String>,
    pub meta: RequestMeta,
}

/// Who asks: the name and role the rows record, and their account when it
/// is an enabled one.
pub struct Asker {
    pub actor: String,
    pub role: String,
    pub principal: Option<Principal>,
}

/// Longest field name kept in a row.
const MAX_FIELD_TEXT: usize = 64;
/// What a row records for a field name that holds a card number (not a
/// field name, so refused as `bad_field`).
const CARD_FIELD_TEXT: &str = "(card number)";

impl Ask {
    /// An ask by a signed-in principal.
    pub fn by(
        principal: &Principal,
        channel: Channel,
        contact_id: ContactId,
        field: &str,
        reason: &str,
        case_ref: &str,
        meta: RequestMeta,
    ) -> Self {
        let who = Asker {
            actor: principal.username.clone(),
            role: principal.role.as_str().to_owned(),
            principal: Some(principal.clone()),
        };
        Self::new(who, channel, contact_id, field, reason, case_ref, meta)
    }

    /// An ask by `who`, who may have no account that can reveal.
    pub fn new(
        who: Asker,
        channel: Channel,
        contact_id: ContactId,
        field: &str,
        reason: &str,
        case_ref: &str,
        meta: RequestMeta,
    ) -> Self {
        Self {
            actor: who.actor,
            role: who.role,
            principal: who.principal,
            channel,
            contact_id,
            initial: None,
            // Rows record the field as asked: never a card number typed there.
            field_text: if crate::guard::holds_card_number(field) {
                CARD_FIELD_TEXT.to_owned()
            } else {
                crate::text::one_line(field)
                    .chars()
                    .take(MAX_FIELD_TEXT)
                    .collect()
            },
            reason_raw: reason.to_owned(),
            case_raw: case_ref.to_owned(),
            reason_text: String::new(),
            case_text: String::new(),
            contact_started_us: None,
            given_value: None,
            meta,
        }
    }

    /// The one builder of every row about this reveal: refusals, the
    /// interruption for a step-up, the request under dual control and the
    /// reveal itself.
    pub fn event(&self, action: Action, outcome: &str, detail: &str) -> AuditEvent {
        let channel = match &self.channel {
            Channel::Approval {
                request_id,
                approved_by,
            } => format!("request {request_id} approved by {approved_by}"),
            Channel::Web | Channel::Cli => String::new(),
        };
        AuditEvent::new(action, &self.actor, &self.role, outcome, &self.meta)
            .contact(self.contact_id.as_str(), &self.field_text)
            .reason(&self.reason_text)
            .case_ref(&self.case_text)
            .initial_contact(self.initial.as_ref().map_or("", |c| c.as_str()))
            .detail(join(detail, &channel))
    }
}

/// Joins two details with "; ", leaving out empty ones.
pub(super) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}; {b}"),
    }
}

/// Why a reveal did not happen. Each is recorded under its own outcome.
#[derive(Debug, thiserror::Error)]
pub enum RevealRefusal {
    /// Separation of duties: only enabled supervisors reveal.
    #[error("only supervisors may reveal values")]
    Role,
    #[error("that is not a field name")]
    BadField,
    #[error("{0}")]
    Reason(ReasonError),
    #[error("{0}")]
    CaseRef(CaseError),
    #[error("this console has no keyring configured, so nothing can be decrypted")]
    NotConfigured,
    /// Dual control is on, and this channel has no second person.
    #[error("dual control is on: request the reveal in the console, where another supervisor approves it")]
    ApprovalRequired,
    #[error("revealing a value needs an authenticator (TOTP is mandatory for supervisors): enrol an authenticator first, on the Authenticator page (/account/totp)")]
    TotpNotEnrolled,
    /// Not a refusal: the reveal waits for the asker to confirm it is them.
    #[error("a fresh second factor is required")]
    StepUpRequired,
    #[error("the authenticator code was not accepted")]
    StepUpFailed(&'static str),
    #[error("decrypt budget used: {used} of {limit} in the last hour")]
    BudgetExceeded { used: i64, limit: u32 },
    /// The contact directory could not answer.
    #[error("the contact could not be read: {0}")]
    Source(SourceError),
    #[error("the contact has no such field")]
    NoSuchField,
    /// The approved request could not be used (expired, used, ...).
    #[error("the request cannot be used: {0}")]
    Approval(ApprovalError),
    /// The ciphertext is not bound to this contact and field.
    #[error("the ciphertext is not bound to this contact and field")]
    ContextMismatch { fingerprint: String },
    /// The contact started longer ago than the retention period
    /// (`CALLVAULT_RETENTION_DAYS`): its values are not revealed any more.
    #[error("this value is past its retention period (since {since}) and is not revealed")]
    RetentionExpired { since: String },
    /// A retention period is set, and neither the contact's start nor the
    /// value's period key says how old the value is.
    #[error("the value's age is unknown (no contact start time, no period key), so retention cannot be checked")]
    RetentionUnknown,
    /// The value's period key is retired (pending deletion or deleted).
    #[error("the key of this value's period ({period}) is retired: {state}")]
    KeyRetired { period: String, state: String },
    /// Capture paths do not cross: a Connect keypad message under a Lex
    /// field, or a value that is not Connect's under a keypad field.
    #[error("{}", wrong_path_message(*field_path))]
    WrongCapturePath {
        field_path: Capture,
        fingerprint: String,
    },
    /// A keypad message wrapped to a Connect key this console does not hold.
    #[error("this Amazon Connect message needs Connect key id '{key_id}', which is not in CALLVAULT_CONNECT_INPUT_KEYS")]
    UnknownConnectKey { key_id: String },
    /// A keypad message given on the command line that is not the value
    /// the contact holds (or no contact source to tell): it is bound to
    /// nothing, so only the contact's own value is revealed as its.
    #[error("a keypad message names no contact: the command line reveals one only as the value the contact holds in Connect (set CALLVAULT_CONNECT_INSTANCE_ID, and give that value or leave out --ciphertext)")]
    GivenNotStored,
    /// A keypad message already revealed under another contact: Connect's
    /// messages name no contact, so a copy is spotted by its message id.
    #[error("this keypad message was already revealed under contact {first_contact}: a copied ciphertext is not revealed")]
    CopiedMessage { tag: String, first_contact: String },
    /// Not ciphertext, a wrong key, tampering, the key service.
    #[error("the value could not be decrypted ({kind})")]
    Failed {
        kind: &'static str,
        fingerprint: String,
    },
}

impl Refusal for RevealRefusal {
    fn action(&self) -> Action {
        match self {
            Self::StepUpRequired => Action::StepUpRequired,
            Self::StepUpFailed(_) => Action::StepUpFailed,
            Self::Failed { .. } => Action::DecryptFailed,
            _ => Action::DecryptDenied,
        }
    }

    fn outcome(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::Role => "role",
            Self::BadField => "bad_field",
            Self::Reason(_) => "no_reason",
            Self::CaseRef(e) => e.kind(),
            Self::NotConfigured => "not_configured",
            Self::ApprovalRequired => "approval_required",
            Self::TotpNotEnrolled => "totp_not_enrolled",
            Self::StepUpRequired => "pending",
            Self::StepUpFailed(_) => "refused",
            Self::BudgetExceeded { .. } => "budget_exceeded",
            Self::Source(e) => return Cow::Owned(format!("error:{}", e.kind())),
            Self::NoSuchField => "no_such_field",
            Self::Approval(e) => return Cow::Owned(format!("approval_{}", e.kind())),
            Self::ContextMismatch { .. } => "context_mismatch",
            Self::RetentionExpired { .. } => "retention_expired",
            Self::RetentionUnknown => "retention_unknown",
            Self::KeyRetired { .. } => "key_retired",
            Self::WrongCapturePath { .. } => "wrong_capture_path",
            Self::UnknownConnectKey { .. } => "unknown_connect_key",
            Self::CopiedMessage { .. } => "copied_message",
            Self::GivenNotStored => "not_stored_value",
            Self::Failed { kind, .. } => kind,
        })
    }

    fn detail(&self) -> String {
        match self {
            Self::BudgetExceeded { used, limit } => format!("{used} of {limit} per hour used"),
            Self::StepUpFailed(kind) => (*kind).to_owned(),
            Self::RetentionExpired { since } => format!("past retention since {since}"),
            Self::KeyRetired { period, state } => format!("period {period}, key {state}"),
            Self::WrongCapturePath {
                field_path,
                fingerprint,
            } => format!(
                "{}, ciphertext {fingerprint}",
                match field_path {
                    Capture::Lex => "a Connect keypad message under a Lex field",
                    Capture::Keypad => "not a Connect message, under a keypad field",
                }
            ),
            Self::UnknownConnectKey { key_id } => format!("keypad, Connect key {key_id}"),
            Self::CopiedMessage { tag, first_contact } => {
                format!("keypad message {tag}, first revealed under contact {first_contact}")
            }
            Self::ContextMismatch { fingerprint } | Self::Failed { fingerprint, .. }
                if !fingerprint.is_empty() =>
            {
                format!("ciphertext {fingerprint}")
            }
            _ => String::new(),
        }
    }
}

impl RevealRefusal {
    /// Every outcome a reveal can be refused with (one example each), for
    /// tests that check each is recorded and answered.
    pub fn examples() -> Vec<Self> {
        vec![
            Self::Role,
            Self::BadField,
            Self::Reason(ReasonError::Empty),
            Self::CaseRef(CaseError::Missing),
            Self::CaseRef(CaseError::Pattern),
            Self::NotConfigured,
            Self::ApprovalRequired,
            Self::TotpNotEnrolled,
            Self::StepUpRequired,
            Self::StepUpFailed("wrong_code"),
            Self::BudgetExceeded { used: 1, limit: 1 },
            Self::Source(SourceError::Throttled),
            Self::NoSuchField,
            Self::Approval(ApprovalError::Expired),
            Self::ContextMismatch {
                fingerprint: String::new(),
            },
            Self::RetentionExpired {
                since: "2026-01-01".into(),
            },
            Self::RetentionUnknown,
            Self::KeyRetired {
                period: "2025-01".into(),
                state: "deleted".into(),
            },
            Self::WrongCapturePath {
                field_path: Capture::Lex,
                fingerprint: String::new(),
            },
            Self::UnknownConnectKey {
                key_id: "0badc0de".into(),
            },
            Self::CopiedMessage {
                tag: "00".repeat(16),
                first_contact: "c1".into(),
            },
            Self::GivenNotStored,
            Self::Failed {
                kind: "bad_base64",
                fingerprint: String::new(),
            },
        ]
    }

    /// What the asker is told, the same in every channel. Never repeats
    /// what was typed.
    pub fn message(&self) -> String {
        let recorded = "Nothing was revealed; the attempt was recorded.";
        match self {
            Self::StepUpRequired => "Confirm it is you (a fresh second factor) to reveal a value.".into(),
            Self::BudgetExceeded { used, limit } => format!(
                "Your decrypt budget is used ({used} of {limit} per hour). {recorded} Auditors have been alerted."
            ),
            Self::CopiedMessage { .. } => format!("{}. {recorded} Auditors have been alerted.", capitalised(&self.to_string())),
            Self::Failed { kind: "no_input", .. } => format!("The caller keyed nothing here (Connect stored \"Timeout\"), so there is no value to reveal. {recorded}"),
            Self::ContextMismatch { .. } => "This ciphertext is not bound to this contact and field (context_mismatch). Nothing was decrypted; the attempt was recorded.".into(),
            other => format!("{}. {recorded}", capitalised(&other.to_string())),
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut m = text.to_owned();
    if let Some(first) = m.get(0..1) {
        let upper = first.to_uppercase();
        m.replace_range(0..1, &upper);
    }
    m
}

fn wrong_path_message(field_path: Capture) -> &'static str {
    match field_path {
        Capture::Lex => "this is an Amazon Connect keypad message, but the field is captured by callvault's Lex bot: a message bound to no contact is not revealed as this contact's value",
        Capture::Keypad => "this field holds Amazon Connect keypad input, but its value is not an Amazon Connect customer-input message",
    }
}

/// Why a reveal did not happen, as the service hands it back: a recorded
/// refusal, or a store that failed (nothing is revealed either way).
#[derive(Debug, thiserror::Error)]
pub enum RevealError {
    #[error("reveal refused: {}", .0.refusal())]
    Refused(Recorded<RevealRefusal>),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Totp(#[from] crate::auth::totp::TotpError),
    #[error("the request store failed")]
    Requests(#[source] sqlx::Error),
}

impl RevealError {
    /// The refusal, when the reveal was refused (not failed).
    pub fn refusal(&self) -> Option<&RevealRefusal> {
        match self {
            Self::Refused(r) => Some(r.refusal()),
            _ => None,
        }
    }
}
