//! callvault's field encryption and the Amazon Lex V2 code hook that uses it.
//!
//! The console depends on this library (without the `lambda` feature) for
//! [`crypto::FieldCrypto`], [`envelope::Ciphertext`] and the context types, so
//! that what the Lambda encrypts and what the console decrypts are defined once.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod config;
pub mod context;
pub mod crypto;
pub mod envelope;
pub mod fields;
pub mod handler;
pub mod keypad;
pub mod keyring;
pub mod lex;
pub mod logging;
pub mod period;
pub mod period_kms;
mod period_ring;
pub mod plaintext;
pub mod validate;

use crate::config::{ConfigError, LambdaConfig};
use crate::crypto::{CryptoError, FieldCrypto};
use crate::handler::Handler;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up encryption: {0}")]
    Crypto(#[from] CryptoError),
}

impl InitError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Config(e) => e.kind(),
            Self::Crypto(e) => e.kind(),
        }
    }
}

/// Builds the handler from the environment: configuration, then the keyring
/// (and, for KMS, its clients) once for the life of the process.
pub async fn handler_from_env() -> Result<Handler, InitError> {
    let config = LambdaConfig::from_env()?;
    let crypto = FieldCrypto::from_spec(&config.keyring, config.suite, None).await?;
    Ok(Handler::new(config.handler, crypto))
}
