//! `callvault preflight` as a separate process, against moto (KMS,
//! CloudWatch Logs; AWS_ENDPOINT_URL from scripts/test) and the Connect fake.
//!
//! moto has every call preflight makes (DescribeKey, GetKeyRotationStatus,
//! GetKeyPolicy/PutKeyPolicy, GetPublicKey, DescribeLogStreams,
//! FilterLogEvents, CreateLogStream, PutLogEvents). One difference: moto
//! answers GetPublicKey for a symmetric key (without a KeyUsage), where KMS
//! refuses with UnsupportedOperationException; both fail the checkpoint line.
//! And moto's DisableKey takes only a bare key id (an ARN is a 500), which
//! only the test's own setup calls.

use std::process::Output;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use serde_json::json;

use crate::connect_fake::ConnectFake;
use crate::helpers::*;

const INSTANCE: &str = "11111111-2222-4333-8444-555555555555";
const BOT_ALIAS: &str = "arn:aws:lex:us-east-1:123456789012:bot-alias/CAPTUREBT1/TSTALIASID";

/// A deployment in moto and the fake with every prerequisite met.
struct Setup {
    fake: ConnectFake,
    sdk: aws_config::SdkConfig,
    field_key: String,
    checkpoint_key: String,
    flow_group: String,
    audit_group: String,
}

fn conditions() -> serde_json::Value {
    json!({
        "StringEquals": {"kms:EncryptionContext:purpose": "callvault/caller-input"},
        "ForAllValues:StringEquals": {
            "kms:EncryptionContextKeys": ["purpose", "contactId", "field", "aws-crypto-public-key"]
        },
        "Null": {"kms:EncryptionContext:contactId": "false", "kms:EncryptionContext:field": "false"}
    })
}

/// A key policy like the deploy template's: administration without use, and
/// each use statement with `use_conditions`.
fn key_policy(use_conditions: serde_json::Value) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "KeyAdministrationOnlyNoUse", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": ["kms:Create*", "kms:Describe*", "kms:Enable*", "kms:Get*", "kms:Put*"], "Resource": "*"},
            {"Sid": "LambdaCreatesDataKeysForCallerInputOnly", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/encrypt"},
             "Action": "kms:GenerateDataKey", "Resource": "*", "Condition": use_conditions.clone()},
            {"Sid": "ConsoleDecryptsCallerInputOnly", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::123456789012:role/console"},
             "Action": "kms:Decrypt", "Resource": "*", "Condition": use_conditions}
        ]
    })
    .to_string()
}

async fn create_key(kms: &aws_sdk_kms::Client, usage: KeyUsageType, spec: KeySpec) -> String {
    kms.create_key()
        .key_usage(usage)
        .key_spec(spec)
        .send()
        .await
        .expect("moto creates a key")
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned()
}

async fn healthy() -> Option<Setup> {
    require_env("AWS_ENDPOINT_URL")?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let field_key = create_key(
        &kms,
        KeyUsageType::EncryptDecrypt,
        KeySpec::SymmetricDefault,
    )
    .await;
    kms.enable_key_rotation()
        .key_id(&field_key)
        .send()
        .await
        .expect("moto enables rotation");
    kms.put_key_policy()
        .key_id(&field_key)
        .policy_name("default")
        .policy(key_policy(conditions()))
        .send()
        .await
        .expect("moto stores the key policy");
    let checkpoint_key = create_key(&kms, KeyUsageType::SignVerify, KeySpec::EccNistP256).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let id = uuid::Uuid::new_v4().simple().to_string();
    let flow_group = format!("/aws/connect/preflight-{id}");
    let audit_group = format!("callvault-audit-{id}");
    for group in [&flow_group, &audit_group] {
        logs.create_log_group()
            .log_group_name(group)
            .send()
            .await
            .unwrap();
    }
    let fake = ConnectFake::start(INSTANCE, Vec::new());
    {
        let mut s = fake.state.lock().unwrap();
        s.flow_logs = true;
        s.v2_bots = vec![
            "arn:aws:lex:us-east-1:123456789012:bot-alias/OTHERBOT1/TSTALIASID".into(),
            BOT_ALIAS.into(),
        ];
    }
    Some(Setup {
        fake,
        sdk,
        field_key,
        checkpoint_key,
        flow_group,
        audit_group,
    })
}

/// Every CALLVAULT_* and AWS credential setting preflight reads, so that the
/// test's own environment cannot leak in.
const SETTINGS: [&str; 9] = [
    "CALLVAULT_RETENTION_DAYS",
    "CALLVAULT_CONNECT_INSTANCE_ID",
    "CALLVAULT_BOT_ALIAS_ARN",
    "CALLVAULT_LOG_GROUPS",
    "CALLVAULT_KEYRING",
    "CALLVAULT_CHECKPOINT_KEY",
    "CALLVAULT_AUDIT_LOG_GROUP",
    "CALLVAULT_PREFLIGHT_TIMEOUT_SECS",
    "AWS_ENDPOINT_URL_CONNECT",
];

fn bare_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_callvault"));
    cmd.arg("preflight");
    for name in SETTINGS {
        cmd.env_remove(name);
    }
    cmd
}

impl Setup {
    /// `callvault preflight` configured for this setup.
    fn command(&self) -> tokio::process::Command {
        let mut cmd = bare_command();
        cmd.env("CALLVAULT_CONNECT_INSTANCE_ID", INSTANCE)
            .env("CALLVAULT_BOT_ALIAS_ARN", BOT_ALIAS)
            .env("CALLVAULT_LOG_GROUPS", &self.flow_group)
            .env("CALLVAULT_KEYRING", format!("kms:{}", self.field_key))
            .env("CALLVAULT_CHECKPOINT_KEY", &self.checkpoint_key)
            .env("CALLVAULT_AUDIT_LOG_GROUP", &self.audit_group)
            .env("CALLVAULT_PREFLIGHT_TIMEOUT_SECS", "10")
            .env("CALLVAULT_RETENTION_DAYS", "365")
            .env("AWS_ENDPOINT_URL_CONNECT", &self.fake.url);
        cmd
    }

    fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.sdk)
    }

    /// The names of every line, in order.
    fn names(&self) -> Vec<String> {
        let key = |what: &str| format!("field key {} {what}", self.field_key);
        vec![
            "connect flow logs".into(),
            "connect bot alias".into(),
            format!("log group {}", self.flow_group),
            key("enabled"),
            key("rotation"),
            key("policy"),
            "checkpoint key".into(),
            "audit log group".into(),
        ]
    }
}

struct Run {
    success: bool,
    /// The lines of the AWS checks.
    lines: Vec<String>,
    /// The retention lines (`retention`, `pci dss 3.2.1`), decided from the
    /// settings for a single-key keyring.
    retention: Vec<String>,
    all: String,
}

/// The retention lines of a healthy single-key setup.
const SINGLE_KEY_RETENTION: [&str; 2] = [
    "PASS retention",
    "WARN pci dss 3.2.1: the keyring has one key for every period, so no period's values can be rendered unrecoverable; fix: use CALLVAULT_KEYRING=kms-period:<alias-prefix> and run callvault keys roll on a schedule",
];

fn is_retention_line(line: &str) -> bool {
    line.split_once(' ').is_some_and(|(_, rest)| {
        ["retention", "pci dss 3.2.1"]
            .iter()
            .any(|n| rest == *n || rest.starts_with(&format!("{n}: ")))
    })
}

/// Runs it (asynchronously: the Connect fake lives on this test's runtime).
async fn run(mut cmd: tokio::process::Command) -> Run {
    let out: Output = cmd.output().await.expect("run callvault preflight");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    // Never a panic, never an SDK error dump.
    for bad in [
        "panicked",
        "RUST_BACKTRACE",
        "DispatchFailure",
        "ServiceError",
        "Error {",
        "request_id",
        "testing",
    ] {
        assert!(!all.contains(bad), "output holds {bad:?}:\n{all}");
    }
    let (retention, lines): (Vec<String>, Vec<String>) = stdout
        .lines()
        .map(str::to_owned)
        .partition(|l| is_retention_line(l));
    Run {
        success: out.status.success(),
        lines,
        retention,
        all,
    }
}

impl Run {
    fn line(&self, name: &str) -> &str {
        self.lines
            .iter()
            .find(|l| {
                l.split_once(' ')
                    .is_some_and(|(_, rest)| rest == name || rest.starts_with(&format!("{name}: ")))
            })
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", self.all))
    }

    /// `name` fails, naming `problem`, with a fix; every other line passes;
    /// the exit status says failure.
    fn only_fails(&self, setup: &Setup, name: &str, problem: &str) {
        assert!(
            !self.success,
            "a failed check must fail the run:\n{}",
            self.all
        );
        assert_eq!(self.lines.len(), setup.names().len(), "{}", self.all);
        for n in setup.names() {
            let line = self.line(&n);
            if n == name {
                assert!(line.starts_with(&format!("FAIL {name}: ")), "{line}");
                assert!(line.contains(problem), "{line}");
                assert!(line.contains("; fix: "), "{line}");
            } else {
                assert_eq!(line, format!("PASS {n}"), "{}", self.all);
            }
        }
    }
}

#[tokio::test]
async fn a_healthy_setup_passes_every_line_and_exits_zero() {
    let Some(setup) = healthy().await else { return };
    let run = run(setup.command()).await;
    let expected: Vec<String> = setup.names().iter().map(|n| format!("PASS {n}")).collect();
    assert_eq!(run.lines, expected, "{}", run.all);
    assert_eq!(run.retention, SINGLE_KEY_RETENTION, "{}", run.all);
    assert!(run.success, "a warning does not fail the run");
    // The writability probe landed in its own stream, not in the audit record.
    let logs = aws_sdk_cloudwatchlogs::Client::new(&setup.sdk);
    let events = logs
        .get_log_events()
        .log_group_name(&setup.audit_group)
        .log_stream_name(callvault::preflight::PREFLIGHT_STREAM)
        .send()
        .await
        .unwrap();
    assert_eq!(events.events().len(), 1);
    assert!(events.events()[0]
        .message()
        .unwrap()
        .contains("\"callvault\":\"preflight\""));
    let streams = logs
        .describe_log_streams()
        .log_group_name(&setup.audit_group)
        .send()
        .await
        .unwrap();
    assert_eq!(streams.log_streams().len(), 1, "only the preflight stream");
    // ListBots asked for V2 bots.
    let queries = setup.fake.state.lock().unwrap().bot_queries.clone();
    assert!(
        queries.iter().all(|q| q.contains("lexVersion=V2")),
        "{queries:?}"
    );
    // A second run finds the preflight stream already there and passes again.
    assert!(self::run(setup.command()).await.success);
}

#[tokio::test]
async fn flow_logs_turned_off_fail_the_flow_logs_line_only() {
    let Some(setup) = healthy().await else { return };
    setup.fake.state.lock().unwrap().flow_logs = false;
    let run = run(setup.command()).await;
    run.only_fails(&setup, "connect flow logs", "flow logs are off on instance");
    assert!(run
        .line("connect flow logs")
        .contains("--attribute-type CONTACTFLOW_LOGS --value true"));
}

#[tokio::test]
async fn an_instance_without_the_capture_bot_fails_the_bot_line_only() {
    let Some(setup) = healthy().await else { return };
    setup
        .fake
        .state
        .lock()
        .unwrap()
        .v2_bots
        .retain(|a| a != BOT_ALIAS);
    let run = run(setup.command()).await;
    run.only_fails(
        &setup,
        "connect bot alias",
        &format!("bot alias {BOT_ALIAS} is not associated"),
    );
    assert!(run
        .line("connect bot alias")
        .contains("aws connect associate-bot"));

    // Without a configured alias, any V2 bot passes, and none fails.
    let mut cmd = setup.command();
    cmd.env_remove("CALLVAULT_BOT_ALIAS_ARN");
    assert!(self::run(cmd).await.success);
    setup.fake.state.lock().unwrap().v2_bots.clear();
    let mut cmd = setup.command();
    cmd.env_remove("CALLVAULT_BOT_ALIAS_ARN");
    self::run(cmd)
        .await
        .only_fails(&setup, "connect bot alias", "no Lex V2 bot is associated");
}

#[tokio::test]
async fn the_bot_alias_is_found_on_a_later_page() {
    let Some(setup) = healthy().await else { return };
    {
        let mut s = setup.fake.state.lock().unwrap();
        s.v2_bots = (0..60)
            .map(|i| format!("arn:aws:lex:us-east-1:123456789012:bot-alias/BOT{i:07}/ALIAS{i:05}"))
            .collect();
        s.v2_bots.push(BOT_ALIAS.into());
    }
    let run = run(setup.command()).await;
    assert!(run.success, "{}", run.all);
    assert_eq!(setup.fake.state.lock().unwrap().bot_queries.len(), 3);
}

#[tokio::test]
async fn a_missing_flow_log_group_fails_its_line_only() {
    let Some(setup) = healthy().await else { return };
    aws_sdk_cloudwatchlogs::Client::new(&setup.sdk)
        .delete_log_group()
        .log_group_name(&setup.flow_group)
        .send()
        .await
        .unwrap();
    let run = run(setup.command()).await;
    let name = format!("log group {}", setup.flow_group);
    run.only_fails(&setup, &name, "does not exist in us-east-1");
    assert!(run.line(&name).contains("turn on flow logs"));
}

#[tokio::test]
async fn a_field_key_without_rotation_fails_the_rotation_line_only() {
    let Some(setup) = healthy().await else { return };
    setup
        .kms()
        .disable_key_rotation()
        .key_id(&setup.field_key)
        .send()
        .await
        .unwrap();
    let run = run(setup.command()).await;
    let name = format!("field key {} rotation", setup.field_key);
    run.only_fails(&setup, &name, "automatic key rotation is off");
    assert!(run.line(&name).contains("aws kms enable-key-rotation"));
}

#[tokio::test]
async fn a_disabled_field_key_fails_the_enabled_line_only() {
    let Some(setup) = healthy().await else { return };
    // moto's DisableKey takes only the bare key id (an ARN is a 500).
    let key_id = setup.field_key.rsplit('/').next().unwrap();
    setup
        .kms()
        .disable_key()
        .key_id(key_id)
        .send()
        .await
        .unwrap();
    let run = run(setup.command()).await;
    run.only_fails(
        &setup,
        &format!("field key {} enabled", setup.field_key),
        "the key is Disabled",
    );
}

#[tokio::test]
async fn a_key_policy_without_the_purpose_condition_fails_the_policy_line_only() {
    let Some(setup) = healthy().await else { return };
    let mut weak = conditions();
    weak.as_object_mut().unwrap().remove("StringEquals");
    setup
        .kms()
        .put_key_policy()
        .key_id(&setup.field_key)
        .policy_name("default")
        .policy(key_policy(weak))
        .send()
        .await
        .unwrap();
    let run = run(setup.command()).await;
    let name = format!("field key {} policy", setup.field_key);
    run.only_fails(
        &setup,
        &name,
        "statement 'ConsoleDecryptsCallerInputOnly' allows kms:Decrypt without StringEquals kms:EncryptionContext:purpose = callvault/caller-input",
    );
    assert!(run
        .line(&name)
        .contains("'LambdaCreatesDataKeysForCallerInputOnly' allows kms:GenerateDataKey"));
}

#[tokio::test]
async fn a_key_policy_without_the_context_key_conditions_says_which_are_missing() {
    let Some(setup) = healthy().await else { return };
    setup
        .kms()
        .put_key_policy()
        .key_id(&setup.field_key)
        .policy_name("default")
        .policy(key_policy(json!({
            "StringEquals": {"kms:EncryptionContext:purpose": "callvault/caller-input"}
        })))
        .send()
        .await
        .unwrap();
    let run = run(setup.command()).await;
    let name = format!("field key {} policy", setup.field_key);
    run.only_fails(
        &setup,
        &name,
        "ForAllValues:StringEquals kms:EncryptionContextKeys",
    );
    let line = run.line(&name);
    assert!(
        line.contains("Null kms:EncryptionContext:contactId = false"),
        "{line}"
    );
    assert!(
        line.contains("Null kms:EncryptionContext:field = false"),
        "{line}"
    );
    assert!(!line.contains("without StringEquals"), "{line}");
}

#[tokio::test]
async fn an_encrypt_decrypt_checkpoint_key_fails_the_checkpoint_line_only() {
    let Some(mut setup) = healthy().await else {
        return;
    };
    setup.checkpoint_key = create_key(
        &setup.kms(),
        KeyUsageType::EncryptDecrypt,
        KeySpec::SymmetricDefault,
    )
    .await;
    let run = run(setup.command()).await;
    run.only_fails(&setup, "checkpoint key", "not SIGN_VERIFY");
    assert!(run
        .line("checkpoint key")
        .contains("ECC_NIST_P256 SIGN_VERIFY key"));
}

#[tokio::test]
async fn a_missing_audit_group_fails_the_audit_line_only() {
    let Some(mut setup) = healthy().await else {
        return;
    };
    setup.audit_group = format!("callvault-audit-missing-{}", uuid::Uuid::new_v4().simple());
    let run = run(setup.command()).await;
    run.only_fails(&setup, "audit log group", "does not exist in us-east-1");
}

#[tokio::test]
async fn access_denied_on_one_connect_call_fails_that_line_only() {
    let Some(setup) = healthy().await else { return };
    setup.fake.state.lock().unwrap().denied.push("ListBots");
    let run = run(setup.command()).await;
    run.only_fails(
        &setup,
        "connect bot alias",
        "connect:ListBots was denied (AccessDeniedException); fix: grant connect:ListBots on instance",
    );
    setup.fake.state.lock().unwrap().denied = vec!["DescribeInstanceAttribute"];
    self::run(setup.command()).await.only_fails(
        &setup,
        "connect flow logs",
        "grant connect:DescribeInstanceAttribute on instance 11111111-2222-4333-8444-555555555555 to the console role",
    );
}

#[tokio::test]
async fn a_wrong_region_names_the_region_on_each_line() {
    let Some(setup) = healthy().await else { return };
    let mut cmd = setup.command();
    cmd.env("AWS_REGION", "eu-west-1");
    // The fake serves any region: make it answer as another region would.
    setup.fake.state.lock().unwrap().instance_id = "not-this-region".into();
    let run = run(cmd).await;
    assert!(!run.success);
    assert!(run
        .line("connect flow logs")
        .contains(&format!("instance {INSTANCE} was not found in eu-west-1")));
    assert!(run
        .line("connect bot alias")
        .contains("AWS_REGION to the instance's region"));
    let key_line = run.line(&format!("field key {} rotation", setup.field_key));
    assert!(
        key_line.contains("key not found in eu-west-1 (NotFoundException): its ARN is in us-east-1; fix: set AWS_REGION=us-east-1"),
        "{key_line}"
    );
    assert!(run
        .line(&format!("log group {}", setup.flow_group))
        .contains("does not exist in eu-west-1"));
    assert!(run
        .line("checkpoint key")
        .starts_with("FAIL checkpoint key: "));
    assert!(run
        .line("audit log group")
        .contains("does not exist in eu-west-1"));
}

#[tokio::test]
async fn without_credentials_every_aws_line_fails_clearly() {
    let Some(setup) = healthy().await else { return };
    let home = tempfile::tempdir().unwrap();
    let mut cmd = setup.command();
    for name in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ] {
        cmd.env_remove(name);
    }
    cmd.env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            home.path().join("credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let run = run(cmd).await;
    assert!(!run.success);
    assert_eq!(run.lines.len(), setup.names().len(), "{}", run.all);
    for name in setup.names() {
        assert_eq!(
            run.line(&name),
            format!("FAIL {name}: no AWS credentials could be loaded; fix: run with the console role's credentials (an instance or task role, AWS_PROFILE, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        );
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_each_line_without_a_panic() {
    let Some(setup) = healthy().await else { return };
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut cmd = setup.command();
    cmd.env("AWS_ENDPOINT_URL", &closed)
        .env("AWS_ENDPOINT_URL_CONNECT", &closed);
    let run = run(cmd).await;
    assert!(!run.success);
    assert!(run
        .line("connect flow logs")
        .starts_with("FAIL connect flow logs: cannot connect to the Amazon Connect endpoint; fix: check network access"));
    assert!(run
        .line("checkpoint key")
        .contains("cannot connect to the KMS endpoint"));
    assert!(run
        .line("audit log group")
        .contains("cannot connect to the CloudWatch Logs endpoint"));
    assert!(
        run.lines.iter().all(|l| l.starts_with("FAIL ")),
        "{}",
        run.all
    );
}

#[tokio::test]
async fn a_silent_endpoint_fails_within_the_check_timeout() {
    let Some(setup) = healthy().await else { return };
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = setup.command();
    cmd.env("CALLVAULT_PREFLIGHT_TIMEOUT_SECS", "2").env(
        "AWS_ENDPOINT_URL_CONNECT",
        format!("http://{}", silent.local_addr().unwrap()),
    );
    let started = std::time::Instant::now();
    let run = run(cmd).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    for name in ["connect flow logs", "connect bot alias"] {
        assert!(
            run.line(name).contains("no answer from Amazon Connect"),
            "{}",
            run.all
        );
    }
    assert_eq!(run.line("checkpoint key"), "PASS checkpoint key");
    assert!(!run.success);
    drop(silent);
}

#[tokio::test]
async fn unset_checks_are_skipped_but_the_instance_is_required() {
    if require_env("AWS_ENDPOINT_URL").is_none() {
        return;
    }
    let run = run(bare_command()).await;
    assert!(!run.success);
    assert_eq!(
        run.lines,
        vec![
            "FAIL connect flow logs: CALLVAULT_CONNECT_INSTANCE_ID is not set; fix: set CALLVAULT_CONNECT_INSTANCE_ID (or --connect-instance-id) to the instance id, the last part of the instance ARN",
            "FAIL connect bot alias: CALLVAULT_CONNECT_INSTANCE_ID is not set; fix: set CALLVAULT_CONNECT_INSTANCE_ID (or --connect-instance-id) to the instance id, the last part of the instance ARN",
            "SKIP log groups: not configured",
            "SKIP field key: not configured",
            "SKIP checkpoint key: not configured",
            "SKIP audit log group: not configured",
        ],
        "{}",
        run.all
    );
    assert_eq!(
        run.retention,
        vec![
            "WARN retention: CALLVAULT_RETENTION_DAYS is not set: every value can be revealed for as long as its key exists; fix: set CALLVAULT_RETENTION_DAYS to the documented retention in days (e.g. 365)",
            "SKIP pci dss 3.2.1: no keyring configured",
        ],
        "{}",
        run.all
    );
    // A raw-aes keyring has no KMS key to check; bad values fail their line.
    let mut cmd = bare_command();
    cmd.env("CALLVAULT_KEYRING", "raw-aes:/nonexistent/key.b64")
        .env("CALLVAULT_LOG_GROUPS", "bad group name")
        .env("CALLVAULT_CHECKPOINT_KEY", "alias/checkpoints");
    let run = self::run(cmd).await;
    assert_eq!(
        run.line("field key"),
        "SKIP field key: a raw-aes keyring has no KMS key to check"
    );
    assert!(run
        .line("log group bad group name")
        .contains("invalid log group name"));
    assert!(run
        .line("audit log group")
        .contains("CALLVAULT_CHECKPOINT_KEY is set but CALLVAULT_AUDIT_LOG_GROUP is not"));
}

#[tokio::test]
async fn the_pci_line_fails_while_a_month_past_retention_keeps_its_key() {
    let Some(setup) = healthy().await else { return };
    let kms = setup.kms();
    let n: u64 = rand::random();
    let prefix = format!("alias/preflight-{n:016x}/fields");
    let mut old_id = String::new();
    let this = lambda_encrypt::period::Period::now();
    for period in ["2024-01".to_owned(), this.to_string()] {
        let id = kms
            .create_key()
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned();
        kms.create_alias()
            .alias_name(format!("{prefix}/{period}"))
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
        if period == "2024-01" {
            old_id = id;
        } else {
            kms.create_alias()
                .alias_name(format!("{prefix}/current"))
                .target_key_id(&id)
                .send()
                .await
                .unwrap();
        }
    }
    let command = || {
        let mut cmd = setup.command();
        cmd.env("CALLVAULT_KEYRING", format!("kms-period:{prefix}"));
        cmd
    };
    let run = run(command()).await;
    assert_eq!(
        run.line(&format!("field key {prefix}/current enabled")),
        format!("PASS field key {prefix}/current enabled")
    );
    assert_eq!(run.retention[0], "PASS retention");
    assert!(
        run.retention[1].starts_with("FAIL pci dss 3.2.1: keys past retention are still enabled: 2024-01; fix: callvault keys retire"),
        "{}",
        run.all
    );
    assert!(!run.success);
    kms.schedule_key_deletion()
        .key_id(&old_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let run = self::run(command()).await;
    assert_eq!(
        run.retention,
        ["PASS retention", "PASS pci dss 3.2.1"],
        "{}",
        run.all
    );
    // Without a retention, a period keyring fails the check.
    let mut cmd = command();
    cmd.env_remove("CALLVAULT_RETENTION_DAYS");
    let run = self::run(cmd).await;
    assert!(run.retention[0].starts_with("WARN retention: "));
    assert!(run.retention[1].starts_with("FAIL pci dss 3.2.1: period keys without a retention"));
}
