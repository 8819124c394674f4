//! The tamper-evident access log.
//!
//! Rows are append-only (database triggers refuse UPDATE and DELETE) and
//! chained: `hash = HMAC-SHA256(audit key, prev_hash || canonical row bytes)`,
//! with the key kept outside the database. Appends are serialised in-process
//! by a mutex and across processes by the database (`BEGIN IMMEDIATE` on
//! SQLite, a transaction-scoped advisory lock on PostgreSQL), so sequence
//! numbers have no gaps and the chain cannot fork.
//!
//! One file per job: `event` (what a row holds), `append` (the chain's only
//! writer), `verify`, `query` (filters and counts), `counts` (alerts and
//! charts, counted by the database), `tally` (anonymous refusals
//! summarised), `refusal` (refusals as values, answered only once
//! recorded), `export`, `ship` (the copy outside the database).

mod append;
mod counts;
mod event;
pub mod export;
mod query;
mod refusal;
pub mod ship;
mod tally;
mod verify;
mod verify_sqlite;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub use crate::web::RequestMeta;
pub use append::AuditedChange;
pub use counts::{ActorCount, OffsetSpan};
pub(crate) use event::ROW_COLUMNS;
pub use event::{Action, AuditEvent, AuditRow, MAX_CASE_REF_CHARS, MAX_INITIAL_CONTACT_CHARS};
pub use query::AuditFilter;
pub use refusal::{Recorded, Refusal};
pub use verify::{BadRow, VerifyReport};

use crate::clock::SharedClock;
use crate::db::Db;
use crate::web::AppError;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Advisory lock id serialising appends across PostgreSQL clients ("cvau").
pub(super) const PG_APPEND_LOCK: i64 = 0x6376_6175;

pub const MAX_REASON_CHARS: usize = 500;
pub(super) const MAX_FIELD_CHARS: usize = 256;
/// Refusals of anonymous clients are summarised per address per interval.
pub const TALLY_INTERVAL_US: i64 = 60_000_000;
/// Summary rows written per flush at most (the rest wait for the next one).
pub(super) const TALLY_FLUSH_ROWS: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("the audit store failed")]
    Store(#[from] sqlx::Error),
    #[error("the audit key is unusable")]
    Key,
    #[error("audit internal error: {0}")]
    Internal(&'static str),
    #[error("the audit batch this row was in failed: {0}")]
    Batch(String),
    #[error("the audit chain's head is row {0}: no sequence number follows it (run `callvault audit verify`)")]
    SequenceExhausted(i64),
}

impl From<AuditError> for AppError {
    fn from(e: AuditError) -> Self {
        AppError::Unavailable {
            title: "Audit log unavailable",
            message: "The access log could not be written, so nothing was done. Try again shortly.",
            cause: Box::new(e),
        }
    }
}

type Waiter = tokio::sync::oneshot::Sender<Result<AuditRow, AuditError>>;

#[derive(Clone)]
pub struct AuditLog {
    db: Db,
    key: Arc<Zeroizing<Vec<u8>>>,
    clock: SharedClock,
    append_lock: Arc<tokio::sync::Mutex<()>>,
    /// Appends waiting for the next group commit.
    pending: Arc<std::sync::Mutex<Vec<(AuditEvent, Waiter)>>>,
    /// Also queue each row in `audit_outbox` (shipping is configured).
    outbox: bool,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("backend", &self.db.backend)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn new(db: Db, key: Zeroizing<Vec<u8>>, clock: SharedClock) -> Self {
        Self {
            db,
            key: Arc::new(key),
            clock,
            append_lock: Arc::new(tokio::sync::Mutex::new(())),
            pending: Arc::new(std::sync::Mutex::new(Vec::new())),
            outbox: false,
        }
    }

    /// Every row appended from now on is also queued for shipping, in the
    /// append's own transaction (a row is never committed but unqueued).
    pub fn with_outbox(mut self) -> Self {
        self.outbox = true;
        self
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// A keyed hash of `data` for one `purpose` (128 bits, hex), under the
    /// audit key: rows can name a value without holding it. The purpose
    /// prefix keeps it apart from the chain's MACs, whose input starts with
    /// a hex hash.
    pub fn keyed_tag(&self, purpose: &str, data: &[u8]) -> Result<String, AuditError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AuditError::Key)?;
        mac.update(b"callvault/");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data);
        Ok(hex::encode(&mac.finalize().into_bytes()[..16]))
    }

    fn mac(&self, prev_hash: &str, row: &AuditRow) -> Result<String, AuditError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AuditError::Key)?;
        mac.update(prev_hash.as_bytes());
        mac.update(&row.canonical_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}
