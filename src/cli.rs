//! The command line (DESIGN.md section 5, a contract).

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use futures_util::StreamExt as _;

use crate::audit::export::{self, ExportFormat};
use crate::audit::{Action, AuditEvent, AuditFilter, AuditLog, RequestMeta};
use crate::auth::password::Password;
use crate::auth::users::{Username, Users};
use crate::auth::Role;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{ServeArgs, Settings, StorageArgs};
use crate::db::Db;
use crate::secrets::Secrets;
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "callvault",
    version,
    about = "Audited console for caller input captured by the callvault Lex V2 Lambda"
)]
pub struct Cli {
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Log filter (`error`, `warn`, `info`, `debug`, or tracing directives such
    /// as `info,sqlx=warn`); default `info,sqlx=warn` for serve and demo,
    /// `warn` for the other commands.
    #[arg(long = "log-level", env = "CALLVAULT_LOG", global = true)]
    pub log_level: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web console.
    Serve(ServeArgs),
    /// Run the console offline: SQLite, a local raw AES key, demo contacts and
    /// flow logs encrypted by the Lambda's own code, one user per role.
    Demo(DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Reveal one captured value, audited exactly like the web console.
    Decrypt(DecryptArgs),
    /// Manage console users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a new raw AES-256 key file (base64, mode 0600) for `raw-aes:` keyrings.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify or export the audit log.
    Audit {
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
    Passwd { username: String },
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

#[derive(Debug, thiserror::Error)]
enum CliError {
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
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

fn init_logging(json: bool, level: Option<&str>) {
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

fn cli_meta() -> RequestMeta {
    RequestMeta {
        client_addr: "cli".into(),
        user_agent: format!("callvault-cli/{}", env!("CARGO_PKG_VERSION")),
        request_id: uuid::Uuid::new_v4().to_string(),
    }
}

fn cli_actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "local".into())
    )
}

/// Reads a TOTP code from the terminal or one line of standard input.
fn read_code() -> Result<String, CliError> {
    if std::io::stdin().is_terminal() {
        Ok(rpassword::prompt_password("Authenticator code: ")?)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim().to_owned())
    }
}

/// Reads a password from the terminal (twice) or one line of standard input.
fn read_password(confirm: bool) -> Result<Password, CliError> {
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

struct Cmd {
    db: Db,
    users: Users,
    audit: AuditLog,
    totp: crate::auth::totp::TotpStore,
    clock: SharedClock,
}

async fn open(storage: &StorageArgs) -> Result<Cmd, CliError> {
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

fn cli_event(action: Action, outcome: &str, detail: String) -> AuditEvent {
    AuditEvent::new(action, &cli_actor(), "cli", outcome, &cli_meta()).detail(detail)
}

async fn audit_cli(
    cmd: &Cmd,
    action: Action,
    outcome: &str,
    detail: String,
) -> Result<(), CliError> {
    cmd.audit.append(cli_event(action, outcome, detail)).await?;
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Serve(args) => {
            init_logging(true, cli.log_level.as_deref());
            let settings = Settings::from_args(&cli.storage, &args)?;
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
                cli.storage.audit_log_group(),
                cli.log_level.as_deref(),
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Decrypt(args) => {
            init_logging(false, cli.log_level.as_deref());
            decrypt_command(&cli.storage, args).await
        }
        Command::Preflight(args) => {
            init_logging(false, cli.log_level.as_deref());
            let clock: SharedClock = Arc::new(SystemClock);
            Ok(crate::preflight::command(args, cli.storage.audit_log_group(), clock).await)
        }
        Command::Migrate => {
            init_logging(false, cli.log_level.as_deref());
            let db = Db::open(&cli.storage.database_url).await?;
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
        Command::User { command } => {
            init_logging(false, cli.log_level.as_deref());
            let cmd = open(&cli.storage).await?;
            user_command(&cmd, command).await
        }
        Command::Audit { command } => {
            init_logging(false, cli.log_level.as_deref());
            let cmd = open(&cli.storage).await?;
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
                                "--checkpoints needs CALLVAULT_CHECKPOINT_KEY (the trusted signing key)".into(),
                            ));
                        };
                        Some(check_checkpoints(&cli.storage, &cmd, key).await?)
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
                    audit_cli(&cmd, Action::AuditVerify, outcome, detail).await?;
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
                    match report.first_bad {
                        None if signed_problems > 0 => {
                            println!(
                                "audit log FAILS its signed checkpoints ({} rows chain correctly, head row {})",
                                report.rows_checked, report.head_seq
                            );
                            Ok(ExitCode::FAILURE)
                        }
                        None => {
                            println!(
                                "audit chain verified: {} rows checked, head row {}",
                                report.rows_checked, report.head_seq
                            );
                            Ok(ExitCode::SUCCESS)
                        }
                        Some(b) => {
                            println!(
                                "audit chain BROKEN at row {}: {} ({} rows checked)",
                                b.seq, b.problem, report.rows_checked
                            );
                            Ok(ExitCode::FAILURE)
                        }
                    }
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
    }
}

async fn user_command(cmd: &Cmd, command: UserCommand) -> Result<ExitCode, CliError> {
    match command {
        UserCommand::Add { username, role } => {
            let username = Username::parse(&username)?;
            let role = Role::parse(&role).ok_or(crate::auth::users::UserError::UnknownRole)?;
            let password = read_password(true)?;
            let hash = crate::auth::users::new_password_hash(&password).await?;
            // The user and the audit row commit together, or neither does.
            let mut change = cmd.audit.begin_change().await?;
            let user = cmd
                .users
                .add_in(change.conn(), &username, &hash, role)
                .await?;
            change
                .commit(cli_event(
                    Action::UserChange,
                    "ok",
                    format!("added user {} as {}", user.username, user.role),
                ))
                .await?;
            println!("added user {} ({})", user.username, user.role);
        }
        UserCommand::List => {
            for u in cmd.users.list().await? {
                println!(
                    "{:<32} {:<10} {}",
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UserCommand::Disable { username } => {
            let user = cmd
                .users
                .by_name(&username)
                .await?
                .ok_or(crate::auth::users::UserError::NotFound)?;
            let mut change = cmd.audit.begin_change().await?;
            cmd.users
                .set_disabled_in(change.conn(), user.id, true)
                .await?;
            change
                .commit(cli_event(
                    Action::UserChange,
                    "ok",
                    format!("disabled user {}", user.username),
                ))
                .await?;
            println!("disabled user {}; their sessions have ended", user.username);
        }
        UserCommand::Passwd { username } => {
            let user = cmd
                .users
                .by_name(&username)
                .await?
                .ok_or(crate::auth::users::UserError::NotFound)?;
            let password = read_password(true)?;
            let hash = crate::auth::users::new_password_hash(&password).await?;
            let mut change = cmd.audit.begin_change().await?;
            cmd.users
                .set_password_in(change.conn(), user.id, &hash)
                .await?;
            change
                .commit(cli_event(
                    Action::UserChange,
                    "ok",
                    format!("set password of {}", user.username),
                ))
                .await?;
            println!(
                "password of {} changed; their sessions have ended",
                user.username
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn decrypt_command(storage: &StorageArgs, args: DecryptArgs) -> Result<ExitCode, CliError> {
    use lambda_encrypt::context::{ContactId, FieldName};

    use crate::decrypt::{Decryptor, Reason, RevealError, RevealRequest, Revealer};

    let mut settings = Settings::local(
        "127.0.0.1:0"
            .parse()
            .map_err(|_| CliError::Usage("listen".into()))?,
        storage.database_url.clone(),
        storage.secrets_dir.clone(),
    );
    args.sources.apply(&mut settings)?;
    args.protection
        .apply(&mut settings, storage.audit_log_group())?;
    let cmd = open(storage).await?;
    let meta = cli_meta();
    let contact = ContactId::parse(&args.contact_id)
        .map_err(|e| CliError::Usage(format!("--contact-id: {e}")))?;
    let field =
        FieldName::parse(&args.field).map_err(|e| CliError::Usage(format!("--field: {e}")))?;
    let deny = |outcome: &str| {
        AuditEvent::new(Action::DecryptDenied, &args.operator, "cli", outcome, &meta)
            .contact(contact.as_str(), field.as_str())
            .reason(&args.reason.chars().take(500).collect::<String>())
    };
    // The operator must be an enabled supervisor (separation of duties, as on the web).
    let operator = cmd.users.by_name(&args.operator).await?;
    let Some(operator) = operator.filter(|u| !u.disabled && u.role == Role::Supervisor) else {
        cmd.audit.append(deny("role")).await?;
        return Err(CliError::Usage(
            "--operator must name an enabled supervisor".into(),
        ));
    };
    let reason = match Reason::parse(&args.reason) {
        Ok(r) => r,
        Err(e) => {
            cmd.audit.append(deny("no_reason")).await?;
            return Err(CliError::Usage(format!("--reason: {e}")));
        }
    };
    // Dual control has no command-line path: the second person is in the console.
    if settings.policy.approval == crate::decrypt::policy::ApprovalMode::Required {
        cmd.audit.append(deny("approval_required")).await?;
        return Err(CliError::Usage(
            "dual control is on (CALLVAULT_DECRYPT_APPROVAL=required): request the reveal in the console".into(),
        ));
    }
    let totp_err = |e: crate::auth::totp::TotpError| CliError::Usage(e.to_string());
    let enrolled = cmd.totp.enrolment(operator.id).await.map_err(totp_err)?
        == crate::auth::totp::Enrolment::Active;
    if !enrolled && cmd.totp.mandatory().await.map_err(totp_err)? {
        cmd.audit.append(deny("totp_not_enrolled")).await?;
        return Err(CliError::Usage(
            "TOTP is mandatory for supervisors: the operator must enrol an authenticator".into(),
        ));
    }
    if enrolled {
        let code = read_code()?;
        let mut conn = cmd
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::db::DbError::Query)?;
        let checked = cmd.totp.verify(&mut conn, operator.id, &code, false).await;
        drop(conn);
        if let Err(e) = checked {
            cmd.audit
                .append(
                    AuditEvent::new(
                        Action::StepUpFailed,
                        &operator.username,
                        "cli",
                        "refused",
                        &meta,
                    )
                    .detail(e.kind()),
                )
                .await?;
            cmd.audit.append(deny("step_up_required")).await?;
            return Err(CliError::Usage(format!("TOTP: {e}")));
        }
    }
    let budget = crate::decrypt::policy::Budget::new(
        cmd.audit.clone(),
        cmd.clock.clone(),
        settings.policy.budget,
    );
    let _permit = match budget.reserve(&operator.username).await {
        Ok(p) => p,
        Err(crate::decrypt::policy::BudgetError::Exceeded { used, limit }) => {
            cmd.audit
                .append(deny("budget_exceeded").detail(format!("{used} of {limit} per hour used")))
                .await?;
            return Err(CliError::Usage(format!(
                "decrypt budget used: {used} of {limit} in the last hour"
            )));
        }
        Err(crate::decrypt::policy::BudgetError::Audit(e)) => return Err(e.into()),
    };
    let Some(spec) = settings.keyring.clone() else {
        cmd.audit.append(deny("not_configured")).await?;
        return Err(CliError::Usage("CALLVAULT_KEYRING is not set".into()));
    };
    let kms = matches!(spec, lambda_encrypt::keyring::KeyringSpec::Kms { .. })
        || settings.connect_instance_id.is_some();
    let sdk = if kms {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    let (stored_value, initial) = match (args.ciphertext, &settings.connect_instance_id, &sdk) {
        (Some(ct), _, _) => (ct, None),
        (None, Some(instance), Some(sdk)) => {
            use crate::contacts::ContactDirectory as _;
            let connect = crate::aws::connect::AwsConnect::new(sdk, instance);
            let summary = connect.describe(&contact).await?;
            let initial = summary
                .initial_contact_id
                .unwrap_or_else(|| summary.id.clone());
            let value = connect.attributes(&initial).await?.remove(field.as_str());
            let Some(value) = value else {
                cmd.audit.append(deny("no_such_field")).await?;
                return Err(CliError::Usage("the contact has no such attribute".into()));
            };
            (value, (initial != contact).then_some(initial))
        }
        _ => {
            return Err(CliError::Usage(
                "give --ciphertext, or set CALLVAULT_CONNECT_INSTANCE_ID".into(),
            ))
        }
    };
    let crypto =
        lambda_encrypt::crypto::FieldCrypto::from_spec(&spec, settings.suite, sdk.as_ref()).await?;
    let revealer = Revealer::new(
        Decryptor::new(crypto),
        cmd.audit.clone(),
        settings.legacy_context.clone(),
    );
    let request = RevealRequest {
        actor: operator.username.clone(),
        role: operator.role.as_str().to_owned(),
        contact_id: contact,
        initial_contact_id: initial,
        field,
        stored_value,
        reason,
        meta,
        detail: String::new(),
        budget: budget.cap(),
    };
    match revealer.reveal(request).await {
        Ok(revealed) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(revealed.plaintext.expose())?;
            out.write_all(b"\n")?;
            out.flush()?;
            eprintln!("recorded as audit row {}", revealed.audit_seq);
            Ok(ExitCode::SUCCESS)
        }
        Err(RevealError::Denied { kind }) | Err(RevealError::Failed { kind }) => {
            eprintln!("callvault: nothing was decrypted ({kind}); the attempt was recorded");
            Ok(ExitCode::from(2))
        }
        Err(RevealError::OverBudget { used, limit }) => Err(CliError::Usage(format!(
            "decrypt budget used: {used} of {limit} in the last hour"
        ))),
        Err(RevealError::Audit(e)) => Err(e.into()),
    }
}

/// Every environment variable the command line reads, as a Markdown table
/// generated from the clap definitions themselves (`callvault env-table`;
/// `docs/configuration.md` holds a copy that a test keeps identical).
pub fn env_table() -> String {
    use std::collections::BTreeMap;

    use clap::CommandFactory as _;

    struct Row {
        flag: String,
        default: String,
        help: String,
        commands: Vec<String>,
    }
    fn walk(cmd: &clap::Command, path: &str, rows: &mut BTreeMap<String, Row>) {
        for arg in cmd.get_arguments() {
            let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
                continue;
            };
            let row = rows.entry(env.to_owned()).or_insert_with(|| Row {
                flag: arg
                    .get_long()
                    .map(|l| format!("`--{l}`"))
                    .unwrap_or_default(),
                default: arg
                    .get_default_values()
                    .iter()
                    .filter_map(|v| v.to_str())
                    .map(|v| format!("`{v}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                help: arg
                    .get_help()
                    .map(|h| {
                        h.to_string()
                            .replace('\n', " ")
                            .replace('|', "\\|")
                            .replace('<', "&lt;")
                            .replace('>', "&gt;")
                    })
                    .unwrap_or_default(),
                commands: Vec::new(),
            });
            let here = if arg.is_global_set() || path.is_empty() {
                "all".to_owned()
            } else {
                path.to_owned()
            };
            if !row.commands.contains(&here) && !row.commands.iter().any(|c| c == "all") {
                row.commands.push(here);
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() {
                continue;
            }
            let name = if path.is_empty() {
                sub.get_name().to_owned()
            } else {
                format!("{path} {}", sub.get_name())
            };
            walk(sub, &name, rows);
        }
    }
    let mut rows = BTreeMap::new();
    walk(&Cli::command(), "", &mut rows);
    let mut out =
        String::from("| variable | flag | default | commands | meaning |\n|---|---|---|---|---|\n");
    for (env, row) in rows {
        let commands = if row.commands.iter().any(|c| c == "all") {
            "all".to_owned()
        } else {
            row.commands.join(", ")
        };
        out.push_str(&format!(
            "| `{env}` | {} | {} | {commands} | {} |\n",
            row.flag, row.default, row.help
        ));
    }
    out
}
