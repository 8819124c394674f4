//! Measurement, not a test (ignored; numbers in docs/performance.md):
//! Connect and CloudWatch Logs calls per contact page, repeat view, reveal
//! and flow-log lookup, with the contact cache off (how main called them)
//! and on; then supervisors browsing at a page every 10 s under the
//! default 2 requests per second.
//!
//! cargo test --workspace --locked --test api -- --ignored aws_bench --nocapture --test-threads 1

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use callvault::auth::Role;
use callvault::aws::connect::AwsConnect;
use callvault::aws::logs::AwsLogs;
use callvault::aws::quota::ServiceQuota;
use callvault::config::Settings;
use callvault::sources::logs::LogGroupName;
use reqwest::StatusCode;
use serde_json::json;

use crate::connect_fake::ConnectFake;
use crate::contacts::aws_paging::{contact, contact_id, quick, GROUP, INSTANCE};
use crate::helpers::*;
use crate::logs_fake::{FakeEvent, LogsFake};

const CONTACTS: usize = 10_000;
const EVENTS_PER_CONTACT: usize = 10;
const CARD: &str = "4929871234567893";

struct Bench {
    connect: ConnectFake,
    logs: LogsFake,
    app: TestApp,
}

async fn bench_app(cache_secs: u64, connect_quota: ServiceQuota) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let (handler, key) = lambda_handler(dir.path()).await;
    let mut contacts: Vec<_> = (0..CONTACTS).map(contact).collect();
    // Contact 1's card, captured by the Lambda.
    let event = json!({
        "invocationSource": "DialogCodeHook", "sessionId": "s",
        "sessionState": {"sessionAttributes": {"contactId": contact_id(1)},
          "intent": {"name": "CapturePaymentDetails", "slots": {"creditcard": {"value": {"interpretedValue": CARD}}, "zipcode": null}}}
    });
    let out = serde_json::to_value(handler.handle(event).await.unwrap()).unwrap();
    contacts[1].attributes.insert(
        "creditcard".into(),
        out["sessionState"]["sessionAttributes"]["creditcard"]
            .as_str()
            .unwrap()
            .to_owned(),
    );
    // 100,000 flow-log events: ten per contact over 100 streams, in time order.
    let mut streams: BTreeMap<String, Vec<FakeEvent>> = BTreeMap::new();
    for c in &contacts {
        let base = (c.initiated_secs * 1000.0) as i64;
        for n in 0..EVENTS_PER_CONTACT {
            let stream = format!("flow/{:03}", (c.id.len() + n * 7 + base as usize) % 100);
            streams.entry(stream).or_default().push(FakeEvent {
                timestamp_ms: base + n as i64 * 5_000,
                message: json!({"ContactId": c.id, "n": n}).to_string(),
            });
        }
    }
    for events in streams.values_mut() {
        events.sort_by_key(|e| e.timestamp_ms);
    }
    let connect = ConnectFake::start(INSTANCE, contacts);
    let logs = LogsFake::start(BTreeMap::from([(GROUP.to_owned(), streams)]));
    {
        // The service answers after scanning a chunk of the time range.
        let mut s = logs.state.lock().unwrap();
        s.filter_page = 100;
        s.scan_page = 1000;
    }
    let mut settings = Settings::local(
        "127.0.0.1:0".parse().unwrap(),
        sqlite_url(&dir),
        dir.path().join("secrets"),
    );
    settings.cookie_secure = false;
    settings.keyring = Some(lambda_encrypt::keyring::KeyringSpec::RawAes { path: key });
    settings.aws.cache.ttl = Duration::from_secs(cache_secs);
    settings.aws.cache.reveal_max_age = Duration::from_secs(cache_secs.min(30));
    let sources = callvault::startup::Sources {
        directory: Arc::new(AwsConnect::with_quota(
            &connect.sdk_config().await,
            INSTANCE,
            connect_quota,
        )),
        logs: Arc::new(AwsLogs::with_quota(
            &logs.sdk_config().await,
            vec![LogGroupName::parse(GROUP).unwrap()],
            quick(3),
        )),
    };
    let app = spawn_with_sources(dir, settings, sources).await;
    Bench { connect, logs, app }
}

impl Bench {
    /// (Connect calls, CloudWatch Logs calls) made by `f`.
    async fn cost<F: std::future::Future<Output = ()>>(&self, f: F) -> (usize, usize) {
        let c0 = self.connect.connect_calls();
        let l0 = self.logs.state.lock().unwrap().requests.len();
        f.await;
        (
            self.connect.connect_calls() - c0,
            self.logs.state.lock().unwrap().requests.len() - l0,
        )
    }
}

async fn calls_per_page(cache_secs: u64) {
    let b = bench_app(cache_secs, quick(3)).await;
    let c = b.app.login_as(Role::Supervisor).await;
    let id = contact_id(1);
    let get = |path: String| {
        let c = c.clone();
        let app = &b.app;
        async move {
            let r = c.get(app.url(&path)).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{path}");
        }
    };
    let search = b.cost(get("/contacts".into())).await;
    let page = b.cost(get(format!("/contacts/{id}"))).await;
    let repeat = b.cost(get(format!("/contacts/{id}"))).await;
    let reveal = b
        .cost(async {
            let r = b.app.decrypt(&c, &id, "creditcard", "bench").await;
            assert_eq!(r.status(), StatusCode::OK);
        })
        .await;
    let flow = b.cost(get(format!("/logs/search?contact_id={id}"))).await;
    println!(
        "cache {cache_secs:>2} s | search {search:?} | contact page {page:?} | repeat view {repeat:?} | reveal (page + decrypt) {reveal:?} | flow-log lookup {flow:?}   (Connect, Logs)"
    );
}

/// A flow-log lookup of a contact from the middle of the 100,000 events:
/// as main did it (no time window, at most 5 pages) and as now.
#[tokio::test]
#[ignore]
async fn aws_bench_flow_log_lookup_before_and_after() {
    use callvault::sources::logs::{ContactLogQuery, LogStore};
    use lambda_encrypt::context::ContactId;
    let b = bench_app(60, quick(3)).await;
    let logs = AwsLogs::with_quota(
        &b.logs.sdk_config().await,
        vec![LogGroupName::parse(GROUP).unwrap()],
        quick(3),
    );
    let c = contact(5_000);
    let id = ContactId::parse(&c.id).unwrap();
    let now_us = chrono::Utc::now().timestamp_micros();
    let before = ContactLogQuery {
        contact: id.clone(),
        from_us: 0,
        to_us: now_us,
        page_budget: 5,
        resume: None,
    };
    let l0 = b.logs.state.lock().unwrap().requests.len();
    let old = logs.events_for_contact(&before).await.unwrap();
    let l1 = b.logs.state.lock().unwrap().requests.len();
    let initiated = (c.initiated_secs * 1_000_000.0) as i64;
    let after =
        ContactLogQuery::for_contact(id, initiated, Some(initiated + 240_000_000), now_us, 10);
    let new = logs.events_for_contact(&after).await.unwrap();
    let l2 = b.logs.state.lock().unwrap().requests.len();
    println!(
        "before (no window, 5 pages): {} of {EVENTS_PER_CONTACT} events, {} FilterLogEvents calls, more may exist: {} (not shown) | after (contact window, budget 10): {} events, {} calls, more: {}",
        old.events.len(),
        l1 - l0,
        old.more.is_some(),
        new.events.len(),
        l2 - l1,
        new.more.is_some()
    );
}

#[tokio::test]
#[ignore]
async fn aws_bench_calls_per_contact_page_repeat_view_and_reveal() {
    calls_per_page(0).await;
    calls_per_page(60).await;
}

/// `supervisors` each open a new contact's page every 10 s, evenly
/// staggered, for `rounds` rounds, against a Connect that enforces the
/// default quota (2/s, burst 5, per API). Before: no cache and no
/// client-side quota (the SDK's default retry, 3 attempts); after: both.
async fn browse(supervisors: usize, rounds: usize, after: bool) {
    let quota = if after {
        ServiceQuota::CONNECT
    } else {
        ServiceQuota {
            initial_backoff: Duration::from_secs(1),
            ..quick(3)
        }
    };
    let b = bench_app(if after { 60 } else { 0 }, quota).await;
    b.connect.state.lock().unwrap().quota = Some((2.0, 5.0));
    let clients: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(b.app.login_as(Role::Supervisor).await);
        }
        v
    };
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..supervisors {
        let c = clients[s % clients.len()].clone();
        let base = b.app.address.clone();
        let offset = Duration::from_millis((10_000 * s / supervisors) as u64);
        tasks.push(tokio::spawn(async move {
            let mut results = Vec::new();
            for r in 0..rounds {
                let at = offset + Duration::from_secs(10 * r as u64);
                tokio::time::sleep_until(tokio::time::Instant::from_std(started + at)).await;
                let id = contact_id(100 + s * rounds + r);
                let t = Instant::now();
                let res = c.get(format!("{base}/contacts/{id}")).send().await.unwrap();
                results.push((res.status(), t.elapsed()));
            }
            results
        }));
    }
    let mut latencies = Vec::new();
    let mut busy = 0;
    for t in tasks {
        for (status, took) in t.await.unwrap() {
            if status != StatusCode::OK {
                busy += 1;
            }
            latencies.push(took);
        }
    }
    latencies.sort();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    println!(
        "{} {supervisors:>3} supervisors x {rounds} pages: {busy} busy pages; latency p50 {:?} p95 {:?} max {:?}; Connect calls {}, refused by Connect's quota {}",
        if after { "after " } else { "before" },
        p(0.5),
        p(0.95),
        latencies.last().copied().unwrap_or_default(),
        b.connect.connect_calls(),
        b.connect.state.lock().unwrap().over_quota,
    );
}

#[tokio::test]
#[ignore]
async fn aws_bench_supervisors_served_inside_two_requests_per_second() {
    let sizes: Vec<usize> = std::env::var("BENCH_SUPERVISORS")
        .unwrap_or_else(|_| "10,20,30".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for after in [false, true] {
        for &n in &sizes {
            browse(n, 3, after).await;
        }
    }
}
