//! Console settings: flags with environment fallbacks (docs/contracts.md,
//! docs/configuration.md). Every default is declared once, as a `DEFAULT_*`
//! beside its type or as clap's default here, and [`Settings::defaults`]
//! reads them the way `serve` does, from an empty command line: tests,
//! `decrypt` and the demo start from exactly what production starts from.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _};
use lambda_encrypt::context::ExpectedContext;
use lambda_encrypt::crypto::AlgorithmSuite;
use lambda_encrypt::keyring::KeyringSpec;

use crate::audit::ship::ShipSettings;
use crate::decrypt::policy::DecryptPolicy;
use crate::sources::LogGroupName;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_IDLE_TIMEOUT_MIN: u64 = 15;
pub const DEFAULT_ABSOLUTE_TIMEOUT_MIN: u64 = 480;

/// Where the console keeps its state: given to each subcommand that opens
/// the database (not to `demo`, which keeps its own in `--dir`).
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// sqlite://FILE (created if absent) or postgres://...
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://callvault.db",
        global = true
    )]
    pub database_url: crate::db::DatabaseUrl,
    /// Directory of the audit and session keys (created with 0600 files if absent).
    #[arg(
        long,
        env = "CALLVAULT_SECRETS_DIR",
        default_value = "secrets",
        global = true
    )]
    pub secrets_dir: PathBuf,
    /// Filled in from `ShippingArgs` (a flag of every command).
    #[arg(skip)]
    pub audit_log_group: Option<String>,
}

/// Where audit rows are shipped; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct ShippingArgs {
    /// CloudWatch Logs group that receives every audit row and checkpoint
    /// (every command that writes audit rows queues them for shipping).
    #[arg(long, env = "CALLVAULT_AUDIT_LOG_GROUP", global = true)]
    pub audit_log_group: Option<String>,
}

impl ShippingArgs {
    pub fn audit_log_group(&self) -> Option<&str> {
        self.audit_log_group
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
    }
}

impl StorageArgs {
    /// These storage flags with the command line's shipping flag.
    pub fn with_shipping(mut self, shipping: &ShippingArgs) -> Self {
        self.audit_log_group = shipping.audit_log_group.clone();
        self
    }

    pub fn audit_log_group(&self) -> Option<&str> {
        self.audit_log_group
            .as_deref()
            .map(str::trim)
            .filter(|g| !g.is_empty())
    }
}

/// Where contacts, logs and keys come from (shared by `serve` and `decrypt`).
#[derive(Debug, Clone, Args)]
pub struct SourceArgs {
    /// kms:<key-arn>[,<key-arn>...] or raw-aes:<path>; without it nothing can be decrypted.
    #[arg(long, env = "CALLVAULT_KEYRING")]
    pub keyring: Option<String>,
    /// Amazon Connect instance id (contacts and attributes).
    #[arg(long, env = "CALLVAULT_CONNECT_INSTANCE_ID")]
    pub connect_instance_id: Option<String>,
    /// CloudWatch Logs groups holding the flow logs (comma list).
    #[arg(long, env = "CALLVAULT_LOG_GROUPS")]
    pub log_groups: Option<String>,
    /// Captured fields (name:validator,...): these attributes must hold ciphertext.
    #[arg(long, env = "CALLVAULT_FIELDS", default_value = lambda_encrypt::fields::DEFAULT_FIELDS)]
    pub fields: String,
    /// The reference solution's fixed context (stage=dev,name=encryption,token=...).
    #[arg(long, env = "CALLVAULT_LEGACY_CONTEXT")]
    pub legacy_context: Option<String>,
    /// committed-signed (default) or committed-unsigned (for encrypting; decrypt accepts both).
    #[arg(
        long,
        env = "CALLVAULT_ALGORITHM_SUITE",
        default_value = "committed-signed"
    )]
    pub algorithm_suite: String,
    /// Contact attributes holding Amazon Connect "Store customer input"
    /// ciphertexts: attribute:validator,... (e.g. keypad_card:card).
    #[arg(long, env = "CALLVAULT_CONNECT_INPUT_FIELDS", default_value = "")]
    pub connect_input_fields: String,
    /// Their RSA private keys: KEY_ID=PATH,... (PEM PKCS#8, owner-only mode;
    /// two or more while Connect rotates).
    #[arg(long, env = "CALLVAULT_CONNECT_INPUT_KEYS", default_value = "")]
    pub connect_input_keys: String,
    #[command(flatten)]
    pub aws: crate::aws::settings::AwsArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub sources: SourceArgs,
    /// Address to listen on.
    #[arg(long, env = "CALLVAULT_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// Send the session cookie without `Secure` (allowed on loopback addresses only).
    #[arg(long, env = "CALLVAULT_INSECURE_COOKIE", default_value_t = false)]
    pub insecure_cookie: bool,
    /// Idle session timeout in minutes.
    #[arg(long, env = "CALLVAULT_IDLE_TIMEOUT_MIN", default_value_t = DEFAULT_IDLE_TIMEOUT_MIN)]
    pub idle_timeout_min: u64,
    /// Absolute session timeout in minutes.
    #[arg(long, env = "CALLVAULT_ABSOLUTE_TIMEOUT_MIN", default_value_t = DEFAULT_ABSOLUTE_TIMEOUT_MIN)]
    pub absolute_timeout_min: u64,
    /// Reverse proxies (addresses or CIDR blocks, comma-separated) whose
    /// X-Forwarded-For / Forwarded headers give the client address; unset, the
    /// connection's address is the client's (docs/deployment.md).
    #[arg(long, env = "CALLVAULT_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// Bearer token that `/metrics` requires (`Authorization: Bearer ...`);
    /// unset, `/metrics` is open to anyone who can reach the listener.
    #[arg(long, env = "CALLVAULT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    #[command(flatten)]
    pub protection: ProtectionArgs,
    #[command(flatten)]
    pub oidc: crate::sso::OidcArgs,
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
    #[error("CALLVAULT_REVEAL_SHOW_SECS must be 5 to 3600 seconds")]
    RevealShow,
    #[error("CALLVAULT_KEYRING: {0}")]
    Keyring(#[from] lambda_encrypt::keyring::KeyringError),
    #[error(transparent)]
    Fields(#[from] lambda_encrypt::fields::FieldsError),
    #[error(transparent)]
    Suite(#[from] lambda_encrypt::crypto::UnknownSuite),
    #[error(transparent)]
    Keypad(#[from] lambda_encrypt::keypad::KeypadConfigError),
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS names {0}, which CALLVAULT_FIELDS captures already")]
    KeypadFieldClash(String),
    #[error("CALLVAULT_LOG_GROUPS holds an invalid log group name")]
    LogGroup,
    #[error("CALLVAULT_CONNECT_INSTANCE_ID is not an instance id")]
    InstanceId,
    #[error("CALLVAULT_LEGACY_CONTEXT must be key=value pairs separated by commas")]
    LegacyContext,
    #[error(transparent)]
    Policy(#[from] crate::decrypt::policy::PolicyConfigError),
    #[error(transparent)]
    Case(#[from] crate::decrypt::case::CaseConfigError),
    #[error("CALLVAULT_RETENTION_DAYS: {0}")]
    Retention(#[from] crate::keys::RetentionError),
    #[error("CALLVAULT_CHECKPOINT_KEY needs CALLVAULT_AUDIT_LOG_GROUP (checkpoints are shipped)")]
    CheckpointWithoutGroup,
    #[error("checkpoint intervals must be at least one row and one second")]
    Checkpoints,
    #[error(transparent)]
    TrustedProxies(#[from] crate::web::client_addr::TrustedProxiesError),
    #[error(transparent)]
    Aws(#[from] crate::aws::settings::AwsSettingsError),
    #[error(transparent)]
    Sso(#[from] crate::sso::SsoConfigError),
}

mod protection;
pub use protection::{ProtectionArgs, ShipArgs};

/// Everything `Application::build` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: crate::db::DatabaseUrl,
    pub secrets_dir: PathBuf,
    pub cookie_secure: bool,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    pub keyring: Option<KeyringSpec>,
    pub suite: AlgorithmSuite,
    pub connect_instance_id: Option<String>,
    pub log_groups: Vec<LogGroupName>,
    pub sensitive: BTreeSet<String>,
    /// Amazon Connect keypad input (`CALLVAULT_CONNECT_INPUT_FIELDS`,
    /// `CALLVAULT_CONNECT_INPUT_KEYS`, as given; loaded at start-up).
    pub connect_input: Option<(String, String)>,
    pub legacy_context: Option<ExpectedContext>,
    pub policy: DecryptPolicy,
    /// Values of contacts older than this are not revealed; None: no limit.
    pub retention: Option<crate::keys::RetentionDays>,
    /// Audit shipping and checkpoints; None keeps the record local only.
    pub ship: Option<ShipSettings>,
    /// Peers whose forwarding headers name the client (none by default).
    pub trusted_proxies: crate::web::client_addr::TrustedProxies,
    /// How often readiness is probed in the background.
    pub ready_interval: Duration,
    /// What `/metrics` requires, if anything.
    pub metrics_token: Option<MetricsToken>,
    /// AWS quotas, retries, the contact cache, flow-log budget, search.
    pub aws: crate::aws::settings::AwsSettings,
    /// Single sign-on with an OpenID Provider; None keeps local sign-in only.
    pub sso: Option<crate::sso::SsoSettings>,
}

pub use crate::health::MetricsToken;

/// How often readiness is probed in the background.
const READY_INTERVAL: Duration = Duration::from_secs(5);

/// The reference solution's attribute names, sensitive in legacy mode.
pub const LEGACY_ATTRIBUTES: [&str; 2] = ["encrypted_cc", "encrypted_zip"];

impl SourceArgs {
    pub fn apply(&self, settings: &mut Settings) -> Result<(), SettingsError> {
        settings.keyring = self
            .keyring
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::parse)
            .transpose()?;
        settings.suite = self.algorithm_suite.parse()?;
        settings.aws = self.aws.settings()?;
        settings.connect_instance_id = parse_instance_id(self.connect_instance_id.as_deref())?;
        settings.log_groups = self
            .log_groups
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .map(|g| LogGroupName::parse(g).ok_or(SettingsError::LogGroup))
            .collect::<Result<_, _>>()?;
        let fields = lambda_encrypt::fields::Fields::parse(&self.fields)?;
        settings.sensitive = fields.iter().map(|f| f.name.to_string()).collect();
        // Keypad attributes hold ciphertext too: anything else is masked.
        let keypad = lambda_encrypt::keypad::KeypadFields::parse(&self.connect_input_fields)?;
        for f in keypad.iter() {
            if !settings.sensitive.insert(f.attribute.to_string()) {
                return Err(SettingsError::KeypadFieldClash(f.attribute.to_string()));
            }
        }
        settings.connect_input = (!keypad.is_empty() || !self.connect_input_keys.trim().is_empty())
            .then(|| {
                (
                    self.connect_input_fields.clone(),
                    self.connect_input_keys.clone(),
                )
            });
        settings.legacy_context = self
            .legacy_context
            .as_deref()
            .map(parse_legacy_context)
            .transpose()?;
        if settings.legacy_context.is_some() {
            settings
                .sensitive
                .extend(LEGACY_ATTRIBUTES.iter().map(|s| (*s).to_owned()));
        }
        // A captured field holds ciphertext: searching it would put a value
        // typed by a supervisor next to it, in a URL and in Connect.
        if settings
            .aws
            .searchable_attributes
            .iter()
            .any(|k| settings.sensitive.contains(k))
        {
            return Err(SettingsError::Aws(crate::aws::settings::AwsSettingsError(
                "CALLVAULT_SEARCHABLE_ATTRIBUTES may not name a captured field (CALLVAULT_FIELDS)",
            )));
        }
        Ok(())
    }
}

/// CALLVAULT_CONNECT_INSTANCE_ID: None when unset or blank.
pub fn parse_instance_id(value: Option<&str>) -> Result<Option<String>, SettingsError> {
    match value.map(str::trim).filter(|s| !s.is_empty()) {
        Some(id)
            if id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
        {
            Ok(Some(id.to_owned()))
        }
        Some(_) => Err(SettingsError::InstanceId),
        None => Ok(None),
    }
}

/// `stage=dev,name=encryption,token=...` as an exact expected context.
pub fn parse_legacy_context(s: &str) -> Result<ExpectedContext, SettingsError> {
    let pairs: Vec<(String, String)> = s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .filter(|(k, _)| !k.trim().is_empty())
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or(SettingsError::LegacyContext)
        })
        .collect::<Result<_, _>>()?;
    if pairs.is_empty() {
        return Err(SettingsError::LegacyContext);
    }
    Ok(ExpectedContext::from_pairs(pairs))
}

/// `serve`'s command line, alone: how [`Settings::defaults`] reads every
/// default the way production does.
#[derive(Debug, clap::Parser)]
struct DefaultsOnly {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    serve: ServeArgs,
}

impl Settings {
    /// What `serve` runs with when nothing is set (no environment read),
    /// for `database_url` and `secrets_dir`: no AWS, no keyring.
    pub fn defaults(database_url: String, secrets_dir: PathBuf) -> Self {
        let command = DefaultsOnly::command().mut_args(|a| a.env(None::<&str>));
        let parsed = command
            .try_get_matches_from(["callvault"])
            .map_err(|e| e.to_string())
            .and_then(|m| DefaultsOnly::from_arg_matches(&m).map_err(|e| e.to_string()))
            .and_then(|d| Self::from_args(&d.storage, &d.serve).map_err(|e| e.to_string()));
        #[allow(clippy::expect_used)]
        let mut settings = parsed.expect("the defaults parse (config tests check it)");
        settings.database_url = database_url.into();
        settings.secrets_dir = secrets_dir;
        settings
    }

    /// [`Settings::defaults`] listening on `listen`.
    pub fn local(listen: SocketAddr, database_url: String, secrets_dir: PathBuf) -> Self {
        let mut settings = Self::defaults(database_url, secrets_dir);
        settings.listen = listen;
        settings
    }

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
        let mut settings = Self {
            listen,
            database_url: storage.database_url.clone(),
            secrets_dir: storage.secrets_dir.clone(),
            cookie_secure: true,
            idle_timeout: Duration::ZERO,
            absolute_timeout: Duration::ZERO,
            keyring: None,
            suite: AlgorithmSuite::default(),
            connect_instance_id: None,
            log_groups: Vec::new(),
            sensitive: BTreeSet::new(),
            connect_input: None,
            legacy_context: None,
            policy: DecryptPolicy::default(),
            retention: None,
            ship: None,
            trusted_proxies: Default::default(),
            ready_interval: READY_INTERVAL,
            metrics_token: None,
            aws: Default::default(),
            sso: None,
        };
        settings.cookie_secure = !serve.insecure_cookie;
        settings.idle_timeout = Duration::from_secs(serve.idle_timeout_min * 60);
        settings.absolute_timeout = Duration::from_secs(serve.absolute_timeout_min * 60);
        settings.trusted_proxies = serve.trusted_proxies.as_deref().unwrap_or("").parse()?;
        settings.metrics_token = serve
            .metrics_token
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(MetricsToken::new);
        serve.sources.apply(&mut settings)?;
        serve
            .protection
            .apply(&mut settings, storage.audit_log_group())?;
        settings.sso = serve.oidc.settings()?;
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decrypt::policy::DEFAULT_DECRYPT_BUDGET;

    #[test]
    fn the_defaults_parse_from_an_empty_command_line() {
        let s = Settings::defaults("sqlite://x.db".into(), "s".into());
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(s.idle_timeout.as_secs(), DEFAULT_IDLE_TIMEOUT_MIN * 60);
        assert_eq!(s.policy.budget, DEFAULT_DECRYPT_BUDGET);
        assert_eq!(
            s.policy.step_up_window,
            DecryptPolicy::default().step_up_window
        );
        assert_eq!(s.database_url.as_str(), "sqlite://x.db");
    }
}
