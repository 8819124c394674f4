//! Signed checkpoints of the chain head (KMS asymmetric keys), and checking
//! the local chain against what CloudWatch holds.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::SigningAlgorithmSpec;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{sdk_message, ShipError, CHECKPOINT_STREAM, CHECKPOINT_TAG, ROWS_STREAM};
use crate::audit::{AuditError, AuditLog, AuditRow};

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub ts_us: i64,
    pub signed_us: i64,
    pub key_id: String,
    /// base64 of the KMS signature over `signed_message()`.
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes KMS signs.
    pub fn signed_message(seq: i64, hash: &str, ts_us: i64, signed_us: i64) -> Vec<u8> {
        format!("{CHECKPOINT_TAG}\nseq={seq}\nhash={hash}\nts_us={ts_us}\nsigned_us={signed_us}\n")
            .into_bytes()
    }

    pub fn message(&self) -> Vec<u8> {
        Self::signed_message(self.seq, &self.hash, self.ts_us, self.signed_us)
    }
}

/// A key's ARN and the signing algorithm used with it (ECDSA P-256
/// preferred, then RSA-PSS).
async fn describe_signing_key(
    kms: &aws_sdk_kms::Client,
    key: &str,
) -> Result<(String, SigningAlgorithmSpec), ShipError> {
    let out = kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| ShipError::Kms(sdk_message(&e)))?;
    let meta = out
        .key_metadata()
        .ok_or_else(|| ShipError::Kms("the checkpoint key has no metadata".into()))?;
    let arn = meta.arn().unwrap_or(meta.key_id()).to_owned();
    let algs = meta.signing_algorithms();
    for preferred in [
        SigningAlgorithmSpec::EcdsaSha256,
        SigningAlgorithmSpec::RsassaPssSha256,
    ] {
        if algs.contains(&preferred) {
            return Ok((arn, preferred));
        }
    }
    algs.first()
        .cloned()
        .map(|alg| (arn, alg))
        .ok_or_else(|| ShipError::Kms("the checkpoint key cannot sign".into()))
}

pub async fn sign_checkpoint(
    kms: &aws_sdk_kms::Client,
    key: &str,
    seq: i64,
    hash: &str,
    ts_us: i64,
    signed_us: i64,
) -> Result<Checkpoint, ShipError> {
    let (_, alg) = describe_signing_key(kms, key).await?;
    let out = kms
        .sign()
        .key_id(key)
        .message(Blob::new(Checkpoint::signed_message(
            seq, hash, ts_us, signed_us,
        )))
        .message_type(aws_sdk_kms::types::MessageType::Raw)
        .signing_algorithm(alg)
        .send()
        .await
        .map_err(|e| ShipError::Kms(sdk_message(&e)))?;
    let sig = out
        .signature()
        .ok_or_else(|| ShipError::Kms("no signature returned".into()))?;
    Ok(Checkpoint {
        seq,
        hash: hash.to_owned(),
        ts_us,
        signed_us,
        key_id: out.key_id().unwrap_or(key).to_owned(),
        signature: base64::engine::general_purpose::STANDARD.encode(sig.as_ref()),
    })
}

/// Whether KMS accepts a checkpoint's signature under the trusted `key`.
pub async fn verify_checkpoint(
    kms: &aws_sdk_kms::Client,
    key: &str,
    cp: &Checkpoint,
    alg: SigningAlgorithmSpec,
) -> Result<bool, ShipError> {
    let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(&cp.signature) else {
        return Ok(false);
    };
    match kms
        .verify()
        .key_id(key)
        .message(Blob::new(cp.message()))
        .message_type(aws_sdk_kms::types::MessageType::Raw)
        .signature(Blob::new(sig))
        .signing_algorithm(alg)
        .send()
        .await
    {
        Ok(out) => Ok(out.signature_valid()),
        Err(e) => {
            use aws_sdk_kms::error::ProvideErrorMetadata as _;
            if e.code() == Some("KMSInvalidSignatureException") {
                Ok(false)
            } else {
                Err(ShipError::Kms(sdk_message(&e)))
            }
        }
    }
}

/// Checkpoints held locally, oldest first.
pub async fn local_checkpoints(audit: &AuditLog) -> Result<Vec<Checkpoint>, AuditError> {
    Ok(sqlx::query_as(
        "SELECT seq, hash, ts_us, signed_us, key_id, signature FROM audit_checkpoints ORDER BY seq",
    )
    .fetch_all(&audit.db().pool)
    .await?)
}

/// Checkpoints and the newest shipped row, as CloudWatch holds them.
pub async fn remote_record(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
) -> Result<(Vec<Checkpoint>, Option<i64>), ShipError> {
    let mut checkpoints = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(CHECKPOINT_STREAM)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| ShipError::Logs(sdk_message(&e)))?;
        let events = out.events();
        for e in events {
            match e.message().map(serde_json::from_str::<Checkpoint>) {
                Some(Ok(cp)) => checkpoints.push(cp),
                _ => tracing::warn!("unreadable event in the checkpoint stream"),
            }
        }
        let next = out.next_forward_token().map(str::to_owned);
        if events.is_empty() || next.is_none() || next == token {
            break;
        }
        token = next;
    }
    // The newest shipped rows: the stream's tail.
    let out = logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(ROWS_STREAM)
        .start_from_head(false)
        .limit(50)
        .send()
        .await
        .map_err(|e| ShipError::Logs(sdk_message(&e)))?;
    let shipped_head = out
        .events()
        .iter()
        .filter_map(|e| e.message())
        .filter_map(|m| serde_json::from_str::<AuditRow>(m).ok())
        .map(|r| r.seq)
        .max();
    Ok((checkpoints, shipped_head))
}

/// The outcome of `audit verify --checkpoints`.
#[derive(Debug, Clone, Default)]
pub struct CheckpointReport {
    pub checkpoints_checked: usize,
    pub newest_checkpoint_seq: i64,
    pub shipped_head: Option<i64>,
    pub problems: Vec<String>,
}

/// Checks the local chain against the checkpoints signed by the trusted
/// `key` (a checkpoint naming any other key counts as forged: anyone can sign
/// with a key of their own) and against the newest shipped row.
pub async fn check_against_checkpoints(
    audit: &AuditLog,
    kms: &aws_sdk_kms::Client,
    key: &str,
    mut checkpoints: Vec<Checkpoint>,
    shipped_head: Option<i64>,
) -> Result<CheckpointReport, ShipError> {
    checkpoints.sort_by_key(|c| (c.seq, c.signed_us));
    checkpoints.dedup();
    let local_head = audit.head().await?.map_or(0, |(seq, _, _)| seq);
    let mut report = CheckpointReport {
        shipped_head,
        ..CheckpointReport::default()
    };
    let (trusted_arn, alg) = describe_signing_key(kms, key).await?;
    for cp in &checkpoints {
        report.checkpoints_checked += 1;
        if cp.key_id != trusted_arn && cp.key_id != key {
            report.problems.push(format!(
                "checkpoint for row {} is signed by another key ({}), not the trusted one",
                cp.seq,
                cp.key_id.chars().take(120).collect::<String>()
            ));
            continue;
        }
        if !verify_checkpoint(kms, &trusted_arn, cp, alg.clone()).await? {
            report.problems.push(format!(
                "checkpoint for row {} has no valid KMS signature (forged or altered)",
                cp.seq
            ));
            continue;
        }
        report.newest_checkpoint_seq = report.newest_checkpoint_seq.max(cp.seq);
        match audit.row(cp.seq).await? {
            None => report.problems.push(format!(
                "row {} was signed in a checkpoint but is missing: the log ends at row {local_head} (truncated)",
                cp.seq
            )),
            Some(row) if row.hash != cp.hash => report.problems.push(format!(
                "row {} differs from its signed checkpoint (rewritten)",
                cp.seq
            )),
            Some(_) => {}
        }
    }
    if let Some(shipped) = shipped_head {
        if shipped > local_head {
            report.problems.push(format!(
                "CloudWatch holds row {shipped} but the local log ends at row {local_head} (truncated)"
            ));
        }
    }
    Ok(report)
}
