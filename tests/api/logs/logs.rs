//! Flow-log pages on the demo's sources: ciphertext only, paging with the
//! service's tokens, the leak guard, search by contact, hostile names.

use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id, DemoStream, LEAKED_DEMO_CARD};
use callvault::sources::LogEvent;
use reqwest::StatusCode;

use crate::helpers::*;

const GROUP: &str = "%2Faws%2Fconnect%2Fcallvault-demo";

fn big_stream(data: &mut callvault::demo::DemoData) {
    let contact = demo_contact_id(0);
    let events = (0..120)
        .map(|i| LogEvent {
            timestamp_us: 1_700_000_000_000_000 + i * 1_000_000,
            message: serde_json::json!({"ContactId": contact, "ContactFlowModuleType": "PlayPrompt", "Parameters": {"Text": format!("prompt {i:03}")}}).to_string(),
        })
        .collect();
    data.streams.push(DemoStream {
        name: "big/stream".into(),
        events,
    });
}

#[tokio::test]
async fn streams_are_listed_and_events_show_ciphertext_only() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, "/logs").await;
    assert!(html.contains("/aws/connect/callvault-demo"));
    let first = html
        .split("<a href=\"/logs/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let html = app.page(&c, &format!("/logs/{first}")).await;
    assert!(html.contains("SetAttributes"));
    assert!(html.contains("badge\">encrypted"));
    for i in 0..60 {
        assert!(!html.shows(&demo_card(i)));
    }
    let row = app.last_audit("log_view").await.unwrap();
    assert!(row.detail.starts_with("/aws/connect/callvault-demo / "));
}

#[tokio::test]
async fn a_long_stream_pages_forward_and_back_through_paging_handles() {
    let app = spawn_demo_app_with(|d, _| big_stream(d)).await;
    let c = app.login_as(Role::Supervisor).await;
    let page1 = app.page(&c, &format!("/logs/{GROUP}/big%2Fstream")).await;
    assert!(
        page1.contains("prompt 000")
            && page1.contains("prompt 049")
            && !page1.contains("prompt 050")
    );
    assert!(!page1.contains("Older events"));
    // Paging goes through opaque handles; the service's tokens stay on the server.
    let newer = page1
        .split("href=\"")
        .find(|s| s.contains("page=") && s.contains(">Newer events"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let page2 = app.page(&c, &newer).await;
    assert!(page2.contains("prompt 050") && page2.contains("prompt 099"));
    assert!(page2.contains("Older events") && page2.contains("Newer events"));
    let older = page2
        .split("href=\"")
        .find(|s| s.contains(">Older events"))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let back = app.page(&c, &older).await;
    assert!(back.contains("prompt 000"));
}

#[tokio::test]
async fn the_leak_guard_masks_a_plaintext_card_and_records_it() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let r = c
        .get(app.url(&format!("/logs/{GROUP}/legacy-debug-flow%2Fleaked")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Leak guard"));
    assert!(html.contains("400005******5556"));
    assert!(!html.contains(LEAKED_DEMO_CARD) && !html.contains(&LEAKED_DEMO_CARD.replace(' ', "")));
    let leaks: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "leak_found")
        .collect();
    assert_eq!(leaks.len(), 1, "one row per event with a finding");
    assert_eq!(leaks[0].contact_id, demo_contact_id(59));
    assert_audit_free_of(&app, "5566 5556").await;
}

/// Events that hide card numbers from a guard that only reads values,
/// top-level fields and ASCII digits.
fn evasive_stream(data: &mut callvault::demo::DemoData) {
    let contact = demo_contact_id(1);
    let messages = [
        // A card in a JSON key.
        serde_json::json!({"ContactId": contact, "ContactFlowModuleType": "InvokeExternalResource", "Parameters": {"4111111111111111": "ok"}}),
        // A sensitive field nested two levels down, and a card deeper still.
        serde_json::json!({"ContactId": contact, "ExternalResults": {"zipcode": "98101", "more": [{"note": "5555 5555 5555 4444"}]}}),
        // Separators and digit forms.
        serde_json::json!({"ContactId": contact, "Parameters": {"Text": "a 4111.1111.1111.1111 b 4111/1111/1111/1111"}}),
        serde_json::json!({"ContactId": contact, "Parameters": {"Text": "c 4111\t1111\t1111\t1111 d 4111  1111  1111  1111"}}),
        serde_json::json!({"ContactId": contact, "Parameters": {"Text": "e ４１１１１１１１１１１１１１１１ f ٤١١١١١١١١١١١١١١١"}}),
    ];
    data.streams.push(DemoStream {
        name: "evasive".into(),
        events: messages
            .iter()
            .enumerate()
            .map(|(i, m)| LogEvent {
                timestamp_us: 1_700_000_000_000_000 + i as i64 * 1_000_000,
                message: m.to_string(),
            })
            .collect(),
    });
}

#[tokio::test]
async fn the_leak_guard_masks_cards_in_keys_nested_fields_and_every_digit_form() {
    let app = spawn_demo_app_with(|d, _| evasive_stream(d)).await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, &format!("/logs/{GROUP}/evasive")).await;
    assert!(html.contains("Leak guard"));
    for hidden in [
        "4111111111111111",
        "98101",
        "5555 5555 5555 4444",
        "4111.1111",
        "4111/1111",
        "4111\t1111",
        "4111  1111",
        "１１１１１１１１",
        "١١١١١١١١",
    ] {
        assert!(!html.contains(hidden), "the page shows {hidden:?}");
        assert_audit_free_of(&app, hidden).await;
    }
    assert!(html.contains("Parameters.411111******1111"), "a masked key");
    assert!(html.contains("ExternalResults.zipcode"));
    assert!(html.contains("masked: sensitive field without ciphertext"));
    assert!(html.contains("ExternalResults.more[0].note"));
    assert!(html.contains("555555******4444"));
    assert_eq!(html.matches("411111******1111").count(), 1 + 2 + 2);
    assert!(html.contains("４１１１１１******１１１１"));
    assert!(html.contains("٤١١١١١******١١١١"));
    let leaks = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "leak_found")
        .count();
    assert_eq!(leaks, 5, "one row per event with a finding");
}

#[tokio::test]
async fn a_sensitive_attribute_holding_plaintext_is_masked_whole() {
    let app = spawn_demo_app_with(|d, _| {
        d.contacts[0]
            .attributes
            .insert("zipcode".into(), "98101".into());
        d.contacts[0].attributes.insert(
            "note".into(),
            "customer read 4111-1111-1111-1111 aloud".into(),
        );
    })
    .await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app
        .page(&c, &format!("/contacts/{}", demo_contact_id(0)))
        .await;
    assert!(html.contains("masked: sensitive field without ciphertext"));
    assert!(!html.contains("98101"));
    assert!(html.contains("411111******1111") && !html.contains("4111-1111-1111-1111"));
    let leaks = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "leak_found")
        .count();
    assert_eq!(leaks, 2);
}

#[tokio::test]
async fn search_by_contact_finds_that_contacts_events_only() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(7);
    let html = app.page(&c, &format!("/logs/search?contact_id={id}")).await;
    assert_eq!(
        html.matches("<dl class=\"params\">").count(),
        4,
        "GetUserInput, two SetAttributes, Disconnect"
    );
    // Four event rows, plus the two ciphertext summaries naming their contact.
    assert_eq!(
        html.matches(&format!("<code>{id}</code>")).count()
            + html
                .matches(&format!("<code class=\"id\">{id}</code>"))
                .count(),
        6
    );
    assert!(!html.contains(&demo_contact_id(8)));
    let row = app.last_audit("log_view").await.unwrap();
    assert_eq!(
        (row.contact_id.as_str(), row.detail.as_str()),
        (id.as_str(), "search by contact")
    );
}

#[tokio::test]
async fn hostile_names_and_tokens_are_refused() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    for (path, status) in [
        (
            format!("/logs/{GROUP}/..%2F..%2Fetc%2Fpasswd"),
            StatusCode::NOT_FOUND,
        ),
        (format!("/logs/{GROUP}/%3Cscript%3E"), StatusCode::NOT_FOUND),
        (
            "/logs/%2Fother%2Fgroup/stream".to_owned(),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/logs/{GROUP}/no-such-stream"),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/logs/{GROUP}/legacy-debug-flow%2Fleaked?token=%3Cscript%3E"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("/logs/{GROUP}/legacy-debug-flow%2Fleaked?token=f999"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!(
                "/logs/{GROUP}/legacy-debug-flow%2Fleaked?token={}",
                "A".repeat(5000)
            ),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/logs/search?contact_id=%3Cscript%3E".to_owned(),
            StatusCode::BAD_REQUEST,
        ),
        ("/logs?group=x&next=%00".to_owned(), StatusCode::OK),
    ] {
        let r = c.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert!(!r.text().await.unwrap().contains("<script>"), "{path}");
    }
}
