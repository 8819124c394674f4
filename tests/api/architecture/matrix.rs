//! Every route x every role (and anonymous), for local users and for users
//! signed in by SSO: the expected status. The list
//! is checked against the router's own route table
//! (`callvault::startup::route_table`), so a new route cannot miss it.

use callvault::auth::Role;
use callvault::web::Access;
use reqwest::Client;

use crate::helpers::*;

#[derive(Clone, Copy, Debug)]
enum Who {
    Anonymous,
    Signed(Role),
}

/// The columns of every route's expectations, in order.
const WHO: [Who; 4] = [
    Who::Anonymous,
    Who::Signed(Role::Supervisor),
    Who::Signed(Role::Auditor),
    Who::Signed(Role::Admin),
];

const S303: u16 = 303;
const FAKE_REQUEST: &str = "0123456789abcdef0123456789abcdef";

/// (method, path, form, [anonymous, supervisor, auditor, admin])
type Route = (&'static str, String, Vec<(&'static str, String)>, [u16; 4]);

/// The routes; `sso`: single sign-on is configured and the signed-in users
/// came through it (a reveal sends them to step up at the provider; signing
/// out sends them on to the provider's sign-out).
fn routes(target: i64, sso: bool) -> Vec<Route> {
    let id = target.to_string();
    let contact = callvault::demo::demo_contact_id(0);
    let (reveal, sign_out) = if sso {
        // SSO users sign out at the provider too: a page that sends them on.
        ([S303, S303, 403, 403], [S303, 200, 200, 200])
    } else {
        // An admitted reveal is sent to the page that shows it, once.
        ([S303, S303, 403, 403], [S303, S303, S303, S303])
    };
    let (oidc_start, oidc_callback, sign_in_setting) = if sso {
        (
            [S303, S303, S303, S303],
            [400, 400, 400, 400],
            [S303, 403, 403, S303],
        )
    } else {
        (
            [404, 404, 404, 404],
            [404, 404, 404, 404],
            [S303, 403, 403, 404],
        )
    };
    vec![
        ("GET", "/contacts".into(), vec![], [S303, 200, 403, 403]),
        (
            "GET",
            format!("/contacts/{contact}"),
            vec![],
            [S303, 200, 403, 403],
        ),
        (
            "POST",
            format!("/contacts/{contact}/decrypt"),
            vec![
                ("field", "creditcard".into()),
                ("reason", "route matrix".into()),
            ],
            reveal,
        ),
        ("GET", "/logs".into(), vec![], [S303, 200, 403, 403]),
        (
            "GET",
            format!("/logs/search?contact_id={contact}"),
            vec![],
            [S303, 200, 403, 403],
        ),
        (
            "GET",
            "/logs/%2Faws%2Fconnect%2Fcallvault-demo/legacy-debug-flow%2Fleaked".into(),
            vec![],
            [S303, 200, 403, 403],
        ),
        ("GET", "/healthz".into(), vec![], [200, 200, 200, 200]),
        ("GET", "/readyz".into(), vec![], [200, 200, 200, 200]),
        ("GET", "/metrics".into(), vec![], [200, 200, 200, 200]),
        (
            "GET",
            "/static/app.css".into(),
            vec![],
            [200, 200, 200, 200],
        ),
        ("GET", "/".into(), vec![], [S303, 200, 200, 200]),
        ("GET", "/login".into(), vec![], [200, S303, S303, S303]),
        (
            "POST",
            "/login".into(),
            vec![
                ("username", "nobody".into()),
                ("password", "wrong password!".into()),
            ],
            [401, 401, 401, 401],
        ),
        ("GET", "/audit".into(), vec![], [S303, 403, 200, 403]),
        (
            "GET",
            "/audit/export?format=csv".into(),
            vec![],
            [S303, 403, 200, 403],
        ),
        (
            "GET",
            "/audit/export?format=jsonl".into(),
            vec![],
            [S303, 403, 200, 403],
        ),
        (
            "POST",
            "/audit/verify".into(),
            vec![],
            [S303, 403, 200, 403],
        ),
        ("GET", "/admin/users".into(), vec![], [S303, 403, 403, 200]),
        (
            "POST",
            "/admin/users".into(),
            vec![
                ("username", "made-by-matrix".into()),
                ("role", "auditor".into()),
                ("password", PASSWORD.into()),
            ],
            [S303, 403, 403, S303],
        ),
        (
            "POST",
            format!("/admin/users/{id}/disable"),
            vec![],
            [S303, 403, 403, S303],
        ),
        (
            "POST",
            format!("/admin/users/{id}/enable"),
            vec![],
            [S303, 403, 403, S303],
        ),
        (
            "POST",
            format!("/admin/users/{id}/role"),
            vec![("role", "auditor".into())],
            [S303, 403, 403, S303],
        ),
        ("GET", "/audit/volume".into(), vec![], [S303, 403, 200, 403]),
        ("GET", "/account/totp".into(), vec![], [S303, 200, 200, 200]),
        (
            "POST",
            "/account/totp/enrol".into(),
            vec![],
            [S303, 200, 200, 200],
        ),
        (
            "POST",
            "/account/totp/confirm".into(),
            vec![
                ("password", "wrong password!".into()),
                ("code", "000000".into()),
            ],
            [S303, 401, 401, 401],
        ),
        (
            "GET",
            "/account/step-up?next=/contacts".into(),
            vec![],
            [S303, 200, 200, 200],
        ),
        (
            "POST",
            "/account/step-up".into(),
            vec![
                ("password", "wrong password!".into()),
                ("code", "000000".into()),
            ],
            [S303, 401, 401, 401],
        ),
        (
            "GET",
            "/account/settings".into(),
            vec![],
            [S303, 200, 200, 200],
        ),
        (
            "POST",
            "/account/settings".into(),
            vec![("time_zone", "Europe/Paris".into())],
            [S303, 200, 200, 200],
        ),
        ("GET", "/approvals".into(), vec![], [S303, 200, 403, 403]),
        // Nothing kept to continue: back to the contacts.
        (
            "GET",
            "/reveals/continue".into(),
            vec![],
            [S303, S303, 403, 403],
        ),
        (
            "GET",
            format!("/reveals/{FAKE_REQUEST}"),
            vec![],
            [S303, 404, 403, 403],
        ),
        (
            "POST",
            format!("/reveals/{FAKE_REQUEST}/extend"),
            vec![],
            [S303, 404, 403, 403],
        ),
        (
            "POST",
            format!("/approvals/{FAKE_REQUEST}/approve"),
            vec![],
            [S303, 404, 403, 403],
        ),
        (
            "POST",
            format!("/approvals/{FAKE_REQUEST}/reject"),
            vec![],
            [S303, 404, 403, 403],
        ),
        (
            "POST",
            format!("/approvals/{FAKE_REQUEST}/reveal"),
            vec![],
            [S303, 404, 403, 403],
        ),
        (
            "POST",
            "/admin/settings".into(),
            vec![("totp_mandatory", "off".into())],
            [S303, 403, 403, S303],
        ),
        (
            "POST",
            format!("/admin/users/{id}/totp/reset"),
            vec![],
            [S303, 403, 403, S303],
        ),
        ("GET", "/login/oidc".into(), vec![], oidc_start),
        ("GET", "/login/oidc/callback".into(), vec![], oidc_callback),
        (
            "POST",
            "/admin/sign-in".into(),
            vec![("local_sign_in", "all".into())],
            sign_in_setting,
        ),
        ("GET", "/no-such-route".into(), vec![], [404, 404, 404, 404]),
        // Last: it ends the session.
        ("POST", "/logout".into(), vec![], sign_out),
    ]
}

async fn token(app: &TestApp, c: &Client, who: Who) -> String {
    let page = match who {
        Who::Anonymous => "/login",
        Who::Signed(_) => "/",
    };
    csrf_in(&app.page(c, page).await)
}

/// Does a concrete path (query string ignored) match a route pattern?
fn matches(pattern: &str, path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    let (p, c): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    p.len() == c.len()
        && p.iter()
            .zip(&c)
            .all(|(p, c)| (p.starts_with('{') && p.ends_with('}') && !c.is_empty()) || p == c)
}

#[test]
fn the_matrix_covers_exactly_the_routers_route_table() {
    let table = callvault::startup::route_table();
    assert!(table.len() > 30, "{table:?}");
    let matrix = routes(7, false);
    let role_index = |r: &str| match r {
        "supervisor" => 1,
        "auditor" => 2,
        "admin" => 3,
        other => panic!("unknown role {other}"),
    };
    for route in &table {
        let rows: Vec<_> = matrix
            .iter()
            .filter(|(m, p, _, _)| *m == route.method && matches(route.path, p))
            .collect();
        assert!(
            !rows.is_empty(),
            "{} {} is routed but missing from the route x role matrix",
            route.method,
            route.path
        );
        // What the route table declares is what the matrix expects.
        for (_, path, _, expected) in rows {
            match route.access {
                Access::Public => assert!(expected.iter().all(|s| *s != 403), "{path}: public"),
                Access::SignedIn => assert_eq!(expected[0], S303, "{path}: signed in"),
                Access::Role(role) => {
                    assert_eq!(expected[0], S303, "{path}: {role} only");
                    for (i, status) in expected.iter().enumerate().skip(1) {
                        if i == role_index(role) {
                            assert_ne!(*status, 403, "{path}: {role} is allowed");
                        } else {
                            assert_eq!(*status, 403, "{path}: only {role}");
                        }
                    }
                }
            }
        }
    }
    for (method, path, _, _) in &matrix {
        let routed = table
            .iter()
            .any(|r| r.method == *method && matches(r.path, path));
        assert!(
            routed || path == "/no-such-route",
            "{method} {path} is in the matrix but not routed"
        );
    }
}

/// Walks every route as every `who`; the mismatches.
async fn walk(app: &TestApp, clients: &[(Who, Client)], target: i64, sso: bool) -> Vec<String> {
    let mut failures = Vec::new();
    for (i, (who, c)) in clients.iter().enumerate() {
        for (method, path, form, expected) in routes(target, sso) {
            let resp = if method == "GET" {
                c.get(app.url(&path)).send().await.unwrap()
            } else {
                let t = token(app, c, *who).await;
                let mut form = form.clone();
                form.push(("csrf_token", t));
                c.post(app.url(&path)).form(&form).send().await.unwrap()
            };
            let got = resp.status().as_u16();
            if got != expected[i] {
                failures.push(format!(
                    "{method} {path} as {who:?}: expected {}, got {got}",
                    expected[i]
                ));
            }
            if got == 303
                && expected[i] == 303
                && matches!(who, Who::Anonymous)
                && path != "/logout"
                && !path.starts_with("/login/oidc")
            {
                // Pages come back after signing in; forms do not.
                let to =
                    if method == "GET" && callvault::auth::pages::return_target(&path).is_some() {
                        format!(
                            "/login?{}",
                            serde_urlencoded::to_string([("next", path.as_str())]).unwrap()
                        )
                    } else {
                        "/login".to_owned()
                    };
                assert_eq!(resp.headers()["location"], to.as_str(), "{method} {path}");
            }
            if got == 403 {
                assert!(resp.text().await.unwrap().contains("Not allowed"));
            }
        }
    }
    failures
}

#[tokio::test]
async fn every_route_answers_every_role_as_designed() {
    let app = spawn_demo_app().await;
    let target = app.add_user("matrix-target", Role::Auditor).await;
    let mut clients = Vec::new();
    for who in WHO {
        let c = match who {
            Who::Anonymous => client(),
            Who::Signed(role) => app.login_as(role).await,
        };
        clients.push((who, c));
    }
    let failures = walk(&app, &clients, target, false).await;
    assert!(
        failures.is_empty(),
        "route x role mismatches:\n{}",
        failures.join("\n")
    );
    // Every 403 left an access_denied row naming the route.
    let denied: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "access_denied")
        .collect();
    // Supervisor: 5 audit + 8 admin routes; auditor: 8 admin + 5 supervisor
    // pages + 4 approval routes + 3 reveal routes; admin: 5 audit + 5
    // supervisor pages + 4 approval routes + 3 reveal routes. A refused
    // decrypt is recorded as decrypt_denied instead.
    assert_eq!(denied.len(), 13 + 20 + 17);
    let decrypt_denied = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "decrypt_denied")
        .count();
    assert_eq!(decrypt_denied, 2);
    assert!(denied
        .iter()
        .any(|r| r.role == "supervisor" && r.detail == "GET /audit"));
    assert!(denied
        .iter()
        .any(|r| r.role == "admin" && r.detail == "POST /audit/verify"));
}

#[tokio::test]
async fn every_route_answers_every_sso_signed_in_role_as_designed() {
    let Some(s) = crate::oidc::spawn_sso_app().await else {
        return;
    };
    let app = &s.app;
    let target = app.add_user("matrix-target", Role::Auditor).await;
    let mut clients = Vec::new();
    for who in WHO {
        let c = match who {
            Who::Anonymous => client(),
            Who::Signed(Role::Supervisor) => s.sign_in("sam.sso").await,
            Who::Signed(Role::Auditor) => s.sign_in("alice.sso").await,
            Who::Signed(Role::Admin) => s.sign_in("root.sso").await,
        };
        clients.push((who, c));
    }
    let failures = walk(app, &clients, target, true).await;
    assert!(
        failures.is_empty(),
        "route x SSO role mismatches:\n{}",
        failures.join("\n")
    );
    let denied: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "access_denied")
        .collect();
    assert_eq!(denied.len(), 13 + 20 + 17);
    assert!(denied
        .iter()
        .any(|r| r.actor == "sam.sso" && r.detail == "GET /audit"));
    // An SSO supervisor's reveal waits for a step-up at the provider.
    let refused: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| {
            matches!(
                r.action.as_str(),
                "decrypt" | "decrypt_denied" | "decrypt_failed" | "step_up_required"
            )
        })
        .filter(|r| r.actor == "sam.sso")
        .map(|r| format!("{}:{}", r.action, r.outcome))
        .collect();
    // Once from the form, once more from its continuation (still no step-up).
    assert_eq!(
        refused,
        ["step_up_required:pending", "step_up_required:pending"]
    );
}
