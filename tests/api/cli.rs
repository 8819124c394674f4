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
