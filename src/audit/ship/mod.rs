//! The record outside the database (PCI DSS 10.3.3; CloudTrail-style digests).
//!
//! * Every committed row is queued in `audit_outbox` by its own append
//!   transaction. A background task ships queued rows, oldest first, to a
//!   CloudWatch Logs stream and deletes them from the outbox only after
//!   CloudWatch accepted them: delivery is at-least-once, survives restarts,
//!   and never holds up or reorders the local chain.
//! * Every N rows or M minutes, the chain head (sequence, hash, time) is
//!   signed with a KMS asymmetric key (`kms:Sign`), stored, and shipped to a
//!   second stream. `callvault audit verify --checkpoints` checks the local
//!   chain against them, which catches deleted newest rows.
//!
//! An outage of CloudWatch or KMS only delays shipping: the task retries with
//! backoff, and the backlog and last error are shown on the auditor's page.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;

mod checkpoint;

pub use checkpoint::{
    check_against_checkpoints, local_checkpoints, remote_record, sign_checkpoint,
    verify_checkpoint, Checkpoint, CheckpointReport,
};

use super::{AuditError, AuditLog, AuditRow, ROW_COLUMNS};
use crate::clock::SharedClock;

pub const ROWS_STREAM: &str = "audit-rows";
pub const CHECKPOINT_STREAM: &str = "audit-checkpoints";
const CHECKPOINT_TAG: &str = "callvault-audit-checkpoint-v1";
/// CloudWatch accepts at most 1 MiB per PutLogEvents (26 bytes overhead per event).
const MAX_BATCH_BYTES: usize = 900 * 1024;
const MAX_BATCH_ROWS: i64 = 1000;

#[derive(Debug, Clone)]
pub struct ShipSettings {
    /// CloudWatch Logs group receiving rows and checkpoints.
    pub log_group: String,
    /// KMS asymmetric signing key (id, ARN or alias); no checkpoints without it.
    pub checkpoint_key: Option<String>,
    pub checkpoint_every_rows: i64,
    pub checkpoint_every: Duration,
    /// How often the outbox is polled when idle.
    pub poll: Duration,
    /// How long to wait after a failed signature before asking KMS again.
    pub checkpoint_retry: Duration,
}

/// What auditors see about shipping.
#[derive(Debug, Clone, Default)]
pub struct ShipStatus {
    pub configured: bool,
    pub log_group: String,
    pub last_shipped_seq: i64,
    pub last_success_us: i64,
    pub last_error: Option<String>,
    pub last_checkpoint_seq: i64,
    pub last_checkpoint_us: i64,
    pub checkpoint_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ShipError {
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("CloudWatch Logs: {0}")]
    Logs(String),
    #[error("KMS: {0}")]
    Kms(String),
}

/// A short, value-free description of an SDK error (KMS and CloudWatch Logs
/// share the smithy error type).
fn sdk_message<E: aws_sdk_kms::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_kms::error::SdkError<E, R>,
) -> String {
    use aws_sdk_kms::error::SdkError;
    let text = match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "connection failed".to_owned(),
        _ => "unexpected response".to_owned(),
    };
    text.chars().take(120).collect()
}

#[derive(Clone)]
pub struct Shipper {
    audit: AuditLog,
    clock: SharedClock,
    logs: aws_sdk_cloudwatchlogs::Client,
    kms: aws_sdk_kms::Client,
    settings: ShipSettings,
    status: Arc<Mutex<ShipStatus>>,
}

impl Shipper {
    pub fn new(
        audit: AuditLog,
        clock: SharedClock,
        sdk: &aws_config::SdkConfig,
        settings: ShipSettings,
    ) -> Self {
        let status = ShipStatus {
            configured: true,
            log_group: settings.log_group.clone(),
            ..ShipStatus::default()
        };
        Self {
            audit,
            clock,
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
            settings,
            status: Arc::new(Mutex::new(status)),
        }
    }

    pub fn status(&self) -> ShipStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update(&self, f: impl FnOnce(&mut ShipStatus)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Ships until the process ends. Failures back off up to a minute.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ready = false;
            let mut backoff = Duration::from_millis(500);
            // After a failed signature, wait before asking KMS again.
            let mut next_checkpoint = tokio::time::Instant::now();
            loop {
                if !ready {
                    match self.ensure_streams().await {
                        Ok(()) => ready = true,
                        Err(e) => {
                            self.failed(&e);
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                            continue;
                        }
                    }
                }
                let result = if ready { self.ship_once().await } else { Ok(0) };
                let shipped = match result {
                    Ok(n) => {
                        backoff = Duration::from_millis(500);
                        n
                    }
                    Err(e) => {
                        // The group or stream may be gone (recreated service,
                        // deleted by hand): check them again on the next try.
                        ready = !matches!(e, ShipError::Logs(_));
                        self.failed(&e);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(60));
                        continue;
                    }
                };
                if ready
                    && self.settings.checkpoint_key.is_some()
                    && tokio::time::Instant::now() >= next_checkpoint
                {
                    if let Err(e) = self.checkpoint_if_due().await {
                        tracing::warn!(error = %e, "audit checkpoint failed; will retry");
                        self.update(|s| s.checkpoint_error = Some(e.to_string()));
                        next_checkpoint =
                            tokio::time::Instant::now() + self.settings.checkpoint_retry;
                    }
                }
                if shipped == 0 {
                    tokio::time::sleep(self.settings.poll).await;
                }
            }
        })
    }

    fn failed(&self, e: &ShipError) {
        tracing::warn!(error = %e, "audit shipping failed; the local chain goes on, shipping will catch up");
        self.update(|s| s.last_error = Some(e.to_string()));
    }

    async fn ensure_streams(&self) -> Result<(), ShipError> {
        use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata as _;
        let exists = |code: Option<&str>| code == Some("ResourceAlreadyExistsException");
        if let Err(e) = self
            .logs
            .create_log_group()
            .log_group_name(&self.settings.log_group)
            .send()
            .await
        {
            if !exists(e.code()) {
                return Err(ShipError::Logs(sdk_message(&e)));
            }
        }
        for stream in [ROWS_STREAM, CHECKPOINT_STREAM] {
            if let Err(e) = self
                .logs
                .create_log_stream()
                .log_group_name(&self.settings.log_group)
                .log_stream_name(stream)
                .send()
                .await
            {
                if !exists(e.code()) {
                    return Err(ShipError::Logs(sdk_message(&e)));
                }
            }
        }
        Ok(())
    }

    /// Ships one batch of queued rows; returns how many.
    pub async fn ship_once(&self) -> Result<usize, ShipError> {
        let db = self.audit.db();
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE seq IN \
             (SELECT seq FROM audit_outbox ORDER BY seq LIMIT $1) ORDER BY seq"
        );
        let rows: Vec<AuditRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(MAX_BATCH_ROWS)
            .fetch_all(&db.pool)
            .await?;
        if rows.is_empty() {
            // Outbox entries whose row is gone (truncated log): nothing to ship.
            sqlx::query("DELETE FROM audit_outbox WHERE seq NOT IN (SELECT seq FROM audit_log)")
                .execute(&db.pool)
                .await?;
            return Ok(0);
        }
        let mut events = Vec::with_capacity(rows.len());
        let mut bytes = 0usize;
        let first_ms = rows[0].ts_us.div_euclid(1000);
        let mut last_seq = rows[0].seq;
        for row in &rows {
            let message = serde_json::to_string(row).map_err(|e| ShipError::Logs(e.to_string()))?;
            let ms = row.ts_us.div_euclid(1000);
            // One batch: under 1 MiB, spanning under 24 hours, in time order.
            if !events.is_empty()
                && (bytes + message.len() + 26 > MAX_BATCH_BYTES || ms - first_ms >= 23 * 3_600_000)
            {
                break;
            }
            bytes += message.len() + 26;
            last_seq = row.seq;
            events.push(
                InputLogEvent::builder()
                    .timestamp(ms)
                    .message(message)
                    .build()
                    .map_err(|e| ShipError::Logs(e.to_string()))?,
            );
        }
        let n = events.len();
        let out = self
            .logs
            .put_log_events()
            .log_group_name(&self.settings.log_group)
            .log_stream_name(ROWS_STREAM)
            .set_log_events(Some(events))
            .send()
            .await
            .map_err(|e| ShipError::Logs(sdk_message(&e)))?;
        if let Some(rejected) = out.rejected_log_events_info() {
            // Too old or too new for CloudWatch: recorded, not retried forever.
            tracing::warn!(?rejected, "CloudWatch rejected some audit events");
        }
        sqlx::query("DELETE FROM audit_outbox WHERE seq >= $1 AND seq <= $2")
            .bind(rows[0].seq)
            .bind(last_seq)
            .execute(&db.pool)
            .await?;
        let now = self.clock.now_us();
        self.update(|s| {
            s.last_shipped_seq = last_seq;
            s.last_success_us = now;
            s.last_error = None;
        });
        Ok(n)
    }

    async fn checkpoint_if_due(&self) -> Result<(), ShipError> {
        let Some(key) = &self.settings.checkpoint_key else {
            return Ok(());
        };
        let Some((seq, hash, ts_us)) = self.audit.head().await? else {
            return Ok(());
        };
        let last: Option<(i64, i64)> = sqlx::query_as(
            "SELECT seq, signed_us FROM audit_checkpoints ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.audit.db().pool)
        .await?;
        let now = self.clock.now_us();
        let (last_seq, last_us) = last.unwrap_or((0, 0));
        let every_us =
            i64::try_from(self.settings.checkpoint_every.as_micros()).unwrap_or(i64::MAX);
        let due = seq > last_seq
            && (seq - last_seq >= self.settings.checkpoint_every_rows || now - last_us >= every_us);
        if !due {
            return Ok(());
        }
        let cp = sign_checkpoint(&self.kms, key, seq, &hash, ts_us, now).await?;
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, ts_us, signed_us, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (seq) DO NOTHING",
        )
        .bind(cp.seq)
        .bind(&cp.hash)
        .bind(cp.ts_us)
        .bind(cp.signed_us)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(&self.audit.db().pool)
        .await?;
        let message = serde_json::to_string(&cp).map_err(|e| ShipError::Logs(e.to_string()))?;
        self.logs
            .put_log_events()
            .log_group_name(&self.settings.log_group)
            .log_stream_name(CHECKPOINT_STREAM)
            .log_events(
                InputLogEvent::builder()
                    .timestamp(now.div_euclid(1000))
                    .message(message)
                    .build()
                    .map_err(|e| ShipError::Logs(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| ShipError::Logs(sdk_message(&e)))?;
        self.update(|s| {
            s.last_checkpoint_seq = cp.seq;
            s.last_checkpoint_us = cp.signed_us;
            s.checkpoint_error = None;
        });
        Ok(())
    }
}

/// Outbox backlog: (rows waiting, oldest waiting row's time).
pub async fn backlog(audit: &AuditLog) -> Result<(i64, Option<i64>), AuditError> {
    let (n, oldest): (i64, Option<i64>) = sqlx::query_as(
        "SELECT COUNT(*), MIN(l.ts_us) FROM audit_outbox o JOIN audit_log l ON l.seq = o.seq",
    )
    .fetch_one(&audit.db().pool)
    .await?;
    Ok((n, oldest))
}
