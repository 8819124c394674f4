//! Steps several tests share: enrolling an authenticator, a TOTP code now,
//! a step-up.

use crate::helpers::*;
use callvault::clock::Clock as _;
use reqwest::StatusCode;
use totp_rs::{Algorithm, Secret, TOTP};

/// Starts an enrolment for the signed-in client; the authenticator it shows.
pub async fn begin_enrolment(app: &TestApp, c: &reqwest::Client) -> TOTP {
    let r = app
        .post_form(c, "/account/totp", "/account/totp/enrol", &[])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<svg"), "a QR code is shown inline");
    let marker = "id=\"totp-secret\">";
    let start = html.find(marker).expect("the key is shown") + marker.len();
    let secret = html[start..].split('<').next().unwrap().to_owned();
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        30,
        Secret::Encoded(secret).to_bytes().unwrap(),
        None,
        "test".into(),
    )
    .unwrap()
}

/// Enrols an authenticator for the signed-in client; returns it.
pub async fn enrol(app: &TestApp, c: &reqwest::Client) -> TOTP {
    let totp = begin_enrolment(app, c).await;
    let code = code_now(app, &totp);
    let r = app
        .post_form(
            c,
            "/account/totp",
            "/account/totp/confirm",
            &[("password", PASSWORD), ("code", &code)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("authenticator is enrolled"));
    totp
}

pub fn code_now(app: &TestApp, totp: &TOTP) -> String {
    totp.generate(app.clock.now().timestamp() as u64)
}

pub async fn step_up(app: &TestApp, c: &reqwest::Client, code: &str) -> reqwest::Response {
    app.post_form(
        c,
        "/account/step-up",
        "/account/step-up",
        &[
            ("password", PASSWORD),
            ("code", code),
            ("next", "/contacts"),
        ],
    )
    .await
}
