//! The stored value on its capture path, checked before any key is used:
//! a Lex field's message bound to its contact and field, within retention,
//! its period key not retired; a keypad field's Connect message for a key
//! this console holds (`keypad`).

use lambda_encrypt::context::FieldContext;
use lambda_encrypt::context::FieldName;
use lambda_encrypt::crypto::CryptoError;
use lambda_encrypt::envelope::Ciphertext;

use super::admission::{Ask, RevealRefusal};
use super::keypad::{self, Capture, KeypadPath};
use super::service::{refuse, Reveals, Stop};

/// What the admission learnt of a stored value on its capture path.
pub(super) struct Admitted {
    /// The contact its context is bound to (a keypad value: the asked one).
    pub bound_to: String,
    pub capture: Capture,
    pub legacy: bool,
    /// The row's detail before and after the grant id.
    pub head: String,
    pub tail: String,
    /// A keypad message's keyed message-id hash, claimed at the grant.
    pub tag: Option<String>,
}

impl Reveals {
    /// A Lex field: callvault's own message, bound to this contact (or its
    /// initial contact) and field, within retention and its key not retired.
    pub(super) async fn admit_lex(
        &self,
        ask: &Ask,
        field: &FieldName,
        stored: &str,
        now: i64,
    ) -> Result<Admitted, Stop> {
        let ct = match Ciphertext::from_base64(stored.trim()) {
            Ok(ct) => ct,
            Err(e) => {
                return refuse(RevealRefusal::Failed {
                    kind: CryptoError::from(e).kind(),
                    fingerprint: String::new(),
                })
            }
        };
        if let Some(refusal) = keypad::refuse_on_lex_field(&ct) {
            return refuse(refusal);
        }
        let fingerprint = ct.fingerprint();
        let context = &ct.header().encryption_context;
        let bound_to = std::iter::once(&ask.contact_id).chain(ask.initial.as_ref());
        let mut candidates: Vec<_> = bound_to
            .map(|c| {
                (
                    FieldContext::new(c.clone(), field.clone()).to_expected(),
                    c.as_str(),
                    false,
                )
            })
            .collect();
        if let Some(legacy) = &self.legacy {
            candidates.push((legacy.clone(), ask.contact_id.as_str(), true));
        }
        let Some((_, bound_to, legacy)) =
            candidates.into_iter().find(|(e, _, _)| e.matches(context))
        else {
            return refuse(RevealRefusal::ContextMismatch { fingerprint });
        };
        let period = self.check_retention(ask, &ct, now).await?;
        Ok(Admitted {
            bound_to: bound_to.to_owned(),
            capture: Capture::Lex,
            legacy,
            head: format!(
                "ciphertext {fingerprint}, suite 0x{:04X}",
                ct.header().suite_id
            ),
            tail: format!(
                "{}{}",
                period.map_or_else(String::new, |p| format!(", period {p}")),
                if legacy { ", legacy context" } else { "" }
            ),
            tag: None,
        })
    }

    /// A keypad field: Connect's message for a key this console holds,
    /// within retention (by the contact's start: its message names no
    /// period). Bound to nothing; its message id is claimed at the grant.
    pub(super) fn admit_keypad(
        &self,
        ask: &Ask,
        path: &KeypadPath,
        stored: &str,
        now: i64,
    ) -> Result<Admitted, Stop> {
        let (ct, message) = match keypad::admit(path, &self.audit, stored)? {
            Ok(admitted) => admitted,
            Err(refusal) => return refuse(refusal),
        };
        if let Some(days) = self.retention {
            let Some(started) = ask.contact_started_us else {
                return refuse(RevealRefusal::RetentionUnknown);
            };
            if let Some(since) = crate::keys::past_retention(started, now, days) {
                return refuse(RevealRefusal::RetentionExpired {
                    since: crate::clock::format_us(since),
                });
            }
        }
        Ok(Admitted {
            bound_to: ask.contact_id.to_string(),
            capture: Capture::Keypad,
            legacy: false,
            head: format!(
                "keypad (Connect-encrypted), Connect key {}, message {}, ciphertext {}, suite 0x{:04X}",
                message.key_id,
                message.tag,
                ct.fingerprint(),
                ct.header().suite_id
            ),
            tail: String::new(),
            tag: Some(message.tag),
        })
    }

    /// Retention: a value whose contact started longer ago than the
    /// retention period, or whose period key is retired, is not revealed.
    /// The console knows a key's state from its own listing (a key pending
    /// deletion may still decrypt on some stand-ins; here it never does).
    /// The value's period, when its keyring has periods.
    pub(super) async fn check_retention(
        &self,
        ask: &Ask,
        ct: &Ciphertext,
        now: i64,
    ) -> Result<Option<String>, Stop> {
        let key = match &self.decryptor {
            Some(d) => d.value_key(ct).await.map_err(|e| {
                Stop::Refused(RevealRefusal::Failed {
                    kind: e.kind(),
                    fingerprint: ct.fingerprint(),
                })
            })?,
            None => None,
        };
        if let Some(key) = &key {
            if key.state.retired() {
                return refuse(RevealRefusal::KeyRetired {
                    period: key.period.to_string(),
                    state: key.state.label(),
                });
            }
        }
        if let Some(days) = self.retention {
            let since = match (ask.contact_started_us, &key) {
                (Some(started), _) => crate::keys::past_retention(started, now, days),
                (None, Some(key)) => crate::keys::period_past_retention(key.period, now, days),
                (None, None) => return refuse(RevealRefusal::RetentionUnknown),
            };
            if let Some(since) = since {
                return refuse(RevealRefusal::RetentionExpired {
                    since: crate::clock::format_us(since),
                });
            }
        }
        Ok(key.map(|k| k.period.to_string()))
    }
}
