//! The AWS adapters read Connect and CloudWatch Logs completely, the way
//! their APIs page and throttle, against the wire-level fakes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callvault::aws::cache::{CacheSettings, CachedDirectory};
use callvault::aws::connect::AwsConnect;
use callvault::aws::logs::AwsLogs;
use callvault::aws::quota::ServiceQuota;
use callvault::clock::OffsetClock;
use callvault::sources::contacts::{AttributeCriterion, ContactDirectory, ContactSearch};
use callvault::sources::logs::{ContactLogQuery, LogGroupName, LogStore, LogStreamName};
use callvault::sources::SourceError;
use lambda_encrypt::context::ContactId;
use serde_json::json;

use crate::connect_fake::{ConnectFake, FakeContact};
use crate::helpers::*;
use crate::logs_fake::{FakeEvent, LogsFake};
use crate::sources::logs_model::{requests_file, run_python};

pub const INSTANCE: &str = "11111111-2222-4333-8444-555555555555";
pub const GROUP: &str = "/aws/connect/paging";

/// Fast retries and no client-side wait: tests count calls, never time.
pub fn quick(max_attempts: u32) -> ServiceQuota {
    ServiceQuota {
        per_second: std::num::NonZeroU32::new(10_000).unwrap(),
        burst: std::num::NonZeroU32::new(10_000).unwrap(),
        concurrency: 16,
        max_attempts,
        initial_backoff: Duration::from_millis(1),
        max_wait: Duration::from_secs(60),
    }
}

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp() as f64
}

pub fn contact_id(i: usize) -> String {
    format!("cccccccc-0000-4000-8000-{i:012}")
}

/// Contact `i`: agents, queues, methods and tiers vary with `i`.
pub fn contact(i: usize) -> FakeContact {
    let id = contact_id(i);
    FakeContact {
        initial_contact_id: id.clone(),
        id,
        channel: if i.is_multiple_of(5) { "CHAT" } else { "VOICE" }.into(),
        initiated_secs: now_secs() - 60.0 * i as f64 - 30.0,
        attributes: BTreeMap::from([(
            "tier".to_owned(),
            ["gold", "silver", "bronze"][i % 3].to_owned(),
        )]),
        initiation_method: Some(["INBOUND", "CALLBACK", "OUTBOUND", "TRANSFER"][i % 4].into()),
        agent_id: Some(format!("agent-{}", i % 6)),
        queue_id: Some(format!("queue-{}", i % 2)),
        customer_number: Some(format!("+1415555{i:04}")),
        disconnect_reason: Some("CUSTOMER_DISCONNECT".into()),
    }
}

fn range() -> ContactSearch {
    let now = chrono::Utc::now().timestamp_micros();
    ContactSearch {
        from_us: now - 3 * 86_400_000_000,
        to_us: now + 86_400_000_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn page_two_and_three_of_a_contact_search_work_with_20000_character_tokens() {
    let fake = ConnectFake::start(INSTANCE, (0..60).map(contact).collect());
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    // Tokens belong to their search: the same criteria on every page.
    let search = range();
    let mut seen = Vec::new();
    let mut next = None;
    for page in 1..=3 {
        let out = connect
            .search(&ContactSearch {
                next_token: next.clone(),
                ..search.clone()
            })
            .await
            .unwrap();
        assert_eq!(out.total, Some(60), "TotalCount on page {page}");
        seen.extend(out.items.iter().map(|c| c.id.to_string()));
        next = out.next_token;
        if page < 3 {
            assert!(
                next.as_ref().is_some_and(|t| t.len() == 20_000),
                "page {page}"
            );
        }
    }
    assert!(next.is_none());
    let expected: Vec<String> = (0..60).map(contact_id).collect();
    assert_eq!(seen, expected, "every contact once, newest first");
}

#[tokio::test]
async fn ragged_and_empty_search_pages_before_the_end_do_not_end_the_search() {
    let fake = ConnectFake::start(INSTANCE, (0..30).map(contact).collect());
    fake.state.lock().unwrap().ragged = vec![25, 0, 3];
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    let search = range();
    let first = connect.search(&search).await.unwrap();
    assert_eq!(first.items.len(), 25);
    let empty = connect
        .search(&ContactSearch {
            next_token: first.next_token.clone(),
            ..search.clone()
        })
        .await
        .unwrap();
    assert!(empty.items.is_empty());
    assert!(empty.next_token.is_some(), "an empty page is not the end");
    let third = connect
        .search(&ContactSearch {
            next_token: empty.next_token.clone(),
            ..search.clone()
        })
        .await
        .unwrap();
    assert_eq!(third.items.len(), 3);
}

#[tokio::test]
async fn search_by_agent_queue_initiation_method_and_attribute_returns_the_right_contacts_and_validates_against_botocore(
) {
    let fake = ConnectFake::start(INSTANCE, (0..60).map(contact).collect());
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    let all: Vec<FakeContact> = (0..60).map(contact).collect();
    let ids = |f: &dyn Fn(&FakeContact) -> bool| -> Vec<String> {
        all.iter().filter(|c| f(c)).map(|c| c.id.clone()).collect()
    };
    let found =
        |page: callvault::sources::Page<callvault::sources::contacts::ContactSummary>| -> Vec<String> {
            page.items.iter().map(|c| c.id.to_string()).collect()
        };
    let by_agent = connect
        .search(&ContactSearch {
            agent_ids: vec!["agent-2".into()],
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(
        found(by_agent),
        ids(&|c| c.agent_id.as_deref() == Some("agent-2"))
    );
    let by_queue_and_method = connect
        .search(&ContactSearch {
            queue_ids: vec!["queue-1".into()],
            initiation_methods: vec!["CALLBACK".into(), "TRANSFER".into()],
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(by_queue_and_method.total, Some(30));
    let expected = ids(&|c| {
        c.queue_id.as_deref() == Some("queue-1") && matches!(c.method(), "CALLBACK" | "TRANSFER")
    });
    assert_eq!(found(by_queue_and_method), expected[..25]);
    let by_attribute = connect
        .search(&ContactSearch {
            attributes: vec![AttributeCriterion {
                key: "tier".into(),
                values: vec!["gold".into()],
            }],
            channel: Some(callvault::sources::contacts::Channel::Voice),
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(
        found(by_attribute),
        ids(&|c| c.attributes["tier"] == "gold" && c.channel == "VOICE")
    );
    let unknown_agent = connect
        .search(&ContactSearch {
            agent_ids: vec!["no-such-agent".into()],
            ..range()
        })
        .await
        .unwrap();
    assert!(unknown_agent.items.is_empty());
    assert_eq!(unknown_agent.total, Some(0));

    // What the console sent walks cleanly against botocore's SearchContacts input.
    let sent: Vec<(String, serde_json::Value)> = fake
        .state
        .lock()
        .unwrap()
        .searches
        .iter()
        .map(|b| ("SearchContacts".to_owned(), b.clone()))
        .collect();
    assert!(sent
        .iter()
        .any(
            |(_, b)| b["SearchCriteria"]["SearchableContactAttributes"]["Criteria"][0]["Key"]
                == "tier"
        ));
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = requests_file(&dir, &sent);
    let text = run_python(
        &python,
        "connect_model.py",
        &["--requests", "connect", &file],
    )
    .await;
    assert!(
        text.contains("the console's connect requests match botocore's model"),
        "{text}"
    );
}

#[tokio::test]
async fn an_exact_contact_id_is_found_whatever_the_date_range() {
    let mut old = contact(1);
    old.initiated_secs = now_secs() - 60.0 * 86_400.0;
    let fake = ConnectFake::start(INSTANCE, vec![old.clone()]);
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    let page = connect
        .search(&ContactSearch {
            contact_id: Some(ContactId::parse(&old.id).unwrap()),
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(
        fake.calls_to("SearchContacts"),
        0,
        "described, not searched"
    );
}

#[tokio::test]
async fn a_forged_token_and_a_refused_parameter_are_told_apart() {
    let fake = ConnectFake::start(INSTANCE, (0..3).map(contact).collect());
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    let forged = connect
        .search(&ContactSearch {
            next_token: Some("x".repeat(30_000)),
            ..range()
        })
        .await
        .unwrap_err();
    assert_eq!(forged, SourceError::BadToken);
    let now = chrono::Utc::now().timestamp_micros();
    let too_wide = connect
        .search(&ContactSearch {
            from_us: now - 200 * 86_400_000_000,
            to_us: now,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        too_wide,
        SourceError::BadRequest("InvalidParameterException".into())
    );
}

#[tokio::test]
async fn describe_gives_agent_queue_customer_endpoint_and_disconnect_reason_masked_in_debug() {
    let fake = ConnectFake::start(INSTANCE, vec![contact(7)]);
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(1));
    let c = connect
        .describe(&ContactId::parse(&contact_id(7)).unwrap())
        .await
        .unwrap();
    assert_eq!(c.agent_id.as_deref(), Some("agent-1"));
    assert_eq!(c.queue_id.as_deref(), Some("queue-1"));
    assert_eq!(c.disconnect_reason.as_deref(), Some("CUSTOMER_DISCONNECT"));
    assert!(c.arn.as_deref().is_some_and(|a| a.contains(INSTANCE)));
    let endpoint = c.customer_endpoint.clone().unwrap();
    assert!(endpoint.masked().ends_with("0007"));
    let debug = format!("{c:?}");
    assert!(!debug.contains("+14155550007"), "{debug}");
}

#[tokio::test]
async fn under_a_throttling_burst_connect_reads_answer_within_the_retry_budget_and_past_it_say_throttled(
) {
    let fake = ConnectFake::start(INSTANCE, vec![contact(1)]);
    let connect = AwsConnect::with_quota(&fake.sdk_config().await, INSTANCE, quick(3));
    let id = ContactId::parse(&contact_id(1)).unwrap();
    fake.throttle_next(2);
    assert!(connect.describe(&id).await.is_ok());
    assert_eq!(
        fake.calls_to("DescribeContact"),
        3,
        "two throttled, one answered"
    );
    fake.throttle_next(3);
    assert_eq!(
        connect.describe(&id).await.unwrap_err(),
        SourceError::Throttled
    );
    assert_eq!(
        fake.calls_to("DescribeContact"),
        6,
        "three attempts, then given up"
    );
}

#[tokio::test]
async fn concurrent_views_of_one_contact_make_one_connect_call_and_a_repeat_none() {
    let fake = ConnectFake::start(INSTANCE, vec![contact(1)]);
    let connect = Arc::new(AwsConnect::with_quota(
        &fake.sdk_config().await,
        INSTANCE,
        quick(1),
    ));
    let cached = Arc::new(CachedDirectory::new(
        connect,
        CacheSettings::default(),
        Arc::new(OffsetClock::default()),
    ));
    let id = ContactId::parse(&contact_id(1)).unwrap();
    let views: Vec<_> = (0..8)
        .map(|_| {
            let cached = Arc::clone(&cached);
            let id = id.clone();
            tokio::spawn(async move {
                let d = cached.describe(&id).await.unwrap();
                cached.attributes(&id).await.unwrap();
                d
            })
        })
        .collect();
    for v in views {
        assert_eq!(v.await.unwrap().id, id);
    }
    assert_eq!(fake.calls_to("DescribeContact"), 1);
    assert_eq!(fake.calls_to("GetContactAttributes"), 1);
    cached.describe(&id).await.unwrap();
    cached.fresh_attributes(&id).await.unwrap();
    assert_eq!(
        fake.connect_calls(),
        2,
        "a repeat view and a prompt reveal cost nothing"
    );
}

#[tokio::test]
async fn a_reveal_rereads_attributes_once_the_cached_copy_is_older_than_its_limit() {
    let fake = ConnectFake::start(INSTANCE, vec![contact(1)]);
    let connect = Arc::new(AwsConnect::with_quota(
        &fake.sdk_config().await,
        INSTANCE,
        quick(1),
    ));
    let clock = Arc::new(OffsetClock::default());
    let cached = CachedDirectory::new(connect, CacheSettings::default(), clock.clone());
    let id = ContactId::parse(&contact_id(1)).unwrap();
    cached.attributes(&id).await.unwrap();
    clock.advance(Duration::from_secs(31));
    cached.fresh_attributes(&id).await.unwrap();
    assert_eq!(fake.calls_to("GetContactAttributes"), 2);
}

/// Events of `contact` (and of others) in one stream, a second apart from `base_ms`.
fn flow(contact: &str, base_ms: i64, n: usize) -> Vec<FakeEvent> {
    (0..n)
        .map(|i| FakeEvent {
            timestamp_ms: base_ms + i as i64 * 1000,
            message:
                json!({"ContactId": if i % 2 == 0 { contact } else { "someone-else" }, "n": i})
                    .to_string(),
        })
        .collect()
}

fn logs_fake(streams: Vec<(&str, Vec<FakeEvent>)>) -> LogsFake {
    LogsFake::start(BTreeMap::from([(
        GROUP.to_owned(),
        streams
            .into_iter()
            .map(|(n, e)| (n.to_owned(), e))
            .collect(),
    )]))
}

#[tokio::test]
async fn a_contacts_flow_log_events_behind_several_empty_pages_are_all_found_inside_its_window() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let start_ms = now_ms - 3_600_000;
    let contact = contact_id(1);
    // 40 events in the window (20 of the contact), one long before it.
    let mut events = vec![FakeEvent {
        timestamp_ms: start_ms - 86_400_000,
        message: json!({"ContactId": contact, "n": "old"}).to_string(),
    }];
    events.extend(flow(&contact, start_ms, 40));
    let fake = logs_fake(vec![("flow/a", events)]);
    {
        let mut s = fake.state.lock().unwrap();
        s.empty_pages = 3;
        s.filter_page = 4;
    }
    let logs = AwsLogs::with_quota(
        &fake.sdk_config().await,
        vec![LogGroupName::parse(GROUP).unwrap()],
        quick(1),
    );
    let q = ContactLogQuery::for_contact(
        ContactId::parse(&contact).unwrap(),
        start_ms * 1000,
        Some((start_ms + 60_000) * 1000),
        now_ms * 1000,
        1000,
    );
    let found = logs.events_for_contact(&q).await.unwrap();
    assert_eq!(found.events.len(), 20);
    assert!(found.more.is_none());
    let bodies = fake.state.lock().unwrap().bodies("FilterLogEvents");
    // At least five pages of four of the contact's events, each behind three empty ones.
    assert!(
        bodies.len() >= 20,
        "empty pages were followed: {}",
        bodies.len()
    );
    for b in &bodies {
        assert_eq!(b["startTime"], q.from_us / 1000);
        assert_eq!(b["endTime"], q.to_us / 1000);
    }
}

#[tokio::test]
async fn when_the_flow_log_budget_is_spent_the_lookup_says_so_and_continues_where_it_stopped() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let start_ms = now_ms - 3_600_000;
    let contact = contact_id(2);
    let fake = logs_fake(vec![("flow/a", flow(&contact, start_ms, 40))]);
    {
        let mut s = fake.state.lock().unwrap();
        s.empty_pages = 1;
        s.filter_page = 4;
    }
    let logs = AwsLogs::with_quota(
        &fake.sdk_config().await,
        vec![LogGroupName::parse(GROUP).unwrap()],
        quick(1),
    );
    let mut q = ContactLogQuery::for_contact(
        ContactId::parse(&contact).unwrap(),
        start_ms * 1000,
        Some((start_ms + 60_000) * 1000),
        now_ms * 1000,
        3,
    );
    let mut all = Vec::new();
    let mut rounds = 0;
    loop {
        let out = logs.events_for_contact(&q).await.unwrap();
        rounds += 1;
        all.extend(out.events);
        match out.more {
            Some(cursor) => q.resume = Some(cursor),
            None => break,
        }
        assert!(rounds < 100);
    }
    assert!(rounds > 1, "the budget was spent at least once");
    assert_eq!(all.len(), 20);
}

#[tokio::test]
async fn repeated_deliveries_of_a_flow_log_event_are_shown_once() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let contact = contact_id(3);
    let mut events = flow(&contact, now_ms - 60_000, 10);
    let twice = events[4].clone();
    events.insert(5, twice);
    let fake = logs_fake(vec![("flow/a", events)]);
    let logs = AwsLogs::with_quota(
        &fake.sdk_config().await,
        vec![LogGroupName::parse(GROUP).unwrap()],
        quick(1),
    );
    let q = ContactLogQuery::for_contact(
        ContactId::parse(&contact).unwrap(),
        (now_ms - 60_000) * 1000,
        Some(now_ms * 1000),
        now_ms * 1000,
        10,
    );
    let found = logs.events_for_contact(&q).await.unwrap();
    assert_eq!(found.events.len(), 5);
    assert_eq!(found.duplicates, 1);
}

#[tokio::test]
async fn a_stream_whose_first_page_is_empty_still_reaches_its_later_events() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let fake = logs_fake(vec![("flow/a", flow("c-1", now_ms - 600_000, 120))]);
    fake.state.lock().unwrap().empty_pages = 4;
    let logs = AwsLogs::with_quota(
        &fake.sdk_config().await,
        vec![LogGroupName::parse(GROUP).unwrap()],
        quick(1),
    );
    let group = LogGroupName::parse(GROUP).unwrap();
    let stream = LogStreamName::parse("flow/a").unwrap();
    let mut token: Option<String> = None;
    let mut seen = 0;
    for _ in 0..10 {
        let page = logs
            .events(&group, &stream, token.as_deref())
            .await
            .unwrap();
        seen += page.events.len();
        match page.forward_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(seen, 120);
    let first = logs.events(&group, &stream, None).await.unwrap();
    assert_eq!(
        first.events.len(),
        50,
        "the empty first pages were followed"
    );
}

#[tokio::test]
async fn the_console_sends_cloudwatch_logs_requests_botocores_model_accepts() {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let contact = contact_id(4);
    let fake = logs_fake(vec![("flow/a", flow(&contact, now_ms - 60_000, 30))]);
    fake.state.lock().unwrap().empty_pages = 1;
    let group = LogGroupName::parse(GROUP).unwrap();
    let logs = AwsLogs::with_quota(&fake.sdk_config().await, vec![group.clone()], quick(1));
    logs.streams(&group, None).await.unwrap();
    let stream = LogStreamName::parse("flow/a").unwrap();
    let page = logs.events(&group, &stream, None).await.unwrap();
    logs.events(&group, &stream, page.forward_token.as_deref())
        .await
        .unwrap();
    let q = ContactLogQuery::for_contact(
        ContactId::parse(&contact).unwrap(),
        (now_ms - 60_000) * 1000,
        None,
        now_ms * 1000,
        10,
    );
    logs.events_for_contact(&q).await.unwrap();
    let sent = fake.state.lock().unwrap().requests.clone();
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = requests_file(&dir, &sent);
    let text = run_python(&python, "connect_model.py", &["--requests", "logs", &file]).await;
    assert!(
        text.contains("the console's logs requests match botocore's model"),
        "{text}"
    );
}

#[tokio::test]
async fn cloudwatch_throttling_past_the_retry_budget_is_throttled_and_within_it_answers() {
    let fake = logs_fake(vec![("flow/a", flow("c-1", 1_700_000_000_000, 3))]);
    let group = LogGroupName::parse(GROUP).unwrap();
    let logs = AwsLogs::with_quota(&fake.sdk_config().await, vec![group.clone()], quick(2));
    fake.state.lock().unwrap().throttle_next = 1;
    assert!(logs.streams(&group, None).await.is_ok());
    fake.state.lock().unwrap().throttle_next = 2;
    assert_eq!(
        logs.streams(&group, None).await.unwrap_err(),
        SourceError::Throttled
    );
}
