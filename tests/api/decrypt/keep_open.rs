//! "Keep it open" on a shown value's page: a bounded number of extensions
//! of its countdown, each recorded (`reveal_extend`, no value in the row),
//! for the person and sign-in the value was shown to, while the page is
//! open. Nothing is decrypted or shown again, and the budget is not used.

use std::time::Duration;

use callvault::audit::AuditRow;
use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;

const SHOW_SECS: u64 = 30;

/// Admits a reveal of `field` and answers where its page is (not opened).
async fn admitted(app: &TestApp, c: &reqwest::Client, id: &str) -> String {
    let token = csrf_in(&app.page(c, &format!("/contacts/{id}")).await);
    let r = c
        .post(app.url(&format!("/contacts/{id}/decrypt")))
        .form(&[
            ("field", "creditcard"),
            ("reason", "chargeback 8"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    reveal_location(&r).expect("admitted")
}

async fn extend(app: &TestApp, c: &reqwest::Client, page: &str, token: &str) -> reqwest::Response {
    c.post(app.url(&format!("{page}/extend")))
        .form(&[("csrf_token", token)])
        .send()
        .await
        .unwrap()
}

fn rows_of(rows: &[AuditRow], action: &str) -> usize {
    rows.iter().filter(|r| r.action == action).count()
}

#[tokio::test]
async fn a_shown_values_page_is_kept_open_a_bounded_number_of_times_each_recorded_without_the_value(
) {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.policy.show_for = Duration::from_secs(SHOW_SECS),
    )
    .await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
    let id = demo_contact_id(8);
    let card = demo_card(8);
    let page = admitted(&app, &c, &id).await;

    // Not shown yet: nothing to keep open.
    let token = csrf_in(&app.page(&c, &format!("/contacts/{id}")).await);
    assert_eq!(extend(&app, &c, &page, &token).await.status(), 404);

    let html = app.page(&c, &page).await;
    assert!(html.shows(&card));
    assert!(
        html.contains(&format!(r#"data-extend="{page}/extend""#)),
        "{html}"
    );
    // Without scripts the page still closes by itself.
    assert!(html.contains(r#"<noscript><meta http-equiv="refresh" content="30;"#));
    let token = csrf_in(&html);
    let before = app.audit_rows().await;

    app.clock.advance(Duration::from_secs(20));
    let r = extend(&app, &c, &page, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(!body.shows(&card), "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    // 10 s were left; one more showing makes 40.
    let secs = answer["seconds"].as_i64().unwrap();
    assert!((38..=40).contains(&secs), "{answer}");
    assert_eq!(answer["left"], 1);
    let row = app.last_audit("reveal_extend").await.unwrap();
    assert_eq!(
        (
            row.actor.as_str(),
            row.outcome.as_str(),
            row.contact_id.as_str(),
            row.field.as_str()
        ),
        ("sam", "ok", id.as_str(), "creditcard")
    );
    assert_eq!(row.reason, "chargeback 8");
    let grant = page.trim_start_matches("/reveals/");
    assert!(
        row.detail.contains(grant) && row.detail.contains("1 of 2"),
        "{}",
        row.detail
    );

    // Past the first deadline, within the new one: once more, then no more.
    app.clock.advance(Duration::from_secs(30));
    let r = extend(&app, &c, &page, &token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["left"], 0);
    let r = extend(&app, &c, &page, &token).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(!r.text().await.unwrap().shows(&card));

    // Nothing was decrypted or shown again, and the budget is untouched.
    let after = app.audit_rows().await;
    assert_eq!(rows_of(&after, "reveal_extend"), 2);
    assert_eq!(rows_of(&after, "decrypt"), rows_of(&before, "decrypt"));
    assert_eq!(rows_of(&after, "decrypt_failed"), 0);
    assert_eq!(
        app.state.budget.used("sam").await.unwrap(),
        1,
        "an extension is not a reveal"
    );
    let again = c.get(app.url(&page)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(!again.text().await.unwrap().shows(&card));
    assert_audit_free_of(&app, &card).await;
}

#[tokio::test]
async fn a_closed_page_another_sign_in_a_forged_id_or_no_token_is_not_kept_open() {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.policy.show_for = Duration::from_secs(SHOW_SECS),
    )
    .await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("bob", Role::Supervisor).await;
    let c = client();
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
    let id = demo_contact_id(9);
    let page = admitted(&app, &c, &id).await;
    let token = csrf_in(&app.page(&c, &page).await);
    let rows = app.audit_rows().await.len();

    // The same person in another sign-in, and another supervisor: no such page.
    for who in ["sam", "bob"] {
        let other = client();
        assert_signed_in(&app.login(&other, who, PASSWORD).await);
        let t = csrf_in(&app.page(&other, &format!("/contacts/{id}")).await);
        assert_eq!(extend(&app, &other, &page, &t).await.status(), 404, "{who}");
    }
    // Forged, odd-case and hostile ids.
    let upper = page.to_ascii_uppercase().replace("/REVEALS/", "/reveals/");
    for forged in [
        "/reveals/00000000000000000000000000000000".to_owned(),
        upper,
        "/reveals/%3Cscript%3E".to_owned(),
        format!("/reveals/{}", "a".repeat(400)),
    ] {
        let r = extend(&app, &c, &forged, &token).await;
        assert_eq!(r.status(), 404, "{forged}");
        assert!(!r.text().await.unwrap().contains("<script>"));
    }
    // Without the form token: refused.
    let r = c
        .post(app.url(&format!("{page}/extend")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // A page that has closed stays closed.
    app.clock.advance(Duration::from_secs(SHOW_SECS + 1));
    assert_eq!(extend(&app, &c, &page, &token).await.status(), 410);
    let new = &app.audit_rows().await[rows..];
    assert!(new.iter().all(|r| r.action != "reveal_extend"), "{new:?}");
}
