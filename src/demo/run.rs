//! `callvault demo`: the whole console offline, in one command.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use lambda_encrypt::crypto::FieldCrypto;
use lambda_encrypt::handler::{Handler, HandlerConfig};
use lambda_encrypt::keyring::KeyringSpec;
use lambda_encrypt::period::RawPeriodDir;
use rand::TryRngCore as _;

use super::{generate, DemoDirectory, DemoError, DemoLogStore};
use crate::auth::password::Password;
use crate::auth::users::Username;
use crate::auth::Role;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{ProtectionArgs, Settings, SettingsError};
use crate::startup::{Application, Sources};

#[derive(Debug, thiserror::Error)]
pub enum DemoRunError {
    #[error("the demo listens on loopback addresses only")]
    NotLoopback,
    #[error("CALLVAULT_LISTEN is not an address")]
    Listen,
    #[error("cannot prepare the demo directory")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Keyring(#[from] lambda_encrypt::keyring::KeyringError),
    #[error(transparent)]
    Crypto(#[from] lambda_encrypt::crypto::CryptoError),
    #[error(transparent)]
    Data(#[from] DemoError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Users(#[from] crate::auth::users::UserError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl From<DemoRunError> for DemoError {
    fn from(e: DemoRunError) -> Self {
        match e {
            DemoRunError::Data(d) => d,
            other => DemoError::Setup(other.to_string()),
        }
    }
}

fn random_password() -> Result<String, std::io::Error> {
    let mut bytes = [0u8; 15];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(std::io::Error::other)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Prepares the demo (key, data, users) and returns the application, not yet running.
pub async fn prepare(
    dir: &Path,
    listen: &str,
    clock: SharedClock,
    print: bool,
    configure: impl FnOnce(&mut Settings) -> Result<(), SettingsError>,
) -> Result<Application, DemoRunError> {
    let listen: std::net::SocketAddr = listen.parse().map_err(|_| DemoRunError::Listen)?;
    if !listen.ip().is_loopback() {
        return Err(DemoRunError::NotLoopback);
    }
    private_dir(dir)?;
    // Absolute: the printed hints work from any working directory.
    let dir = &std::fs::canonicalize(dir)?;
    // One key file per month, as `callvault keys roll` keeps them.
    let keys_dir = dir.join("keys");
    private_dir(&keys_dir)?;
    let keys = RawPeriodDir::new(&keys_dir);
    let now = clock.now_us();
    super::periods::ensure_keys(&keys, now)?;
    let spec = KeyringSpec::RawAesPeriod { dir: keys_dir };
    // The demo's values are captured by the Lambda's own handler.
    let lambda = Handler::new(
        HandlerConfig::default(),
        FieldCrypto::from_spec(&spec, Default::default(), None).await?,
    );
    let mut data = generate(&lambda, now).await?;
    let crypto = FieldCrypto::from_spec(&spec, Default::default(), None).await?;
    super::periods::spread_over_periods(&mut data, &crypto, &keys, now).await?;
    // Some callers keyed their card through Connect's own encryption too.
    let connect_dir = dir.join("connect-key");
    private_dir(&connect_dir)?;
    let keypad = super::keypad::add_keypad_values(&mut data, &connect_dir, now).await?;
    let mut settings = Settings::local(
        listen,
        format!("sqlite://{}", dir.join("callvault.db").display()),
        dir.join("secrets"),
    );
    settings.cookie_secure = false; // plain HTTP on loopback only
    settings.keyring = Some(spec);
    settings
        .sensitive
        .insert(super::keypad::DEMO_KEYPAD_FIELD.to_owned());
    settings.connect_input = Some(keypad);
    // The demo's contacts carry these attributes: searchable as in Connect.
    settings.aws.searchable_attributes = vec!["customerTier".to_owned(), "language".to_owned()];
    configure(&mut settings)?;
    // The demo shows retention: its oldest period is past a year.
    if settings.retention.is_none() {
        settings.retention =
            crate::keys::RetentionDays::new(u64::from(super::periods::DEMO_RETENTION_DAYS)).ok();
    }
    let sources = Sources {
        directory: Arc::new(DemoDirectory::new(&data)),
        logs: Arc::new(DemoLogStore::new(&data)),
    };
    // Audit shipping is the one AWS service the demo can use.
    let sdk = match settings.ship {
        Some(_) => Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await),
        None => None,
    };
    let hint = command_hint(
        &settings.database_url,
        &settings.secrets_dir,
        "user passwd sam",
    );
    let app = Application::build_with(settings, clock, sources, sdk.as_ref()).await?;
    let state = app.state();
    let url = format!("http://127.0.0.1:{}/", app.port());
    let mut banner = vec![String::new(), format!("callvault demo: {url}")];
    if state.users.list().await?.is_empty() {
        banner.push(
            "To reset a password from another terminal (add a user: `user add NAME --role supervisor`):"
                .into(),
        );
        banner.push(format!("  {hint}"));
        banner.push("Sign in as one of these (passwords are shown this once):".into());
        for (name, role) in [
            ("sam", Role::Supervisor),
            ("alice", Role::Auditor),
            ("root", Role::Admin),
        ] {
            let password = random_password()?;
            let username = Username::parse(name)?;
            state
                .users
                .add(&username, &Password::new(password.clone()), role)
                .await?;
            banner.push(format!("  {role:<10} {name:<6} {password}"));
        }
    } else {
        banner.push(format!(
            "Demo users already exist in {}; reset a password from any terminal with:",
            dir.display()
        ));
        banner.push(format!("  {hint}"));
    }
    let periods = super::periods::demo_periods(now);
    banner.insert(
        2,
        format!(
            "Keypad path: demo contacts {} also hold `{}`, encrypted as Amazon Connect's Store customer input does \
             (RSA key {} in {}), revealed beside the Lex values",
            (0..super::DEMO_CONTACTS)
                .filter(|i| super::keypad::keyed_on_keypad(*i))
                .take(3)
                .map(super::demo_contact_id)
                .collect::<Vec<_>>()
                .join(", ")
                + ", ...",
            super::keypad::DEMO_KEYPAD_FIELD,
            super::keypad::DEMO_CONNECT_KEY_ID,
            connect_dir.display(),
        ),
    );
    // Before the passwords, which come last.
    banner.insert(2, format!(
        "Key periods: one key file per month in {} (CALLVAULT_KEYRING=raw-aes-period:{}); demo contacts \
         fall in {}, and those of {} are past a retention of {} days: try \
         `callvault keys list --retention-days {}` with that keyring, DATABASE_URL and CALLVAULT_SECRETS_DIR",
        keys.path().display(),
        keys.path().display(),
        periods.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        periods.first().map(ToString::to_string).unwrap_or_default(),
        super::periods::DEMO_RETENTION_DAYS,
        super::periods::DEMO_RETENTION_DAYS,
    ));
    if print {
        // Last and plain: the log lines go to a file (`run`), so nothing follows.
        println!(
            "Logs: {} (Ctrl-C stops the demo)",
            dir.join(LOG_FILE).display()
        );
        for line in banner {
            println!("{line}");
        }
    }
    Ok(app)
}

/// A command line that runs `args` on the demo's own database and secrets,
/// pasted as is into another terminal: absolute paths, this very program,
/// shell-quoted. A shared database's URL is not printed when it holds a
/// password.
fn command_hint(database_url: &str, secrets_dir: &Path, args: &str) -> String {
    let program = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "callvault".to_owned());
    let database = if has_password(database_url) {
        "\"$CALLVAULT_DEMO_DATABASE_URL\"".to_owned()
    } else {
        shell_quote(database_url)
    };
    format!(
        "DATABASE_URL={database} CALLVAULT_SECRETS_DIR={} {} {args}",
        shell_quote(&secrets_dir.display().to_string()),
        shell_quote(&program)
    )
}

fn has_password(url: &str) -> bool {
    url.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once('@'))
        .is_some_and(|(userinfo, _)| userinfo.contains(':'))
}

/// `s` as one POSIX shell word.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'/' | b'.' | b'_' | b'-' | b':' | b'+' | b'=' | b',')
        });
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The demo's log file, inside its directory: the terminal keeps only the
/// banner (URL and passwords), not the Lambda's and the console's log lines.
pub const LOG_FILE: &str = "callvault.log";

fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// JSON log lines to `<dir>/callvault.log` (appended), at `log_level` or
/// `info,sqlx=warn`.
fn log_to_file(dir: &Path, log_level: Option<&str>) -> Result<(), DemoRunError> {
    private_dir(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(dir.join(LOG_FILE))?;
    let filter = log_level
        .and_then(|l| tracing_subscriber::EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_writer(std::sync::Mutex::new(file))
        .with_env_filter(filter)
        .try_init();
    Ok(())
}

pub async fn run(
    dir: &Path,
    listen: &str,
    shared_database: Option<&str>,
    protection: &ProtectionArgs,
    audit_log_group: Option<&str>,
    log_level: Option<&str>,
) -> Result<(), DemoError> {
    log_to_file(dir, log_level)?;
    let app = prepare(dir, listen, Arc::new(SystemClock), true, |s| {
        if let Some(url) = shared_database {
            s.database_url = url.into();
        }
        protection.apply(s, audit_log_group)
    })
    .await?;
    app.run_until_stopped()
        .await
        .map_err(|e| DemoError::Setup(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_quote_odd_paths_and_hide_passwords() {
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert!(has_password("postgres://u:secret@db/x"));
        assert!(!has_password("postgres://u@db/x"));
        assert!(!has_password("sqlite:///tmp/x.db"));
        let hint = command_hint("postgres://u:secret@db/x", Path::new("/s"), "user list");
        assert!(!hint.contains("secret"), "{hint}");
    }
}
