//! The tamper-evident access log.
//!
//! Rows are append-only (database triggers refuse UPDATE and DELETE) and
//! chained: `hash = HMAC-SHA256(audit key, prev_hash || canonical row bytes)`,
//! with the key kept outside the database. Appends are serialised in-process
//! by a mutex and across processes by the database (`BEGIN IMMEDIATE` on
//! SQLite, a transaction-scoped advisory lock on PostgreSQL), so sequence
//! numbers have no gaps and the chain cannot fork.

pub mod export;
pub mod handlers;
pub mod ship;

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::clock::SharedClock;
use crate::db::{Backend, Db};

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CANONICAL_TAG: &[u8] = b"callvault-audit-v1";
/// Advisory lock id serialising appends across PostgreSQL clients ("cvau").
const PG_APPEND_LOCK: i64 = 0x6376_6175;

pub const MAX_REASON_CHARS: usize = 500;
const MAX_FIELD_CHARS: usize = 256;
/// Refusals of anonymous clients are summarised per address per interval.
pub const TALLY_INTERVAL_US: i64 = 60_000_000;
/// Summary rows written per flush at most (the rest wait for the next one).
const TALLY_FLUSH_ROWS: i64 = 1_000;

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

type Waiter = tokio::sync::oneshot::Sender<Result<AuditRow, AuditError>>;

/// What happened. Stored as its `as_str()` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    LoginFailed,
    Logout,
    ContactView,
    LogView,
    Decrypt,
    DecryptDenied,
    DecryptFailed,
    LeakFound,
    AuditView,
    AuditExport,
    AuditVerify,
    UserChange,
    AccessDenied,
    CsrfRejected,
    TotpEnrol,
    TotpReset,
    StepUp,
    StepUpFailed,
    DecryptRequest,
    DecryptApproval,
    SettingChange,
}

impl Action {
    pub const ALL: [Action; 22] = [
        Self::Login,
        Self::LoginFailed,
        Self::Logout,
        Self::ContactView,
        Self::LogView,
        Self::Decrypt,
        Self::DecryptDenied,
        Self::DecryptFailed,
        Self::LeakFound,
        Self::AuditView,
        Self::AuditExport,
        Self::AuditVerify,
        Self::UserChange,
        Self::AccessDenied,
        Self::CsrfRejected,
        Self::TotpEnrol,
        Self::TotpReset,
        Self::StepUp,
        Self::StepUpFailed,
        Self::DecryptRequest,
        Self::DecryptApproval,
        Self::SettingChange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::LoginFailed => "login_failed",
            Self::Logout => "logout",
            Self::ContactView => "contact_view",
            Self::LogView => "log_view",
            Self::Decrypt => "decrypt",
            Self::DecryptDenied => "decrypt_denied",
            Self::DecryptFailed => "decrypt_failed",
            Self::LeakFound => "leak_found",
            Self::AuditView => "audit_view",
            Self::AuditExport => "audit_export",
            Self::AuditVerify => "audit_verify",
            Self::UserChange => "user_change",
            Self::AccessDenied => "access_denied",
            Self::CsrfRejected => "csrf_rejected",
            Self::TotpEnrol => "totp_enrol",
            Self::TotpReset => "totp_reset",
            Self::StepUp => "step_up",
            Self::StepUpFailed => "step_up_failed",
            Self::DecryptRequest => "decrypt_request",
            Self::DecryptApproval => "decrypt_approval",
            Self::SettingChange => "setting_change",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Where a request came from; copied into every row it causes.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_addr: String,
    pub user_agent: String,
    pub request_id: String,
}

/// One thing to record. Never holds plaintext of an encrypted field.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub actor: String,
    pub role: String,
    pub action: Action,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub outcome: String,
    pub detail: String,
    pub meta: RequestMeta,
}

impl AuditEvent {
    pub fn new(action: Action, actor: &str, role: &str, outcome: &str, meta: &RequestMeta) -> Self {
        Self {
            actor: actor.to_owned(),
            role: role.to_owned(),
            action,
            contact_id: String::new(),
            field: String::new(),
            reason: String::new(),
            outcome: outcome.to_owned(),
            detail: String::new(),
            meta: meta.clone(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn contact(mut self, contact_id: &str, field: &str) -> Self {
        self.contact_id = contact_id.to_owned();
        self.field = field.to_owned();
        self
    }

    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_owned();
        self
    }
}

/// A committed row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow, serde::Serialize, serde::Deserialize)]
pub struct AuditRow {
    pub seq: i64,
    pub ts_us: i64,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub outcome: String,
    pub client_addr: String,
    pub user_agent: String,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

pub(crate) const ROW_COLUMNS: &str =
    "seq, ts_us, actor, role, action, contact_id, field, reason, outcome, \
     client_addr, user_agent, request_id, detail, prev_hash, hash";

impl AuditRow {
    /// The bytes the HMAC covers: every column but the hashes, length-prefixed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(CANONICAL_TAG);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.ts_us.to_be_bytes());
        for text in [
            &self.actor,
            &self.role,
            &self.action,
            &self.contact_id,
            &self.field,
            &self.reason,
            &self.outcome,
            &self.client_addr,
            &self.user_agent,
            &self.request_id,
            &self.detail,
        ] {
            out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out
    }
}

/// Caps a text column, dropping control characters (they have no place in a
/// log line and can forge line breaks in exports).
fn clean(text: &str, max_chars: usize) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub seq: i64,
    pub problem: String,
}

/// Sequence numbers over the whole table, from one statement.
#[derive(Debug, Clone, Copy)]
struct Census {
    rows: i64,
    /// NULL, REAL, TEXT or BLOB sequence numbers (SQLite only).
    not_integer: i64,
    /// Smallest and largest integer sequence numbers (head 0 if none).
    min: Option<i64>,
    head: i64,
}

struct RangeResult {
    first_seq: i64,
    last_seq: i64,
    first_prev_hash: Option<String>,
    last_hash: Option<String>,
    checked: u64,
    first_bad: Option<BadRow>,
}

impl RangeResult {
    fn into_report(self) -> VerifyReport {
        VerifyReport {
            rows_checked: self.checked,
            head_seq: self.first_bad.as_ref().map_or(self.last_seq, |b| b.seq),
            first_bad: self.first_bad,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub rows_checked: u64,
    pub head_seq: i64,
    pub first_bad: Option<BadRow>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// Filters of the auditor's pages and exports.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub contact_id: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl AuditFilter {
    /// `WHERE ...` with `$N` placeholders starting after `first - 1`.
    fn where_clause(&self, first: usize) -> (String, Vec<Bind>) {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let mut n = first;
        let mut push = |sql: &str, bind: Bind, clauses: &mut Vec<String>, binds: &mut Vec<Bind>| {
            clauses.push(sql.replace('?', &format!("${n}")));
            binds.push(bind);
            n += 1;
        };
        if let Some(a) = &self.actor {
            push("actor = ?", Bind::Text(a.clone()), &mut clauses, &mut binds);
        }
        if let Some(a) = &self.action {
            push(
                "action = ?",
                Bind::Text(a.clone()),
                &mut clauses,
                &mut binds,
            );
        }
        if let Some(c) = &self.contact_id {
            push(
                "contact_id = ?",
                Bind::Text(c.clone()),
                &mut clauses,
                &mut binds,
            );
        }
        if let Some(t) = self.from_us {
            push("ts_us >= ?", Bind::Int(t), &mut clauses, &mut binds);
        }
        if let Some(t) = self.to_us {
            push("ts_us < ?", Bind::Int(t), &mut clauses, &mut binds);
        }
        if clauses.is_empty() {
            ("1 = 1".to_owned(), binds)
        } else {
            (clauses.join(" AND "), binds)
        }
    }
}

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

/// A change in progress with its audit row still to come (see
/// [`AuditLog::begin_change`]).
pub struct AuditedChange {
    log: AuditLog,
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _serialised: tokio::sync::OwnedMutexGuard<()>,
}

impl AuditedChange {
    /// The transaction the change is written in.
    pub fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    /// Appends `event` after the change and commits both, durably.
    pub async fn commit(self, event: AuditEvent) -> Result<AuditRow, AuditError> {
        self.commit_many(vec![event])
            .await?
            .pop()
            .ok_or(AuditError::Internal("an audited change wrote no row"))
    }

    /// Undoes the change (and releases the chain lock) now.
    pub async fn rollback(self) {
        if let Err(e) = self.tx.rollback().await {
            tracing::warn!(error = %e, "rolling back an audited change failed");
        }
    }

    /// As `commit`, with several rows.
    pub async fn commit_many(
        mut self,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let started = std::time::Instant::now();
        let result = match self.log.insert_rows(&mut self.tx, events).await {
            Ok(rows) => self
                .tx
                .commit()
                .await
                .map(|()| rows)
                .map_err(AuditError::from),
            Err(e) => Err(e),
        };
        // Counted like every other append, so metrics see audited changes
        // and budgeted reveals too.
        crate::metrics::audit_batch(result.is_ok(), started.elapsed());
        for row in result.iter().flatten() {
            crate::metrics::audit_row(&row.action, &row.outcome);
        }
        result
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

    /// Decrypt attempts (revealed or failed) by `actor` since `since_us`,
    /// in one indexed count.
    pub async fn decrypt_attempts_since(
        &self,
        actor: &str,
        since_us: i64,
    ) -> Result<i64, AuditError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action IN ($2, $3) AND ts_us >= $4",
        )
        .bind(actor)
        .bind(Action::Decrypt.as_str())
        .bind(Action::DecryptFailed.as_str())
        .bind(since_us)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(n)
    }

    /// Appends a reveal's row only if `actor` made fewer than `limit` decrypt
    /// attempts since `since_us`, counted in the same transaction under the
    /// chain lock. Every process's appends to one database are serialised by
    /// that lock, so no number of replicas can reveal past the budget.
    /// `Err(used)` when the budget is spent (nothing written).
    pub async fn append_within_budget(
        &self,
        event: AuditEvent,
        limit: u32,
        since_us: i64,
    ) -> Result<Result<AuditRow, i64>, AuditError> {
        let mut change = self.begin_change().await?;
        let (used,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action IN ($2, $3) AND ts_us >= $4",
        )
        .bind(clean(&event.actor, MAX_FIELD_CHARS))
        .bind(Action::Decrypt.as_str())
        .bind(Action::DecryptFailed.as_str())
        .bind(since_us)
        .fetch_one(&mut *change.conn())
        .await?;
        if used >= i64::from(limit) {
            change.rollback().await;
            return Ok(Err(used));
        }
        Ok(Ok(change.commit(event).await?))
    }

    /// Rows of `action` per actor in `[from_us, to_us)`.
    pub async fn counts_by_actor(
        &self,
        action: Action,
        outcome: Option<&str>,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, i64)>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT actor, COUNT(*) FROM audit_log WHERE action = $1 AND ts_us >= $2 AND ts_us < $3 \
             AND ($4 = '' OR outcome = $4) GROUP BY actor ORDER BY actor",
        )
        .bind(action.as_str())
        .bind(from_us)
        .bind(to_us)
        .bind(outcome.unwrap_or(""))
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Chain head: (seq, hash, ts_us) of the newest row.
    pub async fn head(&self) -> Result<Option<(i64, String, i64)>, AuditError> {
        Ok(
            sqlx::query_as("SELECT seq, hash, ts_us FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.db.pool)
                .await?,
        )
    }

    /// One row by sequence number.
    pub async fn row(&self, seq: i64) -> Result<Option<AuditRow>, AuditError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq = $1");
        Ok(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
            .bind(seq)
            .fetch_optional(&self.db.pool)
            .await?)
    }

    fn mac(&self, prev_hash: &str, row: &AuditRow) -> Result<String, AuditError> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AuditError::Key)?;
        mac.update(prev_hash.as_bytes());
        mac.update(&row.canonical_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }

    /// Appends one row and returns it once it is durably committed.
    ///
    /// Group commit: concurrent appends queue up, and whoever takes the append
    /// lock commits everything queued in one transaction, so a burst of rows
    /// costs one durable commit. Every caller still returns only after its own
    /// row is committed; if the batch fails, every caller in it gets an error
    /// (and nothing is revealed on their behalf).
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRow, AuditError> {
        use tokio::sync::oneshot::error::TryRecvError;
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        self.queue().push((event, tx));
        let guard = self.append_lock.lock().await;
        // A leader before us may already have committed our row: leaders
        // answer everyone in their batch before releasing the lock.
        match rx.try_recv() {
            Ok(result) => return result,
            Err(TryRecvError::Closed) => {
                return Err(AuditError::Internal("an audit batch was abandoned"))
            }
            Err(TryRecvError::Empty) => {}
        }
        let (events, waiters): (Vec<AuditEvent>, Vec<Waiter>) =
            std::mem::take(&mut *self.queue()).into_iter().unzip();
        match self.append_locked(events).await {
            Ok(rows) => {
                for (waiter, row) in waiters.into_iter().zip(rows) {
                    let _ = waiter.send(Ok(row));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "audit batch failed");
                let text = e.to_string();
                for waiter in waiters {
                    let _ = waiter.send(Err(AuditError::Batch(text.clone())));
                }
            }
        }
        drop(guard);
        rx.await
            .unwrap_or(Err(AuditError::Internal("an audit batch was abandoned")))
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<(AuditEvent, Waiter)>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends several rows in one transaction (one durable commit).
    pub async fn append_many(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditRow>, AuditError> {
        let _serialised = self.append_lock.lock().await;
        self.append_locked(events).await
    }

    /// Appends in one transaction; the caller holds `append_lock`.
    async fn append_locked(&self, events: Vec<AuditEvent>) -> Result<Vec<AuditRow>, AuditError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let mut conn = self.db.pool.acquire().await?;
        let result = self.append_on(&mut conn, events).await;
        crate::metrics::audit_batch(result.is_ok(), started.elapsed());
        for row in result.iter().flatten() {
            crate::metrics::audit_row(&row.action, &row.outcome);
        }
        if result.is_err() {
            // A failed commit (disk full, I/O error, killed connection) can
            // leave the connection mid-transaction; never reuse it.
            conn.close_on_drop();
        }
        result
    }

    async fn append_on(
        &self,
        conn: &mut sqlx::pool::PoolConnection<sqlx::Any>,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRow>, AuditError> {
        use sqlx::Connection as _;
        let mut tx = match self.db.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        self.lock_chain(&mut tx).await?;
        let committed = self.insert_rows(&mut tx, events).await?;
        tx.commit().await?;
        Ok(committed)
    }

    /// Serialises chain writers across processes, inside the open transaction
    /// (SQLite's `BEGIN IMMEDIATE` already holds the write lock).
    async fn lock_chain(&self, tx: &mut sqlx::AnyConnection) -> Result<(), AuditError> {
        if self.db.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_APPEND_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }

    /// Inserts rows after the chain head, in the caller's transaction (which
    /// holds the chain lock).
    async fn insert_rows(
        &self,
        tx: &mut sqlx::AnyConnection,
        events: Vec<AuditEvent>,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut prev_seq, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        let mut committed = Vec::with_capacity(events.len());
        for event in events {
            // Never wrap: a head at i64::MAX (forged) stops appends with a
            // clear error instead of writing row i64::MIN.
            let seq = prev_seq
                .checked_add(1)
                .filter(|s| *s < i64::MAX)
                .ok_or(AuditError::SequenceExhausted(prev_seq))?;
            let mut row = AuditRow {
                seq,
                ts_us: self.clock.now_us(),
                actor: clean(&event.actor, MAX_FIELD_CHARS),
                role: clean(&event.role, 32),
                action: event.action.as_str().to_owned(),
                contact_id: clean(&event.contact_id, MAX_FIELD_CHARS),
                field: clean(&event.field, 64),
                reason: clean(&event.reason, MAX_REASON_CHARS),
                outcome: clean(&event.outcome, 64),
                client_addr: clean(&event.meta.client_addr, 64),
                user_agent: clean(&event.meta.user_agent, MAX_FIELD_CHARS),
                request_id: clean(&event.meta.request_id, 64),
                detail: clean(&event.detail, MAX_FIELD_CHARS),
                prev_hash,
                hash: String::new(),
            };
            row.hash = self.mac(&row.prev_hash, &row)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO audit_log ({ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
            )))
            .bind(row.seq)
            .bind(row.ts_us)
            .bind(&row.actor)
            .bind(&row.role)
            .bind(&row.action)
            .bind(&row.contact_id)
            .bind(&row.field)
            .bind(&row.reason)
            .bind(&row.outcome)
            .bind(&row.client_addr)
            .bind(&row.user_agent)
            .bind(&row.request_id)
            .bind(&row.detail)
            .bind(&row.prev_hash)
            .bind(&row.hash)
            .execute(&mut *tx)
            .await?;
            if self.outbox {
                sqlx::query("INSERT INTO audit_outbox (seq) VALUES ($1)")
                    .bind(row.seq)
                    .execute(&mut *tx)
                    .await?;
            }
            prev_seq = row.seq;
            prev_hash = row.hash.clone();
            committed.push(row);
        }
        Ok(committed)
    }

    /// Opens a change that is committed together with its audit row: the
    /// change runs on [`AuditedChange::conn`], then [`AuditedChange::commit`]
    /// appends the row in the same transaction. If either fails, neither
    /// happens; dropping it uncommitted undoes the change.
    ///
    /// Holds the chain lock until committed or dropped: the change must use
    /// only this connection, never the pool.
    pub async fn begin_change(&self) -> Result<AuditedChange, AuditError> {
        let serialised = Arc::clone(&self.append_lock).lock_owned().await;
        let mut tx = match self.db.backend {
            Backend::Sqlite => self.db.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.db.pool.begin().await?,
        };
        self.lock_chain(&mut tx).await?;
        Ok(AuditedChange {
            log: self.clone(),
            tx,
            _serialised: serialised,
        })
    }

    /// What one statement over the whole table says about sequence numbers.
    async fn census(&self) -> Result<Census, AuditError> {
        let row: (i64, i64, Option<i64>, Option<i64>) = match &self.db.sqlite_scan {
            // SQLite stores any value in any column of a rebuilt table:
            // count what is not an integer (NULL, REAL, TEXT, BLOB).
            Some(native) => {
                sqlx::query_as(
                    "SELECT COUNT(*), \
                     COALESCE(SUM(CASE WHEN typeof(seq) = 'integer' THEN 0 ELSE 1 END), 0), \
                     MIN(CASE WHEN typeof(seq) = 'integer' THEN seq END), \
                     MAX(CASE WHEN typeof(seq) = 'integer' THEN seq END) \
                     FROM audit_log",
                )
                .fetch_one(native)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT COUNT(*), COUNT(*) - COUNT(seq), MIN(seq), MAX(seq) FROM audit_log",
                )
                .fetch_one(&self.db.pool)
                .await?
            }
        };
        Ok(Census {
            rows: row.0,
            not_integer: row.1,
            min: row.2,
            head: row.3.unwrap_or(0),
        })
    }

    /// Counts a refusal of an anonymous client instead of appending a row
    /// for it: an anonymous flood costs one summary row per address per
    /// interval (see `flush_tallies`), not one row per request.
    pub async fn tally_anonymous(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let now = self.clock.now_us();
        let window = now - now.rem_euclid(TALLY_INTERVAL_US);
        sqlx::query(
            "INSERT INTO refusal_tally (client_addr, window_us, action, refusals, first_us, last_us, sample) \
             VALUES ($1, $2, $3, 1, $4, $4, $5) \
             ON CONFLICT (client_addr, window_us, action) \
             DO UPDATE SET refusals = refusal_tally.refusals + 1, last_us = excluded.last_us",
        )
        .bind(clean(&event.meta.client_addr, 64))
        .bind(window)
        .bind(event.action.as_str())
        .bind(now)
        .bind(clean(&event.detail, 200))
        .execute(&self.db.pool)
        .await?;
        self.flush_tallies().await?;
        Ok(())
    }

    /// Writes one summary row per address and action for each interval that
    /// is over, and forgets those counts, in one transaction. Returns how
    /// many rows it wrote.
    pub async fn flush_tallies(&self) -> Result<usize, AuditError> {
        let now = self.clock.now_us();
        let current = now - now.rem_euclid(TALLY_INTERVAL_US);
        let due: Option<(i64,)> =
            sqlx::query_as("SELECT window_us FROM refusal_tally WHERE window_us < $1 LIMIT 1")
                .bind(current)
                .fetch_optional(&self.db.pool)
                .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut change = self.begin_change().await?;
        let tallies: Vec<(String, i64, String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT client_addr, window_us, action, refusals, first_us, last_us, sample \
             FROM refusal_tally WHERE window_us < $1 \
             ORDER BY window_us, client_addr, action LIMIT $2",
        )
        .bind(current)
        .bind(TALLY_FLUSH_ROWS)
        .fetch_all(&mut *change.conn())
        .await?;
        let mut events = Vec::with_capacity(tallies.len());
        for (addr, window, action, refusals, first_us, last_us, sample) in tallies {
            sqlx::query(
                "DELETE FROM refusal_tally WHERE client_addr = $1 AND window_us = $2 AND action = $3",
            )
            .bind(&addr)
            .bind(window)
            .bind(&action)
            .execute(&mut *change.conn())
            .await?;
            let meta = RequestMeta {
                client_addr: addr,
                ..RequestMeta::default()
            };
            let action = Action::parse(&action).unwrap_or(Action::CsrfRejected);
            events.push(
                AuditEvent::new(action, "anonymous", "", "refused_summary", &meta).detail(format!(
                    "{refusals} refusal(s) of an anonymous client from {} to {}; e.g. {sample}",
                    crate::clock::format_us(first_us),
                    crate::clock::format_us(last_us)
                )),
            );
        }
        let written = events.len();
        change.commit_many(events).await?;
        Ok(written)
    }

    /// Recomputes the whole chain in sequence order; names the first bad row.
    ///
    /// The invariant, checked over the whole table: the rows are exactly rows
    /// 1 to the head, each once, with integer sequence numbers: no gap, no
    /// NULL, no row below 1 or beyond the head. Then every row's link and
    /// hash is recomputed.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let census = self.census().await?;
        let bad = |seq: i64, rows_checked: u64, problem: String| VerifyReport {
            rows_checked,
            head_seq: seq,
            first_bad: Some(BadRow { seq, problem }),
        };
        if census.not_integer > 0 {
            return Ok(bad(
                0,
                0,
                format!(
                    "{} row(s) with a NULL or non-integer sequence number (REAL, TEXT): outside the chain (rows inserted)",
                    census.not_integer
                ),
            ));
        }
        // Rows below 1 come first in sequence order: name them first.
        if let Some(min) = census.min.filter(|m| *m < 1) {
            return Ok(bad(
                min,
                1,
                format!("sequence gap: expected row 1, found row {min} (rows deleted or inserted)"),
            ));
        }
        let head = census.head;
        let chain = match &self.db.sqlite_scan {
            Some(native) => self.verify_sqlite_in_ranges(native, head).await?,
            None => {
                let sql =
                    format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq <= $1 ORDER BY seq");
                let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
                    .bind(head)
                    .fetch(&self.db.pool);
                self.verify_range(rows, 1, GENESIS_HASH.to_owned())
                    .await?
                    .into_report()
            }
        };
        if !chain.ok() {
            return Ok(chain);
        }
        // A verified chain is rows 1..=head, each once; anything else in the
        // table (a duplicate the scans could not see) was put there.
        let outside = census
            .rows
            .saturating_sub(i64::try_from(chain.rows_checked).unwrap_or(i64::MAX));
        if outside != 0 || chain.head_seq != head {
            return Ok(bad(
                head.saturating_add(1),
                chain.rows_checked,
                format!("{outside} row(s) outside the chain of rows 1 to {head} (rows inserted)"),
            ));
        }
        Ok(chain)
    }

    /// SQLite hands rows over one at a time from its worker thread, so one
    /// scan is latency-bound: scan four sequence ranges of 1..=head at once,
    /// verify each, then check that the ranges meet and link.
    async fn verify_sqlite_in_ranges(
        &self,
        native: &sqlx::SqlitePool,
        head: i64,
    ) -> Result<VerifyReport, AuditError> {
        const RANGES: usize = 4;
        let width = (head / RANGES as i64).max(1);
        let mut bounds: Vec<(i64, i64)> = Vec::with_capacity(RANGES);
        let mut lo = 1i64;
        while lo <= head {
            let hi = if bounds.len() == RANGES - 1 {
                head
            } else {
                lo.saturating_add(width - 1).min(head)
            };
            bounds.push((lo, hi));
            if hi >= head {
                break;
            }
            lo = hi + 1;
        }
        // One task per range, so decoding and HMACs use every core.
        let scans: Vec<_> = bounds
            .iter()
            .map(|&(lo, hi)| {
                let (log, native) = (self.clone(), native.clone());
                tokio::spawn(async move {
                    // Each range starts from the stored prev_hash of its first
                    // row; the links between ranges are checked below.
                    let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq");
                    let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).bind(lo).bind(hi).fetch(&native);
                    log.verify_range(rows, lo, String::new()).await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(scans.len());
        for scan in scans {
            results.push(
                scan.await
                    .map_err(|_| AuditError::Internal("verify task failed"))??,
            );
        }
        let mut checked = 0u64;
        let mut prev_last = GENESIS_HASH.to_owned();
        let mut verified_head = 0i64;
        for r in results {
            if r.checked == 0 {
                continue;
            }
            let broken = |problem: String| VerifyReport {
                rows_checked: checked + 1,
                head_seq: r.first_seq,
                first_bad: Some(BadRow {
                    seq: r.first_seq,
                    problem,
                }),
            };
            let expected = verified_head.saturating_add(1);
            if r.first_seq != expected {
                return Ok(broken(format!(
                    "sequence gap: expected row {expected}, found row {} (rows deleted or inserted)",
                    r.first_seq
                )));
            }
            if r.first_prev_hash.as_deref() != Some(prev_last.as_str()) {
                return Ok(broken(format!(
                    "row {} does not link to row {} (rows reordered, replaced or deleted)",
                    r.first_seq, verified_head
                )));
            }
            if let Some(bad) = r.first_bad {
                return Ok(VerifyReport {
                    rows_checked: checked + r.checked,
                    head_seq: bad.seq,
                    first_bad: Some(bad),
                });
            }
            checked += r.checked;
            prev_last = r.last_hash.unwrap_or_default();
            verified_head = r.last_seq;
        }
        Ok(VerifyReport {
            rows_checked: checked,
            head_seq: verified_head,
            first_bad: None,
        })
    }

    /// Verifies consecutive rows starting at `first_seq`. With an empty
    /// `prev_hash`, the first row's stored link is taken as given (the caller
    /// checks it).
    async fn verify_range<S>(
        &self,
        mut rows: S,
        first_seq: i64,
        mut prev_hash: String,
    ) -> Result<RangeResult, AuditError>
    where
        S: futures_util::Stream<Item = Result<AuditRow, sqlx::Error>> + Unpin,
    {
        use futures_util::TryStreamExt as _;
        let mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AuditError::Key)?;
        let mut out = RangeResult {
            first_seq,
            last_seq: first_seq.saturating_sub(1),
            first_prev_hash: None,
            last_hash: None,
            checked: 0,
            first_bad: None,
        };
        let mut expected_seq = first_seq;
        while let Some(row) = rows.try_next().await? {
            out.checked += 1;
            if out.first_prev_hash.is_none() {
                out.first_seq = row.seq;
                out.first_prev_hash = Some(row.prev_hash.clone());
                if prev_hash.is_empty() {
                    prev_hash = row.prev_hash.clone();
                }
            }
            let problem = if row.seq != expected_seq {
                Some(format!(
                    "sequence gap: expected row {expected_seq}, found row {} (rows deleted or inserted)",
                    row.seq
                ))
            } else if row.prev_hash != prev_hash {
                Some(format!(
                    "row {} does not link to row {} (rows reordered, replaced or deleted)",
                    row.seq,
                    row.seq.saturating_sub(1)
                ))
            } else {
                let mut m = mac.clone();
                m.update(row.prev_hash.as_bytes());
                m.update(&row.canonical_bytes());
                let expected = hex::encode(m.finalize().into_bytes());
                (!bool::from(expected.as_bytes().ct_eq(row.hash.as_bytes())))
                    .then(|| format!("row {} does not match its hash (edited)", row.seq))
            };
            if let Some(problem) = problem {
                out.first_bad = Some(BadRow {
                    seq: row.seq,
                    problem,
                });
                return Ok(out);
            }
            out.last_seq = row.seq;
            prev_hash = row.hash;
            expected_seq = expected_seq.saturating_add(1);
        }
        out.last_hash = (out.checked > 0).then_some(prev_hash);
        Ok(out)
    }

    /// Newest first, `limit` rows, optionally before a sequence number (keyset paging).
    pub async fn query(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let (mut clause, mut binds) = filter.where_clause(1);
        if let Some(before) = before_seq {
            clause.push_str(&format!(" AND seq < ${}", binds.len() + 1));
            binds.push(Bind::Int(before));
        }
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE {clause} ORDER BY seq DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.bind(limit).fetch_all(&self.db.pool).await?)
    }

    /// Oldest first, rows after `after_seq` (export paging).
    pub async fn page_after(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let (clause, binds) = filter.where_clause(2);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE seq > $1 AND {clause} ORDER BY seq LIMIT ${}",
            binds.len() + 2
        );
        let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).bind(after_seq);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.bind(limit).fetch_all(&self.db.pool).await?)
    }
}

use subtle::ConstantTimeEq as _;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_overlong_text_are_cleaned() {
        assert_eq!(clean("a\nb\r\u{0}c", 10), "abc");
        assert_eq!(
            clean(&"x".repeat(600), MAX_REASON_CHARS).len(),
            MAX_REASON_CHARS
        );
    }

    #[test]
    fn canonical_bytes_separate_fields_unambiguously() {
        let mut a = AuditRow {
            seq: 1,
            ts_us: 2,
            actor: "ab".into(),
            role: "c".into(),
            action: "login".into(),
            contact_id: String::new(),
            field: String::new(),
            reason: String::new(),
            outcome: "ok".into(),
            client_addr: String::new(),
            user_agent: String::new(),
            request_id: String::new(),
            detail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let before = a.canonical_bytes();
        a.actor = "a".into();
        a.role = "bc".into();
        assert_ne!(before, a.canonical_bytes());
    }

    #[test]
    fn actions_round_trip_by_name() {
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        assert_eq!(Action::parse("drop table"), None);
    }
}
