//! Console settings (DESIGN.md section 5: flags with environment fallbacks).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Where the console keeps its state; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// sqlite://FILE (created if absent) or postgres://...
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://callvault.db",
        global = true
    )]
    pub database_url: String,
    /// Directory of the audit and session keys (created with 0600 files if absent).
    #[arg(
        long,
        env = "CALLVAULT_SECRETS_DIR",
        default_value = "secrets",
        global = true
    )]
    pub secrets_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "CALLVAULT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Send the session cookie without `Secure` (allowed on loopback addresses only).
    #[arg(long, env = "CALLVAULT_INSECURE_COOKIE", default_value_t = false)]
    pub insecure_cookie: bool,
    /// Idle session timeout in minutes.
    #[arg(long, env = "CALLVAULT_IDLE_TIMEOUT_MIN", default_value_t = 15)]
    pub idle_timeout_min: u64,
    /// Absolute session timeout in minutes.
    #[arg(long, env = "CALLVAULT_ABSOLUTE_TIMEOUT_MIN", default_value_t = 480)]
    pub absolute_timeout_min: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("CALLVAULT_LISTEN is not an address (host:port): {0}")]
    Listen(String),
    #[error(
        "an insecure (non-Secure) session cookie is allowed only on a loopback listen address"
    )]
    InsecureCookieOffLoopback,
    #[error("timeouts must be at least one minute, and the idle timeout no longer than the absolute one")]
    Timeouts,
}

/// Everything `Application::build` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub secrets_dir: PathBuf,
    pub cookie_secure: bool,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
}

impl Settings {
    pub fn from_args(storage: &StorageArgs, serve: &ServeArgs) -> Result<Self, SettingsError> {
        let listen: SocketAddr = serve
            .listen
            .parse()
            .map_err(|_| SettingsError::Listen(serve.listen.chars().take(100).collect()))?;
        if serve.insecure_cookie && !listen.ip().is_loopback() {
            return Err(SettingsError::InsecureCookieOffLoopback);
        }
        if serve.idle_timeout_min == 0 || serve.absolute_timeout_min < serve.idle_timeout_min {
            return Err(SettingsError::Timeouts);
        }
        Ok(Self {
            listen,
            database_url: storage.database_url.clone(),
            secrets_dir: storage.secrets_dir.clone(),
            cookie_secure: !serve.insecure_cookie,
            idle_timeout: Duration::from_secs(serve.idle_timeout_min * 60),
            absolute_timeout: Duration::from_secs(serve.absolute_timeout_min * 60),
        })
    }
}
