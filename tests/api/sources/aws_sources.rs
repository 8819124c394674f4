//! The AWS adapters over HTTP: Amazon Connect against the wire-level fake,
//! CloudWatch Logs against moto (AWS_ENDPOINT_URL, set by scripts/test), and
//! the whole console end to end on top of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use callvault::auth::Role;
use callvault::aws::connect::AwsConnect;
use callvault::aws::logs::AwsLogs;
use callvault::clock::OffsetClock;
use callvault::config::Settings;
use callvault::sources::contacts::{Channel, ContactDirectory, ContactSearch};
use callvault::sources::logs::{LogGroupName, LogStore, LogStreamName};
use callvault::sources::SourceError;
use callvault::startup::{Application, Sources};
use lambda_encrypt::context::ContactId;
use reqwest::StatusCode;

use crate::connect_fake::{ConnectFake, FakeContact, Mode};
use crate::helpers::*;

const INSTANCE: &str = "11111111-2222-4333-8444-555555555555";
const CARD: &str = "4929871234567893";

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp() as f64
}

fn contact(i: usize) -> FakeContact {
    let id = format!("aaaaaaaa-0000-4000-8000-{i:012}");
    FakeContact {
        initial_contact_id: id.clone(),
        id,
        channel: if i.is_multiple_of(5) { "CHAT" } else { "VOICE" }.into(),
        initiated_secs: now_secs() - 60.0 * i as f64 - 30.0,
        attributes: BTreeMap::from([("language".to_owned(), "en-US".to_owned())]),
        ..Default::default()
    }
}

fn range() -> ContactSearch {
    let now = chrono::Utc::now().timestamp_micros();
    ContactSearch {
        from_us: now - 2 * 86_400_000_000,
        to_us: now + 86_400_000_000,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_connect_adapter_searches_pages_describes_and_reads_attributes() {
    let fake = ConnectFake::start(INSTANCE, (0..30).map(contact).collect());
    let connect = AwsConnect::new(&fake.sdk_config().await, INSTANCE);
    // Tokens belong to their search: the same criteria on the next page.
    let search = range();
    let page1 = connect.search(&search).await.unwrap();
    assert_eq!(page1.items.len(), 25);
    assert_eq!(page1.items[0].id.as_str(), contact(0).id, "newest first");
    let page2 = connect
        .search(&ContactSearch {
            next_token: page1.next_token.clone(),
            ..search.clone()
        })
        .await
        .unwrap();
    assert_eq!(page2.items.len(), 5);
    assert!(page2.next_token.is_none());
    let sent = fake.state.lock().unwrap().searches[0].clone();
    assert_eq!(sent["InstanceId"], INSTANCE);
    assert_eq!(sent["TimeRange"]["Type"], "INITIATION_TIMESTAMP");
    assert!(
        sent["TimeRange"]["StartTime"].is_number(),
        "epoch seconds: {sent}"
    );
    assert_eq!(sent["Sort"]["FieldName"], "INITIATION_TIMESTAMP");
    assert_eq!(sent["Sort"]["Order"], "DESCENDING");

    let chats = connect
        .search(&ContactSearch {
            channel: Some(Channel::Chat),
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(chats.items.len(), 6);
    assert!(chats.items.iter().all(|c| c.channel == "CHAT"));

    let id = ContactId::parse(&contact(7).id).unwrap();
    let one = connect
        .search(&ContactSearch {
            contact_id: Some(id.clone()),
            ..range()
        })
        .await
        .unwrap();
    assert_eq!(one.items.len(), 1);
    let described = connect.describe(&id).await.unwrap();
    assert_eq!(described.initial_contact_id.as_ref(), Some(&id));
    assert!(described.initiated_us.is_some());
    assert_eq!(connect.attributes(&id).await.unwrap()["language"], "en-US");
    let unknown = ContactId::parse("bbbbbbbb-0000-4000-8000-000000000000").unwrap();
    assert_eq!(
        connect.describe(&unknown).await.unwrap_err(),
        SourceError::NotFound
    );
}

#[tokio::test]
async fn connect_throttling_and_denial_become_typed_errors() {
    let fake = ConnectFake::start(INSTANCE, vec![contact(0)]);
    let connect = AwsConnect::new(&fake.sdk_config().await, INSTANCE);
    fake.set_mode(Mode::Throttle);
    assert_eq!(
        connect.search(&range()).await.unwrap_err(),
        SourceError::Throttled
    );
    fake.set_mode(Mode::Deny);
    let id = ContactId::parse(&contact(0).id).unwrap();
    assert_eq!(
        connect.describe(&id).await.unwrap_err(),
        SourceError::AccessDenied
    );
    // Nothing listening at all.
    let down = AwsConnect::new(
        &crate::connect_fake::sdk_config_for("http://127.0.0.1:9").await,
        INSTANCE,
    );
    assert!(matches!(
        down.search(&range()).await.unwrap_err(),
        SourceError::Unavailable(_)
    ));
}

/// A fresh log group in moto with `events` in one stream; the group's name.
async fn moto_group(sdk: &aws_config::SdkConfig, stream: &str, events: &[(i64, String)]) -> String {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let group = format!("/aws/connect/test-{}", uuid::Uuid::new_v4().simple());
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup on moto");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .unwrap();
    let batch: Vec<InputLogEvent> = events
        .iter()
        .map(|(ms, m)| {
            InputLogEvent::builder()
                .timestamp(*ms)
                .message(m)
                .build()
                .unwrap()
        })
        .collect();
    logs.put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .set_log_events(Some(batch))
        .send()
        .await
        .unwrap();
    group
}

#[tokio::test]
async fn the_logs_adapter_lists_pages_and_filters_against_moto() {
    if require_env("AWS_ENDPOINT_URL").is_none() {
        return;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let base = chrono::Utc::now().timestamp_millis() - 3_600_000;
    let events: Vec<(i64, String)> = (0..120)
        .map(|i| {
            let contact = if i % 2 == 0 { "contact-a" } else { "contact-b" };
            (
                base + i * 1000,
                serde_json::json!({"ContactId": contact, "n": i}).to_string(),
            )
        })
        .collect();
    let group = moto_group(&sdk, "flow/1", &events).await;
    let name = LogGroupName::parse(&group).unwrap();
    let logs = AwsLogs::new(&sdk, vec![name.clone()]);
    let streams = logs.streams(&name, None).await.unwrap();
    assert_eq!(streams.items.len(), 1);
    assert_eq!(streams.items[0].name, "flow/1");

    let stream = LogStreamName::parse("flow/1").unwrap();
    let page1 = logs.events(&name, &stream, None).await.unwrap();
    assert_eq!(page1.events.len(), 50);
    assert!(page1.events[0].message.contains("\"n\":0"));
    let page2 = logs
        .events(&name, &stream, page1.forward_token.as_deref())
        .await
        .unwrap();
    assert_eq!(page2.events.len(), 50);
    assert!(page2.events[0].message.contains("\"n\":50"));
    let back = logs
        .events(&name, &stream, page2.backward_token.as_deref())
        .await
        .unwrap();
    assert!(
        back.events[0].message.contains("\"n\":0"),
        "{:?}",
        back.events.first()
    );

    // moto ignores JSON filter patterns; the adapter checks each event itself.
    let query = callvault::sources::logs::ContactLogQuery::for_contact(
        ContactId::parse("contact-a").unwrap(),
        base * 1000,
        Some((base + 120_000) * 1000),
        chrono::Utc::now().timestamp_micros(),
        5,
    );
    let found = logs.events_for_contact(&query).await.unwrap();
    assert_eq!(found.events.len(), 60);
    assert!(found
        .events
        .iter()
        .all(|e| e.event.message.contains("contact-a")));

    let missing = LogStreamName::parse("no-such-stream").unwrap();
    assert_eq!(
        logs.events(&name, &missing, None).await.unwrap_err(),
        SourceError::NotFound
    );
    let other = LogGroupName::parse("/not/configured").unwrap();
    assert_eq!(
        logs.streams(&other, None).await.unwrap_err(),
        SourceError::NotFound
    );
}

#[tokio::test]
async fn end_to_end_over_the_aws_apis_only_ciphertext_is_shown_and_reveals_are_audited() {
    if require_env("AWS_ENDPOINT_URL").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (handler, key) = lambda_handler(dir.path()).await;
    let a = "aaaaaaaa-0000-4000-8000-00000000000a";
    let b = "aaaaaaaa-0000-4000-8000-00000000000b";
    // The Lambda captures contact A's card.
    let event = serde_json::json!({
        "invocationSource": "DialogCodeHook", "sessionId": "s",
        "sessionState": {"sessionAttributes": {"contactId": a},
          "intent": {"name": "CapturePaymentDetails", "slots": {"creditcard": {"value": {"interpretedValue": CARD}}, "zipcode": null}}}
    });
    let out = serde_json::to_value(handler.handle(event).await.unwrap()).unwrap();
    let ct = out["sessionState"]["sessionAttributes"]["creditcard"]
        .as_str()
        .unwrap()
        .to_owned();
    // Connect stores it as A's attribute; B holds a copy (moved ciphertext).
    let mut ca = contact(1);
    ca.id = a.into();
    ca.initial_contact_id = a.into();
    ca.attributes.insert("creditcard".into(), ct.clone());
    let mut cb = contact(2);
    cb.id = b.into();
    cb.initial_contact_id = b.into();
    cb.attributes.insert("creditcard".into(), ct.clone());
    let fake = ConnectFake::start(INSTANCE, vec![ca, cb]);
    // The flow log holds it too.
    let moto = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let flow = serde_json::json!({"ContactId": a, "ContactFlowModuleType": "SetAttributes", "Parameters": {"Key": "creditcard", "Value": ct}}).to_string();
    let group = moto_group(
        &moto,
        "flow/e2e",
        &[(chrono::Utc::now().timestamp_millis(), flow)],
    )
    .await;

    let mut settings = Settings::local(
        "127.0.0.1:0".parse().unwrap(),
        sqlite_url(&dir),
        dir.path().join("secrets"),
    );
    settings.cookie_secure = false;
    settings.keyring = Some(lambda_encrypt::keyring::KeyringSpec::RawAes { path: key });
    // The outage below must reach Connect: no contact cache.
    settings.aws.cache.ttl = std::time::Duration::ZERO;
    let sources = Sources {
        directory: Arc::new(AwsConnect::new(&fake.sdk_config().await, INSTANCE)),
        logs: Arc::new(AwsLogs::new(
            &moto,
            vec![LogGroupName::parse(&group).unwrap()],
        )),
    };
    let built = Application::build_with(settings, Arc::new(OffsetClock::default()), sources, None)
        .await
        .unwrap();
    let app = TestApp {
        address: format!("http://127.0.0.1:{}", built.port()),
        clock: Arc::new(OffsetClock::default()),
        state: built.state(),
        db_url: String::new(),
        secrets_dir: dir.path().join("secrets"),
        key_path: None,
        _dir: tempfile::tempdir().unwrap(),
    };
    tokio::spawn(built.run_until_stopped());

    let c = app.login_as(Role::Supervisor).await;
    let list = app.page(&c, "/contacts").await;
    assert!(list.contains(a) && list.contains(b));
    let page = app.page(&c, &format!("/contacts/{a}")).await;
    assert!(page.contains("badge\">encrypted") && !page.shows(CARD));
    let enc_group = group.replace('/', "%2F");
    let log_page = app.page(&c, &format!("/logs/{enc_group}/flow%2Fe2e")).await;
    assert!(
        log_page.contains("badge\">encrypted") && !log_page.shows(CARD),
        "{log_page}"
    );

    let r = app
        .post_form(
            &c,
            &format!("/contacts/{a}"),
            &format!("/contacts/{a}/decrypt"),
            &[("field", "creditcard"), ("reason", "dispute 9")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().shows(CARD));
    let row = app.last_audit("decrypt").await.unwrap();
    assert_eq!(
        (row.contact_id.as_str(), row.reason.as_str()),
        (a, "dispute 9")
    );

    let r = app
        .post_form(
            &c,
            &format!("/contacts/{b}"),
            &format!("/contacts/{b}/decrypt"),
            &[("field", "creditcard"), ("reason", "dispute 9")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r.text().await.unwrap().shows(CARD));
    assert_eq!(
        app.last_audit("decrypt_denied").await.unwrap().contact_id,
        b
    );
    assert_audit_free_of(&app, CARD).await;

    // An outage: a clear page and an audit row for the refused supervisor.
    fake.set_mode(Mode::Throttle);
    let r = c
        .get(app.url(&format!("/contacts/{a}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("throttling"));
    let row = app.last_audit("contact_view").await.unwrap();
    assert_eq!(row.outcome, "error:throttled");
    fake.set_mode(Mode::Deny);
    let r = c.get(app.url("/contacts")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    assert!(r.text().await.unwrap().contains("IAM"));
}
