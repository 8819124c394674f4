//! Keys kept outside the database (`CALLVAULT_SECRETS_DIR`): the audit HMAC key,
//! the session cookie key and the key that seals TOTP secrets. Created on first start, readable by the owner only.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use rand::TryRngCore as _;
use zeroize::Zeroizing;

/// Bytes of the TOTP seal key (an AES-256-GCM key).
pub const TOTP_KEY_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot create the secrets directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read secret {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write secret {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("secret {path} is malformed (expected base64 of {len} bytes)")]
    Malformed { path: PathBuf, len: usize },
}

pub struct Secrets {
    pub audit_key: Zeroizing<Vec<u8>>,
    pub session_key: Zeroizing<Vec<u8>>,
    /// AES-256-GCM key for TOTP secrets (`totp.key`); never the audit key.
    pub totp_key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

impl Secrets {
    pub fn load_or_create(dir: &Path) -> Result<Self, SecretsError> {
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder
                .create(dir)
                .map_err(|source| SecretsError::CreateDir {
                    path: dir.to_owned(),
                    source,
                })?;
        }
        Ok(Self {
            audit_key: load_or_create_key(&dir.join("audit.key"), 32)?,
            session_key: load_or_create_key(&dir.join("session.key"), 64)?,
            totp_key: load_or_create_key(&dir.join("totp.key"), TOTP_KEY_BYTES)?,
        })
    }
}

fn load_or_create_key(path: &Path, len: usize) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    if !path.exists() {
        let mut key = Zeroizing::new(vec![0u8; len]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut key)
            .map_err(|e| SecretsError::Write {
                path: path.to_owned(),
                source: std::io::Error::other(e),
            })?;
        let text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&*key));
        match lambda_encrypt::keyring::write_private_file(path, text.as_bytes()) {
            Ok(()) => return Ok(key),
            // Another process created it first: read theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                return Err(SecretsError::Write {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| SecretsError::Read {
                path: path.to_owned(),
                source,
            })?,
        );
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| SecretsError::Malformed {
                path: path.to_owned(),
                len,
            })?,
    );
    if key.len() != len {
        return Err(SecretsError::Malformed {
            path: path.to_owned(),
            len,
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_created_private_and_reloaded_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let secrets_dir = dir.path().join("secrets");
        let a = Secrets::load_or_create(&secrets_dir).unwrap();
        let b = Secrets::load_or_create(&secrets_dir).unwrap();
        assert_eq!(*a.audit_key, *b.audit_key);
        assert_eq!(a.session_key.len(), 64);
        assert_eq!(*a.totp_key, *b.totp_key);
        assert_eq!(a.totp_key.len(), 32);
        assert_ne!(*a.totp_key, *a.audit_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&secrets_dir), 0o700);
            assert_eq!(mode(&secrets_dir.join("audit.key")), 0o600);
            assert_eq!(mode(&secrets_dir.join("totp.key")), 0o600);
        }
        assert_eq!(format!("{a:?}"), "Secrets(<redacted>)");
    }

    #[test]
    fn a_malformed_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("audit.key"), "short").unwrap();
        assert!(matches!(
            Secrets::load_or_create(dir.path()),
            Err(SecretsError::Malformed { .. })
        ));
    }
}
