//! Building the answer: the parts of the request every response echoes, and
//! the session-attribute bookkeeping (`<field>`, `<field>_status`,
//! `<field>_retries`).

use serde_json::{Map, Value};

use super::{Source, Target, STATUS_NOT_ASKED};
use crate::lex::{
    DialogAction, DialogActionType, Intent, LexResponse, Message, ResponseIntent,
    ResponseSessionState,
};

pub(super) fn attr<'m>(attrs: &'m Map<String, Value>, key: &str) -> Option<&'m str> {
    attrs.get(key).and_then(Value::as_str)
}

pub(super) fn set(attrs: &mut Map<String, Value>, key: &str, value: &str) {
    attrs.insert(key.to_owned(), Value::String(value.to_owned()));
}

/// Gives every field without a status `not_asked` (the intent is failing).
pub(super) fn mark_not_asked(attrs: &mut Map<String, Value>, targets: &[Target<'_>]) {
    for t in targets {
        if attr(attrs, &status_key(t)).is_none() {
            set(attrs, &status_key(t), STATUS_NOT_ASKED);
        }
    }
}

pub(super) fn status_key(t: &Target<'_>) -> String {
    format!("{}_status", t.spec.name)
}

pub(super) fn retries_key(t: &Target<'_>) -> String {
    format!("{}_retries", t.spec.name)
}

/// The parts of the request that every response echoes.
pub(super) struct Turn {
    pub(super) active_contexts: Option<Value>,
    pub(super) originating_request_id: Option<String>,
    pub(super) intent_name: String,
    pub(super) confirmation_state: Option<String>,
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

    pub(super) fn close(
        &mut self,
        state: &str,
        attrs: Map<String, Value>,
        slots: Map<String, Value>,
        message: Option<String>,
    ) -> LexResponse {
        self.response(DialogActionType::Close, None, state, attrs, slots, message)
    }

    pub(super) fn elicit(
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
    pub(super) fn passthrough(
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
