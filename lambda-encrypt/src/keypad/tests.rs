use super::*;

/// A format-1 message header (no body) with the given suite, data keys and
/// context, as the ESDK message format reference lays it out.
fn header(suite: u16, edks: &[(&str, &[u8])], context: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![1u8, 0x80];
    out.extend(suite.to_be_bytes());
    out.extend([7u8; 16]); // message id
    let mut aad = Vec::new();
    if !context.is_empty() {
        aad.extend((context.len() as u16).to_be_bytes());
        for (k, v) in context {
            aad.extend((k.len() as u16).to_be_bytes());
            aad.extend(k.as_bytes());
            aad.extend((v.len() as u16).to_be_bytes());
            aad.extend(v.as_bytes());
        }
    }
    out.extend((aad.len() as u16).to_be_bytes());
    out.extend(aad);
    out.extend((edks.len() as u16).to_be_bytes());
    for (provider, info) in edks {
        out.extend((provider.len() as u16).to_be_bytes());
        out.extend(provider.as_bytes());
        out.extend((info.len() as u16).to_be_bytes());
        out.extend(*info);
        out.extend(512u16.to_be_bytes());
        out.extend([0u8; 512]);
    }
    out.push(2); // framed
    out.extend([0u8; 4]);
    out.push(12);
    out.extend(4096u32.to_be_bytes());
    out.extend([0u8; 12 + 16]);
    out
}

const KEY: &[u8] = b"4cdb826a-24c9-443d-b78b-327c817073ce";
const SDK_KEY: (&str, &str) = ("aws-crypto-public-key", "A1b2");

fn ct(bytes: Vec<u8>) -> Ciphertext {
    Ciphertext::from_bytes(bytes).unwrap()
}

#[test]
fn a_connect_shaped_header_is_recognised_with_its_key_and_message_id() {
    let m = inspect(&ct(header(0x0378, &[("AmazonConnect", KEY)], &[SDK_KEY]))).unwrap();
    assert_eq!(m.key_id, "4cdb826a-24c9-443d-b78b-327c817073ce");
    assert_eq!(m.message_id.as_bytes(), &[7u8; 16]);
    assert_eq!(m.message_id.to_hex(), "07".repeat(16));
}

#[test]
fn other_shapes_are_not_taken_for_connect_messages() {
    let two = [
        ("AmazonConnect", KEY),
        ("AmazonConnect", b"other".as_slice()),
    ];
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            header(0x0178, &[("AmazonConnect", KEY)], &[]),
            "WrongSuite(376)",
        ),
        (header(0x0378, &two, &[SDK_KEY]), "DataKeyCount(2)"),
        (
            header(0x0378, &[("callvault", b"demo-key")], &[SDK_KEY]),
            "OtherProvider(\"callvault\")",
        ),
        (
            header(
                0x0378,
                &[("AmazonConnect", KEY)],
                &[SDK_KEY, ("contactId", "c-1")],
            ),
            "UnexpectedContext",
        ),
    ];
    for (bytes, want) in cases {
        let err = inspect(&ct(bytes)).unwrap_err();
        assert_eq!(format!("{err:?}"), want);
        assert_eq!(err.kind(), "not_connect_message");
    }
}

#[test]
fn header_text_in_errors_is_printable_and_bounded() {
    let long = "é\n".repeat(300);
    let err = inspect(&ct(header(0x0378, &[(&long, KEY)], &[SDK_KEY]))).unwrap_err();
    let KeypadError::OtherProvider(shown) = &err else {
        panic!("{err:?}")
    };
    assert!(shown.len() <= 128 && shown.bytes().all(|b| b.is_ascii_graphic()));
}

#[tokio::test]
async fn a_message_for_a_key_not_held_names_that_key_before_any_key_is_used() {
    let keys = KeypadKeys::from_checked(Vec::new()).await.unwrap();
    assert!(keys.is_empty());
    let err = keys
        .decrypt(
            &ct(header(0x0378, &[("AmazonConnect", KEY)], &[SDK_KEY])),
            Validator::Card,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "unknown_connect_key");
    assert!(
        err.to_string()
            .contains("'4cdb826a-24c9-443d-b78b-327c817073ce'"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_messages_are_refused_before_parsing_the_body() {
    let keys = KeypadKeys::from_checked(Vec::new()).await.unwrap();
    let mut bytes = header(0x0378, &[("AmazonConnect", KEY)], &[SDK_KEY]);
    bytes.extend(vec![0u8; MAX_ENCODED_LEN]);
    let err = keys.decrypt(&ct(bytes), Validator::Card).await.unwrap_err();
    assert_eq!(err.kind(), "oversized");
    let text = "A".repeat(MAX_ENCODED_LEN + 4);
    let err = keys
        .decrypt_base64(&text, Validator::Card)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "oversized");
}

#[tokio::test]
async fn connects_timeout_value_is_no_input_not_a_broken_message() {
    let keys = KeypadKeys::from_checked(Vec::new()).await.unwrap();
    let err = keys
        .decrypt_base64("Timeout", Validator::Card)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_input");
    // Digits keyed into a plain attribute are not taken for a message.
    let err = keys
        .decrypt_base64("4111111111111111", Validator::Card)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "not_esdk_message");
    assert!(!format!("{err} {err:?}").contains("4111"));
}
