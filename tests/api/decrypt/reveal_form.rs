//! The reveal form on a contact's page tells the supervisor what stands in
//! the way before and after they press Reveal: a reason or case reference
//! to fix comes back on the same page (marked, explained beside the field,
//! focused, what was typed kept except anything card-like), a used budget
//! disables the buttons and says when the next reveal is possible, and a
//! mandatory authenticator is announced with a link to set it up.

use std::time::Duration;

use callvault::auth::Role;
use callvault::clock::Clock as _;
use callvault::decrypt::case::CaseRule;
use callvault::decrypt::policy::BudgetLimit;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;

/// Posts the contact's reveal form for `field`.
async fn reveal(
    app: &TestApp,
    c: &reqwest::Client,
    id: &str,
    field: &str,
    reason: &str,
    case_ref: &str,
) -> reqwest::Response {
    app.post_form(
        c,
        &format!("/contacts/{id}"),
        &format!("/contacts/{id}/decrypt"),
        &[("field", field), ("reason", reason), ("case_ref", case_ref)],
    )
    .await
}

/// The reveal form of `field` on a contact's page.
fn form_of<'a>(page: &'a str, field: &str) -> &'a str {
    let start = page
        .find(&format!(r#"aria-label="Reveal {field}""#))
        .unwrap_or_else(|| panic!("no form for {field}: {page}"));
    let end = page[start..].find("</form>").unwrap() + start;
    &page[start..end]
}

/// The `<input>` tag named `name` in `form`.
fn input<'a>(form: &'a str, name: &str) -> &'a str {
    let start = form.find(&format!(r#"name="{name}""#)).unwrap();
    let open = form[..start].rfind('<').unwrap();
    let end = form[start..].find('>').unwrap() + start;
    &form[open..=end]
}

/// The message beside a field, by its id.
fn message<'a>(page: &'a str, id: &str) -> &'a str {
    let marker = format!(r#"id="{id}">"#);
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id}: {page}"))
        + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    &page[start..end]
}

#[tokio::test]
async fn a_reason_or_case_reference_to_fix_comes_back_on_the_contacts_page_with_what_was_typed() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(3);
    let card = demo_card(3);

    // A blank reason: the reason is marked, the case reference typed beside
    // it is kept, the refusal is recorded.
    let r = reveal(&app, &c, &id, "creditcard", "   ", "CB-2026/0042").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(!page.shows(&card));
    assert!(page.contains(r#"id="reveal-refused""#), "{page}");
    let form = form_of(&page, "creditcard");
    let reason = input(form, "reason");
    assert!(
        reason.contains(r#"aria-invalid="true""#)
            && reason.contains(r#"aria-describedby="reveal-reason-error""#)
            && reason.contains("autofocus"),
        "{reason}"
    );
    assert!(message(&page, "reveal-reason-error").starts_with("Say why you need this value"));
    let case = input(form, "case_ref");
    assert!(case.contains(r#"value="CB-2026/0042""#), "{case}");
    assert!(!case.contains("aria-invalid") && !case.contains("autofocus"));
    // Only that form is marked, and only one field is focused.
    assert_eq!(page.matches(r#"aria-invalid="true""#).count(), 1);
    assert_eq!(page.matches("autofocus").count(), 1);
    let zip = form_of(&page, "zipcode");
    assert!(!zip.contains("CB-2026/0042") && !zip.contains("aria-invalid"));
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.reason.as_str()),
        ("no_reason", "")
    );
    // The message does not repeat itself.
    assert!(!page.contains("reason is required: a reason is required"));

    // A malformed reference: marked, explained in words (not the pattern),
    // the (hostile) reason kept and escaped.
    let hostile = r#"chargeback "><script>alert(1)</script>"#;
    let r = reveal(&app, &c, &id, "creditcard", hostile, "two words!").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)"));
    let form = form_of(&page, "creditcard");
    let case = input(form, "case_ref");
    assert!(
        case.contains(r#"aria-invalid="true""#)
            && case.contains(r#"aria-describedby="reveal-case-error""#)
            && case.contains("autofocus")
            && case.contains(r#"value="two words!""#),
        "{case}"
    );
    let said = message(&page, "reveal-case-error");
    assert!(said.starts_with("Use letters and digits"), "{said}");
    assert!(
        !said.contains('[') && !said.contains('{'),
        "no pattern: {said}"
    );
    assert!(
        input(form, "reason").contains("chargeback &#34;&#62;&#60;script&#62;")
            || input(form, "reason").contains("chargeback &quot;&gt;&lt;script&gt;")
    );
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.case_ref.as_str()),
        ("bad_case_ref", "")
    );

    // Both wrong: both marked, the focus on the first.
    let r = reveal(&app, &c, &id, "zipcode", "-- !!", "-x").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    let form = form_of(&page, "zipcode");
    assert!(input(form, "reason").contains("autofocus"));
    assert!(input(form, "case_ref").contains(r#"aria-invalid="true""#));
    assert!(!input(form, "case_ref").contains("autofocus"));
    assert!(message(&page, "reveal-reason-error").contains("nothing a person can read"));
    assert!(!form_of(&page, "creditcard").contains("aria-invalid"));

    // Seen again later, the page is as usual: nothing marked.
    let later = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(!later.contains("aria-invalid") && !later.contains(r#"id="reveal-refused""#));
    assert!(app.last_audit("decrypt").await.is_none());
    assert_audit_free_of(&app, &card).await;
}

#[tokio::test]
async fn a_card_number_typed_into_the_form_is_never_typed_back() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(2);
    let typed_card = "4111 1111 1111 1111";
    for (reason, case_ref, kept) in [
        // Refused for the card number in the reference.
        ("chargeback 2", "CB-4111111111111111", "chargeback 2"),
        ("chargeback 2", typed_card, "chargeback 2"),
        // Refused for the reason; the reference holds a card number too.
        ("", "4111-1111-1111-1111", ""),
        // Refused for the card number in the reason; the reference is kept.
        ("refund 4111111111111111", "CB-7", "CB-7"),
    ] {
        let r = reveal(&app, &c, &id, "creditcard", reason, case_ref).await;
        assert_eq!(
            r.status(),
            StatusCode::BAD_REQUEST,
            "{reason:?} {case_ref:?}"
        );
        let page = r.text().await.unwrap();
        for shape in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
        ] {
            assert!(
                !page.contains(shape),
                "{reason:?} {case_ref:?}: {shape} typed back"
            );
        }
        assert!(page.contains("Leave card numbers out") || reason.is_empty());
        assert!(form_of(&page, "creditcard").contains(kept));
    }
    assert_audit_free_of(&app, "4111111111111111").await;
}

#[tokio::test]
async fn a_deployments_own_case_rule_is_explained_in_words_and_a_missing_reference_marked() {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.policy.case = CaseRule::new("Chargeback case", "CB-[0-9]{6}", true).unwrap(),
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(1);
    let r = reveal(&app, &c, &id, "creditcard", "chargeback 1", "").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert_eq!(
        message(&page, "reveal-case-error"),
        "Enter the reference this reveal is for."
    );
    assert!(input(form_of(&page, "creditcard"), "reason").contains(r#"value="chargeback 1""#));
    let r = reveal(&app, &c, &id, "creditcard", "chargeback 1", "CB-12").await;
    let page = r.text().await.unwrap();
    let said = message(&page, "reveal-case-error");
    assert!(
        !said.contains("CB-[0-9]") && said.contains("check it"),
        "{said}"
    );
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().outcome,
        "bad_case_ref"
    );
}

#[tokio::test]
async fn at_a_used_budget_the_reveal_buttons_are_disabled_and_the_next_reveal_time_is_shown() {
    let app = spawn_demo_app_custom(|_, _| {}, |s| s.policy.budget = BudgetLimit(Some(2))).await;
    app.add_user("sam", Role::Supervisor).await;
    // Signed in again after the clock moves (sessions time out when idle).
    let sign_in = || async {
        let c = client();
        assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
        c
    };
    let c = sign_in().await;
    let id = demo_contact_id(5);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(!page.contains("disabled") && !page.contains(r#"id="next-reveal""#));
    let first_at = app.clock.now_us();
    assert_eq!(
        reveal(&app, &c, &id, "creditcard", "one", "")
            .await
            .status(),
        200
    );
    app.clock.advance(Duration::from_secs(600));
    assert_eq!(
        reveal(&app, &c, &id, "zipcode", "two", "").await.status(),
        200
    );
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    for field in ["creditcard", "zipcode"] {
        let button = form_of(&page, field);
        assert!(button.contains("disabled"), "{field}: {button}");
    }
    // The oldest counted reveal leaves the hour: then (UTC, the default zone).
    let free_at = (first_at + 3_600_000_000) / 1_000_000 * 1_000_000 + 1_000_000;
    let expected = callvault::clock::local_time(free_at, chrono_tz::UTC);
    assert_eq!(message(&page, "next-reveal"), expected);
    assert!(page.contains("0 of 2 reveals left"));
    // Just after it, a reveal is possible again and the buttons are back.
    app.clock.advance(Duration::from_secs(3001));
    let c = sign_in().await;
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(!form_of(&page, "creditcard").contains("disabled"));
    assert!(!page.contains(r#"id="next-reveal""#));
    assert_eq!(
        reveal(&app, &c, &id, "creditcard", "three", "")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_mandatory_authenticator_is_announced_with_a_link_to_set_it_up() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(6);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(!page.contains(r#"id="totp-needed""#));
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    app.state.totp.set_mandatory(&mut conn, true).await.unwrap();
    drop(conn);
    let page = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(page.contains(r#"id="totp-needed""#), "{page}");
    assert!(page.contains(r#"<a href="/account/totp">"#));
    assert!(form_of(&page, "creditcard").contains("disabled"));
    // The link leads to the page where an authenticator is set up.
    let enrol = c.get(app.url("/account/totp")).send().await.unwrap();
    assert_eq!(enrol.status(), StatusCode::OK);
    assert!(enrol.text().await.unwrap().contains("/account/totp/enrol"));
    // Asked anyway (an old tab): refused, and the message names that page.
    let r = reveal(&app, &c, &id, "creditcard", "chargeback 6", "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("/account/totp") && !body.contains("under your name"),
        "{body}"
    );
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().outcome,
        "totp_not_enrolled"
    );
}
