//! The real Lambda binary (real `lambda_runtime`) against a fake Lambda
//! Runtime API on loopback: what Lex sends goes in over HTTP, the answers and
//! the process's own log output are checked for plaintext.
//!
//! The ignored test `cold_start_and_peak_rss` is the start-up measurement:
//!     cargo test --release -p lambda-encrypt --test runtime_api -- --ignored --nocapture
//! (`CALLVAULT_LAMBDA_BIN=path` measures another build of the binary instead.)

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{events_dir, field_context, TempKey, CANARY_CARD};
use lambda_encrypt::crypto::AlgorithmSuite;
use lambda_encrypt::envelope::Ciphertext;
use serde_json::Value;

#[derive(Default)]
struct State {
    events: VecDeque<(String, Vec<u8>)>,
    /// (path, body, when) of every POST the runtime made.
    posts: Vec<(String, Vec<u8>, Instant)>,
}

/// Speaks just enough of the Lambda Runtime API (2018-06-01) for one function.
struct FakeRuntimeApi {
    addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeRuntimeApi {
    fn start(events: Vec<Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        state.0.lock().unwrap().events = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("req-{i:04}"), e))
            .collect();
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { addr, state }
    }

    /// Waits until `n` POSTs have arrived.
    fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<(String, Vec<u8>, Instant)> {
        let (lock, cvar) = &*self.state;
        let guard = lock.lock().unwrap();
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |s| s.posts.len() < n)
            .unwrap();
        guard.posts.clone()
    }
}

fn serve(stream: TcpStream, state: &(Mutex<State>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_owned(),
        );
        let (lock, cvar) = state;
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = loop {
                if let Some(e) = lock.lock().unwrap().events.pop_front() {
                    break e;
                }
                // No more events: hold the long poll, as the real API does.
                std::thread::sleep(Duration::from_millis(50));
            };
            let (id, event) = next;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:callvault-encrypt\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nContent-Length: {}\r\n\r\n",
                event.len()
            );
            if out
                .write_all(head.as_bytes())
                .and_then(|_| out.write_all(&event))
                .is_err()
            {
                return;
            }
        } else {
            lock.lock()
                .unwrap()
                .posts
                .push((path, body, Instant::now()));
            cvar.notify_all();
            let reply = b"{\"status\":\"OK\"}";
            let head = format!("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", reply.len());
            if out
                .write_all(head.as_bytes())
                .and_then(|_| out.write_all(reply))
                .is_err()
            {
                return;
            }
        }
    }
}

fn spawn_lambda(
    api: &FakeRuntimeApi,
    keyring: Option<&str>,
    log_dir: &Path,
    extra_env: &[(&str, &str)],
) -> Child {
    // CALLVAULT_LAMBDA_BIN lets the measurement compare another build of the binary.
    let bin = std::env::var("CALLVAULT_LAMBDA_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lambda-encrypt").to_owned());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "callvault-encrypt")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("CALLVAULT_LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log_dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(log_dir.join("stderr.log")).unwrap());
    if let Some(k) = keyring {
        cmd.env("CALLVAULT_KEYRING", k);
    }
    cmd.envs(extra_env.iter().copied());
    cmd.spawn().unwrap()
}

fn read_logs(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stdout.log")).unwrap()
        + &std::fs::read_to_string(dir.join("stderr.log")).unwrap()
}

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
