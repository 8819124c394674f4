//! The keyrings of the period schemes: which period key a message names,
//! whether that key may be used, and an ESDK keyring for it.
//!
//! A retired key is refused here, from the keyring's own knowledge of the
//! key's state (KMS listing, or the key file being gone), not only because
//! the key store would refuse: a store that still answers for a key pending
//! deletion (an emulator, a misconfigured replica) reveals nothing either.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::AesWrappingAlg;

use crate::context::FieldContext;
use crate::crypto::{esdk_client, mpl, setup, AlgorithmSuite, CryptoError, FieldCrypto, KeyIds};
use crate::envelope::{Ciphertext, MessageHeader};
use crate::keyring::{load_raw_aes_key, KeyringError, KeyringSpec, RAW_AES_NAMESPACE};
use crate::period::{AliasPrefix, KeyState, Period, RawPeriodDir, ValueKey};
use crate::period_kms::{PeriodKeys, PeriodKeysError};
use crate::plaintext::Plaintext;

/// How long a listing of KMS period keys is trusted before a decrypt reads
/// it again (a key retired by `keys retire` elsewhere is refused here
/// within this time; KMS itself refuses it at once).
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(60);

/// A message naming a key the listing lacks (one rolled since) reloads the
/// listing, at most this often: hostile messages cannot flood KMS.
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

struct Loaded {
    at: Instant,
    keys: Arc<PeriodKeys>,
}

/// `kms-period:`: encrypts under `<prefix>/current`; decrypts with the
/// period key a message names, while it is enabled.
pub(crate) struct KmsPeriodRing {
    pub(crate) client: aws_sdk_kms::Client,
    pub(crate) prefix: AliasPrefix,
    mpl: mpl_client::Client,
    loaded: RwLock<Option<Loaded>>,
    keyrings: Mutex<HashMap<String, KeyringRef>>,
    pub(crate) max_age: Duration,
}

impl KmsPeriodRing {
    pub(crate) fn new(
        client: aws_sdk_kms::Client,
        prefix: AliasPrefix,
        mpl: mpl_client::Client,
    ) -> Self {
        Self {
            client,
            prefix,
            mpl,
            loaded: RwLock::new(None),
            keyrings: Mutex::new(HashMap::new()),
            max_age: DEFAULT_MAX_AGE,
        }
    }

    /// Lists the period keys again (ListAliases, DescribeKey).
    pub(crate) async fn refresh(&self) -> Result<Arc<PeriodKeys>, PeriodKeysError> {
        let keys = Arc::new(crate::period_kms::load(&self.client, &self.prefix).await?);
        if let Ok(mut slot) = self.loaded.write() {
            *slot = Some(Loaded {
                at: Instant::now(),
                keys: Arc::clone(&keys),
            });
        }
        Ok(keys)
    }

    /// The listing as last read, and how old it is.
    pub(crate) fn snapshot(&self) -> Option<(Arc<PeriodKeys>, Duration)> {
        let slot = self.loaded.read().ok()?;
        slot.as_ref().map(|l| (Arc::clone(&l.keys), l.at.elapsed()))
    }

    /// The listing, read again when older than `max_age`.
    async fn fresh(&self) -> Result<(Arc<PeriodKeys>, Duration), PeriodKeysError> {
        match self.snapshot() {
            Some((keys, age)) if age < self.max_age => Ok((keys, age)),
            _ => Ok((self.refresh().await?, Duration::ZERO)),
        }
    }

    /// The period key of a message: the first of its KMS data keys that is
    /// a period key under the prefix.
    pub(crate) async fn key_for(
        &self,
        header: &MessageHeader,
    ) -> Result<Option<ValueKey>, PeriodKeysError> {
        let find = |keys: &PeriodKeys| -> Option<ValueKey> {
            header
                .data_keys
                .iter()
                .filter(|edk| edk.provider_id == "aws-kms")
                .find_map(|edk| keys.by_arn(&edk.key_id))
                .map(|k| ValueKey {
                    period: k.period,
                    key_id: k.arn.clone(),
                    state: k.state.clone(),
                })
        };
        let (keys, age) = self.fresh().await?;
        if let Some(found) = find(&keys) {
            return Ok(Some(found));
        }
        if age >= MISS_RELOAD_INTERVAL {
            let keys = self.refresh().await?;
            return Ok(find(&keys));
        }
        Ok(None)
    }

    /// A KMS keyring for one period key's ARN (built once per key).
    pub(crate) async fn keyring_for(&self, arn: &str) -> Result<KeyringRef, CryptoError> {
        if let Some(k) = self.keyrings.lock().ok().and_then(|m| m.get(arn).cloned()) {
            return Ok(k);
        }
        let keyring = self
            .mpl
            .create_aws_kms_keyring()
            .kms_key_id(arn)
            .kms_client(aws_esdk::com_amazonaws_kms::client::Client {
                inner: self.client.clone(),
            })
            .send()
            .await
            .map_err(setup)?;
        if let Ok(mut m) = self.keyrings.lock() {
            m.insert(arn.to_owned(), keyring.clone());
        }
        Ok(keyring)
    }
}

/// `raw-aes-period:`: one key file per period; a destroyed period's file is
/// gone, so its values are unrecoverable by anyone.
pub(crate) struct RawPeriodRing {
    pub(crate) dir: RawPeriodDir,
    mpl: mpl_client::Client,
}

impl RawPeriodRing {
    pub(crate) fn new(dir: RawPeriodDir, mpl: mpl_client::Client) -> Self {
        Self { dir, mpl }
    }

    /// The period key a message names (a raw data key in the `callvault`
    /// namespace whose key name is a period), and whether its file exists.
    pub(crate) fn key_for(&self, header: &MessageHeader) -> Option<ValueKey> {
        header
            .data_keys
            .iter()
            .filter(|edk| edk.provider_id == RAW_AES_NAMESPACE)
            .find_map(|edk| Period::parse(&edk.key_id).ok())
            .map(|period| ValueKey {
                period,
                key_id: period.to_string(),
                state: self.state(period),
            })
    }

    pub(crate) fn state(&self, period: Period) -> KeyState {
        if self.dir.key_file(period).is_file() {
            KeyState::Enabled
        } else {
            KeyState::Deleted
        }
    }

    /// The keyring of one period's key file.
    pub(crate) async fn keyring_for(&self, period: Period) -> Result<KeyringRef, CryptoError> {
        let key = load_raw_aes_key(&self.dir.key_file(period))?;
        self.mpl
            .create_raw_aes_keyring()
            .key_name(&key.name)
            .key_namespace(RAW_AES_NAMESPACE)
            .wrapping_key(key.key.to_vec())
            .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
            .send()
            .await
            .map_err(setup)
    }
}

impl fmt::Debug for KmsPeriodRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsPeriodRing")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RawPeriodRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawPeriodRing")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl FieldCrypto {
    /// The keyring of `kms-period:` and `raw-aes-period:` specs.
    pub(crate) async fn from_period_spec(
        spec: &KeyringSpec,
        suite: AlgorithmSuite,
        sdk_config: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, CryptoError> {
        match spec {
            KeyringSpec::RawAesPeriod { dir } => Ok(Self {
                esdk: esdk_client()?,
                keyring: None,
                keys: KeyIds::RawPeriod(Arc::new(RawPeriodRing::new(
                    RawPeriodDir::new(dir),
                    mpl()?,
                ))),
                suite,
            }),
            KeyringSpec::KmsPeriod { prefix } => {
                let loaded;
                let sdk_config = match sdk_config {
                    Some(c) => c,
                    None => {
                        loaded =
                            aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                        &loaded
                    }
                };
                let client = aws_sdk_kms::Client::new(sdk_config);
                let mpl = mpl()?;
                // KMS resolves the alias on every GenerateDataKey: after a
                // roll the next value is wrapped by the new month's key, and
                // the message names that key's ARN (KMS answers with it).
                let keyring = mpl
                    .create_aws_kms_keyring()
                    .kms_key_id(prefix.current_alias())
                    .kms_client(aws_esdk::com_amazonaws_kms::client::Client {
                        inner: client.clone(),
                    })
                    .send()
                    .await
                    .map_err(setup)?;
                Ok(Self {
                    esdk: esdk_client()?,
                    keyring: Some(keyring),
                    keys: KeyIds::KmsPeriod(Arc::new(KmsPeriodRing::new(
                        client,
                        prefix.clone(),
                        mpl,
                    ))),
                    suite,
                })
            }
            KeyringSpec::Kms { .. } | KeyringSpec::RawAes { .. } => {
                Err(CryptoError::Setup("not a period keyring".into()))
            }
        }
    }

    /// The keyring to decrypt a message with, and its period key; refuses
    /// a key that is not enabled (retired, disabled) before any key use.
    pub(crate) async fn period_keyring_for(
        &self,
        header: &MessageHeader,
    ) -> Result<(KeyringRef, ValueKey), CryptoError> {
        match &self.keys {
            KeyIds::KmsPeriod(ring) => {
                let key = ring.key_for(header).await?.ok_or(CryptoError::WrongKey)?;
                if !key.state.usable() {
                    return Err(CryptoError::KeyRetired(key));
                }
                Ok((ring.keyring_for(&key.key_id).await?, key))
            }
            KeyIds::RawPeriod(ring) => {
                let key = ring.key_for(header).ok_or(CryptoError::WrongKey)?;
                if !key.state.usable() {
                    return Err(CryptoError::KeyRetired(key));
                }
                let keyring = match ring.keyring_for(key.period).await {
                    Ok(k) => k,
                    // Destroyed between the check and the read.
                    Err(CryptoError::Keyring(KeyringError::ReadKey { .. })) => {
                        return Err(CryptoError::KeyRetired(ValueKey {
                            state: KeyState::Deleted,
                            ..key
                        }))
                    }
                    Err(e) => return Err(e),
                };
                Ok((keyring, key))
            }
            KeyIds::Kms(_) | KeyIds::Raw { .. } => Err(CryptoError::WrongKey),
        }
    }

    /// Encrypts under one period's key of a `raw-aes-period:` keyring (the
    /// demo's contacts of earlier months, tests).
    pub async fn encrypt_in_period(
        &self,
        period: Period,
        context: &FieldContext,
        plaintext: &Plaintext,
    ) -> Result<Ciphertext, CryptoError> {
        let KeyIds::RawPeriod(ring) = &self.keys else {
            return Err(CryptoError::Setup(
                "only raw-aes-period keyrings encrypt under a chosen period".into(),
            ));
        };
        let keyring = ring.keyring_for(period).await?;
        self.encrypt_with(keyring, context, plaintext).await
    }

    /// The period key a stored value names and that key's state, without
    /// decrypting: `None` for keyrings without periods (`kms:`, `raw-aes:`)
    /// and for a message under no period key of this keyring. For
    /// `kms-period:` the listing is read again when older than a minute.
    pub async fn value_key(
        &self,
        ciphertext: &Ciphertext,
    ) -> Result<Option<ValueKey>, CryptoError> {
        match &self.keys {
            KeyIds::KmsPeriod(ring) => Ok(ring.key_for(ciphertext.header()).await?),
            KeyIds::RawPeriod(ring) => Ok(ring.key_for(ciphertext.header())),
            KeyIds::Kms(_) | KeyIds::Raw { .. } => Ok(None),
        }
    }

    /// Reads the `kms-period:` key listing again (ListAliases, DescribeKey)
    /// and returns it; call at start-up to fail early, and after a roll or
    /// retire to see it at once. `None` for the other keyrings (a
    /// `raw-aes-period:` directory is read on every use).
    pub async fn refresh_period_keys(&self) -> Result<Option<Arc<PeriodKeys>>, CryptoError> {
        match &self.keys {
            KeyIds::KmsPeriod(ring) => Ok(Some(ring.refresh().await?)),
            _ => Ok(None),
        }
    }

    /// How long a `kms-period:` listing is trusted before a decrypt reads it
    /// again (default one minute).
    pub fn with_period_keys_max_age(mut self, max_age: std::time::Duration) -> Self {
        if let KeyIds::KmsPeriod(ring) = &mut self.keys {
            if let Some(ring) = Arc::get_mut(ring) {
                ring.max_age = max_age;
            }
        }
        self
    }
}
