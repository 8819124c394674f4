//! A reveal happens once: the form's POST admits it and commits its row with
//! a single-use grant, the page it is sent to shows the value; a reload, a
//! second tab, another session or a late visit shows nothing and writes no
//! row. Dual control names who did what.

use std::time::Duration;

use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn a_reveal_a_reload_and_a_second_tab_show_the_value_once_with_one_row() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let contact = demo_contact_id(0);
    let token = csrf_in(&app.page(&c, &format!("/contacts/{contact}")).await);
    let before = app.audit_rows().await.len();
    let r = c
        .post(app.url(&format!("/contacts/{contact}/decrypt")))
        .form(&[
            ("field", "creditcard"),
            ("reason", "chargeback 12"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    let page = reveal_location(&r).expect("sent to the reveal's page");
    assert!(!r.text().await.unwrap().shows(&demo_card(0)));
    let rows = app.audit_rows().await;
    assert_eq!(rows.len(), before + 1, "the row commits before any value");
    assert_eq!(rows.last().unwrap().action, "decrypt");

    let first = c.get(app.url(&page)).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(first.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-store"));
    assert!(first.text().await.unwrap().shows(&demo_card(0)));
    // A reload and a second tab (same session): already shown.
    for _ in 0..2 {
        let again = c.get(app.url(&page)).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::GONE);
        let html = again.text().await.unwrap();
        assert!(html.contains("already shown"), "{html}");
        assert!(!html.shows(&demo_card(0)));
    }
    assert_eq!(app.audit_rows().await.len(), before + 1, "no further row");
    // The reveal page lists the grant's row, and the budget counted one.
    let left = app
        .state
        .budget
        .remaining(&rows.last().unwrap().actor)
        .await
        .unwrap();
    assert_eq!(left.map(|(l, _)| l), Some(19));
}

#[tokio::test]
async fn a_reveal_page_opened_by_another_session_or_too_late_shows_nothing() {
    let app = spawn_demo_app().await;
    let name = "sam-once";
    app.add_user(name, Role::Supervisor).await;
    let c = client();
    app.login(&c, name, PASSWORD).await;
    let contact = demo_contact_id(1);
    let r = app
        .post_form(
            &c,
            &format!("/contacts/{contact}"),
            &format!("/contacts/{contact}/decrypt"),
            &[("field", "creditcard"), ("reason", "late")],
        )
        .await;
    // post_form follows to the page: used. Ask again without following.
    assert!(r.text().await.unwrap().shows(&demo_card(1)));
    let token = csrf_in(&app.page(&c, &format!("/contacts/{contact}")).await);
    let r = c
        .post(app.url(&format!("/contacts/{contact}/decrypt")))
        .form(&[
            ("field", "creditcard"),
            ("reason", "late"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    let page = reveal_location(&r).unwrap();
    // The same person in another sign-in (another browser): not theirs.
    let other = client();
    app.login(&other, name, PASSWORD).await;
    let r = other.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(!r.text().await.unwrap().shows(&demo_card(1)));
    // Another supervisor: not theirs either.
    let bystander = app.login_as(Role::Supervisor).await;
    let r = bystander.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A minute later, the grant has expired unused.
    app.clock.advance(Duration::from_secs(61));
    let r = c.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::GONE);
    let html = r.text().await.unwrap();
    assert!(html.contains("expired"), "{html}");
    assert!(!html.shows(&demo_card(1)));
    // Hostile grant ids are simply not found.
    for bad in [
        "x",
        "../../etc",
        "0123456789ABCDEF0123456789ABCDEF",
        &"a".repeat(400),
    ] {
        let r = c
            .get(app.url(&format!("/reveals/{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

async fn dual_control() -> TestApp {
    spawn_demo_app_custom(
        |_, _| {},
        |s| s.policy.approval = callvault::decrypt::policy::ApprovalMode::Required,
    )
    .await
}

async fn newest_request(app: &TestApp) -> callvault::decrypt::approvals::DecryptRequest {
    app.state.approvals.recent(1).await.unwrap().remove(0)
}

#[tokio::test]
async fn dual_control_names_the_requester_the_approver_and_who_revealed() {
    let app = dual_control();
    let app = app.await;
    app.add_user("req", Role::Supervisor).await;
    app.add_user("kim", Role::Supervisor).await;
    let (requester, approver) = (client(), client());
    app.login(&requester, "req", PASSWORD).await;
    app.login(&approver, "kim", PASSWORD).await;
    let contact = demo_contact_id(2);
    let r = app
        .decrypt(&requester, &contact, "creditcard", "fraud 2")
        .await;
    assert_redirects_to(&r, "/approvals?m=requested");
    // A second request for the same field of the same contact is refused.
    let r = app
        .decrypt(&requester, &contact, "creditcard", "fraud 2 again")
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().outcome,
        "approval_duplicate"
    );
    // The requester's page waits and checks again by itself.
    let html = app.page(&requester, "/approvals").await;
    assert!(html.contains("http-equiv=\"refresh\""), "{html}");
    assert!(html.contains("waiting for a decision"));
    // The approver's inbox holds it; once decided it leaves the inbox.
    let id = newest_request(&app).await.id;
    let inbox = app.page(&approver, "/approvals").await;
    assert!(inbox.contains(&format!("/approvals/{id}/approve")));
    let r = app
        .post_form(
            &approver,
            "/approvals",
            &format!("/approvals/{id}/approve"),
            &[],
        )
        .await;
    assert_redirects_to(&r, "/approvals?m=approved");
    let inbox = app.page(&approver, "/approvals").await;
    assert!(!inbox.contains(&format!("/approvals/{id}/approve")));
    assert!(inbox.contains("approved by kim"));
    let r = app
        .post_form(
            &requester,
            "/approvals",
            &format!("/approvals/{id}/reveal"),
            &[],
        )
        .await;
    assert!(r.text().await.unwrap().shows(&demo_card(2)));
    // Who saw it: the requester, approved by kim; never "used by" kim.
    let seen = app.page(&approver, "/approvals").await;
    assert!(seen.contains("revealed by req (approved by kim)"), "{seen}");
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(row.actor, "req");
    assert!(row.detail.contains("approved by kim"), "{}", row.detail);
}

#[tokio::test]
async fn a_rejection_carries_its_reason_to_the_requester() {
    let app = dual_control().await;
    app.add_user("req", Role::Supervisor).await;
    app.add_user("kim", Role::Supervisor).await;
    let (requester, approver) = (client(), client());
    app.login(&requester, "req", PASSWORD).await;
    app.login(&approver, "kim", PASSWORD).await;
    let contact = demo_contact_id(3);
    app.decrypt(&requester, &contact, "zipcode", "address check")
        .await;
    let id = newest_request(&app).await.id;
    let r = app
        .post_form(
            &approver,
            "/approvals",
            &format!("/approvals/{id}/reject"),
            &[("note", "wrong contact\n<b>x</b>")],
        )
        .await;
    assert_redirects_to(&r, "/approvals?m=rejected");
    let html = app.page(&requester, "/approvals").await;
    assert!(
        html.contains("rejected by kim: wrong contact &#60;b&#62;x"),
        "{html}"
    );
    assert!(!html.contains("<b>x</b>"));
    let row = app.last_audit("decrypt_approval").await.unwrap();
    assert_eq!(row.outcome, "rejected");
    assert!(row.detail.contains("note: wrong contact"), "{}", row.detail);
    // Rejected: a new request for the same field may be made.
    let r = app
        .decrypt(&requester, &contact, "zipcode", "address check 2")
        .await;
    assert_redirects_to(&r, "/approvals?m=requested");
}

/// A grant is used in the sign-in it was made in: one with no sign-in
/// generation (a session from before generations, say) matches nothing,
/// neither to show nor to keep open.
#[tokio::test]
async fn a_grant_without_a_sign_in_generation_is_used_by_nobody() {
    use callvault::decrypt::grants::{new_id, Grant, Grants};
    let app = spawn_demo_app().await;
    let grants = Grants::new(app.state.db.clone(), app.state.clock.clone());
    let now = callvault::clock::Clock::now_us(&*app.state.clock);
    let grant = Grant {
        id: new_id().unwrap(),
        user_id: 1,
        generation: String::new(),
        actor: "sam".into(),
        role: "supervisor".into(),
        contact_id: demo_contact_id(0),
        bound_to: demo_contact_id(0),
        initial_contact_id: String::new(),
        field: "creditcard".into(),
        reason: "r".into(),
        case_ref: String::new(),
        stored_value: "AYAD".into(),
        legacy: 0,
        capture: "lex".into(),
        audit_seq: 1,
        request_id: String::new(),
        created_us: now,
        expires_us: now + 60_000_000,
        used_us: 0,
    };
    let mut conn = app.state.db.pool.acquire().await.unwrap();
    Grants::create(&mut conn, &grant).await.unwrap();
    assert!(matches!(
        grants.consume(&grant.id, 1, "").await,
        Err(callvault::decrypt::grants::GrantError::NotFound)
    ));
    assert!(grants
        .extend(&mut conn, &grant.id, 1, "", 60_000_000)
        .await
        .is_err());
}
