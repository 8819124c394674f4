//! Audit log throughput: durable appends per second (SQLite and PostgreSQL)
//! and the time to verify a 1,000,000-row chain.
//!
//!     cargo bench --bench audit
//!     CALLVAULT_BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres cargo bench --bench audit
//!
//! Not criterion: these are throughput runs over a fixed amount of work.

use std::sync::Arc;
use std::time::Instant;

use callvault::audit::{Action, AuditEvent, AuditLog, RequestMeta};
use callvault::clock::SystemClock;
use callvault::db::Db;
use zeroize::Zeroizing;

fn event(i: usize) -> AuditEvent {
    let meta = RequestMeta {
        client_addr: "10.1.2.3".into(),
        user_agent: "Mozilla/5.0 (bench)".into(),
        request_id: uuid::Uuid::new_v4().to_string(),
    };
    AuditEvent::new(Action::Decrypt, "sam.supervisor", "supervisor", "ok", &meta)
        .contact("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6", "creditcard")
        .reason(&format!("customer dispute #{i}"))
}

async fn appends(name: &str, url: &str, writers: usize, per_writer: usize) {
    let db = Db::open(url).await.expect("open");
    let log = AuditLog::new(db, Zeroizing::new(vec![7u8; 32]), Arc::new(SystemClock));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                let t = Instant::now();
                log.append(event(w * per_writer + i)).await.expect("append");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("writer"));
    }
    let secs = started.elapsed().as_secs_f64();
    lat.sort();
    let n = lat.len();
    println!(
        "{name}: {writers} writer(s) x {per_writer} durable appends: {:.0} appends/s; latency p50 {:.2} ms, p99 {:.2} ms",
        n as f64 / secs,
        lat[n / 2].as_secs_f64() * 1e3,
        lat[n * 99 / 100].as_secs_f64() * 1e3
    );
    assert!(log.verify().await.expect("verify").ok());
}

async fn verify_million(name: &str, url: &str) {
    let db = Db::open(url).await.expect("open");
    let log = AuditLog::new(db, Zeroizing::new(vec![7u8; 32]), Arc::new(SystemClock));
    let rows: usize = std::env::var("CALLVAULT_BENCH_VERIFY_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let fill = Instant::now();
    for batch in 0..rows / 10_000 {
        log.append_many((0..10_000).map(|i| event(batch * 10_000 + i)).collect())
            .await
            .expect("fill");
    }
    println!(
        "{name}: filled {rows} rows in {:.1} s (batches of 10,000)",
        fill.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let report = log.verify().await.expect("verify");
    assert!(report.ok() && report.rows_checked == rows as u64);
    println!(
        "{name}: verify of {rows} rows: {:.2} s",
        started.elapsed().as_secs_f64()
    );
}

async fn fresh_pg(admin: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("callvault_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create db");
    format!(
        "{}/{name}",
        admin.rsplit_once('/').map_or(admin, |(b, _)| b)
    )
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes; nothing to run.
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = |f: &str| format!("sqlite://{}", dir.path().join(f).display());
    if std::env::var("CALLVAULT_BENCH_VERIFY_ONLY").is_ok() {
        verify_million("sqlite", &sqlite("c.db")).await;
        return;
    }
    appends("sqlite", &sqlite("a.db"), 1, 2000).await;
    appends("sqlite", &sqlite("b.db"), 8, 250).await;
    if let Ok(admin) = std::env::var("CALLVAULT_BENCH_POSTGRES") {
        appends("postgres", &fresh_pg(&admin).await, 1, 2000).await;
        appends("postgres", &fresh_pg(&admin).await, 8, 250).await;
        verify_million("postgres", &fresh_pg(&admin).await).await;
    }
    verify_million("sqlite", &sqlite("c.db")).await;
}
