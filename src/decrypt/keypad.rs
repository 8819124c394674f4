//! The keypad path through the one admission: values Amazon Connect's
//! "Store customer input" block encrypted (see `lambda_encrypt::keypad`).
//!
//! Such a message names no contact or field, so the admission checks what
//! it can before any key is used: the field is a keypad field
//! (`CALLVAULT_CONNECT_INPUT_FIELDS`) and the message is Connect's, and the
//! reverse (a Connect message under a Lex field is refused); its key id is
//! one the console holds (`CALLVAULT_CONNECT_INPUT_KEYS`), else the refusal
//! names it. The missing binding is mitigated by the message id: a keyed
//! hash of it is recorded on the reveal's row and claimed for the contact in
//! the same transaction, and a message already revealed under another
//! contact (a copied ciphertext) is refused and raised as an alert.

use std::sync::Arc;

use lambda_encrypt::context::FieldName;
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::keypad::{
    inspect, ConnectKeyId, KeypadDecrypted, KeypadError, KeypadFields, KeypadKeys,
    CONNECT_TIMEOUT_VALUE,
};
use lambda_encrypt::validate::Validator;

use super::admission::RevealRefusal;
use crate::audit::{AuditError, AuditLog};

/// How a value was captured, as a grant and the reveal page know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capture {
    /// callvault's Lex code hook: bound to its contact and field.
    Lex,
    /// Amazon Connect's Store customer input: bound to nothing.
    Keypad,
}

impl Capture {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lex => "lex",
            Self::Keypad => "keypad",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lex" => Some(Self::Lex),
            "keypad" => Some(Self::Keypad),
            _ => None,
        }
    }
}

/// The purpose the message-id hash is keyed for (domain separation from
/// the audit chain's own MACs, which use the same key).
const MESSAGE_TAG_PURPOSE: &str = "keypad-message-id";

/// The keypad fields and the private keys that open them, loaded once at
/// start-up.
pub struct KeypadPath {
    pub fields: KeypadFields,
    pub keys: KeypadKeys,
}

impl KeypadPath {
    /// The validator of `field` when it is a keypad field.
    pub fn validator(&self, field: &FieldName) -> Option<Validator> {
        self.fields.get(field.as_str()).map(|f| f.validator)
    }

    /// The keypad attributes' names.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.attribute.as_str())
    }
}

/// What the admission learnt from a keypad message's header (no key used).
pub(super) struct KeypadAdmitted {
    /// The Connect key id that wraps it (one this console holds).
    pub key_id: ConnectKeyId,
    /// The keyed hash of its ESDK message id.
    pub tag: String,
}

/// A Connect key id as a refusal may show it: the header's text is the
/// sender's, so a card-like number in it is not repeated.
fn shown_key_id(raw: &str) -> String {
    if crate::guard::holds_card_number(raw) {
        "(a key id holding a card-like number)".to_owned()
    } else {
        raw.to_owned()
    }
}

/// Checks a keypad field's stored value before any key is used.
pub(super) fn admit(
    path: &KeypadPath,
    audit: &AuditLog,
    stored: &str,
) -> Result<Result<(Ciphertext, KeypadAdmitted), RevealRefusal>, AuditError> {
    let failed = |e: &KeypadError| RevealRefusal::Failed {
        kind: e.kind(),
        fingerprint: String::new(),
    };
    if stored.trim() == CONNECT_TIMEOUT_VALUE {
        return Ok(Err(failed(&KeypadError::NoInput)));
    }
    let ct = match Ciphertext::from_base64(stored.trim()) {
        Ok(ct) => ct,
        Err(e) => return Ok(Err(failed(&KeypadError::Decode(e)))),
    };
    let message = match inspect(&ct) {
        Ok(m) => m,
        Err(e) if e.kind() == "not_connect_message" => {
            return Ok(Err(RevealRefusal::WrongCapturePath {
                field_path: Capture::Keypad,
                fingerprint: ct.fingerprint(),
            }))
        }
        Err(e) => return Ok(Err(failed(&e))),
    };
    let held =
        ConnectKeyId::parse(&message.key_id).filter(|id| path.keys.key_ids().any(|k| k == id));
    let Some(key_id) = held else {
        return Ok(Err(RevealRefusal::UnknownConnectKey {
            key_id: shown_key_id(&message.key_id),
        }));
    };
    let tag = audit.keyed_tag(MESSAGE_TAG_PURPOSE, message.message_id.as_bytes())?;
    Ok(Ok((ct, KeypadAdmitted { key_id, tag })))
}

/// A Lex field's value that is a Connect keypad message is refused: it is
/// bound to nothing, so it must not pass as this contact's captured value.
pub(super) fn refuse_on_lex_field(ct: &Ciphertext) -> Option<RevealRefusal> {
    inspect(ct).ok().map(|_| RevealRefusal::WrongCapturePath {
        field_path: Capture::Lex,
        fingerprint: ct.fingerprint(),
    })
}

/// Claims message `tag` for contact `owner` (a contact's initial contact,
/// so its transferred legs share it) on the reveal's transaction. Returns
/// the contact it was first revealed under when that is another one.
pub(super) async fn claim(
    conn: &mut sqlx::AnyConnection,
    tag: &str,
    owner: &str,
    audit_seq: i64,
    now_us: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO keypad_messages (tag, contact_id, audit_seq, created_us) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (tag) DO NOTHING",
    )
    .bind(tag)
    .bind(owner)
    .bind(audit_seq)
    .bind(now_us)
    .execute(&mut *conn)
    .await?;
    let first: (String,) = sqlx::query_as("SELECT contact_id FROM keypad_messages WHERE tag = $1")
        .bind(tag)
        .fetch_one(&mut *conn)
        .await?;
    Ok((first.0 != owner).then_some(first.0))
}

/// Gives up the claim a reveal (its row `audit_seq`) made, once its value
/// failed to decrypt: an altered copy that keeps the message id claims
/// nothing for good.
pub(super) async fn release(db: &crate::db::Db, audit_seq: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM keypad_messages WHERE audit_seq = $1")
        .bind(audit_seq)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Decrypts a granted keypad value and validates it with its field's
/// validator, on the crypto runtime.
pub(super) async fn open(
    path: Arc<KeypadPath>,
    ct: Ciphertext,
    validator: Validator,
) -> Result<KeypadDecrypted, KeypadError> {
    super::crypto_runtime()
        .spawn(async move { path.keys.decrypt(&ct, validator).await })
        .await
        .map_err(|_| KeypadError::Setup("keypad decrypt task failed".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_names_round_trip_and_nothing_else_parses() {
        for c in [Capture::Lex, Capture::Keypad] {
            assert_eq!(Capture::parse(c.as_str()), Some(c));
        }
        for bad in ["", "LEX", "legacy", "keypad ", "1"] {
            assert_eq!(Capture::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_card_like_key_id_is_not_repeated() {
        assert_eq!(shown_key_id("4cdb826a-24c9"), "4cdb826a-24c9");
        assert!(!shown_key_id("4111-1111-1111-1111").contains("4111"));
    }
}
