//! The SSO service (`callvault::sso`) against the real test OpenID Provider:
//! sign-in, the roles claim, every forged or broken answer, step-up.

use std::sync::Arc;

use callvault::auth::Role;
use callvault::clock::OffsetClock;
use callvault::sso::flow::IdTokenProblem;
use callvault::sso::{
    CallbackParams, OidcArgs, PendingAuth, Purpose, RoleRefusal, Sso, SsoError, VerifiedLogin,
};

use crate::oidc::{
    browser, issuer, put_account, query_of, register_client, through_provider, unique_account,
    Login, OwnProvider,
};

/// A console's public URL that nothing serves: the service never calls it.
const PUBLIC_URL: &str = "http://127.0.0.1:9";

async fn sso_for(issuer: &str) -> Sso {
    let client = register_client(issuer, PUBLIC_URL).await;
    sso_with(issuer, &client.client_id, &client.client_secret)
}

fn sso_with(issuer: &str, client_id: &str, secret: &str) -> Sso {
    let args = OidcArgs {
        oidc_issuer: Some(issuer.to_owned()),
        oidc_client_id: Some(client_id.to_owned()),
        oidc_client_secret: Some(secret.to_owned()),
        public_url: Some(PUBLIC_URL.to_owned()),
        oidc_roles_claim: "groups".into(),
        oidc_role_map: Some("cc-supervisors=supervisor,cc-auditors=auditor,cc-admins=admin".into()),
        ..Default::default()
    };
    let settings = args.settings().unwrap().unwrap();
    Sso::new(settings, Arc::new(OffsetClock::default())).unwrap()
}

fn params(url: &str) -> CallbackParams {
    let mut p = CallbackParams::default();
    for (k, v) in query_of(url) {
        match k.as_str() {
            "code" => p.code = Some(v),
            "state" => p.state = Some(v),
            "error" => p.error = Some(v),
            "iss" => p.iss = Some(v),
            _ => {}
        }
    }
    p
}

/// Starts a request for `purpose`, lets `login` answer it at the provider;
/// the callback's parameters and the pending request.
async fn round_trip(
    sso: &Sso,
    issuer: &str,
    purpose: Purpose,
    login: &Login<'_>,
) -> (CallbackParams, PendingAuth, String) {
    let (url, pending) = sso.begin(purpose).await.unwrap();
    let back = through_provider(&browser(), issuer, url.as_str(), login).await;
    assert!(
        back.starts_with(&format!("{PUBLIC_URL}/login/oidc/callback?")),
        "{back}"
    );
    (params(&back), pending, url.to_string())
}

async fn sign_in(sso: &Sso, issuer: &str, account: &str) -> Result<VerifiedLogin, SsoError> {
    let (p, pending, _) = round_trip(sso, issuer, Purpose::SignIn, &Login::as_(account)).await;
    sso.finish(Some(pending), &p).await
}

fn same(a: &PendingAuth) -> PendingAuth {
    PendingAuth::from_session_value(&a.to_session_value().unwrap()).unwrap()
}

#[tokio::test]
async fn each_mapped_group_signs_in_with_its_one_role() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    for (account, role) in [
        ("sam.sso", Role::Supervisor),
        ("alice.sso", Role::Auditor),
        ("root.sso", Role::Admin),
    ] {
        let login = sign_in(&sso, &iss, account).await.unwrap();
        assert_eq!(login.subject, account);
        assert_eq!(login.role, Ok(role), "{account}");
        assert_eq!(login.display_name.as_deref(), Some(account));
        assert!(login.expires_us > 0 && login.auth_time_us.is_some());
    }
}

#[tokio::test]
async fn groups_released_only_at_userinfo_still_give_the_role() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let login = sign_in(&sso, &iss, "userinfo.sso").await.unwrap();
    assert_eq!(login.role, Ok(Role::Auditor));
}

#[tokio::test]
async fn the_authorization_request_carries_pkce_state_nonce_and_the_groups_scope() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let (url, _) = sso.begin(Purpose::SignIn).await.unwrap();
    let q = query_of(url.as_str());
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    assert_eq!(get("code_challenge_method").as_deref(), Some("S256"));
    assert!(get("code_challenge").is_some_and(|c| c.len() >= 43));
    assert!(get("state").is_some_and(|s| s.len() >= 16));
    assert!(get("nonce").is_some_and(|s| s.len() >= 16));
    assert_eq!(get("response_type").as_deref(), Some("code"));
    assert_eq!(
        get("redirect_uri").as_deref(),
        Some("http://127.0.0.1:9/login/oidc/callback")
    );
    let scope = get("scope").unwrap();
    assert!(scope.split(' ').any(|s| s == "openid") && scope.split(' ').any(|s| s == "groups"));
    assert_eq!(get("prompt"), None);
    assert_eq!(get("max_age"), None);
}

#[tokio::test]
async fn people_without_exactly_one_mapped_role_are_refused_with_a_typed_reason() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    for (account, refusal) in [
        ("nobody.sso", RoleRefusal::NoMappedGroup),
        ("nogroups.sso", RoleRefusal::MissingClaim),
        ("string.sso", RoleRefusal::WrongType),
        ("hostile.sso", RoleRefusal::TooLarge),
        (
            "both.sso",
            RoleRefusal::SeveralRoles(Role::Supervisor, Role::Admin),
        ),
    ] {
        let login = sign_in(&sso, &iss, account).await.unwrap();
        assert_eq!(login.role, Err(refusal), "{account}");
    }
}

#[tokio::test]
async fn a_hostile_display_name_is_cleaned_and_cut() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let id = unique_account("hostile-name");
    put_account(
        &iss,
        &id,
        serde_json::json!({"groups": ["cc-auditors"], "preferred_username": format!("{}\u{0}\u{202e}x", "n".repeat(300))}),
    )
    .await;
    let login = sign_in(&sso, &iss, &id).await.unwrap();
    let name = login.display_name.unwrap();
    assert_eq!(name.chars().count(), 64);
    assert!(!name.chars().any(|c| c.is_control() || c == '\u{202e}'));
}

#[tokio::test]
async fn a_replayed_authorization_code_is_refused_by_the_provider() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let (p, pending, _) = round_trip(&sso, &iss, Purpose::SignIn, &Login::as_("sam.sso")).await;
    let again = same(&pending);
    sso.finish(Some(pending), &p).await.unwrap();
    let err = sso.finish(Some(again), &p).await.unwrap_err();
    assert!(
        matches!(&err, SsoError::CodeRejected(code) if code == "invalid_grant"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_forged_missing_or_unexpected_state_is_refused_before_the_code_is_used() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let (mut p, pending, _) = round_trip(&sso, &iss, Purpose::SignIn, &Login::as_("sam.sso")).await;
    let real_state = p.state.clone();
    p.state = Some("forged".into());
    let err = sso.finish(Some(same(&pending)), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::StateMismatch), "{err:?}");
    p.state = None;
    let err = sso.finish(Some(same(&pending)), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::StateMissing), "{err:?}");
    // A callback this browser never asked for.
    p.state = real_state;
    let err = sso.finish(None, &p).await.unwrap_err();
    assert!(matches!(err, SsoError::NoPendingSignIn), "{err:?}");
    // The code was never spent: the real pair still works.
    sso.finish(Some(pending), &p).await.unwrap();
}

#[tokio::test]
async fn a_callback_naming_another_issuer_is_refused() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let (mut p, pending, _) = round_trip(&sso, &iss, Purpose::SignIn, &Login::as_("sam.sso")).await;
    assert_eq!(p.iss.as_deref(), Some(iss.as_str()));
    p.iss = Some("https://evil.example".into());
    let err = sso.finish(Some(pending), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::IssuerMismatch), "{err:?}");
}

#[tokio::test]
async fn broken_id_tokens_open_nothing() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    for (account, problem) in [
        ("nonce.sso", IdTokenProblem::Nonce),
        ("foreign.sso", IdTokenProblem::Signature),
        ("expired.sso", IdTokenProblem::Expired),
        ("audience.sso", IdTokenProblem::Audience),
        ("issuer.sso", IdTokenProblem::Issuer),
    ] {
        let err = sign_in(&sso, &iss, account).await.unwrap_err();
        assert!(
            matches!(&err, SsoError::IdToken(p) if *p == problem),
            "{account}: {err:?}"
        );
    }
}

#[tokio::test]
async fn the_provider_saying_access_denied_is_a_typed_error() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let login = Login {
        cancel: true,
        ..Login::as_("sam.sso")
    };
    let (p, pending, _) = round_trip(&sso, &iss, Purpose::SignIn, &login).await;
    let err = sso.finish(Some(pending), &p).await.unwrap_err();
    assert!(
        matches!(&err, SsoError::ProviderError(e) if e == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "provider_error");
}

#[tokio::test]
async fn a_step_up_asks_for_a_new_login_and_accepts_only_a_fresh_auth_time() {
    let Some(iss) = issuer() else { return };
    let sso = sso_for(&iss).await;
    let step_up = || Purpose::StepUp {
        subject: "sam.sso".into(),
        max_age_secs: 300,
    };
    let (p, pending, url) = round_trip(&sso, &iss, step_up(), &Login::as_("sam.sso")).await;
    let q = query_of(&url);
    assert!(q.contains(&("prompt".into(), "login".into())));
    assert!(q.contains(&("max_age".into(), "300".into())));
    let ok = sso.finish(Some(pending), &p).await.unwrap();
    assert_eq!(ok.purpose, step_up());

    // A provider that reports an old authentication is not a step-up.
    let stale = Login {
        auth_age_secs: 3600,
        ..Login::as_("sam.sso")
    };
    let (p, pending, _) = round_trip(&sso, &iss, step_up(), &stale).await;
    let err = sso.finish(Some(pending), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::StaleAuthTime), "{err:?}");

    // Someone else answering the step-up.
    let (p, pending, _) = round_trip(&sso, &iss, step_up(), &Login::as_("alice.sso")).await;
    let err = sso.finish(Some(pending), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::SubjectMismatch), "{err:?}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_at_the_token_endpoint() {
    let Some(iss) = issuer() else { return };
    let client = register_client(&iss, PUBLIC_URL).await;
    let sso = sso_with(&iss, &client.client_id, "not-the-secret");
    let err = sign_in(&sso, &iss, "sam.sso").await.unwrap_err();
    assert!(matches!(err, SsoError::CodeRejected(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_issuer_is_a_typed_error_not_a_failure_to_start() {
    let port = crate::helpers::free_port();
    let sso = sso_with(&format!("http://127.0.0.1:{port}"), "c", "s");
    let err = sso.begin(Purpose::SignIn).await.unwrap_err();
    assert!(matches!(err, SsoError::Unreachable(_)), "{err:?}");
    assert!(sso.end_session_url().await.is_none());
}

#[tokio::test]
async fn a_provider_gone_during_sign_in_is_a_typed_error() {
    let Some(mut own) = OwnProvider::start() else {
        return;
    };
    let sso = sso_for(&own.issuer).await;
    let (p, pending, _) =
        round_trip(&sso, &own.issuer, Purpose::SignIn, &Login::as_("sam.sso")).await;
    own.stop();
    let err = sso.finish(Some(pending), &p).await.unwrap_err();
    assert!(matches!(err, SsoError::Unreachable(_)), "{err:?}");
}

#[tokio::test]
async fn sign_out_at_the_provider_names_the_client_and_never_a_token() {
    let Some(iss) = issuer() else { return };
    let client = register_client(&iss, PUBLIC_URL).await;
    let sso = sso_with(&iss, &client.client_id, &client.client_secret);
    let url = sso.end_session_url().await.unwrap();
    assert!(url.as_str().starts_with(&format!("{iss}/session/end?")));
    let q = query_of(url.as_str());
    assert!(q.contains(&("client_id".into(), client.client_id.clone())));
    assert!(q.contains(&(
        "post_logout_redirect_uri".into(),
        format!("{PUBLIC_URL}/login")
    )));
    assert!(q.iter().all(|(k, _)| k != "id_token_hint"));
    // The provider accepts it (it shows its sign-out confirmation).
    let r = browser().get(url).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn nothing_secret_shows_in_debug_output_of_a_sign_in() {
    let Some(iss) = issuer() else { return };
    let client = register_client(&iss, PUBLIC_URL).await;
    let sso = sso_with(&iss, &client.client_id, &client.client_secret);
    let (p, pending, _) = round_trip(&sso, &iss, Purpose::SignIn, &Login::as_("sam.sso")).await;
    let code = p.code.clone().unwrap();
    let state = p.state.clone().unwrap();
    let pending_debug = format!("{pending:?} {p:?} {sso:?}");
    let login = sso.finish(Some(pending), &p).await.unwrap();
    let all = format!("{pending_debug} {login:?}");
    for secret in [code.as_str(), state.as_str(), client.client_secret.as_str()] {
        assert!(!all.contains(secret), "{all}");
    }
}
