//! A turn that carries fields, in steps that each return a value: take every
//! targeted slot's text (clearing the slot first), capture each value
//! (validate, encrypt, record its status), then decide what Lex does next.

use serde_json::{Map, Value};

use super::turn::{attr, mark_not_asked, retries_key, set, status_key, Turn};
use super::{
    wipe, Answer, Handler, Report, Source, Target, IS_VALID_ATTRIBUTE, SERVICE_ERROR_MESSAGE,
    STATUS_CAPTURED, STATUS_ERROR, STATUS_FAILED,
};
use crate::context::{ContactId, FieldContext};
use crate::lex::{slot_text, SlotText};
use crate::validate::Rejection;

/// What the caller gave for one field this turn.
pub(super) type SlotValue = Option<Result<String, Rejection>>;

/// What happened to one field this turn. Holds no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldOutcome {
    /// Nothing given, and it was captured before.
    Done,
    /// Nothing given, and it is still needed.
    Missing,
    Captured,
    EncryptFailed(&'static str),
    Rejected {
        exhausted: bool,
        kind: &'static str,
    },
}

/// What the answer does next, from every field's outcome (in field order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Encryption failed: close Failed with the generic message.
    ServiceError,
    /// This field's retries are spent: close Failed.
    GiveUp(usize),
    /// This field's value was refused: ask again, saying what is expected.
    Reprompt(usize),
    /// This field is still needed: ask for it with the slot's own prompt.
    Elicit(usize),
    Fulfilled,
}

pub(super) fn next(outcomes: &[FieldOutcome]) -> Next {
    let first = |p: fn(&FieldOutcome) -> bool| outcomes.iter().position(p);
    if first(|o| matches!(o, FieldOutcome::EncryptFailed(_))).is_some() {
        Next::ServiceError
    } else if let Some(i) = first(|o| {
        matches!(
            o,
            FieldOutcome::Rejected {
                exhausted: true,
                ..
            }
        )
    }) {
        Next::GiveUp(i)
    } else if let Some(i) = first(|o| matches!(o, FieldOutcome::Rejected { .. })) {
        Next::Reprompt(i)
    } else if let Some(i) = first(|o| matches!(o, FieldOutcome::Missing)) {
        Next::Elicit(i)
    } else {
        Next::Fulfilled
    }
}

/// One log line per field that did something (only the first missing one).
pub(super) fn reports(targets: &[Target<'_>], outcomes: &[FieldOutcome]) -> Vec<Report> {
    let mut seen_missing = false;
    let mut out = Vec::new();
    for (t, o) in targets.iter().zip(outcomes) {
        let (outcome, error_kind) = match *o {
            FieldOutcome::Done => continue,
            FieldOutcome::Missing if seen_missing => continue,
            FieldOutcome::Missing => {
                seen_missing = true;
                ("elicit", None)
            }
            FieldOutcome::Captured => ("captured", None),
            FieldOutcome::EncryptFailed(kind) => ("error", Some(kind)),
            FieldOutcome::Rejected { exhausted, kind } => {
                (if exhausted { "failed" } else { "reprompt" }, Some(kind))
            }
        };
        out.push(Report {
            field: t.spec.name.to_string(),
            outcome,
            error_kind,
        });
    }
    out
}

/// Clears every targeted slot before anything else happens, so no path can
/// return a caller's value; hands back the cleared slots and the texts.
pub(super) fn take_values(
    mut slots: Map<String, Value>,
    targets: &[Target<'_>],
) -> (Map<String, Value>, Vec<SlotValue>) {
    let values = targets
        .iter()
        .map(|t| {
            let taken = slots.insert(t.slot.clone(), Value::Null);
            let value = match slot_text(taken.as_ref()) {
                SlotText::Missing => None,
                SlotText::Unreadable => Some(Err(Rejection::NotDigits)),
                SlotText::Text(s) => Some(Ok(s.to_owned())),
            };
            if let Some(taken) = taken {
                wipe(taken);
            }
            value
        })
        .collect();
    (slots, values)
}

/// Everything a capture turn starts from.
pub(super) struct CaptureTurn<'a> {
    pub source: Source,
    /// The caller's input this turn arrived as DTMF.
    pub keyed: bool,
    pub session_id: Option<String>,
    pub attrs: Map<String, Value>,
    pub slots: Map<String, Value>,
    pub turn: Turn,
    pub targets: Vec<Target<'a>>,
}

impl Handler {
    pub(super) async fn capture(&self, c: CaptureTurn<'_>) -> Answer {
        let CaptureTurn {
            source,
            keyed,
            session_id,
            mut attrs,
            slots,
            mut turn,
            targets,
        } = c;
        let generic = targets.iter().any(|t| t.slot != t.spec.name.as_str());
        let (slots, mut values) = take_values(slots, &targets);
        // The keypad-only retry: a spoken (or typed) value is not taken.
        if !keyed && attr(&attrs, super::KEYPAD_ONLY_ATTRIBUTE) == Some("true") {
            for v in values.iter_mut().filter(|v| v.is_some()) {
                *v = Some(Err(Rejection::NotKeyed));
            }
        }

        let contact = attr(&attrs, super::CONTACT_ID_ATTRIBUTE)
            .map(str::to_owned)
            .or(session_id)
            .and_then(|c| ContactId::parse(&c).ok());
        let Some(contact) = contact else {
            let reports = targets
                .iter()
                .map(|t| {
                    set(&mut attrs, &status_key(t), STATUS_ERROR);
                    Report {
                        field: t.spec.name.to_string(),
                        outcome: "error",
                        error_kind: Some("invalid_contact_id"),
                    }
                })
                .collect();
            if generic {
                set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
            }
            let message = Some(SERVICE_ERROR_MESSAGE.to_owned());
            return Answer {
                source,
                contact: None,
                reports,
                response: turn.close("Failed", attrs, slots, message),
            };
        };

        let mut outcomes = Vec::with_capacity(targets.len());
        for (t, value) in targets.iter().zip(values) {
            outcomes.push(self.capture_one(&contact, t, value, &mut attrs).await);
        }
        let reports = reports(&targets, &outcomes);
        let response = match next(&outcomes) {
            Next::ServiceError => {
                mark_not_asked(&mut attrs, &targets);
                if generic {
                    set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
                }
                let message = Some(SERVICE_ERROR_MESSAGE.to_owned());
                turn.close("Failed", attrs, slots, message)
            }
            Next::GiveUp(i) => {
                mark_not_asked(&mut attrs, &targets);
                if generic {
                    set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
                }
                let label = targets[i].spec.validator.label();
                let message = format!("Sorry, I still couldn't get a valid {label}.");
                turn.close("Failed", attrs, slots, Some(message))
            }
            Next::Reprompt(i) => {
                let t = &targets[i];
                let message = match outcomes[i] {
                    FieldOutcome::Rejected {
                        kind: "not_keyed", ..
                    } => t.spec.validator.keypad_reprompt(),
                    _ => t.spec.validator.reprompt(),
                };
                turn.elicit(&t.slot, attrs, slots, Some(message))
            }
            // No message: Lex plays the slot's own elicitation prompt.
            Next::Elicit(i) => turn.elicit(&targets[i].slot, attrs, slots, None),
            Next::Fulfilled => {
                if generic {
                    set(&mut attrs, IS_VALID_ATTRIBUTE, "true");
                }
                turn.close("Fulfilled", attrs, slots, None)
            }
        };
        Answer {
            source,
            contact: Some(contact),
            reports,
            response,
        }
    }

    /// Validates and encrypts one field's value and records its status (and
    /// its retry count) in the session attributes.
    async fn capture_one(
        &self,
        contact: &ContactId,
        t: &Target<'_>,
        value: SlotValue,
        attrs: &mut Map<String, Value>,
    ) -> FieldOutcome {
        let Some(value) = value else {
            return if attr(attrs, &status_key(t)) == Some(STATUS_CAPTURED) {
                FieldOutcome::Done
            } else {
                FieldOutcome::Missing
            };
        };
        let validated = value.and_then(|text| {
            let text = zeroize::Zeroizing::new(text);
            t.spec.validator.validate(&text)
        });
        match validated {
            Ok(plaintext) => {
                let ctx = FieldContext::new(contact.clone(), t.spec.name.clone());
                match self.crypto.encrypt(&ctx, &plaintext).await {
                    Ok(ciphertext) => {
                        set(attrs, t.spec.name.as_str(), &ciphertext.to_base64());
                        set(attrs, &status_key(t), STATUS_CAPTURED);
                        attrs.remove(&retries_key(t));
                        FieldOutcome::Captured
                    }
                    Err(e) => {
                        set(attrs, &status_key(t), STATUS_ERROR);
                        tracing::error!(
                            contact_id = contact.as_str(),
                            field = t.spec.name.as_str(),
                            error_kind = e.kind(),
                            error = %e,
                            "encryption failed"
                        );
                        FieldOutcome::EncryptFailed(e.kind())
                    }
                }
            }
            Err(rejection) => {
                let failures = attr(attrs, &retries_key(t))
                    .and_then(|n| n.parse::<u32>().ok())
                    .unwrap_or(0)
                    .saturating_add(1);
                let exhausted = failures > self.config.max_retries;
                if exhausted {
                    set(attrs, &status_key(t), STATUS_FAILED);
                    attrs.remove(&retries_key(t));
                } else {
                    set(attrs, &retries_key(t), &failures.to_string());
                }
                FieldOutcome::Rejected {
                    exhausted,
                    kind: rejection.kind(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FieldOutcome::*;
    use super::*;

    const BAD: &str = "luhn";

    #[test]
    fn encryption_failure_wins_over_everything() {
        let o = [
            Rejected {
                exhausted: true,
                kind: BAD,
            },
            EncryptFailed("kms"),
            Missing,
        ];
        assert_eq!(next(&o), Next::ServiceError);
    }

    #[test]
    fn spent_retries_win_over_a_reprompt_even_when_later() {
        let o = [
            Rejected {
                exhausted: false,
                kind: BAD,
            },
            Rejected {
                exhausted: true,
                kind: BAD,
            },
        ];
        assert_eq!(next(&o), Next::GiveUp(1));
    }

    #[test]
    fn a_refusal_is_reprompted_before_a_missing_field_is_asked_for() {
        assert_eq!(
            next(&[
                Missing,
                Rejected {
                    exhausted: false,
                    kind: BAD
                }
            ]),
            Next::Reprompt(1)
        );
        assert_eq!(next(&[Captured, Missing, Missing]), Next::Elicit(1));
    }

    #[test]
    fn all_captured_or_done_is_fulfilled() {
        assert_eq!(next(&[Captured, Done]), Next::Fulfilled);
        assert_eq!(next(&[]), Next::Fulfilled);
    }
}
