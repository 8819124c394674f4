//! Step-up (TOTP), dual control, decrypt budgets and alerts. Each
//! test fails if its control is bypassed.

use std::time::Duration;

use callvault::auth::Role;
use callvault::clock::Clock as _;
use callvault::decrypt::policy::{ApprovalMode, BudgetLimit};
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::steps::{code_now, enrol, step_up};

#[tokio::test]
async fn a_decrypt_without_a_fresh_totp_is_refused_and_a_fresh_one_opens_it() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let totp = enrol(&app, &c).await;
    let row = app.last_audit("totp_enrol").await.unwrap();
    assert_eq!(row.outcome, "ok");
    let id = demo_contact_id(2);
    // Enrolling counted as a step-up; let it go stale.
    app.clock.advance(Duration::from_secs(6 * 60));
    let r = app.decrypt(&c, &id, "creditcard", "case 1").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/account/step-up?next=%2Freveals%2Fcontinue"));
    assert!(!r.text().await.unwrap().shows(&demo_card(2)));
    // An interruption, recorded as what it is: not a refused decrypt.
    let waiting = app.last_audit("step_up_required").await.unwrap();
    assert_eq!(waiting.outcome, "pending");
    assert_eq!(waiting.reason, "case 1");
    assert!(app.last_audit("decrypt_denied").await.is_none());
    assert!(app.last_audit("decrypt").await.is_none());

    // Wrong, malformed and expired codes are refused and audited.
    let stale = totp.generate((app.clock.now().timestamp() - 120) as u64);
    let long = "9".repeat(5000);
    for (bad, kind) in [
        ("000000", "wrong_code"),
        ("12345", "malformed_code"),
        ("<script>", "malformed_code"),
        (stale.as_str(), "wrong_code"),
        (long.as_str(), "malformed_code"),
    ] {
        let r = step_up(&app, &c, bad).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad:.20}");
        let row = app.last_audit("step_up_failed").await.unwrap();
        // The row names the kind of failure, never the typed code.
        assert_eq!(
            (row.outcome.as_str(), row.detail.as_str()),
            ("refused", kind)
        );
    }
    // Still refused after failed step-ups.
    assert_eq!(
        app.decrypt(&c, &id, "creditcard", "case 1").await.status(),
        StatusCode::SEE_OTHER
    );
    // A right password with a right code opens reveals for five minutes.
    app.clock.advance(Duration::from_secs(30));
    let code = code_now(&app, &totp);
    let r = step_up(&app, &c, &code).await;
    assert_redirects_to(&r, "/contacts");
    let r = app.decrypt(&c, &id, "creditcard", "case 1").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().shows(&demo_card(2)));
    // The same code cannot be used twice (replay).
    let r = step_up(&app, &c, &code).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.last_audit("step_up_failed").await.unwrap().detail,
        "replayed_code"
    );
    // Five minutes later the step-up has expired.
    app.clock.advance(Duration::from_secs(5 * 60 + 1));
    assert_eq!(
        app.decrypt(&c, &id, "creditcard", "case 1").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_audit_free_of(&app, &demo_card(2)).await;
}

#[tokio::test]
async fn a_wrong_password_with_a_right_code_is_no_step_up() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let totp = enrol(&app, &c).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let code = code_now(&app, &totp);
    let r = app
        .post_form(
            &c,
            "/account/step-up",
            "/account/step-up",
            &[("password", "not the password"), ("code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.last_audit("step_up_failed").await.unwrap().detail,
        "bad_password"
    );
    let r = app.decrypt(&c, &demo_contact_id(1), "zipcode", "x").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn guessing_codes_is_throttled() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let totp = enrol(&app, &c).await;
    for _ in 0..6 {
        step_up(&app, &c, "000000").await;
    }
    // Even a right code (the next step's, inside the allowed skew) is
    // refused while the account is locked.
    let next = totp.generate(app.clock.now().timestamp() as u64 + 30);
    let r = step_up(&app, &c, &next).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.last_audit("step_up_failed").await.unwrap().outcome,
        "throttled"
    );
}

#[tokio::test]
async fn an_enrolled_authenticator_cannot_be_replaced_without_an_admin_reset() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    enrol(&app, &c).await;
    let r = app
        .post_form(&c, "/account/totp", "/account/totp/enrol", &[])
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().contains("totp-secret"));
    // The admin resets it (audited); the supervisor can enrol again.
    let admin = app.login_as(Role::Admin).await;
    let html = app.page(&admin, "/admin/users").await;
    let marker = "/totp/reset\"";
    let end = html
        .find(marker)
        .expect("a reset button for the enrolled user");
    let id: String = html[..end]
        .rsplit('/')
        .next()
        .unwrap()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{id}/totp/reset"),
            &[],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=totp_reset");
    let row = app.last_audit("totp_reset").await.unwrap();
    assert_eq!(row.outcome, "ok");
    enrol(&app, &c).await;
    // Forged ids are refused and recorded.
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/users/999999/totp/reset",
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn when_an_admin_makes_totp_mandatory_supervisors_without_it_cannot_decrypt() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(4);
    assert_eq!(
        app.decrypt(&c, &id, "zipcode", "before").await.status(),
        StatusCode::OK
    );
    let admin = app.login_as(Role::Admin).await;
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/settings",
            &[("totp_mandatory", "on")],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=settings");
    assert_eq!(
        app.last_audit("setting_change").await.unwrap().detail,
        "totp_mandatory = on"
    );
    let r = app.decrypt(&c, &id, "zipcode", "after").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("enrol an authenticator"));
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().outcome,
        "totp_not_enrolled"
    );
    // Hostile setting values are refused.
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/settings",
            &[("totp_mandatory", "'; DROP TABLE users; --")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Enrolling (a fresh factor) opens reveals again.
    enrol(&app, &c).await;
    assert_eq!(
        app.decrypt(&c, &id, "zipcode", "enrolled").await.status(),
        StatusCode::OK
    );
}

/// Sessions that outlive the clock jumps of these tests.
fn long_sessions(s: &mut callvault::config::Settings) {
    s.idle_timeout = Duration::from_secs(4 * 3600);
    s.absolute_timeout = Duration::from_secs(8 * 3600);
}

async fn budget_app(limit: u32) -> TestApp {
    spawn_demo_app_custom(
        |_, _| {},
        |s| {
            s.policy.budget = BudgetLimit(Some(limit));
            long_sessions(s);
        },
    )
    .await
}

#[tokio::test]
async fn the_21st_decrypt_in_an_hour_is_refused_and_raised_as_an_alert() {
    let app = budget_app(20).await;
    let c = app.login_as(Role::Supervisor).await;
    for i in 0..20 {
        let r = app
            .decrypt(&c, &demo_contact_id(i), "zipcode", "bulk check")
            .await;
        assert_eq!(r.status(), StatusCode::OK, "decrypt {i}");
    }
    let r = app
        .decrypt(&c, &demo_contact_id(20), "creditcard", "one more")
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let html = r.text().await.unwrap();
    assert!(html.contains("decrypt budget") && !html.shows(&demo_card(20)));
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(row.outcome, "budget_exceeded");
    assert_eq!(row.detail, "20 of 20 per hour used");
    // Auditors see the alert on their dashboard and the volume page.
    let auditor = app.login_as(Role::Auditor).await;
    let html = app.page(&auditor, "/audit").await;
    assert!(html.contains("id=\"alerts\""), "{html}");
    assert!(html.contains("1 decrypt(s) refused over budget"));
    let html = app.page(&auditor, "/audit/volume").await;
    assert!(html.contains("badge warn\">unusual"), "{html}");
    assert!(
        html.contains("<td>20</td><td>20</td><td>0.0</td><td>1</td>"),
        "{html}"
    );
    // An hour later the budget is back.
    app.clock.advance(Duration::from_secs(3601));
    let r = app
        .decrypt(&c, &demo_contact_id(20), "creditcard", "next hour")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn parallel_requests_cannot_overshoot_the_budget() {
    let app = budget_app(3).await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(7);
    let html = app.page(&c, &format!("/contacts/{id}")).await;
    let token = csrf_in(&html);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (c, url, token) = (
            c.clone(),
            app.url(&format!("/contacts/{id}/decrypt")),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            c.post(url)
                .form(&[
                    ("field", "zipcode"),
                    ("reason", "race"),
                    ("csrf_token", &token),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        // Admitted reveals are sent to the page that shows them.
        if t.await.unwrap() == StatusCode::SEE_OTHER {
            ok += 1;
        }
    }
    assert_eq!(ok, 3, "exactly the budget is revealed");
    let decrypts = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "decrypt")
        .count();
    assert_eq!(decrypts, 3);
}

async fn dual_control_app() -> TestApp {
    spawn_demo_app_custom(
        |_, _| {},
        |s| {
            s.policy.approval = ApprovalMode::Required;
            long_sessions(s);
        },
    )
    .await
}

/// The id of the newest request shown to `c` on /approvals.
async fn newest_request_id(app: &TestApp, c: &reqwest::Client) -> String {
    let html = app.page(c, "/approvals").await;
    let marker = "data-request=\"";
    let start = html.find(marker).expect("a request is listed") + marker.len();
    html[start..start + 32].to_owned()
}

async fn act(app: &TestApp, c: &reqwest::Client, id: &str, verb: &str) -> reqwest::Response {
    app.post_form(c, "/approvals", &format!("/approvals/{id}/{verb}"), &[])
        .await
}

#[tokio::test]
async fn with_dual_control_a_decrypt_needs_another_supervisor_and_reveals_once() {
    let app = dual_control_app().await;
    let requester = app.login_as(Role::Supervisor).await;
    let approver = app.login_as(Role::Supervisor).await;
    let bystander = app.login_as(Role::Supervisor).await;
    let contact = demo_contact_id(9);
    let r = app
        .decrypt(&requester, &contact, "creditcard", "fraud case 9")
        .await;
    assert_redirects_to(&r, "/approvals?m=requested");
    assert!(!r.text().await.unwrap().shows(&demo_card(9)));
    assert!(app.last_audit("decrypt").await.is_none());
    let row = app.last_audit("decrypt_request").await.unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.reason.as_str()),
        ("pending", "fraud case 9")
    );
    let id = newest_request_id(&app, &requester).await;

    // The requester cannot reveal before approval, nor approve themself.
    assert_eq!(
        act(&app, &requester, &id, "reveal").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        act(&app, &requester, &id, "approve").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.last_audit("decrypt_approval").await.unwrap().outcome,
        "self_approval"
    );
    // Another supervisor approves.
    let r = act(&app, &approver, &id, "approve").await;
    assert_redirects_to(&r, "/approvals?m=approved");
    // Nobody but the requester can use it.
    assert_eq!(
        act(&app, &bystander, &id, "reveal").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&app, &approver, &id, "reveal").await.status(),
        StatusCode::FORBIDDEN
    );
    // The requester reveals it once...
    let r = act(&app, &requester, &id, "reveal").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-store"));
    assert!(r.text().await.unwrap().shows(&demo_card(9)));
    let row = app.last_audit("decrypt").await.unwrap();
    assert!(
        row.detail.contains(&format!("request {id} approved by")),
        "{}",
        row.detail
    );
    // ...and never again.
    let r = act(&app, &requester, &id, "reveal").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().shows(&demo_card(9)));
    assert_eq!(
        app.audit_rows()
            .await
            .iter()
            .filter(|r| r.action == "decrypt")
            .count(),
        1
    );
    // Forged and malformed ids reveal nothing and are recorded.
    for forged in [
        "0123456789abcdef0123456789abcdef",
        "not-an-id",
        "%27%20OR%201%3D1",
    ] {
        let r = act(&app, &requester, forged, "reveal").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{forged}");
        assert_eq!(
            app.last_audit("decrypt_approval").await.unwrap().outcome,
            "unknown_request"
        );
    }
    assert_audit_free_of(&app, &demo_card(9)).await;
}

#[tokio::test]
async fn an_expired_or_rejected_request_reveals_nothing() {
    let app = dual_control_app().await;
    let requester = app.login_as(Role::Supervisor).await;
    let approver = app.login_as(Role::Supervisor).await;
    let contact = demo_contact_id(11);
    app.decrypt(&requester, &contact, "creditcard", "late")
        .await;
    let id = newest_request_id(&app, &requester).await;
    app.clock.advance(Duration::from_secs(16 * 60));
    assert_eq!(
        act(&app, &approver, &id, "approve").await.status(),
        StatusCode::CONFLICT
    );
    assert_eq!(
        app.last_audit("decrypt_approval").await.unwrap().outcome,
        "expired"
    );
    assert!(app
        .page(&requester, "/approvals")
        .await
        .contains(">expired"));
    // Approved in time but revealed too late.
    app.decrypt(&requester, &contact, "creditcard", "slow")
        .await;
    let id = newest_request_id(&app, &requester).await;
    act(&app, &approver, &id, "approve").await;
    app.clock.advance(Duration::from_secs(16 * 60));
    let r = act(&app, &requester, &id, "reveal").await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().shows(&demo_card(11)));
    // Rejected.
    app.decrypt(&requester, &contact, "creditcard", "rejected")
        .await;
    let id = newest_request_id(&app, &requester).await;
    assert_redirects_to(
        &act(&app, &approver, &id, "reject").await,
        "/approvals?m=rejected",
    );
    assert_eq!(
        act(&app, &requester, &id, "reveal").await.status(),
        StatusCode::CONFLICT
    );
    assert!(app.last_audit("decrypt").await.is_none());
    // A field the contact does not hold cannot even be requested.
    let r = app.decrypt(&requester, &contact, "passport", "x").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_approved_reveal_still_needs_the_requesters_step_up() {
    let app = dual_control_app().await;
    let requester = app.login_as(Role::Supervisor).await;
    let approver = app.login_as(Role::Supervisor).await;
    let totp = enrol(&app, &requester).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let contact = demo_contact_id(12);
    app.decrypt(&requester, &contact, "zipcode", "needs both")
        .await;
    let id = newest_request_id(&app, &requester).await;
    act(&app, &approver, &id, "approve").await;
    let r = act(&app, &requester, &id, "reveal").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The refused attempt did not use up the approval.
    step_up(&app, &requester, &code_now(&app, &totp)).await;
    let r = act(&app, &requester, &id, "reveal").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Request times are shown in the reader's time zone, named beside them.
#[tokio::test]
async fn request_times_are_shown_in_the_readers_time_zone() {
    let app = dual_control_app().await;
    let requester = app.login_as(Role::Supervisor).await;
    let contact = demo_contact_id(11);
    app.decrypt(&requester, &contact, "creditcard", "fraud case 11")
        .await;
    let utc = app.page(&requester, "/approvals").await;
    assert!(
        utc.contains("Created <span class=\"muted\">(UTC)</span>"),
        "{utc}"
    );
    let r = app
        .post_form(
            &requester,
            "/account/settings",
            "/account/settings",
            &[("time_zone", "Asia/Kathmandu")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = app.page(&requester, "/approvals").await;
    assert!(html.contains("(Asia/Kathmandu)"), "{html}");
    let row = app.last_audit("decrypt_request").await.unwrap();
    let local = {
        use chrono::TimeZone as _;
        chrono_tz::Asia::Kathmandu
            .timestamp_micros(row.ts_us)
            .unwrap()
            .format("%Y-%m-%d %H:%M")
            .to_string()
    };
    assert!(html.contains(&local), "{local} in {html}");
}
