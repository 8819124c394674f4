//! Each hole the first independent attack found, written as the
//! attack was. Each test fails if its control is bypassed.

use std::time::Duration;

use callvault::auth::totp::Enrolment;
use callvault::auth::Role;
use callvault::decrypt::policy::ApprovalMode;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::steps::{begin_enrolment, code_now, enrol, step_up};

fn count(
    rows: &[callvault::audit::AuditRow],
    f: impl Fn(&callvault::audit::AuditRow) -> bool,
) -> usize {
    rows.iter().filter(|r| f(r)).count()
}

// ---- 1: a step-up belongs to the person and the sign-in --------------------

#[tokio::test]
async fn a_second_supervisor_signing_in_in_the_same_browser_does_not_inherit_the_first_ones_step_up(
) {
    let app = spawn_demo_app().await;
    app.add_user("alice", Role::Supervisor).await;
    app.add_user("bob", Role::Supervisor).await;
    // Bob enrolled an authenticator once, in his own browser.
    let bobs_own = client();
    assert_signed_in(&app.login(&bobs_own, "bob", PASSWORD).await);
    enrol(&app, &bobs_own).await;

    // Alice steps up with her own authenticator...
    let jar = client();
    assert_signed_in(&app.login(&jar, "alice", PASSWORD).await);
    let alices = enrol(&app, &jar).await;
    app.clock.advance(Duration::from_secs(31));
    assert_redirects_to(
        &step_up(&app, &jar, &code_now(&app, &alices)).await,
        "/contacts",
    );
    let id = demo_contact_id(3);
    let r = app.decrypt(&jar, &id, "creditcard", "alice's case").await;
    assert_eq!(r.status(), StatusCode::OK);
    let alices_token = csrf_in(&app.page(&jar, "/").await);

    // ...then, in the same cookie jar, signs in as Bob with only his password.
    let r = app
        .post_form(
            &jar,
            "/",
            "/login",
            &[("username", "bob"), ("password", PASSWORD)],
        )
        .await;
    assert_signed_in(&r);
    // A fresh session: nothing of Alice's carried over, not even the token.
    let bobs_token = csrf_in(&app.page(&jar, "/").await);
    assert_ne!(alices_token, bobs_token);

    // Bob's reveal needs Bob's step-up.
    let r = app.decrypt(&jar, &id, "creditcard", "bob's case").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/account/step-up"));
    assert!(!r.text().await.unwrap().shows(&demo_card(3)));
    let rows = app.audit_rows().await;
    assert_eq!(
        count(&rows, |r| r.action == "decrypt" && r.actor == "bob"),
        0
    );
    assert_eq!(
        count(&rows, |r| r.action == "step_up" && r.actor == "bob"),
        0
    );
    let waiting = app.last_audit("step_up_required").await.unwrap();
    assert_eq!(
        (waiting.actor.as_str(), waiting.outcome.as_str()),
        ("bob", "pending")
    );
}

// ---- 3: a change and its audit row commit together ---------------------------

async fn break_the_audit_store(app: &TestApp) {
    sqlx::query(
        "CREATE TRIGGER audit_log_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .execute(&app.state.db.pool)
    .await
    .unwrap();
}

async fn mend_the_audit_store(app: &TestApp) {
    sqlx::query("DROP TRIGGER audit_log_full")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

/// POSTs `fields` with a token fetched before the store broke; asserts the
/// console said the audit log was unavailable.
async fn refused_for_want_of_the_log(
    app: &TestApp,
    c: &reqwest::Client,
    token: &str,
    action: &str,
    fields: &[(&str, &str)],
) {
    let mut form = fields.to_vec();
    form.push(("csrf_token", token));
    let r = c.post(app.url(action)).form(&form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{action}");
    assert!(
        r.text().await.unwrap().contains("Audit log unavailable"),
        "{action}"
    );
}

#[tokio::test]
async fn when_the_audit_store_fails_no_audited_change_happens() {
    let app =
        spawn_demo_app_custom(|_, _| {}, |s| s.policy.approval = ApprovalMode::Required).await;
    let admin = app.login_as(Role::Admin).await;
    let sup_id = app.add_user("sup", Role::Supervisor).await;
    let off_id = app.add_user("off", Role::Supervisor).await;
    app.state.users.set_disabled(off_id, true).await.unwrap();
    // An enrolled supervisor (for the reset), one half-way through enrolling
    // (for the confirmation), one not enrolled (for the start).
    let enrolled_id = app.add_user("enrolled", Role::Supervisor).await;
    let enrolled = client();
    app.login(&enrolled, "enrolled", PASSWORD).await;
    enrol(&app, &enrolled).await;
    let pending_id = app.add_user("pending", Role::Supervisor).await;
    let pending = client();
    app.login(&pending, "pending", PASSWORD).await;
    let pending_totp = begin_enrolment(&app, &pending).await;
    let fresh_id = app.add_user("fresh", Role::Supervisor).await;
    let fresh = client();
    app.login(&fresh, "fresh", PASSWORD).await;
    // A decrypt request awaiting another supervisor's decision.
    let requester = app.login_as(Role::Supervisor).await;
    let approver = app.login_as(Role::Supervisor).await;
    app.decrypt(&requester, &demo_contact_id(5), "zipcode", "dispute")
        .await;
    let request = app.state.approvals.recent(10).await.unwrap()[0].clone();

    let admin_token = csrf_in(&app.page(&admin, "/admin/users").await);
    let pending_token = csrf_in(&app.page(&pending, "/account/totp").await);
    let fresh_token = csrf_in(&app.page(&fresh, "/account/totp").await);
    let approver_token = csrf_in(&app.page(&approver, "/approvals").await);
    let requester_token = csrf_in(&app.page(&requester, "/approvals").await);
    let rows_before = app.audit_rows().await.len();

    break_the_audit_store(&app).await;
    let t = admin_token.as_str();
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        "/admin/settings",
        &[("totp_mandatory", "on")],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        "/admin/users",
        &[
            ("username", "newbie"),
            ("role", "auditor"),
            ("password", PASSWORD),
        ],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        &format!("/admin/users/{sup_id}/disable"),
        &[],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        &format!("/admin/users/{off_id}/enable"),
        &[],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        &format!("/admin/users/{sup_id}/role"),
        &[("role", "auditor")],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &admin,
        t,
        &format!("/admin/users/{enrolled_id}/totp/reset"),
        &[],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &approver,
        &approver_token,
        &format!("/approvals/{}/approve", request.id),
        &[],
    )
    .await;
    refused_for_want_of_the_log(&app, &fresh, &fresh_token, "/account/totp/enrol", &[]).await;
    let code = code_now(&app, &pending_totp);
    refused_for_want_of_the_log(
        &app,
        &pending,
        &pending_token,
        "/account/totp/confirm",
        &[("password", PASSWORD), ("code", &code)],
    )
    .await;
    refused_for_want_of_the_log(
        &app,
        &requester,
        &requester_token,
        &format!("/contacts/{}/decrypt", demo_contact_id(6)),
        &[("field", "zipcode"), ("reason", "second dispute")],
    )
    .await;
    mend_the_audit_store(&app).await;

    // Nothing changed, and nothing was recorded.
    let s = &app.state;
    assert!(
        !s.totp.mandatory().await.unwrap(),
        "setting saved unaudited"
    );
    assert!(
        s.users.by_name("newbie").await.unwrap().is_none(),
        "user added unaudited"
    );
    let sup = s.users.by_id(sup_id).await.unwrap().unwrap();
    assert!(!sup.disabled, "user disabled unaudited");
    assert_eq!(sup.role, Role::Supervisor, "role changed unaudited");
    assert!(
        s.users.by_id(off_id).await.unwrap().unwrap().disabled,
        "user enabled unaudited"
    );
    assert_eq!(
        s.totp.enrolment(enrolled_id).await.unwrap(),
        Enrolment::Active,
        "reset unaudited"
    );
    assert_eq!(
        s.totp.enrolment(fresh_id).await.unwrap(),
        Enrolment::None,
        "enrolment started unaudited"
    );
    assert_eq!(
        s.totp.enrolment(pending_id).await.unwrap(),
        Enrolment::Pending,
        "enrolment confirmed unaudited"
    );
    assert_eq!(
        s.approvals.get(&request.id).await.unwrap().status,
        "pending",
        "decision saved unaudited"
    );
    assert_eq!(
        s.approvals.recent(10).await.unwrap().len(),
        1,
        "request created unaudited"
    );
    assert_eq!(app.audit_rows().await.len(), rows_before);
    assert!(s.audit.verify().await.unwrap().ok());
    // The console recovers: the same change now happens, with its row.
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/settings",
            &[("totp_mandatory", "on")],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=settings");
    assert!(s.totp.mandatory().await.unwrap());
}

// ---- 4: throttles count before they check -------------------------------------

#[tokio::test]
async fn forty_parallel_wrong_passwords_reach_the_password_hash_at_most_five_times() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    let token = csrf_in(&app.page(&c, "/login").await);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let (c, url, token) = (c.clone(), app.url("/login"), token.clone());
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .form(&[
                    ("username", "sam"),
                    ("password", "a wrong password guess"),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    // Every password that reached the hash left a `bad_password` row.
    let rows = app.audit_rows().await;
    let checked = count(&rows, |r| {
        r.action == "login_failed" && r.detail == "bad_password"
    });
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords were checked against the hash"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::UNAUTHORIZED)
            .count(),
        checked
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
            .count(),
        40 - checked
    );
    let (attempts,): (i64,) =
        sqlx::query_as("SELECT failures FROM login_throttle WHERE bucket = 'user:sam'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(attempts, i64::try_from(checked).unwrap());
}

#[tokio::test]
async fn ten_parallel_totp_codes_reach_the_check_at_most_five_times() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    enrol(&app, &c).await;
    let token = csrf_in(&app.page(&c, "/account/step-up").await);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (c, url, token) = (c.clone(), app.url("/account/step-up"), token.clone());
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .form(&[
                    ("password", PASSWORD),
                    ("code", &format!("{:06}", 100_000 + i)),
                    ("next", "/contacts"),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let rows = app.audit_rows().await;
    let checked = count(&rows, |r| {
        r.action == "step_up_failed" && r.outcome == "refused"
    });
    let throttled = count(&rows, |r| {
        r.action == "step_up_failed" && r.outcome == "throttled"
    });
    assert!((1..=5).contains(&checked), "{checked} codes were checked");
    // A signed-in user's refusals stay individual rows.
    assert_eq!(checked + throttled, 10);
}

// ---- 5: anonymous floods are counted, not logged one by one --------------------

#[tokio::test]
async fn three_thousand_anonymous_csrf_refusals_leave_a_bounded_number_of_rows() {
    let app = spawn_app().await;
    let before = app.audit_rows().await.len();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (c, url) = (client(), app.url("/logout"));
        tasks.push(tokio::spawn(async move {
            for _ in 0..375 {
                let r = c.post(&url).form(&[("x", "y")]).send().await.unwrap();
                assert_eq!(r.status(), StatusCode::FORBIDDEN);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // At most a few summaries of intervals crossed during the flood (a
    // refusal counted just after its interval was summarised is summarised
    // again, with its own count).
    let during = app.audit_rows().await.len() - before;
    assert!(during <= 10, "{during} rows for 3,000 refusals");
    // Once the interval is over, one row per address holds the count.
    app.clock.advance(Duration::from_secs(61));
    app.state.audit.flush_tallies().await.unwrap();
    let rows = app.audit_rows().await;
    let summaries: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "csrf_rejected")
        .collect();
    assert!(summaries.len() <= 11, "{} summary rows", summaries.len());
    let total: i64 = summaries
        .iter()
        .map(|r| {
            assert_eq!(
                (r.actor.as_str(), r.outcome.as_str()),
                ("anonymous", "refused_summary")
            );
            assert_eq!(r.client_addr, "127.0.0.1");
            r.detail.split(' ').next().unwrap().parse::<i64>().unwrap()
        })
        .sum();
    assert_eq!(total, 3000);
    assert!(app.state.audit.verify().await.unwrap().ok());
}

#[tokio::test]
async fn a_signed_in_users_csrf_refusals_stay_individual_rows() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    for _ in 0..3 {
        let r = c
            .post(app.url("/audit/verify"))
            .form(&[("csrf_token", "forged")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let rows = app.audit_rows().await;
    let refused: Vec<_> = rows
        .iter()
        .filter(|r| r.action == "csrf_rejected")
        .collect();
    assert_eq!(refused.len(), 3);
    assert!(refused
        .iter()
        .all(|r| r.actor.starts_with("auditor-") && r.outcome == "refused"));
}

// ---- the decrypt budget across replicas ------------------------------------------

struct Replica {
    child: std::process::Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `callvault demo` process on `db_url`, sharing `dir` (its key and
/// secrets); the supervisor's password if this start created the users.
fn replica(dir: &std::path::Path, db_url: &str) -> (Replica, Option<String>) {
    use std::io::{BufRead as _, BufReader};
    let port = free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callvault"))
        .arg("demo")
        .env("CALLVAULT_DEMO_DIR", dir)
        .env("CALLVAULT_DEMO_DATABASE_URL", db_url)
        .env("CALLVAULT_LISTEN", format!("127.0.0.1:{port}"))
        .env("CALLVAULT_DECRYPT_BUDGET", "3/h")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start callvault demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut password = None;
    let mut banner_done = false;
    let mut users_exist = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !(banner_done && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()) {
        assert!(std::time::Instant::now() < deadline, "demo did not start");
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            if line.trim_start().starts_with("supervisor") {
                password = line.split_whitespace().last().map(str::to_owned);
            }
            // The last banner line: passwords (admin is printed last), or
            // the command after the note that the users exist.
            users_exist |= line.starts_with("Demo users already exist");
            banner_done |= line.trim_start().starts_with("admin")
                || (users_exist && line.contains("callvault user passwd sam"));
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    (Replica { child, base }, password)
}

async fn sign_in(base: &str, password: &str) -> reqwest::Client {
    let c = sign_in_at(base, "sam", password).await;
    // The session's CSRF token, made once before the parallel requests.
    c.get(format!("{base}/")).send().await.unwrap();
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_console_processes_on_one_postgresql_database_cannot_overshoot_the_budget_together() {
    let Some(db_url) = fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (first, password) = replica(dir.path(), &db_url);
    let password = password.expect("the first start prints the demo passwords");
    let (second, _) = replica(dir.path(), &db_url);
    let mut tasks = Vec::new();
    for base in [first.base.clone(), second.base.clone()] {
        let c = sign_in(&base, &password).await;
        for k in 0..6 {
            let (c, base) = (c.clone(), base.clone());
            tasks.push(tokio::spawn(async move {
                decrypt_attempt(&base, &c, &demo_contact_id(k), "zipcode", "replica race")
                    .await
                    .map(|(status, _, _)| status)
            }));
        }
    }
    let mut revealed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Some(StatusCode::OK) => revealed += 1,
            Some(s) => assert_eq!(s, StatusCode::TOO_MANY_REQUESTS),
            None => panic!("a replica stopped answering"),
        }
    }
    assert!(
        revealed <= 3,
        "{revealed} reveals with a budget of 3 per hour"
    );
    let db = callvault::db::Db::connect(&db_url).await.unwrap();
    let (rows,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE actor = 'sam' AND action = 'decrypt'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(rows, revealed);
    assert!(revealed >= 1, "the budget let nothing through");
    drop((first, second));
}
