//! The console's pages over the Connect and CloudWatch Logs fakes:
//! paging kept on the server behind opaque handles, search criteria, the
//! contact's details, flow logs inside its window with a visible budget,
//! and the busy page.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use callvault::auth::Role;
use callvault::aws::connect::AwsConnect;
use callvault::aws::logs::AwsLogs;
use callvault::config::Settings;
use callvault::sources::logs::{LogGroupName, CONTACT_WINDOW_MARGIN_US};
use reqwest::StatusCode;
use serde_json::json;

use crate::connect_fake::{ConnectFake, FakeContact};
use crate::contacts::aws_paging::{contact, contact_id, quick, GROUP, INSTANCE};
use crate::helpers::*;
use crate::logs_fake::{FakeEvent, LogsFake};
use crate::sources::logs_model::{requests_file, run_python};

struct Stand {
    connect: ConnectFake,
    logs: LogsFake,
    app: TestApp,
}

async fn stand(
    contacts: Vec<FakeContact>,
    streams: BTreeMap<String, Vec<FakeEvent>>,
    settings_fn: impl FnOnce(&mut Settings),
) -> Stand {
    let connect = ConnectFake::start(INSTANCE, contacts);
    let logs = LogsFake::start(BTreeMap::from([(GROUP.to_owned(), streams)]));
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::local(
        "127.0.0.1:0".parse().unwrap(),
        sqlite_url(&dir),
        dir.path().join("secrets"),
    );
    settings.cookie_secure = false;
    settings_fn(&mut settings);
    let sources = callvault::startup::Sources {
        directory: Arc::new(AwsConnect::with_quota(
            &connect.sdk_config().await,
            INSTANCE,
            quick(3),
        )),
        logs: Arc::new(AwsLogs::with_quota(
            &logs.sdk_config().await,
            vec![LogGroupName::parse(GROUP).unwrap()],
            quick(3),
        )),
    };
    let app = spawn_with_sources(dir, settings, sources).await;
    Stand { connect, logs, app }
}

/// The `href` of the link whose text is `text`, unescaped.
fn link(html: &str, text: &str) -> Option<String> {
    let end = html.find(&format!("\">{text}</a>"))?;
    let start = html[..end].rfind("href=\"")? + 6;
    Some(html[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

fn rows(html: &str) -> Vec<String> {
    html.split("<tr><td><a href=\"/contacts/")
        .skip(1)
        .filter_map(|s| s.split('"').next().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn page_two_and_three_of_a_contact_search_work_with_20000_character_tokens_behind_short_links(
) {
    let s = stand((0..60).map(contact).collect(), BTreeMap::new(), |_| {}).await;
    let c = s.app.login_as(Role::Supervisor).await;
    let page1 = s.app.page(&c, "/contacts").await;
    assert!(page1.contains("Page 1 of 3 (60 contacts)"), "{page1}");
    assert_eq!(rows(&page1).len(), 25);
    let next = link(&page1, "More contacts").unwrap();
    assert!(next.len() < 80, "an opaque handle, not the token: {next}");
    let page2 = s.app.page(&c, &next).await;
    assert!(page2.contains("Page 2 of 3"), "{next}\n{page2}");
    let page3 = s
        .app
        .page(&c, &link(&page2, "More contacts").unwrap())
        .await;
    assert!(page3.contains("Page 3 of 3"));
    assert_eq!(rows(&page3).len(), 10);
    assert!(link(&page3, "More contacts").is_none());
    let back = s
        .app
        .page(&c, &link(&page3, "Previous contacts").unwrap())
        .await;
    assert_eq!(rows(&back), rows(&page2), "back to page 2");
    let mut seen: Vec<String> = [rows(&page1), rows(&page2), rows(&page3)].concat();
    seen.dedup();
    assert_eq!(seen, (0..60).map(contact_id).collect::<Vec<_>>());
    let sent = s.connect.state.lock().unwrap().searches.clone();
    assert!(sent
        .iter()
        .filter_map(|b| b["NextToken"].as_str())
        .all(|t| t.len() == 20_000));
    assert!(sent.iter().filter(|b| b["NextToken"].is_string()).count() >= 2);
}

#[tokio::test]
async fn a_forged_expired_or_foreign_paging_handle_gives_a_clear_error_and_an_audit_row() {
    let s = stand((0..60).map(contact).collect(), BTreeMap::new(), |s| {
        s.idle_timeout = Duration::from_secs(3600);
    })
    .await;
    let name = "sam-pager";
    s.app.add_user(name, Role::Supervisor).await;
    let sam = client();
    assert_signed_in(&s.app.login(&sam, name, PASSWORD).await);
    let page1 = s.app.page(&sam, "/contacts").await;
    let next = link(&page1, "More contacts").unwrap();

    let refused = |status: StatusCode, body: &str| {
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("That paging link is not valid"), "{body}");
    };
    for forged in [
        "/contacts?page=0123456789abcdef0123456789abcdef&n=1".to_owned(),
        "/contacts?page=%3Cscript%3E".to_owned(),
        format!("/contacts?page={}", "a".repeat(5000)),
        format!("{next}0"),
        next.replace("n=1", "n=7"),
        "/contacts?next=anything".to_owned(),
    ] {
        let r = sam.get(s.app.url(&forged)).send().await.unwrap();
        let status = r.status();
        refused(status, &r.text().await.unwrap());
        let row = s.app.last_audit("access_denied").await.unwrap();
        assert_eq!(row.outcome, "paging:unknown", "{forged}");
        assert_eq!(row.actor, name);
    }
    // The same user in another session, and another user.
    let other_session = client();
    assert_signed_in(&s.app.login(&other_session, name, PASSWORD).await);
    let kim = s.app.login_as(Role::Supervisor).await;
    for c in [&other_session, &kim] {
        let r = c.get(s.app.url(&next)).send().await.unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        refused(status, &body);
        assert!(
            !body.contains(&contact_id(25)),
            "nothing from the other session"
        );
        assert_eq!(
            s.app.last_audit("access_denied").await.unwrap().outcome,
            "paging:foreign"
        );
    }
    // Still good for its owner, until it expires.
    let page2 = s.app.page(&sam, &next).await;
    assert!(page2.contains("Page 2 of 3"));
    s.app.clock.advance(Duration::from_secs(16 * 60));
    let r = sam.get(s.app.url(&next)).send().await.unwrap();
    let status = r.status();
    refused(status, &r.text().await.unwrap());
    assert_eq!(
        s.app.last_audit("access_denied").await.unwrap().outcome,
        "paging:expired"
    );
}

#[tokio::test]
async fn search_by_agent_queue_initiation_method_and_a_configured_attribute_finds_the_right_contacts(
) {
    let s = stand((0..60).map(contact).collect(), BTreeMap::new(), |s| {
        s.aws.searchable_attributes = vec!["tier".into()];
    })
    .await;
    let c = s.app.login_as(Role::Supervisor).await;
    let all: Vec<FakeContact> = (0..60).map(contact).collect();
    let ids = |f: &dyn Fn(&FakeContact) -> bool| -> Vec<String> {
        all.iter().filter(|c| f(c)).map(|c| c.id.clone()).collect()
    };
    let html = s.app.page(&c, "/contacts?agent=agent-2").await;
    assert!(
        html.contains("name=\"attr.tier\""),
        "the configured attribute is offered"
    );
    assert_eq!(
        rows(&html),
        ids(&|c| c.agent_id.as_deref() == Some("agent-2"))
    );
    let html = s
        .app
        .page(&c, "/contacts?queue=queue-0&method=OUTBOUND")
        .await;
    assert_eq!(
        rows(&html),
        ids(&|c| c.queue_id.as_deref() == Some("queue-0") && c.method() == "OUTBOUND")
    );
    let html = s
        .app
        .page(&c, "/contacts?attr.tier=gold&channel=CHAT")
        .await;
    assert_eq!(
        rows(&html),
        ids(&|c| c.attributes["tier"] == "gold" && c.channel == "CHAT")
    );
    let html = s.app.page(&c, "/contacts?agent=no-such-agent").await;
    assert!(html.contains("No contacts match"));

    // Bad criteria: a clear refusal and an audit row naming the kind only.
    let long = "q".repeat(300);
    for (query, kind) in [
        (
            "/contacts?attr.creditcard=4111111111111111",
            "refused:attribute",
        ),
        (&*format!("/contacts?queue={long}"), "refused:ids"),
        ("/contacts?from=2026-01-01&to=2026-12-01", "refused:range"),
        ("/contacts?method=TELEPATHY", "refused:method"),
    ] {
        let r = c.get(s.app.url(query)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        let row = s.app.last_audit("contact_view").await.unwrap();
        assert_eq!(row.outcome, kind, "{query}");
        assert!(!format!("{row:?}").shows("4111111111111111"));
    }

    let sent: Vec<(String, serde_json::Value)> = s
        .connect
        .state
        .lock()
        .unwrap()
        .searches
        .iter()
        .map(|b| ("SearchContacts".to_owned(), b.clone()))
        .collect();
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
async fn an_exact_contact_id_is_found_whatever_the_date_range_and_its_page_shows_what_connect_describes(
) {
    let mut old = contact(3);
    old.initiated_secs -= 60.0 * 86_400.0;
    let s = stand(vec![old.clone()], BTreeMap::new(), |s| {
        s.aws.connect_access_url = Some("https://example.my.connect.aws".into());
    })
    .await;
    let c = s.app.login_as(Role::Supervisor).await;
    let r = c
        .get(s.app.url(&format!("/contacts?contact_id={}", old.id)))
        .send()
        .await
        .unwrap();
    assert_redirects_to(&r, &format!("/contacts/{}", old.id));
    let html = s.app.page(&c, &format!("/contacts/{}", old.id)).await;
    assert!(html.contains("agent-3") && html.contains("queue-1"));
    assert!(html.contains("CUSTOMER_DISCONNECT") && html.contains("4:00"));
    assert!(
        html.contains("0003") && !html.contains("+14155550003"),
        "masked"
    );
    assert!(html.contains(&format!(
        "https://example.my.connect.aws/contact-trace-records/details/{}",
        old.id
    )));
}

fn flow_events(contact: &str, start_ms: i64, n: usize) -> Vec<FakeEvent> {
    (0..n)
        .map(|i| FakeEvent {
            timestamp_ms: start_ms + i as i64 * 1000,
            message: json!({"ContactId": contact, "ContactFlowModuleType": "SetAttributes", "n": format!("step-{i:02}")})
                .to_string(),
        })
        .collect()
}

#[tokio::test]
async fn a_contacts_flow_logs_behind_empty_pages_are_shown_and_a_spent_budget_says_so_and_continues(
) {
    let c3 = contact(3);
    let start_ms = (c3.initiated_secs * 1000.0) as i64;
    let mut events = flow_events(&c3.id, start_ms, 10);
    // A repeated delivery, and an event of the contact a day later (outside its window).
    events.insert(3, events[2].clone());
    events.push(FakeEvent {
        timestamp_ms: start_ms + 86_400_000,
        message: json!({"ContactId": c3.id, "n": "next-day"}).to_string(),
    });
    let s = stand(
        vec![c3.clone()],
        BTreeMap::from([("flow/a".to_owned(), events)]),
        |s| s.aws.flow_log_pages = 3,
    )
    .await;
    {
        let mut l = s.logs.state.lock().unwrap();
        l.empty_pages = 2;
        l.filter_page = 2;
    }
    let c = s.app.login_as(Role::Supervisor).await;
    let mut url = format!("/logs/search?contact_id={}", c3.id);
    let mut shown = Vec::new();
    let mut rounds = 0;
    loop {
        let html = s.app.page(&c, &url).await;
        rounds += 1;
        shown.extend(
            (0..10)
                .map(|i| format!("step-{i:02}"))
                .filter(|step| html.contains(step.as_str())),
        );
        assert!(!html.contains("next-day"));
        match link(&html, "Continue the lookup") {
            Some(next) => {
                assert!(html.contains("More may exist"));
                url = next;
            }
            None => break,
        }
        assert!(rounds < 30);
    }
    assert!(rounds > 1, "the budget was spent");
    shown.sort();
    shown.dedup();
    assert_eq!(shown.len(), 10, "{shown:?}");
    let window_from = (start_ms * 1000 - CONTACT_WINDOW_MARGIN_US) / 1000;
    let window_to = ((start_ms + 240_000) * 1000 + CONTACT_WINDOW_MARGIN_US) / 1000;
    for b in s.logs.state.lock().unwrap().bodies("FilterLogEvents") {
        assert_eq!(
            (b["startTime"].as_i64(), b["endTime"].as_i64()),
            (Some(window_from), Some(window_to))
        );
    }
    let row = s.app.last_audit("log_view").await.unwrap();
    assert_eq!(row.contact_id, c3.id);
}

#[tokio::test]
async fn a_stream_whose_first_pages_are_empty_still_shows_its_events_and_pages_on() {
    let events = flow_events("c-1", 1_700_000_000_000, 80);
    let s = stand(
        Vec::new(),
        BTreeMap::from([("flow/a".to_owned(), events)]),
        |_| {},
    )
    .await;
    s.logs.state.lock().unwrap().empty_pages = 3;
    let c = s.app.login_as(Role::Supervisor).await;
    let group = GROUP.replace('/', "%2F");
    let page1 = s.app.page(&c, &format!("/logs/{group}/flow%2Fa")).await;
    assert!(
        page1.contains("step-00") && page1.contains("step-49"),
        "{page1}"
    );
    let newer = link(&page1, "Newer events").unwrap();
    assert!(newer.contains("?page=") && !newer.contains("f/"), "{newer}");
    let page2 = s.app.page(&c, &newer).await;
    assert!(page2.contains("step-50") && page2.contains("step-79"));
}

#[tokio::test]
async fn under_a_throttling_burst_contact_pages_answer_and_past_the_retry_budget_the_busy_page_shows(
) {
    let s = stand((0..3).map(contact).collect(), BTreeMap::new(), |_| {}).await;
    let c = s.app.login_as(Role::Supervisor).await;
    s.connect.throttle_next(2);
    let r = c
        .get(s.app.url(&format!("/contacts/{}", contact_id(1))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "retried within the budget");
    s.connect.throttle_next(100);
    let r = c
        .get(s.app.url(&format!("/contacts/{}", contact_id(2))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = r.text().await.unwrap();
    assert!(body.contains("Connect is busy, try again"), "{body}");
    assert!(!body.contains("ThrottlingException") && !body.contains("Rate exceeded"));
    assert_eq!(
        s.app.last_audit("contact_view").await.unwrap().outcome,
        "error:throttled"
    );
    // A contact already read is served from the cache meanwhile.
    let r = c
        .get(s.app.url(&format!("/contacts/{}", contact_id(1))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn flow_log_and_stream_handles_work_only_for_their_own_contact_and_stream() {
    let c3 = contact(3);
    let start_ms = (c3.initiated_secs * 1000.0) as i64;
    let s = stand(
        vec![c3.clone(), contact(4)],
        BTreeMap::from([
            ("flow/a".to_owned(), flow_events(&c3.id, start_ms, 120)),
            ("flow/b".to_owned(), flow_events(&c3.id, start_ms, 3)),
        ]),
        |s| s.aws.flow_log_pages = 1,
    )
    .await;
    s.logs.state.lock().unwrap().filter_page = 2;
    let c = s.app.login_as(Role::Supervisor).await;
    let html = s
        .app
        .page(&c, &format!("/logs/search?contact_id={}", c3.id))
        .await;
    let more = link(&html, "Continue the lookup").unwrap();
    let group = GROUP.replace('/', "%2F");
    let stream_a = s.app.page(&c, &format!("/logs/{group}/flow%2Fa")).await;
    let newer = link(&stream_a, "Newer events").unwrap();
    let handle = newer.split("page=").nth(1).unwrap().to_owned();
    for (url, outcome) in [
        // A flow-log handle for another contact, a stream handle elsewhere.
        (more.replace(&c3.id, &contact_id(4)), "paging:wrong_kind"),
        (
            format!("/logs/{group}/flow%2Fb?page={handle}"),
            "paging:wrong_kind",
        ),
        (
            format!("/logs/search?contact_id={}&more={handle}", c3.id),
            "paging:wrong_kind",
        ),
        (format!("/contacts?page={handle}"), "paging:wrong_kind"),
        (format!("/logs?page={handle}"), "paging:wrong_kind"),
        (
            format!("/logs/{group}/flow%2Fa?token=f%2F50%2F0"),
            "paging:unknown",
        ),
    ] {
        let r = c.get(s.app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("That paging link is not valid"));
        assert_eq!(
            s.app.last_audit("access_denied").await.unwrap().outcome,
            outcome,
            "{url}"
        );
    }
    // Each still works where it belongs.
    assert!(s.app.page(&c, &newer).await.contains("step-50"));
    assert!(s
        .app
        .page(&c, &more)
        .await
        .contains("Flow logs of a contact"));
}

/// Agents and queues are read by name (ListUsers, ListQueues of standard
/// queues, every page) once per cache lifetime, whatever the number of
/// page views; a console without the right to list them shows ids.
#[tokio::test]
async fn agents_and_queues_are_shown_by_name_read_once_for_many_views_and_ids_without_the_right() {
    let s = stand((0..3).map(contact).collect(), BTreeMap::new(), |_| {}).await;
    {
        let mut st = s.connect.state.lock().unwrap();
        // 1,200 agents: two pages of 1,000.
        st.users = (0..1200)
            .map(|i| (format!("agent-{i}"), format!("user.{i:04}")))
            .collect();
        st.queues = vec![
            ("queue-1".into(), "Billing".into(), "STANDARD"),
            ("queue-0".into(), "Support".into(), "STANDARD"),
        ];
    }
    let c = s.app.login_as(Role::Supervisor).await;
    let id = contact_id(1);
    for _ in 0..3 {
        let html = s.app.page(&c, &format!("/contacts/{id}")).await;
        assert!(html.contains("user.0001"), "{html}");
        assert!(
            html.contains("Support") || html.contains("Billing"),
            "{html}"
        );
        let list = s.app.page(&c, "/contacts").await;
        assert!(list.contains("user.0002"), "{list}");
    }
    assert_eq!(s.connect.calls_to("ListUsers"), 2, "two pages, once");
    assert_eq!(s.connect.calls_to("ListQueues"), 1);
    let queries = s.connect.state.lock().unwrap().list_queries.clone();
    assert!(
        queries
            .iter()
            .any(|q| q.starts_with("ListQueues?") && q.contains("queueTypes=STANDARD")),
        "{queries:?}"
    );
    assert!(
        queries
            .iter()
            .any(|q| q.contains("maxResults=1000") && q.contains("nextToken=users1000")),
        "{queries:?}"
    );

    // Without connect:ListUsers the pages still answer, with ids.
    let denied = stand((0..3).map(contact).collect(), BTreeMap::new(), |_| {}).await;
    denied.connect.state.lock().unwrap().denied = vec!["ListUsers", "ListQueues"];
    let c = denied.app.login_as(Role::Supervisor).await;
    let html = denied.app.page(&c, &format!("/contacts/{id}")).await;
    assert!(html.contains("agent-1"), "{html}");
}
