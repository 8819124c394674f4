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
    // A caller who keyed the card through Connect's own encryption too.
    let keyed = (0..callvault::demo::DEMO_CONTACTS)
        .find(|i| callvault::demo::keypad::keyed_on_keypad(*i))
        .unwrap();
    let kid = demo_contact_id(keyed);
    let html = c
        .get(format!("{url}/contacts/{kid}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("keypad (Connect-encrypted), not bound to this contact"),
        "{html}"
    );
    let r = c
        .post(format!("{url}/contacts/{kid}/decrypt"))
        .form(&[
            ("field", callvault::demo::keypad::DEMO_KEYPAD_FIELD),
            ("reason", "demo keypad check"),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    let r = follow_reveal(&url, &c, r).await;
    let page = r.text().await.unwrap();
    assert!(page.shows(&demo_card(keyed)), "{page}");
    assert!(page.contains("keypad (Connect-encrypted)"), "{page}");
    assert!(
        lines.iter().any(|l| l.contains("Keypad path")),
        "the banner names the keypad contacts: {lines:?}"
    );
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
        demo_card(keyed),
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

/// Starts `callvault demo` in `dir` and returns the process and its banner
/// lines (up to the last password).
fn start_demo(dir: &std::path::Path) -> (std::process::Child, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--dir", "demo", "--listen", "127.0.0.1:0"])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let last = line.trim_start().starts_with("admin");
        lines.push(line);
        if last {
            break;
        }
    }
    (child, lines)
}

#[tokio::test]
async fn the_demos_printed_hint_runs_as_printed_from_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, lines) = start_demo(dir.path());
    let url = lines
        .iter()
        .find_map(|l| l.strip_prefix("callvault demo: "))
        .map(|u| u.trim_end_matches('/').to_owned())
        .expect("the URL");
    let hint = lines
        .iter()
        .map(|l| l.trim())
        .find(|l| l.starts_with("DATABASE_URL="))
        .unwrap_or_else(|| panic!("a command hint: {lines:?}"))
        .to_owned();
    assert!(hint.ends_with("user passwd sam"), "{hint}");
    // Pasted into another terminal, in another folder.
    let elsewhere = tempfile::tempdir().unwrap();
    let mut run = Command::new("sh")
        .args(["-c", &hint])
        .current_dir(elsewhere.path())
        .env_remove("DATABASE_URL")
        .env_remove("CALLVAULT_SECRETS_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write as _;
        let mut stdin = run.stdin.take().unwrap();
        stdin.write_all(b"a brand new demo password\n").unwrap();
    }
    let out = run.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the hint as printed: {hint}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "no stray database or secrets where the hint ran"
    );
    // It changed the running demo's user.
    let c = sign_in_at(&url, "sam", "a brand new demo password").await;
    let r = c.get(format!("{url}/contacts")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The database and its WAL and shared-memory files are the owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        for name in ["callvault.db", "callvault.db-wal", "callvault.db-shm"] {
            let path = dir.path().join("demo").join(name);
            if name == "callvault.db" || path.exists() {
                let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{name} is {mode:o}");
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn demo_offers_no_storage_flags_it_would_ignore() {
    let out = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for flag in ["--database-url", "--secrets-dir"] {
        assert!(!help.contains(flag), "demo --help offers {flag}: {help}");
    }
    let refused = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["demo", "--database-url", "sqlite://x.db", "--help"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "the flag is refused, not ignored"
    );
    // The commands that use them still take them.
    let user = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["user", "list", "--help"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&user.stdout).contains("--database-url"));
}
