//! The KMS keyring against moto's KMS over HTTP, with the real aws-sdk-kms
//! client (endpoint from AWS_ENDPOINT_URL, set by scripts/test).

mod common;

use common::{field_context, require_env, CANARY_CARD};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError, FieldCrypto};
use lambda_encrypt::keyring::KeyringSpec;
use lambda_encrypt::plaintext::Plaintext;

async fn sdk_config() -> Option<aws_config::SdkConfig> {
    require_env("AWS_ENDPOINT_URL")?;
    Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

async fn create_key(sdk: &aws_config::SdkConfig) -> String {
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms
        .create_key()
        .description("callvault test key")
        .send()
        .await
        .expect("CreateKey against moto");
    key.key_metadata().unwrap().arn().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_round_trips_through_kms_under_both_suites() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let arn = create_key(&sdk).await;
    let spec: KeyringSpec = format!("kms:{arn}").parse().unwrap();
    for suite in [
        AlgorithmSuite::CommittedSigned,
        AlgorithmSuite::CommittedUnsigned,
    ] {
        let crypto = FieldCrypto::from_spec(&spec, suite, Some(&sdk))
            .await
            .unwrap();
        let ctx = field_context("contact-kms", "creditcard");
        let ct = crypto
            .encrypt(&ctx, &Plaintext::from_string(CANARY_CARD.into()))
            .await
            .unwrap();
        let edk = &ct.header().data_keys[0];
        assert_eq!(
            (edk.provider_id.as_str(), edk.key_id.as_str()),
            ("aws-kms", arn.as_str())
        );
        eprintln!(
            "{suite} via KMS: {} base64 characters",
            ct.to_base64().len()
        );
        let out = crypto.decrypt(&ct, &ctx.to_expected()).await.unwrap();
        assert_eq!(out.plaintext.expose_str(), Some(CANARY_CARD));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_key_wraps_and_each_alone_can_decrypt() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let (a, b) = (create_key(&sdk).await, create_key(&sdk).await);
    let both: KeyringSpec = format!("kms:{a},{b}").parse().unwrap();
    let crypto = FieldCrypto::from_spec(&both, AlgorithmSuite::CommittedSigned, Some(&sdk))
        .await
        .unwrap();
    let ctx = field_context("contact-multi", "zipcode");
    let ct = crypto
        .encrypt(&ctx, &Plaintext::from_string("98101".into()))
        .await
        .unwrap();
    assert_eq!(ct.header().data_keys.len(), 2);
    for arn in [&a, &b] {
        let only: KeyringSpec = format!("kms:{arn}").parse().unwrap();
        let one = FieldCrypto::from_spec(&only, AlgorithmSuite::CommittedSigned, Some(&sdk))
            .await
            .unwrap();
        assert_eq!(
            one.decrypt(&ct, &ctx.to_expected())
                .await
                .unwrap()
                .plaintext
                .expose(),
            b"98101"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_listed_is_never_used() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let (a, other) = (create_key(&sdk).await, create_key(&sdk).await);
    let enc = FieldCrypto::from_spec(
        &format!("kms:{a}").parse().unwrap(),
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let ctx = field_context("contact-x", "creditcard");
    let ct = enc
        .encrypt(&ctx, &Plaintext::from_string(CANARY_CARD.into()))
        .await
        .unwrap();
    let dec = FieldCrypto::from_spec(
        &format!("kms:{other}").parse().unwrap(),
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let err = dec.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kms_enforces_the_context_too() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let arn = create_key(&sdk).await;
    let crypto = FieldCrypto::from_spec(
        &format!("kms:{arn}").parse().unwrap(),
        AlgorithmSuite::CommittedUnsigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let ct = crypto
        .encrypt(
            &field_context("contact-a", "creditcard"),
            &Plaintext::from_string(CANARY_CARD.into()),
        )
        .await
        .unwrap();
    let err = crypto
        .decrypt(&ct, &field_context("contact-b", "creditcard").to_expected())
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::ContextMismatch));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_kms_does_not_know_is_a_key_service_error() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let arn = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let crypto = FieldCrypto::from_spec(
        &format!("kms:{arn}").parse().unwrap(),
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let err = crypto
        .encrypt(
            &field_context("c", "creditcard"),
            &Plaintext::from_string(CANARY_CARD.into()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "key_service", "{err:?}");
    assert!(!format!("{err} {err:?}").contains(CANARY_CARD));
}
