//! The keyring spec string (docs/contracts.md), parsed in one place for both
//! binaries, and the local raw AES key file.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::period::AliasPrefix;

/// Key namespace of raw AES keys (the ESDK's "provider id").
pub const RAW_AES_NAMESPACE: &str = "callvault";
pub const MAX_KMS_KEYS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring spec must start with 'kms:', 'raw-aes:', 'kms-period:' or 'raw-aes-period:'")]
    UnknownScheme,
    #[error("keyring spec 'kms-period:': {0}")]
    BadAliasPrefix(crate::period::PeriodError),
    #[error("keyring spec 'raw-aes-period:' needs a key directory")]
    NoKeyDir,
    #[error("keyring spec 'kms:' needs at least one key ARN")]
    NoKmsKeys,
    #[error("keyring spec 'kms:' takes at most {MAX_KMS_KEYS} key ARNs")]
    TooManyKmsKeys,
    #[error("'{0}' is not a KMS key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)")]
    BadKmsArn(String),
    #[error("keyring spec 'raw-aes:' needs a key file path")]
    NoKeyPath,
    #[error("raw AES key file {path} has no usable name (file stem)")]
    BadKeyName { path: PathBuf },
    #[error("cannot read raw AES key file {path}")]
    ReadKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("raw AES key file {path} must hold the base64 of exactly 32 bytes")]
    BadKeyMaterial { path: PathBuf },
    #[error("cannot write raw AES key file {path}")]
    WriteKey {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the wrapping keys live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyringSpec {
    /// AWS KMS keys by ARN; the first generates data keys, the others also wrap them.
    Kms { key_arns: Vec<KmsKeyArn> },
    /// A local AES-256 key file.
    RawAes { path: PathBuf },
    /// One KMS key per calendar month, aliased `<prefix>/<YYYY-MM>`; new
    /// values are encrypted under `<prefix>/current`.
    KmsPeriod { prefix: AliasPrefix },
    /// One local key file per calendar month (`<dir>/<YYYY-MM>.key`).
    RawAesPeriod { dir: PathBuf },
}

impl KeyringSpec {
    /// Whether values are wrapped by one key per period.
    pub fn is_periodic(&self) -> bool {
        matches!(self, Self::KmsPeriod { .. } | Self::RawAesPeriod { .. })
    }

    /// Whether the keyring uses AWS KMS.
    pub fn uses_kms(&self) -> bool {
        matches!(self, Self::Kms { .. } | Self::KmsPeriod { .. })
    }
}

impl FromStr for KeyringSpec {
    type Err = KeyringError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        // The period schemes first: "kms-period:" does not start with "kms:".
        if let Some(prefix) = spec.strip_prefix("kms-period:") {
            let prefix = AliasPrefix::parse(prefix.trim()).map_err(KeyringError::BadAliasPrefix)?;
            Ok(Self::KmsPeriod { prefix })
        } else if let Some(dir) = spec.strip_prefix("raw-aes-period:") {
            if dir.trim().is_empty() {
                return Err(KeyringError::NoKeyDir);
            }
            Ok(Self::RawAesPeriod {
                dir: PathBuf::from(dir),
            })
        } else if let Some(list) = spec.strip_prefix("kms:") {
            let key_arns = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(KmsKeyArn::parse)
                .collect::<Result<Vec<_>, _>>()?;
            if key_arns.is_empty() {
                return Err(KeyringError::NoKmsKeys);
            }
            if key_arns.len() > MAX_KMS_KEYS {
                return Err(KeyringError::TooManyKmsKeys);
            }
            Ok(Self::Kms { key_arns })
        } else if let Some(path) = spec.strip_prefix("raw-aes:") {
            if path.trim().is_empty() {
                return Err(KeyringError::NoKeyPath);
            }
            Ok(Self::RawAes {
                path: PathBuf::from(path),
            })
        } else {
            Err(KeyringError::UnknownScheme)
        }
    }
}

impl fmt::Display for KeyringSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Kms { key_arns } => {
                f.write_str("kms:")?;
                for (i, arn) in key_arns.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    f.write_str(arn.as_str())?;
                }
                Ok(())
            }
            Self::RawAes { path } => write!(f, "raw-aes:{}", path.display()),
            Self::KmsPeriod { prefix } => write!(f, "kms-period:{prefix}"),
            Self::RawAesPeriod { dir } => write!(f, "raw-aes-period:{}", dir.display()),
        }
    }
}

/// A KMS key ARN (not an alias: decrypt needs the key ARN to match the message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsKeyArn {
    arn: String,
    region: String,
}

impl KmsKeyArn {
    pub fn parse(arn: &str) -> Result<Self, KeyringError> {
        let bad = || KeyringError::BadKmsArn(arn.chars().take(200).collect());
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(bad());
        };
        let key_id = resource.strip_prefix("key/").ok_or_else(bad)?;
        let ok = *prefix == "arn"
            && partition.starts_with("aws")
            && *service == "kms"
            && !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && !key_id.is_empty()
            && key_id.len() <= 128
            && key_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(bad());
        }
        Ok(Self {
            arn: arn.to_owned(),
            region: (*region).to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.arn
    }

    pub fn region(&self) -> &str {
        &self.region
    }
}

/// A raw AES-256 wrapping key loaded from its file.
pub struct RawAesKey {
    pub name: String,
    pub key: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RawAesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawAesKey")
            .field("name", &self.name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The key name of a raw AES key file: its file stem.
pub fn raw_aes_key_name(path: &Path) -> Result<String, KeyringError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| KeyringError::BadKeyName {
            path: path.to_owned(),
        })
}

pub fn load_raw_aes_key(path: &Path) -> Result<RawAesKey, KeyringError> {
    let name = raw_aes_key_name(path)?;
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyringError::ReadKey {
                path: path.to_owned(),
                source,
            })?,
        );
    let key = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyringError::BadKeyMaterial {
                path: path.to_owned(),
            })?,
    );
    if key.len() != 32 {
        return Err(KeyringError::BadKeyMaterial {
            path: path.to_owned(),
        });
    }
    Ok(RawAesKey { name, key })
}

/// Writes a new random key file (base64 of 32 bytes), readable by its owner
/// only. Refuses to overwrite an existing file.
pub fn generate_raw_aes_key_file(path: &Path) -> Result<(), KeyringError> {
    use rand::TryRngCore as _;
    raw_aes_key_name(path)?;
    let write_err = |source| KeyringError::WriteKey {
        path: path.to_owned(),
        source,
    };
    let mut key = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng
        .try_fill_bytes(key.as_mut())
        .map_err(|e| write_err(std::io::Error::other(e)))?;
    let mut text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(key.as_ref()));
    text.push('\n');
    write_private_file(path, text.as_bytes()).map_err(write_err)
}

/// Creates `path` (never overwriting it) readable by its owner only, writes
/// `contents` and syncs. Used for every key file callvault makes.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn kms_specs_parse_one_or_more_arns() {
        let spec: KeyringSpec = format!("kms:{ARN}").parse().unwrap();
        assert_eq!(spec.to_string(), format!("kms:{ARN}"));
        let two = format!("kms:{ARN},{}", ARN.replace("us-east-1", "eu-west-1"));
        let KeyringSpec::Kms { key_arns } = two.parse().unwrap() else {
            panic!()
        };
        assert_eq!(key_arns[1].region(), "eu-west-1");
    }

    #[test]
    fn bad_specs_are_refused() {
        assert!(matches!(
            "kms:".parse::<KeyringSpec>(),
            Err(KeyringError::NoKmsKeys)
        ));
        assert!(matches!(
            "raw-aes:".parse::<KeyringSpec>(),
            Err(KeyringError::NoKeyPath)
        ));
        assert!(matches!(
            "vault:x".parse::<KeyringSpec>(),
            Err(KeyringError::UnknownScheme)
        ));
        for arn in [
            "alias/my-key",
            "arn:aws:kms:us-east-1:111122223333:alias/my-key",
            "arn:aws:s3:us-east-1:111122223333:key/abc",
            "arn:aws:kms:us-east-1:1111:key/abc",
            "arn:aws:kms:us-east-1:111122223333:key/../../x",
        ] {
            assert!(
                matches!(
                    format!("kms:{arn}").parse::<KeyringSpec>(),
                    Err(KeyringError::BadKmsArn(_))
                ),
                "{arn}"
            );
        }
        let many = [ARN; MAX_KMS_KEYS + 1].join(",");
        assert!(matches!(
            format!("kms:{many}").parse::<KeyringSpec>(),
            Err(KeyringError::TooManyKmsKeys)
        ));
    }

    #[test]
    fn period_specs_parse_and_print_back() {
        let spec: KeyringSpec = "kms-period:alias/callvault/fields".parse().unwrap();
        assert!(
            matches!(&spec, KeyringSpec::KmsPeriod { prefix } if prefix.as_str() == "alias/callvault/fields")
        );
        assert_eq!(spec.to_string(), "kms-period:alias/callvault/fields");
        assert!(spec.is_periodic() && spec.uses_kms());
        let raw: KeyringSpec = "raw-aes-period:/var/keys".parse().unwrap();
        assert_eq!(raw.to_string(), "raw-aes-period:/var/keys");
        assert!(raw.is_periodic() && !raw.uses_kms());
        for bad in [
            "kms-period:",
            "kms-period:callvault/fields",
            "kms-period:alias/aws/fields",
            "kms-period:alias/x/",
            "kms-period:arn:aws:kms:us-east-1:111122223333:alias/x",
        ] {
            let err = bad.parse::<KeyringSpec>().unwrap_err();
            assert!(
                matches!(err, KeyringError::BadAliasPrefix(_)),
                "{bad}: {err}"
            );
        }
        assert!(matches!(
            "raw-aes-period: ".parse::<KeyringSpec>(),
            Err(KeyringError::NoKeyDir)
        ));
    }

    #[test]
    fn generated_key_files_load_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-key.b64");
        generate_raw_aes_key_file(&path).unwrap();
        let key = load_raw_aes_key(&path).unwrap();
        assert_eq!(key.name, "demo-key");
        assert_eq!(key.key.len(), 32);
        assert!(!format!("{key:?}").contains(&format!("{:?}", &key.key[..4])));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            generate_raw_aes_key_file(&path),
            Err(KeyringError::WriteKey { .. })
        ));
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short.b64");
        std::fs::write(
            &short,
            base64::engine::general_purpose::STANDARD.encode([0u8; 16]),
        )
        .unwrap();
        assert!(matches!(
            load_raw_aes_key(&short),
            Err(KeyringError::BadKeyMaterial { .. })
        ));
        let junk = dir.path().join("junk.b64");
        std::fs::write(&junk, "not base64 at all").unwrap();
        assert!(matches!(
            load_raw_aes_key(&junk),
            Err(KeyringError::BadKeyMaterial { .. })
        ));
        assert!(matches!(
            load_raw_aes_key(&dir.path().join("missing.b64")),
            Err(KeyringError::ReadKey { .. })
        ));
    }
}
