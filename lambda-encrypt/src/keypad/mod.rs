//! Amazon Connect's own keypad path: values a flow's "Store customer input"
//! block encrypted with a public key uploaded to Connect.
//!
//! Such a message is an AWS Encryption SDK message of format 1 on suite
//! 0x0378 (AES-256-GCM, HKDF-SHA384, ECDSA P-384, *not* key-committing), with
//! exactly one data key from provider `AmazonConnect` whose key name is the
//! key id Connect shows, wrapped with RSA-OAEP (SHA-512, MGF1-SHA-512), and
//! no encryption context of its own. Nothing in it names a contact or field.
//!
//! The non-committing suite is accepted here and nowhere else: callvault's
//! own messages keep REQUIRE_ENCRYPT_REQUIRE_DECRYPT ([`crate::crypto`]), and
//! a message is only taken as Connect's when its header has exactly that
//! shape, checked before any key is used.

pub mod config;
pub mod connect_format;
pub mod keygen;

use std::collections::BTreeMap;
use std::fmt;

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{EsdkCommitmentPolicy, PaddingScheme};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;

use crate::envelope::{Ciphertext, DecodeError, MessageHeader, MAX_ENCODED_LEN};
use crate::plaintext::Plaintext;
use crate::validate::{Rejection, Validator};
pub use config::{
    parse_key_specs, read_key_file, CheckedKey, ConnectKeyId, KeypadConfigError, KeypadField,
    KeypadFields, KeypadKeySpec, MAX_CONNECT_KEYS, MIN_RSA_BITS,
};

/// The key provider id Connect writes on its one data key.
pub const CONNECT_PROVIDER_ID: &str = "AmazonConnect";
/// AES-256-GCM, HKDF-SHA384, ECDSA P-384: the suite Connect encrypts with.
pub const CONNECT_SUITE_ID: u16 = 0x0378;
/// Longest plaintext accepted: keypad input is digits, never a document.
pub const MAX_KEYPAD_PLAINTEXT: usize = 64;
/// What Store customer input leaves in the attribute when nothing was keyed.
pub const CONNECT_TIMEOUT_VALUE: &str = "Timeout";
/// The encryption context key the SDK itself adds on signed suites.
const SDK_PUBLIC_KEY: &str = "aws-crypto-public-key";

/// Why a keypad value was not decrypted. Never holds the value.
#[derive(Debug, thiserror::Error)]
pub enum KeypadError {
    #[error("the caller keyed nothing (Connect stored \"Timeout\")")]
    NoInput,
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the message is {len} bytes; the limit is {MAX_ENCODED_LEN} base64 characters")]
    TooLarge { len: usize },
    #[error(
        "not an Amazon Connect customer-input message: format {0}, where Connect writes format 1"
    )]
    NotFormat1(u8),
    #[error(
        "not an Amazon Connect customer-input message: suite 0x{0:04X}, where Connect uses 0x0378"
    )]
    WrongSuite(u16),
    #[error(
        "not an Amazon Connect customer-input message: {0} encrypted data keys, where Connect writes one"
    )]
    DataKeyCount(usize),
    #[error(
        "not an Amazon Connect customer-input message: its data key is from provider '{0}', not AmazonConnect"
    )]
    OtherProvider(String),
    #[error(
        "not an Amazon Connect customer-input message: it carries an encryption context, which Connect never writes"
    )]
    UnexpectedContext,
    #[error(
        "this Amazon Connect message needs Connect key id '{0}', which is not in CALLVAULT_CONNECT_INPUT_KEYS"
    )]
    UnknownKey(String),
    #[error("the private key configured for Connect key id '{0}' cannot unwrap this message's data key (wrong key file, or a tampered data key)")]
    Unwrap(String),
    #[error("the message failed authentication (tampered or truncated)")]
    Authentication,
    #[error("the decrypted value is not text")]
    NotText,
    #[error("the decrypted value is longer than {MAX_KEYPAD_PLAINTEXT} bytes")]
    PlaintextTooLarge,
    #[error("the decrypted value does not pass the field's validator: {0}")]
    Invalid(Rejection),
    #[error("the encryption SDK could not be set up: {0}")]
    Setup(String),
}

impl KeypadError {
    /// A stable, value-free name for logs and audit rows.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NoInput => "no_input",
            Self::Decode(DecodeError::TooLarge { .. }) | Self::TooLarge { .. } => "oversized",
            Self::Decode(DecodeError::NotBase64 | DecodeError::Empty) => "not_base64",
            Self::Decode(DecodeError::Header(_)) => "not_esdk_message",
            Self::NotFormat1(_)
            | Self::WrongSuite(_)
            | Self::DataKeyCount(_)
            | Self::OtherProvider(_)
            | Self::UnexpectedContext => "not_connect_message",
            Self::UnknownKey(_) => "unknown_connect_key",
            Self::Unwrap(_) => "wrong_key",
            Self::Authentication => "authentication_failed",
            Self::NotText | Self::PlaintextTooLarge | Self::Invalid(_) => "invalid_value",
            Self::Setup(_) => "esdk_setup",
        }
    }
}

/// The ESDK message id: public, random per message, the only thing that
/// tells one Connect message from a copy of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct MessageId(Vec<u8>);

impl MessageId {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(&self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

/// What the header of a Connect customer-input message says, unverified
/// until a decrypt succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectMessage {
    /// The key id Connect shows for the public key that wrapped the data key
    /// (any printable text the header holds, at most 128 characters).
    pub key_id: String,
    pub message_id: MessageId,
}

/// Recognises a Connect customer-input message by its header alone: format
/// 1, suite 0x0378, exactly one data key from `AmazonConnect`, no context
/// beyond the SDK's own signing key. No key is used.
pub fn inspect(ciphertext: &Ciphertext) -> Result<ConnectMessage, KeypadError> {
    inspect_header(ciphertext.header())
}

fn inspect_header(header: &MessageHeader) -> Result<ConnectMessage, KeypadError> {
    if header.version != 1 {
        return Err(KeypadError::NotFormat1(header.version));
    }
    if header.suite_id != CONNECT_SUITE_ID {
        return Err(KeypadError::WrongSuite(header.suite_id));
    }
    let [edk] = header.data_keys.as_slice() else {
        return Err(KeypadError::DataKeyCount(header.data_keys.len()));
    };
    if edk.provider_id != CONNECT_PROVIDER_ID {
        return Err(KeypadError::OtherProvider(printable(&edk.provider_id)));
    }
    if header
        .encryption_context
        .keys()
        .any(|k| k != SDK_PUBLIC_KEY)
    {
        return Err(KeypadError::UnexpectedContext);
    }
    Ok(ConnectMessage {
        key_id: printable(&edk.key_id),
        message_id: MessageId(header.message_id.clone()),
    })
}

/// Header text as it may appear in an error: printable ASCII, bounded.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .take(128)
        .collect()
}

/// A decrypted keypad value, validated, with what names its message.
#[derive(Debug)]
pub struct KeypadDecrypted {
    /// The validator's canonical form of the digits.
    pub plaintext: Plaintext,
    /// The Connect key id whose private key opened the message.
    pub key_id: ConnectKeyId,
    /// The ESDK message id (for a keyed hash that spots copied messages).
    pub message_id: MessageId,
}

/// The Connect keypad decrypter: one raw RSA keyring per configured key id,
/// and an ESDK client that, alone in callvault, allows the non-committing
/// suite on decrypt. Built once at start-up.
pub struct KeypadKeys {
    esdk: aws_esdk::Client,
    keyrings: BTreeMap<ConnectKeyId, KeyringRef>,
}

impl fmt::Debug for KeypadKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeypadKeys")
            .field("key_ids", &self.keyrings.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn setup<E: fmt::Debug>(e: E) -> KeypadError {
    KeypadError::Setup(format!("{e:?}"))
}

impl KeypadKeys {
    /// Parses `CALLVAULT_CONNECT_INPUT_FIELDS` and `CALLVAULT_CONNECT_INPUT_KEYS`
    /// (either may be empty) and loads every key: the start-up entry point.
    /// Keypad fields without any key are refused.
    pub async fn from_config(
        fields: &str,
        keys: &str,
    ) -> Result<(KeypadFields, Self), KeypadConfigError> {
        let fields = KeypadFields::parse(fields)?;
        let specs = parse_key_specs(keys)?;
        if !fields.is_empty() && specs.is_empty() {
            return Err(KeypadConfigError::FieldsWithoutKeys);
        }
        Ok((fields, Self::load(&specs).await?))
    }

    /// Reads and checks every key file, then builds its keyring.
    pub async fn load(specs: &[KeypadKeySpec]) -> Result<Self, KeypadConfigError> {
        let checked = specs
            .iter()
            .map(read_key_file)
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_checked(checked).await
    }

    /// Builds the keyrings from keys already checked by [`read_key_file`].
    pub async fn from_checked(keys: Vec<CheckedKey>) -> Result<Self, KeypadConfigError> {
        let keyring_err = |k: &CheckedKey| KeypadConfigError::Keyring {
            key_id: k.key_id.to_string(),
            path: k.path.clone(),
        };
        let setup_err = |e: KeypadError| KeypadConfigError::Setup(e.to_string());
        let mpl = MaterialProvidersConfig::builder()
            .build()
            .map_err(setup)
            .and_then(|c| mpl_client::Client::from_conf(c).map_err(setup))
            .map_err(setup_err)?;
        let esdk = connect_esdk_client().map_err(setup_err)?;
        let mut keyrings = BTreeMap::new();
        for key in &keys {
            if keyrings.contains_key(&key.key_id) {
                return Err(KeypadConfigError::DuplicateKeyId {
                    key_id: key.key_id.to_string(),
                });
            }
            // The SDK takes its own copy; ours is wiped when `keys` drops.
            let keyring = mpl
                .create_raw_rsa_keyring()
                .key_namespace(CONNECT_PROVIDER_ID)
                .key_name(key.key_id.as_str())
                .padding_scheme(PaddingScheme::OaepSha512Mgf1)
                .private_key(key.pem.to_vec())
                .send()
                .await
                .map_err(|_| keyring_err(key))?;
            keyrings.insert(key.key_id.clone(), keyring);
        }
        Ok(Self { esdk, keyrings })
    }

    /// The configured key ids, sorted.
    pub fn key_ids(&self) -> impl Iterator<Item = &ConnectKeyId> {
        self.keyrings.keys()
    }

    pub fn is_empty(&self) -> bool {
        self.keyrings.is_empty()
    }

    /// Decrypts the base64 text of a keypad attribute and validates it.
    pub async fn decrypt_base64(
        &self,
        text: &str,
        validator: Validator,
    ) -> Result<KeypadDecrypted, KeypadError> {
        if text.trim() == CONNECT_TIMEOUT_VALUE {
            return Err(KeypadError::NoInput);
        }
        let ciphertext = Ciphertext::from_base64(text.trim())?;
        self.decrypt(&ciphertext, validator).await
    }

    /// Decrypts a Connect customer-input message and validates its value with
    /// the field's validator. The header is checked first ([`inspect`]), so a
    /// message that is not Connect's, or is for a key this console does not
    /// hold, is refused before any key is used.
    pub async fn decrypt(
        &self,
        ciphertext: &Ciphertext,
        validator: Validator,
    ) -> Result<KeypadDecrypted, KeypadError> {
        // The same bound as text from an attribute, for bytes from elsewhere.
        if ciphertext.len() > MAX_ENCODED_LEN / 4 * 3 {
            return Err(KeypadError::TooLarge {
                len: ciphertext.len(),
            });
        }
        let message = inspect(ciphertext)?;
        let Some((key_id, keyring)) =
            ConnectKeyId::parse(&message.key_id).and_then(|id| self.keyrings.get_key_value(&id))
        else {
            return Err(KeypadError::UnknownKey(message.key_id));
        };
        let output = self
            .esdk
            .decrypt()
            .ciphertext(ciphertext.as_bytes().to_vec())
            .keyring(keyring.clone())
            .send()
            .await
            .map_err(|e| classify(e, key_id))?;
        let raw = Plaintext::new(
            output
                .plaintext
                .ok_or_else(|| KeypadError::Setup("decrypt returned no plaintext".into()))?
                .into_inner(),
        );
        if raw.len() > MAX_KEYPAD_PLAINTEXT {
            return Err(KeypadError::PlaintextTooLarge);
        }
        let text = raw.expose_str().ok_or(KeypadError::NotText)?;
        let plaintext = validator.validate(text).map_err(KeypadError::Invalid)?;
        Ok(KeypadDecrypted {
            plaintext,
            key_id: key_id.clone(),
            message_id: message.message_id,
        })
    }
}

/// The ESDK client for Connect's messages only: it allows the non-committing
/// suite on decrypt (Connect offers no other), takes a single data key, and
/// never retries a failed header check.
fn connect_esdk_client() -> Result<aws_esdk::Client, KeypadError> {
    let config = AwsEncryptionSdkConfig::builder()
        .commitment_policy(EsdkCommitmentPolicy::RequireEncryptAllowDecrypt)
        .max_encrypted_data_keys(1)
        .net_v4_0_0_retry_policy(aws_esdk::types::NetV400RetryPolicy::ForbidRetry)
        .build()
        .map_err(setup)?;
    aws_esdk::Client::from_conf(config).map_err(setup)
}

fn classify(err: aws_esdk::types::error::Error, key_id: &ConnectKeyId) -> KeypadError {
    let text = format!("{err:?}");
    // The raw RSA keyring's own words when OAEP unwrapping fails.
    if text.contains("unable to decrypt any encrypted data key")
        || text.contains("Unable to decrypt any data keys")
    {
        KeypadError::Unwrap(key_id.to_string())
    } else {
        KeypadError::Authentication
    }
}

#[cfg(test)]
mod tests;
