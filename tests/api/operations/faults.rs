//! The audit store fails under the console (disk full, read-only
//! database, killed connections). No plaintext leaves, the user sees a clear
//! error page, and the console recovers when the store does.

use std::process::Command;

use callvault::auth::Role;
use callvault::decrypt::policy::BudgetLimit;
use callvault::demo::{demo_card, demo_contact_id};
use reqwest::StatusCode;

use crate::helpers::*;

/// One decrypt of contact `k`'s card: (status, body, x-request-id).
async fn attempt(
    address: &str,
    c: &reqwest::Client,
    k: usize,
) -> Option<(StatusCode, String, String)> {
    decrypt_attempt(address, c, &demo_contact_id(k), "creditcard", "fault test").await
}

/// A revealed value must have its committed `decrypt` row (same request id);
/// a refusal must show no value and a clear error page.
async fn check_outcome(app: &TestApp, k: usize, status: StatusCode, body: &str, rid: &str) -> bool {
    let value = demo_card(k);
    if body.shows(&value) {
        assert_eq!(status, StatusCode::OK);
        let rows = app.audit_rows().await;
        assert!(
            rows.iter()
                .any(|r| r.action == "decrypt" && r.request_id == rid && r.outcome == "ok"),
            "value {k} revealed without a committed audit row"
        );
        true
    } else {
        // Refused: the audit store failed (5xx), or an earlier step did and
        // the form came back without its CSRF token (403), or sign-in lapsed.
        assert!(
            status.is_server_error()
                || status == StatusCode::FORBIDDEN
                || status == StatusCode::SEE_OTHER,
            "{status}: {body:.300}"
        );
        if status.is_server_error() {
            assert!(
                body.contains("Audit log unavailable") || body.contains("could not complete"),
                "a clear error page ({status}): {body:.500}"
            );
        }
        false
    }
}

/// The demo console on `database_url`, with no decrypt budget.
async fn fault_app(database_url: String) -> TestApp {
    spawn_demo_app_custom(
        |_, _| {},
        |s| {
            s.policy.budget = BudgetLimit(None);
            s.database_url = database_url.into();
        },
    )
    .await
}

/// Attempts contacts `ks`; how many were refused.
async fn refusals(app: &TestApp, c: &reqwest::Client, ks: std::ops::Range<usize>) -> usize {
    let mut refused = 0;
    for k in ks {
        if let Some((status, body, rid)) = attempt(&app.address, c, k).await {
            if !check_outcome(app, k, status, &body, &rid).await {
                refused += 1;
            }
        }
    }
    refused
}

/// Whether a reveal works again within about five seconds (connections
/// recover one by one as the pool retries them).
async fn recovers(app: &TestApp, c: &reqwest::Client, first: usize) -> bool {
    for n in 0..50 {
        let k = first + n % 40;
        if let Some((status, body, rid)) = attempt(&app.address, c, k).await {
            if check_outcome(app, k, status, &body, &rid).await {
                return true;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// A small tmpfs (root only); unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: std::path::PathBuf) -> Option<Self> {
        std::fs::create_dir_all(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Some(Self(path));
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("cannot mount a tmpfs for the disk-full test (needs root)");
        }
        eprintln!("SKIPPED: cannot mount a tmpfs for the disk-full test");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_full_disk_reveals_nothing_and_the_console_recovers() {
    let scratch = tempfile::tempdir().unwrap();
    let Some(mnt) = Tmpfs::mount(scratch.path().join("small")) else {
        return;
    };
    let db_path = mnt.0.join("callvault.db");
    let url = format!("sqlite://{}", db_path.display());
    let app = fault_app(url.clone()).await;
    let c = app.login_as(Role::Supervisor).await;
    let (status, body, rid) = attempt(&app.address, &c, 1).await.unwrap();
    assert!(
        check_outcome(&app, 1, status, &body, &rid).await,
        "works before the fault"
    );
    // Fill the disk.
    let filler = mnt.0.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).and_then(|_| f.sync_all()).is_ok() {}
        let _ = f.write_all(&[0u8; 512]);
    }
    assert!(
        refusals(&app, &c, 2..12).await > 0,
        "a full disk refused nothing"
    );
    // Space comes back: so does the console.
    std::fs::remove_file(&filler).unwrap();
    assert!(
        recovers(&app, &c, 12).await,
        "the console recovers when the disk does"
    );
    assert!(app.state.audit.verify().await.unwrap().ok());
}

async fn pg_admin(sql: &str) {
    use sqlx::Connection as _;
    let admin = std::env::var("CALLVAULT_TEST_POSTGRES").unwrap();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn kill_connections(db: &str) {
    pg_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
}

#[tokio::test]
async fn a_read_only_or_cut_off_postgresql_reveals_nothing_and_the_console_recovers() {
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let db = url.rsplit('/').next().unwrap().to_owned();
    let app = fault_app(url.clone()).await;
    let c = app.login_as(Role::Supervisor).await;
    let (status, body, rid) = attempt(&app.address, &c, 1).await.unwrap();
    assert!(check_outcome(&app, 1, status, &body, &rid).await);

    // Read-only database: every new connection refuses writes.
    pg_admin(&format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = on"
    ))
    .await;
    kill_connections(&db).await;
    assert_eq!(
        refusals(&app, &c, 2..6).await,
        4,
        "a read-only audit store reveals nothing"
    );
    pg_admin(&format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = off"
    ))
    .await;
    kill_connections(&db).await;
    assert!(
        recovers(&app, &c, 6).await,
        "writable again: the console recovers"
    );

    // Connections killed under concurrent load: each answer is either a
    // value with its committed row, or an error page without a value.
    let mut tasks = Vec::new();
    for n in 0..6 {
        let (c, address) = (c.clone(), app.address.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for i in 0..6 {
                let k = 12 + n * 6 + i;
                out.push((k, attempt(&address, &c, k).await));
            }
            out
        }));
    }
    for _ in 0..5 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        kill_connections(&db).await;
    }
    for t in tasks {
        for (k, result) in t.await.unwrap() {
            if let Some((status, body, rid)) = result {
                check_outcome(&app, k, status, &body, &rid).await;
            }
        }
    }
    let (status, body, rid) = attempt(&app.address, &c, 50).await.unwrap();
    assert!(
        check_outcome(&app, 50, status, &body, &rid).await,
        "recovered after the kills"
    );
    assert!(app.state.audit.verify().await.unwrap().ok());
}
