//! Amazon Connect's keypad path in the console: values a flow's "Store
//! customer input" block encrypted (here the Python AWS Encryption SDK plays
//! Connect, `lambda-encrypt/tests/connect_peer.py`) are shown beside the Lex
//! ones and revealed through the same admission, on the web and on the
//! command line, each reveal one row naming the capture path and the Connect
//! key id. A copied message is refused under another contact; capture paths
//! do not cross.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use callvault::auth::Role;
use callvault::demo::demo_contact_id;
use reqwest::StatusCode;

use crate::helpers::*;

const KEY_A: &str = "6f1c3c52-7a8e-4f7d-9a43-2b1d1e0c9f10";
const UNKNOWN_KEY: &str = "0badc0de-0000-4000-8000-000000000000";
/// A test card number keyed with spaces; Connect stores what was keyed,
/// the validator's canonical form is what is shown.
const KEYED: &str = "4111 1111 1111 1111";
const CARD: &str = "4111111111111111";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("lambda-encrypt/tests/data/connect-keys")
        .join(name)
}

/// A message as Connect makes it for `key_id`, to the fixture's public key.
fn connect_message(key_id: &str, value: &str) -> Option<String> {
    let python = require_env("CALLVAULT_PYTHON")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lambda-encrypt/tests/connect_peer.py"
    );
    let mut child = Command::new(python)
        .arg(script)
        .args([
            "encrypt",
            fixture("test-rsa4096.pem").to_str().unwrap(),
            key_id,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(value.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "connect_peer.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// The key file the console holds for KEY_A (owner-only, as checked).
struct KeyFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn key_file() -> KeyFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("connect.pem");
    std::fs::copy(fixture("test-rsa4096.pem"), &path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    KeyFile { _dir: dir, path }
}

fn keypad_env(key: &KeyFile) -> [(&'static str, String); 2] {
    [
        (
            "CALLVAULT_CONNECT_INPUT_FIELDS",
            "keypad_card:card".to_owned(),
        ),
        (
            "CALLVAULT_CONNECT_INPUT_KEYS",
            format!("{KEY_A}={}", key.path.display()),
        ),
    ]
}

/// The demo's contacts with `keypad_card` values placed by `place`
/// (contact index, stored text), the console holding KEY_A.
async fn keypad_app(key: &KeyFile, place: Vec<(usize, String)>) -> TestApp {
    let keys = format!("{KEY_A}={}", key.path.display());
    spawn_demo_app_custom(
        move |data, _| {
            for (i, value) in place {
                data.contacts[i]
                    .attributes
                    .insert("keypad_card".to_owned(), value);
            }
        },
        move |s| {
            s.connect_input = Some(("keypad_card:card".to_owned(), keys));
            s.sensitive.insert("keypad_card".to_owned());
        },
    )
    .await
}

fn rows_after(
    rows: Vec<callvault::audit::AuditRow>,
    before: usize,
) -> Vec<callvault::audit::AuditRow> {
    rows.into_iter()
        .skip(before)
        .filter(|r| r.action != "contact_view")
        .collect()
}

#[tokio::test]
async fn a_keypad_value_is_shown_unbound_and_revealed_once_through_the_admission() {
    let Some(message) = connect_message(KEY_A, KEYED) else {
        return;
    };
    let key = key_file();
    let app = keypad_app(&key, vec![(0, message.clone())]).await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(
        page.contains("keypad (Connect-encrypted), not bound to this contact"),
        "{page}"
    );
    assert!(page.contains("aria-label=\"Reveal keypad_card\""), "{page}");
    assert!(!page.shows(CARD));
    // Not a leak: a keypad attribute holding Connect's ciphertext is fine.
    assert!(!page.contains("Leak guard:"), "{page}");

    let before = app.audit_rows().await.len();
    // Admitted (303), then shown on its own page (`decrypt` follows it).
    let shown = app.decrypt(&c, &id, "keypad_card", "chargeback 11").await;
    assert_eq!(shown.status(), StatusCode::OK);
    let location = shown.url().path().to_owned();
    assert!(location.starts_with("/reveals/"), "{location}");
    let html = shown.text().await.unwrap();
    assert!(html.contains(&grouped(CARD)), "{html}");
    assert!(html.contains("keypad (Connect-encrypted)"), "{html}");
    // Shown once: the reveal page again is no second decrypt, no row.
    let again = c.get(app.url(&location)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);

    let rows = rows_after(app.audit_rows().await, before);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("decrypt", "ok")
    );
    assert_eq!(row.field, "keypad_card");
    assert!(
        row.detail.contains("keypad (Connect-encrypted)"),
        "{}",
        row.detail
    );
    assert!(
        row.detail.contains(&format!("Connect key {KEY_A}")),
        "{}",
        row.detail
    );
    let tag = row
        .detail
        .split("message ")
        .nth(1)
        .and_then(|t| t.split(',').next())
        .unwrap();
    assert_eq!(tag.len(), 32, "{}", row.detail);
    assert!(tag.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_audit_free_of(&app, CARD).await;
    assert_audit_free_of(&app, KEYED).await;

    // The same message under the same contact is the same caller's value.
    let r = app
        .decrypt(&c, &id, "keypad_card", "chargeback 11, again")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains(&grouped(CARD)));
}

#[tokio::test]
async fn a_keypad_message_copied_to_another_contact_is_refused_and_raised_as_an_alert() {
    let Some(message) = connect_message(KEY_A, KEYED) else {
        return;
    };
    let key = key_file();
    let app = keypad_app(&key, vec![(0, message.clone()), (1, message)]).await;
    let c = app.login_as(Role::Supervisor).await;
    let (first, copy) = (demo_contact_id(0), demo_contact_id(1));
    let r = app
        .decrypt(&c, &first, "keypad_card", "chargeback 12")
        .await;
    let shown = follow_reveal(&app.address, &c, r).await;
    assert!(shown.text().await.unwrap().contains(&grouped(CARD)));

    let before = app.audit_rows().await.len();
    let r = app.decrypt(&c, &copy, "keypad_card", "chargeback 12").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&first),
        "names the contact it came from: {html}"
    );
    assert!(!html.shows(CARD));
    let rows = rows_after(app.audit_rows().await, before);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("decrypt_denied", "copied_message")
    );
    assert!(rows[0].detail.contains(&first), "{}", rows[0].detail);
    // Nothing of the refused reveal was kept for later.
    let grants: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM reveal_grants WHERE contact_id = $1")
        .bind(&copy)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(grants.0, 0);

    let auditor = app.login_as(Role::Auditor).await;
    let audit = app.page(&auditor, "/audit").await;
    assert!(audit.contains("copied"), "{audit}");
    assert_audit_free_of(&app, CARD).await;
}

#[tokio::test]
async fn capture_paths_do_not_cross_and_an_unknown_key_id_is_named() {
    let (Some(keypad), Some(unknown)) = (
        connect_message(KEY_A, KEYED),
        connect_message(UNKNOWN_KEY, KEYED),
    ) else {
        return;
    };
    let key = key_file();
    // Contact 0: a Connect message in the Lex field. Contact 1: callvault's
    // own (Lex) ciphertext in the keypad field. Contact 2: a message for a
    // key this console does not hold. Contact 3: nothing keyed.
    let app = spawn_demo_app_custom(
        move |data, _| {
            data.contacts[0]
                .attributes
                .insert("creditcard".to_owned(), keypad);
            let lex = data.contacts[1].attributes["creditcard"].clone();
            data.contacts[1]
                .attributes
                .insert("keypad_card".to_owned(), lex);
            data.contacts[2]
                .attributes
                .insert("keypad_card".to_owned(), unknown);
            data.contacts[3]
                .attributes
                .insert("keypad_card".to_owned(), "Timeout".to_owned());
        },
        {
            let keys = format!("{KEY_A}={}", key.path.display());
            move |s| {
                s.connect_input = Some(("keypad_card:card".to_owned(), keys));
                s.sensitive.insert("keypad_card".to_owned());
            }
        },
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    for (i, field, status, outcome, says) in [
        (
            0,
            "creditcard",
            StatusCode::FORBIDDEN,
            "wrong_capture_path",
            "keypad",
        ),
        (
            1,
            "keypad_card",
            StatusCode::FORBIDDEN,
            "wrong_capture_path",
            "not an Amazon Connect",
        ),
        (
            2,
            "keypad_card",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_connect_key",
            UNKNOWN_KEY,
        ),
        (
            3,
            "keypad_card",
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_input",
            "keyed nothing",
        ),
    ] {
        let id = demo_contact_id(i);
        let before = app.audit_rows().await.len();
        let r = app.decrypt(&c, &id, field, "chargeback 13").await;
        assert_eq!(r.status(), status, "contact {i}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "contact {i}: {html}");
        assert!(!html.shows(CARD), "contact {i}");
        let rows = rows_after(app.audit_rows().await, before);
        assert_eq!(rows.len(), 1, "contact {i}: {rows:?}");
        assert_eq!(rows[0].outcome, outcome, "contact {i}");
    }
    // Nothing keyed is not a leak, and offers no reveal.
    let page = app
        .page(&c, &format!("/contacts/{}", demo_contact_id(3)))
        .await;
    assert!(!page.contains("Leak guard:"), "{page}");
    assert!(
        !page.contains("aria-label=\"Reveal keypad_card\""),
        "{page}"
    );
    assert_audit_free_of(&app, CARD).await;
}

const INSTANCE: &str = "11111111-2222-4333-8444-555555555555";

/// A Connect fake holding `keypad_card` values: (contact id, started
/// seconds ago, stored text).
fn connect_with(values: &[(&str, f64, &str)]) -> crate::connect_fake::ConnectFake {
    let now = chrono::Utc::now().timestamp() as f64;
    crate::connect_fake::ConnectFake::start(
        INSTANCE,
        values
            .iter()
            .map(|(id, ago, value)| crate::connect_fake::FakeContact {
                id: (*id).into(),
                initial_contact_id: (*id).into(),
                channel: "VOICE".into(),
                initiated_secs: now - ago,
                attributes: [("keypad_card".to_owned(), (*value).to_owned())].into(),
                ..Default::default()
            })
            .collect(),
    )
}

/// `callvault decrypt --field keypad_card` on the app's database, reading
/// the contact from `connect` when given, with `--ciphertext` when given.
async fn cli(
    app: &TestApp,
    key: &KeyFile,
    connect: Option<&crate::connect_fake::ConnectFake>,
    contact: &str,
    ciphertext: Option<&str>,
    retention: Option<&str>,
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_callvault"));
    cmd.args(["decrypt", "--contact-id", contact, "--field", "keypad_card"])
        .args(["--operator", "sam", "--reason", "chargeback 14"])
        .env("DATABASE_URL", &app.db_url)
        .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
        .env(
            "CALLVAULT_KEYRING",
            format!("raw-aes:{}", app.key_path.as_ref().unwrap().display()),
        )
        .envs(keypad_env(key))
        .stdin(Stdio::null());
    if let Some(ct) = ciphertext {
        cmd.args(["--ciphertext", ct]);
    }
    if let Some(days) = retention {
        cmd.env("CALLVAULT_RETENTION_DAYS", days);
    }
    if let Some(fake) = connect {
        cmd.env("CALLVAULT_CONNECT_INSTANCE_ID", INSTANCE)
            .env("AWS_ENDPOINT_URL", &fake.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret");
    }
    cmd.output().await.unwrap()
}

#[tokio::test]
async fn the_command_line_reveals_a_keypad_value_through_the_same_admission() {
    let (Some(message), Some(unknown), Some(other)) = (
        connect_message(KEY_A, KEYED),
        connect_message(UNKNOWN_KEY, KEYED),
        connect_message(KEY_A, "4000056655665556"),
    ) else {
        return;
    };
    let key = key_file();
    // The web's demo contact 0 holds `other`; Connect's contacts below.
    let app = keypad_app(&key, vec![(0, other.clone())]).await;
    app.add_user("sam", Role::Supervisor).await;
    let lex = app
        .state
        .directory
        .attributes(&callvault_contact(&demo_contact_id(1)))
        .await
        .unwrap()["creditcard"]
        .clone();
    let ids: Vec<String> = (1..=7)
        .map(|i| format!("aaaaaaaa-0000-4000-8000-0000000002{i:02}"))
        .collect();
    let fake = connect_with(&[
        (&ids[0], 60.0, &message),
        (&ids[1], 60.0, &unknown),
        (&ids[2], 60.0, "not base64 at all!"),
        (&ids[3], 60.0, &lex),
        (&ids[4], 60.0, "Timeout"),
        (&ids[5], 60.0, &other),
    ]);
    let before = app.audit_rows().await.len();
    let out = cli(&app, &key, Some(&fake), &ids[0], None, None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), CARD);
    let rows = rows_after(app.audit_rows().await, before);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (rows[0].action.as_str(), rows[0].outcome.as_str()),
        ("decrypt", "ok")
    );
    assert_eq!(rows[0].client_addr, "cli");
    assert!(
        rows[0].detail.contains(&format!("Connect key {KEY_A}")),
        "{}",
        rows[0].detail
    );
    // The contact's own value given with --ciphertext is the same reveal.
    let out = cli(&app, &key, Some(&fake), &ids[0], Some(&message), None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The web and the command line share the copied-message record: what
    // the web revealed under demo contact 0 is refused under another one.
    let web = app.login_as(Role::Supervisor).await;
    let shown = app
        .decrypt(&web, &demo_contact_id(0), "keypad_card", "chargeback 14")
        .await;
    assert!(shown.text().await.unwrap().contains("4000 0566 5566 5556"));
    // Bad input, one row each, exit 2, named: a key the console does not
    // hold, not base64, a Lex ciphertext, nothing keyed, a copy; a given
    // ciphertext that is not the contact's value, or with no Connect to
    // tell (a keypad message is bound to nothing).
    for (contact, given, connect, outcome) in [
        (&ids[1], None, true, "unknown_connect_key"),
        (&ids[2], None, true, "not_base64"),
        (&ids[3], None, true, "wrong_capture_path"),
        (&ids[4], None, true, "no_input"),
        (&ids[5], None, true, "copied_message"),
        (&ids[0], Some(other.as_str()), true, "not_stored_value"),
        (&ids[6], Some(message.as_str()), true, "error:not_found"),
        (&ids[0], Some(message.as_str()), false, "not_stored_value"),
    ] {
        let before = app.audit_rows().await.len();
        let out = cli(&app, &key, connect.then_some(&fake), contact, given, None).await;
        assert_eq!(out.status.code(), Some(2), "{outcome}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(outcome), "{outcome}: {err}");
        assert!(out.stdout.is_empty(), "{outcome}");
        let rows = rows_after(app.audit_rows().await, before);
        assert_eq!(rows.len(), 1, "{outcome}: {rows:?}");
        assert_eq!(rows[0].outcome, outcome);
    }
    let err = String::from_utf8_lossy(
        &cli(&app, &key, Some(&fake), &ids[1], None, None)
            .await
            .stderr,
    )
    .into_owned();
    assert!(err.contains(UNKNOWN_KEY), "{err}");
    assert_audit_free_of(&app, CARD).await;
}

fn callvault_contact(id: &str) -> lambda_encrypt::context::ContactId {
    lambda_encrypt::context::ContactId::parse(id).unwrap()
}

/// Dual control holds for keypad values too: a request, another
/// supervisor's approval, the requester's one reveal, its row naming the
/// approver and the Connect key.
#[tokio::test]
async fn under_dual_control_a_keypad_value_needs_another_supervisors_approval() {
    let Some(message) = connect_message(KEY_A, KEYED) else {
        return;
    };
    let key = key_file();
    let keys = format!("{KEY_A}={}", key.path.display());
    let app = spawn_demo_app_custom(
        move |data, _| {
            data.contacts[6]
                .attributes
                .insert("keypad_card".to_owned(), message);
        },
        move |s| {
            s.connect_input = Some(("keypad_card:card".to_owned(), keys));
            s.sensitive.insert("keypad_card".to_owned());
            s.policy.approval = callvault::decrypt::policy::ApprovalMode::Required;
        },
    )
    .await;
    let requester = app.login_as(Role::Supervisor).await;
    let approver = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(6);
    let r = app
        .decrypt(&requester, &id, "keypad_card", "fraud case 15")
        .await;
    assert_redirects_to(&r, "/approvals?m=requested");
    assert!(app.last_audit("decrypt").await.is_none());
    let html = app.page(&requester, "/approvals").await;
    let marker = "data-request=\"";
    let start = html.find(marker).expect("a request is listed") + marker.len();
    let request = html[start..start + 32].to_owned();
    let act = |c: &reqwest::Client, verb: &str| {
        let path = format!("/approvals/{request}/{verb}");
        let c = c.clone();
        let app = &app;
        async move { app.post_form(&c, "/approvals", &path, &[]).await }
    };
    assert_eq!(
        act(&requester, "reveal").await.status(),
        StatusCode::CONFLICT
    );
    assert_redirects_to(&act(&approver, "approve").await, "/approvals?m=approved");
    let shown = act(&requester, "reveal").await;
    let shown = follow_reveal(&app.address, &requester, shown).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(shown.text().await.unwrap().contains(&grouped(CARD)));
    let row = app.last_audit("decrypt").await.unwrap();
    assert!(row.detail.contains("approved by"), "{}", row.detail);
    assert!(
        row.detail.contains(&format!("Connect key {KEY_A}")),
        "{}",
        row.detail
    );
    assert_audit_free_of(&app, CARD).await;
}

/// Retention on the command line: a keypad message names no period, so its
/// age is its contact's start, which the command line reads from Connect.
#[tokio::test]
async fn the_command_line_checks_a_keypad_values_retention_by_its_contacts_start() {
    let (Some(fresh_msg), Some(old_msg)) =
        (connect_message(KEY_A, KEYED), connect_message(KEY_A, KEYED))
    else {
        return;
    };
    let key = key_file();
    let app = keypad_app(&key, vec![]).await;
    app.add_user("sam", Role::Supervisor).await;
    let fresh = "aaaaaaaa-0000-4000-8000-000000000101";
    let old = "aaaaaaaa-0000-4000-8000-000000000102";
    let fake = connect_with(&[
        (fresh, 3600.0, &fresh_msg),
        (old, 400.0 * 86_400.0, &old_msg),
    ]);
    let out = cli(&app, &key, Some(&fake), old, None, Some("365")).await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention_expired"), "{err}");
    let out = cli(&app, &key, Some(&fake), fresh, None, Some("365")).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), CARD);
    assert_audit_free_of(&app, CARD).await;
}

/// The copied-message record holds only what decrypted: an altered copy
/// that keeps the message id (its header) is admitted on its header, fails
/// to decrypt, and gives its claim up, so the genuine value still reveals
/// under its own contact; the failed reveal's page cannot be kept open.
#[tokio::test]
async fn an_altered_copy_claims_nothing_and_its_failed_reveal_cannot_be_kept_open() {
    let Some(message) = connect_message(KEY_A, KEYED) else {
        return;
    };
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(&message).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let altered = b64.encode(&bytes);
    let key = key_file();
    let app = keypad_app(&key, vec![(0, message), (1, altered)]).await;
    let c = app.login_as(Role::Supervisor).await;
    let copy = demo_contact_id(1);
    let r = app.decrypt(&c, &copy, "keypad_card", "chargeback 17").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let grant_page = r.url().path().to_owned();
    assert!(grant_page.starts_with("/reveals/"), "{grant_page}");
    assert!(!r.text().await.unwrap().shows(CARD));
    assert_eq!(
        app.last_audit("decrypt_failed").await.unwrap().outcome,
        "authentication_failed"
    );
    let extend = app
        .post_form(
            &c,
            &format!("/contacts/{copy}"),
            &format!("{grant_page}/extend"),
            &[],
        )
        .await;
    assert_eq!(extend.status(), StatusCode::NOT_FOUND);
    // The genuine value, under its own contact.
    let shown = app
        .decrypt(&c, &demo_contact_id(0), "keypad_card", "chargeback 17")
        .await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(shown.text().await.unwrap().contains(&grouped(CARD)));
}
