//! The Lex V2 code hook over the sample events and hostile ones. Every test
//! checks that the card number it sent appears in no response and no log line.

mod common;

use common::{field_context, sample_event, LogBuffer, TempKey, CANARY_CARD};
use lambda_encrypt::context::ExpectedContext;
use lambda_encrypt::crypto::{AlgorithmSuite, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::handler::{Handler, HandlerConfig, HandlerError};
use serde_json::{json, Value};

const SAMPLE_CARD: &str = "4111111111111111";
const CARD_WORDS: &str = "four one one one one one one one one";
const CONTACT: &str = "5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6";

struct Fixture {
    key: TempKey,
    handler: Handler,
    crypto: FieldCrypto,
    logs: LogBuffer,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_config(HandlerConfig::default()).await
    }

    async fn with_config(config: HandlerConfig) -> Self {
        let key = TempKey::new("handler");
        let handler = Handler::new(config, key.crypto(AlgorithmSuite::CommittedSigned).await);
        let crypto = key.crypto(AlgorithmSuite::CommittedSigned).await;
        Self {
            key,
            handler,
            crypto,
            logs: LogBuffer::default(),
        }
    }

    /// Runs one event; asserts that none of `secrets` leaks into the response or the logs.
    async fn run(&self, event: Value, secrets: &[&str]) -> Result<Value, HandlerError> {
        let _guard = self.logs.install();
        let result = self.handler.handle(event).await;
        let shown = match &result {
            Ok(r) => serde_json::to_string(r).unwrap() + &format!("{r:?}"),
            Err(e) => format!("{e} {e:?}"),
        };
        let logs = self.logs.text();
        for secret in secrets
            .iter()
            .chain([&CANARY_CARD, &SAMPLE_CARD, &CARD_WORDS])
        {
            assert!(!shown.contains(secret), "response holds {secret}: {shown}");
            assert!(!logs.contains(secret), "logs hold {secret}: {logs}");
        }
        result.map(|r| serde_json::to_value(r).unwrap())
    }

    async fn decrypt_attr(&self, response: &Value, contact: &str, field: &str) -> String {
        let text = response["sessionState"]["sessionAttributes"][field]
            .as_str()
            .unwrap();
        let ct = Ciphertext::from_base64(text).unwrap();
        let out = self
            .crypto
            .decrypt(&ct, &field_context(contact, field).to_expected())
            .await
            .unwrap();
        out.plaintext.expose_str().unwrap().to_owned()
    }
}

fn dialog_action(r: &Value) -> (&str, Option<&str>) {
    let a = &r["sessionState"]["dialogAction"];
    (a["type"].as_str().unwrap(), a["slotToElicit"].as_str())
}

fn attrs(r: &Value) -> &serde_json::Map<String, Value> {
    r["sessionState"]["sessionAttributes"].as_object().unwrap()
}

fn per_field_event(card: Value, attrs: Value) -> Value {
    json!({
        "messageVersion": "1.0",
        "invocationSource": "DialogCodeHook",
        "sessionId": "lex-session-1",
        "inputTranscript": CANARY_CARD,
        "sessionState": {
            "sessionAttributes": attrs,
            "intent": {"name": "CapturePaymentDetails", "slots": {"creditcard": card, "zipcode": null}, "state": "InProgress"}
        }
    })
}

fn canary_slot() -> Value {
    json!({"shape": "Scalar", "value": {"originalValue": CANARY_CARD, "interpretedValue": CANARY_CARD, "resolvedValues": [CANARY_CARD]}})
}

#[tokio::test]
async fn a_valid_card_is_encrypted_and_the_next_slot_elicited() {
    let f = Fixture::new().await;
    let r = f.run(sample_event("valid-card.json"), &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("zipcode")));
    assert_eq!(
        r["sessionState"]["intent"]["slots"]["creditcard"],
        Value::Null
    );
    assert_eq!(attrs(&r)["creditcard_status"], "captured");
    assert_eq!(f.decrypt_attr(&r, CONTACT, "creditcard").await, SAMPLE_CARD);
    assert!(r.get("messages").is_none());
    let logs = f.logs.text();
    assert!(logs.contains("\"outcome\":\"captured\""), "{logs}");
    assert!(
        logs.contains(CONTACT)
            && logs.contains("\"field\":\"creditcard\"")
            && logs.contains("duration_us")
    );
}

#[tokio::test]
async fn a_valid_zip_after_a_captured_card_fulfils_the_intent() {
    let f = Fixture::new().await;
    let r = f
        .run(sample_event("valid-zip.json"), &["98101"])
        .await
        .unwrap();
    assert_eq!(dialog_action(&r), ("Close", None));
    assert_eq!(r["sessionState"]["intent"]["state"], "Fulfilled");
    assert_eq!(attrs(&r)["zipcode_status"], "captured");
    assert_eq!(f.decrypt_attr(&r, CONTACT, "zipcode").await, "98101");
}

#[tokio::test]
async fn an_invalid_card_is_reprompted_then_a_valid_one_is_captured() {
    let f = Fixture::new().await;
    let r = f
        .run(
            sample_event("invalid-then-valid-1.json"),
            &["4111111111111112"],
        )
        .await
        .unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("creditcard")));
    assert_eq!(attrs(&r)["creditcard_retries"], "1");
    assert!(r["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("card number"));
    assert_eq!(
        r["sessionState"]["intent"]["slots"]["creditcard"],
        Value::Null
    );

    let mut next = sample_event("invalid-then-valid-2.json");
    next["sessionState"]["sessionAttributes"] = r["sessionState"]["sessionAttributes"].clone();
    let r = f.run(next, &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("zipcode")));
    assert_eq!(attrs(&r)["creditcard_status"], "captured");
    assert!(attrs(&r).get("creditcard_retries").is_none());
}

#[tokio::test]
async fn the_third_failure_closes_the_intent_as_failed() {
    let f = Fixture::new().await;
    let r = f
        .run(sample_event("third-failure.json"), &[])
        .await
        .unwrap();
    assert_eq!(dialog_action(&r), ("Close", None));
    assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
    assert_eq!(attrs(&r)["creditcard_status"], "failed");
    assert!(f.logs.text().contains("\"outcome\":\"failed\""));
}

#[tokio::test]
async fn retries_follow_the_configured_limit() {
    let f = Fixture::with_config(HandlerConfig {
        max_retries: 0,
        ..HandlerConfig::default()
    })
    .await;
    let r = f
        .run(
            per_field_event(json!({"value": {"interpretedValue": "12"}}), json!({})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
}

#[tokio::test]
async fn a_missing_slot_is_elicited_with_the_bots_own_prompt() {
    let f = Fixture::new().await;
    let r = f.run(sample_event("missing-slot.json"), &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("creditcard")));
    assert!(r.get("messages").is_none());
}

#[tokio::test]
async fn a_malformed_body_is_a_clean_error() {
    let f = Fixture::new().await;
    let err = f
        .run(sample_event("malformed-body.json"), &[])
        .await
        .unwrap_err();
    assert_eq!(err, HandlerError::Malformed);
    assert!(f.logs.text().contains("malformed_event"));
}

#[tokio::test]
async fn the_generic_slot_design_names_the_field_in_a_session_attribute() {
    let f = Fixture::new().await;
    let r = f
        .run(sample_event("generic-slot-card.json"), &[])
        .await
        .unwrap();
    assert_eq!(dialog_action(&r), ("Close", None));
    assert_eq!(r["sessionState"]["intent"]["state"], "Fulfilled");
    assert_eq!(
        r["sessionState"]["intent"]["slots"]["authNumber"],
        Value::Null
    );
    assert_eq!(attrs(&r)["isValid"], "true");
    assert_eq!(f.decrypt_attr(&r, CONTACT, "creditcard").await, SAMPLE_CARD);

    let mut bad = sample_event("generic-slot-card.json");
    bad["sessionState"]["intent"]["slots"]["authNumber"] =
        json!({"value": {"interpretedValue": "99"}});
    let r = f.run(bad, &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("authNumber")));
    assert_eq!(attrs(&r)["creditcard_retries"], "1");
}

#[tokio::test]
async fn a_fulfillment_hook_captures_a_zip_plus_four() {
    use lambda_encrypt::fields::Fields;
    let fields = Fields::parse("creditcard:card,zipcode:zip").unwrap();
    let f = Fixture::with_config(HandlerConfig {
        fields,
        ..HandlerConfig::default()
    })
    .await;
    let r = f
        .run(sample_event("fulfillment-zip.json"), &["98101"])
        .await
        .unwrap();
    assert_eq!(r["sessionState"]["intent"]["state"], "Fulfilled");
    assert_eq!(f.decrypt_attr(&r, CONTACT, "zipcode").await, "98101-1234");

    // The default zip5 field refuses ZIP+4, even at fulfillment.
    let f = Fixture::new().await;
    let r = f
        .run(sample_event("fulfillment-zip.json"), &["98101"])
        .await
        .unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("zipcode")));
}

#[tokio::test]
async fn the_contact_id_falls_back_to_the_lex_session_id() {
    let f = Fixture::new().await;
    let r = f
        .run(per_field_event(canary_slot(), json!({})), &[])
        .await
        .unwrap();
    assert_eq!(
        f.decrypt_attr(&r, "lex-session-1", "creditcard").await,
        CANARY_CARD
    );
    // And the ciphertext is bound to that contact only.
    let ct = Ciphertext::from_base64(attrs(&r)["creditcard"].as_str().unwrap()).unwrap();
    let other = field_context("another-contact", "creditcard").to_expected();
    assert!(f.crypto.decrypt(&ct, &other).await.is_err());
}

#[tokio::test]
async fn a_hostile_contact_id_fails_closed_without_encrypting() {
    let f = Fixture::new().await;
    for bad in [
        "../../etc/passwd",
        "<script>alert(1)</script>",
        "",
        &"x".repeat(500),
    ] {
        let r = f
            .run(
                per_field_event(canary_slot(), json!({"contactId": bad})),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
        assert_eq!(attrs(&r)["creditcard_status"], "error");
        assert!(attrs(&r).get("creditcard").is_none());
    }
    assert!(f.logs.text().contains("invalid_contact_id"));
}

#[tokio::test]
async fn unknown_intents_and_fields_pass_through_untouched() {
    let f = Fixture::new().await;
    let event = json!({
        "invocationSource": "DialogCodeHook",
        "sessionId": "s",
        "sessionState": {
            "sessionAttributes": {"foo": "bar"},
            "intent": {"name": "CheckBalance", "slots": {"accountType": {"value": {"interpretedValue": "savings"}}}, "state": "InProgress"}
        }
    });
    let r = f.run(event.clone(), &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("Delegate", None));
    assert_eq!(
        r["sessionState"]["intent"]["slots"],
        event["sessionState"]["intent"]["slots"]
    );
    assert_eq!(attrs(&r)["foo"], "bar");
}

/// Asserts the generic slot came back cleared and the intent Failed, with no
/// digit anywhere in the response.
fn assert_failed_closed(r: &Value) {
    assert_eq!(dialog_action(r), ("Close", None));
    assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
    assert_eq!(
        r["sessionState"]["intent"]["slots"]["authNumber"],
        Value::Null
    );
    assert_eq!(attrs(r)["isValid"], "false");
    let mut shown = r.clone();
    // The contact id and request id are ours, not the caller's.
    shown["sessionState"]["sessionAttributes"]
        .as_object_mut()
        .unwrap()
        .remove("contactId");
    shown["sessionState"]
        .as_object_mut()
        .unwrap()
        .remove("originatingRequestId");
    let text = shown.to_string();
    assert!(
        !text.chars().any(|c| c.is_ascii_digit()),
        "response holds digits: {text}"
    );
}

#[tokio::test]
async fn a_generic_slot_without_a_field_attribute_fails_closed() {
    let f = Fixture::new().await;
    for source in ["DialogCodeHook", "FulfillmentCodeHook"] {
        let mut event = sample_event("generic-slot-card.json");
        event["invocationSource"] = json!(source);
        event["sessionState"]["sessionAttributes"]
            .as_object_mut()
            .unwrap()
            .remove("field");
        let r = f.run(event, &[]).await.unwrap();
        assert_failed_closed(&r);
        assert!(attrs(&r).get("creditcard").is_none());
        let logs = f.logs.text();
        assert!(
            logs.contains("\"error_kind\":\"missing_field_attribute\""),
            "{logs}"
        );
    }
}

#[tokio::test]
async fn a_generic_slot_with_an_unknown_field_attribute_fails_closed() {
    let f = Fixture::new().await;
    for field in [json!("ssn"), json!(""), json!("creditcard_status")] {
        let mut event = sample_event("generic-slot-card.json");
        event["sessionState"]["sessionAttributes"]["field"] = field;
        let r = f.run(event, &[]).await.unwrap();
        assert_failed_closed(&r);
        let logs = f.logs.text();
        assert!(
            logs.contains("\"error_kind\":\"unknown_field_attribute\""),
            "{logs}"
        );
        assert!(!logs.contains("ssn"), "the attribute is not echoed: {logs}");
    }
}

#[tokio::test]
async fn a_single_slot_named_otherwise_with_an_unknown_field_fails_closed() {
    let f = Fixture::new().await;
    let event = json!({
        "invocationSource": "DialogCodeHook",
        "sessionId": "s",
        "sessionState": {
            "sessionAttributes": {"field": "cvv"},
            "intent": {"name": "inputValid", "slots": {"digits": canary_slot()}, "state": "InProgress"}
        }
    });
    let r = f.run(event, &[]).await.unwrap();
    assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
    assert_eq!(r["sessionState"]["intent"]["slots"]["digits"], Value::Null);
}

#[tokio::test]
async fn events_missing_their_core_are_clean_errors() {
    let f = Fixture::new().await;
    let cases = [
        (
            json!({"invocationSource": "DialogCodeHook", "inputTranscript": CANARY_CARD}),
            HandlerError::MissingSessionState,
        ),
        (
            json!({"invocationSource": "DialogCodeHook", "sessionState": {}}),
            HandlerError::MissingIntent,
        ),
        (
            json!({"invocationSource": "DialogCodeHook", "sessionState": {"intent": {"slots": {}}}}),
            HandlerError::MissingIntent,
        ),
        (
            json!({"invocationSource": "Nonsense", "sessionState": {"intent": {"name": "x"}}}),
            HandlerError::UnsupportedInvocationSource,
        ),
        (
            json!({"sessionState": {"intent": {"name": "x"}}}),
            HandlerError::UnsupportedInvocationSource,
        ),
        (json!({"invocationSource": 7}), HandlerError::Malformed),
        (
            json!({"invocationSource": "DialogCodeHook", "sessionState": {"sessionAttributes": CANARY_CARD}}),
            HandlerError::Malformed,
        ),
        (
            json!({"invocationSource": "DialogCodeHook", "sessionState": {"intent": {"name": "x", "slots": [CANARY_CARD]}}}),
            HandlerError::Malformed,
        ),
        (json!(CANARY_CARD), HandlerError::Malformed),
        (json!([1, 2, 3]), HandlerError::Malformed),
        (Value::Null, HandlerError::Malformed),
    ];
    for (event, expected) in cases {
        assert_eq!(f.run(event, &[]).await.unwrap_err(), expected);
    }
}

#[tokio::test]
async fn slots_of_the_wrong_shape_are_reprompted_not_echoed() {
    let f = Fixture::new().await;
    for slot in [
        json!(CANARY_CARD),
        json!({"value": CANARY_CARD}),
        json!({"value": {"interpretedValue": 4929871234567893u64}}),
        json!({"shape": "List", "values": [{"value": {"interpretedValue": CANARY_CARD}}]}),
        json!({"value": {"interpretedValue": format!("{CANARY_CARD}\u{0000}")}}),
        json!({"value": {"interpretedValue": CANARY_CARD.repeat(100_000)}}),
    ] {
        let r = f
            .run(per_field_event(slot, json!({"contactId": "c-1"})), &[])
            .await
            .unwrap();
        assert_eq!(dialog_action(&r), ("ElicitSlot", Some("creditcard")));
        assert_eq!(
            r["sessionState"]["intent"]["slots"]["creditcard"],
            Value::Null
        );
    }
}

#[tokio::test]
async fn a_ten_megabyte_transcript_is_ignored() {
    let f = Fixture::new().await;
    let mut event = sample_event("valid-card.json");
    let huge = format!("{CANARY_CARD} ").repeat(10 * 1024 * 1024 / 17);
    event["inputTranscript"] = json!(huge);
    event["rawInputTranscript"] = json!(huge);
    let bytes = serde_json::to_vec(&event).unwrap();
    assert!(bytes.len() > 20_000_000);
    let _guard = f.logs.install();
    let r = f.handler.handle_bytes(&bytes).await.unwrap();
    let out = serde_json::to_string(&r).unwrap();
    assert!(!out.contains(CANARY_CARD) && !out.contains(SAMPLE_CARD));
    assert!(out.len() < 4_000);
}

#[tokio::test]
async fn bytes_that_are_not_json_are_a_clean_error() {
    let f = Fixture::new().await;
    let _guard = f.logs.install();
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"{".to_vec(),
        format!("{{\"inputTranscript\": \"{CANARY_CARD}\"").into_bytes(),
        br#"{"sessionId": "\ud800"}"#.to_vec(),
        br#"{"sessionId": "\x41"}"#.to_vec(),
        vec![0xff, 0xfe, b'{', b'}'],
        [
            format!("{{\"a\": \"{CANARY_CARD}").as_bytes(),
            &[0xff],
            b"\"}",
        ]
        .concat(),
    ];
    for bytes in cases {
        assert_eq!(
            f.handler.handle_bytes(&bytes).await.unwrap_err(),
            HandlerError::NotJson
        );
    }
    let logs = f.logs.text();
    assert!(
        !logs.contains(CANARY_CARD) && logs.contains("not_json"),
        "{logs}"
    );
}

#[tokio::test]
async fn garbage_retry_counters_do_not_break_the_dialog() {
    let f = Fixture::new().await;
    let r = f
        .run(
            per_field_event(
                json!({"value": {"interpretedValue": "1"}}),
                json!({"creditcard_retries": "lots"}),
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(attrs(&r)["creditcard_retries"], "1");
}

#[tokio::test]
async fn other_session_attributes_are_kept() {
    let f = Fixture::new().await;
    let r = f
        .run(
            per_field_event(canary_slot(), json!({"contactId": "c-2", "language": "en"})),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(attrs(&r)["language"], "en");
    assert_eq!(attrs(&r)["contactId"], "c-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_service_outage_closes_the_intent_with_a_generic_message() {
    use aws_config::retry::RetryConfig;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url("http://127.0.0.1:9")
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let spec = "kms:arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        .parse()
        .unwrap();
    let crypto = FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, Some(&sdk))
        .await
        .unwrap();
    let handler = Handler::new(HandlerConfig::default(), crypto);
    let logs = LogBuffer::default();
    let _guard = logs.install();
    let r = handler
        .handle(per_field_event(canary_slot(), json!({"contactId": "c-3"})))
        .await
        .unwrap();
    let r = serde_json::to_value(r).unwrap();
    assert_eq!(r["sessionState"]["intent"]["state"], "Failed");
    assert_eq!(attrs(&r)["creditcard_status"], "error");
    assert!(attrs(&r).get("creditcard").is_none());
    assert!(r["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("securely"));
    let text = logs.text();
    assert!(text.contains("\"error_kind\":\"key_service\""), "{text}");
    assert!(!text.contains(CANARY_CARD) && !r.to_string().contains(CANARY_CARD));
}

#[tokio::test]
async fn a_legacy_expected_context_never_matches_a_callvault_message() {
    let f = Fixture::new().await;
    let r = f
        .run(
            per_field_event(canary_slot(), json!({"contactId": "c-4"})),
            &[],
        )
        .await
        .unwrap();
    let ct = Ciphertext::from_base64(attrs(&r)["creditcard"].as_str().unwrap()).unwrap();
    let legacy =
        ExpectedContext::from_pairs([("stage", "dev"), ("name", "encryption"), ("token", "x")]);
    assert!(f.crypto.decrypt(&ct, &legacy).await.is_err());
    drop(f.key);
}

/// The flow's keypad-only retry (`callvault_keypad_only`): Lex V2 cannot
/// switch speech off, so a value that did not arrive as DTMF is refused
/// (not encrypted, not echoed) and the caller is asked for the keypad; a
/// keyed one is captured; without the attribute speech is taken as before.
#[tokio::test]
async fn on_the_keypad_only_retry_a_spoken_value_is_refused_and_a_keyed_one_captured() {
    let f = Fixture::new().await;
    let only = json!({"contactId": CONTACT, "callvault_keypad_only": "true"});
    for mode in [Some("Speech"), Some("Text"), None, Some("dtmf")] {
        let mut event = per_field_event(canary_slot(), only.clone());
        if let Some(mode) = mode {
            event["inputMode"] = json!(mode);
        }
        let r = f.run(event, &[]).await.unwrap();
        assert_eq!(
            dialog_action(&r),
            ("ElicitSlot", Some("creditcard")),
            "{mode:?}"
        );
        assert!(attrs(&r).get("creditcard").is_none(), "{mode:?}");
        assert_eq!(attrs(&r)["creditcard_retries"], "1");
        let said = r["messages"][0]["content"].as_str().unwrap();
        assert!(said.contains("keypad"), "{mode:?}: {said}");
        assert!(f.logs.text().contains("\"error_kind\":\"not_keyed\""));
    }
    let mut keyed = per_field_event(canary_slot(), only);
    keyed["inputMode"] = json!("DTMF");
    let r = f.run(keyed, &[]).await.unwrap();
    assert_eq!(dialog_action(&r), ("ElicitSlot", Some("zipcode")));
    assert_eq!(attrs(&r)["creditcard_status"], "captured");
    // Not a keypad-only block: speech is taken.
    let mut spoken = per_field_event(canary_slot(), json!({"contactId": CONTACT}));
    spoken["inputMode"] = json!("Speech");
    let r = f.run(spoken, &[]).await.unwrap();
    assert_eq!(attrs(&r)["creditcard_status"], "captured");
}
