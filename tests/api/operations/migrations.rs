//! The SQLite and PostgreSQL migration folders stay in step: the same
//! changes under the same names, giving the same tables and columns.

use std::collections::{BTreeMap, BTreeSet};

use crate::helpers::*;

fn names(backend: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_migration_folders_hold_the_same_changes_under_the_same_names() {
    let sqlite = names("sqlite");
    let postgres = names("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres differ"
    );
    for name in &sqlite {
        let (stamp, rest) = name.split_once('_').unwrap();
        assert!(
            stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
        assert!(rest.ends_with(".sql"), "{name}");
    }
}

type Schema = BTreeMap<String, BTreeSet<String>>;

async fn sqlite_schema(url: &str) -> Schema {
    let db = callvault::db::Db::open(url).await.unwrap();
    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table,) in tables {
        let columns: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}')"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap();
        schema.insert(table, columns.into_iter().map(|(c,)| c).collect());
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let db = callvault::db::Db::open(url).await.unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name NOT LIKE '_sqlx%'",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column) in rows {
        schema.entry(table).or_default().insert(column);
    }
    schema
}

#[tokio::test]
async fn both_backends_end_with_the_same_tables_and_columns() {
    let Some(pg) = fresh_postgres_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = sqlite_schema(&sqlite_url(&dir)).await;
    let postgres = postgres_schema(&pg).await;
    assert!(sqlite.contains_key("audit_log"), "{sqlite:?}");
    assert_eq!(sqlite, postgres);
}
