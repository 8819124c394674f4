//! Contacts and the audited reveal, on the demo's sources (values encrypted
//! by the Lambda's own handler).

use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id, demo_zip};
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn a_supervisor_finds_a_contact_and_sees_only_ciphertext() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, "/contacts").await;
    assert_eq!(html.matches("<tr><td><a href=\"/contacts/").count(), 20);
    assert!(html.contains("More contacts"));
    let id = demo_contact_id(0);
    // An exact id opens the contact itself.
    let r = c
        .get(app.url(&format!("/contacts?contact_id={id}")))
        .send()
        .await
        .unwrap();
    assert_redirects_to(&r, &format!("/contacts/{id}"));
    let r = c
        .get(app.url(&format!("/contacts/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert_eq!(html.matches("badge\">encrypted").count(), 2, "{html}");
    assert!(
        html.contains("The caller's <b>creditcard</b>")
            && html.contains("The caller's <b>zipcode</b>")
    );
    assert!(!html.shows(&demo_card(0)) && !html.contains(&demo_zip(0)));
    let row = app.last_audit("contact_view").await.unwrap();
    assert_eq!(
        (row.contact_id.as_str(), row.outcome.as_str()),
        (id.as_str(), "ok")
    );
}

#[tokio::test]
async fn a_supervisor_reveals_a_value_once_and_the_audit_row_comes_first() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(3);
    let r = app
        .decrypt(&c, &id, "creditcard", "chargeback case 77")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("no-store"));
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.shows(&demo_card(3)), "the value is shown");
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(row.contact_id, id);
    assert_eq!(row.field, "creditcard");
    assert_eq!(row.reason, "chargeback case 77");
    assert_eq!(row.outcome, "ok");
    // The page names the request whose row admitted the reveal (the POST;
    // this page's own id is another).
    assert_ne!(row.request_id, request_id);
    assert!(
        html.contains(&format!("request <code>{}</code>", row.request_id)),
        "matchable with CloudTrail's KMS event"
    );
    assert!(html.contains(&format!("audit row {}", row.seq)));
    assert_audit_free_of(&app, &demo_card(3)).await;
    // The ZIP too, and nothing but what was asked for.
    let html = app
        .decrypt(&c, &id, "zipcode", "address check")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&demo_zip(3)) && !html.shows(&demo_card(3)));
}

#[tokio::test]
async fn auditors_and_admins_cannot_decrypt() {
    let app = spawn_demo_app().await;
    let id = demo_contact_id(1);
    for role in [Role::Auditor, Role::Admin] {
        let c = app.login_as(role).await;
        let html = app.page(&c, "/").await;
        let token = csrf_in(&html);
        let r = c
            .post(app.url(&format!("/contacts/{id}/decrypt")))
            .form(&[
                ("field", "creditcard"),
                ("reason", "curious"),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(!r.text().await.unwrap().shows(&demo_card(1)));
        let row = app.last_audit("decrypt_denied").await.unwrap();
        assert_eq!(
            (
                row.role.as_str(),
                row.outcome.as_str(),
                row.contact_id.as_str()
            ),
            (role.as_str(), "role", id.as_str())
        );
    }
    assert!(app.last_audit("decrypt").await.is_none());
}

#[tokio::test]
async fn a_reason_is_required_and_bounded() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(2);
    for reason in ["", "   ", &"r".repeat(501)] {
        let r = app.decrypt(&c, &id, "creditcard", reason).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(!r.text().await.unwrap().shows(&demo_card(2)));
    }
    let denied = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "decrypt_denied" && r.outcome == "no_reason")
        .count();
    assert_eq!(denied, 3);
}

#[tokio::test]
async fn a_hostile_reason_is_stored_as_text_and_rendered_inert() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(4);
    let r = app
        .decrypt(&c, &id, "zipcode", "<script>alert(1)</script>\nnext line")
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(row.reason, "<script>alert(1)</script> next line");
    let auditor = app.login_as(Role::Auditor).await;
    let html = app.page(&auditor, "/audit?action=decrypt").await;
    assert!(!html.contains("<script>alert(1)</script>"));
}

#[tokio::test]
async fn a_reason_of_only_invisible_characters_is_refused() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(2);
    for reason in [
        "\u{200B}",
        "\u{200B}\u{200B}\u{FEFF}\u{2060}",
        "\u{2028}\u{2029}\u{202E}\u{2066}",
        "\u{200C}...\u{200D}",
    ] {
        let r = app.decrypt(&c, &id, "creditcard", reason).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{reason:?}");
        assert!(!r.text().await.unwrap().shows(&demo_card(2)));
    }
    let rows = app.audit_rows().await;
    assert!(rows.iter().all(|r| r.action != "decrypt"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.action == "decrypt_denied" && r.outcome == "no_reason")
            .count(),
        4
    );
}

/// The UTF-8 bytes of the characters that fake line breaks or reorder a line.
const LINE_TRICKS: [char; 16] = [
    '\u{2028}', '\u{2029}', '\u{85}', '\u{b}', '\u{c}', '\u{1e}', '\u{202A}', '\u{202B}',
    '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200F}',
];

fn assert_free_of_line_tricks(what: &str, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).unwrap();
    for c in LINE_TRICKS.iter().chain(&['\u{200E}', '\u{61C}', '\r']) {
        let mut buf = [0u8; 4];
        let needle = c.encode_utf8(&mut buf).as_bytes();
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{what} holds U+{:04X}: {text:?}",
            u32::from(*c)
        );
    }
}

#[tokio::test]
async fn a_separator_laden_reason_is_stored_and_exported_without_its_separators() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(4);
    let reason = "case 7\u{2028}2026-01-01 admin login ok\u{2029}\u{202E}kcabegrahc\u{202C}\u{85}\u{2066}end\u{2069}\u{200E}\u{61C}";
    let r = app.decrypt(&c, &id, "zipcode", reason).await;
    assert_eq!(r.status(), StatusCode::OK);
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(
        row.reason,
        "case 7 2026-01-01 admin login ok kcabegrahc end"
    );
    // A refused attempt by another role keeps its reason too, cleaned.
    let auditor = app.login_as(Role::Auditor).await;
    let token = csrf_in(&app.page(&auditor, "/").await);
    let r = auditor
        .post(app.url(&format!("/contacts/{id}/decrypt")))
        .form(&[
            ("field", "zip\u{2028}code"),
            ("reason", reason),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let denied = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(denied.reason, row.reason);
    assert_eq!(denied.field, "zip code");

    for format in ["csv", "jsonl"] {
        let r = auditor
            .get(app.url(&format!("/audit/export?format={format}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let bytes = r.bytes().await.unwrap();
        assert_free_of_line_tricks(format, &bytes);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains("case 7 2026-01-01 admin login ok kcabegrahc end"),
            "{text}"
        );
        // Every line is one whole row.
        for (i, line) in text.lines().enumerate() {
            if format == "jsonl" {
                assert!(
                    serde_json::from_str::<serde_json::Value>(line).is_ok(),
                    "{line:?}"
                );
            } else if i > 0 {
                assert!(
                    line.split(',').next().unwrap().parse::<i64>().is_ok(),
                    "{line:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_contact_is_refused_and_audited() {
    let app = spawn_demo_app_with(|data, _| {
        let stolen = data.contacts[0].attributes["creditcard"].clone();
        data.contacts[1]
            .attributes
            .insert("creditcard".into(), stolen);
    })
    .await;
    let c = app.login_as(Role::Supervisor).await;
    // contacts[1] is the second demo contact.
    let victim = demo_contact_id(1);
    let r = app.decrypt(&c, &victim, "creditcard", "looks legit").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let html = r.text().await.unwrap();
    assert!(html.contains("not bound to this contact"));
    assert!(!html.shows(&demo_card(0)));
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(row.outcome, "context_mismatch");
    // And under another field of the same contact.
    let app = spawn_demo_app_with(|data, _| {
        let card = data.contacts[0].attributes["creditcard"].clone();
        data.contacts[0].attributes.insert("zipcode".into(), card);
    })
    .await;
    let c = app.login_as(Role::Supervisor).await;
    assert_eq!(
        app.decrypt(&c, &demo_contact_id(0), "zipcode", "x")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn broken_values_fail_cleanly_and_are_audited() {
    use base64::Engine as _;
    // Encrypted by a Lambda with another key, for contact 2's card field.
    let other = tempfile::tempdir().unwrap();
    let (handler, _) = lambda_handler(other.path()).await;
    let event = serde_json::json!({
        "invocationSource": "DialogCodeHook", "sessionId": "s",
        "sessionState": {"sessionAttributes": {"contactId": demo_contact_id(2)},
          "intent": {"name": "X", "slots": {"creditcard": {"value": {"interpretedValue": "4111111111111111"}}}}}
    });
    let r = serde_json::to_value(handler.handle(event).await.unwrap()).unwrap();
    let foreign = r["sessionState"]["sessionAttributes"]["creditcard"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = spawn_demo_app_with(move |data, _| {
        let b64 = base64::engine::general_purpose::STANDARD;
        // contacts[i] is demo contact i.
        let ct0 = data.contacts[0].attributes["creditcard"].clone();
        let mut bytes = b64.decode(&ct0).unwrap();
        let body = bytes.len() - 150; // in the encrypted body, past the header
        bytes[body] ^= 0x40;
        data.contacts[0]
            .attributes
            .insert("creditcard".into(), b64.encode(&bytes));
        let ct1 = data.contacts[1].attributes["creditcard"].clone();
        data.contacts[1]
            .attributes
            .insert("creditcard".into(), ct1[..ct1.len() - 40].to_owned());
        data.contacts[2]
            .attributes
            .insert("creditcard".into(), foreign);
        data.contacts[3]
            .attributes
            .insert("creditcard".into(), "A".repeat(9000));
        data.contacts[3]
            .attributes
            .insert("zipcode".into(), "this is % not base64 ####".into());
    })
    .await;
    let c = app.login_as(Role::Supervisor).await;
    for (i, field, outcome) in [
        (0, "creditcard", "authentication_failed"),
        (1, "creditcard", "authentication_failed"),
        (2, "creditcard", "wrong_key"),
        (3, "creditcard", "oversized"),
        (3, "zipcode", "not_base64"),
    ] {
        let id = demo_contact_id(i);
        let r = app.decrypt(&c, &id, field, "testing broken values").await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "contact {i} {field}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("could not be decrypted"), "{html}");
        assert!(
            !html.shows(&demo_card(i)) && !html.shows("4111111111111111"),
            "contact {i}"
        );
        let row = app.last_audit("decrypt_failed").await.unwrap();
        assert_eq!(
            (row.contact_id.as_str(), row.field.as_str()),
            (id.as_str(), field)
        );
        assert_eq!(row.outcome, outcome, "contact {i} {field}");
    }
    // A value whose context matched was admitted (its `decrypt` row came
    // first) and failed when it was to be shown: each such row is followed
    // by its `decrypt_failed`.
    let rows = app.audit_rows().await;
    let admitted = rows.iter().filter(|r| r.action == "decrypt").count();
    let failed = rows.iter().filter(|r| r.action == "decrypt_failed").count();
    assert!(admitted <= failed, "{admitted} admitted, {failed} failed");
}

#[tokio::test]
async fn if_the_audit_row_cannot_be_written_nothing_is_revealed() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(5);
    // Loads the form first (its page view is audited while the store still works).
    let html = app.page(&c, &format!("/contacts/{id}")).await;
    let token = csrf_in(&html);
    sqlx::query("CREATE TRIGGER audit_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let r = c
        .post(app.url(&format!("/contacts/{id}/decrypt")))
        .form(&[
            ("field", "creditcard"),
            ("reason", "urgent"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = r.text().await.unwrap();
    assert!(html.contains("Audit log unavailable"));
    assert!(!html.shows(&demo_card(5)));
    sqlx::query("DROP TRIGGER audit_full")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let r = app.decrypt(&c, &id, "creditcard", "urgent").await;
    assert!(
        r.text().await.unwrap().shows(&demo_card(5)),
        "works again once the store does"
    );
}

#[tokio::test]
async fn hostile_contact_ids_and_filters_are_rejected_not_reflected() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    for path in [
        "/contacts/..%2F..%2Fetc%2Fpasswd",
        "/contacts/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        &format!("/contacts/{}", "a".repeat(300)),
        "/contacts/a%0Ab",
        "/contacts/00000000-0000-4000-8000-000000000000",
    ] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text().await.unwrap().contains("<script>alert"));
    }
    for query in [
        "/contacts?contact_id=%3Cscript%3E",
        "/contacts?from=2026-13-45",
        "/contacts?channel=FAX",
        "/contacts?next=%3Cscript%3E",
        "/contacts?from=2026-11-20&to=2026-01-01",
    ] {
        let r = c.get(app.url(query)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(!r.text().await.unwrap().contains("<script>"));
    }
}

#[tokio::test]
async fn a_console_without_connect_configured_gives_a_clear_page() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let r = c.get(app.url("/contacts")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("not connected"));
}

#[tokio::test]
async fn a_console_without_a_keyring_shows_ciphertext_but_offers_no_reveal() {
    let app = spawn_demo_app_custom(|_, _| {}, |s| s.keyring = None).await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    let html = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(html.contains("badge\">encrypted"));
    assert!(!html.contains("/decrypt\"") && html.contains("No keyring is configured"));
    let r = app.decrypt(&c, &id, "creditcard", "try anyway").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().outcome,
        "not_configured"
    );
}

#[tokio::test]
async fn an_exact_id_in_any_case_or_with_spaces_opens_the_contact_and_a_prefix_gets_a_hint() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(3);
    for typed in [
        id.clone(),
        id.to_ascii_uppercase(),
        format!("  {id} "),
        id.replace('-', ""),
    ] {
        let r = c
            .get(app.url("/contacts"))
            .query(&[("contact_id", typed.as_str())])
            .send()
            .await
            .unwrap();
        assert_redirects_to(&r, &format!("/contacts/{id}"));
    }
    // The start of an id: the range's contacts it could be, and why.
    let prefix = id[..6].to_ascii_uppercase();
    let html = app
        .page(&c, &format!("/contacts?contact_id={prefix}&range=7d"))
        .await;
    assert!(html.contains("ids are 36 characters"), "{html}");
    assert!(html.contains("Did you mean"), "{html}");
    assert!(
        html.contains(&format!("<li><a href=\"/contacts/{id}\">")),
        "{html}"
    );
    // An unknown whole id: the contact's own 404 page, not a Connect error.
    let r = c
        .get(app.url("/contacts?contact_id=00000000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    let to = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let r = c.get(app.url(&to)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("Not found"));
}

#[tokio::test]
async fn the_list_shows_agent_queue_duration_and_the_customers_last_four_and_sorts() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, "/contacts?per_page=50").await;
    for header in ["Agent", "Queue", "Duration", "Customer"] {
        assert!(html.contains(&format!(">{header}</th>")), "{header}");
    }
    // By name (the directory's ListUsers/ListQueues), not by id.
    assert!(
        html.contains("ana.lima") && html.contains("Billing"),
        "{html}"
    );
    assert!(
        !html.contains("<code>demo-agent-0</code>")
            && !html.contains("<code>demo-queue-billing</code>")
    );
    assert!(
        html.contains("\u{2022}\u{2022}\u{2022}\u{2022}0000"),
        "last four"
    );
    assert!(!html.contains("+15550100000"), "never the whole number");
    assert_eq!(html.matches("<tr><td><a href=\"/contacts/").count(), 50);
    // Newest first by default; `sort=started` turns it.
    let first = |html: &str| {
        let s = &html[html.find("<tr><td><a href=\"/contacts/").unwrap() + 27..];
        s[..s.find('"').unwrap()].to_owned()
    };
    let newest = first(&html);
    assert_eq!(newest, demo_contact_id(0));
    let html = app.page(&c, "/contacts?sort=started&range=30d").await;
    assert_ne!(first(&html), newest);
    assert!(html.contains("aria-sort=\"ascending\""), "{html}");
    let html = app.page(&c, "/contacts?sort=-channel").await;
    assert!(html.contains("aria-sort=\"descending\""));
    let chat_first = &html[html.find("<tbody>").unwrap()..];
    assert!(
        chat_first.find("<td data-label=\"Channel\">VOICE").unwrap()
            < chat_first
                .find("<td data-label=\"Channel\">CHAT")
                .unwrap_or(usize::MAX)
    );
    // Relative ranges: the demo's contacts start 5, 42, 79... minutes ago.
    let html = app.page(&c, "/contacts?range=1h").await;
    assert_eq!(
        html.matches("<tr><td><a href=\"/contacts/").count(),
        2,
        "{html}"
    );
    assert!(html.contains("<option value=\"1h\" selected>"));
}

#[tokio::test]
async fn hostile_sort_keys_page_sizes_and_ranges_get_clear_pages() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    for (query, says) in [
        ("sort=agent%3B+DROP+TABLE", "Sort by a column heading"),
        ("sort=--started", "Sort by a column heading"),
        ("sort=%3Cscript%3E", "Sort by a column heading"),
        ("per_page=1000000", "contacts per page"),
        ("per_page=0", "contacts per page"),
        ("per_page=-5", "contacts per page"),
        ("range=forever", "Choose a range from the list"),
        ("range=%3Cscript%3E", "Choose a range from the list"),
        ("contact_id=%3Cscript%3E", "not a contact id"),
    ] {
        let r = c
            .get(app.url(&format!("/contacts?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let html = r.text().await.unwrap();
        assert!(html.contains(says), "{query}: {html}");
        assert!(!html.contains("<script>"), "{query}");
    }
    let row = app.last_audit("contact_view").await.unwrap();
    assert_eq!(row.outcome, "refused:contact_id");
}

#[tokio::test]
async fn the_users_time_zone_changes_the_contact_and_log_pages() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    let utc = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(utc.contains("(UTC)"), "{utc}");
    // A zone that does not exist is refused: still UTC.
    let r = app
        .post_form(
            &c,
            "/account/settings",
            "/account/settings",
            &[("time_zone", "Mars/Olympus")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .post_form(
            &c,
            "/account/settings",
            "/account/settings",
            &[("time_zone", "Asia/Kathmandu")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let summary = app
        .state
        .directory
        .describe(&lambda_encrypt::context::ContactId::parse(&id).unwrap())
        .await
        .unwrap();
    let started = summary.initiated_us.unwrap();
    let in_zone = |us: i64| {
        use chrono::TimeZone as _;
        chrono_tz::Asia::Kathmandu
            .timestamp_micros(us)
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    };
    let html = app.page(&c, &format!("/contacts/{id}")).await;
    assert!(html.contains(&in_zone(started)), "{html}");
    assert!(html.contains("(Asia/Kathmandu)"));
    let html = app.page(&c, "/contacts").await;
    assert!(html.contains(&in_zone(started)), "the list too");
    assert!(html.contains("Dates are days in Asia/Kathmandu"));
    let html = app.page(&c, &format!("/logs/search?contact_id={id}")).await;
    assert!(html.contains("<th>Time (Asia/Kathmandu)</th>"), "{html}");
    assert!(html.contains(&in_zone(started + 1_000_000)), "{html}");
    let html = app.page(&c, "/logs").await;
    assert!(html.contains("<th>Last event (Asia/Kathmandu)</th>"));
}

/// Agents and queues are chosen by name in the search form (the search
/// still sends Connect their ids); ids the list does not hold are shown
/// typed, as they were asked; hostile values are refused as before.
#[tokio::test]
async fn agents_and_queues_are_chosen_by_name_and_the_choice_filters_the_list() {
    let app = spawn_demo_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let html = app.page(&c, "/contacts").await;
    assert!(html.contains("<select name=\"agent\""), "{html}");
    assert!(
        html.contains("<option value=\"demo-agent-1\">ben.okafor</option>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"demo-queue-support\">Support</option>"),
        "{html}"
    );
    let html = app
        .page(
            &c,
            "/contacts?agent=demo-agent-1&queue=demo-queue-support&per_page=50",
        )
        .await;
    assert!(
        html.contains("<option value=\"demo-agent-1\" selected>ben.okafor</option>"),
        "{html}"
    );
    let rows = html.matches("<tr><td><a href=\"/contacts/").count();
    assert!(rows > 0, "{html}");
    assert_eq!(
        html.matches(">ben.okafor</code>").count(),
        rows,
        "only ben's contacts"
    );
    assert_eq!(html.matches(">Support</code>").count(), rows);
    // An id the list does not hold: typed, and nothing matches.
    let html = app.page(&c, "/contacts?agent=someone-else").await;
    assert!(
        html.contains("name=\"agent\" value=\"someone-else\""),
        "{html}"
    );
    assert_eq!(html.matches("<tr><td><a href=\"/contacts/").count(), 0);
    let r = c
        .get(app.url("/contacts?agent=a%20b%3Cscript%3E"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(!r.text().await.unwrap().contains("<script>"));
}
