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
            Backend::Postgres => {
                let mut tx = conn.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_APPEND_LOCK)
                    .execute(&mut *tx)
                    .await?;
                tx
            }
        };
        let head: Option<(i64, String)> =
            sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        let (mut prev_seq, mut prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
        let mut committed = Vec::with_capacity(events.len());
        for event in events {
            let mut row = AuditRow {
                seq: prev_seq + 1,
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
        tx.commit().await?;
        Ok(committed)
    }

    /// Recomputes the whole chain in sequence order; names the first bad row.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        match &self.db.sqlite_scan {
            Some(native) => self.verify_sqlite_in_ranges(native).await,
            None => {
                let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log ORDER BY seq");
                let rows =
                    sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).fetch(&self.db.pool);
                Ok(self
                    .verify_range(rows, 1, GENESIS_HASH.to_owned())
                    .await?
                    .into_report())
            }
        }
    }

    /// SQLite hands rows over one at a time from its worker thread, so one
    /// scan is latency-bound: scan four sequence ranges at once, verify each,
    /// then check that the ranges link.
    async fn verify_sqlite_in_ranges(
        &self,
        native: &sqlx::SqlitePool,
    ) -> Result<VerifyReport, AuditError> {
        const RANGES: i64 = 4;
        let (min, max): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT MIN(seq), MAX(seq) FROM audit_log")
                .fetch_one(native)
                .await?;
        let max = max.unwrap_or(0);
        // Rows below 1 would fall outside every range: a sequential scan would
        // meet them first, so report them first.
        if let Some(min) = min.filter(|m| *m < 1) {
            return Ok(VerifyReport {
                rows_checked: 1,
                head_seq: min,
                first_bad: Some(BadRow {
                    seq: min,
                    problem: format!(
                        "sequence gap: expected row 1, found row {min} (rows deleted or inserted)"
                    ),
                }),
            });
        }
        let width = (max / RANGES).max(1);
        let bounds: Vec<(i64, i64)> = (0..RANGES)
            .map(|k| {
                (
                    1 + k * width,
                    if k == RANGES - 1 {
                        i64::MAX
                    } else {
                        1 + (k + 1) * width
                    },
                )
            })
            .filter(|(lo, _)| *lo <= max.max(1))
            .collect();
        // One task per range, so decoding and HMACs use every core.
        let scans: Vec<_> = bounds
            .iter()
            .map(|&(lo, hi)| {
                let (log, native) = (self.clone(), native.clone());
                tokio::spawn(async move {
                    // Each range starts from the stored prev_hash of its first
                    // row; the links between ranges are checked below.
                    let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq < $2 ORDER BY seq");
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
        let mut prev_last: Option<String> = Some(GENESIS_HASH.to_owned());
        let mut head = 0;
        for r in results {
            if let (Some(expected), Some(first_prev)) = (&prev_last, &r.first_prev_hash) {
                if expected != first_prev
                    && r.first_bad.as_ref().is_none_or(|b| b.seq > r.first_seq)
                {
                    return Ok(VerifyReport {
                        rows_checked: checked + 1,
                        head_seq: r.first_seq,
                        first_bad: Some(BadRow {
                            seq: r.first_seq,
                            problem: format!(
                                "row {} does not link to row {} (rows reordered, replaced or deleted)",
                                r.first_seq,
                                r.first_seq - 1
                            ),
                        }),
                    });
                }
            }
            if let Some(bad) = r.first_bad {
                return Ok(VerifyReport {
                    rows_checked: checked + r.checked,
                    head_seq: bad.seq,
                    first_bad: Some(bad),
                });
            }
            checked += r.checked;
            if r.checked > 0 {
                prev_last = r.last_hash;
                head = r.last_seq;
            }
        }
        Ok(VerifyReport {
            rows_checked: checked,
            head_seq: head,
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
            last_seq: first_seq - 1,
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
                    row.seq - 1
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
            expected_seq += 1;
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
