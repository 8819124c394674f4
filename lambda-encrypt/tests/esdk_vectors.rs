//! The AWS Encryption SDK's public decrypt test vectors, carried in this crate
//! (`tests/data/esdk-vectors/`, source and licence in its README), run through
//! the ESDK client as callvault configures it.
//!
//! Two halves (see the vectors' README): under REQUIRE_ENCRYPT_ALLOW_DECRYPT
//! every valid vector decrypts to its plaintext and every invalid one fails;
//! under callvault's REQUIRE_ENCRYPT_REQUIRE_DECRYPT only the key-committing
//! vectors decrypt and the others are refused by the commitment policy.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_esdk::material_providers::client as mpl_client;
use aws_esdk::material_providers::types::keyring::KeyringRef;
use aws_esdk::material_providers::types::material_providers_config::MaterialProvidersConfig;
use aws_esdk::material_providers::types::{AesWrappingAlg, EsdkCommitmentPolicy, PaddingScheme};
use base64::Engine as _;
use lambda_encrypt::crypto::esdk_client_with_policy;
use lambda_encrypt::envelope::parse_header;
use serde_json::Value;

struct Vector {
    name: String,
    dir: PathBuf,
    test: Value,
    keys: Value,
}

fn load(dir: &Path) -> Vec<Vector> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let keys: Value =
        serde_json::from_slice(&std::fs::read(dir.join("keys.json")).unwrap()).unwrap();
    let mut out: Vec<Vector> = manifest["tests"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, test)| Vector {
            name: name.clone(),
            dir: dir.to_owned(),
            test: test.clone(),
            keys: keys["keys"].clone(),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn file(v: &Vector, uri: &str) -> Result<Vec<u8>, String> {
    let rel = uri
        .strip_prefix("file://")
        .ok_or_else(|| format!("not a file uri: {uri}"))?;
    std::fs::read(v.dir.join(rel)).map_err(|e| format!("{rel}: {e}"))
}

fn uses_kms(v: &Vector) -> bool {
    v.test["master-keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|mk| mk["type"] == "aws-kms")
}

async fn keyring(mpl: &mpl_client::Client, v: &Vector) -> Result<KeyringRef, String> {
    let mut keyrings = Vec::new();
    for mk in v.test["master-keys"].as_array().unwrap() {
        let key = &v.keys[mk["key"].as_str().unwrap()];
        if key["decrypt"] != true {
            continue;
        }
        let name = key["key-id"].as_str().unwrap();
        let namespace = mk["provider-id"].as_str().unwrap();
        let material = key["material"].as_str().unwrap();
        let kr = match mk["encryption-algorithm"].as_str() {
            Some("aes") => mpl
                .create_raw_aes_keyring()
                .key_name(name)
                .key_namespace(namespace)
                .wrapping_key(
                    base64::engine::general_purpose::STANDARD
                        .decode(material)
                        .map_err(|e| e.to_string())?,
                )
                .wrapping_alg(AesWrappingAlg::AlgAes256GcmIv12Tag16)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?,
            Some("rsa") => {
                let padding = match (
                    mk["padding-algorithm"].as_str(),
                    mk["padding-hash"].as_str(),
                ) {
                    (Some("pkcs1"), _) => PaddingScheme::Pkcs1,
                    (_, Some("sha1")) => PaddingScheme::OaepSha1Mgf1,
                    (_, Some("sha256")) => PaddingScheme::OaepSha256Mgf1,
                    (_, Some("sha384")) => PaddingScheme::OaepSha384Mgf1,
                    (_, Some("sha512")) => PaddingScheme::OaepSha512Mgf1,
                    other => return Err(format!("unknown RSA padding {other:?}")),
                };
                mpl.create_raw_rsa_keyring()
                    .key_name(name)
                    .key_namespace(namespace)
                    .padding_scheme(padding)
                    .private_key(material.as_bytes().to_vec())
                    .send()
                    .await
                    .map_err(|e| format!("{e:?}"))?
            }
            other => return Err(format!("unsupported master key {other:?}")),
        };
        keyrings.push(kr);
    }
    match keyrings.len() {
        0 => Err("no master key can decrypt".into()),
        1 => Ok(keyrings.remove(0)),
        _ => mpl
            .create_multi_keyring()
            .child_keyrings(keyrings)
            .send()
            .await
            .map_err(|e| format!("{e:?}")),
    }
}

async fn decrypt(v: &Vector, policy: EsdkCommitmentPolicy) -> Result<Vec<u8>, String> {
    let client = esdk_client_with_policy(policy).map_err(|e| e.to_string())?;
    let mpl =
        mpl_client::Client::from_conf(MaterialProvidersConfig::builder().build().unwrap()).unwrap();
    let ciphertext = file(v, v.test["ciphertext"].as_str().unwrap())?;
    let context: HashMap<String, String> =
        serde_json::from_value(v.test["encryption-context"].clone()).unwrap_or_default();
    let keyring = keyring(&mpl, v).await?;
    let request = client
        .decrypt()
        .ciphertext(ciphertext)
        .encryption_context(context.clone());
    let request = if v.test["cmm"] == "RequiredEncryptionContext" {
        let default = mpl
            .create_default_cryptographic_materials_manager()
            .keyring(keyring)
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        let cmm = mpl
            .create_required_encryption_context_cmm()
            .underlying_cmm(default)
            .required_encryption_context_keys(context.keys().cloned().collect::<Vec<_>>())
            .send()
            .await
            .map_err(|e| format!("{e:?}"))?;
        request.materials_manager(cmm)
    } else {
        request.keyring(keyring)
    };
    let out = request.send().await.map_err(|e| format!("{e:?}"))?;
    Ok(out.plaintext.ok_or("no plaintext")?.into_inner())
}

fn committing(v: &Vector) -> bool {
    let bytes = file(v, v.test["ciphertext"].as_str().unwrap()).unwrap();
    let header = parse_header(&bytes).unwrap_or_else(|e| panic!("{}: header: {e}", v.name));
    header.is_committing()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_esdk_vectors_decrypt_or_fail_as_specified() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/esdk-vectors");
    let mut valid: Vec<Vector> = load(&root.join("valid-Net-4.0.0"));
    valid.extend(
        load(&root.join("v4-Net-4.0.1"))
            .into_iter()
            .filter(|v| !uses_kms(v)),
    );
    let invalid = load(&root.join("invalid-Net-4.0.0"));
    assert_eq!((valid.len(), invalid.len()), (104, 28), "vector counts");

    let mut failures = Vec::new();
    let (mut allow_ok, mut require_ok, mut require_refused, mut invalid_rejected) = (0, 0, 0, 0);
    for v in &valid {
        let expected = file(v, v.test["result"]["output"]["plaintext"].as_str().unwrap()).unwrap();
        match decrypt(v, EsdkCommitmentPolicy::RequireEncryptAllowDecrypt).await {
            Ok(p) if p == expected => allow_ok += 1,
            Ok(_) => failures.push(format!("{}: wrong plaintext (ALLOW_DECRYPT)", v.name)),
            Err(e) => failures.push(format!(
                "{}: {} (ALLOW_DECRYPT)",
                v.name,
                e.chars().take(300).collect::<String>()
            )),
        }
        let commits = committing(v);
        match (
            decrypt(v, EsdkCommitmentPolicy::RequireEncryptRequireDecrypt).await,
            commits,
        ) {
            (Ok(p), true) if p == expected => require_ok += 1,
            (Err(_), false) => require_refused += 1,
            (Ok(_), false) => failures.push(format!(
                "{}: a non-committing message decrypted under REQUIRE_DECRYPT",
                v.name
            )),
            (r, _) => failures.push(format!(
                "{}: REQUIRE_DECRYPT gave {:?}",
                v.name,
                r.map(|p| p.len())
            )),
        }
    }
    for v in &invalid {
        match decrypt(v, EsdkCommitmentPolicy::RequireEncryptAllowDecrypt).await {
            Err(_) => invalid_rejected += 1,
            Ok(_) => failures.push(format!("{}: an invalid vector decrypted", v.name)),
        }
    }
    println!("ESDK vectors, REQUIRE_ENCRYPT_ALLOW_DECRYPT: {allow_ok}/104 valid decrypted, {invalid_rejected}/28 invalid rejected");
    println!("ESDK vectors, REQUIRE_ENCRYPT_REQUIRE_DECRYPT (callvault): {require_ok}/20 committing decrypted, {require_refused}/84 non-committing refused");
    assert!(
        failures.is_empty(),
        "{} vector failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        (allow_ok, invalid_rejected, require_ok, require_refused),
        (104, 28, 20, 84)
    );
}
