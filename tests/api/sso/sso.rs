//! Single sign-on through the console, against the real test OpenID
//! Provider: each role gets exactly its rights; refusals open no session and
//! are audited with the provider's subject; step-up goes through the provider.

use std::time::Duration;

use callvault::demo::{demo_card, demo_contact_id};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

use crate::helpers::*;
use crate::oidc::*;

async fn status(c: &reqwest::Client, url: String) -> u16 {
    c.get(url).send().await.unwrap().status().as_u16()
}

/// The latest anonymous sign-in refusal's detail: nobody is signed in, so
/// it is counted into the interval's summary rather than written as a row.
async fn anonymous_refusal(app: &TestApp) -> String {
    let (sample,): (String,) = sqlx::query_as(
        "SELECT sample FROM refusal_tally WHERE action = 'login_failed' ORDER BY last_us DESC LIMIT 1",
    )
    .fetch_one(&app.state.audit.db().pool)
    .await
    .unwrap();
    sample
}

#[tokio::test]
async fn a_supervisor_an_auditor_and_an_admin_each_sign_in_by_sso_with_exactly_their_rights() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let app = &s.app;
    for (account, role, [contacts, audit, admin]) in [
        ("sam.sso", "supervisor", [200, 403, 403]),
        ("alice.sso", "auditor", [403, 200, 403]),
        ("root.sso", "admin", [403, 403, 200]),
    ] {
        let b = s.sign_in(account).await;
        assert_eq!(
            status(&b, app.url("/contacts")).await,
            contacts,
            "{account}"
        );
        assert_eq!(status(&b, app.url("/audit")).await, audit, "{account}");
        assert_eq!(
            status(&b, app.url("/admin/users")).await,
            admin,
            "{account}"
        );
        let home = app.page(&b, "/").await;
        assert!(home.contains(role), "{account}");
        let login = app.last_audit("login").await.unwrap();
        assert_eq!((login.actor.as_str(), login.role.as_str()), (account, role));
        assert!(login.detail.contains(&format!("subject={account}")));
    }
    // Each was created once, marked as SSO, with its role from the claim.
    let created: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "user_change" && r.detail.starts_with("created by sso"))
        .collect();
    assert_eq!(created.len(), 3);
    let users = app.state.users.list().await.unwrap();
    let sam = users.iter().find(|u| u.username == "sam.sso").unwrap();
    assert_eq!(sam.sso_subject.as_deref(), Some("sam.sso"));
    // Neither the code, the state nor any token reached the audit log.
    for row in app.audit_rows().await {
        assert!(!row.detail.contains("code=") && !row.detail.contains("eyJ"));
    }
}

#[tokio::test]
async fn the_login_page_offers_sign_in_with_the_provider_only_when_configured() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let html = s.app.page(&client(), "/login").await;
    assert!(html.contains("Sign in with 127.0.0.1"), "{html}");
    assert!(html.contains("href=\"/login/oidc\""));
    let plain = spawn_app().await;
    assert!(!plain
        .page(&client(), "/login")
        .await
        .contains("/login/oidc"));
    assert_eq!(status(&client(), plain.url("/login/oidc")).await, 404);
    assert_eq!(
        status(&client(), plain.url("/login/oidc/callback")).await,
        404
    );
}

#[tokio::test]
async fn people_without_exactly_one_mapped_role_are_refused_audited_and_get_no_session() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    for (account, kind) in [
        ("nobody.sso", "no_mapped_group"),
        ("nogroups.sso", "roles_claim_missing"),
        ("both.sso", "several_roles"),
        ("string.sso", "roles_claim_wrong_type"),
        ("hostile.sso", "roles_claim_too_large"),
    ] {
        let b = browser();
        let out = s.through(&b, "/login/oidc", &Login::as_(account)).await;
        assert_eq!(out.callback, StatusCode::FORBIDDEN, "{account}");
        assert!(out.callback_body.contains("Sign-in failed"));
        assert!(!s.signed_in(&b).await, "{account}");
        let row = s.app.last_audit("login_failed").await.unwrap();
        assert_eq!(row.outcome, "refused");
        assert_eq!(
            row.detail,
            format!("sso {kind} subject={account}"),
            "{account}"
        );
        // Resuming without a verified sign-in opens nothing either.
        let r = b
            .get(s.app.url("/login/oidc/callback?resume=1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(!s.signed_in(&b).await);
    }
    assert!(s
        .app
        .state
        .users
        .list()
        .await
        .unwrap()
        .iter()
        .all(|u| u.sso_subject.is_none()));
}

#[tokio::test]
async fn broken_id_tokens_open_no_session_and_are_audited_by_kind() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    for (account, kind) in [
        ("nonce.sso", "id_token_nonce"),
        ("foreign.sso", "id_token_signature"),
        ("expired.sso", "id_token_expired"),
        ("audience.sso", "id_token_audience"),
        ("issuer.sso", "id_token_issuer"),
    ] {
        let b = browser();
        let out = s.through(&b, "/login/oidc", &Login::as_(account)).await;
        assert_eq!(out.callback, StatusCode::BAD_REQUEST, "{account}");
        assert!(!s.signed_in(&b).await, "{account}");
        assert_eq!(
            anonymous_refusal(&s.app).await,
            format!("sso {kind}"),
            "{account}"
        );
    }
}

/// The flow cookie `/login/oidc` set, and the provider's answer to it.
async fn started_flow(s: &SsoApp, account: &str) -> (String, String) {
    let b = browser();
    let r = b.get(s.app.url("/login/oidc")).send().await.unwrap();
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("callvault_oidc="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("callvault_oidc="));
    let start = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let back = through_provider(&b, &s.issuer, &start, &Login::as_(account)).await;
    (cookie, back)
}

async fn callback_with(url: &str, cookie: &str) -> reqwest::Response {
    // No cookie store: exactly this flow cookie, as an attacker would replay it.
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap()
}

fn sets_session(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("callvault_session="))
}

#[tokio::test]
async fn a_replayed_authorization_code_opens_no_second_session() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let (cookie, back) = started_flow(&s, "sam.sso").await;
    let first = callback_with(&back, &cookie).await;
    assert_eq!(first.status(), StatusCode::OK);
    let again = callback_with(&back, &cookie).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&again));
    assert_eq!(anonymous_refusal(&s.app).await, "sso code_rejected");
}

#[tokio::test]
async fn a_forged_or_missing_state_and_a_callback_nobody_started_open_no_session() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let (cookie, back) = started_flow(&s, "sam.sso").await;
    let code = query_of(&back)
        .into_iter()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1;
    let forged = s
        .app
        .url(&format!("/login/oidc/callback?code={code}&state=forged"));
    let r = callback_with(&forged, &cookie).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
    assert_eq!(anonymous_refusal(&s.app).await, "sso state_mismatch");
    let r = callback_with(
        &s.app.url(&format!("/login/oidc/callback?code={code}")),
        &cookie,
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(anonymous_refusal(&s.app).await, "sso state_missing");
    // The real callback, in a browser that never started a sign-in.
    let r = callback_with(&back, "other=1").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(!sets_session(&r));
    assert_eq!(anonymous_refusal(&s.app).await, "sso no_pending_sign_in");
    // A flow cookie that is not ours.
    let r = callback_with(&back, "callvault_oidc=Zm9yZ2Vk").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Hostile parameters: a clear page, no panic.
    let long = "x".repeat(5000);
    for q in [
        format!("code={long}&state={long}"),
        "error=%3Cscript%3E&state=x".to_owned(),
        "code=%00%01&state=%E2%80%AE".to_owned(),
    ] {
        let r = callback_with(&s.app.url(&format!("/login/oidc/callback?{q}")), &cookie).await;
        assert!(r.status().is_client_error(), "{q:.40}");
        assert!(!r.text().await.unwrap().contains("<script>"));
    }
    // And the genuine answer still works: nothing above spent the code.
    let r = callback_with(&back, &cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn access_denied_at_the_provider_is_a_clear_page_and_an_audit_row() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let b = browser();
    let login = Login {
        cancel: true,
        ..Login::as_("sam.sso")
    };
    let out = s.through(&b, "/login/oidc", &login).await;
    assert_eq!(out.callback, StatusCode::FORBIDDEN);
    assert!(out.callback_body.contains("did not sign you in"));
    assert!(!s.signed_in(&b).await);
    assert_eq!(anonymous_refusal(&s.app).await, "sso provider_error");
}

#[tokio::test]
async fn an_unreachable_provider_at_start_up_leaves_the_console_up_and_sign_in_explains() {
    let port = free_port();
    let s = spawn_sso_app_at(&format!("http://127.0.0.1:{port}"), false).await;
    assert_eq!(status(&client(), s.app.url("/healthz")).await, 200);
    let r = client().get(s.app.url("/login/oidc")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(r.text().await.unwrap().contains("cannot be reached"));
    assert_eq!(anonymous_refusal(&s.app).await, "sso provider_unreachable");
    // Local sign-in still works.
    let c = s.app.login_as(callvault::auth::Role::Admin).await;
    assert_eq!(status(&c, s.app.url("/admin/users")).await, 200);
}

#[tokio::test]
async fn a_provider_that_goes_away_during_sign_in_gives_a_clear_page_and_an_audit_row() {
    let Some(mut own) = OwnProvider::start() else {
        return;
    };
    let s = spawn_sso_app_at(&own.issuer, true).await;
    let b = browser();
    let back = through_provider(
        &b,
        &s.issuer,
        &s.app.url("/login/oidc"),
        &Login::as_("sam.sso"),
    )
    .await;
    own.stop();
    let out = s.callback(&b, &back).await;
    assert_eq!(out.callback, StatusCode::BAD_GATEWAY);
    assert!(!s.signed_in(&b).await);
    assert_eq!(anonymous_refusal(&s.app).await, "sso provider_unreachable");
}

#[tokio::test]
async fn roles_follow_the_claim_at_every_sign_in_and_the_change_is_audited() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let id = unique_account("mover");
    put_account(
        &s.issuer,
        &id,
        serde_json::json!({"groups": ["cc-supervisors"]}),
    )
    .await;
    let first = s.sign_in(&id).await;
    assert_eq!(status(&first, s.app.url("/contacts")).await, 200);
    put_account(
        &s.issuer,
        &id,
        serde_json::json!({"groups": ["cc-auditors"]}),
    )
    .await;
    let second = s.sign_in(&id).await;
    assert_eq!(status(&second, s.app.url("/contacts")).await, 403);
    assert_eq!(status(&second, s.app.url("/audit")).await, 200);
    let change = s
        .app
        .audit_rows()
        .await
        .into_iter()
        .rev()
        .find(|r| r.action == "user_change")
        .unwrap();
    assert_eq!(
        change.detail,
        format!("role from sso claim: supervisor -> auditor subject={id}")
    );
    // The session that held the old role ended with the change.
    assert!(!s.signed_in(&first).await);
    // Removed from every mapped group: refused at the next sign-in.
    put_account(&s.issuer, &id, serde_json::json!({"groups": []})).await;
    let b = browser();
    let out = s.through(&b, "/login/oidc", &Login::as_(&id)).await;
    assert_eq!(out.callback, StatusCode::FORBIDDEN);
    let row = s.app.last_audit("login_failed").await.unwrap();
    assert_eq!(row.actor, id);
    assert_eq!(row.detail, format!("sso no_mapped_group subject={id}"));
}

#[tokio::test]
async fn a_disabled_sso_user_cannot_sign_in_again() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let id = unique_account("leaver");
    put_account(
        &s.issuer,
        &id,
        serde_json::json!({"groups": ["cc-auditors"]}),
    )
    .await;
    let b = s.sign_in(&id).await;
    let user = s.app.state.users.by_name(&id).await.unwrap().unwrap();
    s.app.state.users.set_disabled(user.id, true).await.unwrap();
    assert!(!s.signed_in(&b).await);
    let out = s.through(&browser(), "/login/oidc", &Login::as_(&id)).await;
    assert_eq!(out.callback, StatusCode::OK);
    assert_eq!(out.resumed.unwrap().0, StatusCode::FORBIDDEN);
    assert_eq!(
        s.app.last_audit("login_failed").await.unwrap().detail,
        format!("sso disabled subject={id}")
    );
}

#[tokio::test]
async fn an_sso_session_ends_when_its_id_token_expires() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let b = s.sign_in("alice.sso").await;
    assert!(s.signed_in(&b).await);
    // The test provider's ID tokens live ten minutes; the idle timeout is 15.
    s.app.clock.advance(Duration::from_secs(11 * 60));
    let r = b.get(s.app.url("/audit")).send().await.unwrap();
    assert_sent_to_sign_in(&r);
}

#[tokio::test]
async fn a_reveal_sends_an_sso_supervisor_to_the_provider_and_needs_a_fresh_auth_time() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let app = &s.app;
    let b = s.sign_in("sam.sso").await;
    let id = demo_contact_id(3);
    let r = app.decrypt(&b, &id, "creditcard", "ticket 7").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let step_up = r.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(step_up.starts_with("/account/step-up?next=%2Freveals%2Fcontinue"));
    assert_eq!(
        app.last_audit("step_up_required").await.unwrap().outcome,
        "pending"
    );
    // The step-up page hands SSO users to the provider...
    let page = app.page(&b, &step_up).await;
    assert!(page.contains("Confirm with 127.0.0.1"), "{page}");
    let start = href_of(&page, "sso-step-up");
    assert!(start.starts_with("/login/oidc?step_up=1&next="), "{start}");
    let r = b.get(app.url(&start)).send().await.unwrap();
    let at_provider = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let q = query_of(&at_provider);
    assert!(
        q.contains(&("prompt".into(), "login".into())),
        "{at_provider}"
    );
    assert!(q.contains(&("max_age".into(), "300".into())));

    // ...which reports an old authentication: no step-up, no reveal.
    let stale = Login {
        auth_age_secs: 3600,
        ..Login::as_("sam.sso")
    };
    let out = s.through(&b, &start, &stale).await;
    assert_eq!(out.callback, StatusCode::FORBIDDEN);
    let row = app.last_audit("step_up_failed").await.unwrap();
    assert_eq!(
        (row.actor.as_str(), row.detail.as_str()),
        ("sam.sso", "sso stale_auth_time")
    );
    assert!(s.signed_in(&b).await, "a failed step-up keeps the sign-in");
    let r = app.decrypt(&b, &id, "creditcard", "ticket 7").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Someone else answering at the provider is not a step-up either.
    let out = s.through(&b, &start, &Login::as_("alice.sso")).await;
    assert_eq!(out.callback, StatusCode::FORBIDDEN);
    assert_eq!(
        app.last_audit("step_up_failed").await.unwrap().detail,
        "sso subject_mismatch"
    );

    // A fresh authentication opens the reveal.
    let out = s.through(&b, &start, &Login::as_("sam.sso")).await;
    assert_eq!(out.callback, StatusCode::OK);
    let (st, next) = out.resumed.unwrap();
    assert_eq!(st, StatusCode::SEE_OTHER);
    assert_eq!(
        next, "/reveals/continue",
        "the interrupted reveal continues"
    );
    let row = app.last_audit("step_up").await.unwrap();
    assert!(row.detail.starts_with("sso subject=sam.sso auth_time="));
    let r = app.decrypt(&b, &id, "creditcard", "ticket 7").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().shows(&demo_card(3)));
    // The step-up lasts its window only.
    app.clock.advance(Duration::from_secs(6 * 60));
    let r = app.decrypt(&b, &id, "creditcard", "ticket 7").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn an_admin_can_turn_local_sign_in_off_for_everyone_but_admins() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let app = &s.app;
    app.add_user("local-sup", callvault::auth::Role::Supervisor)
        .await;
    app.add_user("local-admin", callvault::auth::Role::Admin)
        .await;
    let admin = s.sign_in("root.sso").await;
    let page = app.page(&admin, "/admin/users").await;
    assert!(page.contains("action=\"/admin/sign-in\""));
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/sign-in",
            &[("local_sign_in", "admins_only")],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=settings");
    assert_eq!(
        app.last_audit("setting_change").await.unwrap().detail,
        "local_sign_in = admins_only"
    );
    let r = app.login(&client(), "local-sup", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let row = app.last_audit("login_failed").await.unwrap();
    assert_eq!(
        (row.actor.as_str(), row.detail.as_str()),
        ("local-sup", "local_sign_in_off")
    );
    let r = app.login(&client(), "local-admin", PASSWORD).await;
    assert_signed_in(&r);
    // SSO supervisors are unaffected.
    s.sign_in("sam.sso").await;
    // A value other than the two is refused.
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/sign-in",
            &[("local_sign_in", "nobody")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // And back on.
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/sign-in",
            &[("local_sign_in", "all")],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=settings");
    let r = app.login(&client(), "local-sup", PASSWORD).await;
    assert_signed_in(&r);
}

#[tokio::test]
async fn an_sso_user_has_no_password_to_sign_in_with_locally() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    s.sign_in("alice.sso").await;
    for guess in ["", "!sso", PASSWORD] {
        let r = s.app.login(&client(), "alice.sso", guess).await;
        assert!(r.status().is_client_error(), "{guess}");
    }
}

#[tokio::test]
async fn signing_out_an_sso_user_also_signs_out_at_the_provider() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let b = s.sign_in("alice.sso").await;
    let html = s.app.page(&b, "/").await;
    let r = b
        .post(s.app.url("/logout"))
        .form(&[("csrf_token", csrf_in(&html))])
        .send()
        .await
        .unwrap();
    // A page (not a redirect of the sign-out form: form-action 'self')
    // that sends the browser on to the provider's sign-out.
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains("http-equiv=\"refresh\""));
    let to = href_of(&page, "provider-sign-out");
    assert!(
        to.starts_with(&format!("{}/session/end?", s.issuer)),
        "{to}"
    );
    let q = query_of(&to);
    assert!(q.contains(&("client_id".into(), s.client.client_id.clone())));
    assert!(q.contains(&("post_logout_redirect_uri".into(), s.app.url("/login"))));
    assert!(!s.signed_in(&b).await);
    assert_eq!(s.app.last_audit("logout").await.unwrap().actor, "alice.sso");
    // The provider accepts it and asks to confirm.
    let r = b.get(&to).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A local user signs out locally only.
    let c = s.app.login_as(callvault::auth::Role::Auditor).await;
    let html = s.app.page(&c, "/").await;
    let r = c
        .post(s.app.url("/logout"))
        .form(&[("csrf_token", csrf_in(&html))])
        .send()
        .await
        .unwrap();
    assert_redirects_to(&r, "/login?m=signed_out");
}
