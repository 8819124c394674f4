//! `callvault preflight`: run with the console's credentials, it
//! checks each AWS prerequisite of a deployment and prints one line per
//! check (`PASS`, `FAIL ...; fix: ...`, or `SKIP ...: not configured`). Each
//! check has its own timeout; one failing call never stops the others.

mod calls;
mod connect;
pub mod key_policy;
mod kms;
mod logs;
mod retention;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_kms::config::ProvideCredentials as _;
use lambda_encrypt::keyring::KeyringSpec;

use crate::clock::SharedClock;
use crate::sources::LogGroupName;
pub use logs::PREFLIGHT_STREAM;

#[derive(Debug, Clone, clap::Args)]
pub struct PreflightArgs {
    /// The keyring the console decrypts with (its kms: keys are checked).
    #[arg(long, env = "CALLVAULT_KEYRING")]
    pub keyring: Option<String>,
    /// Amazon Connect instance id (required: flow logs and bots are checked on it).
    #[arg(long, env = "CALLVAULT_CONNECT_INSTANCE_ID")]
    pub connect_instance_id: Option<String>,
    /// CloudWatch Logs groups holding the flow logs (comma list).
    #[arg(long, env = "CALLVAULT_LOG_GROUPS")]
    pub log_groups: Option<String>,
    /// The capture bot's Lex V2 alias ARN; without it any V2 bot on the instance passes.
    #[arg(long, env = "CALLVAULT_BOT_ALIAS_ARN")]
    pub bot_alias_arn: Option<String>,
    /// KMS key that signs audit checkpoints.
    #[arg(long, env = "CALLVAULT_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<String>,
    /// Days a captured value may be revealed; unset, preflight warns.
    #[arg(long = "retention-days", env = "CALLVAULT_RETENTION_DAYS")]
    pub retention_days: Option<String>,
    /// Seconds each check may take.
    #[arg(long, env = "CALLVAULT_PREFLIGHT_TIMEOUT_SECS", default_value_t = 15)]
    pub timeout_secs: u64,
}

/// How one check came out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail {
        problem: String,
        fix: String,
    },
    /// Works, but short of what an assessor expects; does not fail the run.
    Warn {
        problem: String,
        fix: String,
    },
    Skip {
        why: String,
    },
}

impl Outcome {
    pub fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Fail {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    pub fn warn(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::Warn {
            problem: problem.into(),
            fix: fix.into(),
        }
    }

    fn not_configured() -> Self {
        Self::Skip {
            why: "not configured".into(),
        }
    }
}

/// One printed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub name: String,
    pub outcome: Outcome,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Outcome::Pass => write!(f, "PASS {}", self.name),
            Outcome::Fail { problem, fix } => {
                write!(f, "FAIL {}: {problem}; fix: {fix}", self.name)
            }
            Outcome::Warn { problem, fix } => {
                write!(f, "WARN {}: {problem}; fix: {fix}", self.name)
            }
            Outcome::Skip { why } => write!(f, "SKIP {}: {why}", self.name),
        }
    }
}

/// What every check shares: the clients and the region they talk to.
pub(crate) struct Ctx {
    connect: aws_sdk_connect::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    kms: aws_sdk_kms::Client,
    region: String,
    clock: SharedClock,
}

type CheckFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// A check to run against a service, or one already decided from the settings.
enum Planned<'a> {
    Decided(CheckLine),
    Run {
        name: String,
        service: calls::Service,
        check: CheckFuture<'a>,
    },
}

fn decided(name: impl Into<String>, outcome: Outcome) -> Planned<'static> {
    Planned::Decided(CheckLine {
        name: name.into(),
        outcome,
    })
}

fn run<'a>(
    name: impl Into<String>,
    service: calls::Service,
    check: impl Future<Output = Outcome> + Send + 'a,
) -> Planned<'a> {
    Planned::Run {
        name: name.into(),
        service,
        check: Box::pin(check),
    }
}

/// The command: prints every line, exits non-zero if any check failed.
pub async fn command(
    args: PreflightArgs,
    audit_log_group: Option<&str>,
    clock: SharedClock,
) -> ExitCode {
    let lines = checks(&args, audit_log_group, clock).await;
    let failed = lines
        .iter()
        .filter(|l| matches!(l.outcome, Outcome::Fail { .. }))
        .count();
    for line in &lines {
        println!("{line}");
    }
    eprintln!("preflight: {} checks, {failed} failed", lines.len());
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every check (concurrently, each under the timeout); lines in a fixed order.
pub async fn checks(
    args: &PreflightArgs,
    audit_log_group: Option<&str>,
    clock: SharedClock,
) -> Vec<CheckLine> {
    let timeout = Duration::from_secs(args.timeout_secs.clamp(1, 300));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .build(),
        )
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    let blocker = aws_blocker(&sdk, timeout).await;
    let ctx = Ctx {
        connect: aws_sdk_connect::Client::new(&sdk),
        logs: aws_sdk_cloudwatchlogs::Client::new(&sdk),
        kms: aws_sdk_kms::Client::new(&sdk),
        region: sdk
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_default(),
        clock,
    };
    let plan = plan(&ctx, args, audit_log_group);
    let running = plan.into_iter().map(|planned| {
        let blocker = blocker.clone();
        async move {
            match planned {
                Planned::Decided(line) => line,
                Planned::Run { name, service, check } => {
                    let outcome = match blocker {
                        Some(outcome) => outcome,
                        None => match tokio::time::timeout(timeout, check).await {
                            Ok(outcome) => outcome,
                            Err(_) => Outcome::fail(
                                format!(
                                    "no answer from {} within {}s",
                                    service.name(),
                                    timeout.as_secs()
                                ),
                                format!(
                                    "check network access to the {} endpoint (AWS_REGION, {}, proxies)",
                                    service.name(),
                                    service.endpoint_variable()
                                ),
                            ),
                        },
                    };
                    CheckLine { name, outcome }
                }
            }
        }
    });
    futures_util::future::join_all(running).await
}

/// A problem that stops every AWS call: no region, or no credentials.
async fn aws_blocker(sdk: &aws_config::SdkConfig, timeout: Duration) -> Option<Outcome> {
    if sdk.region().is_none() {
        return Some(Outcome::fail(
            "no AWS region is set",
            "set AWS_REGION (or the profile's region) to the region of the Connect instance",
        ));
    }
    let fix = "run with the console role's credentials (an instance or task role, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)";
    let Some(provider) = sdk.credentials_provider() else {
        return Some(Outcome::fail(
            "no AWS credentials provider is configured",
            fix,
        ));
    };
    match tokio::time::timeout(timeout, provider.provide_credentials()).await {
        Ok(Ok(_)) => None,
        // The error's kinds are not re-exported by the SDK crates; its text
        // is not printed (a provider's message can name files and roles).
        Ok(Err(_)) => Some(Outcome::fail("no AWS credentials could be loaded", fix)),
        Err(_) => Some(Outcome::fail("loading the AWS credentials timed out", fix)),
    }
}

/// Every check, in the order printed.
fn plan<'a>(
    ctx: &'a Ctx,
    args: &'a PreflightArgs,
    audit_group: Option<&'a str>,
) -> Vec<Planned<'a>> {
    use calls::Service;
    let mut plan = Vec::new();
    let configured = |v: &'a Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty());

    // The Connect instance is the one setting preflight cannot do without.
    match crate::config::parse_instance_id(args.connect_instance_id.as_deref()) {
        Ok(Some(instance)) => {
            let bot = configured(&args.bot_alias_arn);
            let i = instance.clone();
            plan.push(run("connect flow logs", Service::Connect, async move {
                connect::flow_logs(ctx, &i).await
            }));
            plan.push(run("connect bot alias", Service::Connect, async move {
                connect::bot_alias(ctx, &instance, bot).await
            }));
        }
        result => {
            let problem = if result.is_ok() {
                "CALLVAULT_CONNECT_INSTANCE_ID is not set"
            } else {
                "CALLVAULT_CONNECT_INSTANCE_ID is not an instance id"
            };
            let fix = "set CALLVAULT_CONNECT_INSTANCE_ID (or --connect-instance-id) to the instance id, the last part of the instance ARN";
            for name in ["connect flow logs", "connect bot alias"] {
                plan.push(decided(name, Outcome::fail(problem, fix)));
            }
        }
    }

    let groups: Vec<&str> = configured(&args.log_groups)
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if groups.is_empty() {
        plan.push(decided("log groups", Outcome::not_configured()));
    }
    for group in groups {
        let name = format!("log group {}", printable(group));
        match LogGroupName::parse(group) {
            Some(group) => plan.push(run(name, Service::Logs, async move {
                logs::readable(ctx, &group).await
            })),
            None => plan.push(decided(
                name,
                Outcome::fail(
                    "CALLVAULT_LOG_GROUPS holds an invalid log group name",
                    "list the flow-log groups, comma separated (e.g. /aws/connect/<instance alias>)",
                ),
            )),
        }
    }

    match configured(&args.keyring).map(str::parse::<KeyringSpec>) {
        None => plan.push(decided("field key", Outcome::not_configured())),
        Some(Err(e)) => plan.push(decided(
            "field key",
            Outcome::fail(
                format!("CALLVAULT_KEYRING: {e}"),
                "set CALLVAULT_KEYRING=kms:<key-arn> (the template's KeyringSpec output)",
            ),
        )),
        Some(Ok(KeyringSpec::RawAesPeriod { .. })) => plan.push(decided(
            "field key",
            Outcome::Skip {
                why: "a raw-aes-period keyring has no KMS key to check".into(),
            },
        )),
        Some(Ok(KeyringSpec::KmsPeriod { prefix })) => {
            let current = prefix.current_alias();
            plan.push(run(
                format!("field key {current} enabled"),
                Service::Kms,
                async move { kms::current_key_enabled(ctx, &current).await },
            ));
        }
        Some(Ok(KeyringSpec::RawAes { .. })) => plan.push(decided(
            "field key",
            Outcome::Skip {
                why: "a raw-aes keyring has no KMS key to check".into(),
            },
        )),
        Some(Ok(KeyringSpec::Kms { key_arns })) => {
            for arn in key_arns {
                let (a, b) = (arn.clone(), arn.clone());
                let name = |what: &str| format!("field key {} {what}", arn.as_str());
                plan.push(run(name("enabled"), Service::Kms, async move {
                    kms::field_key_enabled(ctx, &a).await
                }));
                plan.push(run(name("rotation"), Service::Kms, async move {
                    kms::field_key_rotation(ctx, &b).await
                }));
                plan.push(run(name("policy"), Service::Kms, async move {
                    kms::field_key_policy(ctx, &arn).await
                }));
            }
        }
    }

    let checkpoint_key = configured(&args.checkpoint_key);
    match checkpoint_key {
        None => plan.push(decided("checkpoint key", Outcome::not_configured())),
        Some(key) => plan.push(run("checkpoint key", Service::Kms, async move {
            kms::checkpoint_key(ctx, key).await
        })),
    }

    match audit_group {
        None if checkpoint_key.is_some() => plan.push(decided(
            "audit log group",
            Outcome::fail(
                "CALLVAULT_CHECKPOINT_KEY is set but CALLVAULT_AUDIT_LOG_GROUP is not (checkpoints are shipped there)",
                "set CALLVAULT_AUDIT_LOG_GROUP to the template's audit log group output",
            ),
        )),
        None => plan.push(decided("audit log group", Outcome::not_configured())),
        Some(group) => match LogGroupName::parse(group) {
            Some(group) => plan.push(run("audit log group", Service::Logs, async move {
                logs::audit_writable(ctx, &group).await
            })),
            None => plan.push(decided(
                "audit log group",
                Outcome::fail(
                    "CALLVAULT_AUDIT_LOG_GROUP is not a log group name",
                    "set it to the template's audit log group output",
                ),
            )),
        },
    }

    let (line, days) = retention::retention_line(configured(&args.retention_days));
    plan.push(decided(retention::RETENTION, line));
    let spec = configured(&args.keyring).and_then(|k| k.parse::<KeyringSpec>().ok());
    match retention::decided(spec.as_ref(), days, ctx.clock.now_us()) {
        Some(outcome) => plan.push(decided(retention::PCI, outcome)),
        None => {
            if let Some(KeyringSpec::KmsPeriod { prefix }) = spec {
                plan.push(run(retention::PCI, Service::Kms, async move {
                    retention::kms_period(ctx, &prefix, days).await
                }));
            }
        }
    }
    plan
}

/// A configured value as shown in a check's name: bounded, no control characters.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_pass_fail_with_a_fix_or_skip() {
        let line = |outcome| CheckLine {
            name: "connect flow logs".into(),
            outcome,
        };
        assert_eq!(line(Outcome::Pass).to_string(), "PASS connect flow logs");
        assert_eq!(
            line(Outcome::fail("flow logs are off", "turn them on")).to_string(),
            "FAIL connect flow logs: flow logs are off; fix: turn them on"
        );
        assert_eq!(
            line(Outcome::not_configured()).to_string(),
            "SKIP connect flow logs: not configured"
        );
    }
}
