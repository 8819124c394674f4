use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn a_user_signs_in_and_lands_on_their_roles_own_page() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    let r = app.login(&c, "sam", PASSWORD).await;
    assert_redirects_to(&r, "/contacts");
    let page = c.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("sam") && html.contains("supervisor"));
    let row = app.last_audit("login").await.unwrap();
    assert_eq!(
        (row.actor.as_str(), row.role.as_str(), row.outcome.as_str()),
        ("sam", "supervisor", "ok")
    );
    assert_eq!(row.client_addr, "127.0.0.1");
    assert!(!row.request_id.is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_refused_generically_and_audited() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    let r = app.login(&c, "sam", "not the password at all").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign-in failed"));
    let unknown = app.login(&c, "nobody", "not the password at all").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    // Same words whether or not the user exists.
    assert_eq!(
        html.contains("Check your username and password"),
        unknown
            .text()
            .await
            .unwrap()
            .contains("Check your username and password")
    );
    let rows = app.audit_rows().await;
    let failed: Vec<_> = rows.iter().filter(|r| r.action == "login_failed").collect();
    assert_eq!(failed.len(), 2);
    assert_eq!(
        (failed[0].actor.as_str(), failed[0].detail.as_str()),
        ("sam", "bad_password")
    );
    // A name that is not a user is not recorded (it may be a mistyped password).
    assert_eq!(
        (failed[1].actor.as_str(), failed[1].detail.as_str()),
        ("unknown", "unknown_user")
    );
    // No password ever reaches the audit log.
    assert!(rows
        .iter()
        .all(|r| !format!("{r:?}").contains("not the password")));
}

#[tokio::test]
async fn sign_out_ends_the_session() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    assert_eq!(
        c.get(app.url("/audit")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let r = app.post_form(&c, "/", "/logout", &[]).await;
    assert_redirects_to(&r, "/login?m=signed_out");
    assert_sent_to_sign_in(&c.get(app.url("/audit")).send().await.unwrap());
    assert!(app.last_audit("logout").await.is_some());
}

#[tokio::test]
async fn a_disabled_user_cannot_sign_in() {
    let app = spawn_app().await;
    let id = app.add_user("gone", Role::Supervisor).await;
    app.state.users.set_disabled(id, true).await.unwrap();
    let r = app.login(&client(), "gone", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.last_audit("login_failed").await.unwrap().detail,
        "disabled"
    );
}

#[tokio::test]
async fn repeated_failures_lock_the_account_then_back_off() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    for _ in 0..5 {
        assert_eq!(
            app.login(&c, "sam", "wrong password here").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now: even the right password is refused, with the same generic words.
    let r = app.login(&c, "sam", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.text().await.unwrap().contains("Sign-in failed"));
    // Nobody is signed in: the refusal is counted, then summarised per
    // address once its interval is over.
    assert_eq!(
        app.last_audit("login_failed").await.unwrap().outcome,
        "refused"
    );
    app.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(app.state.audit.flush_tallies().await.unwrap(), 1);
    let summary = app.last_audit("login_failed").await.unwrap();
    assert_eq!(summary.outcome, "refused_summary");
    assert!(
        summary.detail.starts_with("1 refusal(s)"),
        "{}",
        summary.detail
    );
    // The lock is short at first.
    app.clock.advance(std::time::Duration::from_secs(2));
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
}

#[tokio::test]
async fn failures_from_one_address_lock_that_address_for_every_account() {
    let app = spawn_app().await;
    app.add_user("victim", Role::Auditor).await;
    let c = client();
    for i in 0..5 {
        let name = format!("guess{i}");
        app.login(&c, &name, "wrong password here").await;
    }
    assert_eq!(
        app.login(&c, "victim", PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn hostile_login_input_is_refused_cleanly() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let c = client();
    let long_name = "x".repeat(10_000);
    let long_password = "y".repeat(100_000);
    for (u, p) in [
        (long_name.as_str(), PASSWORD),
        ("sam", long_password.as_str()),
        ("<script>alert(1)</script>", PASSWORD),
        ("sam\u{0000}", PASSWORD),
        ("", ""),
    ] {
        let r = app.login(&c, u, p).await;
        assert!(
            [
                StatusCode::UNAUTHORIZED,
                StatusCode::PAYLOAD_TOO_LARGE,
                StatusCode::TOO_MANY_REQUESTS
            ]
            .contains(&r.status()),
            "{}",
            r.status()
        );
        let html = r.text().await.unwrap_or_default();
        assert!(!html.contains("<script>alert"), "reflected raw");
    }
    // Non-UTF-8 form bytes (decoded lossily, so no such user) and a missing field.
    let html = app.page(&c, "/login").await;
    let token = csrf_in(&html);
    let body = format!("csrf_token={token}&username=%FF%FE&password=abc");
    let r = c
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(
        [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(&r.status()),
        "{}",
        r.status()
    );
    let r = c
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf_token={token}&username=sam"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

/// Each role lands on the page it works from; a page the sign-in
/// interrupted (a valid `next=`) wins; a hostile or foreign one is ignored;
/// the sign-in page itself, once signed in, sends to the role's page too.
#[tokio::test]
async fn each_role_lands_on_its_own_page_unless_a_kept_return_target_says_otherwise() {
    let app = spawn_demo_app().await;
    for (name, role, home) in [
        ("sup", Role::Supervisor, "/contacts"),
        ("aud", Role::Auditor, "/audit"),
        ("adm", Role::Admin, "/admin/users"),
    ] {
        app.add_user(name, role).await;
        let c = client();
        assert_redirects_to(&app.login(&c, name, PASSWORD).await, home);
        let page = c.get(app.url(home)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{name} at {home}");
        // Already signed in: the sign-in page sends them to their page.
        let again = c.get(app.url("/login")).send().await.unwrap();
        assert_redirects_to(&again, home);

        // A kept, local return target wins over the role's page.
        let c = client();
        app.page(&c, "/login?next=%2Faccount%2Fsettings").await;
        assert_redirects_to(&app.login(&c, name, PASSWORD).await, "/account/settings");
        // Foreign, protocol-relative or odd targets are ignored.
        for hostile in [
            "https%3A%2F%2Fevil.example%2F",
            "%2F%2Fevil.example",
            "%2F%5Cevil.example",
            "javascript%3Aalert(1)",
            "%0D%0ALocation%3A%20%2F%2Fevil",
        ] {
            let c = client();
            app.page(&c, &format!("/login?next={hostile}")).await;
            assert_redirects_to(&app.login(&c, name, PASSWORD).await, home);
        }
    }
}
