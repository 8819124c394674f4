//! The Connect fake is shaped like the real service: botocore builds each
//! request from its Connect model and parses each answer
//! (`tests/connect_model.py`).

use std::collections::BTreeMap;

use crate::connect_fake::{ConnectFake, FakeContact};
use crate::helpers::*;

const INSTANCE: &str = "11111111-2222-4333-8444-555555555555";
const CONTACT: &str = "aaaaaaaa-0000-4000-8000-000000000042";

#[tokio::test]
async fn the_connect_fake_answers_as_botocores_connect_model_says() {
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let fake = ConnectFake::start(
        INSTANCE,
        vec![FakeContact {
            id: CONTACT.into(),
            initial_contact_id: CONTACT.into(),
            channel: "VOICE".into(),
            initiated_secs: chrono::Utc::now().timestamp() as f64 - 60.0,
            attributes: BTreeMap::from([("creditcard_status".to_owned(), "captured".to_owned())]),
            agent_id: Some("agent-1".into()),
            queue_id: Some("queue-1".into()),
            customer_number: Some("+14155550123".into()),
            disconnect_reason: Some("CUSTOMER_DISCONNECT".into()),
            ..Default::default()
        }],
    );
    {
        let mut s = fake.state.lock().unwrap();
        s.flow_logs = true;
        s.throttle_next = 1;
        s.users = (0..5)
            .map(|i| (format!("user-{i}"), format!("agent.{i}")))
            .collect();
        s.queues = vec![
            ("queue-1".into(), "Billing".into(), "STANDARD"),
            ("queue-2".into(), "Support".into(), "STANDARD"),
            ("queue-3".into(), "Sales".into(), "STANDARD"),
            ("agent-q-1".into(), "agent.0".into(), "AGENT"),
        ];
        s.v2_bots = (0..30)
            .map(|i| format!("arn:aws:lex:us-east-1:123456789012:bot-alias/BOT{i:07}/ALIAS{i:05}"))
            .collect();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/connect_model.py");
    // Async: the fake runs on this test's runtime.
    let out = tokio::process::Command::new(python)
        .args([script, &fake.url, INSTANCE, CONTACT, "30", "5", "3"])
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("the Connect fake matches botocore's model"),
        "{text}"
    );
    // botocore put the ListBots members where the model says: the query string.
    let queries = fake.state.lock().unwrap().bot_queries.clone();
    assert!(
        queries
            .iter()
            .any(|q| q.contains("lexVersion=V2") && q.contains("maxResults=25")),
        "{queries:?}"
    );
    assert!(
        queries.iter().any(|q| q.contains("nextToken=bots25")),
        "{queries:?}"
    );
}
