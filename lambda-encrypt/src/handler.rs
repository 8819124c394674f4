//! The Lex V2 code hook: validate, encrypt, answer with ciphertext only.
//!
//! Two bot designs are supported:
//! - one slot per field: a slot named after the field (`creditcard`, `zipcode`);
//! - the reference design's single generic slot (`authNumber` by default),
//!   where the Connect flow names the field in session attribute `field`
//!   before each "Get customer input" block. A generic slot without a
//!   configured `field` fails the intent closed (see [`ConfigError`]).
//!
//! Captured slots are *cleared* (set to `null`) in every response: the value
//! goes back only as ciphertext in session attribute `<field>`, with
//! `<field>_status` = `captured`. See the crate README for why clearing was
//! chosen over replacing the slot.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::context::{ContactId, FieldContext};
use crate::crypto::FieldCrypto;
use crate::fields::{FieldSpec, Fields};
use crate::lex::{
    slot_text, DialogAction, DialogActionType, Intent, LexEvent, LexResponse, Message,
    ResponseIntent, ResponseSessionState, SlotText,
};
use crate::validate::Rejection;

pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_GENERIC_SLOTS: &str = "authNumber";
pub const CONTACT_ID_ATTRIBUTE: &str = "contactId";
pub const FIELD_ATTRIBUTE: &str = "field";
/// Set in the generic design for flows built on the reference solution.
pub const IS_VALID_ATTRIBUTE: &str = "isValid";

pub const STATUS_CAPTURED: &str = "captured";
pub const STATUS_FAILED: &str = "failed";
pub const STATUS_ERROR: &str = "error";
/// Set when the intent fails before a field was asked for, so the flow's store
/// step has a status for every field.
pub const STATUS_NOT_ASKED: &str = "not_asked";

const SERVICE_ERROR_MESSAGE: &str =
    "Sorry, we can't take that information securely right now. Please try again later.";

#[derive(Debug, Clone)]
pub struct HandlerConfig {
    pub fields: Fields,
    /// Re-prompts allowed after a refused value; one more refusal fails the intent.
    pub max_retries: u32,
    /// Slot names used by the single-generic-slot design.
    pub generic_slots: Vec<String>,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        Self {
            fields: Fields::default(),
            max_retries: DEFAULT_MAX_RETRIES,
            generic_slots: vec![DEFAULT_GENERIC_SLOTS.to_owned()],
        }
    }
}

/// Events that cannot be answered with a Lex response. The messages say what
/// was wrong with the shape of the event, never what it held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    #[error("the event is not valid JSON")]
    NotJson,
    #[error("the event does not have the shape of a Lex V2 code hook event")]
    Malformed,
    #[error("the event has no sessionState")]
    MissingSessionState,
    #[error("the event has no sessionState.intent with a name")]
    MissingIntent,
    #[error("invocationSource must be DialogCodeHook or FulfillmentCodeHook")]
    UnsupportedInvocationSource,
}

impl HandlerError {
    pub fn kind(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::Malformed => "malformed_event",
            Self::MissingSessionState => "missing_session_state",
            Self::MissingIntent => "missing_intent",
            Self::UnsupportedInvocationSource => "unsupported_invocation_source",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Dialog,
    Fulfillment,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Self::Dialog => "DialogCodeHook",
            Self::Fulfillment => "FulfillmentCodeHook",
        }
    }
}

/// One field handled in this turn: which slot holds it.
struct Target<'a> {
    spec: &'a FieldSpec,
    slot: String,
}

/// What happened to one field, for the log line. Holds no value.
struct Report {
    field: String,
    outcome: &'static str,
    error_kind: Option<&'static str>,
}

pub struct Handler {
    config: HandlerConfig,
    crypto: FieldCrypto,
}

impl Handler {
    pub fn new(config: HandlerConfig, crypto: FieldCrypto) -> Self {
        Self { config, crypto }
    }

    pub fn config(&self) -> &HandlerConfig {
        &self.config
    }

    /// Handles raw bytes (tests, fuzzing); the Lambda runtime hands over a `Value`.
    pub async fn handle_bytes(&self, event: &[u8]) -> Result<LexResponse, HandlerError> {
        match serde_json::from_slice::<Value>(event) {
            Ok(value) => self.handle(value).await,
            Err(_) => {
                log_error(HandlerError::NotJson, Instant::now());
                Err(HandlerError::NotJson)
            }
        }
    }

    /// Handles one Lex V2 code-hook invocation and logs one JSON line per field.
    pub async fn handle(&self, event: Value) -> Result<LexResponse, HandlerError> {
        let started = Instant::now();
        let mut reports = Vec::new();
        let mut contact = None;
        let mut source = None;
        let result = self
            .respond(event, &mut reports, &mut contact, &mut source)
            .await;
        match &result {
            Err(e) => log_error(*e, started),
            Ok(_) => {
                let duration_us = started.elapsed().as_micros() as u64;
                let source = source.map_or("", Source::as_str);
                let contact_id = contact.as_ref().map_or("", ContactId::as_str);
                for r in &reports {
                    tracing::info!(
                        contact_id,
                        field = r.field.as_str(),
                        outcome = r.outcome,
                        error_kind = r.error_kind.unwrap_or(""),
                        invocation_source = source,
                        duration_us,
                        "lex code hook"
                    );
                }
            }
        }
        result
    }

    async fn respond(
        &self,
        event: Value,
        reports: &mut Vec<Report>,
        contact_out: &mut Option<ContactId>,
        source_out: &mut Option<Source>,
    ) -> Result<LexResponse, HandlerError> {
        let event: LexEvent = serde_json::from_value(event).map_err(|_| HandlerError::Malformed)?;
        let source = match event.invocation_source.as_deref() {
            Some("DialogCodeHook") => Source::Dialog,
            Some("FulfillmentCodeHook") => Source::Fulfillment,
            _ => return Err(HandlerError::UnsupportedInvocationSource),
        };
        *source_out = Some(source);
        let state = event
            .session_state
            .ok_or(HandlerError::MissingSessionState)?;
        let intent = state.intent.ok_or(HandlerError::MissingIntent)?;
        let intent_name = intent
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or(HandlerError::MissingIntent)?;
        let mut attrs = state.session_attributes.unwrap_or_default();
        let mut out = Turn {
            active_contexts: state.active_contexts,
            originating_request_id: state.originating_request_id,
            intent_name,
            confirmation_state: intent.confirmation_state.clone(),
        };

        let targets = match self.targets(&attrs, &intent) {
            Targets::Fields(targets) => targets,
            Targets::Misconfigured { slot, kind } => {
                // The flow meant this slot for us but did not say (or
                // mis-said) which field it holds: nothing can be validated or
                // encrypted, so the value is dropped and the intent fails.
                let mut slots = intent.slots.unwrap_or_default();
                if let Some(taken) = slots.insert(slot, Value::Null) {
                    wipe(taken);
                }
                set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
                tracing::error!(
                    error_kind = kind.kind(),
                    error = %kind,
                    "generic slot without a configured field"
                );
                reports.push(Report {
                    field: String::new(),
                    outcome: "error",
                    error_kind: Some(kind.kind()),
                });
                return Ok(out.close(
                    "Failed",
                    attrs,
                    slots,
                    Some(SERVICE_ERROR_MESSAGE.to_owned()),
                ));
            }
        };
        if targets.is_empty() {
            reports.push(Report {
                field: String::new(),
                outcome: "passthrough",
                error_kind: None,
            });
            return Ok(out.passthrough(source, attrs, intent));
        }
        let generic = targets.iter().any(|t| t.slot != t.spec.name.as_str());
        let mut slots = intent.slots.unwrap_or_default();

        // Every targeted slot is cleared before anything else happens, so no
        // path below can return a caller's value.
        let mut values: Vec<Option<Result<String, Rejection>>> = Vec::with_capacity(targets.len());
        for t in &targets {
            let taken = slots.insert(t.slot.clone(), Value::Null);
            values.push(match slot_text(taken.as_ref()) {
                SlotText::Missing => None,
                SlotText::Unreadable => Some(Err(Rejection::NotDigits)),
                SlotText::Text(s) => Some(Ok(s.to_owned())),
            });
            if let Some(taken) = taken {
                wipe(taken);
            }
        }

        let contact = attr(&attrs, CONTACT_ID_ATTRIBUTE)
            .map(str::to_owned)
            .or(event.session_id)
            .and_then(|c| ContactId::parse(&c).ok());
        let Some(contact) = contact else {
            for t in &targets {
                set(&mut attrs, &status_key(t), STATUS_ERROR);
                reports.push(Report {
                    field: t.spec.name.to_string(),
                    outcome: "error",
                    error_kind: Some("invalid_contact_id"),
                });
            }
            if generic {
                set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
            }
            return Ok(out.close(
                "Failed",
                attrs,
                slots,
                Some(SERVICE_ERROR_MESSAGE.to_owned()),
            ));
        };
        *contact_out = Some(contact.clone());

        let mut service_error = false;
        let mut rejected: Option<(usize, bool)> = None; // (target index, retries exhausted)
        let mut missing: Option<usize> = None;
        for (i, (t, value)) in targets.iter().zip(values).enumerate() {
            let field = t.spec.name.to_string();
            let value = match value {
                None => {
                    if attr(&attrs, &status_key(t)) != Some(STATUS_CAPTURED) && missing.is_none() {
                        missing = Some(i);
                        reports.push(Report {
                            field,
                            outcome: "elicit",
                            error_kind: None,
                        });
                    }
                    continue;
                }
                Some(v) => v,
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
                            set(&mut attrs, t.spec.name.as_str(), &ciphertext.to_base64());
                            set(&mut attrs, &status_key(t), STATUS_CAPTURED);
                            attrs.remove(&retries_key(t));
                            reports.push(Report {
                                field,
                                outcome: "captured",
                                error_kind: None,
                            });
                        }
                        Err(e) => {
                            set(&mut attrs, &status_key(t), STATUS_ERROR);
                            tracing::error!(
                                contact_id = contact.as_str(),
                                field = field.as_str(),
                                error_kind = e.kind(),
                                error = %e,
                                "encryption failed"
                            );
                            reports.push(Report {
                                field,
                                outcome: "error",
                                error_kind: Some(e.kind()),
                            });
                            service_error = true;
                        }
                    }
                }
                Err(rejection) => {
                    let failures = attr(&attrs, &retries_key(t))
                        .and_then(|n| n.parse::<u32>().ok())
                        .unwrap_or(0)
                        .saturating_add(1);
                    let exhausted = failures > self.config.max_retries;
                    if exhausted {
                        set(&mut attrs, &status_key(t), STATUS_FAILED);
                        attrs.remove(&retries_key(t));
                    } else {
                        set(&mut attrs, &retries_key(t), &failures.to_string());
                    }
                    reports.push(Report {
                        field,
                        outcome: if exhausted { "failed" } else { "reprompt" },
                        error_kind: Some(rejection.kind()),
                    });
                    if rejected.is_none() || (exhausted && rejected.is_some_and(|(_, e)| !e)) {
                        rejected = Some((i, exhausted));
                    }
                }
            }
        }

        if service_error {
            mark_not_asked(&mut attrs, &targets);
            if generic {
                set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
            }
            return Ok(out.close(
                "Failed",
                attrs,
                slots,
                Some(SERVICE_ERROR_MESSAGE.to_owned()),
            ));
        }
        if let Some((i, exhausted)) = rejected {
            let t = &targets[i];
            if exhausted {
                mark_not_asked(&mut attrs, &targets);
                if generic {
                    set(&mut attrs, IS_VALID_ATTRIBUTE, "false");
                }
                let message = format!(
                    "Sorry, I still couldn't get a valid {}.",
                    t.spec.validator.label()
                );
                return Ok(out.close("Failed", attrs, slots, Some(message)));
            }
            return Ok(out.elicit(&t.slot, attrs, slots, Some(t.spec.validator.reprompt())));
        }
        if let Some(i) = missing {
            // No message: Lex plays the slot's own elicitation prompt.
            return Ok(out.elicit(&targets[i].slot, attrs, slots, None));
        }
        if generic {
            set(&mut attrs, IS_VALID_ATTRIBUTE, "true");
        }
        Ok(out.close("Fulfilled", attrs, slots, None))
    }

    /// The fields this intent carries: slots named after configured fields,
    /// else the generic slot, whose field session attribute `field` names.
    /// A generic slot whose `field` is missing or not configured is a
    /// configuration error, never a pass-through: the slot may hold digits.
    fn targets<'a>(&'a self, attrs: &Map<String, Value>, intent: &Intent) -> Targets<'a> {
        let Some(slots) = intent.slots.as_ref() else {
            return Targets::Fields(Vec::new());
        };
        let per_field: Vec<Target<'a>> = self
            .config
            .fields
            .iter()
            .filter(|f| slots.contains_key(f.name.as_str()))
            .map(|f| Target {
                spec: f,
                slot: f.name.to_string(),
            })
            .collect();
        if !per_field.is_empty() {
            return Targets::Fields(per_field);
        }
        let named_generic = self
            .config
            .generic_slots
            .iter()
            .find(|s| slots.contains_key(s.as_str()))
            .cloned();
        let field = attr(attrs, FIELD_ATTRIBUTE);
        // With a `field` attribute, an intent with a single slot is taken to
        // be the generic one even when the bot named it differently.
        let slot = named_generic.or_else(|| {
            field
                .filter(|_| slots.len() == 1)
                .and_then(|_| slots.keys().next().cloned())
        });
        let Some(slot) = slot else {
            return Targets::Fields(Vec::new());
        };
        match field.map(|f| self.config.fields.get(f)) {
            Some(Some(spec)) => Targets::Fields(vec![Target { spec, slot }]),
            Some(None) => Targets::Misconfigured {
                slot,
                kind: ConfigError::UnknownField,
            },
            None => Targets::Misconfigured {
                slot,
                kind: ConfigError::MissingField,
            },
        }
    }
}

/// Which fields a turn handles, or why the generic slot cannot be handled.
enum Targets<'a> {
    Fields(Vec<Target<'a>>),
    Misconfigured { slot: String, kind: ConfigError },
}

/// A flow or bot set up so that the Lambda cannot tell what a slot holds.
/// The messages name the problem, never the attribute's or slot's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("the generic slot is filled but session attribute 'field' is missing")]
    MissingField,
    #[error("session attribute 'field' names a field that CALLVAULT_FIELDS does not configure")]
    UnknownField,
}

impl ConfigError {
    pub fn kind(self) -> &'static str {
        match self {
            Self::MissingField => "missing_field_attribute",
            Self::UnknownField => "unknown_field_attribute",
        }
    }
}

fn log_error(e: HandlerError, started: Instant) {
    tracing::warn!(
        outcome = "rejected_event",
        error_kind = e.kind(),
        duration_us = started.elapsed().as_micros() as u64,
        "lex code hook"
    );
}

/// Drops a JSON value, wiping every string in it first (best effort: the
/// runtime's copy of the event is not ours to wipe).
fn wipe(value: Value) {
    match value {
        Value::String(s) => drop(zeroize::Zeroizing::new(s)),
        Value::Array(items) => items.into_iter().for_each(wipe),
        Value::Object(map) => map.into_iter().for_each(|(k, v)| {
            drop(zeroize::Zeroizing::new(k));
            wipe(v);
        }),
        _ => {}
    }
}

fn attr<'m>(attrs: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    attrs.get(key).and_then(Value::as_str)
}

fn set(attrs: &mut Map<String, Value>, key: &str, value: &str) {
    attrs.insert(key.to_owned(), Value::String(value.to_owned()));
}

/// Gives every field without a status `not_asked` (the intent is failing).
fn mark_not_asked(attrs: &mut Map<String, Value>, targets: &[Target<'_>]) {
    for t in targets {
        if attr(attrs, &status_key(t)).is_none() {
            set(attrs, &status_key(t), STATUS_NOT_ASKED);
        }
    }
}

fn status_key(t: &Target<'_>) -> String {
    format!("{}_status", t.spec.name)
}

fn retries_key(t: &Target<'_>) -> String {
    format!("{}_retries", t.spec.name)
}

/// The parts of the request that every response echoes.
struct Turn {
    active_contexts: Option<Value>,
    originating_request_id: Option<String>,
    intent_name: String,
    confirmation_state: Option<String>,
}

impl Turn {
    fn response(
        &mut self,
        kind: DialogActionType,
        slot_to_elicit: Option<String>,
        state: &str,
        attrs: Map<String, Value>,
        slots: Map<String, Value>,
        message: Option<String>,
    ) -> LexResponse {
        // Only what Lex's model allows goes back (session attributes are a
        // string map, slots are objects or null, states are enums): anything
        // else came from a malformed event and is dropped, not echoed.
        let mut attrs = attrs;
        attrs.retain(|_, v| v.is_string());
        let confirmation_state = self
            .confirmation_state
            .take()
            .filter(|c| matches!(c.as_str(), "Confirmed" | "Denied" | "None"));
        let active_contexts = self.active_contexts.take().filter(Value::is_array);
        let mut slots = slots;
        for v in slots.values_mut() {
            if !v.is_object() {
                *v = Value::Null;
            }
        }
        let state = match state {
            "Failed"
            | "Fulfilled"
            | "InProgress"
            | "ReadyForFulfillment"
            | "Waiting"
            | "FulfillmentInProgress" => state,
            _ => "InProgress",
        };
        LexResponse {
            session_state: ResponseSessionState {
                active_contexts,
                session_attributes: attrs,
                dialog_action: DialogAction {
                    kind,
                    slot_to_elicit,
                },
                intent: Some(ResponseIntent {
                    name: self.intent_name.clone(),
                    slots,
                    state: state.to_owned(),
                    confirmation_state,
                }),
                originating_request_id: self.originating_request_id.take(),
            },
            messages: message.into_iter().map(Message::plain).collect(),
        }
    }

    fn close(
        &mut self,
        state: &str,
        attrs: Map<String, Value>,
        slots: Map<String, Value>,
        message: Option<String>,
    ) -> LexResponse {
        self.response(DialogActionType::Close, None, state, attrs, slots, message)
    }

    fn elicit(
        &mut self,
        slot: &str,
        attrs: Map<String, Value>,
        slots: Map<String, Value>,
        message: Option<String>,
    ) -> LexResponse {
        self.response(
            DialogActionType::ElicitSlot,
            Some(slot.to_owned()),
            "InProgress",
            attrs,
            slots,
            message,
        )
    }

    /// Not our intent: hand it back as it came. In a fulfillment hook there is
    /// nothing for us to fulfil, so the intent is closed as fulfilled.
    fn passthrough(
        &mut self,
        source: Source,
        attrs: Map<String, Value>,
        intent: Intent,
    ) -> LexResponse {
        let slots = intent.slots.unwrap_or_default();
        match source {
            Source::Dialog => {
                let state = intent.state.unwrap_or_else(|| "InProgress".to_owned());
                self.response(DialogActionType::Delegate, None, &state, attrs, slots, None)
            }
            Source::Fulfillment => self.close("Fulfilled", attrs, slots, None),
        }
    }
}
