//! The audit chain under tampering (done with SQL, as an attacker with
//! database access would) and under concurrent writers, on both backends.

use std::sync::Arc;

use callvault::audit::{Action, AuditEvent, AuditLog, RequestMeta, VerifyReport};
use callvault::auth::Role;
use callvault::clock::SystemClock;
use callvault::db::{Backend, Db};
use callvault::secrets::Secrets;
use reqwest::StatusCode;

use crate::helpers::*;

struct Store {
    db: Db,
    log: AuditLog,
    secrets_dir: std::path::PathBuf,
    url: String,
    _dir: tempfile::TempDir,
}

async fn store(backend: Backend) -> Option<Store> {
    let dir = tempfile::tempdir().unwrap();
    let url = match backend {
        Backend::Sqlite => sqlite_url(&dir),
        Backend::Postgres => fresh_postgres_database().await?,
    };
    let secrets_dir = dir.path().join("secrets");
    let db = Db::open(&url).await.unwrap();
    let secrets = Secrets::load_or_create(&secrets_dir).unwrap();
    let log = AuditLog::new(db.clone(), secrets.audit_key.clone(), Arc::new(SystemClock));
    Some(Store {
        db,
        log,
        secrets_dir,
        url,
        _dir: dir,
    })
}

async fn append_n(log: &AuditLog, n: usize) {
    for i in 0..n {
        let ev = AuditEvent::new(
            Action::ContactView,
            &format!("user{i}"),
            "supervisor",
            "ok",
            &RequestMeta::default(),
        )
        .contact("c-1", "creditcard")
        .reason("checking a dispute");
        log.append(ev).await.unwrap();
    }
}

async fn sql(db: &Db, statement: &str) {
    sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
        .execute(&db.pool)
        .await
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
}

/// What an attacker with database access does first: drop the append-only
/// triggers and the sequence-number constraints (on SQLite, by copying the
/// table into one without them, as `CREATE TABLE ... AS SELECT` does).
async fn drop_append_only_triggers(db: &Db) {
    match db.backend {
        Backend::Sqlite => {
            sql(db, "DROP TRIGGER audit_log_no_update").await;
            sql(db, "DROP TRIGGER audit_log_no_delete").await;
            // On one connection: the swap must not straddle two.
            let mut conn = db.pool.acquire().await.unwrap();
            for st in [
                "CREATE TABLE audit_log_weak AS SELECT * FROM audit_log",
                "DROP TABLE audit_log",
                "ALTER TABLE audit_log_weak RENAME TO audit_log",
            ] {
                sqlx::query(st)
                    .execute(&mut *conn)
                    .await
                    .unwrap_or_else(|e| panic!("{st}: {e}"));
            }
        }
        Backend::Postgres => {
            sql(db, "DROP TRIGGER audit_log_no_update_delete ON audit_log").await;
            sql(
                db,
                "ALTER TABLE audit_log DROP CONSTRAINT audit_log_seq_in_chain",
            )
            .await;
        }
    }
}

/// Row 20's columns under a forged sequence number (an SQL expression).
fn forged_row(seq: &str) -> String {
    format!(
        "INSERT INTO audit_log SELECT {seq}, ts_us, 'mallory', role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, detail, hash, hash, case_ref, initial_contact_id FROM audit_log WHERE seq = 20"
    )
}

async fn forged_rows_fail_verification(backend: Backend) {
    let mut cases = vec![("i64::MAX", "9223372036854775807")];
    if backend == Backend::Sqlite {
        // PostgreSQL's bigint primary key cannot hold these at all.
        cases.extend([
            ("NULL", "NULL"),
            ("REAL", "7.5"),
            ("REAL equal to a free integer", "21.0"),
            ("TEXT", "'21'"),
            ("TEXT, not a number", "'x'"),
        ]);
    }
    for (name, seq) in cases {
        let Some(s) = store(backend).await else {
            return;
        };
        append_n(&s.log, 20).await;
        drop_append_only_triggers(&s.db).await;
        sql(&s.db, &forged_row(seq)).await;
        let report = s.log.verify().await.unwrap();
        assert!(
            !report.ok(),
            "{backend:?}: a forged row at seq {name} passed: {report:?}"
        );
    }
}

#[tokio::test]
async fn forged_rows_at_null_max_real_and_text_sequence_numbers_fail_verification_on_sqlite() {
    forged_rows_fail_verification(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_forged_row_at_i64_max_fails_verification_on_postgres() {
    forged_rows_fail_verification(Backend::Postgres).await;
}

/// Verify reads SQLite in batches of 1,000 rows per range: a chain longer
/// than that verifies whole, and tampering just past a batch's end is named.
#[tokio::test]
async fn tampering_past_the_first_verify_batch_is_detected() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let cases: [(&str, &str, Option<i64>); 3] = [
            (
                "nothing (on the attacker's copy of the table)",
                "SELECT 1",
                None,
            ),
            (
                "edit the first row of a second batch",
                "UPDATE audit_log SET reason = 'x' WHERE seq = 1001",
                Some(1001),
            ),
            (
                "delete it",
                "DELETE FROM audit_log WHERE seq = 1001",
                Some(1002),
            ),
        ];
        for (name, statement, expected) in cases {
            let Some(s) = store(backend).await else {
                return;
            };
            let events = (0..4_500)
                .map(|i| {
                    AuditEvent::new(
                        Action::ContactView,
                        &format!("user{i}"),
                        "supervisor",
                        "ok",
                        &RequestMeta::default(),
                    )
                })
                .collect();
            s.log.append_many(events).await.unwrap();
            let whole = s.log.verify().await.unwrap();
            assert!(
                whole.ok() && whole.rows_checked == 4_500,
                "{backend:?}: {whole:?}"
            );
            drop_append_only_triggers(&s.db).await;
            sql(&s.db, statement).await;
            let report = s.log.verify().await.unwrap();
            match expected {
                None => assert!(
                    report.ok() && report.rows_checked == 4_500,
                    "{backend:?}: {report:?}"
                ),
                Some(seq) => assert_eq!(bad_at(&report), seq, "{backend:?}: {name}: {report:?}"),
            }
        }
    }
}

/// SQLite keeps any value in any column of a rebuilt table: a column that
/// no longer holds its type names its row (and is not an error).
#[tokio::test]
async fn a_column_of_the_wrong_type_names_its_row_on_sqlite() {
    let cases = [
        (
            "a NULL text column",
            "UPDATE audit_log SET detail = NULL WHERE seq = 5",
        ),
        (
            "a reason stored as a BLOB of the same bytes",
            "UPDATE audit_log SET reason = CAST(reason AS BLOB) WHERE seq = 5",
        ),
        (
            "a NULL timestamp",
            "UPDATE audit_log SET ts_us = NULL WHERE seq = 5",
        ),
        (
            "a timestamp with text after it",
            "UPDATE audit_log SET ts_us = ts_us || 'x' WHERE seq = 5",
        ),
    ];
    for (name, statement) in cases {
        let Some(s) = store(Backend::Sqlite).await else {
            return;
        };
        append_n(&s.log, 20).await;
        drop_append_only_triggers(&s.db).await;
        sql(&s.db, statement).await;
        let report = s.log.verify().await.unwrap();
        assert_eq!(bad_at(&report), 5, "{name}: {report:?}");
    }
}

#[tokio::test]
async fn appends_after_a_forged_row_at_i64_max_fail_cleanly_without_wrapping() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(s) = store(backend).await else {
            continue;
        };
        append_n(&s.log, 20).await;
        drop_append_only_triggers(&s.db).await;
        sql(&s.db, &forged_row("9223372036854775807")).await;
        let report = s.log.verify().await.unwrap();
        assert_eq!(bad_at(&report), i64::MAX, "{backend:?}: {report:?}");
        assert!(report
            .first_bad
            .unwrap()
            .problem
            .contains("expected row 21"));
        let err = s
            .log
            .append(AuditEvent::new(
                Action::Login,
                "sam",
                "supervisor",
                "ok",
                &RequestMeta::default(),
            ))
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("no sequence number follows"),
            "{backend:?}: {err}"
        );
        let (wrapped,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE seq < 1")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
        assert_eq!(wrapped, 0, "{backend:?}: an append wrapped around");
    }
}

#[tokio::test]
async fn the_schema_refuses_sequence_numbers_outside_the_chain() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(s) = store(backend).await else {
            continue;
        };
        append_n(&s.log, 20).await;
        let mut refused = vec!["9223372036854775807", "0", "-1", "NULL"];
        if backend == Backend::Sqlite {
            refused = vec!["9223372036854775807", "0", "-1", "7.5", "'x'"];
        }
        for seq in refused {
            let result = sqlx::query(sqlx::AssertSqlSafe(forged_row(seq)))
                .execute(&s.db.pool)
                .await;
            assert!(result.is_err(), "{backend:?}: seq {seq} was stored");
        }
        if backend == Backend::Sqlite {
            // SQLite numbers a NULL rowid itself: the row joins the chain,
            // where its hash gives it away.
            let stored = sqlx::query(sqlx::AssertSqlSafe(forged_row("NULL")))
                .execute(&s.db.pool)
                .await;
            if stored.is_ok() {
                assert_eq!(bad_at(&s.log.verify().await.unwrap()), 21);
            }
        }
    }
}

fn bad_at(report: &VerifyReport) -> i64 {
    report
        .first_bad
        .as_ref()
        .map(|b| b.seq)
        .unwrap_or_else(|| panic!("tampering went unnoticed: {report:?}"))
}

async fn tamper_cases(backend: Backend) {
    type Case = (&'static str, &'static [&'static str], i64);
    let cases: [Case; 9] = [
        ("delete the first row", &["DELETE FROM audit_log WHERE seq = 1"], 2),
        ("delete a row where a parallel scan range begins", &["DELETE FROM audit_log WHERE seq = 11"], 12),
        ("edit the newest row", &["UPDATE audit_log SET actor = 'x' WHERE seq = 20"], 20),
        (
            "insert a row before the first",
            &["INSERT INTO audit_log SELECT 0, ts_us, 'mallory', role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, detail, prev_hash, hash, case_ref, initial_contact_id FROM audit_log WHERE seq = 1"],
            0,
        ),
        ("edit a reason", &["UPDATE audit_log SET reason = 'nothing to see' WHERE seq = 7"], 7),
        ("delete a row", &["DELETE FROM audit_log WHERE seq = 7"], 8),
        (
            "reorder two rows",
            &[
                "UPDATE audit_log SET seq = -1 WHERE seq = 7",
                "UPDATE audit_log SET seq = 7 WHERE seq = 8",
                "UPDATE audit_log SET seq = 8 WHERE seq = -1",
            ],
            7,
        ),
        (
            "insert a forged row in the middle",
            &[
                "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 7",
                "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1007",
                "INSERT INTO audit_log SELECT 7, ts_us, 'mallory', role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, detail, hash, hash, case_ref, initial_contact_id FROM audit_log WHERE seq = 6",
            ],
            7,
        ),
        (
            "append a forged row",
            &["INSERT INTO audit_log SELECT 21, ts_us, 'mallory', role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, detail, hash, hash, case_ref, initial_contact_id FROM audit_log WHERE seq = 20"],
            21,
        ),
    ];
    for (name, statements, expected) in cases {
        let Some(s) = store(backend).await else {
            return;
        };
        append_n(&s.log, 20).await;
        assert!(s.log.verify().await.unwrap().ok());
        drop_append_only_triggers(&s.db).await;
        for st in statements {
            sql(&s.db, st).await;
        }
        let report = s.log.verify().await.unwrap();
        assert_eq!(bad_at(&report), expected, "{backend:?}: {name}: {report:?}");
    }
}

#[tokio::test]
async fn tampering_is_detected_on_sqlite() {
    tamper_cases(Backend::Sqlite).await;
}

#[tokio::test]
async fn tampering_is_detected_on_postgres() {
    tamper_cases(Backend::Postgres).await;
}

#[tokio::test]
async fn the_table_refuses_updates_and_deletes() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(s) = store(backend).await else {
            continue;
        };
        append_n(&s.log, 2).await;
        for st in [
            "UPDATE audit_log SET actor = 'x' WHERE seq = 1",
            "DELETE FROM audit_log WHERE seq = 1",
        ] {
            let err = sqlx::query(st).execute(&s.db.pool).await.unwrap_err();
            assert!(
                err.to_string().contains("append-only"),
                "{backend:?}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn the_cli_exits_non_zero_and_names_the_first_bad_row() {
    let Some(s) = store(Backend::Sqlite).await else {
        return;
    };
    append_n(&s.log, 10).await;
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(["audit", "verify"])
            .env("DATABASE_URL", &s.url)
            .env("CALLVAULT_SECRETS_DIR", &s.secrets_dir)
            .output()
            .unwrap()
    };
    let ok = run();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("10 rows checked"));
    drop_append_only_triggers(&s.db).await;
    sql(
        &s.db,
        "UPDATE audit_log SET outcome = 'denied' WHERE seq = 4",
    )
    .await;
    let bad = run();
    assert_eq!(bad.status.code(), Some(1));
    let out = String::from_utf8_lossy(&bad.stdout);
    assert!(out.contains("BROKEN at row 4"), "{out}");
}

#[tokio::test]
async fn the_verify_page_shows_a_broken_chain() {
    let app = spawn_app().await;
    let c = app.login_as(Role::Auditor).await; // row 1
    c.get(app.url("/audit")).send().await.unwrap(); // row 2
    c.get(app.url("/audit")).send().await.unwrap(); // row 3
    drop_append_only_triggers(&app.state.db).await;
    sql(&app.state.db, "DELETE FROM audit_log WHERE seq = 2").await;
    let r = app.post_form(&c, "/audit", "/audit/verify", &[]).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Chain broken at row 3"), "{html}");
    assert_eq!(
        app.last_audit("audit_verify").await.unwrap().outcome,
        "broken"
    );
}

async fn concurrent_writers(backend: Backend) {
    let Some(s) = store(backend).await else {
        return;
    };
    let mut tasks = Vec::new();
    for w in 0..8 {
        // Each writer has its own pool: as separate processes would.
        let db = Db::open(&s.url).await.unwrap();
        let key = Secrets::load_or_create(&s.secrets_dir)
            .unwrap()
            .audit_key
            .clone();
        let log = AuditLog::new(db, key, Arc::new(SystemClock));
        tasks.push(tokio::spawn(async move {
            for i in 0..500 {
                let ev = AuditEvent::new(
                    Action::Decrypt,
                    &format!("writer{w}"),
                    "supervisor",
                    "ok",
                    &RequestMeta::default(),
                )
                .detail(format!("append {i}"));
                log.append(ev).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let report = s.log.verify().await.unwrap();
    assert!(report.ok(), "{backend:?}: {report:?}");
    assert_eq!(report.rows_checked, 4000);
    assert_eq!(report.head_seq, 4000);
    let (n, max): (i64, i64) = sqlx::query_as("SELECT COUNT(*), MAX(seq) FROM audit_log")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!((n, max), (4000, 4000), "no gaps, no duplicates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_keep_one_gap_free_chain_on_sqlite() {
    concurrent_writers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_writers_keep_one_gap_free_chain_on_postgres() {
    concurrent_writers(Backend::Postgres).await;
}

#[tokio::test]
async fn when_the_audit_store_refuses_writes_nobody_signs_in() {
    let app = spawn_app().await;
    app.add_user("sam", Role::Auditor).await;
    sql(
        &app.state.db,
        "CREATE TRIGGER audit_log_full BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
    )
    .await;
    let c = client();
    let r = app.login(&c, "sam", PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.text().await.unwrap().contains("Audit log unavailable"));
    assert_sent_to_sign_in(&c.get(app.url("/audit")).send().await.unwrap());
    // Recovery: once the store takes writes again, sign-in works.
    sql(&app.state.db, "DROP TRIGGER audit_log_full").await;
    assert_signed_in(&app.login(&c, "sam", PASSWORD).await);
}

/// The case reference and the initial contact id are in the
/// chain once set, and rows without them keep the bytes they always had.
async fn new_columns_are_chained(backend: Backend) {
    use hmac::{Hmac, Mac};
    let Some(s) = store(backend).await else {
        return;
    };
    // Rows of the first chain layout (neither column set) and rows with them.
    append_n(&s.log, 3).await;
    for i in 0..3 {
        let ev = AuditEvent::new(
            Action::Decrypt,
            "sam",
            "supervisor",
            "ok",
            &RequestMeta::default(),
        )
        .contact(&format!("leg-{i}"), "creditcard")
        .reason("chargeback")
        .case_ref(&format!("CASE-{i}"))
        .initial_contact(&format!("initial-{i}"));
        s.log.append(ev).await.unwrap();
    }
    assert!(s.log.verify().await.unwrap().ok());
    // An old-format row's hash is the HMAC of the v1 layout, recomputed
    // here by hand from its columns, nothing of the new encoding involved.
    let secrets = Secrets::load_or_create(&s.secrets_dir).unwrap();
    let row = s.log.row(2).await.unwrap().unwrap();
    assert_eq!(
        (row.case_ref.as_str(), row.initial_contact_id.as_str()),
        ("", "")
    );
    let mut v1 = b"callvault-audit-v1".to_vec();
    v1.extend(row.seq.to_be_bytes());
    v1.extend(row.ts_us.to_be_bytes());
    for text in [
        &row.actor,
        &row.role,
        &row.action,
        &row.contact_id,
        &row.field,
        &row.reason,
        &row.outcome,
        &row.client_addr,
        &row.user_agent,
        &row.request_id,
        &row.detail,
    ] {
        v1.extend((text.len() as u32).to_be_bytes());
        v1.extend(text.as_bytes());
    }
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secrets.audit_key).unwrap();
    mac.update(row.prev_hash.as_bytes());
    mac.update(&v1);
    assert_eq!(hex::encode(mac.finalize().into_bytes()), row.hash);
    let revealed = s.log.row(5).await.unwrap().unwrap();
    assert_eq!(revealed.case_ref, "CASE-1");
    assert_eq!(revealed.initial_contact_id, "initial-1");

    type Case = (&'static str, &'static str, i64);
    let cases: [Case; 5] = [
        ("edit a case reference", "UPDATE audit_log SET case_ref = 'CASE-9' WHERE seq = 5", 5),
        ("erase a case reference", "UPDATE audit_log SET case_ref = '' WHERE seq = 4", 4),
        ("edit an initial contact id", "UPDATE audit_log SET initial_contact_id = 'other' WHERE seq = 6", 6),
        ("add a case reference to an old row", "UPDATE audit_log SET case_ref = 'CASE-0' WHERE seq = 2", 2),
        (
            "swap the two columns",
            "UPDATE audit_log SET case_ref = initial_contact_id, initial_contact_id = case_ref WHERE seq = 5",
            5,
        ),
    ];
    for (name, statement, expected) in cases {
        let Some(t) = store(backend).await else {
            return;
        };
        append_n(&t.log, 3).await;
        for i in 0..3 {
            let ev = AuditEvent::new(
                Action::Decrypt,
                "sam",
                "supervisor",
                "ok",
                &RequestMeta::default(),
            )
            .case_ref(&format!("CASE-{i}"))
            .initial_contact(&format!("initial-{i}"));
            t.log.append(ev).await.unwrap();
        }
        assert!(t.log.verify().await.unwrap().ok());
        drop_append_only_triggers(&t.db).await;
        sql(&t.db, statement).await;
        let report = t.log.verify().await.unwrap();
        assert_eq!(bad_at(&report), expected, "{backend:?}: {name}: {report:?}");
    }
    if backend == Backend::Sqlite {
        // The fast path's type checks cover the new columns too.
        let Some(t) = store(backend).await else {
            return;
        };
        append_n(&t.log, 5).await;
        drop_append_only_triggers(&t.db).await;
        sql(&t.db, "UPDATE audit_log SET case_ref = NULL WHERE seq = 3").await;
        let report = t.log.verify().await.unwrap();
        assert_eq!(bad_at(&report), 3, "{report:?}");
        assert!(
            report.first_bad.unwrap().problem.contains("well-formed"),
            "named as a malformed row"
        );
    }
}

#[tokio::test]
async fn case_references_and_initial_contact_ids_are_chained_on_sqlite() {
    new_columns_are_chained(Backend::Sqlite).await;
}

#[tokio::test]
async fn case_references_and_initial_contact_ids_are_chained_on_postgres() {
    new_columns_are_chained(Backend::Postgres).await;
}

#[tokio::test]
async fn overlong_and_control_laden_case_references_are_cleaned_and_capped() {
    let Some(s) = store(Backend::Sqlite).await else {
        return;
    };
    let row = s
        .log
        .append(
            AuditEvent::new(
                Action::Decrypt,
                "sam",
                "supervisor",
                "ok",
                &RequestMeta::default(),
            )
            .case_ref(&format!("A\nB\u{0}{}", "c".repeat(200)))
            .initial_contact(&"i".repeat(300)),
        )
        .await
        .unwrap();
    assert_eq!(row.case_ref.chars().count(), 64);
    assert!(row.case_ref.starts_with("ABccc"));
    assert_eq!(row.initial_contact_id.chars().count(), 128);
    assert!(s.log.verify().await.unwrap().ok());
}
