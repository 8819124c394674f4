//! The auditor's filters by several actors, actions and
//! outcomes, contact-id prefixes (initial contact ids included), days in the
//! reader's time zone, hostile filter values, the case and initial contact
//! columns in the page and both exports.

use callvault::audit::{Action, AuditEvent, AuditFilter, RequestMeta};
use callvault::auth::Role;
use reqwest::StatusCode;

use crate::helpers::*;

/// (actor, action, outcome, contact id, initial contact id)
const SEED: [(&str, Action, &str, &str, &str); 10] = [
    ("Sam", Action::Decrypt, "ok", "abc-001", ""),
    (
        "sam",
        Action::DecryptDenied,
        "budget_exceeded",
        "abc-002",
        "",
    ),
    ("kim", Action::Decrypt, "ok", "abd-001", ""),
    ("kim", Action::ContactView, "ok", "abc-003", ""),
    ("lee", Action::Decrypt, "ok", "leg-2", "abc-100"),
    ("lee", Action::Decrypt, "ok", "ab%c", ""),
    ("lee", Action::Decrypt, "ok", "ab_c", ""),
    ("lee", Action::Decrypt, "ok", "abxc", ""),
    ("zed", Action::Decrypt, "ok", "ABC-001", ""),
    ("zed", Action::Decrypt, "failed", "abc\u{10FFFF}z", ""),
];

async fn seed(app: &TestApp) {
    for (actor, action, outcome, contact, initial) in SEED {
        let ev = AuditEvent::new(
            action,
            actor,
            "supervisor",
            outcome,
            &RequestMeta::default(),
        )
        .contact(contact, "creditcard")
        .reason("seeded")
        .initial_contact(initial);
        app.state.audit.append(ev).await.unwrap();
    }
}

/// The SQLite app and, when PostgreSQL is available, one on PostgreSQL.
async fn apps() -> Vec<TestApp> {
    let mut apps = vec![spawn_app().await];
    if let Some(url) = fresh_postgres_database().await {
        apps.push(spawn_app_with(tempfile::tempdir().unwrap(), url, false).await);
    }
    apps
}

/// The rows a filter gives, as (actor, contact id) in sequence order.
async fn matching(app: &TestApp, filter: AuditFilter) -> Vec<(String, String)> {
    let mut rows = app.state.audit.query(&filter, None, 1000).await.unwrap();
    rows.reverse();
    rows.into_iter().map(|r| (r.actor, r.contact_id)).collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, c)| ((*a).to_owned(), (*c).to_owned()))
        .collect()
}

#[tokio::test]
async fn several_actions_and_a_contact_prefix_give_exactly_the_matching_rows() {
    for app in apps().await {
        seed(&app).await;
        let filter = |f: AuditFilter| matching(&app, f);
        let two_actions = vec!["decrypt".to_owned(), "decrypt_denied".to_owned()];
        // Two actions and a prefix: the reveal on the transferred leg is
        // found by its initial contact id; case matters in ids.
        assert_eq!(
            filter(AuditFilter {
                actions: two_actions.clone(),
                contact_prefix: Some("abc".into()),
                ..AuditFilter::default()
            })
            .await,
            pairs(&[
                ("Sam", "abc-001"),
                ("sam", "abc-002"),
                ("lee", "leg-2"),
                ("zed", "abc\u{10FFFF}z")
            ])
        );
        // The initial contact id itself, whole.
        assert_eq!(
            filter(AuditFilter {
                contact_prefix: Some("abc-100".into()),
                ..AuditFilter::default()
            })
            .await,
            pairs(&[("lee", "leg-2")])
        );
        // LIKE wildcards are plain characters.
        for (prefix, contact) in [("ab%", "ab%c"), ("ab_", "ab_c")] {
            assert_eq!(
                filter(AuditFilter {
                    contact_prefix: Some(prefix.into()),
                    ..AuditFilter::default()
                })
                .await,
                pairs(&[("lee", contact)]),
                "{prefix}"
            );
        }
        // A prefix ending in the last code point.
        assert_eq!(
            filter(AuditFilter {
                contact_prefix: Some("abc\u{10FFFF}".into()),
                ..AuditFilter::default()
            })
            .await,
            pairs(&[("zed", "abc\u{10FFFF}z")])
        );
        // Actor names in any letter case; several outcomes.
        assert_eq!(
            filter(AuditFilter {
                actors: vec!["SAM".into(), "Zed".into()],
                outcomes: vec!["budget_exceeded".into(), "failed".into()],
                ..AuditFilter::default()
            })
            .await,
            pairs(&[("sam", "abc-002"), ("zed", "abc\u{10FFFF}z")])
        );

        // The same through the page.
        let c = app.login_as(Role::Auditor).await;
        let html = app
            .page(
                &c,
                "/audit?action=decrypt&action=decrypt_denied&contact=abc",
            )
            .await;
        assert_eq!(html.matches("<tr class=\"action-").count(), 4, "{html}");
        assert!(
            html.contains("<code class=\"id full\">abc-100</code>"),
            "the initial id is shown"
        );
        let html = app.page(&c, "/audit?actor=SAM%2C+lee&action=decrypt").await;
        assert_eq!(html.matches("<tr class=\"action-").count(), 5, "{html}");
        // Both selected actions stay selected in the form.
        let html = app
            .page(&c, "/audit?action=decrypt&action=leak_found")
            .await;
        assert!(html.contains("name=\"action\" value=\"decrypt\" checked>"));
        assert!(html.contains("name=\"action\" value=\"leak_found\" checked>"));
        assert!(html.contains("name=\"action\" value=\"login\">"));
    }
}

#[tokio::test]
async fn page_links_and_exports_keep_every_filter_value() {
    let app = spawn_app().await;
    seed(&app).await;
    for i in 0..60 {
        let ev = AuditEvent::new(
            Action::Decrypt,
            "bulk",
            "supervisor",
            "ok",
            &RequestMeta::default(),
        )
        .contact(&format!("abc-5{i:02}"), "zipcode")
        .case_ref(&format!("CASE-{i}"));
        app.state.audit.append(ev).await.unwrap();
    }
    let c = app.login_as(Role::Auditor).await;
    let query = "actor=bulk&actor=SAM&action=decrypt&action=decrypt_denied&outcome=ok&outcome=budget_exceeded&contact=abc";
    let html = app.page(&c, &format!("/audit?{query}")).await;
    assert_eq!(html.matches("<tr class=\"action-").count(), 50);
    // (Askama writes the query's `&` as `&#38;`.)
    let kept = query.replace('&', "&#38;");
    let older = html
        .split("href=\"/audit?before=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an older-rows link");
    assert!(older.ends_with(&kept), "{older}");
    for format in ["csv", "jsonl"] {
        assert!(
            html.contains(&format!("/audit/export?format={format}&amp;{kept}")),
            "{format} link"
        );
    }
    // The older page: the 12 remaining matches (62 in all).
    let html = app
        .page(
            &c,
            &format!(
                "/audit?before={}",
                older.replace("&amp;", "&").replace("&#38;", "&")
            ),
        )
        .await;
    assert_eq!(html.matches("<tr class=\"action-").count(), 12, "{html}");

    // The exports: the same 62 rows, the new columns last.
    let csv = app
        .page(&c, &format!("/audit/export?format=csv&{query}"))
        .await;
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .ends_with(",prev_hash,hash,case_ref,initial_contact_id"));
    assert_eq!(lines.clone().count(), 62);
    assert!(csv.contains(",CASE-7,\n"), "case reference in the CSV");
    let jsonl = app
        .page(&c, &format!("/audit/export?format=jsonl&{query}"))
        .await;
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 62);
    assert!(rows.iter().any(|r| r["case_ref"] == "CASE-7"));
    assert!(rows
        .iter()
        .all(|r| r["contact_id"].as_str().unwrap().starts_with("abc")));
    let lee = app
        .page(&c, "/audit/export?format=jsonl&contact=abc-1")
        .await;
    let row: serde_json::Value = serde_json::from_str(lee.lines().next().unwrap()).unwrap();
    assert_eq!(
        (&row["contact_id"], &row["initial_contact_id"]),
        (&"leg-2".into(), &"abc-100".into())
    );
    // Each export is on the record with its filter.
    let exported = app.last_audit("audit_export").await.unwrap();
    assert_eq!(exported.outcome, "ok");
    assert!(
        exported.detail.contains("contact=abc-1"),
        "{}",
        exported.detail
    );
}

#[tokio::test]
async fn hostile_filter_values_are_refused_audited_and_escaped() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await;
    let many = (0..21)
        .map(|i| format!("actor=a{i}"))
        .collect::<Vec<_>>()
        .join("&");
    let many_in_one = format!(
        "actor={}",
        (0..21)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join("%2C")
    );
    let cases: Vec<(String, &str)> = vec![
        (many, "More than 20 actor values"),
        (many_in_one, "More than 20 actor values"),
        (format!("actor={}", "a".repeat(65)), "longer than 64"),
        (format!("contact={}", "c".repeat(129)), "longer than 128"),
        (format!("outcome={}", "o".repeat(65)), "longer than 64"),
        ("action=drop+table".into(), "Unknown action"),
        (
            "actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E".into(),
            "holds markup",
        ),
        ("contact=%22onmouseover%3D".into(), "holds markup"),
        ("actor=sam%0Aforged".into(), "control characters"),
        ("outcome=ok%E2%80%A8x".into(), "control characters"),
        ("contact=abc%E2%80%AEdef".into(), "control characters"),
        ("contact=abc%2Cdef".into(), "no spaces or commas"),
        ("from=yesterday".into(), "is not a day"),
        ("to=2026-02-30".into(), "is not a day"),
        ("before=abc".into(), "is not a row number"),
        ("colour=red".into(), "Unknown parameter"),
        ("contact=a&contact=b".into(), "given twice"),
        ("format=xml".into(), "must be csv or jsonl"),
    ];
    for (path, message) in [("/audit", "audit_view"), ("/audit/export", "audit_export")]
        .iter()
        .flat_map(|(p, a)| {
            cases
                .iter()
                .map(move |(q, m)| ((format!("{p}?{q}"), *a), *m))
        })
    {
        let (url, action) = path;
        let r = c.get(app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        let html = r.text().await.unwrap();
        assert!(html.contains(message), "{url}: {html}");
        assert!(!html.contains("<script>alert"), "{url}");
        assert!(!html.contains("\"onmouseover="), "{url}");
        let row = app.last_audit(action).await.unwrap();
        assert_eq!(row.outcome, "refused", "{url}");
        assert!(row.detail.contains(message), "{url}: {}", row.detail);
        assert!(row.detail.chars().count() < 220, "{url}: cut short");
        assert!(
            !row.detail.contains(['\n', '\u{2028}', '\u{202E}']),
            "{url}: cleaned"
        );
    }
    // Nothing was listed or exported for a refused filter.
    assert!(app
        .audit_rows()
        .await
        .iter()
        .all(|r| !(r.action == "audit_export" && r.outcome == "ok")));
    // Twenty values of a kind, 64 characters each, are fine.
    let twenty = (0..20)
        .map(|i| format!("actor={i:0>64}"))
        .collect::<Vec<_>>()
        .join("&");
    let r = c
        .get(app.url(&format!("/audit?{twenty}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn times_and_days_follow_the_readers_time_zone_and_exports_stay_utc() {
    let app = spawn_app().await;
    let row = app
        .state
        .audit
        .append(
            AuditEvent::new(
                Action::ContactView,
                "sam",
                "supervisor",
                "ok",
                &RequestMeta::default(),
            )
            .contact("tz-1", ""),
        )
        .await
        .unwrap();
    let c = app.login_as(Role::Auditor).await;
    let html = app.page(&c, "/audit?contact=tz-1").await;
    assert!(html.contains("<th>Time (UTC)</th>"), "UTC until chosen");

    // Kiritimati is UTC+14, Pago Pago UTC-11: 25 hours apart, so the same
    // instant is always on different local days there.
    let day_in = |zone: chrono_tz::Tz| {
        use chrono::TimeZone as _;
        zone.timestamp_micros(row.ts_us)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let (kiri, pago) = (
        day_in(chrono_tz::Tz::Pacific__Kiritimati),
        day_in(chrono_tz::Tz::Pacific__Pago_Pago),
    );
    assert_ne!(kiri, pago);
    for (zone, own, other) in [
        ("Pacific/Kiritimati", &kiri, &pago),
        ("Pacific/Pago_Pago", &pago, &kiri),
    ] {
        let r = app
            .post_form(
                &c,
                "/account/settings",
                "/account/settings",
                &[("time_zone", zone)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "{zone}");
        let change = app.last_audit("setting_change").await.unwrap();
        assert_eq!(change.outcome, "ok");
        assert!(
            change.detail.ends_with(&format!("-> {zone}")),
            "{}",
            change.detail
        );
        let html = app
            .page(&c, &format!("/audit?contact=tz-1&from={own}&to={own}"))
            .await;
        assert!(html.contains(&format!("<th>Time ({zone})</th>")), "{html}");
        assert_eq!(
            html.matches("<tr class=\"action-").count(),
            1,
            "{zone} {own}"
        );
        let local = {
            use chrono::TimeZone as _;
            let tz: chrono_tz::Tz = zone.parse().unwrap();
            tz.timestamp_micros(row.ts_us)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        assert!(html.contains(&local), "{zone}: {local}");
        let html = app
            .page(&c, &format!("/audit?contact=tz-1&from={other}&to={other}"))
            .await;
        assert!(html.contains("No rows match."), "{zone} {other}");
        // Exports read days in UTC and write UTC times.
        let utc_day = chrono::DateTime::from_timestamp_micros(row.ts_us)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string();
        let csv = app
            .page(
                &c,
                &format!("/audit/export?format=csv&contact=tz-1&from={utc_day}&to={utc_day}"),
            )
            .await;
        assert_eq!(csv.lines().count(), 2, "{csv}");
        assert!(
            csv.contains(&format!("{utc_day}T")) && csv.contains("Z,sam,"),
            "{csv}"
        );
    }
    // The settings page offers the zones and shows the current one.
    let html = app.page(&c, "/account/settings").await;
    assert!(html.contains("<option value=\"Pacific/Pago_Pago\" selected>"));
    assert!(html.contains("<option value=\"Europe/Paris\">"));
    // Back to UTC: stored as no zone.
    let r = app
        .post_form(
            &c,
            "/account/settings",
            "/account/settings",
            &[("time_zone", "UTC")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = app.page(&c, "/audit?contact=tz-1").await;
    assert!(html.contains("<th>Time (UTC)</th>"));
}

#[tokio::test]
async fn a_time_zone_that_does_not_exist_is_refused_and_audited() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Supervisor).await;
    let long = "Europe/".repeat(80);
    for zone in [
        "Mars/Olympus",
        "europe/paris",
        "<script>alert(1)</script>",
        "Europe/Paris\n<b>",
        "Europe/Paris\u{202E}",
        "../../etc/passwd",
        "",
        long.as_str(),
    ] {
        let r = app
            .post_form(
                &c,
                "/account/settings",
                "/account/settings",
                &[("time_zone", zone)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{zone:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("not a time zone this console knows"),
            "{html}"
        );
        assert!(
            !html.contains("<script>alert") && !html.contains("<b>"),
            "{zone:?}"
        );
        let row = app.last_audit("setting_change").await.unwrap();
        assert_eq!(row.outcome, "refused", "{zone:?}");
        assert!(row.role == "supervisor" && row.detail.starts_with("time zone: "));
        assert!(row.detail.chars().count() < 200, "cut short");
        assert!(!row.detail.contains(['\n', '\u{202E}']), "cleaned");
    }
    // Nothing changed: the user still reads UTC.
    let html = app.page(&c, "/account/settings").await;
    assert!(html.contains("<option value=\"UTC\" selected>"), "{html}");
    // Without a CSRF token nothing is changed either.
    let r = c
        .post(app.url("/account/settings"))
        .form(&[("time_zone", "Europe/Paris")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(app
        .audit_rows()
        .await
        .iter()
        .all(|r| !(r.action == "setting_change" && r.outcome == "ok")));
}
