//! Every reveal channel goes through one admission: for each guard, the web
//! form and `callvault decrypt` (run as a separate process on the same
//! database) refuse alike, each refusal written as exactly one audit row
//! with the same action and outcome, and neither shows the value.

use std::process::{Command, Output, Stdio};

use callvault::audit::Refusal as _;
use callvault::auth::Role;
use callvault::config::Settings;
use callvault::decrypt::RevealRefusal;
use callvault::demo::{demo_card, demo_contact_id};
use lambda_encrypt::context::ContactId;

use crate::helpers::*;

/// One guard, set the same way for both channels.
struct Guard {
    name: &'static str,
    /// The console's settings for the web.
    settings: fn(&mut Settings),
    /// The same settings as the command line reads them.
    env: &'static [(&'static str, &'static str)],
    /// The asker's role.
    role: Role,
    reason: &'static str,
    case_ref: &'static str,
    /// The asker enrols an authenticator first (and has no fresh step-up).
    enrol: bool,
    /// Reveals the asker made before (against a budget).
    before: usize,
    /// The row both channels write: (action, outcome).
    web: (&'static str, &'static str),
    cli: (&'static str, &'static str),
}

fn none(_: &mut Settings) {}

const GUARDS: &[Guard] = &[
    Guard {
        name: "role",
        settings: none,
        env: &[],
        role: Role::Auditor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "role"),
        cli: ("decrypt_denied", "role"),
    },
    Guard {
        name: "blank reason",
        settings: none,
        env: &[],
        role: Role::Supervisor,
        reason: "   ",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "no_reason"),
        cli: ("decrypt_denied", "no_reason"),
    },
    Guard {
        name: "invisible reason",
        settings: none,
        env: &[],
        role: Role::Supervisor,
        reason: "\u{200B}\u{2060}\u{202E}",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "no_reason"),
        cli: ("decrypt_denied", "no_reason"),
    },
    Guard {
        name: "case reference required",
        settings: |s| {
            s.policy.case = callvault::decrypt::case::CaseRule::new("Case", "", true).unwrap()
        },
        env: &[
            ("CALLVAULT_CASE_REQUIRED", "true"),
            ("CALLVAULT_CASE_LABEL", "Case"),
        ],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "no_case_ref"),
        cli: ("decrypt_denied", "no_case_ref"),
    },
    Guard {
        name: "case reference malformed",
        settings: none,
        env: &[],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "two words!",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "bad_case_ref"),
        cli: ("decrypt_denied", "bad_case_ref"),
    },
    Guard {
        name: "keyring missing",
        settings: |s| s.keyring = None,
        env: &[],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_denied", "not_configured"),
        cli: ("decrypt_denied", "not_configured"),
    },
    // The web turns the reveal into a request for a second supervisor; the
    // command line has no second person and refuses. Neither reveals.
    Guard {
        name: "dual control",
        settings: |s| s.policy.approval = callvault::decrypt::policy::ApprovalMode::Required,
        env: &[("CALLVAULT_DECRYPT_APPROVAL", "required")],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: false,
        before: 0,
        web: ("decrypt_request", "pending"),
        cli: ("decrypt_denied", "approval_required"),
    },
    Guard {
        name: "step-up",
        settings: none,
        env: &[],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: true,
        before: 0,
        web: ("step_up_required", "pending"),
        cli: ("step_up_required", "pending"),
    },
    Guard {
        name: "budget",
        settings: |s| s.policy.budget = "1/h".parse().unwrap(),
        env: &[("CALLVAULT_DECRYPT_BUDGET", "1/h")],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "",
        enrol: false,
        before: 1,
        web: ("decrypt_denied", "budget_exceeded"),
        cli: ("decrypt_denied", "budget_exceeded"),
    },
    Guard {
        name: "everything in order",
        settings: none,
        env: &[],
        role: Role::Supervisor,
        reason: "chargeback 7",
        case_ref: "CB-7",
        enrol: false,
        before: 0,
        web: ("decrypt", "ok"),
        cli: ("decrypt", "ok"),
    },
];

/// `callvault decrypt` on the app's database, as `operator`.
fn cli_reveal(
    app: &TestApp,
    operator: &str,
    contact: &str,
    ciphertext: &str,
    g: &Guard,
    extra: &[&str],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callvault"));
    cmd.args(["decrypt", "--contact-id", contact, "--field", "creditcard"])
        .args(["--operator", operator, "--reason", g.reason])
        .args(["--case-ref", g.case_ref, "--ciphertext", ciphertext])
        .args(extra)
        .env("DATABASE_URL", &app.db_url)
        .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
        .envs(g.env.iter().copied())
        .stdin(Stdio::null());
    if g.name != "keyring missing" {
        let key = app.key_path.as_ref().unwrap();
        cmd.env("CALLVAULT_KEYRING", format!("raw-aes:{}", key.display()));
    }
    cmd.output().unwrap()
}

/// The ciphertext of the card number a demo contact holds, as the Lambda captured it.
async fn stored_card(app: &TestApp, contact: &str) -> String {
    let id = ContactId::parse(contact).unwrap();
    app.state.directory.attributes(&id).await.unwrap()["creditcard"].clone()
}

#[tokio::test]
async fn every_guard_refuses_alike_on_the_web_and_the_command_line_with_one_row_each() {
    for (i, g) in GUARDS.iter().enumerate() {
        let app = spawn_demo_app_custom(|_, _| {}, g.settings).await;
        let contact = demo_contact_id(i);
        let ciphertext = stored_card(&app, &contact).await;
        let name = format!("asker{i}");
        app.add_user(&name, g.role).await;
        let web = client();
        let r = app.login(&web, &name, PASSWORD).await;
        assert!(r.status().is_redirection(), "{}: sign-in", g.name);
        if g.enrol {
            crate::support::steps::enrol(&app, &web).await;
            // Enrolling counts as a step-up; make it stale.
            app.clock.advance(std::time::Duration::from_secs(3600));
            let r = app.login(&web, &name, PASSWORD).await;
            assert!(r.status().is_redirection(), "{}: sign-in again", g.name);
        }
        for _ in 0..g.before {
            let r = app.decrypt(&web, &contact, "creditcard", "earlier").await;
            assert_eq!(r.status(), 200, "{}: the earlier reveal", g.name);
        }

        // The web form.
        let token = csrf_in(&app.page(&web, &format!("/contacts/{contact}")).await);
        let before = app.audit_rows().await.len();
        let r = web
            .post(app.url(&format!("/contacts/{contact}/decrypt")))
            .form(&[
                ("field", "creditcard"),
                ("reason", g.reason),
                ("case_ref", g.case_ref),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        let r = follow_reveal(&app.address, &web, r).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        let rows = app.audit_rows().await;
        // A reason or case reference to fix comes back on the contact's
        // page, which records its own view.
        let fixable = matches!(g.web.1, "no_reason" | "no_case_ref" | "bad_case_ref");
        let shown_again = rows[before..]
            .iter()
            .filter(|r| r.action == "contact_view")
            .count();
        assert_eq!(shown_again, usize::from(fixable), "{}: page views", g.name);
        if fixable {
            assert_eq!(status, 400, "{}", g.name);
            assert!(
                body.contains(r#"aria-invalid="true""#),
                "{}: inline",
                g.name
            );
        }
        let new: Vec<_> = rows[before..]
            .iter()
            .filter(|r| r.action != "contact_view")
            .collect();
        assert_eq!(new.len(), 1, "{}: web rows {new:?}", g.name);
        assert_eq!(
            (new[0].action.as_str(), new[0].outcome.as_str()),
            g.web,
            "{}: web",
            g.name
        );
        assert_eq!(new[0].role, g.role.as_str(), "{}: web role", g.name);
        let card = demo_card(i);
        let revealed = body.shows(&card);
        assert_eq!(revealed, g.web.0 == "decrypt", "{}: web {status}", g.name);

        // The command line, same guard, same database.
        let before = app.audit_rows().await.len();
        let out = cli_reveal(&app, &name, &contact, &ciphertext, g, &[]);
        let rows = app.audit_rows().await;
        let new: Vec<_> = rows[before..].iter().collect();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(new.len(), 1, "{}: cli rows {new:?} ({stderr})", g.name);
        assert_eq!(
            (new[0].action.as_str(), new[0].outcome.as_str()),
            g.cli,
            "{}: cli ({stderr})",
            g.name
        );
        assert_eq!(new[0].role, g.role.as_str(), "{}: cli role", g.name);
        assert_eq!(new[0].client_addr, "cli", "{}", g.name);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            stdout.shows(&card),
            g.cli.0 == "decrypt",
            "{}: cli output",
            g.name
        );
        assert_eq!(out.status.success(), g.cli.0 == "decrypt", "{}", g.name);
        if g.cli.0 != "decrypt" {
            assert_eq!(out.status.code(), Some(2), "{}: {stderr}", g.name);
            assert!(stderr.contains(g.cli.1), "{}: {stderr}", g.name);
        }
        assert_audit_free_of(&app, &card).await;
    }
}

#[tokio::test]
async fn the_command_line_refuses_an_operator_without_an_account_under_the_role_outcome() {
    let app = spawn_demo_app().await;
    let contact = demo_contact_id(0);
    let ciphertext = stored_card(&app, &contact).await;
    let before = app.audit_rows().await.len();
    let out = cli_reveal(&app, "nobody", &contact, &ciphertext, &GUARDS[9], &[]);
    assert_eq!(out.status.code(), Some(2));
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), before + 1);
    let row = rows.last().unwrap();
    assert_eq!(
        (row.action.as_str(), row.outcome.as_str()),
        ("decrypt_denied", "role")
    );
    assert_eq!((row.actor.as_str(), row.role.as_str()), ("nobody", "none"));
}

/// Hostile reasons and case references on the command line: a clear
/// refusal, one row, nothing revealed, the text itself nowhere in the row
/// or the output, never a panic.
#[tokio::test]
async fn hostile_reasons_and_case_references_on_the_command_line_are_refused_cleanly() {
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let contact = demo_contact_id(0);
    let ciphertext = stored_card(&app, &contact).await;
    let long = "x".repeat(10_000);
    let hostile: &[(&str, &str, &str)] = &[
        ("a\nforged: row", "CB-1\r\n=cmd", "bad_case_ref"),
        (
            "fine reason",
            "CB-1'; DROP TABLE audit_log; --",
            "bad_case_ref",
        ),
        ("fine reason", &long, "bad_case_ref"),
        (&long, "", "no_reason"),
        ("\u{FEFF}\u{200D}", "", "no_reason"),
    ];
    for (reason, case_ref, outcome) in hostile {
        let g = Guard {
            reason: Box::leak(reason.to_string().into_boxed_str()),
            case_ref: Box::leak(case_ref.to_string().into_boxed_str()),
            ..GUARDS[9]
        };
        let before = app.audit_rows().await.len();
        let out = cli_reveal(&app, "sam", &contact, &ciphertext, &g, &[]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{reason:?} {case_ref:?}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
        assert!(!text.shows(&demo_card(0)), "{text}");
        let rows = app.audit_rows().await;
        assert_eq!(rows.len(), before + 1, "{text}");
        let row = rows.last().unwrap();
        assert_eq!(row.outcome, *outcome);
        // What was refused is not kept: the row holds no part of it.
        if *outcome == "bad_case_ref" {
            assert_eq!(row.case_ref, "");
        } else {
            assert_eq!(row.reason, "");
        }
    }
}

/// Every refusal the admission can return has its own outcome and action,
/// and is recorded as exactly one row before it can be answered (only a
/// recorded refusal converts into a page: `Recorded<RevealRefusal>`).
#[tokio::test]
async fn every_refusal_outcome_is_recorded_as_exactly_one_row() {
    let app = spawn_app().await;
    let mut outcomes = std::collections::BTreeSet::new();
    for refusal in RevealRefusal::examples() {
        let outcome = refusal.outcome().into_owned();
        let action = refusal.action();
        assert!(
            outcomes.insert((action.as_str(), outcome.clone())),
            "{outcome} twice"
        );
        let before = app.audit_rows().await.len();
        let recorded = app
            .state
            .audit
            .refuse(refusal, |action, outcome, detail| {
                callvault::audit::AuditEvent::new(
                    action,
                    "sam",
                    "supervisor",
                    outcome,
                    &Default::default(),
                )
                .detail(detail)
            })
            .await
            .unwrap();
        let rows = app.audit_rows().await;
        assert_eq!(rows.len(), before + 1);
        assert_eq!(rows.last().unwrap().seq, recorded.seq());
        assert_eq!(rows.last().unwrap().outcome, outcome);
        assert_eq!(rows.last().unwrap().action, action.as_str());
        // The page a browser gets for it.
        let page =
            callvault::web::AppError::from(callvault::decrypt::RevealError::Refused(recorded));
        let _ = actix_web::ResponseError::error_response(&page);
    }
    assert_eq!(outcomes.len(), RevealRefusal::examples().len());
}
