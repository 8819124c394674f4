use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn a_post_without_a_token_is_refused_and_audited() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Admin).await;
    let r = c
        .post(app.url("/admin/users"))
        .form(&[
            ("username", "mallory"),
            ("role", "admin"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form expired"));
    assert!(app.state.users.by_name("mallory").await.unwrap().is_none());
    let row = app.last_audit("csrf_rejected").await.unwrap();
    assert!(row.actor.starts_with("admin-"));
    assert_eq!(row.detail, "POST /admin/users");
}

#[tokio::test]
async fn a_post_with_a_wrong_token_is_refused() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    for token in ["wrong", "", &"A".repeat(43)] {
        let r = c
            .post(app.url("/logout"))
            .form(&[("csrf_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // Still signed in: the refused sign-out did nothing.
    assert_eq!(
        c.get(app.url("/audit")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_token_from_another_session_is_refused() {
    let app = spawn_app().await;
    let a = app.login_as(Role::Auditor).await;
    let b = app.login_as(Role::Auditor).await;
    let html = app.page(&a, "/audit").await;
    let token_of_a = csrf_in(&html);
    let r = b
        .post(app.url("/logout"))
        .form(&[("csrf_token", token_of_a.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_sign_in_form_itself_needs_a_token() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Auditor).await;
    let r = client()
        .post(app.url("/login"))
        .form(&[("username", "sam"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Anonymous refusals are counted, then summarised per address.
    assert!(app.last_audit("csrf_rejected").await.is_none());
    app.clock.advance(std::time::Duration::from_secs(61));
    app.state.audit.flush_tallies().await.unwrap();
    let row = app.last_audit("csrf_rejected").await.unwrap();
    assert_eq!(row.actor, "anonymous");
    assert!(row.detail.starts_with("1 refusal(s)"), "{}", row.detail);
    assert!(row.detail.ends_with("e.g. POST /login"), "{}", row.detail);
}
