//! `callvault audit verify|export`.

use std::io::Write as _;
use std::process::ExitCode;

use futures_util::StreamExt as _;

use super::common::{audit_cli, CliError, Cmd};
use super::{AuditCommand, FormatArg};
use crate::audit::export::{self, ExportFormat};
use crate::audit::{Action, AuditFilter};
use crate::config::StorageArgs;

pub async fn run(
    storage: &StorageArgs,
    cmd: Cmd,
    command: AuditCommand,
) -> Result<ExitCode, CliError> {
    match command {
        AuditCommand::Verify {
            checkpoints,
            checkpoint_key,
        } => {
            let report = cmd.audit.verify().await?;
            let signed = if checkpoints {
                let key = checkpoint_key
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty());
                let Some(key) = key else {
                    return Err(CliError::Usage(
                        "--checkpoints needs CALLVAULT_CHECKPOINT_KEY (the trusted signing key)"
                            .into(),
                    ));
                };
                Some(check_checkpoints(storage, &cmd, key).await?)
            } else {
                None
            };
            let signed_problems = signed.as_ref().map_or(0, |s| s.problems.len());
            let (outcome, detail) = match &report.first_bad {
                None if signed_problems > 0 => (
                    "broken",
                    format!(
                        "{} rows verified; checkpoints: {}",
                        report.rows_checked,
                        signed
                            .as_ref()
                            .map(|s| s.problems.join("; "))
                            .unwrap_or_default()
                    ),
                ),
                None => ("ok", format!("{} rows verified", report.rows_checked)),
                Some(b) => ("broken", format!("broken at row {}: {}", b.seq, b.problem)),
            };
            // The report comes first: a forged head row (a sequence number
            // at i64::MAX, a TEXT one) can make appending this command's own
            // row fail, and the report must not be lost with it.
            if let Some(s) = &signed {
                println!(
                    "checkpoints: {} checked, newest signed row {}, newest shipped row {}",
                    s.checkpoints_checked,
                    s.newest_checkpoint_seq,
                    s.shipped_head.map_or("none".to_owned(), |h| h.to_string())
                );
                for p in &s.problems {
                    println!("CHECKPOINT PROBLEM: {p}");
                }
            }
            let verified = match &report.first_bad {
                None if signed_problems > 0 => {
                    println!(
                        "audit log FAILS its signed checkpoints ({} rows chain correctly, head row {})",
                        report.rows_checked, report.head_seq
                    );
                    false
                }
                None => {
                    println!(
                        "audit chain verified: {} rows checked, head row {}",
                        report.rows_checked, report.head_seq
                    );
                    true
                }
                Some(b) => {
                    println!(
                        "audit chain BROKEN at row {}: {} ({} rows checked)",
                        b.seq, b.problem, report.rows_checked
                    );
                    false
                }
            };
            let _ = std::io::stdout().flush();
            if let Err(e) = audit_cli(&cmd, Action::AuditVerify, outcome, detail).await {
                eprintln!(
                    "callvault: the verification could not be recorded in the audit log: {e}"
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(if verified {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Export { format } => {
            let format = match format {
                FormatArg::Csv => ExportFormat::Csv,
                FormatArg::Jsonl => ExportFormat::Jsonl,
            };
            audit_cli(
                &cmd,
                Action::AuditExport,
                "ok",
                format!("{} all rows", format.extension()),
            )
            .await?;
            let mut stream = Box::pin(export::stream(
                cmd.audit.clone(),
                AuditFilter::default(),
                format,
            ));
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
            drop(cmd.db);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `audit verify --checkpoints`: problems found against the signed record.
async fn check_checkpoints(
    storage: &StorageArgs,
    cmd: &Cmd,
    key: &str,
) -> Result<crate::audit::ship::CheckpointReport, CliError> {
    use crate::audit::ship;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let mut checkpoints = ship::local_checkpoints(&cmd.audit).await?;
    let mut shipped_head = None;
    if let Some(group) = storage.audit_log_group() {
        let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let (remote, head) = ship::remote_record(&logs, group)
            .await
            .map_err(|e| CliError::Usage(format!("cannot read the shipped record: {e}")))?;
        checkpoints.extend(remote);
        shipped_head = head;
    }
    ship::check_against_checkpoints(&cmd.audit, &kms, key, checkpoints, shipped_head)
        .await
        .map_err(|e| CliError::Usage(format!("cannot check checkpoints: {e}")))
}
