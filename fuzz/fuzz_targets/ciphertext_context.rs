//! Arbitrary ciphertext (base64 text or raw ESDK message bytes) through the
//! envelope parser, the encryption-context checks and a real decrypt.
//!
//! Input layout: byte 0 selects the mode, the rest is the ciphertext.
//! - `mode & 1 == 0`: the rest is text for `Ciphertext::from_base64`;
//! - `mode & 1 == 1`: the rest is message bytes for `Ciphertext::from_bytes`;
//! - `(mode >> 1) & 7`: how to alter the message's own context to make a
//!   second, usually non-matching, expected context.
//!
//! Invariants:
//! - nothing panics;
//! - `from_bytes` and `parse_header` agree; base64 is canonical (what parses
//!   re-encodes to the same text) and round-trips;
//! - a parsed header is format 1 or 2, has data keys, and is committing exactly
//!   when it is format 2;
//! - `ExpectedContext::matches` is map equality once the ESDK's reserved
//!   `aws-crypto-` keys are dropped from the message's side, and
//!   `FieldContext::from_message_context` returns a context exactly when the
//!   user keys are callvault's three with valid values (and then it matches);
//! - `FieldCrypto::decrypt` refuses a mismatched context or a non-committing
//!   suite before any key is used, and succeeds only for the known authentic
//!   messages of the seed corpus (under the key that made them): arbitrary
//!   bytes never authenticate. The authentic seeds themselves must decrypt.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;

use lambda_encrypt::context::{
    ContactId, ExpectedContext, FieldContext, FieldName, CONTACT_ID_KEY, FIELD_KEY, PURPOSE,
    PURPOSE_KEY, RESERVED_PREFIX,
};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError, FieldCrypto};
use lambda_encrypt::envelope::{parse_header, Ciphertext, DecodeError, MAX_ENCODED_LEN};
use lambda_encrypt::keyring::RAW_AES_NAMESPACE;

/// The fixed, public key the callvault seeds were encrypted with.
const CALLVAULT_KEY: [u8; 32] = *b"callvault-fuzz-not-a-secret-key!";
/// The public ESDK test-vector key `aes-256` (keys.json of the vectors).
const VECTOR_KEY_B64: &str = "AAECAwQFBgcICRAREhMUFRYXGBkgISIjJCUmJygpMDE=";
const VECTOR_NAMESPACE: &str = "aws-raw-vectors-persistant";

/// Messages that must decrypt (first byte of each seed is the mode byte).
const AUTHENTIC: [&[u8]; 7] = [
    include_bytes!("../corpus/ciphertext_context/authentic-callvault-0478.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-callvault-0578.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-legacy-context-0478.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-vector-0478-ec2.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-vector-0578-ec2.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-vector-0478-ec0.bin"),
    include_bytes!("../corpus/ciphertext_context/authentic-vector-0578-ec0.bin"),
];

struct Harness {
    rt: tokio::runtime::Runtime,
    callvault: FieldCrypto,
    vectors: FieldCrypto,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let callvault = rt
            .block_on(FieldCrypto::from_raw_aes_parts(
                RAW_AES_NAMESPACE,
                "fuzz",
                &CALLVAULT_KEY,
                AlgorithmSuite::CommittedUnsigned,
            ))
            .expect("callvault keyring");
        let vector_key = base64::engine::general_purpose::STANDARD
            .decode(VECTOR_KEY_B64)
            .expect("vector key");
        let vectors = rt
            .block_on(FieldCrypto::from_raw_aes_parts(
                VECTOR_NAMESPACE,
                "aes-256",
                &vector_key,
                AlgorithmSuite::CommittedUnsigned,
            ))
            .expect("vector keyring");
        Harness {
            rt,
            callvault,
            vectors,
        }
    })
}

fn user_context(ctx: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    ctx.iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The reference semantics of `ExpectedContext::matches`.
fn should_match(expected: &ExpectedContext, ctx: &BTreeMap<String, String>) -> bool {
    *expected.as_map() == user_context(ctx)
}

/// The reference semantics of `FieldContext::from_message_context`.
fn should_be_field_context(ctx: &BTreeMap<String, String>) -> Option<FieldContext> {
    let user = user_context(ctx);
    let mut keys: Vec<&str> = user.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec![PURPOSE_KEY, CONTACT_ID_KEY, FIELD_KEY];
    want.sort_unstable();
    if keys != want || user[PURPOSE_KEY] != PURPOSE {
        return None;
    }
    Some(FieldContext::new(
        ContactId::parse(&user[CONTACT_ID_KEY]).ok()?,
        FieldName::parse(&user[FIELD_KEY]).ok()?,
    ))
}

/// A second expected context: the message's own, altered as `how` says.
fn altered(ctx: &BTreeMap<String, String>, how: u8) -> ExpectedContext {
    let mut map = user_context(ctx);
    match how {
        0 => {}
        1 => {
            let first = map.keys().next().cloned();
            if let Some(k) = first {
                map.remove(&k);
            }
        }
        2 => {
            map.insert("extra".into(), "x".into());
        }
        3 => {
            if let Some(v) = map.values_mut().next_back() {
                v.push('x');
            }
        }
        4 => {
            // A reserved key on the expected side can never be matched.
            map.insert(format!("{RESERVED_PREFIX}public-key"), "AAAA".into());
        }
        5 => {
            map = FieldContext::new(
                ContactId::parse("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6").expect("contact"),
                FieldName::parse("creditcard").expect("field"),
            )
            .to_expected()
            .as_map()
            .clone();
        }
        6 => map.clear(),
        _ => {
            map = [("stage", "dev"), ("name", "encryption"), ("token", "t")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        }
    }
    ExpectedContext::from_pairs(map)
}

fn decode(mode: u8, rest: &[u8]) -> Option<Ciphertext> {
    let direct = parse_header(rest);
    if mode & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        let ct = Ciphertext::from_base64(&text).ok()?;
        assert_eq!(ct.to_base64(), text, "base64 that parses is canonical");
        return Some(ct);
    }
    match Ciphertext::from_bytes(rest.to_vec()) {
        Ok(ct) => {
            assert_eq!(direct.as_ref().ok(), Some(ct.header()));
            if ct.to_base64().len() <= MAX_ENCODED_LEN {
                assert_eq!(Ciphertext::from_base64(&ct.to_base64()).as_ref(), Ok(&ct));
            }
            Some(ct)
        }
        Err(DecodeError::Empty) => {
            assert!(rest.is_empty());
            None
        }
        Err(DecodeError::Header(e)) => {
            assert_eq!(direct, Err(e));
            None
        }
        Err(e) => panic!("from_bytes failed with a text-only error: {e:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Some(ct) = decode(mode, rest) else {
        return;
    };
    let header = ct.header();
    assert!(matches!(header.version, 1 | 2));
    assert_eq!(header.is_committing(), header.version == 2);
    assert!(!header.data_keys.is_empty());
    assert_eq!(ct.fingerprint().len(), 16);

    let ctx = &header.encryption_context;
    let field_ctx = FieldContext::from_message_context(ctx);
    assert_eq!(field_ctx, should_be_field_context(ctx));
    assert_eq!(header.field_context(), field_ctx);
    if let Some(fc) = &field_ctx {
        assert!(fc.to_expected().matches(ctx));
    }
    let own = ExpectedContext::from_pairs(user_context(ctx));
    assert!(own.matches(ctx));
    let other = altered(ctx, (mode >> 1) & 7);
    assert_eq!(other.matches(ctx), should_match(&other, ctx));

    let h = harness();
    let authentic = AUTHENTIC.iter().any(|seed| &seed[1..] == ct.as_bytes());
    let mut decrypted = false;
    for crypto in [&h.callvault, &h.vectors] {
        if !other.matches(ctx) {
            let refused = h.rt.block_on(crypto.decrypt(&ct, &other));
            assert!(
                matches!(refused, Err(CryptoError::ContextMismatch)),
                "a mismatched context must be refused first: {refused:?}"
            );
        }
        match h.rt.block_on(crypto.decrypt(&ct, &own)) {
            Ok(out) => {
                assert!(
                    authentic,
                    "a message that is not a known authentic seed decrypted"
                );
                assert!(header.is_committing());
                assert!(own.matches(&out.encryption_context));
                decrypted = true;
            }
            Err(CryptoError::NonCommitting(id)) => {
                assert!(!header.is_committing());
                assert_eq!(id, header.suite_id);
            }
            Err(CryptoError::ContextMismatch) => panic!("the message's own context was refused"),
            Err(_) => {}
        }
    }
    assert!(!authentic || decrypted, "an authentic seed did not decrypt");
});
