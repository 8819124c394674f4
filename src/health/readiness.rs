//! Readiness: can this replica serve? The database (a fresh connection, not
//! only the pool's open ones), the keyring (its key file, or KMS), and every
//! configured AWS source are probed in the background; `/readyz` reports the
//! latest result and never waits on a probe.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use lambda_encrypt::context::ContactId;
use lambda_encrypt::keyring::KeyringSpec;

use crate::db::{Backend, Db};
use crate::sources::ContactDirectory;
use crate::sources::LogStore;
use crate::sources::SourceError;

/// How long one probe may take before it counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// A contact id no contact has: describing it proves Connect answers.
const PROBE_CONTACT: &str = "00000000-0000-4000-8000-000000000000";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyState {
    Ready,
    /// Each reason names the dependency and what went wrong (no secrets).
    NotReady(Vec<String>),
}

/// What the probes look at.
pub struct Probes {
    pub db: Db,
    pub database_url: String,
    pub keyring: Option<KeyringSpec>,
    /// A KMS client when the keyring is `kms:`.
    pub kms: Option<aws_sdk_kms::Client>,
    pub directory: Arc<dyn ContactDirectory>,
    pub logs: Arc<dyn LogStore>,
}

#[derive(Clone)]
pub struct Readiness {
    state: Arc<RwLock<ReadyState>>,
}

impl Readiness {
    /// Probes once (so a new replica answers truthfully at once), then every
    /// `interval` in the background.
    pub async fn start(probes: Probes, interval: Duration) -> Self {
        let first = probes.run().await;
        let readiness = Self {
            state: Arc::new(RwLock::new(first)),
        };
        let state = Arc::clone(&readiness.state);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let now = probes.run().await;
                let mut current = state.write().unwrap_or_else(PoisonError::into_inner);
                if *current != now {
                    match &now {
                        ReadyState::Ready => tracing::info!("ready"),
                        ReadyState::NotReady(r) => {
                            tracing::warn!(reasons = r.join("; ").as_str(), "not ready")
                        }
                    }
                }
                *current = now;
            }
        });
        readiness
    }

    pub fn state(&self) -> ReadyState {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

async fn timed<F>(what: &str, f: F) -> Result<(), String>
where
    F: std::future::Future<Output = Result<(), String>>,
{
    match tokio::time::timeout(PROBE_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer within {}s",
            PROBE_TIMEOUT.as_secs()
        )),
    }
}

/// A source that answered at all (even "not found" or "access denied") is
/// reachable; only no answer, or credentials that no longer work, is not.
fn source_answered(r: Result<(), SourceError>) -> Result<(), String> {
    match r {
        Ok(())
        | Err(SourceError::NotFound)
        | Err(SourceError::AccessDenied)
        | Err(SourceError::BadToken)
        | Err(SourceError::BadRequest(_))
        | Err(SourceError::Throttled)
        | Err(SourceError::NotConfigured(_)) => Ok(()),
        Err(e @ SourceError::ExpiredCredentials) | Err(e @ SourceError::Unavailable(_)) => {
            Err(e.to_string())
        }
    }
}

impl Probes {
    async fn run(&self) -> ReadyState {
        let (db, keyring, connect, logs) = tokio::join!(
            timed("database", self.database()),
            timed("keyring", self.keyring()),
            timed("amazon connect", async {
                let Ok(id) = ContactId::parse(PROBE_CONTACT) else {
                    return Ok(());
                };
                match self.directory.describe(&id).await {
                    // Without a contact source no page but sign-in works.
                    Err(SourceError::NotConfigured(variable)) => {
                        Err(format!("no contact source: {variable} is not set"))
                    }
                    r => source_answered(r.map(|_| ())),
                }
            }),
            timed("cloudwatch logs", async {
                match self.logs.groups().first() {
                    Some(g) => source_answered(self.logs.streams(g, None).await.map(|_| ())),
                    None => Ok(()),
                }
            }),
        );
        let reasons: Vec<String> = [db, keyring, connect, logs]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if reasons.is_empty() {
            ReadyState::Ready
        } else {
            ReadyState::NotReady(reasons)
        }
    }

    async fn database(&self) -> Result<(), String> {
        match self.db.is_ready().await {
            Ok(true) => {}
            Ok(false) => return Err("migrations pending".into()),
            Err(_) => return Err("unavailable".into()),
        }
        // The pool's connections keep an open file; a new connection shows
        // whether the file can still be opened and read.
        if self.db.backend == Backend::Sqlite {
            use sqlx::{ConnectOptions as _, Connection as _};
            use std::str::FromStr as _;
            let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&self.database_url)
                .map_err(|_| "DATABASE_URL cannot be parsed".to_owned())?
                .create_if_missing(false)
                .read_only(true);
            let mut conn = opts
                .connect()
                .await
                .map_err(|_| "the database file cannot be opened".to_owned())?;
            let read: Result<(i64,), _> = sqlx::query_as("SELECT COUNT(*) FROM _sqlx_migrations")
                .fetch_one(&mut conn)
                .await;
            let _ = conn.close().await;
            read.map_err(|_| "the database file cannot be read".to_owned())?;
        }
        Ok(())
    }

    async fn keyring(&self) -> Result<(), String> {
        match (&self.keyring, &self.kms) {
            (None, _) => Ok(()),
            (Some(KeyringSpec::RawAes { path }), _) => match tokio::fs::read(path).await {
                Ok(bytes) if !bytes.is_empty() => Ok(()),
                _ => Err("the raw AES key file cannot be read".into()),
            },
            (Some(KeyringSpec::Kms { key_arns }), Some(kms)) => {
                let Some(arn) = key_arns.first() else {
                    return Ok(());
                };
                use aws_sdk_kms::error::{ProvideErrorMetadata as _, SdkError};
                let started = std::time::Instant::now();
                let result = kms.describe_key().key_id(arn.as_str()).send().await;
                crate::metrics::aws_call(
                    "kms",
                    "DescribeKey",
                    result.as_ref().err().map(|e| match e {
                        SdkError::ServiceError(_) => "service_error",
                        SdkError::TimeoutError(_) => "timeout",
                        SdkError::DispatchFailure(_) => "connection_failed",
                        _ => "unexpected",
                    }),
                    started.elapsed(),
                );
                match result {
                    Ok(_) => Ok(()),
                    // The console role need not hold kms:DescribeKey: an
                    // answer is enough to show KMS is reachable.
                    Err(SdkError::ServiceError(e))
                        if e.err().code() == Some("AccessDeniedException") =>
                    {
                        Ok(())
                    }
                    Err(SdkError::ServiceError(e)) => Err(format!(
                        "KMS refused: {}",
                        e.err()
                            .code()
                            .unwrap_or("error")
                            .chars()
                            .take(60)
                            .collect::<String>()
                    )),
                    Err(SdkError::TimeoutError(_)) => Err("KMS: timeout".into()),
                    Err(SdkError::DispatchFailure(_)) => Err("KMS: connection failed".into()),
                    Err(_) => Err("KMS: unexpected response".into()),
                }
            }
            (Some(KeyringSpec::Kms { .. }), None) => Err("KMS is not configured".into()),
            // Period keyrings: the directory must be readable (its files are
            // read on each use); KMS period keys are listed at start-up.
            (Some(KeyringSpec::RawAesPeriod { dir }), _) => match tokio::fs::read_dir(dir).await {
                Ok(_) => Ok(()),
                Err(_) => Err("the raw AES period key directory cannot be read".into()),
            },
            (Some(KeyringSpec::KmsPeriod { .. }), _) => Ok(()),
        }
    }
}
