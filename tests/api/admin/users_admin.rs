use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn an_admin_adds_a_user_who_can_then_sign_in() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/users",
            &[
                ("username", "new.sup"),
                ("role", "supervisor"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=added");
    let html = app.page(&admin, "/admin/users?m=added").await;
    assert!(html.contains("new.sup") && html.contains("User added."));
    assert_signed_in(&app.login(&client(), "new.sup", PASSWORD).await);
    let row = app.last_audit("user_change").await.unwrap();
    assert_eq!(
        (row.outcome.as_str(), row.detail.as_str()),
        ("ok", "added user new.sup as supervisor")
    );
    assert!(!format!("{row:?}").contains(PASSWORD));
}

#[tokio::test]
async fn bad_user_input_is_refused_and_audited() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let long = "u".repeat(1000);
    for (username, role, password) in [
        ("ok-name", "root", PASSWORD),
        (long.as_str(), "auditor", PASSWORD),
        ("<b>x</b>", "auditor", PASSWORD),
        ("short-pw", "auditor", "short"),
    ] {
        let r = app
            .post_form(
                &admin,
                "/admin/users",
                "/admin/users",
                &[
                    ("username", username),
                    ("role", role),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{username} {role}");
        assert!(!r.text().await.unwrap().contains("<b>x</b>"));
    }
    let refused = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "user_change" && r.outcome == "refused")
        .count();
    assert_eq!(refused, 4);
    // A duplicate name.
    app.add_user("dup", Role::Auditor).await;
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/users",
            &[
                ("username", "dup"),
                ("role", "auditor"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("taken"));
}

#[tokio::test]
async fn the_last_admin_cannot_be_disabled_or_demoted() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let me = app
        .state
        .users
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.role == Role::Admin)
        .unwrap();
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{}/disable", me.id),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("last enabled admin"));
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{}/role", me.id),
            &[("role", "auditor")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // With a second admin, the first can step down.
    app.add_user("second-admin", Role::Admin).await;
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{}/disable", me.id),
            &[],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=disabled");
}

#[tokio::test]
async fn a_role_change_ends_the_users_sessions_and_applies_at_once() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let id = app.add_user("mover", Role::Auditor).await;
    let mover = client();
    assert_signed_in(&app.login(&mover, "mover", PASSWORD).await);
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            &format!("/admin/users/{id}/role"),
            &[("role", "supervisor")],
        )
        .await;
    assert_redirects_to(&r, "/admin/users?m=role");
    assert_sent_to_sign_in(&mover.get(app.url("/audit")).send().await.unwrap());
    assert_signed_in(&app.login(&mover, "mover", PASSWORD).await);
    assert_eq!(
        mover.get(app.url("/audit")).send().await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn unknown_user_ids_are_not_found() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    let r = app
        .post_form(&admin, "/admin/users", "/admin/users/999999/disable", &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/users/not-a-number/disable",
            &[],
        )
        .await;
    assert!(r.status() == StatusCode::NOT_FOUND || r.status() == StatusCode::BAD_REQUEST);
}

/// A refused "Add a user" form comes back as typed (never the password),
/// the field to fix marked, focused and explained beside it; a card-like
/// number typed as a username is not typed back.
#[tokio::test]
async fn a_refused_new_user_keeps_what_was_typed_beside_the_field_to_fix() {
    let app = spawn_app().await;
    let admin = app.login_as(Role::Admin).await;
    app.add_user("taken.name", Role::Auditor).await;
    for (username, role, password, field, says) in [
        ("Taken.Name", "auditor", PASSWORD, "username", "taken"),
        ("new.person", "auditor", "short", "password", "12"),
        (
            "bad name!",
            "supervisor",
            PASSWORD,
            "username",
            "usernames are",
        ),
        (
            "4111111111111111",
            "auditor",
            PASSWORD,
            "username",
            "card number",
        ),
    ] {
        let r = app
            .post_form(
                &admin,
                "/admin/users",
                "/admin/users",
                &[
                    ("username", username),
                    ("role", role),
                    ("password", password),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{username}");
        let html = r.text().await.unwrap();
        let marked = format!("name=\"{field}\"");
        let at = html
            .find(&marked)
            .unwrap_or_else(|| panic!("{field}: {html}"));
        let tag = &html[at..at + html[at..].find('>').unwrap()];
        assert!(
            tag.contains("aria-invalid=\"true\"") && tag.contains("autofocus"),
            "{tag}"
        );
        assert!(html.contains(says), "{username}: {html}");
        assert!(!html.contains(&format!("value=\"{PASSWORD}\"")));
        if username.starts_with("4111") {
            assert!(!html.contains(username), "a card number is not typed back");
        } else {
            assert!(
                html.contains(&format!("value=\"{username}\"")),
                "{username}"
            );
        }
        assert!(
            html.contains(&format!("<option value=\"{role}\" selected>")),
            "{role}"
        );
    }
}

/// A card number split by invisible characters reads as one once they are
/// gone: it is not typed back either, on the add-user form or the search.
#[tokio::test]
async fn a_card_number_hidden_by_invisible_characters_is_not_typed_back() {
    let app = spawn_demo_app().await;
    let admin = app.login_as(Role::Admin).await;
    let hidden = format!("4111{}111111111111", "\u{200B}".repeat(9));
    let r = app
        .post_form(
            &admin,
            "/admin/users",
            "/admin/users",
            &[
                ("username", hidden.as_str()),
                ("role", "auditor"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        !html.replace('\u{200B}', "").contains("4111111111111111"),
        "{html}"
    );
    let sup = app.login_as(Role::Supervisor).await;
    let r = sup
        .get(app.url(&format!(
            "/contacts?from=not-a-date&agent={}",
            hidden.replace('\u{200B}', "%E2%80%8B")
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let html = r.text().await.unwrap();
    assert!(
        !html.replace('\u{200B}', "").contains("4111111111111111"),
        "{html}"
    );
}
