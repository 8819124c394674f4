use callvault::auth::Role;
use reqwest::header::SET_COOKIE;

use crate::helpers::*;

fn assert_security_headers(r: &reqwest::Response) {
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-frame-options"], "DENY");
    assert!(h.contains_key("x-request-id"));
}

#[tokio::test]
async fn every_kind_of_response_carries_the_security_headers() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    for path in [
        "/login",
        "/audit",
        "/admin/users",
        "/no-such-page",
        "/healthz",
        "/static/app.css",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_security_headers(&r);
        if !path.starts_with("/static") {
            assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
        }
    }
    // No HSTS over plain HTTP; HSTS when the request came over TLS (via a proxy).
    let r = c.get(app.url("/login")).send().await.unwrap();
    assert!(!r.headers().contains_key("strict-transport-security"));
    let r = c
        .get(app.url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["strict-transport-security"]
        .to_str()
        .unwrap()
        .contains("max-age="));
}

#[tokio::test]
async fn the_session_cookie_is_secure_httponly_and_strict() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    let app = spawn_app_with(dir, url, true).await;
    let r = client().get(app.url("/login")).send().await.unwrap();
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("callvault_session="))
        .unwrap();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "{flag} missing in {cookie}");
    }
    // A session cookie: no Max-Age/Expires, it dies with the browser.
    assert!(!cookie.contains("Max-Age") && !cookie.contains("Expires"));
}

#[tokio::test]
async fn error_pages_name_the_request_id_and_nothing_else() {
    let app = spawn_app().await;
    let r = client()
        .get(app.url("/no-such-page?<script>=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains(&id));
    assert!(!html.contains("<script>"));
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_session() {
    // Ready needs a contact source: the demo's.
    let app = spawn_demo_app().await;
    assert_eq!(
        client()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "ok"
    );
    let r = client().get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Not ready once the database is gone.
    app.state.db.pool.close().await;
    assert_eq!(
        client()
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
}
