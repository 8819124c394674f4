//! Amazon Lex V2 code-hook event and response, as documented for Lambda
//! integration (`aws_lambda_events` only covers Lex V1).
//!
//! Parsing is lenient: unknown fields are ignored and optional parts may be
//! absent or null. Fields that carry what the caller said (`inputTranscript`,
//! `rawInputTranscript`, `interpretations`, `transcriptions`,
//! `proposedNextState`) are deliberately not read at all. No type here derives
//! `Debug` over slot contents.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LexEvent {
    #[serde(default)]
    pub message_version: Option<String>,
    #[serde(default)]
    pub invocation_source: Option<String>,
    #[serde(default)]
    pub input_mode: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub session_state: Option<SessionState>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    #[serde(default)]
    pub session_attributes: Option<Map<String, Value>>,
    #[serde(default)]
    pub active_contexts: Option<Value>,
    #[serde(default)]
    pub intent: Option<Intent>,
    #[serde(default)]
    pub originating_request_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    #[serde(default)]
    pub name: Option<String>,
    /// Slot name to slot; a slot not yet filled is `null`.
    #[serde(default)]
    pub slots: Option<Map<String, Value>>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub confirmation_state: Option<String>,
}

impl fmt::Debug for Intent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intent")
            .field("name", &self.name)
            .field(
                "slots",
                &self.slots.as_ref().map(|s| s.keys().collect::<Vec<_>>()),
            )
            .field("state", &self.state)
            .finish()
    }
}

/// What a slot holds, read without copying it into anything printable.
pub enum SlotText<'a> {
    /// Not filled (`null`, absent, or no value).
    Missing,
    /// Filled, but not as a scalar text value (a list, a number, an object
    /// of the wrong shape).
    Unreadable,
    Text(&'a str),
}

/// Reads a Lex V2 slot: `interpretedValue`, else `originalValue`.
pub fn slot_text(slot: Option<&Value>) -> SlotText<'_> {
    let slot = match slot {
        None | Some(Value::Null) => return SlotText::Missing,
        Some(Value::Object(slot)) => slot,
        Some(_) => return SlotText::Unreadable,
    };
    // Lex documents List and Composite slots too; a capture slot is always a
    // scalar, so anything else is refused rather than guessed at.
    let scalar = match slot.get("shape") {
        None | Some(Value::Null) => true,
        Some(Value::String(shape)) => shape == "Scalar",
        Some(_) => false,
    };
    let has = |key: &str| match slot.get(key) {
        None | Some(Value::Null) => false,
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    };
    if !scalar || has("values") || has("subSlots") {
        return SlotText::Unreadable;
    }
    let value = match slot.get("value") {
        None | Some(Value::Null) => return SlotText::Missing,
        Some(Value::Object(value)) => value,
        Some(_) => return SlotText::Unreadable,
    };
    for key in ["interpretedValue", "originalValue"] {
        match value.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => return SlotText::Text(s),
            None | Some(Value::Null) | Some(Value::String(_)) => {}
            Some(_) => return SlotText::Unreadable,
        }
    }
    SlotText::Missing
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LexResponse {
    pub session_state: ResponseSessionState,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSessionState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_contexts: Option<Value>,
    pub session_attributes: Map<String, Value>,
    pub dialog_action: DialogAction,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<ResponseIntent>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub originating_request_id: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, Clone, Copy)]
pub enum DialogActionType {
    Close,
    ElicitSlot,
    Delegate,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogAction {
    #[serde(rename = "type")]
    pub kind: DialogActionType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot_to_elicit: Option<String>,
}

/// The intent as returned. `slots` here never holds a captured field's value.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseIntent {
    pub name: String,
    pub slots: Map<String, Value>,
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_state: Option<String>,
}

impl fmt::Debug for ResponseIntent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseIntent")
            .field("name", &self.name)
            .field("slots", &self.slots.keys().collect::<Vec<_>>())
            .field("state", &self.state)
            .finish()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub content_type: &'static str,
    pub content: String,
}

impl Message {
    pub fn plain(content: impl Into<String>) -> Self {
        Self {
            content_type: "PlainText",
            content: content.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slot_text_prefers_the_interpreted_value() {
        let slot = json!({"shape":"Scalar","value":{"originalValue":"four one","interpretedValue":"41","resolvedValues":["41"]}});
        assert!(matches!(slot_text(Some(&slot)), SlotText::Text("41")));
        let slot = json!({"value":{"originalValue":"four one"}});
        assert!(matches!(slot_text(Some(&slot)), SlotText::Text("four one")));
    }

    #[test]
    fn slot_text_tolerates_odd_shapes() {
        assert!(matches!(slot_text(None), SlotText::Missing));
        assert!(matches!(slot_text(Some(&Value::Null)), SlotText::Missing));
        assert!(matches!(
            slot_text(Some(&json!({"value": null}))),
            SlotText::Missing
        ));
        assert!(matches!(
            slot_text(Some(&json!({"value": {}}))),
            SlotText::Missing
        ));
        assert!(matches!(
            slot_text(Some(&json!("4111"))),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(&json!({"value": "4111"}))),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(&json!({"value": {"interpretedValue": 4111}}))),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(
                &json!({"shape":"List","values":[{"value":{"interpretedValue":"1"}}]})
            )),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(
                &json!({"shape":"Composite","value":{"interpretedValue":"4111"},
                "subSlots":{"n":{"value":{"interpretedValue":"4111"}}}})
            )),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(
                &json!({"shape":"List","value":{"interpretedValue":"4111"}})
            )),
            SlotText::Unreadable
        ));
        assert!(matches!(
            slot_text(Some(
                &json!({"shape":7,"value":{"interpretedValue":"4111"}})
            )),
            SlotText::Unreadable
        ));
    }

    #[test]
    fn intent_debug_shows_slot_names_not_values() {
        let intent: Intent = serde_json::from_value(json!({
            "name": "CaptureCard",
            "slots": {"creditcard": {"value": {"interpretedValue": "4111111111111111"}}}
        }))
        .unwrap();
        let shown = format!("{intent:?}");
        assert!(shown.contains("creditcard"));
        assert!(!shown.contains("4111"));
    }
}
