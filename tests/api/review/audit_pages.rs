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
    assert_eq!(
        html.matches("<code class=\"id full\">contact-2</code>")
            .count(),
        24
    );
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
    // Markup is refused, and the refusal repeats it escaped.
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
    let exports: Vec<String> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "audit_export")
        .map(|r| r.outcome)
        .collect();
    assert_eq!(exports, ["ok", "ok", "refused"]);
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

/// A `<rect>`'s attributes as (name, value) pairs.
fn rects(svg_part: &str) -> Vec<std::collections::HashMap<String, String>> {
    svg_part
        .split("<rect ")
        .skip(1)
        .map(|r| {
            let tag = &r[..r.find('>').unwrap()];
            tag.split("\" ")
                .filter_map(|kv| kv.split_once("=\""))
                .map(|(k, v)| (k.trim().to_owned(), v.trim_end_matches('"').to_owned()))
                .collect()
        })
        .collect()
}

fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no {id}"));
    let end = start + html[start..].find("</svg>").unwrap();
    &html[start..end]
}

async fn reveal(app: &TestApp, actor: &str, n: usize) {
    for _ in 0..n {
        let ev = AuditEvent::new(
            Action::Decrypt,
            actor,
            "supervisor",
            "ok",
            &RequestMeta::default(),
        )
        .contact("c-chart", "creditcard");
        app.state.audit.append(ev).await.unwrap();
    }
}

#[tokio::test]
async fn the_volume_charts_have_one_bar_per_day_per_supervisor_with_heights_to_scale() {
    let app = spawn_app().await;
    let day = std::time::Duration::from_secs(86_400);
    // Day 0: ann 3, bob 1. Day 2: ann 1. Day 7 (today): bob 4. Day -20
    // would be outside the chart: nobody revealed then.
    reveal(&app, "ann", 3).await;
    reveal(&app, "bob", 1).await;
    app.clock.advance(2 * day);
    reveal(&app, "ann", 1).await;
    app.clock.advance(5 * day);
    reveal(&app, "bob", 4).await;
    let c = app.login_as(Role::Auditor).await;
    let html = app.page(&c, "/audit/volume").await;
    let today = (chrono::Utc::now() + chrono::Duration::days(7)).date_naive();
    let date = |back: i64| {
        (today - chrono::Duration::days(back))
            .format("%Y-%m-%d")
            .to_string()
    };
    let bars = rects(chart(&html, "chart-days"));
    assert_eq!(bars.len(), 14 * 2, "one bar per day per supervisor");
    let expected = [("ann", 7, 3), ("bob", 7, 1), ("ann", 5, 1), ("bob", 0, 4)];
    for bar in &bars {
        let count: i64 = bar["data-count"].parse().unwrap();
        let want = expected
            .iter()
            .find(|(a, back, _)| bar["data-actor"] == *a && bar["data-day"] == date(*back))
            .map_or(0, |e| e.2);
        assert_eq!(count, want, "{bar:?}");
        // Heights to scale: the largest count (4) fills the 160-unit area.
        let height: f64 = bar["height"].parse().unwrap();
        assert!(
            (height - 160.0 * count as f64 / 4.0).abs() < 0.01,
            "{bar:?}"
        );
    }
    for back in 0..14 {
        for actor in ["ann", "bob"] {
            assert_eq!(
                bars.iter()
                    .filter(|b| b["data-actor"] == actor && b["data-day"] == date(back))
                    .count(),
                1,
                "{actor} {}",
                date(back)
            );
        }
    }
    assert!(html.contains("<title>ann, ") && html.contains("role=\"img\""));
    assert!(
        html.contains("the most in one day: 4 by bob on"),
        "text alternative"
    );
    // The hour-of-day chart: 24 bars, every reveal of the last 28 days.
    let hours = rects(chart(&html, "chart-hours"));
    assert_eq!(hours.len(), 24);
    let counts: Vec<i64> = hours
        .iter()
        .map(|b| b["data-count"].parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<i64>(), 9);
    let max = *counts.iter().max().unwrap();
    for bar in &hours {
        let count: i64 = bar["data-count"].parse().unwrap();
        let height: f64 = bar["height"].parse().unwrap();
        assert!((height - 160.0 * count as f64 / max as f64).abs() < 0.01);
    }
    let mut hour_ids: Vec<usize> = hours
        .iter()
        .map(|b| b["data-hour"].parse().unwrap())
        .collect();
    hour_ids.sort_unstable();
    assert_eq!(hour_ids, (0..24).collect::<Vec<_>>());
    // The table is still there, and no script.
    assert!(html.contains("<th>Usual per day</th>"));
    assert!(!html.contains("<script"));
}

#[tokio::test]
async fn alerts_cover_budget_refusals_leaks_failed_step_ups_and_unusual_volume() {
    let app = spawn_app().await;
    let meta = RequestMeta::default();
    let append = |ev: AuditEvent| {
        let log = app.state.audit.clone();
        async move { log.append(ev).await.unwrap() }
    };
    append(
        AuditEvent::new(
            Action::DecryptDenied,
            "ann",
            "supervisor",
            "budget_exceeded",
            &meta,
        )
        .detail("20 of 20 per hour used"),
    )
    .await;
    append(
        AuditEvent::new(Action::LeakFound, "viewer", "supervisor", "masked", &meta)
            .contact("contact-leaky", "")
            .detail("1 in /aws/connect/x / legacy-debug-flow/leaked at 2026-01-01T00:00:00.000Z"),
    )
    .await;
    append(AuditEvent::new(
        Action::StepUpFailed,
        "bob",
        "supervisor",
        "refused",
        &meta,
    ))
    .await;
    append(AuditEvent::new(
        Action::StepUpFailed,
        "bob",
        "supervisor",
        "refused",
        &meta,
    ))
    .await;
    reveal(&app, "busy", 6).await;
    reveal(&app, "calm", 5).await;
    // Not alerts: a denial of another kind, a step-up that succeeded.
    append(AuditEvent::new(
        Action::DecryptDenied,
        "dan",
        "supervisor",
        "denied",
        &meta,
    ))
    .await;
    append(AuditEvent::new(
        Action::StepUp,
        "dan",
        "supervisor",
        "ok",
        &meta,
    ))
    .await;
    let c = app.login_as(Role::Auditor).await;
    let html = app.page(&c, "/audit").await;
    let alerts = &html[html.find("id=\"alerts\"").unwrap()..];
    let alerts = &alerts[..alerts.find("</div>").unwrap()];
    assert!(
        alerts.contains("ann: 1 decrypt(s) refused over budget"),
        "{alerts}"
    );
    // A leak is the flow's doing: the alert names the stream, not the viewer.
    assert!(
        alerts.contains("Flow log /aws/connect/x / legacy-debug-flow/leaked: 1 leak finding(s)"),
        "{alerts}"
    );
    assert!(!alerts.contains("viewer"), "{alerts}");
    assert!(alerts.contains("bob: 2 failed step-up(s)"), "{alerts}");
    assert!(alerts.contains("busy: 6 reveal(s) in 24 hours"), "{alerts}");
    assert!(
        !alerts.contains("calm") && !alerts.contains("dan"),
        "{alerts}"
    );
    assert_eq!(alerts.matches("<li class=\"alert-").count(), 4);
    // Each links to its rows.
    let links: Vec<String> = alerts
        .split("<a href=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].replace("&#38;", "&"))
        .collect();
    assert_eq!(links.len(), 4);
    for (link, action, n) in [
        (&links[0], "leak_found", 1),
        (&links[1], "decrypt_denied", 1),
        (&links[2], "step_up_failed", 2),
        (&links[3], "decrypt", 6),
    ] {
        let page = app.page(&c, link).await;
        assert_eq!(
            (page
                .matches(&format!("<tr class=\"action-{action}\""))
                .count()
                + page
                    .matches(&format!("<tr class=\"action-{action} "))
                    .count()),
            n,
            "{link}"
        );
        assert_eq!(page.matches("<tr class=\"action-").count(), n, "{link}");
    }
}

#[tokio::test]
async fn ids_stay_on_one_line_shortened_with_the_whole_value_in_a_title() {
    let app = spawn_app().await;
    let id = "0b8c2f3e-6a1d-4f5e-9b7a-123456789abc";
    let meta = RequestMeta {
        request_id: "req-0123456789abcdef".into(),
        ..RequestMeta::default()
    };
    app.state
        .audit
        .append(
            AuditEvent::new(Action::Decrypt, "sam", "supervisor", "ok", &meta)
                .contact(id, "creditcard")
                .reason("<b>chargeback</b>")
                .case_ref("<i>CASE-1</i>")
                .initial_contact("f00d-initial-0000-1111"),
        )
        .await
        .unwrap();
    let c = app.login_as(Role::Auditor).await;
    let html = app.page(&c, "/audit?action=decrypt").await;
    assert!(html.contains("<div class=\"table-scroll\" tabindex=\"0\""));
    // Contact ids in full, each a link to its rows.
    assert!(html.contains(&format!(
        "<a href=\"/audit?contact={id}\" title=\"Every row of this contact\"><code class=\"id full\">{id}</code></a>"
    )), "{html}");
    assert!(html.contains("<code class=\"id\" title=\"req-0123456789abcdef\">req-0123…</code>"));
    assert!(html.contains("<code class=\"id full\">f00d-initial-0000-1111</code>"));
    // The case reference is shown, escaped like every text.
    assert!(html.contains("&#60;i&#62;CASE-1&#60;/i&#62;"), "{html}");
    assert!(!html.contains("<i>CASE-1") && !html.contains("<b>chargeback"));
    let css = app.page(&c, "/static/app.css").await;
    assert!(css.contains("/* audit pages */"));
    assert!(css.contains(".table-scroll { max-width: 100%; overflow-x: auto;"));
}

#[tokio::test]
async fn the_filter_bar_has_checkboxes_a_summary_a_count_and_a_clear_link_and_tints_refusals() {
    let app = spawn_app().await;
    let meta = RequestMeta::default();
    for (action, outcome) in [
        (Action::Decrypt, "ok"),
        (Action::Decrypt, "ok"),
        (Action::DecryptDenied, "budget_exceeded"),
        (Action::LeakFound, "masked"),
    ] {
        app.state
            .audit
            .append(
                AuditEvent::new(action, "sam", "supervisor", outcome, &meta)
                    .contact("0b8c2f3e-6a1d-4f5e-9b7a-123456789abc", "creditcard"),
            )
            .await
            .unwrap();
    }
    let c = app.login_as(Role::Auditor).await;
    let html = app
        .page(&c, "/audit?action=decrypt&action=decrypt_denied&actor=sam")
        .await;
    // Checkboxes, not a multi-select needing Ctrl-click.
    assert!(!html.contains("<select name=\"action\" multiple"));
    assert!(html.contains("type=\"checkbox\" name=\"action\" value=\"decrypt\" checked>"));
    assert!(html.contains("type=\"checkbox\" name=\"outcome\" value=\"refused\">"));
    assert!(html
        .contains("<a class=\"button secondary\" href=\"/audit\" id=\"clear-filter\">Clear</a>"));
    let summary = &html[html.find("id=\"filter-summary\"").unwrap()..];
    let summary = &summary[..summary.find("</p>").unwrap()];
    assert!(summary.contains("<b>3 rows</b>"), "{summary}");
    assert!(
        summary.contains("actor sam; actions decrypt, decrypt_denied"),
        "{summary}"
    );
    // The refusal stands out; the reveals do not.
    assert_eq!(html.matches("tint-refusal").count(), 1, "{html}");
    assert_eq!(html.matches("<tr class=\"action-decrypt\">").count(), 2);
    let html = app.page(&c, "/audit?action=leak_found").await;
    assert_eq!(html.matches("tint-leak\">").count(), 1);
    let all = app.page(&c, "/audit").await;
    assert!(
        all.contains("(no filter)"),
        "the summary says when nothing filters"
    );
}

/// The auditor sees which months' values are, or will be, unrecoverable:
/// read from the key_retire rows `callvault keys retire` writes first.
#[tokio::test]
async fn the_audit_page_shows_retired_period_keys_and_when_their_values_become_unrecoverable() {
    let app = spawn_app().await;
    let event = callvault::audit::AuditEvent::new(
        callvault::audit::Action::KeyRetire,
        "cli:ops",
        "cli",
        "scheduled",
        &Default::default(),
    )
    .detail("through 2025-02: 2025-01 key k-1, 2025-02 key k-2; pending 7 days; retention 365");
    let row = app.state.audit.append(event).await.unwrap();
    let auditor = app.login_as(callvault::auth::Role::Auditor).await;
    let html = app.page(&auditor, "/audit").await;
    assert!(html.contains("id=\"key-states\""), "{html}");
    assert!(
        html.contains("the keys of 2025-01, 2025-02 scheduled for deletion"),
        "{html}"
    );
    let after = callvault::clock::local_time(row.ts_us + 7 * 86_400_000_000, chrono_tz::UTC);
    assert!(
        html.contains(&format!("unrecoverable after {after}")),
        "{html}"
    );
}
