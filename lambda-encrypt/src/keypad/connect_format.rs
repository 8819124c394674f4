//! What Amazon Connect's "Store customer input" block does to keyed digits,
//! done with the SDK's own encrypt: one data key wrapped to the uploaded
//! public key with RSA-OAEP (SHA-512, MGF1-SHA-512) under provider
//! `AmazonConnect` and the Connect key id, suite 0x0378, no context of its
//! own. For the demo, tests and benchmarks: callvault's capture path never
//! encrypts with this non-committing suite.

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{
    EsdkAlgorithmSuiteId, EsdkCommitmentPolicy, PaddingScheme,
};

use super::{setup, KeypadError, CONNECT_PROVIDER_ID};
use crate::crypto::esdk_client_with_policy;
use crate::envelope::Ciphertext;

/// Encrypts `digits` as Connect would for the key `key_id` whose public key
/// (SubjectPublicKeyInfo PEM) is `public_pem`.
pub async fn encrypt_as_connect(
    public_pem: &str,
    key_id: &str,
    digits: &str,
) -> Result<Ciphertext, KeypadError> {
    let mpl = MaterialProvidersConfig::builder()
        .build()
        .map_err(setup)
        .and_then(|c| mpl_client::Client::from_conf(c).map_err(setup))?;
    let keyring = mpl
        .create_raw_rsa_keyring()
        .key_namespace(CONNECT_PROVIDER_ID)
        .key_name(key_id)
        .padding_scheme(PaddingScheme::OaepSha512Mgf1)
        .public_key(public_pem.as_bytes().to_vec())
        .send()
        .await
        .map_err(setup)?;
    let esdk = esdk_client_with_policy(EsdkCommitmentPolicy::ForbidEncryptAllowDecrypt)
        .map_err(|e| KeypadError::Setup(e.to_string()))?;
    let out = esdk
        .encrypt()
        .plaintext(digits.as_bytes().to_vec())
        .keyring(keyring)
        .algorithm_suite_id(EsdkAlgorithmSuiteId::AlgAes256GcmIv12Tag16HkdfSha384EcdsaP384)
        .send()
        .await
        .map_err(setup)?;
    let bytes = out
        .ciphertext
        .ok_or_else(|| KeypadError::Setup("encrypt returned no ciphertext".into()))?
        .into_inner();
    Ok(Ciphertext::from_bytes(bytes)?)
}
