//! `callvault connect-key new --out DIR`: the RSA key pair Amazon Connect's
//! "Store customer input" block encrypts keypad input to.
//!
//! Connect takes the public key (Flows → Flow security keys) and, in the
//! flow block, an X.509 certificate signed by the matching private key; the
//! console keeps the private key (`CALLVAULT_CONNECT_INPUT_KEYS`). The key is
//! made and the certificate signed with aws-lc-rs (through rcgen), never a
//! hand-written encoder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use zeroize::Zeroizing;

use super::common::CliError;

/// Connect accepts 2048 bits and more; 4096 leaves room for the key's long life.
const KEY_BITS: rcgen::RsaKeySize = rcgen::RsaKeySize::_4096;
/// The certificate only proves possession to Connect; ten years spares a
/// rotation forced by a date rather than by policy.
const CERTIFICATE_YEARS: i32 = 10;
pub const PRIVATE_FILE: &str = "private.pem";
pub const PUBLIC_FILE: &str = "public.pem";
pub const CERTIFICATE_FILE: &str = "certificate.pem";

#[derive(Debug, Subcommand)]
pub enum ConnectKeyCommand {
    /// Write a new RSA 4096 key pair for Connect's encrypted customer input:
    /// private.pem (PKCS#8, mode 0600, for CALLVAULT_CONNECT_INPUT_KEYS),
    /// public.pem (to upload to Connect) and certificate.pem (self-signed,
    /// for the flow block).
    New {
        /// A new or empty directory.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectKeyError {
    #[error("{0} exists and is not an empty directory; choose a new one")]
    NotEmpty(PathBuf),
    #[error("cannot create or write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate the RSA key or its certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The three files' contents; the private key is wiped on drop.
pub struct ConnectKeyFiles {
    pub private_pem: Zeroizing<String>,
    pub public_pem: String,
    pub certificate_pem: String,
}

/// A new key pair and its self-signed certificate, valid from today.
pub fn generate(today: chrono::NaiveDate) -> Result<ConnectKeyFiles, ConnectKeyError> {
    use chrono::Datelike as _;
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, KEY_BITS)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "callvault Amazon Connect customer input",
    );
    // Month and day come from a valid date, so they fit in a u8.
    let (month, day) = (today.month() as u8, today.day() as u8);
    params.not_before = rcgen::date_time_ymd(today.year(), month, day);
    // 29 February has no match ten years on; the 28th always does.
    params.not_after = rcgen::date_time_ymd(today.year() + CERTIFICATE_YEARS, month, day.min(28));
    let certificate = params.self_signed(&key)?;
    Ok(ConnectKeyFiles {
        private_pem: Zeroizing::new(key.serialize_pem()),
        public_pem: key.public_key_pem(),
        certificate_pem: certificate.pem(),
    })
}

/// Writes the three files into `dir`, which must not exist or be empty.
pub fn write(dir: &Path, files: &ConnectKeyFiles) -> Result<(), ConnectKeyError> {
    let write_err = |path: &Path| {
        let path = path.to_owned();
        move |source| ConnectKeyError::Write { path, source }
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ConnectKeyError::NotEmpty(dir.to_owned()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(write_err(dir))?;
        }
        Err(_) => return Err(ConnectKeyError::NotEmpty(dir.to_owned())),
    }
    let private = dir.join(PRIVATE_FILE);
    lambda_encrypt::keyring::write_private_file(&private, files.private_pem.as_bytes())
        .map_err(write_err(&private))?;
    for (name, contents) in [
        (PUBLIC_FILE, &files.public_pem),
        (CERTIFICATE_FILE, &files.certificate_pem),
    ] {
        let path = dir.join(name);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| {
                use std::io::Write as _;
                f.write_all(contents.as_bytes())?;
                f.sync_all()
            })
            .map_err(write_err(&path))?;
    }
    Ok(())
}

fn next_steps(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "wrote {d}/{PRIVATE_FILE} (mode 0600), {d}/{PUBLIC_FILE} and {d}/{CERTIFICATE_FILE}

Next steps:
 1. In the Amazon Connect console: Flows > Flow security keys > Add key, paste
    the contents of {d}/{PUBLIC_FILE}, and note the key ID Connect shows.
 2. In the flow's Store customer input block, turn on Encrypt entry, enter that
    key ID and paste {d}/{CERTIFICATE_FILE}. Or deploy the capture template with
    ConnectInputKeyId=<key ID> and ConnectInputCertificate set to the certificate
    on one line, each line break written as \\n:
      awk 'NR>1{{printf \"\\\\n\"}}{{printf \"%s\",$0}}' {d}/{CERTIFICATE_FILE}
 3. Give the console the private key, readable by its user only:
      CALLVAULT_CONNECT_INPUT_KEYS=KEY_ID={d}/{PRIVATE_FILE}
      CALLVAULT_CONNECT_INPUT_FIELDS=keypad_card:card
    Keep {d}/{PRIVATE_FILE} in a secret store and delete other copies.
"
    )
}

pub fn run(command: ConnectKeyCommand) -> Result<ExitCode, CliError> {
    let ConnectKeyCommand::New { out } = command;
    let files = generate(chrono::Utc::now().date_naive())
        .and_then(|files| write(&out, &files).map(|()| files))
        .map_err(|e| CliError::Usage(e.to_string()))?;
    drop(files);
    print!("{}", next_steps(&out));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> chrono::NaiveDate {
        chrono::NaiveDate::from_ymd_opt(2028, 2, 29).unwrap()
    }

    #[tokio::test]
    async fn the_files_hold_one_rsa_4096_key_pair_that_the_certificate_carries() {
        use rsa::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
        use rsa::traits::PublicKeyParts as _;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("connect-key");
        write(&out, &generate(today()).unwrap()).unwrap();

        let private = std::fs::read_to_string(out.join(PRIVATE_FILE)).unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(&private).unwrap();
        let public = rsa::RsaPublicKey::from_public_key_pem(
            &std::fs::read_to_string(out.join(PUBLIC_FILE)).unwrap(),
        )
        .unwrap();
        assert_eq!(private.size() * 8, 4096);
        assert_eq!(rsa::RsaPublicKey::from(&private), public);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(out.join(PRIVATE_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let certificate = std::fs::read_to_string(out.join(CERTIFICATE_FILE)).unwrap();
        assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));

        // The certificate's key, checked by an independent parser (Python's
        // `cryptography`); then the Python ESDK, acting as Connect, encrypts
        // to the certificate and the console's keypad path decrypts.
        let Some(py) = python() else {
            return;
        };
        let peer = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/lambda-encrypt/tests/connect_peer.py"
        );
        let status = std::process::Command::new(&py)
            .arg(peer)
            .arg("check-cert")
            .args([CERTIFICATE_FILE, PUBLIC_FILE, PRIVATE_FILE].map(|f| out.join(f)))
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = std::process::Command::new(&py)
            .arg(peer)
            .arg("encrypt")
            .arg(out.join(CERTIFICATE_FILE))
            .arg("0f7e2c1a-5b6d-4e8f-9a0b-1c2d3e4f5a6b")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"4111111111111111").unwrap();
        }
        let message = child.wait_with_output().unwrap();
        assert!(message.status.success());
        let spec = format!(
            "0f7e2c1a-5b6d-4e8f-9a0b-1c2d3e4f5a6b={}",
            out.join(PRIVATE_FILE).display()
        );
        let (_, keys) = lambda_encrypt::keypad::KeypadKeys::from_config("keypad_card:card", &spec)
            .await
            .unwrap();
        let got = keys
            .decrypt_base64(
                std::str::from_utf8(&message.stdout).unwrap(),
                lambda_encrypt::validate::Validator::Card,
            )
            .await
            .unwrap();
        assert_eq!(got.plaintext.expose_str(), Some("4111111111111111"));
        assert_eq!(got.key_id.as_str(), "0f7e2c1a-5b6d-4e8f-9a0b-1c2d3e4f5a6b");
    }

    /// The Python venv `scripts/test` provides; under CI its absence fails.
    fn python() -> Option<std::ffi::OsString> {
        match std::env::var_os("CALLVAULT_PYTHON") {
            Some(py) if !py.is_empty() => Some(py),
            _ => {
                assert!(
                    std::env::var("CI").map_or(true, |v| v != "true"),
                    "CALLVAULT_PYTHON is not set: run the tests through scripts/test"
                );
                eprintln!("SKIPPED: CALLVAULT_PYTHON is not set; the certificate was not checked");
                None
            }
        }
    }

    #[test]
    fn an_existing_non_empty_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
        let files = generate(today()).unwrap();
        assert!(matches!(
            write(dir.path(), &files),
            Err(ConnectKeyError::NotEmpty(_))
        ));
        assert!(!dir.path().join(PRIVATE_FILE).exists());
        // An empty one is used.
        let empty = tempfile::tempdir().unwrap();
        write(empty.path(), &files).unwrap();
        assert!(next_steps(empty.path()).contains("CALLVAULT_CONNECT_INPUT_KEYS=KEY_ID="));
    }
}
