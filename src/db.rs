//! The database: SQLite (embedded default) or PostgreSQL, one SQL dialect
//! through `sqlx::Any` (`$N` placeholders work on both), migrations per backend.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL must start with sqlite: or postgres:")]
    UnsupportedUrl,
    #[error("cannot open the database")]
    Connect(#[source] sqlx::Error),
    #[error("cannot apply database migrations")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

/// `DATABASE_URL`: its password never shows in Debug output (settings,
/// `--help`, panics); reading it is an explicit `as_str`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for DatabaseUrl {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::ops::Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    /// `postgres://user:***@host/db`: the scheme, user and host stay.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.0.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((who, host)) => {
                    let user = who.split_once(':').map_or(who, |(u, _)| u);
                    format!("{scheme}://{user}:***@{host}")
                }
                None => self.0.clone(),
            },
            None => "***".to_owned(),
        };
        write!(f, "{shown:?}")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
    /// A native SQLite pool for long scans (audit verify): `Any` converts
    /// every value of every row, which triples the cost of a million-row scan.
    pub sqlite_scan: Option<sqlx::SqlitePool>,
}

/// An empty file readable and writable by its owner only (0600).
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

impl Db {
    /// Opens (creating a SQLite file if absent) without migrating.
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl);
        };
        let mut sqlite_scan = None;
        let pool = match backend {
            Backend::Sqlite => {
                // Create the file if absent; WAL with synchronous=FULL makes
                // every commit durable (the audit log depends on it).
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(DbError::Connect)?
                    .create_if_missing(true);
                let path = opts.get_filename().to_owned();
                if path.as_os_str() != ":memory:" && !path.exists() {
                    // Owner-only from the start: SQLite gives its WAL and
                    // shared-memory files the database file's mode.
                    create_private_file(&path).map_err(|e| DbError::Connect(e.into()))?;
                    let pool = sqlx::SqlitePool::connect_with(opts.clone())
                        .await
                        .map_err(DbError::Connect)?;
                    pool.close().await;
                }
                sqlite_scan = Some(
                    sqlx::sqlite::SqlitePoolOptions::new()
                        .max_connections(4)
                        .connect_lazy_with(opts.read_only(true)),
                );
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await
                    .map_err(DbError::Connect)?
            }
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(DbError::Connect)?,
        };
        Ok(Self {
            pool,
            backend,
            sqlite_scan,
        })
    }

    /// Opens and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Self, DbError> {
        let db = Self::connect(url).await?;
        db.migrate().await?;
        Ok(db)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        self.migrator()
            .run(&self.pool)
            .await
            .map_err(DbError::Migrate)
    }

    /// Ready = reachable and every embedded migration applied.
    pub async fn is_ready(&self) -> Result<bool, DbError> {
        let applied: Vec<(i64,)> = sqlx::query_as(
            "SELECT version FROM _sqlx_migrations WHERE success = $1 ORDER BY version",
        )
        .bind(true)
        .fetch_all(&self.pool)
        .await?;
        let applied: Vec<i64> = applied.into_iter().map(|(v,)| v).collect();
        let expected: Vec<i64> = self.migrator().iter().map(|m| m.version).collect();
        Ok(expected.iter().all(|v| applied.contains(v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_urls_password_never_shows_in_debug() {
        let url = DatabaseUrl::from("postgres://cv:s3cret-pw@db.internal:5432/callvault");
        let shown = format!("{url:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("postgres://cv:***@db.internal:5432/callvault"));
        assert_eq!(
            url.as_str(),
            "postgres://cv:s3cret-pw@db.internal:5432/callvault"
        );
    }
}
