//! The command line, run as a separate process.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use crate::helpers::*;

struct Env {
    dir: tempfile::TempDir,
    url: String,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = sqlite_url(&dir);
        Self { dir, url }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callvault"))
            .args(args)
            .env("DATABASE_URL", &self.url)
            .env("CALLVAULT_SECRETS_DIR", self.dir.path().join("secrets"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn users_are_managed_from_the_command_line_and_every_change_is_audited() {
    let env = Env::new();
    let o = env.run(&["migrate"], None);
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(
        &["user", "add", "carol", "--role", "auditor"],
        Some("a long cli password\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["user", "list"], None);
    assert!(
        text(&o).contains("carol") && text(&o).contains("auditor") && text(&o).contains("active")
    );
    let o = env.run(
        &["user", "passwd", "carol"],
        Some("another long password\n"),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = env.run(&["user", "disable", "carol"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&env.run(&["user", "list"], None)).contains("disabled"));

    let o = env.run(&["audit", "export", "--format", "jsonl"], None);
    assert!(o.status.success());
    let export = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(export.contains("added user carol as auditor"));
    assert!(export.contains("set password of carol"));
    assert!(export.contains("disabled user carol"));
    assert!(!export.contains("long cli password") && !export.contains("another long password"));
    let o = env.run(&["audit", "verify"], None);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_cli_input_is_refused_with_a_clear_message() {
    let env = Env::new();
    let o = env.run(
        &["user", "add", "dave", "--role", "root"],
        Some("a long cli password\n"),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown role"));
    let o = env.run(
        &["user", "add", "dave", "--role", "auditor"],
        Some("short\n"),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("at least 12"));
    let o = env.run(
        &["user", "add", "<dave>", "--role", "auditor"],
        Some("a long cli password\n"),
    );
    assert!(!o.status.success());
    // There is no way to pass a password as an argument.
    let o = env.run(
        &[
            "user",
            "add",
            "dave",
            "--role",
            "auditor",
            "--password",
            "a long cli password",
        ],
        None,
    );
    assert!(!o.status.success());
    let o = env.run(&["user", "disable", "nobody"], None);
    assert!(!o.status.success());
    assert!(text(&o).contains("no such user"));
    let bad_db = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["migrate"])
        .env("DATABASE_URL", "mysql://nope")
        .output()
        .unwrap();
    assert!(!bad_db.status.success());
    assert!(text(&bad_db).contains("DATABASE_URL must start with sqlite: or postgres:"));
}

#[test]
fn keygen_writes_a_private_key_file_once() {
    let env = Env::new();
    let path = env.dir.path().join("demo.key");
    let o = env.run(&["keygen", "--out", path.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("raw-aes:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = env.run(&["keygen", "--out", path.to_str().unwrap()], None);
    assert!(!again.status.success(), "keygen must not overwrite a key");
}

#[test]
fn serve_refuses_an_insecure_cookie_off_loopback() {
    let env = Env::new();
    let o = env.run(
        &["serve", "--listen", "0.0.0.0:0", "--insecure-cookie"],
        None,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("loopback"));
}

#[tokio::test]
async fn decrypt_from_the_command_line_is_audited_like_the_web() {
    let env = Env::new();
    let (ct, keyring) = cli_ciphertext(&env).await;
    let contact = CLI_CONTACT;
    assert!(env
        .run(
            &["user", "add", "alice", "--role", "auditor"],
            Some("a long cli password\n")
        )
        .status
        .success());
    let decrypt =
        |operator: &str, contact: &str| cli_decrypt(&env, &keyring, &ct, operator, contact, &[]);
    let ok = decrypt("sam", contact);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout).trim(),
        "4111111111111111"
    );
    let refused = decrypt("alice", contact);
    assert!(!refused.status.success());
    assert!(!text(&refused).shows("4111111111111111"));
    let moved = decrypt("sam", "cccccccc-0000-4000-8000-000000000002");
    assert_eq!(moved.status.code(), Some(2));
    assert!(!text(&moved).shows("4111111111111111"));

    let export = env.run(&["audit", "export", "--format", "jsonl"], None);
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |action: &str| {
        rows.iter()
            .filter(|r| r["action"] == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(find("decrypt").len(), 1);
    assert_eq!(find("decrypt")[0]["actor"], "sam");
    assert_eq!(find("decrypt")[0]["reason"], "cli dispute 5");
    assert_eq!(
        find("decrypt_denied").len(),
        2,
        "the auditor and the moved ciphertext"
    );
    assert!(!String::from_utf8_lossy(&export.stdout).shows("4111111111111111"));
}

const CLI_CONTACT: &str = "cccccccc-0000-4000-8000-000000000001";

/// A key file, a card number the Lambda's handler encrypted under it for
/// `CLI_CONTACT`, and a supervisor "sam"; (ciphertext, keyring spec).
async fn cli_ciphertext(env: &Env) -> (String, String) {
    let key = env.dir.path().join("cli.key");
    assert!(env
        .run(&["keygen", "--out", key.to_str().unwrap()], None)
        .status
        .success());
    // The Lambda's handler encrypts with the same key file.
    let spec = lambda_encrypt::keyring::KeyringSpec::RawAes { path: key.clone() };
    let crypto = lambda_encrypt::crypto::FieldCrypto::from_spec(&spec, Default::default(), None)
        .await
        .unwrap();
    let handler = lambda_encrypt::handler::Handler::new(Default::default(), crypto);
    let event = serde_json::json!({
        "invocationSource": "DialogCodeHook", "sessionId": "s",
        "sessionState": {"sessionAttributes": {"contactId": CLI_CONTACT},
          "intent": {"name": "X", "slots": {"creditcard": {"value": {"interpretedValue": "4111 1111 1111 1111"}}}}}
    });
    let out = serde_json::to_value(handler.handle(event).await.unwrap()).unwrap();
    let ct = out["sessionState"]["sessionAttributes"]["creditcard"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(env
        .run(
            &["user", "add", "sam", "--role", "supervisor"],
            Some("a long cli password\n")
        )
        .status
        .success());
    (ct, format!("raw-aes:{}", key.display()))
}

fn cli_decrypt(
    env: &Env,
    keyring: &str,
    ct: &str,
    operator: &str,
    contact: &str,
    vars: &[(&str, &str)],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args([
            "decrypt",
            "--contact-id",
            contact,
            "--field",
            "creditcard",
            "--operator",
            operator,
        ])
        .args(["--reason", "cli dispute 5", "--ciphertext", ct])
        .env("DATABASE_URL", &env.url)
        .env("CALLVAULT_SECRETS_DIR", env.dir.path().join("secrets"))
        .env("CALLVAULT_KEYRING", keyring)
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_cli_decrypt_obeys_the_budget_dual_control_and_mandatory_totp() {
    let env = Env::new();
    let (ct, keyring) = cli_ciphertext(&env).await;
    let run = |vars: &[(&str, &str)]| cli_decrypt(&env, &keyring, &ct, "sam", CLI_CONTACT, vars);
    // A budget of 2 per hour: the third is refused.
    for _ in 0..2 {
        assert!(run(&[("CALLVAULT_DECRYPT_BUDGET", "2/h")]).status.success());
    }
    let over = run(&[("CALLVAULT_DECRYPT_BUDGET", "2/h")]);
    assert!(!over.status.success());
    assert!(
        text(&over).contains("decrypt budget used"),
        "{}",
        text(&over)
    );
    assert!(!text(&over).shows("4111111111111111"));
    // Dual control has no command-line path.
    let dual = run(&[
        ("CALLVAULT_DECRYPT_APPROVAL", "required"),
        ("CALLVAULT_DECRYPT_BUDGET", "off"),
    ]);
    assert!(!dual.status.success());
    assert!(text(&dual).contains("dual control is on"));
    // Mandatory TOTP without an enrolled authenticator.
    let db = sqlx::SqlitePool::connect(&env.url).await.unwrap();
    sqlx::query(
        "INSERT INTO console_settings (name, value, updated_us) VALUES ('totp_mandatory', 'on', 0)",
    )
    .execute(&db)
    .await
    .unwrap();
    let mandatory = run(&[("CALLVAULT_DECRYPT_BUDGET", "off")]);
    assert!(!mandatory.status.success());
    assert!(text(&mandatory).contains("TOTP is mandatory"));
    assert!(text(&mandatory).contains("enrol an authenticator"));
    let export = env.run(&["audit", "export", "--format", "jsonl"], None);
    let outcomes: Vec<String> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["action"] == "decrypt_denied")
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        ["budget_exceeded", "approval_required", "totp_not_enrolled"]
    );
}
