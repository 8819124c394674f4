//! What the second independent attack on the release binary found, each as
//! the reproduction it used (and the variants the fix generalises to), run
//! against the real console: anonymous floods, card numbers the leak guard
//! missed or that reached auditors, invisible reasons, a replayable SSO
//! hand-off, sign-out, a forged audit head, CSV formulas, secrets in
//! `--help`, user names that differ only in case, and SSO accounts.

use std::process::Command;
use std::time::Duration;

use callvault::auth::Role;
use callvault::demo::{demo_contact_id, DemoStream};
use callvault::sources::LogEvent;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::*;
use crate::oidc::*;

const GROUP: &str = "%2Faws%2Fconnect%2Fcallvault-demo";

async fn sql(app: &TestApp, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&app.state.audit.db().pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// Summary rows of anonymous refusals of `action` once their interval is
/// over: (rows, refusals they count).
async fn summaries(app: &TestApp, action: &str) -> (usize, i64) {
    app.clock.advance(Duration::from_secs(61));
    app.state.audit.flush_tallies().await.unwrap();
    let rows: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == action && r.outcome == "refused_summary")
        .collect();
    let total = rows
        .iter()
        .map(|r| {
            assert_eq!(r.actor, "anonymous");
            r.detail.split(' ').next().unwrap().parse::<i64>().unwrap()
        })
        .sum();
    (rows.len(), total)
}

// ---- M1: every anonymous path is tallied, SSO's included -----------------------

#[tokio::test]
async fn a_flood_of_anonymous_sso_callbacks_and_sign_ins_leaves_a_bounded_number_of_rows() {
    // Nothing answers at this issuer: every path below is refused without
    // reaching a provider, as the attack's were.
    let s = spawn_sso_app_at(&format!("http://127.0.0.1:{}", free_port()), false).await;
    let app = &s.app;
    let before = app.audit_rows().await.len();
    let paths = [
        "/login/oidc/callback?state=x&code=y",
        "/login/oidc/callback?code=y",
        "/login/oidc/callback?error=access_denied&state=x",
        "/login/oidc/callback?resume=1",
        // Starting a sign-in while the provider cannot be reached.
        "/login/oidc",
    ];
    let mut tasks = Vec::new();
    for path in paths {
        let (c, url) = (client(), app.url(path));
        tasks.push(tokio::spawn(async move {
            for _ in 0..60 {
                let r = c.get(&url).send().await.unwrap();
                assert!(r.status().is_client_error() || r.status().is_server_error());
            }
        }));
    }
    // And the password form: unknown names, from one address (the throttle
    // locks the address after a few; what follows is counted).
    let c = client();
    for i in 0..60 {
        let r = app
            .login(&c, &format!("nobody{i}"), "not the password at all")
            .await;
        assert!(matches!(
            r.status(),
            StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
        ));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let during = app.audit_rows().await.len() - before;
    // A few rows for the sign-ins checked before the address locked, and a
    // summary per interval crossed; never one per request (360 requests).
    assert!(during <= 20, "{during} rows for 360 anonymous refusals");
    let (rows, refused) = summaries(app, "login_failed").await;
    assert!(rows <= 4, "{rows} summary rows");
    assert!(refused >= 300, "{refused} refusals counted");
    assert!(app.state.audit.verify().await.unwrap().ok());
}

// ---- M2: the leak guard reads what a person reads -------------------------------

const CARD: &str = "4111111111111111";

fn formats_stream(data: &mut callvault::demo::DemoData) {
    let contact = demo_contact_id(2);
    let texts = [
        "4111, 1111, 1111, 1111",
        "4111,1111,1111,1111",
        "4111_1111_1111_1111",
        "4111:1111:1111:1111",
        "4111|1111|1111|1111",
        "4111;1111;1111;1111",
        "(4111) 1111 1111 1111",
        "[4111]-[1111]-[1111]-[1111]",
        "4111    1111    1111    1111",
        "4111 ,:| 1111 ,:| 1111 ,:| 1111",
        // Expiry glued on, two cards glued together.
        "41111111111111111225",
        "41111111111111115555555555554444",
    ];
    let mut messages: Vec<serde_json::Value> = texts
        .iter()
        .map(|t| serde_json::json!({"ContactId": contact, "Parameters": {"Text": format!("caller said {t} ok")}}))
        .collect();
    for key in ["ZIPCODE", "ZipCode", "zip_code", "zip-code", "Zip Code"] {
        messages.push(serde_json::json!({"ContactId": contact, "ExternalResults": {key: "98101"}}));
    }
    // SetAttributes naming the field in another case.
    messages.push(serde_json::json!({"ContactId": contact, "ContactFlowModuleType": "SetAttributes", "Parameters": {"key": "ZipCode", "value": "98101"}}));
    data.streams.push(DemoStream {
        name: "formats".into(),
        events: messages
            .iter()
            .enumerate()
            .map(|(i, m)| LogEvent {
                timestamp_us: 1_700_000_000_000_000 + i as i64 * 1_000_000,
                message: m.to_string(),
            })
            .collect(),
    });
}

#[tokio::test]
async fn cards_in_every_format_the_attack_used_and_zip_codes_under_any_key_spelling_are_masked_and_recorded(
) {
    let app = spawn_demo_app_with(|d, _| formats_stream(d)).await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, &format!("/logs/{GROUP}/formats")).await;
    assert!(html.contains("Leak guard"));
    for shown in [
        "4111, 1111",
        "4111,1111",
        "4111_1111",
        "4111:1111",
        "4111|1111",
        "4111;1111",
        "(4111) 1111",
        "[1111]",
        "4111    1111",
        "4111 ,:| 1111",
        CARD,
        "5555555555554444",
        "98101",
    ] {
        assert!(!html.contains(shown), "the page shows {shown:?}");
        assert_audit_free_of(&app, shown).await;
    }
    let leaks = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "leak_found")
        .count();
    assert_eq!(leaks, 12 + 5 + 1, "one leak_found row per event");
}

// ---- M3: no card number in a reason or case reference ---------------------------

async fn reveal(
    app: &TestApp,
    c: &reqwest::Client,
    reason: &str,
    case_ref: &str,
) -> reqwest::Response {
    let id = demo_contact_id(0);
    app.post_form(
        c,
        &format!("/contacts/{id}"),
        &format!("/contacts/{id}/decrypt"),
        &[
            ("field", "creditcard"),
            ("reason", reason),
            ("case_ref", case_ref),
        ],
    )
    .await
}

#[tokio::test]
async fn a_card_number_typed_as_the_reason_or_case_reference_is_refused_and_never_stored() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    for card in [
        CARD,
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111_1111_1111_1111",
        "4111, 1111, 1111, 1111",
        "41111111111111111225",
    ] {
        for (reason, case_ref) in [
            (format!("customer dispute on {card}"), "CB-1".to_owned()),
            ("customer dispute".to_owned(), card.to_owned()),
            ("customer dispute".to_owned(), format!("CB-{card}")),
        ] {
            let r = reveal(&app, &c, &reason, &case_ref).await;
            assert_eq!(
                r.status(),
                StatusCode::BAD_REQUEST,
                "{reason:?} {case_ref:?}"
            );
            let body = r.text().await.unwrap();
            assert!(body.contains("card number"), "a plain message: {body:.300}");
            assert!(!body.contains(card) && !body.contains("4111 1111"));
        }
    }
    // The command line refuses them alike.
    app.add_user("cli-sam", Role::Supervisor).await;
    let contact = demo_contact_id(0);
    let id = lambda_encrypt::context::ContactId::parse(&contact).unwrap();
    let ciphertext = app.state.directory.attributes(&id).await.unwrap()["creditcard"].clone();
    let key = app.key_path.as_ref().unwrap();
    for (reason, case_ref) in [
        ("refund for 4111 1111 1111 1111", "CB-1"),
        ("refund", "4111-1111-1111-1111"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["decrypt", "--contact-id", &contact, "--field", "creditcard"])
            .args([
                "--operator",
                "cli-sam",
                "--reason",
                reason,
                "--case-ref",
                case_ref,
            ])
            .args(["--ciphertext", &ciphertext])
            .env("DATABASE_URL", &app.db_url)
            .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
            .env("CALLVAULT_KEYRING", format!("raw-aes:{}", key.display()))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains("card number"), "{text}");
        assert!(
            !text.contains("4111 1111") && !text.contains("4111-1111"),
            "{text}"
        );
    }
    let rows = app.audit_rows().await;
    assert!(
        !rows.iter().any(|r| r.action == "decrypt"),
        "nothing revealed"
    );
    let denied = rows.iter().filter(|r| r.action == "decrypt_denied").count();
    assert_eq!(denied, 18 + 2, "each refusal recorded");
    for row in &rows {
        let all = format!("{} {} {}", row.reason, row.case_ref, row.detail);
        let digits: String = all.chars().filter(char::is_ascii_digit).collect();
        assert!(
            !digits.contains(CARD),
            "a stored row holds the card: {row:?}"
        );
    }
    // Nor does any export.
    let auditor = app.login_as(Role::Auditor).await;
    for format in ["csv", "jsonl"] {
        let export = app
            .page(&auditor, &format!("/audit/export?format={format}"))
            .await;
        let digits: String = export.chars().filter(char::is_ascii_digit).collect();
        assert!(!digits.contains(CARD), "the {format} export holds the card");
    }
}

// ---- L1: a reason needs a character with a visible glyph -------------------------

#[tokio::test]
async fn a_reason_of_hangul_fillers_or_other_invisible_letters_is_refused() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    for reason in [
        "\u{3164}\u{3164}\u{3164}",
        "\u{FFA0}\u{FFA0}",
        "\u{115F}\u{1160}",
        "\u{3164} \u{FFA0} \u{115F} \u{1160}",
        "\u{3164}\u{180B}\u{FE0F}\u{E0100}",
    ] {
        let r = reveal(&app, &c, reason, "").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{reason:?}");
    }
    let rows = app.audit_rows().await;
    assert!(!rows.iter().any(|r| r.action == "decrypt"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "decrypt_denied" && r.outcome == "no_reason")
            .count(),
        5
    );
}

// ---- L2: the SSO hand-off is single-use and bound to its browser -----------------

fn cookie_named(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

async fn resume_with(app: &TestApp, cookies: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/login/oidc/callback?resume=1"))
        .header(COOKIE, cookies)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_second_hop_cookie_signs_in_once_and_only_in_the_browser_that_started() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let b = browser();
    let start = b.get(s.app.url("/login/oidc")).send().await.unwrap();
    let pending = cookie_named(&start, "callvault_oidc").unwrap();
    // The session of the browser that started (if the start made one).
    let session = cookie_named(&start, "callvault_session");
    let at_provider = start.headers()[LOCATION].to_str().unwrap().to_owned();
    let back = through_provider(&b, &s.issuer, &at_provider, &Login::as_("sam.sso")).await;
    let callback = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&back)
        .header(COOKIE, &pending)
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::OK);
    let verified = cookie_named(&callback, "callvault_oidc").unwrap();
    // Three other clients with the copied cookie: nobody is signed in.
    for _ in 0..3 {
        let r = resume_with(&s.app, &verified).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(cookie_named(&r, "callvault_session").is_none());
    }
    // The browser that started (its session cookie with it): once.
    let both = match &session {
        Some(session) => format!("{verified}; {session}"),
        None => verified.clone(),
    };
    let first = resume_with(&s.app, &both).await;
    assert_signed_in(&first);
    // The same two cookies again, however fast: used up.
    for _ in 0..3 {
        let again = resume_with(&s.app, &both).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(cookie_named(&again, "callvault_session").is_none());
    }
    let logins = s
        .app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "login" && r.actor == "sam.sso")
        .count();
    assert_eq!(logins, 1);
}

// ---- L3: sign-out ends the session whatever fails --------------------------------

#[tokio::test]
async fn sign_out_ends_the_session_even_when_the_audit_store_fails() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Supervisor).await;
    assert_eq!(
        c.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    sql(
        &app,
        "CREATE TRIGGER audit_store_down BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'audit store down'); END",
    )
    .await;
    let r = app.post_form(&c, "/", "/logout", &[]).await;
    assert_redirects_to(&r, "/login?m=signed_out");
    assert_sent_to_sign_in(&c.get(app.url("/")).send().await.unwrap());
    sql(&app, "DROP TRIGGER audit_store_down").await;
    assert_sent_to_sign_in(&c.get(app.url("/contacts")).send().await.unwrap());
}

// ---- L4: audit verify reports a forged head row first ----------------------------

#[tokio::test]
async fn audit_verify_names_a_forged_head_row_even_when_it_cannot_record_itself() {
    for forged in ["9223372036854775807", "'forged'"] {
        let app = spawn_app().await;
        app.login_as(Role::Auditor).await;
        // What an attacker with the database does: the constraints gone
        // (the table copied without them), a row put at the head.
        let mut conn = app.state.audit.db().pool.acquire().await.unwrap();
        for st in [
            "DROP TRIGGER audit_log_no_update".to_owned(),
            "DROP TRIGGER audit_log_no_delete".to_owned(),
            "CREATE TABLE audit_log_weak AS SELECT * FROM audit_log".to_owned(),
            "DROP TABLE audit_log".to_owned(),
            "ALTER TABLE audit_log_weak RENAME TO audit_log".to_owned(),
            format!(
                "INSERT INTO audit_log (seq, ts_us, actor, role, action, contact_id, field, reason, \
                 outcome, client_addr, user_agent, request_id, detail, prev_hash, hash, case_ref, \
                 initial_contact_id) SELECT {forged}, ts_us, actor, role, action, contact_id, field, \
                 reason, outcome, client_addr, user_agent, request_id, detail, prev_hash, hash, \
                 case_ref, initial_contact_id FROM audit_log WHERE seq = 1"
            ),
        ] {
            sqlx::query(sqlx::AssertSqlSafe(st.clone()))
                .execute(&mut *conn)
                .await
                .unwrap_or_else(|e| panic!("{st}: {e}"));
        }
        drop(conn);
        let out = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &app.db_url)
            .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("audit chain BROKEN"), "{forged}: {stdout}");
        assert!(
            stdout.contains(forged),
            "the report names the forged row {forged}: {stdout}"
        );
    }
}

// ---- L5: CSV formulas after any separator a spreadsheet may use ------------------

const SPREADSHEET_CHECK: &str = r#"
import csv, sys
bad = []
for delimiter in (",", ";"):
    with open(sys.argv[1], newline="", encoding="utf-8") as f:
        for row in csv.reader(f, delimiter=delimiter):
            for cell in row:
                if cell.lstrip(' "')[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    bad.append((delimiter, cell))
print(repr(bad))
sys.exit(1 if bad else 0)
"#;

#[tokio::test]
async fn the_csv_export_holds_no_live_formula_under_comma_or_semicolon_delimiters() {
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let app = spawn_app().await;
    // Each sign-in's row carries the client's User-Agent, as the attack's did.
    for (i, agent) in [
        "x;=1+1;y",
        "x,=1+1,y",
        "a; +cmd|' /C calc'!A0",
        "b;\"@SUM(1+1)\"",
        "c; ;-2+3",
        "=HYPERLINK(\"http://x\")",
        "d;\t=1",
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("agent{i}");
        app.add_user(&name, Role::Supervisor).await;
        let c = reqwest::Client::builder()
            .cookie_store(true)
            .user_agent(agent)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        assert_signed_in(&app.login(&c, &name, PASSWORD).await);
    }
    let auditor = app.login_as(Role::Auditor).await;
    let export = app.page(&auditor, "/audit/export?format=csv").await;
    assert!(export.contains("x;'=1+1;y"), "{export}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.csv");
    std::fs::write(&path, &export).unwrap();
    let out = Command::new(python)
        .args(["-c", SPREADSHEET_CHECK])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "live formulas: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- L6: no secret in --help or an error message ---------------------------------

const SECRETS: [(&str, &str); 5] = [
    (
        "DATABASE_URL",
        "postgres://callvault:Db-Pw-Canary-7731@127.0.0.1:1/callvault",
    ),
    (
        "CALLVAULT_DEMO_DATABASE_URL",
        "postgres://demo:Demo-Pw-Canary-7732@127.0.0.1:1/demo",
    ),
    ("CALLVAULT_OIDC_CLIENT_SECRET", "Oidc-Secret-Canary-7733"),
    ("CALLVAULT_METRICS_TOKEN", "Metrics-Token-Canary-7734"),
    (
        "CALLVAULT_CHECKPOINT_KEY",
        "arn:aws:kms:us-east-1:111122223333:key/Key-Canary-7735",
    ),
];

fn run_with_secrets(args: &[&str]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callvault"));
    cmd.args(args)
        .env("CALLVAULT_SECRETS_DIR", "/nonexistent/secrets");
    for (name, value) in SECRETS {
        cmd.env(name, value);
    }
    let out = cmd.output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn subcommand_paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in cmd.get_subcommands() {
        let mut path = prefix.clone();
        path.push(sub.get_name().to_owned());
        subcommand_paths(sub, path, out);
    }
}

#[test]
fn help_of_every_subcommand_and_error_messages_show_no_secret() {
    let mut paths = Vec::new();
    subcommand_paths(&callvault::cli::command(), Vec::new(), &mut paths);
    assert!(paths.len() > 10, "{paths:?}");
    let canaries = [
        "Db-Pw-Canary",
        "Demo-Pw-Canary",
        "Oidc-Secret-Canary",
        "Metrics-Token-Canary",
    ];
    for path in &paths {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let text = run_with_secrets(&args);
        assert!(text.contains("Usage"), "{args:?}: {text}");
        for canary in canaries {
            assert!(
                !text.contains(canary),
                "`callvault {}` shows {canary}:\n{text}",
                args.join(" ")
            );
        }
    }
    // Commands that fail on the (unreachable) database say so without the URL.
    for args in [
        vec!["migrate"],
        vec!["user", "list"],
        vec!["audit", "verify"],
        vec!["serve", "--listen", "127.0.0.1:0"],
    ] {
        let text = run_with_secrets(&args);
        assert!(text.contains("callvault"), "{args:?}: {text}");
        for canary in canaries {
            assert!(
                !text.contains(canary),
                "`callvault {}` shows {canary}:\n{text}",
                args.join(" ")
            );
        }
    }
}

// ---- L7: a user name is one name whatever its letter case ------------------------

#[tokio::test]
async fn user_names_that_differ_only_in_letter_case_are_one_account() {
    let app = spawn_app().await;
    let sam = app.add_user("sam", Role::Supervisor).await;
    let admin = app.login_as(Role::Admin).await;
    for twin in ["SAM", "Sam", "sAm"] {
        let r = app
            .post_form(
                &admin,
                "/admin/users",
                "/admin/users",
                &[
                    ("username", twin),
                    ("role", "admin"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{twin}");
        assert!(r.text().await.unwrap().contains("taken"));
    }
    let users = app.state.users.list().await.unwrap();
    assert_eq!(
        users
            .iter()
            .filter(|u| u.username.eq_ignore_ascii_case("sam"))
            .count(),
        1
    );
    // Signing in as "SAM" is signing in as sam, and is recorded as sam.
    let c = client();
    assert_signed_in(&app.login(&c, "SAM", PASSWORD).await);
    let login = app.last_audit("login").await.unwrap();
    assert_eq!(login.actor, "sam");
    assert_eq!(
        app.state.users.by_name("SaM").await.unwrap().unwrap().id,
        sam
    );
}

#[test]
fn the_migration_refuses_existing_twins_with_a_clear_message() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![sqlite_url(&dir)];
    if let Some(pg) = rt.block_on(fresh_postgres_database()) {
        urls.push(pg);
    }
    for url in urls {
        rt.block_on(async {
            let db = callvault::db::Db::open(&url).await.unwrap();
            for st in [
                "DROP INDEX users_username_nocase",
                "INSERT INTO users (username, password_hash, role, disabled, created_us, updated_us) \
                 VALUES ('kim', 'x', 'auditor', 0, 0, 0), ('KIM', 'x', 'admin', 0, 0, 0)",
                "DELETE FROM _sqlx_migrations WHERE version = 20261207120000",
            ] {
                sqlx::query(st).execute(&db.pool).await.unwrap();
            }
        });
        let out = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .arg("migrate")
            .env("DATABASE_URL", &url)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{url}");
        assert!(err.contains("differ only in letter case"), "{url}: {err}");
        assert!(err.contains("migrate again"), "{url}: {err}");
    }
}

#[tokio::test]
async fn sso_cannot_create_a_twin_of_a_local_user_and_records_the_issuer() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    s.app.add_user("root", Role::Admin).await;
    for name in ["Root", "ROOT"] {
        let id = unique_account("twin");
        put_account(
            &s.issuer,
            &id,
            serde_json::json!({"groups": ["cc-auditors"], "preferred_username": name}),
        )
        .await;
        s.sign_in(&id).await;
        let user = s.app.state.users.list().await.unwrap();
        let created = user
            .iter()
            .find(|u| u.sso_subject.as_deref() == Some(id.as_str()))
            .unwrap();
        assert!(created.username.starts_with("sso-"), "{name}: {created:?}");
        assert_eq!(created.sso_issuer.as_deref(), Some(s.issuer.as_str()));
    }
}

// ---- SSO accounts: passwords, roles, the failure page -----------------------------

#[tokio::test]
async fn an_sso_user_gets_a_local_password_only_when_an_admin_allows_it() {
    let app = spawn_app().await;
    app.add_user("kim.sso", Role::Supervisor).await;
    sql(&app, "UPDATE users SET sso_subject = 'kim-subject', sso_issuer = 'https://idp.test' WHERE username = 'kim.sso'").await;
    let run = |extra: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["user", "passwd", "kim.sso"])
            .args(extra)
            .env("DATABASE_URL", &app.db_url)
            .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"a new local password\n")
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let refused = run(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("single sign-on"));
    let c = client();
    assert_eq!(
        app.login(&c, "kim.sso", "a new local password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let allowed = run(&["--allow-sso-user"]);
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    let rows: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "user_change" && r.detail.contains("kim.sso"))
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].outcome, "refused");
    assert!(
        rows[1].detail.contains("allowed by --allow-sso-user"),
        "{rows:?}"
    );
}

#[tokio::test]
async fn an_admin_cannot_change_an_sso_users_role_the_provider_owns_it() {
    let app = spawn_app().await;
    let id = app.add_user("lee.sso", Role::Supervisor).await;
    sql(&app, "UPDATE users SET sso_subject = 'lee-subject', sso_issuer = 'https://idp.test' WHERE username = 'lee.sso'").await;
    let admin = app.login_as(Role::Admin).await;
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{id}/role"),
            &[("role", "auditor")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("identity provider owns"));
    let user = app.state.users.by_id(id).await.unwrap().unwrap();
    assert_eq!(user.role, Role::Supervisor);
    let row = app.last_audit("user_change").await.unwrap();
    assert_eq!(row.outcome, "refused");
}

#[tokio::test]
async fn the_failure_page_below_the_middleware_carries_the_security_headers() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Supervisor).await;
    // The session store's table gone: the session cannot be loaded.
    sql(&app, "ALTER TABLE sessions RENAME TO sessions_gone").await;
    let r = c.get(app.url("/")).send().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    for header in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "cache-control",
    ] {
        assert!(
            r.headers().contains_key(header),
            "no {header}: {:?}",
            r.headers()
        );
    }
    sql(&app, "ALTER TABLE sessions_gone RENAME TO sessions").await;
}
