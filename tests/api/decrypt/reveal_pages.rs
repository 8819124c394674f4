//! The supervisor's side: a reveal without traps (the budget left
//! in sight, a case reference, what was typed kept across a step-up and a
//! sign-in, the value hidden until asked for and gone after a while), and
//! pages that keep people where they were (error pages with the navigation,
//! an expired session that says so and comes back, open requests counted).

use std::time::Duration;

use callvault::auth::Role;
use callvault::decrypt::case::CaseRule;
use callvault::decrypt::policy::{ApprovalMode, BudgetLimit};
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::header::LOCATION;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::steps::{code_now, enrol};

/// Posts the contact's reveal form with a case reference.
async fn reveal_with_case(
    app: &TestApp,
    c: &reqwest::Client,
    id: &str,
    reason: &str,
    case_ref: &str,
) -> reqwest::Response {
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

/// Signs `username` in on a client whose session is signed in already (the
/// sign-in page itself sends signed-in people away, so the form of another
/// page carries the token).
async fn sign_in_again(app: &TestApp, c: &reqwest::Client, username: &str) -> reqwest::Response {
    app.post_form(
        c,
        "/",
        "/login",
        &[("username", username), ("password", PASSWORD)],
    )
    .await
}

#[tokio::test]
async fn the_budget_left_is_shown_beside_the_reveal_forms_and_counts_down() {
    let app = spawn_demo_app_custom(|_, _| {}, |s| s.policy.budget = BudgetLimit(Some(3))).await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains("3 of 3 reveals left this hour"), "{page}");
    for left in [2, 1, 0] {
        let r = app.decrypt(&c, &id, "creditcard", "chargeback 1").await;
        assert_eq!(r.status(), StatusCode::OK);
        let page = app.page(&c, &format!("/contacts/{id}")).await;
        assert!(
            page.contains(&format!("{left} of 3 reveals left this hour")),
            "{left} left"
        );
    }
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(
        page.contains(r#"<p class="error" id="budget""#),
        "spent: shown as such"
    );
    // Without a budget nothing is claimed.
    let open = spawn_demo_app_custom(|_, _| {}, |s| s.policy.budget = BudgetLimit(None)).await;
    let c = open.login_as(Role::Supervisor).await;
    let page = open.page(&c, &format!("/contacts/{id}")).await;
    assert!(!page.contains("reveals left"));
}

#[tokio::test]
async fn a_reveal_interrupted_by_a_step_up_keeps_its_reason_and_case_for_that_person_only() {
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("bob", Role::Supervisor).await;
    let c = client();
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
    let totp = enrol(&app, &c).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let id = demo_contact_id(1);
    let contact = format!("/contacts/{id}");

    let r = reveal_with_case(&app, &c, &id, "chargeback 7", "CB-7").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with("/account/step-up?next="), "{to}");
    assert!(
        !to.contains("chargeback") && !to.contains("CB-7"),
        "never in a URL: {to}"
    );
    // Recorded as an interruption, not as a refused decrypt.
    let waiting = app.last_audit("step_up_required").await.unwrap();
    assert_eq!(
        (
            waiting.outcome.as_str(),
            waiting.reason.as_str(),
            waiting.field.as_str()
        ),
        ("pending", "chargeback 7", "creditcard")
    );
    assert!(app.last_audit("decrypt_denied").await.is_none());

    // Back on the contact (before and after the step-up): what was typed is there.
    let page = app.page(&c, &contact).await;
    assert!(page.contains(r#"id="kept-form""#));
    assert!(page.contains(r#"value="chargeback 7""#) && page.contains(r#"value="CB-7""#));
    let r = app
        .post_form(
            &c,
            "/account/step-up",
            "/account/step-up",
            &[
                ("password", PASSWORD),
                ("code", &code_now(&app, &totp)),
                ("next", &contact),
            ],
        )
        .await;
    assert_redirects_to(&r, &contact);
    let page = app.page(&c, &contact).await;
    assert!(page.contains(r#"value="chargeback 7""#));
    let r = reveal_with_case(&app, &c, &id, "chargeback 7", "CB-7").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().shows(&demo_card(1)));
    // Done: not offered again.
    let page = app.page(&c, &contact).await;
    assert!(!page.contains("chargeback 7") && !page.contains(r#"id="kept-form""#));

    // Interrupted again; then someone else signs in in the same browser:
    // they get nothing of it.
    app.clock.advance(Duration::from_secs(6 * 60));
    let r = reveal_with_case(&app, &c, &id, "dispute 9", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_signed_in(&sign_in_again(&app, &c, "bob").await);
    let page = app.page(&c, &contact).await;
    assert!(!page.contains("dispute 9"), "bob sees sam's reason");
    // Sam signs in again in that browser: it was not carried for bob, so
    // it is gone for good.
    assert_signed_in(&sign_in_again(&app, &c, "sam").await);
    assert!(!app.page(&c, &contact).await.contains("dispute 9"));
}

#[tokio::test]
async fn a_kept_reason_survives_the_same_persons_new_sign_in() {
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
    enrol(&app, &c).await;
    app.clock.advance(Duration::from_secs(6 * 60));
    let id = demo_contact_id(2);
    let r = reveal_with_case(&app, &c, &id, "refund 12", "T-12").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Signing in again (a new session, a new generation) keeps it for sam.
    assert_signed_in(&sign_in_again(&app, &c, "sam").await);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains(r#"value="refund 12""#) && page.contains(r#"value="T-12""#));
    // ...for fifteen minutes.
    app.clock.advance(Duration::from_secs(16 * 60));
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(!page.contains("refund 12"));
}

#[tokio::test]
async fn case_references_follow_the_pattern_and_hostile_ones_are_refused_and_recorded() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(3);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains("Case or ticket"));
    let long = "7".repeat(65);
    for bad in [
        "<script>alert(1)</script>",
        "CB 7",
        "-x",
        "a\u{2028}b",
        "CB\u{7}7",
        "//evil.example",
        long.as_str(),
    ] {
        let r = reveal_with_case(&app, &c, &id, "chargeback 3", bad).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad:.20}");
        let body = r.text().await.unwrap();
        assert!(!body.shows(&demo_card(3)));
        assert!(!body.contains("<script>alert(1)"), "escaped or absent");
        let row = app.last_audit("decrypt_denied").await.unwrap();
        assert_eq!(row.outcome, "bad_case_ref", "{bad:.20}");
    }
    assert!(app.last_audit("decrypt").await.is_none());
    let r = reveal_with_case(&app, &c, &id, "chargeback 3", " CB-2026/0042 ").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(body.contains("CB-2026/0042") && body.shows(&demo_card(3)));
    assert_eq!(
        app.last_audit("decrypt").await.unwrap().case_ref,
        "CB-2026/0042"
    );
    assert_audit_free_of(&app, &demo_card(3)).await;

    // A deployment's own label, pattern and requirement.
    let strict = spawn_demo_app_custom(
        |_, _| {},
        |s| s.policy.case = CaseRule::new("Chargeback case", "CB-[0-9]{6}", true).unwrap(),
    )
    .await;
    let c = strict.login_as(Role::Supervisor).await;
    let page = strict.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains("Chargeback case") && page.contains(r#"pattern="CB-[0-9]{6}" required"#));
    let r = reveal_with_case(&strict, &c, &id, "chargeback 3", "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        strict.last_audit("decrypt_denied").await.unwrap().outcome,
        "no_case_ref"
    );
    let r = reveal_with_case(&strict, &c, &id, "chargeback 3", "CB-12345").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = reveal_with_case(&strict, &c, &id, "chargeback 3", "CB-123456").await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_revealed_value_is_hidden_until_asked_for_and_its_page_replaces_itself() {
    let app =
        spawn_demo_app_custom(|_, _| {}, |s| s.policy.show_for = Duration::from_secs(30)).await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(4);
    let r = app.decrypt(&c, &id, "creditcard", "chargeback 4").await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    // Behind a closed disclosure (no script needed), and replaced after 30 s.
    assert!(body.contains(r#"<details class="reveal-value" id="reveal-toggle">"#));
    assert!(body.contains(&format!(
        r#"<meta http-equiv="refresh" content="30;url=/contacts/{id}?m=value_hidden">"#
    )));
    let back = app
        .page(&c, &format!("/contacts/{id}?m=value_hidden"))
        .await;
    assert!(back.contains(r#"id="value-hidden""#) && !back.shows(&demo_card(4)));
    // Every reveal control has its own accessible name.
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains(r#"aria-label="Reveal creditcard""#));
    assert!(page.contains(r#"aria-label="Reveal zipcode""#));
    assert!(!page.contains(">Decrypt</button>"));
}

#[tokio::test]
async fn an_expired_session_says_so_and_returns_to_the_page_after_signing_in() {
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
    // The start of an id: a search page (a whole id would open the contact).
    let id5 = demo_contact_id(5);
    let prefix = &id5[..8];
    let wanted = format!("/contacts?contact_id={prefix}");
    assert_eq!(
        c.get(app.url(&wanted)).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Past the absolute timeout.
    app.clock.advance(Duration::from_secs(9 * 3600));
    let r = c.get(app.url(&wanted)).send().await.unwrap();
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        format!("/login?m=expired&next=%2Fcontacts%3Fcontact_id%3D{prefix}")
    );
    let page = app.page(&c, &to).await;
    assert!(page.contains("Your session ended"), "{page}");
    let r = app.login(&c, "sam", PASSWORD).await;
    assert_redirects_to(&r, &wanted);
    // Someone who never signed in is sent to sign in without that message.
    let fresh = client();
    let r = fresh.get(app.url("/contacts")).send().await.unwrap();
    assert_eq!(r.headers()[LOCATION], "/login?next=%2Fcontacts");
}

#[tokio::test]
async fn off_site_and_malformed_return_targets_are_refused() {
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    for bad in [
        "https://evil.example/",
        "//evil.example/contacts",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/login?next=//evil.example",
        "/contacts\r\nSet-Cookie: x=1",
        "/caf\u{e9}",
        "",
    ] {
        let c = client();
        let q = serde_urlencoded::to_string([("next", bad)]).unwrap();
        let page = app.page(&c, &format!("/login?{q}")).await;
        assert!(!page.contains("evil.example"), "{bad:?} shown on the page");
        let r = app.login(&c, "sam", PASSWORD).await;
        let to = r.headers()[LOCATION].to_str().unwrap();
        assert_eq!(to, Role::Supervisor.home(), "{bad:?}");
    }
    // An overlong target is dropped too.
    let c = client();
    let long = format!("/contacts/{}", "a".repeat(600));
    app.page(&c, &format!("/login?next={long}")).await;
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
}

#[tokio::test]
async fn error_pages_keep_the_navigation_and_sign_out_of_signed_in_people() {
    let app = spawn_demo_app().await;
    let sup = app.login_as(Role::Supervisor).await;
    for path in [
        "/contacts/not%20a%20contact",
        "/no-such-page",
        "/admin/users",
    ] {
        let r = sup.get(app.url(path)).send().await.unwrap();
        assert!(r.status().is_client_error(), "{path}");
        let body = r.text().await.unwrap();
        assert!(
            body.contains(r#"action="/logout""#) && body.contains(r#"href="/contacts""#),
            "{path}: {body}"
        );
    }
    let aud = app.login_as(Role::Auditor).await;
    let body = app.page(&aud, "/contacts/x").await;
    assert!(body.contains(r#"href="/audit""#) && body.contains("Not allowed"));
    // Nobody signed in: no navigation, no sign-out form.
    let anon = client();
    let body = app.page(&anon, "/no-such-page").await;
    assert!(!body.contains(r#"action="/logout""#));
}

#[tokio::test]
async fn supervisors_see_how_many_requests_wait_for_their_decision() {
    let app =
        spawn_demo_app_custom(|_, _| {}, |s| s.policy.approval = ApprovalMode::Required).await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("bob", Role::Supervisor).await;
    let sam = client();
    assert_signed_in(&app.login(&sam, "sam", PASSWORD).await);
    let bob = client();
    assert_signed_in(&app.login(&bob, "bob", PASSWORD).await);
    assert!(!app.page(&bob, "/").await.contains(r#"id="open-requests""#));
    let id = demo_contact_id(6);
    let r = reveal_with_case(&app, &sam, &id, "chargeback 6", "CB-6").await;
    assert_redirects_to(&r, "/approvals?m=requested");
    // The request keeps its case reference.
    assert!(app
        .page(&bob, "/approvals")
        .await
        .contains("case <b>CB-6</b>"));
    let page = app.page(&bob, "/contacts").await;
    assert!(
        page.contains(r#"id="open-requests" aria-label="1 waiting for your decision">1<"#),
        "{page}"
    );
    // The requester cannot decide their own request: no count for them.
    assert!(!app.page(&sam, "/").await.contains(r#"id="open-requests""#));
    // Expired requests are not counted.
    app.clock.advance(Duration::from_secs(16 * 60));
    assert!(!app.page(&bob, "/").await.contains(r#"id="open-requests""#));
}

#[tokio::test]
async fn a_reveal_on_a_transferred_leg_carries_the_case_and_is_found_by_the_initial_contact_id() {
    use lambda_encrypt::context::ContactId;
    let leg = "ffffffff-0000-4000-8000-000000000001".to_owned();
    let first = demo_contact_id(0);
    let app = spawn_demo_app_with(|data, _| {
        let mut c = data.contacts[0].clone();
        c.summary.initial_contact_id = Some(c.summary.id.clone());
        c.summary.id = ContactId::parse(&leg).unwrap();
        c.attributes.clear();
        data.contacts.push(c);
    })
    .await;
    let sup = app.login_as(Role::Supervisor).await;
    let r = reveal_with_case(&app, &sup, &leg, "chargeback 0", "CB-0").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().shows(&demo_card(0)));
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(
        (
            row.contact_id.as_str(),
            row.initial_contact_id.as_str(),
            row.case_ref.as_str()
        ),
        (leg.as_str(), first.as_str(), "CB-0")
    );
    // The auditor asks by the id the call started with (a prefix of it).
    let aud = app.login_as(Role::Auditor).await;
    let page = app
        .page(
            &aud,
            &format!("/audit?action=decrypt&contact={}", &first[..8]),
        )
        .await;
    assert!(page.contains(&leg) && page.contains("CB-0"), "{page}");
    assert_audit_free_of(&app, &demo_card(0)).await;
}
