//! Arbitrary bytes as a Lex V2 code-hook event, through the real handler.
//!
//! Each input is used twice:
//! 1. as the raw event (`Handler::handle_bytes`), exactly as the Lambda gets it;
//! 2. unless it is a JSON object, as what the caller said: the text goes into
//!    a well-formed event (per-field `creditcard` slot, or the generic
//!    `authNumber` slot, chosen by the first byte) and into `inputTranscript`.
//!
//! Invariants:
//! - never panics;
//! - no Luhn-valid 13-19 digit number found in the event (in any string, as
//!   a bare digit run or after the handler's own normalisation of spoken or
//!   grouped digits) appears in the serialized response, its `Debug`, the
//!   error, or the JSON log lines, unless the response is *meant* to echo it:
//!   session attributes, active contexts, slots the handler does not capture,
//!   the intent's name and states, and the session id (logged as the contact);
//! - (2 only) a value the card validator accepts is captured: the ciphertext in
//!   `creditcard` decrypts, under this contact and field, to the validator's
//!   canonical form; a refused value is never captured.

#![no_main]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};

use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::{AlgorithmSuite, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::handler::{Handler, HandlerConfig, HandlerError};
use lambda_encrypt::keyring::RAW_AES_NAMESPACE;
use lambda_encrypt::validate::{luhn_valid, normalise_digits, Validator};

const CONTACT: &str = "5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6";
/// A fixed, public test key: nothing is secret in a fuzz run.
const KEY: [u8; 32] = *b"callvault-fuzz-not-a-secret-key!";

struct Harness {
    rt: tokio::runtime::Runtime,
    handler: Handler,
    /// Same key as the handler's, to check what it captured.
    crypto: FieldCrypto,
    config: HandlerConfig,
    logs: LogBuffer,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        // The unsigned committed suite: the handler path is the same, and
        // encryption is about 4x cheaper than with the signed default.
        let crypto = || {
            rt.block_on(FieldCrypto::from_raw_aes_parts(
                RAW_AES_NAMESPACE,
                "fuzz",
                &KEY,
                AlgorithmSuite::CommittedUnsigned,
            ))
            .expect("raw AES keyring")
        };
        let config = HandlerConfig::default();
        let handler = Handler::new(config.clone(), crypto());
        let crypto = crypto();
        let logs = LogBuffer::default();
        // Every log line the handler writes (DEBUG for the crate, as in the tests).
        tracing::subscriber::set_global_default(lambda_encrypt::logging::subscriber(
            logs.clone(),
            tracing::level_filters::LevelFilter::DEBUG,
        ))
        .expect("global subscriber");
        Harness {
            rt,
            handler,
            crypto,
            config,
            logs,
        }
    })
}

#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn take(&self) -> String {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let text = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        text
    }
}

impl Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Every Luhn-valid 13-19 digit number in `s`: maximal ASCII digit runs, and
/// the whole string as the validator normalises it ("4111 1111-...",
/// "four one one ...", "double five").
fn card_numbers(s: &str, out: &mut Vec<String>) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let run = &bytes[start..i];
        if (13..=19).contains(&run.len()) && luhn_valid(run) {
            out.push(String::from_utf8_lossy(run).into_owned());
        }
    }
    if let Ok(digits) = normalise_digits(s) {
        if (13..=19).contains(&digits.len()) && luhn_valid(digits.as_bytes()) {
            out.push(digits.to_string());
        }
    }
}

fn strings_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => card_numbers(s, out),
        Value::Number(n) => card_numbers(&n.to_string(), out),
        Value::Array(items) => items.iter().for_each(|i| strings_in(i, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| {
            card_numbers(k, out);
            strings_in(v, out);
        }),
        _ => {}
    }
}

/// The slots the handler captures (and clears) in this event, mirroring
/// `Handler::targets`. Erring towards fewer slots only weakens the check.
fn targeted_slots(event: &Value, config: &HandlerConfig) -> Vec<String> {
    let state = &event["sessionState"];
    let Some(slots) = state["intent"]["slots"].as_object() else {
        return Vec::new();
    };
    let per_field: Vec<String> = config
        .fields
        .iter()
        .filter(|f| slots.contains_key(f.name.as_str()))
        .map(|f| f.name.to_string())
        .collect();
    if !per_field.is_empty() {
        return per_field;
    }
    let field = state["sessionAttributes"]["field"].as_str();
    if field.and_then(|f| config.fields.get(f)).is_none() {
        return Vec::new();
    }
    config
        .generic_slots
        .iter()
        .find(|s| slots.contains_key(s.as_str()))
        .cloned()
        .or_else(|| {
            (slots.len() == 1)
                .then(|| slots.keys().next().cloned())
                .flatten()
        })
        .into_iter()
        .collect()
}

/// What the handler may legitimately echo: the session state minus the
/// captured slots, and the session id.
fn echoable(event: &Value, config: &HandlerConfig) -> String {
    let mut state = event.get("sessionState").cloned().unwrap_or(Value::Null);
    let targets = targeted_slots(event, config);
    if let Some(slots) = state
        .get_mut("intent")
        .and_then(|i| i.get_mut("slots"))
        .and_then(Value::as_object_mut)
    {
        for t in targets {
            slots.insert(t, Value::Null);
        }
    }
    let echo = json!({"sessionState": state, "sessionId": event.get("sessionId")});
    // Both the JSON form (response, logs) and the Debug form.
    format!("{echo} {echo:?}")
}

/// Runs one event; returns the serialized response when there is one.
fn run(h: &Harness, bytes: &[u8], event: Option<&Value>) -> Option<Value> {
    h.logs.take();
    let result = h.rt.block_on(h.handler.handle_bytes(bytes));
    let shown = match &result {
        Ok(r) => {
            let json = serde_json::to_string(r).expect("a response serializes");
            format!("{json} {r:?}")
        }
        Err(e) => {
            assert!(
                event.is_some() || *e == HandlerError::NotJson,
                "bytes that are not JSON must be refused as not_json, got {e:?}"
            );
            format!("{e} {e:?} {}", e.kind())
        }
    };
    let logs = h.logs.take();
    if let Some(event) = event {
        let mut secrets = Vec::new();
        strings_in(event, &mut secrets);
        let echo = echoable(event, &h.config);
        for secret in secrets.iter().filter(|s| !echo.contains(s.as_str())) {
            assert!(
                !shown.contains(secret.as_str()),
                "response holds card number {secret}: {shown}"
            );
            assert!(
                !logs.contains(secret.as_str()),
                "log holds card number {secret}: {logs}"
            );
        }
    }
    result
        .ok()
        .map(|r| serde_json::to_value(r).expect("a response is JSON"))
}

fn slot(text: &str) -> Value {
    json!({"shape": "Scalar", "value": {"originalValue": text, "interpretedValue": text, "resolvedValues": [text]}})
}

/// The caller's words in a well-formed event.
fn spoken(h: &Harness, generic: bool, text: &str) {
    let (attrs, slots) = if generic {
        (
            json!({"contactId": CONTACT, "field": "creditcard"}),
            json!({"authNumber": slot(text)}),
        )
    } else {
        (
            json!({"contactId": CONTACT}),
            json!({"creditcard": slot(text), "zipcode": null}),
        )
    };
    let event = json!({
        "messageVersion": "1.0",
        "invocationSource": "DialogCodeHook",
        "inputMode": "Speech",
        "sessionId": "lex-session-fuzz",
        "inputTranscript": text,
        "sessionState": {
            "sessionAttributes": attrs,
            "intent": {"name": "CapturePaymentDetails", "slots": slots, "state": "InProgress", "confirmationState": "None"}
        }
    });
    let bytes = serde_json::to_vec(&event).expect("event serializes");
    let response = run(h, &bytes, Some(&event)).expect("a well-formed event gets a response");
    let state = &response["sessionState"];
    let attrs: &Map<String, Value> = state["sessionAttributes"]
        .as_object()
        .expect("session attributes");
    let captured_slot = if generic { "authNumber" } else { "creditcard" };
    assert_eq!(
        state["intent"]["slots"][captured_slot],
        Value::Null,
        "the captured slot is cleared"
    );
    let expected = if text.trim().is_empty() {
        None
    } else {
        Some(Validator::Card.validate(text))
    };
    match expected {
        Some(Ok(plaintext)) => {
            assert_eq!(attrs["creditcard_status"], "captured", "{response}");
            let b64 = attrs["creditcard"].as_str().expect("ciphertext attribute");
            let ct = Ciphertext::from_base64(b64).expect("the handler's ciphertext parses");
            let ctx = FieldContext::new(
                ContactId::parse(CONTACT).expect("contact"),
                FieldName::parse("creditcard").expect("field"),
            );
            assert_eq!(ct.header().field_context(), Some(ctx.clone()));
            let out =
                h.rt.block_on(h.crypto.decrypt(&ct, &ctx.to_expected()))
                    .expect("the handler's ciphertext decrypts");
            assert!(
                out.plaintext.expose() == plaintext.expose(),
                "captured value is not the validator's canonical form"
            );
            if generic {
                assert_eq!(attrs["isValid"], "true");
            }
        }
        Some(Err(_)) => {
            assert_ne!(attrs.get("creditcard_status"), Some(&json!("captured")));
            assert!(attrs.get("creditcard").is_none(), "{response}");
        }
        None => {
            assert_eq!(state["dialogAction"]["type"], "ElicitSlot");
            assert!(attrs.get("creditcard").is_none());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let parsed: Option<Value> = serde_json::from_slice(data).ok();
    run(h, data, parsed.as_ref());
    if !matches!(parsed, Some(Value::Object(_))) && data.len() <= 1024 {
        let generic = data.first().is_some_and(|b| b & 1 == 1);
        spoken(h, generic, &String::from_utf8_lossy(data));
    }
});
