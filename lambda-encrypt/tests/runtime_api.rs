//! The real Lambda binary (real `lambda_runtime`) against a fake Lambda
//! Runtime API on loopback: what Lex sends goes in over HTTP, the answers and
//! the process's own log output are checked for plaintext.
//!
//! The ignored test `cold_start_and_peak_rss` is the start-up measurement:
//!     cargo test --release -p lambda-encrypt --test runtime_api -- --ignored --nocapture
//! (`CALLVAULT_LAMBDA_BIN=path` measures another build of the binary instead.)

mod common;

use std::time::{Duration, Instant};

use common::runtime::{read_logs, spawn_lambda, FakeRuntimeApi};
use common::{events_dir, field_context, TempKey, CANARY_CARD};
use lambda_encrypt::crypto::AlgorithmSuite;
use lambda_encrypt::envelope::Ciphertext;
use serde_json::Value;

#[tokio::test]
async fn the_binary_answers_lex_events_with_ciphertext_only() {
    let key = TempKey::new("runtime");
    let events = vec![
        std::fs::read(events_dir().join("valid-card.json")).unwrap(),
        std::fs::read(events_dir().join("malformed-body.json")).unwrap(),
        format!("{{\"inputTranscript\": \"{CANARY_CARD}").into_bytes(),
        std::fs::read(events_dir().join("generic-slot-card.json")).unwrap(),
    ];
    let api = FakeRuntimeApi::start(events);
    let logs_dir = tempfile::tempdir().unwrap();
    let mut child = spawn_lambda(
        &api,
        Some(&format!("raw-aes:{}", key.path.display())),
        logs_dir.path(),
        &[],
    );
    let posts = api.wait_for_posts(4, Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    let logs = read_logs(logs_dir.path());
    assert_eq!(
        posts.len(),
        4,
        "runtime posted {} answers; logs:\n{logs}",
        posts.len()
    );

    for (_, body, _) in &posts {
        let text = String::from_utf8_lossy(body);
        for secret in [CANARY_CARD, "4111111111111111", "four one one one"] {
            assert!(!text.contains(secret), "answer holds {secret}: {text}");
        }
    }
    for secret in [CANARY_CARD, "4111111111111111", "four one one one"] {
        assert!(!logs.contains(secret), "logs hold {secret}:\n{logs}");
    }

    assert!(posts[0].0.ends_with("/req-0000/response"), "{}", posts[0].0);
    let answer: Value = serde_json::from_slice(&posts[0].1).unwrap();
    let ct = answer["sessionState"]["sessionAttributes"]["creditcard"]
        .as_str()
        .unwrap();
    let ctx = field_context("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6", "creditcard");
    let crypto = key.crypto(AlgorithmSuite::CommittedSigned).await;
    let plain = crypto
        .decrypt(&Ciphertext::from_base64(ct).unwrap(), &ctx.to_expected())
        .await
        .unwrap();
    assert_eq!(plain.plaintext.expose_str(), Some("4111111111111111"));

    assert!(posts[1].0.ends_with("/req-0001/error"), "{}", posts[1].0);
    let err: Value = serde_json::from_slice(&posts[1].1).unwrap();
    assert_eq!(err["errorType"], "malformed_event");
    assert!(posts[2].0.ends_with("/req-0002/error"), "{}", posts[2].0);
    assert!(posts[3].0.ends_with("/req-0003/response"));

    // Every log line is JSON.
    for line in std::fs::read_to_string(logs_dir.path().join("stdout.log"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|_| panic!("not a JSON log line: {line}"));
    }
    assert!(logs.contains("\"outcome\":\"captured\""), "{logs}");
}

#[test]
fn a_missing_keyring_stops_the_function_at_init_without_a_panic() {
    let api = FakeRuntimeApi::start(Vec::new());
    let logs_dir = tempfile::tempdir().unwrap();
    let mut child = spawn_lambda(&api, None, logs_dir.path(), &[]);
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the function kept running"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success());
    let logs = read_logs(logs_dir.path());
    assert!(logs.contains("keyring_config"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
#[ignore = "measurement: run with --release --ignored --nocapture"]
fn cold_start_and_peak_rss() {
    let key = TempKey::new("coldstart");
    let event = std::fs::read(events_dir().join("valid-card.json")).unwrap();
    let mut first_answer = Vec::new();
    let mut peak_rss_kib = Vec::new();
    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    for suite in ["committed-signed", "committed-unsigned"] {
        first_answer.clear();
        peak_rss_kib.clear();
        for _ in 0..runs {
            // 50 events: peak RSS after warm use, not just after one answer.
            let api = FakeRuntimeApi::start(vec![event.clone(); 50]);
            let logs_dir = tempfile::tempdir().unwrap();
            let started = Instant::now();
            let keyring = format!("raw-aes:{}", key.path.display());
            let mut cmd_child = spawn_lambda(
                &api,
                Some(&keyring),
                logs_dir.path(),
                &[
                    ("CALLVAULT_ALGORITHM_SUITE", suite),
                    ("CALLVAULT_LOG_LEVEL", "info"),
                ],
            );
            let posts = api.wait_for_posts(50, Duration::from_secs(60));
            assert_eq!(posts.len(), 50);
            first_answer.push(posts[0].2.duration_since(started));
            let status =
                std::fs::read_to_string(format!("/proc/{}/status", cmd_child.id())).unwrap();
            let hwm = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap();
            peak_rss_kib.push(hwm);
            cmd_child.kill().unwrap();
            cmd_child.wait().unwrap();
        }
        first_answer.sort();
        peak_rss_kib.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{suite}: start-to-first-answer over {runs} cold starts: min {:.1} ms, median {:.1} ms, p90 {:.1} ms; peak RSS after 50 events: median {:.1} MiB, max {:.1} MiB",
            ms(first_answer[0]),
            ms(first_answer[runs / 2]),
            ms(first_answer[runs * 9 / 10]),
            peak_rss_kib[runs / 2] as f64 / 1024.0,
            peak_rss_kib[runs - 1] as f64 / 1024.0,
        );
    }
}
