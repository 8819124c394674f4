//! Callers' stories, end to end. Each file in `events/conversations/` is what
//! one call produces, turn by turn. The harness plays Lex and the Connect flow
//! around the real Lambda binary (over a Lambda Runtime API stand-in):
//! - it builds each Lex V2 event from the turn and the previous answer, since
//!   Lex carries session attributes and slots from one turn to the next;
//! - each Lex block starts from the session attributes the flow passes
//!   (`$.ContactId`, `$.Attributes.<name>` resolved as Connect does);
//! - when a block ends, the flow's store step copies `<field>` and
//!   `<field>_status` into the contact attributes.
//!
//! The file's `stored` section is what the store step must have copied at the
//! end: a status for every field, and ciphertexts that decrypt to the spoken
//! values under the contact's and field's context. No answer and no log line
//! may hold anything the caller said. Every answer also validates against
//! botocore's Lex V2 runtime model (`tests/lex_model.py`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::runtime::{read_logs, spawn_lambda, FakeRuntimeApi};
use common::{events_dir, field_context, require_env, TempKey};
use lambda_encrypt::crypto::AlgorithmSuite;
use lambda_encrypt::envelope::Ciphertext;
use serde::Deserialize;
use serde_json::{json, Map, Value};

const DEFAULT_INTENT: &str = "CapturePaymentDetails";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Conversation {
    story: String,
    contact_id: String,
    /// `CALLVAULT_FIELDS` for the Lambda; the default when absent.
    #[serde(default)]
    fields: Option<String>,
    #[serde(default = "default_intent")]
    intent: String,
    /// The intent's slots, as the bot defines them.
    #[serde(default = "default_slots")]
    intent_slots: Vec<String>,
    blocks: Vec<Block>,
    stored: BTreeMap<String, Stored>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Block {
    /// The flow block's identifier, for messages.
    block: String,
    /// What the flow passes as `LexSessionAttributes`.
    lex_session_attributes: Map<String, Value>,
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Turn {
    /// What the caller said or keyed (the transcript Lex hands over).
    say: String,
    #[serde(default = "default_input_mode")]
    input_mode: String,
    #[serde(default = "default_source")]
    invocation_source: String,
    /// Slots Lex filled this turn, verbatim as Lex sends them.
    #[serde(default)]
    slots: Map<String, Value>,
    expect: Expect,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Expect {
    dialog_action: String,
    #[serde(default)]
    slot_to_elicit: Option<String>,
    intent_state: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    status: String,
    #[serde(default)]
    decrypts_to: Option<String>,
}

fn default_intent() -> String {
    DEFAULT_INTENT.to_owned()
}
fn default_slots() -> Vec<String> {
    vec!["creditcard".to_owned(), "zipcode".to_owned()]
}
fn default_input_mode() -> String {
    "Speech".to_owned()
}
fn default_source() -> String {
    "DialogCodeHook".to_owned()
}

fn conversations_dir() -> PathBuf {
    events_dir().join("conversations")
}

fn load(path: &Path) -> Conversation {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Everything the caller said, as it may appear in an event: the transcript
/// and every slot value. None of it may come back.
fn caller_secrets(conv: &Conversation) -> Vec<String> {
    fn leaves(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    if k != "shape" {
                        leaves(v, out);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| leaves(v, out)),
            Value::String(s) => out.push(s.clone()),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for turn in conv.blocks.iter().flat_map(|b| &b.turns) {
        out.push(turn.say.clone());
        leaves(&Value::Object(turn.slots.clone()), &mut out);
    }
    // Short strings ("one") say nothing about a leak; digit runs do.
    out.retain(|s| s.chars().filter(char::is_ascii_digit).count() >= 5 || s.len() >= 12);
    out.sort();
    out.dedup();
    out
}

/// Resolves the flow's attribute references the way Connect does.
fn resolve(
    attrs: &Map<String, Value>,
    contact_id: &str,
    contact: &Map<String, Value>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (k, v) in attrs {
        let value = match v.as_str() {
            Some("$.ContactId") => Some(Value::String(contact_id.to_owned())),
            Some(r) if r.starts_with("$.Attributes.") => {
                contact.get(&r["$.Attributes.".len()..]).cloned()
            }
            _ => Some(v.clone()),
        };
        if let Some(value) = value {
            out.insert(k.clone(), value);
        }
    }
    out
}

fn lex_event(
    conv: &Conversation,
    turn: &Turn,
    attrs: &Map<String, Value>,
    slots: &Map<String, Value>,
    intent_name: &str,
    n: usize,
) -> Value {
    let intent = json!({
        "name": intent_name,
        "slots": slots,
        "state": "InProgress",
        "confirmationState": "None",
    });
    let mut event = json!({
        "messageVersion": "1.0",
        "invocationSource": turn.invocation_source,
        "inputMode": turn.input_mode,
        "responseContentType": "text/plain; charset=utf-8",
        "sessionId": conv.contact_id,
        "inputTranscript": turn.say,
        "rawInputTranscript": turn.say,
        "bot": {
            "id": "CVBOT00001", "name": "callvault-capture", "aliasId": "CVALIAS001",
            "aliasName": "live", "localeId": "en_US", "version": "1"
        },
        "interpretations": [
            {"intent": intent, "nluConfidence": 1.0, "interpretationSource": "Lex"},
            {"intent": {"name": "FallbackIntent", "slots": {}, "state": "InProgress",
                        "confirmationState": "None"}, "interpretationSource": "Lex"}
        ],
        "requestAttributes": {"x-amz-lex:channels:platform": "Connect"},
        "sessionState": {
            "sessionAttributes": attrs,
            "activeContexts": [],
            "intent": intent,
            "originatingRequestId": format!("0b7c3a5e-8d1f-4c2a-9e6b-{n:012}"),
        },
    });
    if turn.input_mode == "Speech" {
        event["transcriptions"] = json!([{
            "transcription": turn.say,
            "transcriptionConfidence": 0.91,
            "resolvedContext": {"intent": intent_name},
            "resolvedSlots": turn.slots,
        }]);
    }
    event
}

struct Played {
    answers: Vec<(String, Value)>,
    contact: Map<String, Value>,
}

/// Plays one conversation through the real binary.
async fn play(name: &str, conv: &Conversation, key: &TempKey) -> Played {
    let api = FakeRuntimeApi::start(Vec::new());
    let logs_dir = tempfile::tempdir().unwrap();
    let keyring = format!("raw-aes:{}", key.path.display());
    let mut env = vec![("CALLVAULT_MAX_RETRIES", "2")];
    if let Some(f) = &conv.fields {
        env.push(("CALLVAULT_FIELDS", f.as_str()));
    }
    let mut child = spawn_lambda(&api, Some(&keyring), logs_dir.path(), &env);

    let mut answers = Vec::new();
    let mut contact = Map::new();
    let mut n = 0;
    for block in &conv.blocks {
        let mut attrs = resolve(&block.lex_session_attributes, &conv.contact_id, &contact);
        let mut slots: Map<String, Value> = conv
            .intent_slots
            .iter()
            .map(|s| (s.clone(), Value::Null))
            .collect();
        let mut intent_name = conv.intent.clone();
        let mut closed = false;
        for (t, turn) in block.turns.iter().enumerate() {
            let at = format!("{name} / {} / turn {}", block.block, t + 1);
            assert!(!closed, "{at}: the intent was already closed");
            for (k, v) in &turn.slots {
                slots.insert(k.clone(), v.clone());
            }
            let event = lex_event(conv, turn, &attrs, &slots, &intent_name, n);
            api.push(serde_json::to_vec(&event).unwrap());
            n += 1;
            let posts = api.wait_for_posts(n, Duration::from_secs(60));
            assert_eq!(
                posts.len(),
                n,
                "{at}: no answer; logs:\n{}",
                read_logs(logs_dir.path())
            );
            let (path, body, _) = &posts[n - 1];
            assert!(
                path.ends_with("/response"),
                "{at}: the function failed: {path} {}",
                String::from_utf8_lossy(body)
            );
            let answer: Value = serde_json::from_slice(body).unwrap();
            let state = &answer["sessionState"];
            assert_eq!(
                state["dialogAction"]["type"],
                turn.expect.dialog_action.as_str(),
                "{at}: {answer}"
            );
            assert_eq!(
                state["dialogAction"]["slotToElicit"].as_str(),
                turn.expect.slot_to_elicit.as_deref(),
                "{at}: {answer}"
            );
            assert_eq!(
                state["intent"]["state"],
                turn.expect.intent_state.as_str(),
                "{at}: {answer}"
            );
            attrs = state["sessionAttributes"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            slots = state["intent"]["slots"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            if let Some(name) = state["intent"]["name"].as_str() {
                intent_name = name.to_owned();
            }
            closed = turn.expect.dialog_action == "Close";
            answers.push((at, answer));
        }
        // The flow's store step: every exit of the Lex block passes it.
        for field in conv.stored.keys() {
            for key in [field.clone(), format!("{field}_status")] {
                if let Some(v) = attrs.get(&key) {
                    contact.insert(key, v.clone());
                }
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let logs = read_logs(logs_dir.path());
    for secret in caller_secrets(conv) {
        assert!(
            !logs.contains(&secret),
            "{name}: the logs hold {secret:?}:\n{logs}"
        );
        for (at, answer) in &answers {
            assert!(
                !answer.to_string().contains(&secret),
                "{at}: the answer holds {secret:?}: {answer}"
            );
        }
    }
    for line in std::fs::read_to_string(logs_dir.path().join("stdout.log"))
        .unwrap()
        .lines()
    {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "{name}: not a JSON log line: {line}"
        );
    }
    Played { answers, contact }
}

/// Writes the answers to a file and runs botocore's validator over them.
pub fn validate_with_botocore(answers: &[(String, Value)]) {
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("answers.json");
    let list: Vec<Value> = answers
        .iter()
        .map(|(name, answer)| json!({"name": name, "answer": answer}))
        .collect();
    std::fs::write(&file, serde_json::to_vec(&list).unwrap()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lex_model.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(&file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "answers do not validate against botocore's model:\n{text}"
    );
    eprintln!("{}", text.trim());
}

#[tokio::test]
async fn every_callers_story_ends_with_what_the_flow_stores() {
    let key = TempKey::new("conversations");
    let crypto = key.crypto(AlgorithmSuite::CommittedSigned).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(conversations_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "expected the six stories, found {}",
        files.len()
    );

    let mut all_answers = Vec::new();
    for path in &files {
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let conv = load(path);
        assert!(!conv.story.is_empty(), "{name}: say what the caller does");
        let played = play(&name, &conv, &key).await;

        let configured: Vec<String> = conv
            .fields
            .as_deref()
            .unwrap_or(lambda_encrypt::fields::DEFAULT_FIELDS)
            .split(',')
            .map(|f| f.split(':').next().unwrap().to_owned())
            .collect();
        for field in &configured {
            assert!(
                conv.stored.contains_key(field),
                "{name}: `stored` must give a status for {field}"
            );
        }
        for (field, want) in &conv.stored {
            let status = played
                .contact
                .get(&format!("{field}_status"))
                .and_then(Value::as_str);
            assert_eq!(
                status,
                Some(want.status.as_str()),
                "{name}: {field}_status; stored: {:?}",
                played.contact
            );
            let ciphertext = played.contact.get(field).and_then(Value::as_str);
            match &want.decrypts_to {
                Some(plain) => {
                    let ct = ciphertext
                        .unwrap_or_else(|| panic!("{name}: no ciphertext stored for {field}"));
                    let ctx = field_context(&conv.contact_id, field);
                    let got = crypto
                        .decrypt(&Ciphertext::from_base64(ct).unwrap(), &ctx.to_expected())
                        .await
                        .unwrap_or_else(|e| {
                            panic!("{name}: {field} does not decrypt under its context: {e}")
                        });
                    assert_eq!(
                        got.plaintext.expose_str(),
                        Some(plain.as_str()),
                        "{name}: {field}"
                    );
                    // The same ciphertext under another field's context is refused.
                    let other = field_context(&conv.contact_id, "otherfield");
                    assert!(crypto
                        .decrypt(&Ciphertext::from_base64(ct).unwrap(), &other.to_expected())
                        .await
                        .is_err());
                }
                None => assert!(
                    ciphertext.is_none(),
                    "{name}: {field} has a ciphertext but should not"
                ),
            }
        }
        all_answers.extend(played.answers);
    }
    validate_with_botocore(&all_answers);
}

/// The sample events, and hostile variants of them: shapes a real Lex never
/// sends. Each answer (not each refusal: a malformed event gets a runtime
/// error, not an answer) must still validate against the model.
#[tokio::test]
async fn answers_to_sample_and_hostile_events_validate_against_botocore() {
    use lambda_encrypt::handler::{Handler, HandlerConfig};
    let key = TempKey::new("hostile");
    let handler = Handler::new(
        HandlerConfig::default(),
        key.crypto(AlgorithmSuite::CommittedSigned).await,
    );
    let mut events: Vec<(String, Value)> = Vec::new();
    let mut samples: Vec<PathBuf> = std::fs::read_dir(events_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    samples.sort();
    for path in &samples {
        if let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()) {
            events.push((path.file_name().unwrap().to_string_lossy().into_owned(), v));
        }
    }
    let base: Value =
        serde_json::from_slice(&std::fs::read(events_dir().join("valid-card.json")).unwrap())
            .unwrap();
    let variant = |name: &str, f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        (format!("hostile: {name}"), v)
    };
    let card_slot = |v: Value| {
        move |e: &mut Value| e["sessionState"]["intent"]["slots"]["creditcard"] = v.clone()
    };
    events.extend([
        variant("non-string session attributes", &|e| {
            e["sessionState"]["sessionAttributes"] = json!({"contactId": "5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6", "n": 4111, "o": {"a": "b"}, "l": [1], "t": true, "z": null});
        }),
        variant("slot is a string", &card_slot(json!("4111111111111111"))),
        variant("slot is a number", &card_slot(json!(4111111111111111u64))),
        variant("slot is a list", &card_slot(json!(["4111111111111111"]))),
        variant("slot value is a string", &card_slot(json!({"value": "4111111111111111"}))),
        variant("list-shaped slot", &card_slot(json!({"shape": "List", "values": [{"shape": "Scalar", "value": {"interpretedValue": "4111111111111111"}}]}))),
        variant("composite slot", &card_slot(json!({"shape": "Composite", "subSlots": {"n": {"value": {"interpretedValue": "4111111111111111"}}}}))),
        variant("empty interpreted value", &card_slot(json!({"value": {"interpretedValue": "", "originalValue": "  "}}))),
        variant("huge value", &card_slot(json!({"value": {"interpretedValue": "4".repeat(100_000)}}))),
        variant("unknown intent state", &|e| e["sessionState"]["intent"]["state"] = json!("Bogus")),
        variant("unknown confirmation state", &|e| e["sessionState"]["intent"]["confirmationState"] = json!("Maybe")),
        variant("active contexts not a list", &|e| e["sessionState"]["activeContexts"] = json!("ctx")),
        variant("other slots of odd shapes", &|e| {
            e["sessionState"]["intent"]["slots"]["zipcode"] = json!("98101");
            e["sessionState"]["intent"]["slots"]["extra"] = json!(7);
        }),
        variant("no contact id anywhere", &|e| {
            e["sessionState"]["sessionAttributes"] = json!({});
            e["sessionId"] = json!("has spaces and / slashes");
        }),
        variant("another intent", &|e| {
            e["sessionState"]["intent"] = json!({"name": "CheckBalance", "slots": {"account": null, "x": "y"}, "state": "Nope"});
        }),
        variant("fulfillment with nothing filled", &|e| {
            e["invocationSource"] = json!("FulfillmentCodeHook");
            e["sessionState"]["intent"]["slots"] = json!({"creditcard": null, "zipcode": null});
        }),
        variant("generic slot without field", &|e| {
            e["sessionState"]["intent"] = json!({"name": "inputValid", "slots": {"authNumber": {"value": {"interpretedValue": "4111111111111111"}}}, "state": "InProgress"});
        }),
        variant("generic slot with unknown field", &|e| {
            e["sessionState"]["sessionAttributes"]["field"] = json!("password");
            e["sessionState"]["intent"] = json!({"name": "inputValid", "slots": {"authNumber": {"value": {"interpretedValue": "4111111111111111"}}}, "state": "InProgress"});
        }),
    ]);
    let mut answers = Vec::new();
    for (name, event) in events {
        if let Ok(answer) = handler.handle(event).await {
            let answer = serde_json::to_value(answer).unwrap();
            let text = answer.to_string();
            assert!(
                !text.contains("4111111111111111"),
                "{name}: the answer holds the card: {text}"
            );
            answers.push((name, answer));
        }
    }
    assert!(answers.len() >= 20, "only {} answers", answers.len());
    validate_with_botocore(&answers);
}
