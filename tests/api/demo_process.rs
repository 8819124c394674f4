//! The README's first command, as a real process: `callvault demo`. A reveal
//! through it leaves no plaintext in the process's own log output, and the
//! terminal shows the URL and passwords last, with no log lines.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use callvault::demo::{demo_card, demo_contact_id, LEAKED_DEMO_CARD};

use crate::helpers::*;

#[tokio::test]
async fn the_demo_serves_a_reveal_and_its_logs_hold_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("demo.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args([
            "demo",
            "--dir",
            dir.path().join("demo").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("CALLVAULT_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let mut lines = Vec::new();
    let (mut url, mut password) = (None, None);
    while url.is_none() || password.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("demo banner");
        if let Some(u) = line.strip_prefix("callvault demo: ") {
            url = Some(u.trim_end_matches('/').to_owned());
        }
        if line.trim_start().starts_with("supervisor") {
            password = line.split_whitespace().nth(2).map(str::to_owned);
        }
        lines.push(line);
        assert!(started.elapsed() < Duration::from_secs(60));
    }
    let (url, password) = (url.unwrap(), password.unwrap());
    let c = sign_in_at(&url, "sam", &password).await;
    let id = demo_contact_id(0);
    let html = c
        .get(format!("{url}/contacts/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(format!("{url}/contacts/{id}/decrypt"))
        .form(&[
            ("field", "creditcard"),
            ("reason", "demo check"),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    let r = follow_reveal(&url, &c, r).await;
    assert!(r.text().await.unwrap().shows(&demo_card(0)));
    let leak = c
        .get(format!(
            "{url}/logs/%2Faws%2Fconnect%2Fcallvault-demo/legacy-debug-flow%2Fleaked"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(leak.contains("Leak guard"));
    child.kill().unwrap();
    child.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
        lines.push(line);
    }
    // The terminal holds the banner only, URL and passwords last; the log
    // lines (the Lambda's and the console's) are in the demo's log file.
    assert!(
        lines.iter().all(|l| !l.trim_start().starts_with('{')),
        "no log line in the terminal: {lines:?}"
    );
    assert!(
        lines.last().unwrap().trim_start().starts_with("admin"),
        "the passwords come last: {lines:?}"
    );
    let stderr = std::fs::read_to_string(&log_path).unwrap();
    assert!(stderr.trim().is_empty(), "nothing on stderr: {stderr}");
    let file = std::fs::read_to_string(dir.path().join("demo").join("callvault.log")).unwrap();
    assert!(
        lines.iter().any(|l| l.contains("callvault.log")),
        "the banner says where the logs are"
    );
    let logs = lines.join("\n") + &stderr + &file;
    assert!(
        file.contains("\"path\":\"/contacts/"),
        "request log lines are in the log file: {file}"
    );
    for secret in [
        demo_card(0),
        LEAKED_DEMO_CARD.to_owned(),
        LEAKED_DEMO_CARD.replace(' ', ""),
    ] {
        assert!(!logs.contains(&secret), "the demo's logs hold {secret}");
    }
    assert_eq!(
        logs.matches(password.as_str()).count(),
        1,
        "the password is printed once, in the banner"
    );
}
