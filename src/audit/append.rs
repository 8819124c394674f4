//! The chain's only writer: group commits, several rows at once, and changes
//! committed together with their audit row.

use std::sync::Arc;

use super::event::{clean, typed_text, MAX_CASE_REF_CHARS, MAX_INITIAL_CONTACT_CHARS, ROW_COLUMNS};
use super::{
    Action, AuditError, AuditEvent, AuditLog, AuditRow, Waiter, GENESIS_HASH, MAX_FIELD_CHARS,
    MAX_REASON_CHARS, PG_APPEND_LOCK,
};
use crate::db::Backend;

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

    /// Decrypt attempts (revealed or failed) by `actor` since `since_us`,
    /// counted in this change, under the chain lock.
    pub async fn attempts_since(&mut self, actor: &str, since_us: i64) -> Result<i64, AuditError> {
        let (used,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action IN ($2, $3) AND ts_us >= $4",
        )
        .bind(clean(actor, MAX_FIELD_CHARS))
        .bind(Action::Decrypt.as_str())
        .bind(Action::DecryptFailed.as_str())
        .bind(since_us)
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(used)
    }

    /// The sequence number the next row committed in this change gets.
    pub async fn next_seq(&mut self) -> Result<i64, AuditError> {
        let head: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *self.tx)
                .await?;
        let head = head.map_or(0, |(s,)| s);
        head.checked_add(1)
            .ok_or(AuditError::SequenceExhausted(head))
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
                reason: typed_text(clean(&event.reason, MAX_REASON_CHARS)),
                outcome: clean(&event.outcome, 64),
                client_addr: clean(&event.meta.client_addr, 64),
                user_agent: clean(&event.meta.user_agent, MAX_FIELD_CHARS),
                request_id: clean(&event.meta.request_id, 64),
                detail: clean(&event.detail, MAX_FIELD_CHARS),
                prev_hash,
                hash: String::new(),
                case_ref: typed_text(clean(&event.case_ref, MAX_CASE_REF_CHARS)),
                initial_contact_id: clean(&event.initial_contact_id, MAX_INITIAL_CONTACT_CHARS),
            };
            row.hash = self.mac(&row.prev_hash, &row)?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO audit_log ({ROW_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
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
            .bind(&row.case_ref)
            .bind(&row.initial_contact_id)
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
        let used = change.attempts_since(&event.actor, since_us).await?;
        if used >= i64::from(limit) {
            change.rollback().await;
            return Ok(Err(used));
        }
        Ok(Ok(change.commit(event).await?))
    }
}
