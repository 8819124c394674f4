//! Field encryption and decryption with the AWS Encryption SDK.
//!
//! Used by the Lambda to encrypt and by the console to decrypt, so the
//! convention (suite, commitment policy, context, encoding) lives here once.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{
    AesWrappingAlg, EsdkAlgorithmSuiteId, EsdkCommitmentPolicy,
};
use aws_esdk::types::aws_encryption_sdk_config::AwsEncryptionSdkConfig;

use crate::context::{ExpectedContext, FieldContext};
use crate::envelope::{Ciphertext, DecodeError};
use crate::keyring::{load_raw_aes_key, KeyringError, KeyringSpec, RawAesKey, RAW_AES_NAMESPACE};
use crate::period::{Period, ValueKey};
use crate::period_kms::PeriodKeysError;
use crate::period_ring::{KmsPeriodRing, RawPeriodRing};
use crate::plaintext::Plaintext;
use std::sync::Arc;

/// At most this many wrapped data keys are accepted in a message (a hostile
/// message with thousands would otherwise cost one unwrap attempt each).
pub const MAX_ENCRYPTED_DATA_KEYS: i64 = 10;

/// Largest value encrypted: caller input is a card number or a code, never a document.
pub const MAX_PLAINTEXT_LEN: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlgorithmSuite {
    /// 0x0578: key commitment and an ECDSA P-384 signature (the SDK's default).
    #[default]
    CommittedSigned,
    /// 0x0478: key commitment, no signature (smaller and faster; a holder of
    /// decrypt rights could forge messages).
    CommittedUnsigned,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CALLVAULT_ALGORITHM_SUITE must be 'committed-signed' (default) or 'committed-unsigned'")]
pub struct UnknownSuite;

impl FromStr for AlgorithmSuite {
    type Err = UnknownSuite;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" | "default" | "committed-signed" => Ok(Self::CommittedSigned),
            "committed-unsigned" => Ok(Self::CommittedUnsigned),
            _ => Err(UnknownSuite),
        }
    }
}

impl AlgorithmSuite {
    pub fn id(self) -> u16 {
        match self {
            Self::CommittedSigned => 0x0578,
            Self::CommittedUnsigned => 0x0478,
        }
    }

    fn esdk_id(self) -> EsdkAlgorithmSuiteId {
        match self {
            Self::CommittedSigned => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKeyEcdsaP384,
            Self::CommittedUnsigned => EsdkAlgorithmSuiteId::AlgAes256GcmHkdfSha512CommitKey,
        }
    }
}

impl fmt::Display for AlgorithmSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::CommittedSigned => "committed-signed",
            Self::CommittedUnsigned => "committed-unsigned",
        })
    }
}

/// Why an encrypt or decrypt did not happen. Messages never hold plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("the message's encryption context does not match the expected contact and field")]
    ContextMismatch,
    #[error("the message uses a non-committing algorithm suite (0x{0:04X}), which the commitment policy refuses")]
    NonCommitting(u16),
    #[error("no configured key can unwrap this message's data key")]
    WrongKey,
    #[error("the message failed authentication (tampered or truncated)")]
    Authentication,
    #[error("the key service failed")]
    KeyService(#[source] Box<aws_esdk::types::error::Error>),
    #[error("keyring configuration")]
    Keyring(#[from] KeyringError),
    #[error("value is {len} bytes; the limit is {MAX_PLAINTEXT_LEN}")]
    PlaintextTooLarge { len: usize },
    #[error("the encryption SDK failed")]
    Sdk(#[source] Box<aws_esdk::types::error::Error>),
    #[error("the encryption SDK could not be set up: {0}")]
    Setup(String),
    /// The message's period key is retired (pending deletion or destroyed)
    /// or otherwise not enabled: its values are not revealed.
    #[error("the key of period {} is {}: values of that period cannot be revealed", .0.period, .0.state)]
    KeyRetired(ValueKey),
    #[error("period keys: {0}")]
    PeriodKeys(#[from] PeriodKeysError),
    #[error("no key for the current period {0} (run `callvault keys roll`)")]
    NoCurrentKey(Period),
}

impl CryptoError {
    /// A stable, value-free name for logs and audit rows.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Decode(DecodeError::TooLarge { .. }) => "oversized",
            Self::Decode(DecodeError::NotBase64 | DecodeError::Empty) => "not_base64",
            Self::Decode(DecodeError::Header(_)) => "not_esdk_message",
            Self::ContextMismatch => "context_mismatch",
            Self::NonCommitting(_) => "non_committing_suite",
            Self::WrongKey => "wrong_key",
            Self::Authentication => "authentication_failed",
            Self::KeyService(_) => "key_service",
            Self::Keyring(_) => "keyring_config",
            Self::PlaintextTooLarge { .. } => "plaintext_too_large",
            Self::Sdk(_) => "esdk_error",
            Self::Setup(_) => "esdk_setup",
            Self::KeyRetired(_) => "key_retired",
            Self::PeriodKeys(_) => "period_keys",
            Self::NoCurrentKey(_) => "no_current_key",
        }
    }
}

/// A decrypted value and what the message said about itself.
#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: Plaintext,
    pub suite_id: u16,
    pub encryption_context: BTreeMap<String, String>,
    /// The period key that unwrapped it (period keyrings only).
    pub key: Option<ValueKey>,
}

/// Which wrapping keys this instance holds, for matching a message's data keys.
#[derive(Debug, Clone)]
pub(crate) enum KeyIds {
    Kms(Vec<String>),
    Raw { namespace: String, name: String },
    KmsPeriod(Arc<KmsPeriodRing>),
    RawPeriod(Arc<RawPeriodRing>),
}

/// An ESDK client and keyring, built once and shared.
pub struct FieldCrypto {
    pub(crate) esdk: aws_esdk::Client,
    /// The encrypting keyring (None for `raw-aes-period:`, whose key
    /// depends on the month of each encrypt).
    pub(crate) keyring: Option<KeyringRef>,
    pub(crate) keys: KeyIds,
    pub(crate) suite: AlgorithmSuite,
}

impl fmt::Debug for FieldCrypto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldCrypto")
            .field("keys", &self.keys)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

pub(crate) fn setup<E: fmt::Debug>(e: E) -> CryptoError {
    CryptoError::Setup(format!("{e:?}"))
}

pub(crate) fn esdk_client() -> Result<aws_esdk::Client, CryptoError> {
    esdk_client_with_policy(EsdkCommitmentPolicy::RequireEncryptRequireDecrypt)
}

/// The ESDK client as callvault configures it, with a given commitment
/// policy (callvault itself always uses REQUIRE_ENCRYPT_REQUIRE_DECRYPT; the
/// interoperability vectors also run under REQUIRE_ENCRYPT_ALLOW_DECRYPT).
pub fn esdk_client_with_policy(
    policy: EsdkCommitmentPolicy,
) -> Result<aws_esdk::Client, CryptoError> {
    let config = AwsEncryptionSdkConfig::builder()
        .commitment_policy(policy)
        .max_encrypted_data_keys(MAX_ENCRYPTED_DATA_KEYS)
        // By default the SDK retries a failed header authentication with the
        // faulty computation of AWS ESDK for .NET 4.0.0, and so accepts those
        // messages. callvault never needs them: a failed check is a failure
        // (the public "invalid" decrypt vectors prove it).
        .net_v4_0_0_retry_policy(aws_esdk::types::NetV400RetryPolicy::ForbidRetry)
        .build()
        .map_err(setup)?;
    aws_esdk::Client::from_conf(config).map_err(setup)
}

pub(crate) fn mpl() -> Result<mpl_client::Client, CryptoError> {
    mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build().map_err(setup)?)
        .map_err(setup)
}

impl FieldCrypto {
    /// Builds the keyring a spec names. For KMS, `sdk_config` supplies
    /// credentials and endpoints (loaded from the environment when `None`);
    /// one KMS client per region is built here and reused for every call.
    pub async fn from_spec(
        spec: &KeyringSpec,
        suite: AlgorithmSuite,
        sdk_config: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, CryptoError> {
        match spec {
            KeyringSpec::RawAes { path } => {
                Self::from_raw_aes_key(&load_raw_aes_key(path)?, suite).await
            }
            KeyringSpec::RawAesPeriod { .. } | KeyringSpec::KmsPeriod { .. } => {
                Self::from_period_spec(spec, suite, sdk_config).await
            }
            KeyringSpec::Kms { key_arns } => {
                let loaded;
                let sdk_config = match sdk_config {
                    Some(c) => c,
                    None => {
                        loaded =
                            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        &loaded
                    }
                };
                let mpl = mpl()?;
                let mut clients: HashMap<&str, aws_sdk_kms::Client> = HashMap::new();
                let mut keyrings = Vec::with_capacity(key_arns.len());
                for arn in key_arns {
                    let client = clients
                        .entry(arn.region())
                        .or_insert_with(|| {
                            let conf = aws_sdk_kms::config::Builder::from(sdk_config)
                                .region(aws_config::Region::new(arn.region().to_owned()))
                                .build();
                            aws_sdk_kms::Client::from_conf(conf)
                        })
                        .clone();
                    let keyring = mpl
                        .create_aws_kms_keyring()
                        .kms_key_id(arn.as_str())
                        .kms_client(aws_esdk::com_amazonaws_kms::client::Client { inner: client })
                        .send()
                        .await
                        .map_err(setup)?;
                    keyrings.push(keyring);
                }
                let mut keyrings = keyrings.into_iter();
                let generator = keyrings.next().ok_or(KeyringError::NoKmsKeys)?;
                let children: Vec<KeyringRef> = keyrings.collect();
                let keyring = if children.is_empty() {
                    generator
                } else {
                    mpl.create_multi_keyring()
                        .generator(generator)
                        .child_keyrings(children)
                        .send()
                        .await
                        .map_err(setup)?
                };
                Ok(Self {
                    esdk: esdk_client()?,
                    keyring: Some(keyring),
                    keys: KeyIds::Kms(key_arns.iter().map(|a| a.as_str().to_owned()).collect()),
                    suite,
                })
            }
        }
    }

    /// A raw AES keyring in the `callvault` namespace.
    pub async fn from_raw_aes_key(
        key: &RawAesKey,
        suite: AlgorithmSuite,
    ) -> Result<Self, CryptoError> {
        Self::from_raw_aes_parts(RAW_AES_NAMESPACE, &key.name, &key.key, suite).await
    }

    /// A raw AES keyring with any namespace (interoperability tests).
    pub async fn from_raw_aes_parts(
        namespace: &str,
        name: &str,
        key: &[u8],
        suite: AlgorithmSuite,
    ) -> Result<Self, CryptoError> {
        let keyring = mpl()?
            .create_raw_aes_keyring()
            .key_name(name)
            .key_namespace(namespace)
            .wrapping_key(key.to_vec())
            .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
            .send()
            .await
            .map_err(setup)?;
        Ok(Self {
            esdk: esdk_client()?,
            keyring: Some(keyring),
            keys: KeyIds::Raw {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
            },
            suite,
        })
    }

    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// Encrypts one captured value under its contact and field.
    pub async fn encrypt(
        &self,
        context: &FieldContext,
        plaintext: &Plaintext,
    ) -> Result<Ciphertext, CryptoError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
            });
        }
        let keyring = match (&self.keyring, &self.keys) {
            (Some(k), _) => k.clone(),
            (None, KeyIds::RawPeriod(ring)) => {
                let period = Period::now();
                if !ring.state(period).usable() {
                    return Err(CryptoError::NoCurrentKey(period));
                }
                ring.keyring_for(period).await?
            }
            (None, _) => return Err(CryptoError::Setup("no encrypting keyring".into())),
        };
        self.encrypt_with(keyring, context, plaintext).await
    }

    pub(crate) async fn encrypt_with(
        &self,
        keyring: KeyringRef,
        context: &FieldContext,
        plaintext: &Plaintext,
    ) -> Result<Ciphertext, CryptoError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(CryptoError::PlaintextTooLarge {
                len: plaintext.len(),
            });
        }
        // The SDK takes its own copy; ours is wiped when `plaintext` drops.
        let output = self
            .esdk
            .encrypt()
            .plaintext(plaintext.expose().to_vec())
            .keyring(keyring)
            .encryption_context(context.to_map())
            .algorithm_suite_id(self.suite.esdk_id())
            .send()
            .await
            .map_err(classify_encrypt)?;
        let bytes = output
            .ciphertext
            .ok_or_else(|| CryptoError::Setup("encrypt returned no ciphertext".into()))?
            .into_inner();
        Ok(Ciphertext::from_bytes(bytes)?)
    }

    /// Decrypts a message whose context must be exactly `expected` (the
    /// SDK's reserved keys aside). The context and the data keys are checked
    /// against the header first, so a mismatched or foreign message costs no
    /// key-service call.
    pub async fn decrypt(
        &self,
        ciphertext: &Ciphertext,
        expected: &ExpectedContext,
    ) -> Result<Decrypted, CryptoError> {
        let header = ciphertext.header();
        if !expected.matches(&header.encryption_context) {
            return Err(CryptoError::ContextMismatch);
        }
        if !header.is_committing() {
            return Err(CryptoError::NonCommitting(header.suite_id));
        }
        let (keyring, key) = match &self.keys {
            KeyIds::KmsPeriod(_) | KeyIds::RawPeriod(_) => {
                let (keyring, key) = self.period_keyring_for(header).await?;
                (keyring, Some(key))
            }
            KeyIds::Kms(_) | KeyIds::Raw { .. } => {
                if !self.holds_a_key_for(ciphertext) {
                    return Err(CryptoError::WrongKey);
                }
                let keyring = self
                    .keyring
                    .clone()
                    .ok_or_else(|| CryptoError::Setup("no keyring".into()))?;
                (keyring, None)
            }
        };
        let output = self
            .esdk
            .decrypt()
            .ciphertext(ciphertext.as_bytes().to_vec())
            .keyring(keyring)
            .encryption_context(expected.to_hash_map())
            .send()
            .await
            .map_err(classify_decrypt)?;
        let plaintext = Plaintext::new(
            output
                .plaintext
                .ok_or_else(|| CryptoError::Setup("decrypt returned no plaintext".into()))?
                .into_inner(),
        );
        let encryption_context: BTreeMap<String, String> = output
            .encryption_context
            .unwrap_or_default()
            .into_iter()
            .collect();
        // The authenticated context must still be the expected one.
        if !expected.matches(&encryption_context) {
            return Err(CryptoError::ContextMismatch);
        }
        Ok(Decrypted {
            plaintext,
            suite_id: header.suite_id,
            encryption_context,
            key,
        })
    }

    fn holds_a_key_for(&self, ciphertext: &Ciphertext) -> bool {
        ciphertext
            .header()
            .data_keys
            .iter()
            .any(|edk| match &self.keys {
                KeyIds::Kms(arns) => edk.provider_id == "aws-kms" && arns.contains(&edk.key_id),
                KeyIds::Raw { namespace, name } => {
                    edk.provider_id == *namespace && edk.key_id == *name
                }
                KeyIds::KmsPeriod(_) | KeyIds::RawPeriod(_) => false,
            })
    }
}

fn is_key_service_error(err: &aws_esdk::types::error::Error) -> bool {
    // KMS ("Trent" inside the SDK) refusals, and transport failures reaching it.
    let text = format!("{err:?}");
    [
        "TrentServiceError",
        "ComAmazonawsKms",
        "DispatchFailure",
        "KMS",
    ]
    .iter()
    .any(|marker| text.contains(marker))
}

fn classify_encrypt(err: aws_esdk::types::error::Error) -> CryptoError {
    if is_key_service_error(&err) {
        CryptoError::KeyService(Box::new(err))
    } else {
        CryptoError::Sdk(Box::new(err))
    }
}

fn classify_decrypt(err: aws_esdk::types::error::Error) -> CryptoError {
    if is_key_service_error(&err) {
        return CryptoError::KeyService(Box::new(err));
    }
    let text = format!("{err:?}");
    if text.contains("Unable to decrypt any data keys")
        || text.contains("Raw AES Keyring was unable to decrypt")
    {
        CryptoError::WrongKey
    } else {
        CryptoError::Authentication
    }
}
