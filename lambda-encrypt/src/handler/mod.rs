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

mod capture;
mod turn;

use std::time::Instant;

use serde_json::{Map, Value};

use crate::context::ContactId;
use crate::crypto::FieldCrypto;
use crate::fields::{FieldSpec, Fields};
use crate::lex::{Intent, LexEvent, LexResponse};
use capture::CaptureTurn;
use turn::{attr, set, Turn};

pub const DEFAULT_MAX_RETRIES: u32 = 2;
pub const DEFAULT_GENERIC_SLOTS: &str = "authNumber";
pub const CONTACT_ID_ATTRIBUTE: &str = "contactId";
pub const FIELD_ATTRIBUTE: &str = "field";
/// Set in the generic design for flows built on the reference solution.
pub const IS_VALID_ATTRIBUTE: &str = "isValid";
/// Session attribute a flow's keypad-only retry sets to `true`: a value that
/// did not arrive as DTMF (`inputMode`) is then refused and asked for again
/// on the keypad (Lex V2 has no session attribute that turns speech off).
pub const KEYPAD_ONLY_ATTRIBUTE: &str = "callvault_keypad_only";

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

/// One invocation's answer and what the log lines need. Holds no value.
struct Answer {
    source: Source,
    contact: Option<ContactId>,
    reports: Vec<Report>,
    response: LexResponse,
}

/// The parts of an event the code hook reads.
struct Parsed {
    source: Source,
    /// `inputMode`: `DTMF`, `Speech` or `Text`.
    input_mode: Option<String>,
    session_id: Option<String>,
    attrs: Map<String, Value>,
    intent: Intent,
    turn: Turn,
}

fn parse(event: Value) -> Result<Parsed, HandlerError> {
    let event: LexEvent = serde_json::from_value(event).map_err(|_| HandlerError::Malformed)?;
    let source = match event.invocation_source.as_deref() {
        Some("DialogCodeHook") => Source::Dialog,
        Some("FulfillmentCodeHook") => Source::Fulfillment,
        _ => return Err(HandlerError::UnsupportedInvocationSource),
    };
    let state = event
        .session_state
        .ok_or(HandlerError::MissingSessionState)?;
    let intent = state.intent.ok_or(HandlerError::MissingIntent)?;
    let intent_name = intent
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or(HandlerError::MissingIntent)?;
    let turn = Turn {
        active_contexts: state.active_contexts,
        originating_request_id: state.originating_request_id,
        intent_name,
        confirmation_state: intent.confirmation_state.clone(),
    };
    Ok(Parsed {
        source,
        input_mode: event.input_mode,
        session_id: event.session_id,
        attrs: state.session_attributes.unwrap_or_default(),
        intent,
        turn,
    })
}

/// The flow meant this slot for us but did not say (or mis-said) which field
/// it holds: nothing can be validated or encrypted, so the value is dropped
/// and the intent fails.
fn misconfigured(
    source: Source,
    mut turn: Turn,
    mut attrs: Map<String, Value>,
    intent: Intent,
    slot: String,
    kind: ConfigError,
) -> Answer {
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
    let message = Some(SERVICE_ERROR_MESSAGE.to_owned());
    Answer {
        source,
        contact: None,
        reports: vec![Report {
            field: String::new(),
            outcome: "error",
            error_kind: Some(kind.kind()),
        }],
        response: turn.close("Failed", attrs, slots, message),
    }
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
        match self.respond(event).await {
            Err(e) => {
                log_error(e, started);
                Err(e)
            }
            Ok(answer) => {
                let duration_us = started.elapsed().as_micros() as u64;
                let contact_id = answer.contact.as_ref().map_or("", ContactId::as_str);
                for r in &answer.reports {
                    tracing::info!(
                        contact_id,
                        field = r.field.as_str(),
                        outcome = r.outcome,
                        error_kind = r.error_kind.unwrap_or(""),
                        invocation_source = answer.source.as_str(),
                        duration_us,
                        "lex code hook"
                    );
                }
                Ok(answer.response)
            }
        }
    }

    async fn respond(&self, event: Value) -> Result<Answer, HandlerError> {
        let Parsed {
            source,
            input_mode,
            session_id,
            attrs,
            intent,
            mut turn,
        } = parse(event)?;
        match self.targets(&attrs, &intent) {
            Targets::Misconfigured { slot, kind } => {
                Ok(misconfigured(source, turn, attrs, intent, slot, kind))
            }
            Targets::Fields(targets) if targets.is_empty() => Ok(Answer {
                source,
                contact: None,
                reports: vec![Report {
                    field: String::new(),
                    outcome: "passthrough",
                    error_kind: None,
                }],
                response: turn.passthrough(source, attrs, intent),
            }),
            Targets::Fields(targets) => Ok(self
                .capture(CaptureTurn {
                    source,
                    keyed: input_mode.as_deref() == Some("DTMF"),
                    session_id,
                    attrs,
                    slots: intent.slots.unwrap_or_default(),
                    turn,
                    targets,
                })
                .await),
        }
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
