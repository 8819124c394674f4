//! What the subcommands share: errors, logging, prompts, and opening storage.

use std::io::{BufRead as _, IsTerminal as _};
use std::sync::Arc;

use crate::audit::{Action, AuditEvent, AuditLog, RequestMeta};
use crate::auth::password::Password;
use crate::auth::users::Users;
use crate::clock::{SharedClock, SystemClock};
use crate::config::StorageArgs;
use crate::db::Db;
use crate::secrets::Secrets;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Settings(#[from] crate::config::SettingsError),
    #[error(transparent)]
    Db(#[from] crate::db::DbError),
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error(transparent)]
    Users(#[from] crate::auth::users::UserError),
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    #[error(transparent)]
    Keyring(#[from] lambda_encrypt::keyring::KeyringError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Crypto(#[from] lambda_encrypt::crypto::CryptoError),
    #[error(transparent)]
    Demo(#[from] crate::demo::DemoError),
    #[error(transparent)]
    Source(#[from] crate::sources::SourceError),
}

pub fn init_logging(json: bool, level: Option<&str>) {
    let filter = level
        .and_then(|l| tracing_subscriber::EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| {
            tracing_subscriber::EnvFilter::new(if json { "info,sqlx=warn" } else { "warn" })
        });
    if json {
        let _ = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .try_init();
    } else {
        let _ = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .try_init();
    }
}

pub fn cli_meta() -> RequestMeta {
    RequestMeta {
        client_addr: "cli".into(),
        user_agent: format!("callvault-cli/{}", env!("CARGO_PKG_VERSION")),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

pub fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "local".into())
    )
}

/// Reads a TOTP code from the terminal or one line of standard input.
pub fn read_code() -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password("Authenticator code: ")?)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_owned())
    }
}

/// Reads a password from the terminal (twice) or one line of standard input.
pub fn read_password(confirm: bool) -> Result<Password, CliError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        if confirm {
            let second = zeroize::Zeroizing::new(rpassword::prompt_password("Repeat password: ")?);
            if first != *second {
                return Err(CliError::Usage("the passwords differ".into()));
            }
        }
        Ok(Password::new(first))
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let trimmed = line.trim_end_matches(['\r', '\n']).to_owned();
        zeroize::Zeroize::zeroize(&mut line);
        Ok(Password::new(trimmed))
    }
}

pub struct Cmd {
    pub db: Db,
    pub users: Users,
    pub audit: AuditLog,
    pub totp: crate::auth::totp::TotpStore,
    pub clock: SharedClock,
}

pub async fn open(storage: &StorageArgs) -> Result<Cmd, CliError> {
    let clock: SharedClock = Arc::new(SystemClock);
    let db = Db::open(&storage.database_url).await?;
    let secrets = Secrets::load_or_create(&storage.secrets_dir)?;
    let mut audit = AuditLog::new(db.clone(), secrets.audit_key.clone(), clock.clone());
    if storage.audit_log_group().is_some() {
        // The running console ships what this command records.
        audit = audit.with_outbox();
    }
    Ok(Cmd {
        users: Users::new(db.clone(), clock.clone()),
        totp: crate::auth::totp::TotpStore::open(
            db.clone(),
            &secrets.totp_key,
            &secrets.audit_key,
            clock.clone(),
        )
        .await
        .map_err(crate::startup::StartupError::from)?,
        clock,
        audit,
        db,
    })
}

pub fn cli_event(action: Action, outcome: &str, detail: String) -> AuditEvent {
    AuditEvent::new(action, &cli_actor(), "cli", outcome, &cli_meta()).detail(detail)
}

pub async fn audit_cli(
    cmd: &Cmd,
    action: Action,
    outcome: &str,
    detail: String,
) -> Result<(), CliError> {
    cmd.audit.append(cli_event(action, outcome, detail)).await?;
    Ok(())
}
