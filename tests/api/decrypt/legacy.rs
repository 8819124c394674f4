//! Ciphertexts left by the reference solution: a fixed `{stage, name, token}`
//! context, made here by another ESDK (Python's `aws-encryption-sdk`).

use std::io::Write as _;
use std::process::{Command, Stdio};

use callvault::auth::Role;
use callvault::config::parse_legacy_context;
use callvault::demo::demo_contact_id;
use reqwest::StatusCode;

use crate::helpers::*;

const LEGACY_CARD: &str = "5555555555554444";

/// Python encrypts `plaintext` with the raw AES key file under `context`.
fn python_encrypt(key: &std::path::Path, context: &str, plaintext: &str) -> Option<String> {
    let py = require_env("CALLVAULT_PYTHON")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lambda-encrypt/tests/interop.py"
    );
    let mut child = Command::new(py)
        .args([script, "encrypt", key.to_str().unwrap(), context])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(plaintext.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

async fn legacy_app(configured: &str) -> Option<TestApp> {
    // The key file must exist before the data is made: make it in a scratch
    // app, then reuse its directory layout through the modify hook.
    let context = r#"{"stage":"dev","name":"encryption","token":"t0k3n-reference"}"#;
    let configured = configured.to_owned();
    let mut made: Option<String> = None;
    let app = spawn_demo_app_custom(
        |data, dir| {
            let key = dir.join("demo-key.b64");
            made = python_encrypt(&key, context, LEGACY_CARD);
            if let Some(ct) = &made {
                data.contacts[0]
                    .attributes
                    .insert("encrypted_cc".into(), ct.clone());
            }
        },
        move |settings| {
            let legacy = parse_legacy_context(&configured).unwrap();
            settings.legacy_context = Some(legacy);
            settings.sensitive.insert("encrypted_cc".into());
        },
    )
    .await;
    made.map(|_| app)
}

#[tokio::test]
async fn a_legacy_ciphertext_decrypts_when_the_configured_context_matches_exactly() {
    let Some(app) = legacy_app("stage=dev,name=encryption,token=t0k3n-reference").await else {
        return;
    };
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(
        page.contains("other context"),
        "shown as ciphertext with a foreign context"
    );
    assert!(!page.contains(LEGACY_CARD));
    let r = app
        .post_form(
            &c,
            &format!("/contacts/{id}"),
            &format!("/contacts/{id}/decrypt"),
            &[("field", "encrypted_cc"), ("reason", "migration check")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.shows(LEGACY_CARD) && html.contains("legacy context"));
    let row = app.last_audit("decrypt").await.unwrap();
    assert!(row.detail.contains("legacy context"), "{}", row.detail);
    assert_audit_free_of(&app, LEGACY_CARD).await;
}

#[tokio::test]
async fn a_legacy_ciphertext_is_refused_when_the_context_differs() {
    for configured in [
        "stage=dev,name=encryption,token=another-token",
        "stage=prod,name=encryption,token=t0k3n-reference",
        "stage=dev,name=encryption",
        "stage=dev,name=encryption,token=t0k3n-reference,extra=1",
    ] {
        let Some(app) = legacy_app(configured).await else {
            return;
        };
        let c = app.login_as(Role::Supervisor).await;
        let id = demo_contact_id(0);
        let r = app
            .post_form(
                &c,
                &format!("/contacts/{id}"),
                &format!("/contacts/{id}/decrypt"),
                &[("field", "encrypted_cc"), ("reason", "x")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{configured}");
        assert!(!r.text().await.unwrap().contains(LEGACY_CARD));
        assert_eq!(
            app.last_audit("decrypt_denied").await.unwrap().outcome,
            "context_mismatch"
        );
    }
}
