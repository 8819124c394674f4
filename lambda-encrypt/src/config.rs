//! The Lambda's configuration, read once at start-up from its environment.

use crate::crypto::{AlgorithmSuite, UnknownSuite};
use crate::fields::{Fields, FieldsError, DEFAULT_FIELDS};
use crate::handler::{HandlerConfig, DEFAULT_GENERIC_SLOTS, DEFAULT_MAX_RETRIES};
use crate::keyring::{KeyringError, KeyringSpec};

pub const MAX_RETRIES_LIMIT: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("CALLVAULT_KEYRING is not set (kms:<key-arn>[,<key-arn>...], raw-aes:<path>, kms-period:<alias-prefix> or raw-aes-period:<dir>)")]
    MissingKeyring,
    #[error("CALLVAULT_KEYRING: {0}")]
    Keyring(#[from] KeyringError),
    #[error(transparent)]
    Fields(#[from] FieldsError),
    #[error("CALLVAULT_MAX_RETRIES must be a whole number from 0 to {MAX_RETRIES_LIMIT}")]
    MaxRetries,
    #[error(transparent)]
    Suite(#[from] UnknownSuite),
    #[error("CALLVAULT_GENERIC_SLOTS must list slot names (letters, digits, '_')")]
    GenericSlots,
}

impl ConfigError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingKeyring | Self::Keyring(_) => "keyring_config",
            Self::Fields(_) => "fields_config",
            Self::MaxRetries => "max_retries_config",
            Self::Suite(_) => "suite_config",
            Self::GenericSlots => "generic_slots_config",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LambdaConfig {
    pub keyring: KeyringSpec,
    pub suite: AlgorithmSuite,
    pub handler: HandlerConfig,
}

impl LambdaConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let keyring = get("CALLVAULT_KEYRING")
            .filter(|s| !s.trim().is_empty())
            .ok_or(ConfigError::MissingKeyring)?
            .trim()
            .parse()?;
        let fields =
            Fields::parse(&get("CALLVAULT_FIELDS").unwrap_or_else(|| DEFAULT_FIELDS.to_owned()))?;
        let max_retries = match get("CALLVAULT_MAX_RETRIES") {
            None => DEFAULT_MAX_RETRIES,
            Some(s) => s
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_RETRIES_LIMIT)
                .ok_or(ConfigError::MaxRetries)?,
        };
        let suite = get("CALLVAULT_ALGORITHM_SUITE")
            .unwrap_or_default()
            .parse()?;
        let generic_slots: Vec<String> = get("CALLVAULT_GENERIC_SLOTS")
            .unwrap_or_else(|| DEFAULT_GENERIC_SLOTS.to_owned())
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if generic_slots.is_empty()
            || generic_slots.iter().any(|s| {
                s.len() > 100 || !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        {
            return Err(ConfigError::GenericSlots);
        }
        Ok(Self {
            keyring,
            suite,
            handler: HandlerConfig {
                fields,
                max_retries,
                generic_slots,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<LambdaConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        LambdaConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_keyring_is_set() {
        let c = load(&[("CALLVAULT_KEYRING", "raw-aes:/tmp/k.key")]).unwrap();
        assert_eq!(c.handler.max_retries, 2);
        assert_eq!(c.handler.fields.to_string(), DEFAULT_FIELDS);
        assert_eq!(c.suite, AlgorithmSuite::CommittedSigned);
        assert_eq!(c.handler.generic_slots, vec!["authNumber".to_owned()]);
    }

    #[test]
    fn misconfiguration_is_named() {
        assert_eq!(load(&[]).unwrap_err().kind(), "keyring_config");
        let k = ("CALLVAULT_KEYRING", "raw-aes:/tmp/k.key");
        assert_eq!(
            load(&[k, ("CALLVAULT_MAX_RETRIES", "-1")])
                .unwrap_err()
                .kind(),
            "max_retries_config"
        );
        assert_eq!(
            load(&[k, ("CALLVAULT_MAX_RETRIES", "99")])
                .unwrap_err()
                .kind(),
            "max_retries_config"
        );
        assert_eq!(
            load(&[k, ("CALLVAULT_FIELDS", "cc")]).unwrap_err().kind(),
            "fields_config"
        );
        assert_eq!(
            load(&[k, ("CALLVAULT_ALGORITHM_SUITE", "fast")])
                .unwrap_err()
                .kind(),
            "suite_config"
        );
        assert_eq!(
            load(&[k, ("CALLVAULT_GENERIC_SLOTS", "a b")])
                .unwrap_err()
                .kind(),
            "generic_slots_config"
        );
        assert_eq!(
            load(&[k, ("CALLVAULT_ALGORITHM_SUITE", "committed-unsigned")])
                .unwrap()
                .suite,
            AlgorithmSuite::CommittedUnsigned
        );
    }
}
