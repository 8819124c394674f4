//! A real `callvault demo` process under concurrent decrypt load,
//! killed with SIGKILL at random points. After every restart each plaintext
//! a client received has a committed audit row, the chain verifies, and the
//! outbox drains to CloudWatch Logs (moto).

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use callvault::demo::{demo_card, demo_contact_id, demo_zip};
use rand::Rng as _;

use crate::helpers::*;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the demo in `dir`; on the first start, returns sam's password.
fn start(dir: &Path, port: u16, group: &str) -> (Server, Option<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .arg("demo")
        .env("CALLVAULT_DEMO_DIR", dir)
        .env("CALLVAULT_LISTEN", format!("127.0.0.1:{port}"))
        .env("CALLVAULT_DECRYPT_BUDGET", "off")
        .env("CALLVAULT_AUDIT_LOG_GROUP", group)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start callvault demo");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // Serving means start-up is over, and with it the printing of passwords.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !healthy(port) {
        assert!(std::time::Instant::now() < deadline, "demo did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut password = None;
    while let Ok(line) = rx.recv_timeout(Duration::from_millis(300)) {
        if line.trim_start().starts_with("supervisor") {
            password = line.split_whitespace().last().map(str::to_owned);
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    (Server { child, base }, password)
}

/// `GET /healthz` answers 200.
fn healthy(port: u16) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// What a client saw: the audit row a revealed value names.
#[derive(Debug, Clone)]
struct Seen {
    seq: i64,
    contact: String,
    field: &'static str,
}

/// Signs in and decrypts until the server goes away; records each reveal.
async fn client_loop(base: String, password: String, n: usize, seen: Arc<Mutex<Vec<Seen>>>) {
    let c = client();
    let login = async {
        let html = c
            .get(format!("{base}/login"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let token = csrf_in_opt(&html)?;
        c.post(format!("{base}/login"))
            .form(&[
                ("username", "sam"),
                ("password", &password),
                ("csrf_token", &token),
            ])
            .send()
            .await
            .ok()
    };
    if login.await.is_none() {
        return;
    }
    let mut i = n;
    loop {
        i += 7;
        let k = i % 60;
        let contact = demo_contact_id(k);
        let (field, value) = if i.is_multiple_of(2) {
            ("creditcard", demo_card(k))
        } else {
            ("zipcode", demo_zip(k))
        };
        let Some((status, html, _)) =
            decrypt_attempt(&base, &c, &contact, field, "crash test").await
        else {
            return;
        };
        if html.contains(&value) {
            assert_eq!(status, reqwest::StatusCode::OK);
            let marker = "Recorded as audit row ";
            let start = html.find(marker).expect("the reveal names its audit row") + marker.len();
            let seq: i64 = html[start..].split(' ').next().unwrap().parse().unwrap();
            seen.lock().unwrap().push(Seen {
                seq,
                contact,
                field,
            });
        }
    }
}

async fn open_db(dir: &Path) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.join("callvault.db").display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_decrypt_load_loses_no_audit_row() {
    if require_env("AWS_ENDPOINT_URL").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let group = format!("callvault-crash-{}", uuid::Uuid::new_v4().simple());
    let port = free_port();
    let (mut server, password) = start(&demo_dir, port, &group);
    let password = password.expect("the first start prints the demo passwords");
    let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let mut rng = rand::rng();
    for round in 0..4 {
        let tasks: Vec<_> = (0..4)
            .map(|n| {
                tokio::spawn(client_loop(
                    server.base.clone(),
                    password.clone(),
                    n,
                    seen.clone(),
                ))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.random_range(400..2000))).await;
        // SIGKILL: no shutdown, no flush, no goodbye.
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let (s, _) = start(&demo_dir, port, &group);
        server = s;
        let db = open_db(&demo_dir).await;
        let seen_now = seen.lock().unwrap().clone();
        assert!(
            !seen_now.is_empty() || round == 0,
            "the load revealed values"
        );
        for s in &seen_now {
            let row: Option<(String, String, String, String)> = sqlx::query_as(
                "SELECT action, contact_id, field, outcome FROM audit_log WHERE seq = ?",
            )
            .bind(s.seq)
            .fetch_optional(&db)
            .await
            .unwrap();
            assert_eq!(
                row,
                Some((
                    "decrypt".into(),
                    s.contact.clone(),
                    s.field.into(),
                    "ok".into()
                )),
                "round {round}: a revealed value without its audit row: {s:?}"
            );
        }
        db.close().await;
    }
    let revealed = seen.lock().unwrap().len();
    assert!(revealed > 10, "only {revealed} reveals under load");
    // The outbox drains once the console runs again.
    let db = open_db(&demo_dir).await;
    eventually(60, "the outbox drains after the crashes", || async {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_outbox")
            .fetch_one(&db)
            .await
            .unwrap();
        n == 0
    })
    .await;
    db.close().await;
    drop(server);
    // The chain verifies.
    let out = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["audit", "verify"])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", demo_dir.join("callvault.db").display()),
        )
        .env("CALLVAULT_SECRETS_DIR", demo_dir.join("secrets"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    eprintln!("crash test: {revealed} reveals over 4 SIGKILLs; {text}");
}
