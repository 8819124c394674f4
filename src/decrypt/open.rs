//! Showing an admitted reveal: its grant is used once, then its value is
//! decrypted in memory, on the path it was captured by.

use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::CryptoError;
use lambda_encrypt::envelope::Ciphertext;

use super::admission::{Ask, Channel, RevealRefusal};
use super::grants::{Grant, GrantError};
use super::keypad::{self, Capture};
use super::service::Reveals;
use super::Revealed;
use crate::audit::RequestMeta;

/// Why a granted reveal was not shown.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Grant(#[from] GrantError),
    #[error("decrypt refused: {}", .0.refusal())]
    Refused(crate::audit::Recorded<RevealRefusal>),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
}

/// The ask a grant was admitted for, as its later rows record it.
fn ask_of(grant: &Grant, contact_id: ContactId, meta: RequestMeta) -> Ask {
    Ask {
        actor: grant.actor.clone(),
        role: grant.role.clone(),
        principal: None,
        channel: Channel::Web,
        initial: ContactId::parse(&grant.initial_contact_id).ok(),
        contact_id,
        field_text: grant.field.clone(),
        reason_raw: String::new(),
        case_raw: String::new(),
        reason_text: grant.reason.clone(),
        case_text: grant.case_ref.clone(),
        contact_started_us: None,
        given_value: None,
        meta,
    }
}

impl Reveals {
    /// Shows a granted reveal: uses grant `id` (once, by the person it was
    /// made for, in the same sign-in) and decrypts its value in memory. A
    /// decryption that fails is recorded (`decrypt_failed`).
    pub async fn open(
        &self,
        id: &str,
        user_id: i64,
        generation: &str,
        meta: RequestMeta,
    ) -> Result<Revealed, OpenError> {
        let grant = self.grants.consume(id, user_id, generation).await?;
        let fail =
            |kind: &'static str, fingerprint: String| RevealRefusal::Failed { kind, fingerprint };
        let (Ok(contact_id), Ok(bound_to), Ok(field), Some(capture)) = (
            ContactId::parse(&grant.contact_id),
            ContactId::parse(&grant.bound_to),
            FieldName::parse(&grant.field),
            Capture::parse(&grant.capture),
        ) else {
            return Err(OpenError::Grant(GrantError::NotFound));
        };
        let ask = ask_of(&grant, contact_id.clone(), meta);
        let refused = |r: RevealRefusal| async {
            let recorded = self
                .audit
                .refuse(r, |action, outcome, detail| {
                    ask.event(action, outcome, &detail)
                })
                .await?;
            Err(OpenError::Refused(recorded))
        };
        let ct = match Ciphertext::from_base64(&grant.stored_value) {
            Ok(ct) => ct,
            Err(e) => return refused(fail(CryptoError::from(e).kind(), String::new())).await,
        };
        let fingerprint = ct.fingerprint();
        let revealed = |plaintext, connect_key| Revealed {
            plaintext,
            capture,
            connect_key,
            legacy: grant.legacy != 0,
            audit_seq: grant.audit_seq,
            request_id: grant.request_id.clone(),
            fingerprint: fingerprint.clone(),
            contact_id: contact_id.clone(),
            field: grant.field.clone(),
            case_ref: grant.case_ref.clone(),
        };
        if capture == Capture::Keypad {
            let path = self.keypad.clone();
            let Some((path, validator)) = path.and_then(|p| p.validator(&field).map(|v| (p, v)))
            else {
                return refused(RevealRefusal::NotConfigured).await;
            };
            return match keypad::open(path, ct, validator).await {
                Ok(d) => Ok(revealed(d.plaintext, Some(d.key_id.to_string()))),
                Err(e) => {
                    let kind = e.kind();
                    tracing::warn!(request_id = ask.meta.request_id.as_str(), error_kind = kind, error = %e, "keypad decrypt failed");
                    let answer = refused(fail(kind, fingerprint.clone())).await;
                    self.forget_failed(&grant).await;
                    answer
                }
            };
        }
        let Some(decryptor) = self.decryptor.clone() else {
            return refused(RevealRefusal::NotConfigured).await;
        };
        let expected = match (grant.legacy != 0, &self.legacy) {
            (true, Some(legacy)) => legacy.clone(),
            (true, None) => {
                return refused(RevealRefusal::ContextMismatch {
                    fingerprint: fingerprint.clone(),
                })
                .await
            }
            (false, _) => FieldContext::new(bound_to, field).to_expected(),
        };
        match decryptor.decrypt(ct, expected).await {
            Ok(decrypted) => Ok(revealed(decrypted.plaintext, None)),
            Err(e) => {
                let kind = e.kind();
                tracing::warn!(request_id = ask.meta.request_id.as_str(), error_kind = kind, error = %e, "decrypt failed");
                let answer = refused(fail(kind, fingerprint.clone())).await;
                self.forget_failed(&grant).await;
                answer
            }
        }
    }

    /// After a value failed to decrypt (its `decrypt_failed` row recorded):
    /// its grant cannot be kept open, and a keypad message's claim is
    /// given up. Best effort: a failure here is logged, nothing is shown.
    async fn forget_failed(&self, grant: &Grant) {
        let forgot = self.grants.forget(&grant.id).await;
        let released = match Capture::parse(&grant.capture) {
            Some(Capture::Keypad) => keypad::release(self.audit.db(), grant.audit_seq).await,
            _ => Ok(()),
        };
        if let Err(e) = forgot.and(released) {
            tracing::warn!(error = %e, "a failed reveal's grant or claim was not cleared");
        }
    }
}
