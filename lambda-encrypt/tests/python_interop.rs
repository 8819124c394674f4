//! Interoperability with the Python AWS Encryption SDK (PyPI
//! `aws-encryption-sdk`), both ways, with the same raw AES key file.

mod common;

use std::io::Write as _;
use std::process::{Command, Stdio};

use common::{field_context, require_env, sample_event, TempKey};
use lambda_encrypt::crypto::AlgorithmSuite;
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::handler::{Handler, HandlerConfig};

fn python(args: &[&str], stdin: &str) -> Option<std::process::Output> {
    let py = require_env("CALLVAULT_PYTHON")?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop.py");
    let mut child = Command::new(py)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[tokio::test]
async fn python_decrypts_what_the_handler_encrypts_under_both_suites() {
    for suite in [
        AlgorithmSuite::CommittedSigned,
        AlgorithmSuite::CommittedUnsigned,
    ] {
        let key = TempKey::new("interop-key");
        let handler = Handler::new(HandlerConfig::default(), key.crypto(suite).await);
        let response = serde_json::to_value(
            handler
                .handle(sample_event("valid-card.json"))
                .await
                .unwrap(),
        )
        .unwrap();
        let ciphertext = response["sessionState"]["sessionAttributes"]["creditcard"]
            .as_str()
            .unwrap();
        let contact = "5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6";
        let key_path = key.path.to_str().unwrap();

        let Some(out) = python(&["decrypt", key_path, contact, "creditcard"], ciphertext) else {
            return;
        };
        assert!(
            out.status.success(),
            "python decrypt failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "4111111111111111");

        // Python checks the context: the same ciphertext under another contact is refused.
        let out = python(
            &["decrypt", key_path, "another-contact", "creditcard"],
            ciphertext,
        )
        .unwrap();
        assert_eq!(
            out.status.code(),
            Some(3),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn rust_decrypts_what_python_encrypts() {
    let key = TempKey::new("from-python");
    let ctx = field_context("contact-py", "zipcode");
    let context_json = serde_json::to_string(&ctx.to_map()).unwrap();
    let Some(out) = python(
        &["encrypt", key.path.to_str().unwrap(), &context_json],
        "98101",
    ) else {
        return;
    };
    assert!(
        out.status.success(),
        "python encrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ct = Ciphertext::from_base64(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    assert_eq!(ct.header().suite_id, 0x0578, "Python's default suite");
    assert_eq!(ct.header().field_context(), Some(ctx.clone()));
    let crypto = key.crypto(AlgorithmSuite::CommittedSigned).await;
    let got = crypto.decrypt(&ct, &ctx.to_expected()).await.unwrap();
    assert_eq!(got.plaintext.expose(), b"98101");
    // And the context binding holds for foreign messages too.
    let other = field_context("contact-other", "zipcode").to_expected();
    assert!(crypto.decrypt(&ct, &other).await.is_err());
}
