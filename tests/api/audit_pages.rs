use callvault::audit::{Action, AuditEvent, RequestMeta};
use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

async fn seed(app: &TestApp, n: usize) {
    let meta = RequestMeta::default();
    for i in 0..n {
        let ev = AuditEvent::new(
            Action::ContactView,
            &format!("sup{}", i % 3),
            "supervisor",
            "ok",
            &meta,
        )
        .contact(&format!("contact-{}", i % 5), "");
        app.state.audit.append(ev).await.unwrap();
    }
}

#[tokio::test]
async fn auditors_filter_and_page_through_the_log() {
    let app = spawn_app().await;
    seed(&app, 120).await;
    let c = app.login_as(Role::Auditor).await;
    let html = app.page(&c, "/audit?actor=sup1&action=contact_view").await;
    assert_eq!(html.matches("<td>sup1 <span").count(), 40);
    assert!(!html.contains("Older rows"));
    let html = app.page(&c, "/audit?contact=contact-2").await;
    assert_eq!(html.matches("<td>contact-2</td>").count(), 24);
    // Paging: 50 newest, then older ones.
    let html = app.page(&c, "/audit").await;
    assert!(html.contains("Older rows"));
    let html = app.page(&c, "/audit?before=10").await;
    assert_eq!(html.matches("class=\"action-").count(), 9);
    // Time range: everything is "today"; tomorrow has nothing.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let html = app
        .page(
            &c,
            &format!("/audit?from={today}&to={today}&action=contact_view"),
        )
        .await;
    assert!(html.contains("Older rows"));
    let html = app.page(&c, &format!("/audit?from={tomorrow}")).await;
    assert!(html.contains("No rows match."));
    // Viewing the log is itself on the record.
    assert!(app.last_audit("audit_view").await.is_some());
}

#[tokio::test]
async fn hostile_filters_are_refused_or_escaped() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    for bad in [
        "/audit?from=yesterday",
        "/audit?action=drop",
        "/audit?before=abc",
        &format!("/audit?actor={}", "a".repeat(500)),
    ] {
        assert_eq!(
            c.get(app.url(bad)).send().await.unwrap().status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let html = app
        .page(&c, "/audit?actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        .await;
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("&lt;script&gt;")
            || html.contains("&#60;script&#62;")
            || html.contains("&#x3c;script")
    );
}

#[tokio::test]
async fn exports_stream_every_matching_row_as_csv_or_jsonl() {
    let app = spawn_app().await;
    seed(&app, 2500).await;
    let ev = AuditEvent::new(
        Action::ContactView,
        "=cmd|' /C calc'!A0",
        "supervisor",
        "ok",
        &RequestMeta::default(),
    )
    .reason("line one, \"quoted\"");
    app.state.audit.append(ev).await.unwrap();
    let c = app.login_as(Role::Auditor).await;

    let r = c
        .get(app.url("/audit/export?format=csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("seq,time,actor"));
    assert!(lines.len() >= 2502, "{} lines", lines.len());
    // A formula-looking actor is defused; quotes are doubled.
    assert!(csv.contains("\"'=cmd|' /C calc'!A0\""));
    assert!(csv.contains("\"line one, \"\"quoted\"\"\""));

    let r = c
        .get(app.url("/audit/export?format=jsonl&actor=sup2"))
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    let rows: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 833);
    assert!(rows
        .iter()
        .all(|r| r["actor"] == "sup2" && r["hash"].as_str().unwrap().len() == 64));

    assert_eq!(
        c.get(app.url("/audit/export?format=xml"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let exports = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "audit_export")
        .count();
    assert_eq!(exports, 2);
}

#[tokio::test]
async fn the_verify_button_reports_a_sound_chain() {
    let app = spawn_app().await;
    seed(&app, 30).await;
    let c = app.login_as(Role::Auditor).await;
    let r = app.post_form(&c, "/audit", "/audit/verify", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("Chain verified"), "{html}");
    let row = app.last_audit("audit_verify").await.unwrap();
    assert_eq!(row.outcome, "ok");
}

#[tokio::test]
async fn exports_never_hand_a_line_based_reader_a_separator_or_bidi_control() {
    let app = spawn_app().await;
    // A row written before reasons were cleaned, or a header-borne value:
    // the exports must make it safe whatever is stored.
    let tricky =
        "a\u{2028}b\u{2029}c\u{85}d\u{202E}e\u{2066}f\u{2069}g\u{200F}h\u{61C}i\u{b}j\nk\rl";
    let meta = RequestMeta {
        user_agent: tricky.to_owned(),
        ..RequestMeta::default()
    };
    let ev = AuditEvent::new(
        Action::ContactView,
        "sup\u{2028}1",
        "supervisor",
        "ok",
        &meta,
    )
    .contact("c-1", "creditcard")
    .reason(tricky)
    .detail(tricky.to_owned());
    app.state.audit.append(ev).await.unwrap();
    let c = app.login_as(Role::Auditor).await;

    let csv = c
        .get(app.url("/audit/export?format=csv"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let jsonl = c
        .get(app.url("/audit/export?format=jsonl"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    for (what, bytes) in [("csv", &csv), ("jsonl", &jsonl)] {
        for c in [
            '\u{2028}', '\u{2029}', '\u{85}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}',
            '\u{61C}', '\u{b}', '\r',
        ] {
            let mut buf = [0u8; 4];
            let needle = c.encode_utf8(&mut buf).as_bytes();
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{what} holds U+{:04X}",
                u32::from(c)
            );
        }
    }
    // CSV: the characters are gone (line breaks as spaces), one line per row.
    let csv = String::from_utf8(csv.to_vec()).unwrap();
    assert_every_line_is_a_row(&csv);
    let line = csv.lines().find(|l| l.contains(",sup 1,")).unwrap();
    assert_eq!(line.matches("a b cdefghijkl").count(), 3, "{line}");
    // JSONL: escaped, so a JSON reader gets the stored value back exactly.
    let jsonl = String::from_utf8(jsonl.to_vec()).unwrap();
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = rows.iter().find(|r| r["actor"] == "sup\u{2028}1").unwrap();
    // (The audit log itself drops C0/C1 controls when it stores a row.)
    let stored: String = tricky.chars().filter(|c| !c.is_control()).collect();
    assert_eq!(first["reason"], stored.as_str());
    assert_eq!(first["user_agent"], stored.as_str());
    assert!(jsonl.contains(r"a\u2028b\u2029cd\u202ee\u2066f\u2069g\u200fh\u061ci"));
}

/// Each line of a CSV export after the header is one whole row.
fn assert_every_line_is_a_row(csv: &str) {
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("seq,time,actor"));
    for line in lines {
        let seq = line.split(',').next().unwrap();
        assert!(
            !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()),
            "a line that is not a row: {line:?}"
        );
    }
}
