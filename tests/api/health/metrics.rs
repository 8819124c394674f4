//! `/metrics`: Prometheus text that a real parser reads, counters that move,
//! no contact id, reason or value in any label, and the bearer token.

use callvault::auth::Role;
use callvault::config::MetricsToken;
use callvault::demo::{demo_card, demo_contact_id};
use prometheus_parse::{Sample, Scrape, Value};

use crate::helpers::*;

const TOKEN: &str = "metrics-token-for-tests-0123456789";
const CANARY_REASON: &str = "canary reason 7c1d9e";

async fn scrape(app: &TestApp) -> (String, Scrape) {
    let r = client()
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text");
    (text, scrape)
}

fn value(s: &Sample) -> f64 {
    match &s.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(b) => b.last().map_or(0.0, |b| b.count),
        Value::Summary(_) => 0.0,
    }
}

/// The sum of a metric's samples whose labels include all of `labels`.
fn sum(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(value)
        .sum()
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_and_move_after_a_reveal_and_a_refusal() {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.metrics_token = Some(MetricsToken::new(TOKEN)),
    )
    .await;
    let (_, before) = scrape(&app).await;
    let supervisor = app.login_as(Role::Supervisor).await;
    let contact = demo_contact_id(0);
    let r = app
        .decrypt(&supervisor, &contact, "creditcard", CANARY_REASON)
        .await;
    assert!(r.text().await.unwrap().shows(&demo_card(0)));
    let r = app.decrypt(&supervisor, &contact, "creditcard", "").await;
    assert!(!r.text().await.unwrap().shows(&demo_card(0)));
    let (text, after) = scrape(&app).await;

    let moved = |metric: &str, labels: &[(&str, &str)]| {
        sum(&after, metric, labels) - sum(&before, metric, labels)
    };
    assert!(moved("callvault_reveals_total", &[]) >= 1.0);
    assert!(
        moved(
            "callvault_reveal_refusals_total",
            &[("action", "decrypt_denied"), ("kind", "no_reason")]
        ) >= 1.0
    );
    assert!(moved("callvault_audit_appends_total", &[("action", "decrypt")]) >= 1.0);
    assert!(
        moved("callvault_audit_append_duration_seconds_count", &[]) >= 2.0,
        "{}",
        text.lines()
            .filter(|l| l.contains("audit_append_duration"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        moved(
            "callvault_http_requests_total",
            &[
                ("route", "/contacts/:id/decrypt"),
                ("method", "POST"),
                ("status", "303")
            ]
        ) >= 1.0,
        "requests are counted by route pattern: {}",
        text.lines()
            .filter(|l| l.starts_with("callvault_http_requests_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        moved(
            "callvault_http_request_duration_seconds_count",
            &[("route", "/contacts/:id"), ("method", "GET")]
        ) >= 2.0
    );
    for gauge in [
        "callvault_audit_outbox_backlog",
        "callvault_audit_outbox_oldest_age_seconds",
        "callvault_audit_checkpoint_age_seconds",
    ] {
        assert!(after.samples.iter().any(|s| s.metric == gauge), "{gauge}");
    }
    // The canaries: nothing a person typed or a caller said.
    for secret in [
        contact.as_str(),
        CANARY_REASON,
        "canary",
        demo_card(0).as_str(),
    ] {
        assert!(!text.contains(secret), "/metrics holds {secret}");
        for s in &after.samples {
            assert!(
                s.labels.values().all(|v| !v.contains(secret)),
                "a label of {} holds {secret}",
                s.metric
            );
        }
    }
}

#[tokio::test]
async fn metrics_refuse_a_missing_or_wrong_bearer_token() {
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.metrics_token = Some(MetricsToken::new(TOKEN)),
    )
    .await;
    let wrong_tokens = [
        None,
        Some("Bearer wrong".to_owned()),
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Bearer {}", &TOKEN[..TOKEN.len() - 1])),
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some("Bearer ".to_owned()),
    ];
    for auth in wrong_tokens {
        let mut req = client().get(app.url("/metrics"));
        if let Some(a) = &auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer"));
        assert!(!r.text().await.unwrap().contains("callvault_"));
    }
    scrape(&app).await;
}
