//! A keypad reveal's decrypt (Amazon Connect's Store-customer-input message:
//! RSA-OAEP-SHA512 unwrap of a 4096-bit key, suite 0x0378, validator) beside
//! the Lex path's (raw AES unwrap, committed signed suite 0x0578, context
//! check), warm, one message each.
//!
//!     cargo bench --workspace --locked --bench keypad

use std::hint::black_box;

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{
    EsdkAlgorithmSuiteId, EsdkCommitmentPolicy, PaddingScheme,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::{esdk_client_with_policy, AlgorithmSuite, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::keypad::{parse_key_specs, KeypadKeys, CONNECT_PROVIDER_ID};
use lambda_encrypt::keyring::{generate_raw_aes_key_file, KeyringSpec};
use lambda_encrypt::plaintext::Plaintext;
use lambda_encrypt::validate::Validator;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};

const KEY_ID: &str = "6f1c3c52-7a8e-4f7d-9a43-2b1d1e0c9f10";
const CARD: &str = "4111111111111111";

/// A message shaped as Connect writes it, made with the SDK's own encrypt.
async fn connect_message(private_pem: &str) -> Ciphertext {
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(private_pem)
        .unwrap()
        .to_public_key()
        .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
        .unwrap();
    let mpl =
        mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build().unwrap()).unwrap();
    let keyring = mpl
        .create_raw_rsa_keyring()
        .key_namespace(CONNECT_PROVIDER_ID)
        .key_name(KEY_ID)
        .padding_scheme(PaddingScheme::OaepSha512Mgf1)
        .public_key(public.into_bytes())
        .send()
        .await
        .unwrap();
    let esdk = esdk_client_with_policy(EsdkCommitmentPolicy::ForbidEncryptAllowDecrypt).unwrap();
    let out = esdk
        .encrypt()
        .plaintext(CARD.as_bytes().to_vec())
        .keyring(keyring)
        .algorithm_suite_id(EsdkAlgorithmSuiteId::AlgAes256GcmIv12Tag16HkdfSha384EcdsaP384)
        .send()
        .await
        .unwrap();
    Ciphertext::from_bytes(out.ciphertext.unwrap().into_inner()).unwrap()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // The keypad path.
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/connect-keys/test-rsa4096.pem"
    );
    let pem_path = dir.path().join("connect.pem");
    std::fs::copy(fixture, &pem_path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pem_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let specs = parse_key_specs(&format!("{KEY_ID}={}", pem_path.display())).unwrap();
    let keys = rt.block_on(KeypadKeys::load(&specs)).unwrap();
    let keypad_message = rt.block_on(connect_message(&std::fs::read_to_string(fixture).unwrap()));
    assert_eq!(keypad_message.header().suite_id, 0x0378);

    // The Lex path.
    let aes = dir.path().join("bench.key");
    generate_raw_aes_key_file(&aes).unwrap();
    let spec = KeyringSpec::RawAes { path: aes };
    let crypto = rt
        .block_on(FieldCrypto::from_spec(
            &spec,
            AlgorithmSuite::CommittedSigned,
            None,
        ))
        .unwrap();
    let ctx = FieldContext::new(
        ContactId::parse("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6").unwrap(),
        FieldName::parse("creditcard").unwrap(),
    );
    let lex_message = rt
        .block_on(crypto.encrypt(&ctx, &Plaintext::from_string(CARD.to_owned())))
        .unwrap();
    let expected = ctx.to_expected();

    let mut group = c.benchmark_group("reveal_decrypt");
    group.throughput(Throughput::Elements(1));
    group.bench_function("keypad_connect_rsa4096_0x0378", |b| {
        b.iter(|| {
            let got = rt
                .block_on(keys.decrypt(black_box(&keypad_message), Validator::Card))
                .unwrap();
            black_box(got.plaintext.len())
        })
    });
    group.bench_function("lex_raw_aes_0x0578", |b| {
        b.iter(|| {
            let got = rt
                .block_on(crypto.decrypt(black_box(&lex_message), &expected))
                .unwrap();
            black_box(got.plaintext.len())
        })
    });
    group.finish();
}

criterion_group!(keypad, benches);
criterion_main!(keypad);
