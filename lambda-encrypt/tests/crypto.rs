//! Field encryption round trips and refusals with the raw AES keyring.

mod common;

use base64::Engine as _;
use common::{field_context, TempKey, CANARY_CARD};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError, FieldCrypto};
use lambda_encrypt::envelope::{Ciphertext, DecodeError, MAX_ENCODED_LEN};
use lambda_encrypt::plaintext::Plaintext;

fn canary() -> Plaintext {
    Plaintext::from_string(CANARY_CARD.to_owned())
}

fn assert_no_canary(err: &CryptoError) {
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(CANARY_CARD),
        "error text holds the plaintext: {shown}"
    );
}

#[tokio::test]
async fn a_value_round_trips_under_both_suites() {
    let key = TempKey::new("roundtrip");
    for suite in [
        AlgorithmSuite::CommittedSigned,
        AlgorithmSuite::CommittedUnsigned,
    ] {
        let crypto = key.crypto(suite).await;
        let ctx = field_context("contact-a", "creditcard");
        let ct = crypto.encrypt(&ctx, &canary()).await.unwrap();
        assert_eq!(ct.header().suite_id, suite.id());
        assert_eq!(ct.header().field_context(), Some(ctx.clone()));
        assert_eq!(ct.header().data_keys[0].provider_id, "callvault");
        assert_eq!(ct.header().data_keys[0].key_id, "roundtrip");
        let text = ct.to_base64();
        assert!(!text.contains(CANARY_CARD));
        eprintln!("{suite}: {} base64 characters", text.len());
        let parsed = Ciphertext::from_base64(&text).unwrap();
        let out = crypto.decrypt(&parsed, &ctx.to_expected()).await.unwrap();
        assert_eq!(out.plaintext.expose_str(), Some(CANARY_CARD));
        assert_eq!(out.suite_id, suite.id());
    }
}

#[tokio::test]
async fn a_decrypter_accepts_either_suite_whatever_it_encrypts_with() {
    let key = TempKey::new("mixed");
    let signed = key.crypto(AlgorithmSuite::CommittedSigned).await;
    let unsigned = key.crypto(AlgorithmSuite::CommittedUnsigned).await;
    let ctx = field_context("c1", "zipcode");
    let zip = Plaintext::from_string("98101".into());
    let ct = unsigned.encrypt(&ctx, &zip).await.unwrap();
    assert_eq!(
        signed
            .decrypt(&ct, &ctx.to_expected())
            .await
            .unwrap()
            .plaintext
            .expose(),
        b"98101"
    );
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_contact_or_field_is_refused() {
    let key = TempKey::new("ctx");
    let crypto = key.crypto(AlgorithmSuite::CommittedSigned).await;
    let ct = crypto
        .encrypt(&field_context("contact-a", "creditcard"), &canary())
        .await
        .unwrap();
    for (contact, field) in [("contact-b", "creditcard"), ("contact-a", "zipcode")] {
        let err = crypto
            .decrypt(&ct, &field_context(contact, field).to_expected())
            .await
            .unwrap_err();
        assert!(matches!(err, CryptoError::ContextMismatch), "{err:?}");
        assert_no_canary(&err);
    }
}

#[tokio::test]
async fn a_wrong_key_is_refused() {
    let crypto = TempKey::new("right")
        .crypto(AlgorithmSuite::CommittedSigned)
        .await;
    let ctx = field_context("c1", "creditcard");
    let ct = crypto.encrypt(&ctx, &canary()).await.unwrap();

    // Another key file under another name: no data key matches.
    let other = TempKey::new("other")
        .crypto(AlgorithmSuite::CommittedSigned)
        .await;
    let err = other.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey), "{err:?}");

    // Another key under the same name: the unwrap itself fails.
    let impostor = TempKey::new("right")
        .crypto(AlgorithmSuite::CommittedSigned)
        .await;
    let err = impostor.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    eprintln!("same-name wrong key: {err:?}");
    assert!(matches!(err, CryptoError::WrongKey), "{err:?}");
    assert_no_canary(&err);
}

#[tokio::test]
async fn every_tampered_byte_is_refused_without_a_panic() {
    let key = TempKey::new("tamper");
    for suite in [
        AlgorithmSuite::CommittedSigned,
        AlgorithmSuite::CommittedUnsigned,
    ] {
        let crypto = key.crypto(suite).await;
        let ctx = field_context("c1", "creditcard");
        let ct = crypto.encrypt(&ctx, &canary()).await.unwrap();
        let bytes = ct.as_bytes().to_vec();
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        // Flip one bit in every byte: each copy must be refused, typed, with no plaintext.
        for i in 0..bytes.len() {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            let result = match Ciphertext::from_bytes(t) {
                Err(e) => Err(CryptoError::from(e)),
                Ok(parsed) => crypto.decrypt(&parsed, &ctx.to_expected()).await,
            };
            match result {
                Ok(_) => panic!("{suite}: byte {i} flipped and still decrypted"),
                Err(e) => {
                    assert_no_canary(&e);
                    *kinds.entry(e.kind()).or_default() += 1;
                }
            }
        }
        eprintln!(
            "{suite}: {} tampered copies refused: {kinds:?}",
            bytes.len()
        );
    }
}

#[tokio::test]
async fn truncated_messages_are_refused() {
    let crypto = TempKey::new("trunc")
        .crypto(AlgorithmSuite::CommittedSigned)
        .await;
    let ctx = field_context("c1", "creditcard");
    let ct = crypto.encrypt(&ctx, &canary()).await.unwrap();
    let bytes = ct.as_bytes();
    for len in [0, 1, 10, bytes.len() / 2, bytes.len() - 40, bytes.len() - 1] {
        let result = match Ciphertext::from_bytes(bytes[..len].to_vec()) {
            Err(e) => Err(CryptoError::from(e)),
            Ok(parsed) => crypto.decrypt(&parsed, &ctx.to_expected()).await,
        };
        let err = result.expect_err("a truncated message decrypted");
        assert_no_canary(&err);
        if len == bytes.len() - 1 {
            eprintln!("truncated by one byte: {err:?}");
        }
    }
}

#[tokio::test]
async fn non_base64_and_oversized_text_give_typed_errors() {
    assert_eq!(Ciphertext::from_base64("%%%"), Err(DecodeError::NotBase64));
    let huge = base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_ENCODED_LEN]);
    assert!(matches!(
        Ciphertext::from_base64(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    let plain = base64::engine::general_purpose::STANDARD.encode(CANARY_CARD);
    let err = Ciphertext::from_base64(&plain).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(CANARY_CARD));
}

#[tokio::test]
async fn oversized_plaintext_is_not_encrypted() {
    let crypto = TempKey::new("big")
        .crypto(AlgorithmSuite::CommittedUnsigned)
        .await;
    let err = crypto
        .encrypt(
            &field_context("c1", "creditcard"),
            &Plaintext::new(vec![b'1'; 10_000]),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::PlaintextTooLarge { .. }));
}

#[tokio::test]
async fn legacy_style_contexts_can_be_expected_exactly() {
    // The console's legacy mode passes an arbitrary exact context.
    use lambda_encrypt::context::ExpectedContext;
    let crypto = TempKey::new("legacy")
        .crypto(AlgorithmSuite::CommittedSigned)
        .await;
    let ctx = field_context("c1", "creditcard");
    let ct = crypto.encrypt(&ctx, &canary()).await.unwrap();
    let legacy =
        ExpectedContext::from_pairs([("stage", "dev"), ("name", "encryption"), ("token", "t")]);
    assert!(matches!(
        crypto.decrypt(&ct, &legacy).await,
        Err(CryptoError::ContextMismatch)
    ));
}

#[tokio::test]
async fn a_missing_key_file_is_a_configuration_error() {
    let spec = "raw-aes:/nonexistent/dir/k.key".parse().unwrap();
    let err = FieldCrypto::from_spec(&spec, AlgorithmSuite::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "keyring_config");
}
