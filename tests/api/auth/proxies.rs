//! Behind a reverse proxy (`CALLVAULT_TRUSTED_PROXIES`): the client address
//! that throttling and the audit log use.

use std::process::{Command, Stdio};

use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

/// The test client connects from loopback: that is "the proxy".
async fn behind_proxy() -> TestApp {
    spawn_demo_app_custom(
        |_, _| {},
        |s| s.trusted_proxies = "127.0.0.1/32, ::1".parse().unwrap(),
    )
    .await
}

/// One sign-in attempt from a client whose proxy says it is `xff`.
async fn login_via(app: &TestApp, xff: &str, username: &str, password: &str) -> StatusCode {
    let c = client();
    let html = c
        .get(app.url("/login"))
        .header("x-forwarded-for", xff)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    c.post(app.url("/login"))
        .header("x-forwarded-for", xff)
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn two_clients_behind_one_proxy_are_throttled_separately_and_audited_with_their_own_addresses(
) {
    let app = behind_proxy().await;
    app.add_user("bea", Role::Supervisor).await;
    // Client A mistypes (as different unknown names, so only its address
    // bucket fills) until it is locked out.
    let a = "6.6.6.6, 198.51.100.1";
    let mut locked = false;
    for i in 0..30 {
        match login_via(&app, a, &format!("nobody{i}"), "wrong").await {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => {
                locked = true;
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(locked, "client A is throttled by its own address");
    // Client B, through the same proxy, signs in at once.
    let b = "198.51.100.2";
    assert_eq!(
        login_via(&app, b, "bea", PASSWORD).await,
        StatusCode::SEE_OTHER,
        "client B is not locked out by client A's failures"
    );
    let rows = app.audit_rows().await;
    let failed: Vec<_> = rows.iter().filter(|r| r.action == "login_failed").collect();
    assert!(!failed.is_empty());
    for r in &failed {
        assert_eq!(r.client_addr, "198.51.100.1", "row {}", r.seq);
    }
    assert_eq!(
        app.last_audit("login").await.unwrap().client_addr,
        "198.51.100.2"
    );
    assert!(
        rows.iter()
            .all(|r| r.client_addr != "6.6.6.6" && r.client_addr != "127.0.0.1"),
        "neither the forged hop nor the proxy is recorded"
    );
}

#[tokio::test]
async fn a_forged_x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // No trusted proxies: the default.
    let app = spawn_demo_app().await;
    app.add_user("bea", Role::Supervisor).await;
    for forged in [
        "203.0.113.9",
        "203.0.113.9, 198.51.100.1",
        "[2001:db8::1]:443",
    ] {
        assert_eq!(
            login_via(&app, forged, "bea", PASSWORD).await,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            app.last_audit("login").await.unwrap().client_addr,
            "127.0.0.1",
            "{forged}"
        );
    }
    // Nor does the Forwarded header count.
    let c = client();
    let html = c
        .get(app.url("/login"))
        .header("forwarded", "for=203.0.113.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    c.post(app.url("/login"))
        .header("forwarded", "for=203.0.113.9")
        .form(&[
            ("username", "bea"),
            ("password", "wrong"),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.last_audit("login_failed").await.unwrap().client_addr,
        "127.0.0.1"
    );
}

#[tokio::test]
async fn hostile_forwarding_headers_through_a_trusted_proxy_never_spoof_the_audit_log() {
    let app = behind_proxy().await;
    app.add_user("bea", Role::Supervisor).await;
    let many = vec!["203.0.113.66"; 2000].join(",");
    let cases = [
        (format!("{many}, 198.51.100.7"), "198.51.100.7"),
        ("203.0.113.66, not-an-address".to_owned(), "127.0.0.1"),
        ("203.0.113.66, 127.0.0.1, unknown".to_owned(), "127.0.0.1"),
        ("203.0.113.66, [2001:db8::5]:8443".to_owned(), "2001:db8::5"),
        (
            "203.0.113.66, ::ffff:198.51.100.8".to_owned(),
            "198.51.100.8",
        ),
        ("203.0.113.66, 198.51.100.9 extra".to_owned(), "127.0.0.1"),
    ];
    for (xff, want) in cases {
        let status = login_via(&app, &xff, "bea", PASSWORD).await;
        assert_eq!(
            status,
            StatusCode::SEE_OTHER,
            "{}",
            &xff[..xff.len().min(60)]
        );
        assert_eq!(
            app.last_audit("login").await.unwrap().client_addr,
            want,
            "{}",
            &xff[..xff.len().min(60)]
        );
    }
    assert!(app
        .audit_rows()
        .await
        .iter()
        .all(|r| r.client_addr != "203.0.113.66"));
}

#[test]
fn serve_refuses_a_malformed_trusted_proxies_setting_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1, 10.0.0"] {
        let o = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", sqlite_url(&dir))
            .env("CALLVAULT_SECRETS_DIR", dir.path().join("secrets"))
            .env("CALLVAULT_TRUSTED_PROXIES", bad)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!o.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("CALLVAULT_TRUSTED_PROXIES") && err.contains("is not an IP address"),
            "{bad}: {err}"
        );
    }
}
