//! `callvault keys roll | list | retire --through YYYY-MM | cancel YYYY-MM`:
//! the period keys of a `kms-period:` or `raw-aes-period:` keyring.

use std::process::ExitCode;

use lambda_encrypt::keyring::KeyringSpec;
use lambda_encrypt::period::{date_of_us, Period};

use super::common::{cli_actor, cli_meta, open, CliError};
use crate::config::StorageArgs;
use crate::keys::{
    KeyOptions, KeysError, Operator, PeriodKeyService, RetentionDays, DEFAULT_PENDING_DAYS,
};

#[derive(Debug, Clone, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

/// What every `keys` subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyringArg {
    /// The period keyring: kms-period:<alias-prefix> or raw-aes-period:<dir>.
    #[arg(long, env = "CALLVAULT_KEYRING")]
    pub keyring: Option<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RetentionArg {
    /// Days a captured value may be revealed (1 to 3660); `retire` refuses
    /// any month with a day still inside it, `list` marks each period.
    #[arg(long = "retention-days", env = "CALLVAULT_RETENTION_DAYS")]
    pub retention_days: Option<String>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Make sure this month's and next month's keys exist and `current`
    /// names this month's (idempotent; run it daily).
    Roll {
        #[command(flatten)]
        keyring: KeyringArg,
        /// The deployment named in each new key's `callvault:deployment` tag.
        #[arg(long, env = "CALLVAULT_DEPLOYMENT", default_value = "callvault")]
        deployment: String,
        /// The KMS key whose key policy new period keys copy when none
        /// exists yet (the template's PeriodKeyPolicySource); later keys
        /// copy the newest period key.
        #[arg(long = "policy-from", env = "CALLVAULT_KEY_POLICY_FROM")]
        policy_from: Option<String>,
    },
    /// One line per period key: period, key id, state, retention.
    List {
        #[command(flatten)]
        keyring: KeyringArg,
        #[command(flatten)]
        retention: RetentionArg,
    },
    /// Schedule the deletion of every period key through a month (KMS), or
    /// destroy their files (raw-aes-period): their values become unrecoverable.
    Retire {
        #[command(flatten)]
        keyring: KeyringArg,
        #[command(flatten)]
        retention: RetentionArg,
        /// The last month to retire (YYYY-MM).
        #[arg(long)]
        through: String,
        /// Days KMS waits before deleting (7 to 30); cancel within them.
        #[arg(long = "pending-days", default_value_t = DEFAULT_PENDING_DAYS)]
        pending_days: u32,
    },
    /// Cancel the pending deletion of one month's key and enable it again.
    Cancel {
        #[command(flatten)]
        keyring: KeyringArg,
        /// The month (YYYY-MM).
        period: String,
    },
}

fn usage(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(e.to_string())
}

pub async fn run(storage: &StorageArgs, args: KeysArgs) -> Result<ExitCode, CliError> {
    let (keyring, retention_days, deployment, policy_from) = match &args.command {
        KeysCommand::Roll {
            keyring,
            deployment,
            policy_from,
        } => (keyring, None, deployment.clone(), policy_from.clone()),
        KeysCommand::List { keyring, retention }
        | KeysCommand::Retire {
            keyring, retention, ..
        } => (
            keyring,
            retention.retention_days.clone(),
            String::new(),
            None,
        ),
        KeysCommand::Cancel { keyring, .. } => (keyring, None, String::new(), None),
    };
    // Every argument is checked before anything is opened or touched.
    let spec: KeyringSpec = keyring
        .keyring
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            usage(
                "CALLVAULT_KEYRING is not set (kms-period:<alias-prefix> or raw-aes-period:<dir>)",
            )
        })?
        .parse()
        .map_err(|e| usage(format!("CALLVAULT_KEYRING: {e}")))?;
    if !spec.is_periodic() {
        return Err(usage(KeysError::NotPeriodic));
    }
    let retention: Option<RetentionDays> = match retention_days.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse()
                .map_err(|e| usage(format!("CALLVAULT_RETENTION_DAYS: {e}")))?,
        ),
    };
    let period = |s: &str| Period::parse(s.trim()).map_err(usage);
    let command = match &args.command {
        KeysCommand::Retire {
            through,
            pending_days,
            ..
        } => {
            if !crate::keys::PENDING_DAYS.contains(pending_days) {
                return Err(usage(KeysError::PendingDays(*pending_days)));
            }
            Some(period(through)?)
        }
        KeysCommand::Cancel { period: p, .. } => Some(period(p)?),
        _ => None,
    };
    let cmd = open(storage).await?;
    let sdk = if spec.uses_kms() {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    let service = PeriodKeyService::new(
        &spec,
        sdk.as_ref(),
        KeyOptions {
            deployment,
            policy_from: policy_from.filter(|s| !s.trim().is_empty()),
        },
        cmd.audit.clone(),
        cmd.clock.clone(),
        Operator {
            actor: cli_actor(),
            role: "cli".into(),
            meta: cli_meta(),
        },
    )
    .map_err(usage)?;
    match (args.command, command) {
        (KeysCommand::Roll { .. }, _) => {
            let report = service.roll().await.map_err(usage)?;
            let created: Vec<String> = report.created.iter().map(Period::to_string).collect();
            println!(
                "created: {}; current: {}{}",
                if created.is_empty() {
                    "none".into()
                } else {
                    created.join(", ")
                },
                report.current.map(|p| p.to_string()).unwrap_or_default(),
                if report.moved_current.is_some() {
                    " (moved)"
                } else {
                    ""
                }
            );
        }
        (KeysCommand::List { .. }, _) => {
            let keys = service.list(retention).await.map_err(usage)?;
            if keys.is_empty() {
                println!("no period keys (run `callvault keys roll`)");
            }
            for k in keys {
                println!("{}", k.line());
            }
        }
        (KeysCommand::Retire { pending_days, .. }, Some(through)) => {
            let report = service
                .retire(through, pending_days, retention)
                .await
                .map_err(usage)?;
            for (period, key_id, until) in &report.retired {
                match until {
                    Some(t) => println!(
                        "{period}  {key_id}  pending deletion until {} (cancel before then: callvault keys cancel {period})",
                        date_of_us(*t)
                    ),
                    None => println!("{period}  {key_id}  destroyed"),
                }
            }
            for period in &report.already_pending {
                println!("{period}  already pending deletion");
            }
        }
        (KeysCommand::Cancel { .. }, Some(period)) => {
            service.cancel(period).await.map_err(usage)?;
            println!("{period}: deletion cancelled, key enabled");
        }
        _ => return Err(usage("unexpected arguments")),
    }
    Ok(ExitCode::SUCCESS)
}
