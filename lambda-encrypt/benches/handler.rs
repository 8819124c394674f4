//! Warm-path benchmarks: the whole code hook (parse event, validate, encrypt
//! with raw AES, serialize response), encrypt alone and decrypt alone, for the
//! default signed suite (0x0578) and the unsigned committed suite (0x0478).
//!
//!     cargo bench -p lambda-encrypt --bench handler

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::{AlgorithmSuite, FieldCrypto};
use lambda_encrypt::handler::{Handler, HandlerConfig};
use lambda_encrypt::keyring::{generate_raw_aes_key_file, KeyringSpec};
use lambda_encrypt::plaintext::Plaintext;

const SUITES: [(AlgorithmSuite, &str); 2] = [
    (AlgorithmSuite::CommittedSigned, "signed-0x0578"),
    (AlgorithmSuite::CommittedUnsigned, "unsigned-0x0478"),
];

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("bench.key");
    generate_raw_aes_key_file(&key).unwrap();
    let spec = KeyringSpec::RawAes { path: key };
    let event = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/valid-card.json"
    ))
    .unwrap();
    let ctx = FieldContext::new(
        ContactId::parse("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6").unwrap(),
        FieldName::parse("creditcard").unwrap(),
    );

    for (suite, name) in SUITES {
        let crypto = rt
            .block_on(FieldCrypto::from_spec(&spec, suite, None))
            .unwrap();
        let handler = Handler::new(
            HandlerConfig::default(),
            rt.block_on(FieldCrypto::from_spec(&spec, suite, None))
                .unwrap(),
        );

        let mut group = c.benchmark_group(format!("handler/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("warm_invocation", |b| {
            b.iter(|| {
                let response = rt
                    .block_on(handler.handle_bytes(black_box(&event)))
                    .unwrap();
                black_box(serde_json::to_vec(&response).unwrap())
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("crypto/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("encrypt_16_digits", |b| {
            b.iter(|| {
                let p = Plaintext::from_string("4111111111111111".to_owned());
                black_box(rt.block_on(crypto.encrypt(&ctx, &p)).unwrap())
            })
        });
        let ct = rt
            .block_on(crypto.encrypt(&ctx, &Plaintext::from_string("4111111111111111".to_owned())))
            .unwrap();
        let expected = ctx.to_expected();
        group.bench_function("decrypt_16_digits", |b| {
            b.iter(|| {
                black_box(
                    rt.block_on(crypto.decrypt(black_box(&ct), &expected))
                        .unwrap(),
                )
            })
        });
        group.finish();
    }
}

criterion_group!(name = handler; config = Criterion::default().sample_size(200); targets = benches);
criterion_main!(handler);
