//! Retention (`CALLVAULT_RETENTION_DAYS`): a value whose contact started
//! longer ago is not offered on the contact's page and its reveal is refused
//! through the one admission, with its own outcome, on the web, on an
//! approved request and on the command line.

use std::process::{Command, Stdio};
use std::time::Duration;

use callvault::auth::Role;
use callvault::clock::Clock as _;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;

const DAY_US: i64 = 86_400_000_000;

/// The demo's contact 0 started 400 days ago; retention is a year.
async fn old_contact_app(approval: bool) -> TestApp {
    spawn_demo_app_custom(
        |data, _| {
            let c = &mut data.contacts[0].summary;
            let now = callvault::clock::SystemClock.now_us();
            c.initiated_us = Some(now - 400 * DAY_US);
            c.disconnected_us = Some(now - 400 * DAY_US + 60_000_000);
        },
        move |s| {
            s.retention = Some("365".parse().unwrap());
            if approval {
                s.policy.approval = callvault::decrypt::policy::ApprovalMode::Required;
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_value_past_retention_is_not_offered_and_its_reveal_is_refused_with_its_own_outcome() {
    let app = old_contact_app(false).await;
    let c = app.login_as(Role::Supervisor).await;
    let old = demo_contact_id(0);
    let page = app.page(&c, &format!("/contacts/{old}")).await;
    assert!(page.contains("id=\"past-retention\""), "{page}");
    assert!(!page.contains(&format!("action=\"/contacts/{old}/decrypt\"")));
    // Asked for anyway: refused, one row, its own outcome.
    let before = app.audit_rows().await.len();
    let r = app.decrypt(&c, &old, "creditcard", "chargeback 1").await;
    assert_eq!(r.status(), StatusCode::GONE);
    let html = r.text().await.unwrap();
    assert!(html.contains("past its retention period"), "{html}");
    assert!(!html.shows(&demo_card(0)));
    // The page it was asked from is viewed (its row), then one refusal.
    let rows: Vec<_> = app.audit_rows().await.into_iter().skip(before).collect();
    let reveal_rows: Vec<_> = rows.iter().filter(|r| r.action != "contact_view").collect();
    assert_eq!(reveal_rows.len(), 1, "{rows:?}");
    let row = reveal_rows[0];
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("decrypt_denied", "retention_expired")
    );
    // A contact inside retention still reveals.
    let fresh = demo_contact_id(1);
    let r = app.decrypt(&c, &fresh, "creditcard", "chargeback 2").await;
    assert!(r.text().await.unwrap().shows(&demo_card(1)));
}

#[tokio::test]
async fn an_approved_request_past_retention_is_refused_when_it_is_used() {
    let app = old_contact_app(true).await;
    app.add_user("req", Role::Supervisor).await;
    app.add_user("kim", Role::Supervisor).await;
    let (requester, approver) = (client(), client());
    app.login(&requester, "req", PASSWORD).await;
    app.login(&approver, "kim", PASSWORD).await;
    let old = demo_contact_id(0);
    let r = app.decrypt(&requester, &old, "creditcard", "fraud 1").await;
    assert_redirects_to(&r, "/approvals?m=requested");
    let id = app.state.approvals.recent(1).await.unwrap().remove(0).id;
    app.post_form(
        &approver,
        "/approvals",
        &format!("/approvals/{id}/approve"),
        &[],
    )
    .await;
    let r = app
        .post_form(
            &requester,
            "/approvals",
            &format!("/approvals/{id}/reveal"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(!r.text().await.unwrap().shows(&demo_card(0)));
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(row.outcome, "retention_expired");
    assert!(
        row.detail
            .contains(&format!("request {id} approved by kim")),
        "{}",
        row.detail
    );
}

/// On the command line the contact's start is not known (`--ciphertext`):
/// the value's period key says how old it is; with neither, the reveal is
/// refused rather than guessed.
#[tokio::test]
async fn the_command_line_refuses_a_value_of_a_period_past_retention() {
    use lambda_encrypt::crypto::FieldCrypto;
    use lambda_encrypt::keyring::KeyringSpec;
    use lambda_encrypt::period::RawPeriodDir;

    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let now = callvault::clock::SystemClock.now_us();
    let keys = RawPeriodDir::new(&keys_dir);
    callvault::demo::periods::ensure_keys(&keys, now).unwrap();
    let spec = KeyringSpec::RawAesPeriod {
        dir: keys_dir.clone(),
    };
    let crypto = FieldCrypto::from_spec(&spec, Default::default(), None)
        .await
        .unwrap();
    let (handler, _) = lambda_handler(dir.path()).await;
    let mut data = callvault::demo::generate(&handler, now).await.unwrap();
    callvault::demo::periods::spread_over_periods(&mut data, &crypto, &keys, now)
        .await
        .unwrap();
    let url = sqlite_url(&dir);
    let secrets = dir.path().join("secrets");
    let run = |args: &[&str], stdin: &str, env: &[(&str, &str)]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(args)
            .env("DATABASE_URL", &url)
            .env("CALLVAULT_SECRETS_DIR", &secrets)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let o = run(
        &["user", "add", "sam", "--role", "supervisor"],
        "a long cli password\n",
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let keyring = format!("raw-aes-period:{}", keys_dir.display());
    // Contact 39 was captured fourteen months ago, contact 36 one month ago.
    let reveal = |i: usize, retention: &str| {
        let ct = data.contacts[i].attributes["creditcard"].clone();
        let contact = data.contacts[i].summary.id.to_string();
        let env: Vec<(&str, &str)> = vec![
            ("CALLVAULT_KEYRING", keyring.as_str()),
            ("CALLVAULT_RETENTION_DAYS", retention),
        ];
        let args = [
            "decrypt",
            "--contact-id",
            &contact,
            "--field",
            "creditcard",
            "--operator",
            "sam",
            "--reason",
            "retention check",
            "--ciphertext",
            &ct,
        ];
        run(&args, "", &env)
    };
    let old = reveal(39, "365");
    let stderr = String::from_utf8_lossy(&old.stderr).into_owned();
    assert_eq!(old.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("retention_expired"), "{stderr}");
    assert!(!String::from_utf8_lossy(&old.stdout).contains(&demo_card(39)));
    let recent = reveal(36, "365");
    assert!(
        recent.status.success(),
        "{}",
        String::from_utf8_lossy(&recent.stderr)
    );
    assert!(String::from_utf8_lossy(&recent.stdout).contains(&demo_card(36)));
    // The row of the refusal names the period's age.
    let export = run(&["audit", "export", "--format", "jsonl"], "", &[]);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows
        .iter()
        .any(|r| r["action"] == "decrypt_denied" && r["outcome"] == "retention_expired"));
    let shown = rows.iter().find(|r| r["action"] == "decrypt").unwrap();
    assert!(
        shown["detail"].as_str().unwrap().contains(", period "),
        "{shown}"
    );
    let _ = Duration::ZERO;
}

/// Bad retention values are refused clearly at start, never guessed.
#[test]
fn hostile_retention_values_are_refused_at_start() {
    for bad in ["0", "-1", "99999", "ten", "365d"] {
        let o = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args([
                "decrypt",
                "--contact-id",
                "x",
                "--field",
                "creditcard",
                "--operator",
                "sam",
                "--reason",
                "r",
                "--ciphertext",
                "x",
            ])
            .env("CALLVAULT_RETENTION_DAYS", bad)
            .env("DATABASE_URL", "sqlite::memory:")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{bad}");
        assert!(
            stderr.contains("CALLVAULT_RETENTION_DAYS"),
            "{bad}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
