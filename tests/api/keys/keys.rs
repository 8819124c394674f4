//! Period keys and retention: `callvault keys roll|list|retire|cancel`
//! against moto's KMS (AWS_ENDPOINT_URL from scripts/test) and on a
//! `raw-aes-period:` directory, with the Python ESDK as the peer that made
//! the old values.
//!
//! moto does not enforce key states (it decrypts with a key pending
//! deletion where KMS refuses), so the refusals checked here come from the
//! console's own listing of its period keys.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use callvault::audit::{AuditLog, AuditRow, RequestMeta};
use callvault::clock::{SharedClock, SystemClock};
use callvault::db::Db;
use callvault::keys::{KeyOptions, KeysError, Listed, Operator, PeriodKeyService, RetentionDays};
use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::{AlgorithmSuite, CryptoError, FieldCrypto};
use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::keyring::{generate_raw_aes_key_file, KeyringSpec};
use lambda_encrypt::period::{AliasPrefix, KeyState, Period, RawPeriodDir};

use crate::helpers::*;

const CARD: &str = "4111111111111111";
const OLD: &str = "2024-01";

fn days(n: u64) -> Option<RetentionDays> {
    Some(RetentionDays::new(n).unwrap())
}

fn context(contact: &str) -> FieldContext {
    FieldContext::new(
        ContactId::parse(contact).unwrap(),
        FieldName::parse("creditcard").unwrap(),
    )
}

async fn audit_on(url: &str) -> AuditLog {
    let db = Db::open(url).await.unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    AuditLog::new(db, zeroize::Zeroizing::new(vec![7u8; 32]), clock)
}

async fn rows(audit: &AuditLog) -> Vec<AuditRow> {
    let mut rows = audit
        .query(&Default::default(), None, 10_000)
        .await
        .unwrap();
    rows.reverse();
    rows
}

fn operator() -> Operator {
    Operator {
        actor: "cli:test".into(),
        role: "cli".into(),
        meta: RequestMeta {
            client_addr: "cli".into(),
            user_agent: "test".into(),
            request_id: "r".into(),
        },
    }
}

/// The Python ESDK (tests/interop.py), stdin in, stdout out.
fn python(args: &[&str], stdin: &str) -> Option<Output> {
    let py = require_env("CALLVAULT_PYTHON")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/lambda-encrypt/tests/interop.py"
    );
    let mut child = Command::new(py)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

/// A KMS deployment in moto under a prefix of this test's own.
struct Kms {
    sdk: aws_config::SdkConfig,
    client: aws_sdk_kms::Client,
    prefix: AliasPrefix,
    /// The key whose policy period keys copy (the template's field key).
    template_key: String,
    policy: String,
    _dir: tempfile::TempDir,
    url: String,
}

impl Kms {
    async fn new() -> Option<Self> {
        require_env("AWS_ENDPOINT_URL")?;
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let client = aws_sdk_kms::Client::new(&sdk);
        let n: u64 = rand::random();
        let prefix = AliasPrefix::parse(&format!("alias/keys-{n:016x}/fields")).unwrap();
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{"Sid": "ConsoleDecryptsCallerInputOnly", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:role/console"},
                "Action": "kms:Decrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "callvault/caller-input"}}}]
        })
        .to_string();
        let template_key = client
            .create_key()
            .policy(&policy)
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_owned();
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir);
        Some(Self {
            sdk,
            client,
            prefix,
            template_key,
            policy,
            _dir: dir,
            url,
        })
    }

    fn spec(&self) -> KeyringSpec {
        KeyringSpec::KmsPeriod {
            prefix: self.prefix.clone(),
        }
    }

    async fn service_on(&self, audit: AuditLog) -> PeriodKeyService {
        PeriodKeyService::new(
            &self.spec(),
            Some(&self.sdk),
            KeyOptions {
                deployment: "test-deployment".into(),
                policy_from: Some(self.template_key.clone()),
            },
            audit,
            Arc::new(SystemClock),
            operator(),
        )
        .unwrap()
    }

    async fn service(&self) -> (PeriodKeyService, AuditLog) {
        let audit = audit_on(&self.url).await;
        (self.service_on(audit.clone()).await, audit)
    }

    /// A key of an earlier period, as an earlier roll made it: (id, ARN).
    async fn old_key(&self, period: &str) -> (String, String) {
        let meta = self.client.create_key().send().await.unwrap();
        let meta = meta.key_metadata().unwrap();
        self.client
            .create_alias()
            .alias_name(self.prefix.period_alias(Period::parse(period).unwrap()))
            .target_key_id(meta.key_id())
            .send()
            .await
            .unwrap();
        (meta.key_id().to_owned(), meta.arn().unwrap().to_owned())
    }

    async fn state(&self, key_id: &str) -> String {
        let out = self
            .client
            .describe_key()
            .key_id(key_id)
            .send()
            .await
            .unwrap();
        out.key_metadata()
            .unwrap()
            .key_state()
            .unwrap()
            .as_str()
            .to_owned()
    }

    async fn console(&self) -> FieldCrypto {
        FieldCrypto::from_spec(
            &self.spec(),
            AlgorithmSuite::CommittedSigned,
            Some(&self.sdk),
        )
        .await
        .unwrap()
    }

    /// What the peer (the Python ESDK) encrypted under `arn`.
    fn peer_value(&self, arn: &str, ctx: &FieldContext) -> Option<Ciphertext> {
        let context = serde_json::to_string(&ctx.to_map()).unwrap();
        let out = python(&["kms-encrypt", arn, &context], CARD)?;
        assert!(
            out.status.success(),
            "python kms-encrypt: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Ciphertext::from_base64(std::str::from_utf8(&out.stdout).unwrap()).unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_roll_makes_this_and_next_months_keys_and_points_current_at_this_one() {
    let Some(kms) = Kms::new().await else { return };
    let (service, audit) = kms.service().await;
    let this = Period::now();
    let report = service.roll().await.unwrap();
    assert_eq!(report.created, vec![this, this.next()]);
    assert_eq!(report.moved_current, Some(this));

    let listing = kms
        .console()
        .await
        .refresh_period_keys()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listing.keys.len(), 2);
    let current = listing.current().unwrap();
    assert_eq!(current.period, this);
    for key in &listing.keys {
        assert_eq!(key.state, KeyState::Enabled);
        let rotation = kms
            .client
            .get_key_rotation_status()
            .key_id(&key.key_id)
            .send()
            .await
            .unwrap();
        assert!(rotation.key_rotation_enabled(), "rotation on");
        let tags = kms
            .client
            .list_resource_tags()
            .key_id(&key.key_id)
            .send()
            .await
            .unwrap();
        let tags: Vec<(String, String)> = tags
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
            .collect();
        assert!(tags.contains(&("callvault:deployment".into(), "test-deployment".into())));
        assert!(tags.contains(&("callvault:period".into(), key.period.to_string())));
        let policy = kms
            .client
            .get_key_policy()
            .key_id(&key.key_id)
            .policy_name("default")
            .send()
            .await
            .unwrap();
        assert_eq!(
            policy.policy(),
            Some(kms.policy.as_str()),
            "the template key's policy"
        );
    }

    // The capture side now encrypts under this month's key.
    let ctx = context("contact-roll");
    let ct = kms
        .console()
        .await
        .encrypt(
            &ctx,
            &lambda_encrypt::plaintext::Plaintext::from_string(CARD.into()),
        )
        .await
        .unwrap();
    assert_eq!(ct.header().data_keys[0].key_id, current.arn);

    // Idempotent: a second roll changes nothing, and says so.
    let again = service.roll().await.unwrap();
    assert!(again.created.is_empty() && again.moved_current.is_none());
    assert_eq!(
        kms.console()
            .await
            .refresh_period_keys()
            .await
            .unwrap()
            .unwrap()
            .keys
            .len(),
        2
    );
    let outcomes: Vec<String> = rows(&audit)
        .await
        .iter()
        .filter(|r| r.action == "key_roll")
        .map(|r| r.outcome.clone())
        .collect();
    assert_eq!(outcomes, ["ok", "unchanged"]);
    let listed = service.list(days(365)).await.unwrap();
    assert_eq!(listed[0].state, Listed::Current);
    assert_eq!(listed[1].state, Listed::Kept);
    assert!(listed[0].line().contains("current") && listed[0].line().contains("inside retention"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_value_of_an_old_period_reveals_before_retire_and_is_refused_after_it() {
    let Some(kms) = Kms::new().await else { return };
    let (service, audit) = kms.service().await;
    service.roll().await.unwrap();
    let (old_id, old_arn) = kms.old_key(OLD).await;
    let ctx = context("contact-old-period");
    let Some(ct) = kms.peer_value(&old_arn, &ctx) else {
        return;
    };
    let console = kms.console().await;
    let out = console.decrypt(&ct, &ctx.to_expected()).await.unwrap();
    assert_eq!(out.plaintext.expose_str(), Some(CARD));
    assert_eq!(out.key.unwrap().period.to_string(), OLD);

    let report = service
        .retire(Period::parse(OLD).unwrap(), 7, days(365))
        .await
        .unwrap();
    assert_eq!(report.retired.len(), 1);
    assert!(report.retired[0].2.is_some(), "a deletion date");
    assert_eq!(kms.state(&old_id).await, "PendingDeletion");
    let retire_rows: Vec<AuditRow> = rows(&audit)
        .await
        .into_iter()
        .filter(|r| r.action == "key_retire")
        .collect();
    assert_eq!(retire_rows.len(), 1);
    assert_eq!(retire_rows[0].outcome, "scheduled");
    assert!(retire_rows[0].detail.contains(&old_id));

    // The console learns the state from its listing (moto would decrypt).
    console.refresh_period_keys().await.unwrap();
    let err = console.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    let CryptoError::KeyRetired(key) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(key.period.to_string(), OLD);
    assert!(matches!(key.state, KeyState::PendingDeletion { .. }));
    let listed = service.list(days(365)).await.unwrap();
    let line = listed[0].line();
    assert!(
        line.starts_with(OLD)
            && line.contains("pending deletion until")
            && line.contains("past retention"),
        "{line}"
    );

    // Once KMS deletes the key (and its aliases; moto never does, so the
    // alias goes by hand), the listing says deleted, from the audit log.
    let (gone_id, _) = kms.old_key("2024-02").await;
    service
        .retire(Period::parse("2024-02").unwrap(), 7, days(365))
        .await
        .unwrap();
    kms.client
        .delete_alias()
        .alias_name(kms.prefix.period_alias(Period::parse("2024-02").unwrap()))
        .send()
        .await
        .unwrap();
    let listed = service.list(days(365)).await.unwrap();
    let gone = listed.iter().find(|k| k.key_id == gone_id).unwrap();
    assert_eq!(gone.state, Listed::Deleted);
    assert!(gone.line().starts_with("2024-02") && gone.line().contains("deleted"));

    // Cancelled: the key is enabled again and the value reveals again.
    service.cancel(Period::parse(OLD).unwrap()).await.unwrap();
    assert_eq!(kms.state(&old_id).await, "Enabled");
    console.refresh_period_keys().await.unwrap();
    let out = console.decrypt(&ct, &ctx.to_expected()).await.unwrap();
    assert_eq!(out.plaintext.expose_str(), Some(CARD));
    // Cancelling a key that is not pending is refused.
    assert!(matches!(
        service.cancel(Period::parse(OLD).unwrap()).await,
        Err(KeysError::NotPending { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retiring_inside_retention_or_the_current_key_is_refused_and_touches_nothing() {
    let Some(kms) = Kms::new().await else { return };
    let (service, audit) = kms.service().await;
    service.roll().await.unwrap();
    let (old_id, _) = kms.old_key(OLD).await;
    let old = Period::parse(OLD).unwrap();
    let listing = kms
        .console()
        .await
        .refresh_period_keys()
        .await
        .unwrap()
        .unwrap();
    let all_enabled = || async {
        for k in &listing.keys {
            assert_eq!(kms.state(&k.key_id).await, "Enabled", "{}", k.period);
        }
    };

    let err = service.retire(old, 30, days(3660)).await.unwrap_err();
    assert!(matches!(err, KeysError::InsideRetention { .. }), "{err}");
    assert!(err.to_string().contains("inside retention"), "{err}");
    all_enabled().await;

    let err = service
        .retire(Period::now(), 30, days(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeysError::RetireCurrent(p) if p == Period::now()),
        "{err}"
    );
    all_enabled().await;

    let err = service.retire(old, 30, None).await.unwrap_err();
    assert!(matches!(err, KeysError::NoRetention), "{err}");
    for bad in [6, 31, 0] {
        let err = service.retire(old, bad, days(365)).await.unwrap_err();
        assert!(matches!(err, KeysError::PendingDays(_)), "{err}");
    }
    all_enabled().await;
    assert_eq!(kms.state(&old_id).await, "Enabled");
    let outcomes: Vec<String> = rows(&audit)
        .await
        .iter()
        .filter(|r| r.action == "key_retire")
        .map(|r| r.outcome.clone())
        .collect();
    assert!(
        !outcomes.is_empty() && outcomes.iter().all(|o| o == "refused"),
        "{outcomes:?}"
    );

    // A period whose key is already pending deletion is left as it is, and
    // `keys roll` refuses to reuse a month whose key is pending deletion.
    kms.client
        .schedule_key_deletion()
        .key_id(&old_id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let report = service.retire(old, 30, days(365)).await.unwrap();
    assert!(report.retired.is_empty());
    assert_eq!(report.already_pending, vec![old]);
    let this_key = listing.get(Period::now()).unwrap().key_id.clone();
    kms.client
        .schedule_key_deletion()
        .key_id(&this_key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let err = service.roll().await.unwrap_err();
    assert!(matches!(err, KeysError::Unusable { .. }), "{err}");
}

async fn pg_admin(sql: &str) {
    use sqlx::Connection as _;
    let admin = std::env::var("CALLVAULT_TEST_POSTGRES").unwrap();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_audit_store_failing_keys_retire_schedules_nothing() {
    let Some(kms) = Kms::new().await else { return };
    let Some(url) = fresh_postgres_database().await else {
        return;
    };
    let audit = audit_on(&url).await;
    let service = kms.service_on(audit.clone()).await;
    service.roll().await.unwrap();
    let (old_id, _) = kms.old_key(OLD).await;
    let db = url.rsplit('/').next().unwrap().to_owned();
    pg_admin(&format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = on"
    ))
    .await;
    pg_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let err = service
        .retire(Period::parse(OLD).unwrap(), 7, days(365))
        .await
        .unwrap_err();
    assert!(matches!(err, KeysError::Audit(_)), "{err}");
    assert_eq!(kms.state(&old_id).await, "Enabled", "nothing scheduled");
    // Writable again: the same command goes through.
    pg_admin(&format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = off"
    ))
    .await;
    pg_admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ))
    .await;
    let mut retired = None;
    for _ in 0..50 {
        match service
            .retire(Period::parse(OLD).unwrap(), 7, days(365))
            .await
        {
            Ok(r) => {
                retired = Some(r);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    assert_eq!(retired.unwrap().retired.len(), 1);
    assert_eq!(kms.state(&old_id).await, "PendingDeletion");
}

fn raw_service(dir: &std::path::Path, audit: AuditLog) -> PeriodKeyService {
    PeriodKeyService::new(
        &KeyringSpec::RawAesPeriod {
            dir: dir.to_owned(),
        },
        None,
        KeyOptions::default(),
        audit,
        Arc::new(SystemClock),
        operator(),
    )
    .unwrap()
}

#[tokio::test]
async fn on_raw_aes_period_retire_destroys_the_file_and_the_peer_cannot_decrypt_either() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let audit = audit_on(&sqlite_url(&tmp)).await;
    let service = raw_service(&dir, audit.clone());
    let report = service.roll().await.unwrap();
    assert_eq!(report.created, vec![Period::now(), Period::now().next()]);
    let keys = RawPeriodDir::new(&dir);
    let old = Period::parse(OLD).unwrap();
    generate_raw_aes_key_file(&keys.key_file(old)).unwrap();
    let crypto = FieldCrypto::from_spec(
        &KeyringSpec::RawAesPeriod { dir: dir.clone() },
        AlgorithmSuite::CommittedSigned,
        None,
    )
    .await
    .unwrap();
    let ctx = context("contact-raw-old");
    let ct = crypto
        .encrypt_in_period(
            old,
            &ctx,
            &lambda_encrypt::plaintext::Plaintext::from_string(CARD.into()),
        )
        .await
        .unwrap();
    let old_file = keys.key_file(old);
    let peer = |file: &std::path::Path| {
        python(
            &[
                "decrypt",
                file.to_str().unwrap(),
                "contact-raw-old",
                "creditcard",
            ],
            &ct.to_base64(),
        )
    };
    let Some(before) = peer(&old_file) else {
        return;
    };
    assert!(
        before.status.success(),
        "{}",
        String::from_utf8_lossy(&before.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&before.stdout), CARD);

    // Inside retention: refused, the file stays.
    assert!(service.retire(old, 30, days(3660)).await.is_err());
    assert!(old_file.exists());
    let report = service.retire(old, 30, days(365)).await.unwrap();
    assert_eq!(report.retired.len(), 1);
    assert!(!old_file.exists(), "the key file is gone");
    assert!(keys.tombstone(old).exists());
    // Unrecoverable, not merely refused: the peer has no key either, and
    // no other period's key opens it.
    let after = peer(&old_file).unwrap();
    assert!(!after.status.success());
    let other = peer(&keys.key_file(Period::now())).unwrap();
    assert!(!other.status.success());
    assert!(!String::from_utf8_lossy(&other.stdout).contains(CARD));
    let err = crypto.decrypt(&ct, &ctx.to_expected()).await.unwrap_err();
    assert!(
        matches!(&err, CryptoError::KeyRetired(k) if k.state == KeyState::Deleted),
        "{err:?}"
    );
    let listed = service.list(days(365)).await.unwrap();
    assert_eq!(listed[0].period, old);
    assert_eq!(listed[0].state, Listed::Deleted);
    assert!(matches!(
        service.cancel(old).await,
        Err(KeysError::NoPendingRaw)
    ));
    // The current month cannot be retired.
    assert!(matches!(
        service.retire(Period::now(), 30, days(1)).await,
        Err(KeysError::RetireCurrent(_))
    ));
    assert!(keys.key_file(Period::now()).exists());
    let audited: Vec<String> = rows(&audit)
        .await
        .iter()
        .map(|r| format!("{}:{}", r.action, r.outcome))
        .collect();
    assert!(
        audited.contains(&"key_retire:scheduled".to_owned()),
        "{audited:?}"
    );
}

/// `callvault keys ...` as a process; (success, stdout + stderr).
fn cli(dir: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_callvault"));
    cmd.arg("keys")
        .args(args)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.join("cv.db").display()),
        )
        .env("CALLVAULT_SECRETS_DIR", dir.join("secrets"))
        .env_remove("CALLVAULT_RETENTION_DAYS")
        .env_remove("CALLVAULT_KEYRING");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn bad_input_is_refused_clearly_and_retires_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let keys_dir = tmp.path().join("keys");
    let keyring = format!("raw-aes-period:{}", keys_dir.display());
    let ring = [("CALLVAULT_KEYRING", keyring.as_str())];
    let (ok, out) = cli(tmp.path(), &ring, &["roll"]);
    assert!(ok, "{out}");
    let old = RawPeriodDir::new(&keys_dir).key_file(Period::parse(OLD).unwrap());
    generate_raw_aes_key_file(&old).unwrap();
    let (ok, out) = cli(tmp.path(), &ring, &["list"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "{}  {}.key  current  retention not set",
            Period::now(),
            Period::now()
        )),
        "{out}"
    );

    let (ok, out) = cli(tmp.path(), &ring, &["list", "--retention-days", "365"]);
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("{OLD}  {OLD}.key  kept  past retention")),
        "{out}"
    );

    let with = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
        ring.iter().copied().chain(extra.iter().copied()).collect()
    };
    let cases: Vec<(Vec<(&str, &str)>, Vec<&str>, &str)> = vec![
        (
            vec![("CALLVAULT_KEYRING", "kms-period:callvault/fields")],
            vec!["list"],
            "is not a KMS alias prefix",
        ),
        (
            vec![("CALLVAULT_KEYRING", "kms-period:alias/aws/fields")],
            vec!["roll"],
            "is not a KMS alias prefix",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "365")]),
            vec!["retire", "--through", "2024-1"],
            "is not a period",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "365")]),
            vec!["retire", "--through", "2024-01-31"],
            "is not a period",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "365")]),
            vec!["retire", "--through", OLD, "--pending-days", "6"],
            "must be from 7 to 30",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "365")]),
            vec!["retire", "--through", OLD, "--pending-days", "31"],
            "must be from 7 to 30",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "0")]),
            vec!["retire", "--through", OLD],
            "0 days",
        ),
        (
            with(&[("CALLVAULT_RETENTION_DAYS", "100000")]),
            vec!["retire", "--through", OLD],
            "3660-day limit",
        ),
        (
            with(&[]),
            vec!["retire", "--through", OLD],
            "needs a retention",
        ),
        (with(&[]), vec!["cancel", "24-01"], "is not a period"),
        (
            vec![("CALLVAULT_KEYRING", "raw-aes:/tmp/x.key")],
            vec!["list"],
            "not a period keyring",
        ),
    ];
    for (env, args, expected) in cases {
        let (ok, out) = cli(tmp.path(), &env, &args);
        assert!(!ok, "{args:?} must fail:\n{out}");
        assert!(
            out.contains(expected),
            "{args:?}: expected {expected:?} in\n{out}"
        );
        assert!(!out.contains("panicked"), "{out}");
        assert!(old.exists(), "{args:?} touched the key");
    }
    // And the command that should work does.
    let (ok, out) = cli(
        tmp.path(),
        &with(&[("CALLVAULT_RETENTION_DAYS", "365")]),
        &["retire", "--through", OLD],
    );
    assert!(ok, "{out}");
    assert!(!old.exists());
    assert!(out.contains("destroyed"), "{out}");
}

#[tokio::test]
async fn the_demo_spreads_its_contacts_over_periods_one_of_them_past_retention() {
    use callvault::demo::periods::{demo_periods, spread_over_periods, DEMO_RETENTION_DAYS};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let clock: SharedClock = Arc::new(SystemClock);
    let app = callvault::demo::run::prepare(&dir, "127.0.0.1:0", clock.clone(), false, |_| Ok(()))
        .await
        .unwrap();
    drop(app);
    let keys_dir = dir.join("keys");
    let audit = audit_on(&sqlite_url(&tmp)).await;
    let listed = raw_service(&keys_dir, audit)
        .list(days(u64::from(DEMO_RETENTION_DAYS)))
        .await
        .unwrap();
    let past: Vec<Period> = listed
        .iter()
        .filter(|k| k.past_retention == Some(true))
        .map(|k| k.period)
        .collect();
    let periods = demo_periods(clock.now_us());
    assert_eq!(past, vec![periods[0]], "{listed:?}");
    assert!(listed.iter().any(|k| k.state == Listed::Current));

    // Each contact's values are wrapped by its own month's key.
    let spec = KeyringSpec::RawAesPeriod {
        dir: keys_dir.clone(),
    };
    let crypto = FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, None)
        .await
        .unwrap();
    let handler = lambda_encrypt::handler::Handler::new(
        Default::default(),
        FieldCrypto::from_spec(&spec, AlgorithmSuite::CommittedSigned, None)
            .await
            .unwrap(),
    );
    let mut data = callvault::demo::generate(&handler, clock.now_us())
        .await
        .unwrap();
    let keys = RawPeriodDir::new(&keys_dir);
    spread_over_periods(&mut data, &crypto, &keys, clock.now_us())
        .await
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for c in &data.contacts {
        let ct = Ciphertext::from_base64(&c.attributes["creditcard"]).unwrap();
        let ctx = ct.header().field_context().unwrap();
        let key = crypto
            .decrypt(&ct, &ctx.to_expected())
            .await
            .unwrap()
            .key
            .unwrap();
        assert_eq!(
            key.period,
            Period::of_unix_us(c.summary.initiated_us.unwrap())
        );
        seen.insert(key.period);
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), periods);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_commands_run_as_a_process_against_kms() {
    let Some(kms) = Kms::new().await else { return };
    let tmp = tempfile::tempdir().unwrap();
    let keyring = format!("kms-period:{}", kms.prefix);
    let ring = [("CALLVAULT_KEYRING", keyring.as_str())];
    // The first roll needs a policy to copy.
    let (ok, out) = cli(tmp.path(), &ring, &["roll"]);
    assert!(!ok && out.contains("--policy-from"), "{out}");
    let (ok, out) = cli(tmp.path(), &ring, &["list"]);
    assert!(
        ok && out.contains("no period keys"),
        "nothing was made: {out}"
    );
    let (ok, out) = cli(
        tmp.path(),
        &ring,
        &["roll", "--policy-from", &kms.template_key],
    );
    assert!(ok, "{out}");
    let this = Period::now();
    assert!(out.contains(&format!("current: {this} (moved)")), "{out}");
    let (_old_id, _) = kms.old_key(OLD).await;
    let (ok, out) = cli(tmp.path(), &ring, &["list", "--retention-days", "365"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(OLD) && lines[0].ends_with("kept  past retention"),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&this.to_string()) && lines[1].contains("  current  "),
        "{out}"
    );
    let (ok, out) = cli(
        tmp.path(),
        &ring,
        &[
            "retire",
            "--through",
            &this.to_string(),
            "--retention-days",
            "30",
        ],
    );
    assert!(!ok && out.contains("is current"), "{out}");
    let (ok, out) = cli(
        tmp.path(),
        &ring,
        &[
            "retire",
            "--through",
            OLD,
            "--retention-days",
            "365",
            "--pending-days",
            "7",
        ],
    );
    assert!(ok && out.contains("pending deletion until"), "{out}");
    let (ok, out) = cli(tmp.path(), &ring, &["cancel", OLD]);
    assert!(ok && out.contains("cancelled"), "{out}");
}
