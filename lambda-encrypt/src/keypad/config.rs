//! Which contact attributes hold Store-customer-input ciphertexts, and the
//! RSA private keys that open them: parsed and checked once at start-up.
//!
//! `CALLVAULT_CONNECT_INPUT_FIELDS`: `attribute:validator,...`
//! (`keypad_card:card,keypad_pin:digits:4`); the validator is the one the
//! Lex fields use, applied to the decrypted digits before they are shown.
//!
//! `CALLVAULT_CONNECT_INPUT_KEYS`: `KEY_ID=PATH,...`, the key id Connect
//! shows under Flow security keys and a PEM PKCS#8 RSA private key file
//! readable by its owner only. Connect keeps two keys active for rotation, so
//! several are accepted.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use rsa::pkcs8::der::{Decode as _, SecretDocument};
use rsa::pkcs8::PrivateKeyInfo;
use rsa::traits::PublicKeyParts as _;
use zeroize::Zeroizing;

use crate::context::FieldName;
use crate::validate::Validator;

/// RSA keys below this size are refused (Connect itself asks for 2048 or more).
pub const MIN_RSA_BITS: usize = 2048;
/// Connect keeps two keys active; a few more leave room for staged rotation.
pub const MAX_CONNECT_KEYS: usize = 8;
pub const MAX_KEYPAD_FIELDS: usize = 16;
/// A key file larger than this is not a PEM RSA key.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
const MAX_KEY_ID_LEN: usize = 128;

/// A refused configuration. Paths and key ids are shown; key material never.
#[derive(Debug, thiserror::Error)]
pub enum KeypadConfigError {
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: entry {position} is empty")]
    EmptyFieldEntry { position: usize },
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: '{entry}' must be attribute:validator")]
    MissingValidator { entry: String },
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: attribute '{entry}' is not a valid field name")]
    BadAttribute { entry: String },
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: attribute '{attribute}': {source}")]
    BadValidator {
        attribute: String,
        #[source]
        source: crate::validate::UnknownValidator,
    },
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: attribute '{attribute}' is listed twice")]
    DuplicateAttribute { attribute: String },
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS: at most {MAX_KEYPAD_FIELDS} attributes")]
    TooManyFields,
    #[error("CALLVAULT_CONNECT_INPUT_KEYS: entry {position} is empty")]
    EmptyKeyEntry { position: usize },
    #[error("CALLVAULT_CONNECT_INPUT_KEYS: '{entry}' must be KEY_ID=PATH")]
    MissingPath { entry: String },
    #[error(
        "CALLVAULT_CONNECT_INPUT_KEYS: key id '{entry}' must be 1 to {MAX_KEY_ID_LEN} letters, digits or '-' (the key ID Connect shows)"
    )]
    BadKeyId { entry: String },
    #[error("CALLVAULT_CONNECT_INPUT_KEYS: key id '{key_id}' is listed twice")]
    DuplicateKeyId { key_id: String },
    #[error("CALLVAULT_CONNECT_INPUT_KEYS: at most {MAX_CONNECT_KEYS} keys")]
    TooManyKeys,
    #[error("CALLVAULT_CONNECT_INPUT_FIELDS is set but CALLVAULT_CONNECT_INPUT_KEYS holds no key")]
    FieldsWithoutKeys,
    #[error("Connect input key file {path} (key id '{key_id}') cannot be read")]
    Read {
        key_id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "Connect input key file {path} (key id '{key_id}') is readable by group or others (mode {mode:o}); chmod 600 it, or mount the secret with mode 0400"
    )]
    Permissions {
        key_id: String,
        path: PathBuf,
        mode: u32,
    },
    #[error("Connect input key file {path} (key id '{key_id}') is not a PEM file")]
    NotPem { key_id: String, path: PathBuf },
    #[error(
        "Connect input key file {path} (key id '{key_id}') holds '{label}', not an unencrypted PKCS#8 'PRIVATE KEY' (convert with: openssl pkcs8 -topk8 -nocrypt)"
    )]
    NotPkcs8 {
        key_id: String,
        path: PathBuf,
        label: String,
    },
    #[error("Connect input key file {path} (key id '{key_id}') is not an RSA private key")]
    NotRsa { key_id: String, path: PathBuf },
    #[error(
        "Connect input key file {path} (key id '{key_id}') is a {bits}-bit RSA key; at least {MIN_RSA_BITS} bits are required"
    )]
    TooSmall {
        key_id: String,
        path: PathBuf,
        bits: usize,
    },
    #[error(
        "Connect input key file {path} (key id '{key_id}') cannot be used by the encryption SDK"
    )]
    Keyring { key_id: String, path: PathBuf },
    #[error("the encryption SDK could not be set up for Connect input keys: {0}")]
    Setup(String),
}

impl KeypadConfigError {
    /// A stable, value-free name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::EmptyFieldEntry { .. }
            | Self::MissingValidator { .. }
            | Self::BadAttribute { .. }
            | Self::BadValidator { .. }
            | Self::DuplicateAttribute { .. }
            | Self::TooManyFields => "connect_input_fields",
            Self::EmptyKeyEntry { .. }
            | Self::MissingPath { .. }
            | Self::BadKeyId { .. }
            | Self::DuplicateKeyId { .. }
            | Self::TooManyKeys
            | Self::FieldsWithoutKeys => "connect_input_keys",
            Self::Read { .. } => "connect_key_read",
            Self::Permissions { .. } => "connect_key_permissions",
            Self::NotPem { .. } | Self::NotPkcs8 { .. } => "connect_key_format",
            Self::NotRsa { .. } => "connect_key_not_rsa",
            Self::TooSmall { .. } => "connect_key_too_small",
            Self::Keyring { .. } => "connect_key_keyring",
            Self::Setup(_) => "esdk_setup",
        }
    }
}

/// At most this much of an operator's entry is repeated in an error.
fn shown(entry: &str) -> String {
    entry.chars().take(80).collect()
}

/// One contact attribute that holds a Store-customer-input ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeypadField {
    pub attribute: FieldName,
    pub validator: Validator,
}

/// `CALLVAULT_CONNECT_INPUT_FIELDS`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeypadFields(Vec<KeypadField>);

impl KeypadFields {
    /// Parses `attribute:validator,...`; an empty string means no keypad fields.
    pub fn parse(spec: &str) -> Result<Self, KeypadConfigError> {
        let mut fields: Vec<KeypadField> = Vec::new();
        if spec.trim().is_empty() {
            return Ok(Self(fields));
        }
        for (i, entry) in spec.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                return Err(KeypadConfigError::EmptyFieldEntry { position: i + 1 });
            }
            // The validator may itself hold a colon (`digits:4`).
            let (attribute, validator) =
                entry
                    .split_once(':')
                    .ok_or_else(|| KeypadConfigError::MissingValidator {
                        entry: shown(entry),
                    })?;
            let attribute = FieldName::parse(attribute.trim()).map_err(|_| {
                KeypadConfigError::BadAttribute {
                    entry: shown(attribute),
                }
            })?;
            let validator = validator.trim().parse::<Validator>().map_err(|source| {
                KeypadConfigError::BadValidator {
                    attribute: attribute.to_string(),
                    source,
                }
            })?;
            if fields.iter().any(|f| f.attribute == attribute) {
                return Err(KeypadConfigError::DuplicateAttribute {
                    attribute: attribute.to_string(),
                });
            }
            fields.push(KeypadField {
                attribute,
                validator,
            });
        }
        if fields.len() > MAX_KEYPAD_FIELDS {
            return Err(KeypadConfigError::TooManyFields);
        }
        Ok(Self(fields))
    }

    pub fn get(&self, attribute: &str) -> Option<&KeypadField> {
        self.0.iter().find(|f| f.attribute.as_str() == attribute)
    }

    pub fn iter(&self) -> impl Iterator<Item = &KeypadField> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for KeypadFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", field.attribute, field.validator)?;
        }
        Ok(())
    }
}

/// The key id Connect shows for an uploaded public key (a UUID in practice).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectKeyId(String);

impl ConnectKeyId {
    pub fn parse(value: &str) -> Option<Self> {
        let ok = !value.is_empty()
            && value.len() <= MAX_KEY_ID_LEN
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        ok.then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `KEY_ID=PATH` entry of `CALLVAULT_CONNECT_INPUT_KEYS`, not yet read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeypadKeySpec {
    pub key_id: ConnectKeyId,
    pub path: PathBuf,
}

/// Parses `KEY_ID=PATH,...`; an empty string means no keys.
pub fn parse_key_specs(spec: &str) -> Result<Vec<KeypadKeySpec>, KeypadConfigError> {
    let mut specs: Vec<KeypadKeySpec> = Vec::new();
    if spec.trim().is_empty() {
        return Ok(specs);
    }
    let mut seen = BTreeSet::new();
    for (i, entry) in spec.split(',').map(str::trim).enumerate() {
        if entry.is_empty() {
            return Err(KeypadConfigError::EmptyKeyEntry { position: i + 1 });
        }
        let (key_id, path) = entry
            .split_once('=')
            .filter(|(_, path)| !path.trim().is_empty())
            .ok_or_else(|| KeypadConfigError::MissingPath {
                entry: shown(entry),
            })?;
        let key_id =
            ConnectKeyId::parse(key_id.trim()).ok_or_else(|| KeypadConfigError::BadKeyId {
                entry: shown(key_id),
            })?;
        if !seen.insert(key_id.clone()) {
            return Err(KeypadConfigError::DuplicateKeyId {
                key_id: key_id.to_string(),
            });
        }
        specs.push(KeypadKeySpec {
            key_id,
            path: PathBuf::from(path.trim()),
        });
    }
    if specs.len() > MAX_CONNECT_KEYS {
        return Err(KeypadConfigError::TooManyKeys);
    }
    Ok(specs)
}

/// A private key file that passed every check, in the PEM form the
/// encryption SDK's raw RSA keyring takes. The bytes are wiped on drop.
pub struct CheckedKey {
    pub key_id: ConnectKeyId,
    pub path: PathBuf,
    pub bits: usize,
    pub(crate) pem: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for CheckedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedKey")
            .field("key_id", &self.key_id)
            .field("path", &self.path)
            .field("bits", &self.bits)
            .field("pem", &"<redacted>")
            .finish()
    }
}

/// Reads one key file and refuses anything but an owner-only, unencrypted
/// PKCS#8 PEM RSA private key of at least [`MIN_RSA_BITS`].
pub fn read_key_file(spec: &KeypadKeySpec) -> Result<CheckedKey, KeypadConfigError> {
    let key_id = spec.key_id.to_string();
    let path = spec.path.clone();
    let read_err = |source| KeypadConfigError::Read {
        key_id: key_id.clone(),
        path: path.clone(),
        source,
    };
    // The mode of what the path points at (a Kubernetes secret is a symlink).
    let meta = std::fs::metadata(&spec.path).map_err(read_err)?;
    check_mode(&meta, &key_id, &path)?;
    if meta.len() > MAX_KEY_FILE_BYTES {
        return Err(KeypadConfigError::NotPem { key_id, path });
    }
    let bytes = Zeroizing::new(std::fs::read(&spec.path).map_err(read_err)?);
    let not_pem = || KeypadConfigError::NotPem {
        key_id: key_id.clone(),
        path: path.clone(),
    };
    let text = std::str::from_utf8(&bytes).map_err(|_| not_pem())?;
    let (label, document) = SecretDocument::from_pem(text.trim()).map_err(|_| not_pem())?;
    if label != "PRIVATE KEY" {
        return Err(KeypadConfigError::NotPkcs8 {
            key_id,
            path,
            label: label.chars().take(40).collect(),
        });
    }
    let not_rsa = || KeypadConfigError::NotRsa {
        key_id: key_id.clone(),
        path: path.clone(),
    };
    let info = PrivateKeyInfo::from_der(document.as_bytes()).map_err(|_| not_rsa())?;
    if info.algorithm.oid != rsa::pkcs1::ALGORITHM_OID {
        return Err(not_rsa());
    }
    let key = rsa::RsaPrivateKey::try_from(info).map_err(|_| not_rsa())?;
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(KeypadConfigError::TooSmall { key_id, path, bits });
    }
    Ok(CheckedKey {
        key_id: spec.key_id.clone(),
        path,
        bits,
        pem: Zeroizing::new(text.trim().as_bytes().to_vec()),
    })
}

#[cfg(unix)]
fn check_mode(
    meta: &std::fs::Metadata,
    key_id: &str,
    path: &Path,
) -> Result<(), KeypadConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeypadConfigError::Permissions {
            key_id: key_id.to_owned(),
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_mode(_: &std::fs::Metadata, _: &str, _: &Path) -> Result<(), KeypadConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_with_validators_that_hold_a_colon() {
        let fields = KeypadFields::parse(" keypad_card:card , keypad_pin:digits:4").unwrap();
        assert_eq!(fields.len(), 2);
        assert_eq!(
            fields.get("keypad_card").unwrap().validator,
            Validator::Card
        );
        assert_eq!(
            fields.get("keypad_pin").unwrap().validator,
            Validator::Digits(4)
        );
        assert_eq!(fields.to_string(), "keypad_card:card,keypad_pin:digits:4");
        assert!(KeypadFields::parse("").unwrap().is_empty());
    }

    #[test]
    fn bad_field_lists_are_refused() {
        use KeypadConfigError as E;
        type Check = fn(&E) -> bool;
        let cases: [(&str, Check); 6] = [
            ("keypad_card", |e| matches!(e, E::MissingValidator { .. })),
            ("keypad_card:card,,x:zip", |e| {
                matches!(e, E::EmptyFieldEntry { position: 2 })
            }),
            ("9card:card", |e| matches!(e, E::BadAttribute { .. })),
            ("keypad_card:visa", |e| matches!(e, E::BadValidator { .. })),
            ("a:card,a:zip", |e| {
                matches!(e, E::DuplicateAttribute { .. })
            }),
            ("a b:card", |e| matches!(e, E::BadAttribute { .. })),
        ];
        for (spec, check) in cases {
            let err = KeypadFields::parse(spec).unwrap_err();
            assert!(check(&err), "{spec}: {err}");
        }
    }

    #[test]
    fn key_lists_parse_and_refuse_duplicates_and_garbage() {
        let specs = parse_key_specs("4cdb826a-24c9=/run/a.pem, k2=/run/b.pem").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].key_id.as_str(), "4cdb826a-24c9");
        assert_eq!(specs[1].path, PathBuf::from("/run/b.pem"));
        assert!(parse_key_specs(" ").unwrap().is_empty());
        use KeypadConfigError as E;
        for (spec, want) in [
            ("k1=/a,k1=/b", "DuplicateKeyId"),
            ("k1", "MissingPath"),
            ("k1=", "MissingPath"),
            ("=/a", "BadKeyId"),
            ("k 1=/a", "BadKeyId"),
            ("k1=/a,", "EmptyKeyEntry"),
            ("../x=/a", "BadKeyId"),
        ] {
            let err = parse_key_specs(spec).unwrap_err();
            let got = match err {
                E::DuplicateKeyId { .. } => "DuplicateKeyId",
                E::MissingPath { .. } => "MissingPath",
                E::BadKeyId { .. } => "BadKeyId",
                E::EmptyKeyEntry { .. } => "EmptyKeyEntry",
                _ => "other",
            };
            assert_eq!(got, want, "{spec}");
        }
        let many: Vec<String> = (0..=MAX_CONNECT_KEYS).map(|i| format!("k{i}=/p")).collect();
        assert!(matches!(
            parse_key_specs(&many.join(",")),
            Err(E::TooManyKeys)
        ));
    }
}
