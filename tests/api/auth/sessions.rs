use std::time::Duration;

use callvault::auth::password::Password;
use callvault::auth::Role;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn an_idle_session_expires() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    app.clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(
        c.get(app.url("/audit")).send().await.unwrap().status(),
        StatusCode::OK
    );
    // Activity extended it; 16 quiet minutes end it.
    app.clock.advance(Duration::from_secs(16 * 60));
    assert_sent_to_sign_in(&c.get(app.url("/audit")).send().await.unwrap());
}

#[tokio::test]
async fn an_active_session_still_ends_at_the_absolute_timeout() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    for _ in 0..48 {
        app.clock.advance(Duration::from_secs(10 * 60));
        let r = c.get(app.url("/")).send().await.unwrap();
        if r.status() != StatusCode::OK {
            assert_sent_to_sign_in(&r);
            return;
        }
    }
    panic!("a session stayed open for 8 hours of activity");
}

#[tokio::test]
async fn disabling_a_user_ends_their_open_session() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Supervisor).await;
    assert_eq!(
        c.get(app.url("/")).send().await.unwrap().status(),
        StatusCode::OK
    );
    let user = app
        .state
        .users
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == Role::Supervisor)
        .unwrap();
    app.state.users.set_disabled(user.id, true).await.unwrap();
    assert_sent_to_sign_in(&c.get(app.url("/")).send().await.unwrap());
}

#[tokio::test]
async fn a_password_change_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    let id = app.add_user("pat", Role::Auditor).await;
    let (a, b) = (client(), client());
    assert_signed_in(&app.login(&a, "pat", PASSWORD).await);
    assert_signed_in(&app.login(&b, "pat", PASSWORD).await);
    app.state
        .users
        .set_password(id, &Password::new("another long password".into()))
        .await
        .unwrap();
    for c in [&a, &b] {
        assert_sent_to_sign_in(&c.get(app.url("/audit")).send().await.unwrap());
    }
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("callvault_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// Signs in without a cookie store; returns (anonymous cookie, signed-in cookie).
async fn raw_sign_in(app: &TestApp, c: &reqwest::Client, username: &str) -> (String, String) {
    let r = c.get(app.url("/login")).send().await.unwrap();
    let anon = session_cookie(&r).expect("anonymous session cookie");
    let token = csrf_in(&r.text().await.unwrap());
    let r = c
        .post(app.url("/login"))
        .header(COOKIE, &anon)
        .form(&[
            ("username", username),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_signed_in(&r);
    (anon, session_cookie(&r).expect("new session cookie"))
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in_and_the_old_one_is_dead() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Auditor).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (before, after) = raw_sign_in(&app, &c, "sam").await;
    assert_ne!(before, after);
    let ok = c
        .get(app.url("/audit"))
        .header(COOKIE, &after)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let old = c
        .get(app.url("/audit"))
        .header(COOKIE, &before)
        .send()
        .await
        .unwrap();
    assert_sent_to_sign_in(&old);
}

#[tokio::test]
async fn forged_and_stale_cookies_are_treated_as_signed_out() {
    let app = spawn_app().await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for forged in [
        "callvault_session=AAAA".to_owned(),
        format!("callvault_session={}", "A".repeat(5000)),
        "callvault_session=%00%FF<script>".to_owned(),
        "callvault_session=".to_owned(),
    ] {
        let r = c
            .get(app.url("/audit"))
            .header(COOKIE, forged)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == StatusCode::SEE_OTHER || r.status() == StatusCode::BAD_REQUEST,
            "{}",
            r.status()
        );
    }
    // A cookie from a session that signed out does not come back to life.
    app.add_user("sam", Role::Auditor).await;
    let (_, live) = raw_sign_in(&app, &c, "sam").await;
    let html = c
        .get(app.url("/"))
        .header(COOKIE, &live)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_in(&html);
    let r = c
        .post(app.url("/logout"))
        .header(COOKIE, &live)
        .form(&[("csrf_token", &token)])
        .send()
        .await
        .unwrap();
    assert_redirects_to(&r, "/login?m=signed_out");
    let stale = c
        .get(app.url("/audit"))
        .header(COOKIE, &live)
        .send()
        .await
        .unwrap();
    assert_sent_to_sign_in(&stale);
}

#[tokio::test]
async fn the_database_holds_only_hashes_of_session_keys() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Auditor).await;
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(app.url("/login")).send().await.unwrap();
    let cookie = session_cookie(&r).unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM sessions")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0.len(), 64);
    assert!(!cookie.contains(&rows[0].0));
}
