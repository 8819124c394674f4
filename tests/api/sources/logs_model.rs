//! The CloudWatch Logs fake is shaped like the real service: botocore builds
//! each request from its `logs` model and parses each answer
//! (`tests/logs_model.py`); and the requests the console sends, to both
//! fakes, walk cleanly against botocore's input shapes.

use std::collections::BTreeMap;

use crate::helpers::*;
use crate::logs_fake::{FakeEvent, LogsFake};

const GROUP: &str = "/aws/connect/model-check";
const STREAM: &str = "2026/12/03/flow";

/// `python SCRIPT args...`: its output, asserted successful.
pub async fn run_python(python: &str, script: &str, args: &[&str]) -> String {
    let path = format!("{}/tests/{script}", env!("CARGO_MANIFEST_DIR"));
    // Async: the fakes run on this test's runtime.
    let out = tokio::process::Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

/// Writes `(operation, body)` pairs for `connect_model.py --requests`.
pub fn requests_file(dir: &tempfile::TempDir, sent: &[(String, serde_json::Value)]) -> String {
    let list: Vec<serde_json::Value> = sent
        .iter()
        .map(|(op, body)| serde_json::json!({"operation": op, "body": body}))
        .collect();
    let path = dir.path().join("requests.json");
    std::fs::write(&path, serde_json::to_vec(&list).unwrap()).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn the_cloudwatch_logs_fake_answers_as_botocores_logs_model_says() {
    let Some(python) = require_env("CALLVAULT_PYTHON") else {
        return;
    };
    let events: Vec<FakeEvent> = (0..120)
        .map(|i| FakeEvent {
            timestamp_ms: 1_700_000_000_000 + i * 1000,
            message: format!("{{\"ContactId\":\"c-{}\",\"n\":{i}}}", i % 3),
        })
        .collect();
    let fake = LogsFake::start(BTreeMap::from([(
        GROUP.to_owned(),
        BTreeMap::from([(STREAM.to_owned(), events)]),
    )]));
    {
        let mut s = fake.state.lock().unwrap();
        s.empty_pages = 2;
        s.filter_page = 40;
        s.throttle_next = 1;
    }
    let text = run_python(&python, "logs_model.py", &[&fake.url, GROUP, STREAM, "120"]).await;
    assert!(
        text.contains("the CloudWatch Logs fake matches botocore's model"),
        "{text}"
    );
}
