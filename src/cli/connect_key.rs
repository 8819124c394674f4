//! `callvault connect-key new --out DIR`: the RSA key pair Amazon Connect's
//! "Store customer input" block encrypts keypad input to.
//!
//! Connect takes the public key (Flows → Flow security keys) and, in the
//! flow block, an X.509 certificate signed by the matching private key; the
//! console keeps the private key (`CALLVAULT_CONNECT_INPUT_KEYS`). The files
//! are made by `lambda_encrypt::keypad::keygen`, where the tests check them
//! with the Python AWS Encryption SDK.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::common::CliError;

use lambda_encrypt::keypad::keygen::{generate_connect_key, ConnectKeyFiles, KeygenError};

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
    #[error(transparent)]
    Generate(#[from] KeygenError),
}

/// A new key pair and its self-signed certificate, valid from today.
pub fn generate(today: chrono::NaiveDate) -> Result<ConnectKeyFiles, ConnectKeyError> {
    use chrono::Datelike as _;
    // Month and day of a valid date fit in a u8.
    Ok(generate_connect_key(
        today.year(),
        today.month() as u8,
        today.day() as u8,
    )?)
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

    #[test]
    fn the_files_hold_one_rsa_4096_key_pair() {
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

        // The Python peer's checks of the certificate: lambda-encrypt/tests/keypad.rs.
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
