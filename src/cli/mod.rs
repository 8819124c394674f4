//! The command line (a contract: docs/contracts.md): the definitions, and
//! a one-line dispatch to each subcommand's file.

mod audit;
mod common;
mod connect_key;
mod decrypt;
mod env_table;
pub mod keys;
mod user;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::{SharedClock, SystemClock};
use crate::config::{ServeArgs, Settings, ShippingArgs, StorageArgs};
use crate::db::Db;
use crate::startup::Application;
use common::{init_logging, open, CliError};
pub use env_table::env_table;

#[derive(Debug, Parser)]
#[command(
    name = "callvault",
    version,
    about = "Audited console for caller input captured by the callvault Lex V2 Lambda"
)]
pub struct Cli {
    #[command(flatten)]
    pub shipping: ShippingArgs,
    /// Log filter (`error`, `warn`, `info`, `debug`, or tracing directives such
    /// as `info,sqlx=warn`); default `info,sqlx=warn` for serve and demo,
    /// `warn` for the other commands.
    #[arg(long = "log-level", env = "CALLVAULT_LOG", global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console.
    Serve {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Run the console offline: SQLite, a local raw AES key, demo contacts and
    /// flow logs encrypted by the Lambda's own code, one user per role.
    Demo(DemoArgs),
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Reveal one captured value, audited exactly like the web console.
    Decrypt {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: DecryptArgs,
    },
    /// Manage console users.
    User {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a new raw AES-256 key file (base64, mode 0600) for `raw-aes:` keyrings.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Period keys: roll, list, retire, cancel (kms-period: and raw-aes-period: keyrings).
    Keys {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(flatten)]
        args: keys::KeysArgs,
    },
    /// Make the RSA key pair for Amazon Connect's encrypted customer input.
    ConnectKey {
        #[command(subcommand)]
        command: connect_key::ConnectKeyCommand,
    },
    /// Verify or export the audit log.
    Audit {
        #[command(flatten)]
        storage: StorageArgs,
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the AWS prerequisites with the console's credentials: one line
    /// per check, exit non-zero if any fails.
    Preflight(crate::preflight::PreflightArgs),
    /// Print the table of environment variables (docs/configuration.md).
    #[command(hide = true)]
    EnvTable,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Directory for the demo's database, key and secrets (created if absent).
    #[arg(long, env = "CALLVAULT_DEMO_DIR", default_value = "callvault-demo")]
    pub dir: PathBuf,
    /// Loopback address to listen on.
    #[arg(long, env = "CALLVAULT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Keep users and the audit log in this database instead of the SQLite
    /// file in --dir (e.g. one PostgreSQL database for several demo replicas
    /// sharing --dir).
    #[arg(long, env = "CALLVAULT_DEMO_DATABASE_URL")]
    pub shared_database: Option<String>,
    #[command(flatten)]
    pub protection: crate::config::ProtectionArgs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DecryptArgs {
    #[command(flatten)]
    pub sources: crate::config::SourceArgs,
    #[arg(long)]
    pub contact_id: String,
    #[arg(long)]
    pub field: String,
    /// An enabled supervisor account: the reveal is recorded under this name.
    #[arg(long)]
    pub operator: String,
    #[arg(long)]
    pub reason: String,
    /// The case or ticket reference, checked like the web form's
    /// (CALLVAULT_CASE_PATTERN, CALLVAULT_CASE_REQUIRED).
    #[arg(long, default_value = "")]
    pub case_ref: String,
    /// The stored value; without it, the contact's attribute is read from Amazon Connect.
    #[arg(long)]
    pub ciphertext: Option<String>,
    /// The same guards as the web: budget, dual control, step-up (the
    /// operator's TOTP code is read from the terminal or standard input).
    #[command(flatten)]
    pub protection: crate::config::ProtectionArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input or a prompt, never from arguments.
    Add {
        username: String,
        #[arg(long)]
        role: String,
    },
    /// List users.
    List,
    /// Disable a user and end their sessions.
    Disable { username: String },
    /// Set a user's password (read from standard input or a prompt) and end their sessions.
    Passwd {
        username: String,
        /// Give a single sign-on user a local password (a way around the
        /// identity provider: refused without this, recorded with it).
        #[arg(long)]
        allow_sso_user: bool,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the whole chain; exit 0 only if every row verifies.
    Verify {
        /// Also check the chain against the KMS-signed checkpoints (local and
        /// shipped to CALLVAULT_AUDIT_LOG_GROUP) and the newest shipped row:
        /// this catches deleted newest rows.
        #[arg(long)]
        checkpoints: bool,
        /// The KMS key that signs checkpoints: only its signatures count.
        #[arg(long, env = "CALLVAULT_CHECKPOINT_KEY")]
        checkpoint_key: Option<String>,
    },
    /// Write the whole log to standard output.
    Export {
        #[arg(long, value_enum, default_value = "csv")]
        format: FormatArg,
    },
}

/// The command line as parsed: `--help` shows which variable sets each
/// option, never its value (a database URL holds its password).
pub fn command() -> clap::Command {
    fn hide_env_values(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|a| a.hide_env_values(true))
            .mut_subcommands(hide_env_values)
    }
    hide_env_values(<Cli as clap::CommandFactory>::command())
}

pub fn main() -> ExitCode {
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("callvault: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            let mut msg = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                source = s.source();
            }
            eprintln!("callvault: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve { storage, args } => {
            init_logging(true, cli.log_level.as_deref());
            let settings = Settings::from_args(&storage.with_shipping(&cli.shipping), &args)?;
            let app = Application::build(settings, Arc::new(SystemClock)).await?;
            tracing::info!(port = app.port(), "callvault console listening");
            app.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            crate::demo::run::run(
                &args.dir,
                &args.listen,
                args.shared_database.as_deref(),
                &args.protection,
                cli.shipping.audit_log_group(),
                cli.log_level.as_deref(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Decrypt { storage, args } => {
            init_logging(false, cli.log_level.as_deref());
            decrypt::run(&storage.with_shipping(&cli.shipping), args).await
        }
        Command::Preflight(args) => {
            init_logging(false, cli.log_level.as_deref());
            let clock: SharedClock = Arc::new(SystemClock);
            Ok(crate::preflight::command(args, cli.shipping.audit_log_group(), clock).await)
        }
        Command::Migrate { storage } => {
            init_logging(false, cli.log_level.as_deref());
            let db = Db::open(&storage.database_url).await?;
            println!("migrations applied ({:?})", db.backend);
            Ok(ExitCode::SUCCESS)
        }
        Command::EnvTable => {
            print!("{}", env_table());
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { out } => {
            lambda_encrypt::keyring::generate_raw_aes_key_file(&out)?;
            println!(
                "wrote {} (key name '{}'); use CALLVAULT_KEYRING=raw-aes:{}",
                out.display(),
                lambda_encrypt::keyring::raw_aes_key_name(&out)?,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::ConnectKey { command } => connect_key::run(command),
        Command::User { storage, command } => {
            init_logging(false, cli.log_level.as_deref());
            let cmd = open(&storage.with_shipping(&cli.shipping)).await?;
            user::run(&cmd, command).await
        }
        Command::Keys { storage, args } => {
            init_logging(false, cli.log_level.as_deref());
            keys::run(&storage.with_shipping(&cli.shipping), args).await
        }
        Command::Audit { storage, command } => {
            init_logging(false, cli.log_level.as_deref());
            let storage = storage.with_shipping(&cli.shipping);
            let cmd = open(&storage).await?;
            audit::run(&storage, cmd, command).await
        }
    }
}
