//! Amazon Connect's keypad path ("Store customer input" with encryption):
//! messages made by the Python AWS Encryption SDK acting as Connect, the
//! message Connect itself produced, and the key files the console loads.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{field_context, require_env, TempKey, CANARY_CARD};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::keypad::{
    inspect, parse_key_specs, KeypadConfigError, KeypadError, KeypadKeys,
};
use lambda_encrypt::validate::{Rejection, Validator};

const KEY_A: &str = "6f1c3c52-7a8e-4f7d-9a43-2b1d1e0c9f10";
const KEY_B: &str = "b2d4e6f8-1a3c-4e5f-8a9b-0c1d2e3f4a5b";
const CONNECT_VECTOR_KEY: &str = "4cdb826a-24c9-443d-b78b-327c817073ce";

fn data(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(path)
}

/// Copies a fixture key to a private temporary file with the given mode.
fn key_file(dir: &Path, fixture: &str, mode: u32) -> PathBuf {
    let path = dir.join(fixture);
    std::fs::copy(data(&format!("connect-keys/{fixture}")), &path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    path
}

struct Keys {
    dir: tempfile::TempDir,
    keys: KeypadKeys,
}

/// KEY_A holds the 4096-bit fixture, KEY_B the 2048-bit one (rotation).
async fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let a = key_file(dir.path(), "test-rsa4096.pem", 0o600);
    let b = key_file(dir.path(), "test-rsa2048.pem", 0o400);
    let spec = format!("{KEY_A}={},{KEY_B}={}", a.display(), b.display());
    let (fields, keys) = KeypadKeys::from_config("keypad_card:card,keypad_zip:zip5", &spec)
        .await
        .unwrap();
    assert_eq!(
        fields.get("keypad_card").unwrap().validator,
        Validator::Card
    );
    Keys { dir, keys }
}

fn peer(args: &[&str], stdin: &[u8]) -> Option<std::process::Output> {
    let py = require_env("CALLVAULT_PYTHON")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/connect_peer.py");
    let mut child = Command::new(py)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "connect_peer.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out)
}

/// A message as Connect makes it, to the public key in `keyfile`.
fn connect_message(keyfile: &Path, key_id: &str, value: &str, extra: &[&str]) -> Option<String> {
    let mut args = vec!["encrypt", keyfile.to_str().unwrap(), key_id];
    args.extend(extra);
    let out = peer(&args, value.as_bytes())?;
    Some(String::from_utf8(out.stdout).unwrap())
}

#[tokio::test]
async fn rust_decrypts_what_the_python_esdk_encrypts_as_connect_does() {
    let k = keys().await;
    let a = data("connect-keys/test-rsa4096.pem");
    let Some(text) = connect_message(&a, KEY_A, "4111 1111 1111 1111", &[]) else {
        return;
    };
    let ct = Ciphertext::from_base64(&text).unwrap();
    assert_eq!(ct.header().suite_id, 0x0378);
    assert_eq!(ct.header().version, 1);
    let seen = inspect(&ct).unwrap();
    assert_eq!(seen.key_id, KEY_A);

    let got = k.keys.decrypt(&ct, Validator::Card).await.unwrap();
    // The validator's canonical form, not what was keyed.
    assert_eq!(got.plaintext.expose_str(), Some("4111111111111111"));
    assert_eq!(got.key_id.as_str(), KEY_A);
    assert_eq!(got.message_id, seen.message_id);
    assert_eq!(got.message_id.as_bytes().len(), 16);
    assert!(!format!("{got:?}").contains("4111"), "{got:?}");

    // The rotated key: a message for the other configured key id.
    let b = data("connect-keys/test-rsa2048.pem");
    let text = connect_message(&b, KEY_B, "98101", &[]).unwrap();
    let got = k.keys.decrypt_base64(&text, Validator::Zip5).await.unwrap();
    assert_eq!(got.plaintext.expose_str(), Some("98101"));
    assert_eq!(got.key_id.as_str(), KEY_B);
    // Two messages never share a message id.
    let again = connect_message(&b, KEY_B, "98101", &[]).unwrap();
    let again = k
        .keys
        .decrypt_base64(&again, Validator::Zip5)
        .await
        .unwrap();
    assert_ne!(again.message_id, got.message_id);
}

#[tokio::test]
async fn a_message_for_a_key_id_not_configured_is_refused_naming_that_id() {
    let k = keys().await;
    let a = data("connect-keys/test-rsa4096.pem");
    let Some(text) = connect_message(&a, "0badc0de-0000-4000-8000-000000000000", CANARY_CARD, &[])
    else {
        return;
    };
    let err = k
        .keys
        .decrypt_base64(&text, Validator::Card)
        .await
        .unwrap_err();
    assert!(matches!(err, KeypadError::UnknownKey(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("'0badc0de-0000-4000-8000-000000000000'"),
        "{err}"
    );
    // A configured id whose file holds another key pair: named, not a panic.
    let text = connect_message(&a, KEY_B, CANARY_CARD, &[]).unwrap();
    let err = k
        .keys
        .decrypt_base64(&text, Validator::Card)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeypadError::Unwrap(ref id) if id == KEY_B),
        "{err:?}"
    );
    assert_eq!(err.kind(), "wrong_key");
}

#[tokio::test]
async fn tampered_messages_are_refused_and_never_decrypt() {
    let k = keys().await;
    let a = data("connect-keys/test-rsa4096.pem");
    let Some(text) = connect_message(&a, KEY_A, CANARY_CARD, &[]) else {
        return;
    };
    let bytes = Ciphertext::from_base64(&text).unwrap().as_bytes().to_vec();
    let mut kinds = std::collections::BTreeSet::new();
    // Every 7th byte, and the last (the signature), one bit flipped.
    for i in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let Ok(ct) = Ciphertext::from_bytes(bad) else {
            continue; // the header no longer parses: refused earlier still
        };
        let err = k
            .keys
            .decrypt(&ct, Validator::Card)
            .await
            .expect_err(&format!("byte {i} flipped still decrypts"));
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(CANARY_CARD), "{shown}");
        kinds.insert(err.kind());
    }
    assert!(kinds.contains("authentication_failed"), "{kinds:?}");
    // Flipping the key id or provider makes it another key or no Connect message.
    assert!(kinds.is_subset(
        &[
            "authentication_failed",
            "wrong_key",
            "unknown_connect_key",
            "not_connect_message",
        ]
        .into()
    ));
}

#[tokio::test]
async fn messages_not_shaped_as_connect_writes_them_are_refused_before_any_key() {
    let k = keys().await;
    let a = data("connect-keys/test-rsa4096.pem");
    let Some(two) = connect_message(&a, KEY_A, CANARY_CARD, &["--extra-key", KEY_B]) else {
        return;
    };
    let err = k
        .keys
        .decrypt_base64(&two, Validator::Card)
        .await
        .unwrap_err();
    assert!(matches!(err, KeypadError::DataKeyCount(2)), "{err:?}");

    let other = connect_message(&a, KEY_A, CANARY_CARD, &["--provider", "SomeoneElse"]).unwrap();
    let err = k
        .keys
        .decrypt_base64(&other, Validator::Card)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeypadError::OtherProvider(ref p) if p == "SomeoneElse"),
        "{err:?}"
    );

    let bound = connect_message(&a, KEY_A, CANARY_CARD, &["--context", "contactId=c-1"]).unwrap();
    let err = k
        .keys
        .decrypt_base64(&bound, Validator::Card)
        .await
        .unwrap_err();
    assert!(matches!(err, KeypadError::UnexpectedContext), "{err:?}");

    // Over the 8 KiB rule for attribute text.
    let big = "1".repeat(7000);
    let huge = connect_message(&a, KEY_A, &big, &[]).unwrap();
    assert!(huge.len() > 8 * 1024);
    let err = k
        .keys
        .decrypt_base64(&huge, Validator::Card)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "oversized");
}

#[tokio::test]
async fn a_decrypted_value_must_pass_the_fields_validator() {
    let k = keys().await;
    let a = data("connect-keys/test-rsa4096.pem");
    // One digit off the canary: Luhn fails.
    let bad_card = format!("{}4", &CANARY_CARD[..15]);
    let Some(text) = connect_message(&a, KEY_A, &bad_card, &[]) else {
        return;
    };
    let err = k
        .keys
        .decrypt_base64(&text, Validator::Card)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeypadError::Invalid(Rejection::Luhn)),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains(&bad_card[..6]), "{shown}");

    let text = connect_message(&a, KEY_A, CANARY_CARD, &[]).unwrap();
    let err = k
        .keys
        .decrypt_base64(&text, Validator::Zip5)
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeypadError::Invalid(Rejection::WrongLength)),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(CANARY_CARD));
}

#[tokio::test]
async fn the_normal_path_refuses_both_connect_messages_and_weak_native_ones() {
    let k = keys().await;
    let aes = TempKey::new("weak-suite");
    let ctx = field_context("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6", "creditcard");
    let context_json = serde_json::to_string(&ctx.to_map()).unwrap();
    let Some(out) = peer(
        &["native-weak", aes.path.to_str().unwrap(), &context_json],
        CANARY_CARD.as_bytes(),
    ) else {
        return;
    };
    let weak = Ciphertext::from_base64(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    assert_eq!(weak.header().suite_id, 0x0378);
    assert_eq!(weak.header().field_context(), Some(ctx.clone()));

    // callvault's own fields keep REQUIRE_DECRYPT: the weak suite is refused...
    let crypto = aes.crypto(AlgorithmSuite::CommittedSigned).await;
    let err = crypto.decrypt(&weak, &ctx.to_expected()).await.unwrap_err();
    assert!(matches!(err, CryptoError::NonCommitting(0x0378)), "{err:?}");
    // ...and the keypad path takes only Connect's data key.
    let err = k.keys.decrypt(&weak, Validator::Card).await.unwrap_err();
    assert!(
        matches!(err, KeypadError::OtherProvider(ref p) if p == "callvault"),
        "{err:?}"
    );

    // A Connect message given to the normal path binds to no contact: refused.
    let a = data("connect-keys/test-rsa4096.pem");
    let text = connect_message(&a, KEY_A, CANARY_CARD, &[]).unwrap();
    let connect = Ciphertext::from_base64(&text).unwrap();
    let err = crypto
        .decrypt(&connect, &ctx.to_expected())
        .await
        .unwrap_err();
    assert!(matches!(err, CryptoError::ContextMismatch), "{err:?}");
}

#[tokio::test]
async fn the_message_connect_itself_produced_is_recognised_and_its_key_named() {
    let text = std::fs::read_to_string(data("connect-vectors/amazon-connect-message.b64")).unwrap();
    let ct = Ciphertext::from_base64(text.trim()).unwrap();
    let seen = inspect(&ct).unwrap();
    assert_eq!(seen.key_id, CONNECT_VECTOR_KEY);
    assert_eq!(seen.message_id.as_bytes().len(), 16);

    let k = keys().await;
    let err = k.keys.decrypt(&ct, Validator::Card).await.unwrap_err();
    assert!(matches!(err, KeypadError::UnknownKey(_)), "{err:?}");
    assert!(err.to_string().contains(CONNECT_VECTOR_KEY), "{err}");

    // Configured under its id with a key that is not Connect's: cannot unwrap.
    let path = key_file(k.dir.path(), "test-rsa2048.pem", 0o600);
    let spec = format!("{CONNECT_VECTOR_KEY}={}", path.display());
    let wrong = KeypadKeys::load(&parse_key_specs(&spec).unwrap())
        .await
        .unwrap();
    let err = wrong.decrypt(&ct, Validator::Card).await.unwrap_err();
    assert!(
        matches!(err, KeypadError::Unwrap(ref id) if id == CONNECT_VECTOR_KEY),
        "{err:?}"
    );
}

async fn load_one(dir: &Path, fixture: &str, mode: u32) -> Result<KeypadKeys, KeypadConfigError> {
    let path = key_file(dir, fixture, mode);
    KeypadKeys::load(&parse_key_specs(&format!("k1={}", path.display())).unwrap()).await
}

#[tokio::test]
async fn key_files_that_are_not_owner_only_pkcs8_rsa_of_2048_bits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ok = load_one(dir.path(), "test-rsa2048.pem", 0o600)
        .await
        .unwrap();
    assert_eq!(ok.key_ids().map(|k| k.as_str()).collect::<Vec<_>>(), ["k1"]);
    let shown = format!("{ok:?}");
    assert!(shown.contains("k1") && !shown.contains("MII"), "{shown}");

    for (fixture, mode, want) in [
        ("test-rsa2048.pem", 0o644, "connect_key_permissions"),
        ("test-rsa2048.pem", 0o640, "connect_key_permissions"),
        ("test-rsa1024.pem", 0o600, "connect_key_too_small"),
        ("test-ec-p256.pem", 0o600, "connect_key_not_rsa"),
        ("test-rsa2048-pkcs1.pem", 0o600, "connect_key_format"),
        ("README.md", 0o600, "connect_key_format"),
    ] {
        let sub = tempfile::tempdir().unwrap();
        let err = load_one(sub.path(), fixture, mode).await.unwrap_err();
        assert_eq!(err.kind(), want, "{fixture} {mode:o}: {err}");
        // The message names the file and the key id, never key material.
        let shown = format!("{err} {err:?}");
        assert!(shown.contains(fixture) && shown.contains("k1"), "{shown}");
        assert!(!shown.contains("MII"), "{shown}");
    }
    let err = KeypadKeys::load(&parse_key_specs("k1=/nonexistent/key.pem").unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "connect_key_read");
    let err = KeypadKeys::from_config("keypad_card:card", "")
        .await
        .unwrap_err();
    assert!(matches!(err, KeypadConfigError::FieldsWithoutKeys), "{err}");
    let err = KeypadKeys::from_config("keypad_card:card", "k1=/a,k1=/b")
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeypadConfigError::DuplicateKeyId { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn the_certificate_connect_key_new_writes_carries_its_key_pair() {
    use lambda_encrypt::keypad::keygen::generate_connect_key;
    let files = generate_connect_key(2028, 2, 29).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private.pem");
    lambda_encrypt::keyring::write_private_file(&private, files.private_pem.as_bytes()).unwrap();
    let public = dir.path().join("public.pem");
    std::fs::write(&public, &files.public_pem).unwrap();
    let certificate = dir.path().join("certificate.pem");
    std::fs::write(&certificate, &files.certificate_pem).unwrap();

    // An independent parser (Python's `cryptography`): one key pair in the
    // three files, the certificate self-signed by it.
    let paths = [&certificate, &public, &private].map(|p| p.to_str().unwrap().to_owned());
    let Some(out) = peer(&["check-cert", &paths[0], &paths[1], &paths[2]], b"") else {
        return;
    };
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "ok 4096 bits"
    );

    // The Python ESDK, as Connect, encrypts to the certificate's key; the
    // console's loader takes private.pem and decrypts.
    let text = connect_message(&certificate, KEY_A, "4111111111111111", &[]).unwrap();
    let spec = format!("{KEY_A}={}", private.display());
    let (_, keys) = KeypadKeys::from_config("keypad_card:card", &spec)
        .await
        .unwrap();
    let got = keys.decrypt_base64(&text, Validator::Card).await.unwrap();
    assert_eq!(got.plaintext.expose_str(), Some("4111111111111111"));
    assert_eq!(got.key_id.as_str(), KEY_A);

    // A certificate of another key pair is told apart.
    let other = generate_connect_key(2028, 3, 1).unwrap();
    std::fs::write(&certificate, &other.certificate_pem).unwrap();
    let py = require_env("CALLVAULT_PYTHON").unwrap();
    let status = Command::new(py)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/connect_peer.py"
        ))
        .args(["check-cert", &paths[0], &paths[1], &paths[2]])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "a foreign certificate passed the check");
}
