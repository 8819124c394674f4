//! Period keyrings: `kms-period:` against moto's KMS (AWS_ENDPOINT_URL from
//! scripts/test) and `raw-aes-period:` on a temporary directory.
//!
//! moto does not enforce key states (it still decrypts with a key pending
//! deletion), so every refusal here comes from the keyring's own listing.

mod common;

use common::{field_context, require_env, sample_event, CANARY_CARD};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::handler::{Handler, HandlerConfig};
use lambda_encrypt::keyring::{generate_raw_aes_key_file, KeyringSpec};
use lambda_encrypt::period::{AliasPrefix, KeyState, Period, RawPeriodDir};
use lambda_encrypt::plaintext::Plaintext;

async fn sdk_config() -> Option<aws_config::SdkConfig> {
    require_env("AWS_ENDPOINT_URL")?;
    Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
}

/// A fresh prefix of this test's own (moto is shared by every test).
fn prefix() -> AliasPrefix {
    let n: u64 = rand::random();
    AliasPrefix::parse(&format!("alias/test-{n:016x}/fields")).unwrap()
}

/// A key aliased `<prefix>/<period>`: (key id, ARN).
async fn period_key(
    kms: &aws_sdk_kms::Client,
    prefix: &AliasPrefix,
    period: &str,
) -> (String, String) {
    let meta = kms.create_key().send().await.unwrap();
    let meta = meta.key_metadata().unwrap();
    kms.create_alias()
        .alias_name(prefix.period_alias(Period::parse(period).unwrap()))
        .target_key_id(meta.key_id())
        .send()
        .await
        .unwrap();
    (meta.key_id().to_owned(), meta.arn().unwrap().to_owned())
}

async fn point_current(kms: &aws_sdk_kms::Client, prefix: &AliasPrefix, key_id: &str, first: bool) {
    if first {
        kms.create_alias()
            .alias_name(prefix.current_alias())
            .target_key_id(key_id)
            .send()
            .await
            .unwrap();
    } else {
        kms.update_alias()
            .alias_name(prefix.current_alias())
            .target_key_id(key_id)
            .send()
            .await
            .unwrap();
    }
}

fn card_of(response: &impl serde::Serialize) -> Ciphertext {
    let v = serde_json::to_value(response).unwrap();
    Ciphertext::from_base64(
        v["sessionState"]["sessionAttributes"]["creditcard"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_encrypts_under_current_and_its_next_message_follows_a_roll() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let kms = aws_sdk_kms::Client::new(&sdk);
    let prefix = prefix();
    let (nov_id, nov_arn) = period_key(&kms, &prefix, "2026-11").await;
    let (dec_id, dec_arn) = period_key(&kms, &prefix, "2026-12").await;
    point_current(&kms, &prefix, &nov_id, true).await;

    let spec = KeyringSpec::KmsPeriod {
        prefix: prefix.clone(),
    };
    let crypto = FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, Some(&sdk))
        .await
        .unwrap();
    let handler = Handler::new(HandlerConfig::default(), crypto);
    let first = card_of(
        &handler
            .handle(sample_event("valid-card.json"))
            .await
            .unwrap(),
    );
    let edks = &first.header().data_keys;
    assert_eq!(edks.len(), 1);
    assert_eq!(
        (edks[0].provider_id.as_str(), edks[0].key_id.as_str()),
        ("aws-kms", nov_arn.as_str()),
        "the message names the period key's ARN, not the alias"
    );

    // A roll moves `current`: the same handler, without a restart, wraps
    // its next value with the new month's key.
    point_current(&kms, &prefix, &dec_id, false).await;
    let second = card_of(
        &handler
            .handle(sample_event("valid-card.json"))
            .await
            .unwrap(),
    );
    assert_eq!(second.header().data_keys[0].key_id, dec_arn);

    // The console's side names each value's period.
    let console = FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, Some(&sdk))
        .await
        .unwrap();
    let ctx = first.header().field_context().unwrap();
    for (ct, period) in [(&first, "2026-11"), (&second, "2026-12")] {
        let out = console.decrypt(ct, &ctx.to_expected()).await.unwrap();
        assert_eq!(out.plaintext.expose_str(), Some("4111111111111111"));
        let key = out.key.unwrap();
        assert_eq!(key.period.to_string(), period);
        assert_eq!(key.state, KeyState::Enabled);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_pending_deletion_is_refused_from_the_listing_though_moto_would_decrypt() {
    let Some(sdk) = sdk_config().await else {
        return;
    };
    let kms = aws_sdk_kms::Client::new(&sdk);
    let prefix = prefix();
    let (old_id, old_arn) = period_key(&kms, &prefix, "2024-01").await;
    let (now_id, _) = period_key(&kms, &prefix, "2026-12").await;
    point_current(&kms, &prefix, &now_id, true).await;
    // A value of the old period, wrapped directly by its key.
    let old = FieldCrypto::from_spec(
        &format!("kms:{old_arn}").parse().unwrap(),
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let ctx = field_context("contact-old", "creditcard");
    let ct = old
        .encrypt(&ctx, &Plaintext::from_string(CANARY_CARD.into()))
        .await
        .unwrap();

    let console = FieldCrypto::from_spec(
        &KeyringSpec::KmsPeriod {
            prefix: prefix.clone(),
        },
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let listing = console.refresh_period_keys().await.unwrap().unwrap();
    assert_eq!(listing.keys.len(), 2);
    assert_eq!(listing.current().unwrap().key_id, now_id);
    let got = console.decrypt(&ct, &ctx.to_expected()).await.unwrap();
    assert_eq!(got.key.unwrap().period.to_string(), "2024-01");

    kms.schedule_key_deletion()
        .key_id(&old_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    // moto still decrypts with it: the refusal below is the keyring's own.
    assert!(old.decrypt(&ct, &ctx.to_expected()).await.is_ok());
    console.refresh_period_keys().await.unwrap();
    let err = console.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    assert_eq!(err.kind(), "key_retired", "{err:?}");
    let CryptoError::KeyRetired(key) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(key.period.to_string(), "2024-01");
    assert!(matches!(
        key.state,
        KeyState::PendingDeletion { until_us: Some(_) }
    ));
    assert!(err.to_string().contains("2024-01") && err.to_string().contains("pending deletion"));
    assert!(!format!("{err} {err:?}").contains(CANARY_CARD));
    // Without decrypting, the console can say so on the page.
    let vk = console.value_key(&ct).await.unwrap().unwrap();
    assert!(vk.state.retired());

    // A key outside the prefix is never used, even if KMS would.
    let (_, stray_arn) = period_key(&kms, &self::prefix(), "2026-12").await;
    let stray = FieldCrypto::from_spec(
        &format!("kms:{stray_arn}").parse().unwrap(),
        AlgorithmSuite::CommittedSigned,
        Some(&sdk),
    )
    .await
    .unwrap();
    let foreign = stray
        .encrypt(&ctx, &Plaintext::from_string(CANARY_CARD.into()))
        .await
        .unwrap();
    let err = console
        .decrypt(&foreign, &ctx.to_expected())
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::WrongKey), "{err:?}");
}

#[tokio::test]
async fn raw_period_keys_wrap_by_month_and_a_destroyed_month_is_unrecoverable() {
    let dir = tempfile::tempdir().unwrap();
    let keys = RawPeriodDir::new(dir.path());
    let this = Period::now();
    let old = Period::parse("2024-03").unwrap();
    for p in [old, this] {
        generate_raw_aes_key_file(&keys.key_file(p)).unwrap();
    }
    let spec: KeyringSpec = format!("raw-aes-period:{}", dir.path().display())
        .parse()
        .unwrap();
    let crypto = FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, None)
        .await
        .unwrap();
    let ctx = field_context("contact-raw", "zipcode");
    let now_ct = crypto
        .encrypt(&ctx, &Plaintext::from_string("98101".into()))
        .await
        .unwrap();
    assert_eq!(now_ct.header().data_keys[0].key_id, this.to_string());
    let old_ct = crypto
        .encrypt_in_period(old, &ctx, &Plaintext::from_string("98102".into()))
        .await
        .unwrap();
    assert_eq!(old_ct.header().data_keys[0].key_id, "2024-03");
    let out = crypto.decrypt(&old_ct, &ctx.to_expected()).await.unwrap();
    assert_eq!(out.plaintext.expose(), b"98102");
    assert_eq!(out.key.unwrap().period, old);

    std::fs::remove_file(keys.key_file(old)).unwrap();
    let err = crypto
        .decrypt(&old_ct, &ctx.to_expected())
        .await
        .unwrap_err();
    let CryptoError::KeyRetired(key) = &err else {
        panic!("{err:?}")
    };
    assert_eq!((key.period, &key.state), (old, &KeyState::Deleted));
    // The other months are untouched.
    assert!(crypto.decrypt(&now_ct, &ctx.to_expected()).await.is_ok());
    // Without this month's file nothing is encrypted.
    std::fs::remove_file(keys.key_file(this)).unwrap();
    let err = crypto
        .encrypt(&ctx, &Plaintext::from_string("98101".into()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "no_current_key", "{err:?}");
}
