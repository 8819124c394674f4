//! How a TOTP shared secret is kept in the database: sealed with AES-256-GCM
//! (aws-lc-rs) under its own key (`totp.key` in the secrets directory, not
//! the audit key), a random 96-bit nonce per seal, and the user id as
//! associated data, so a sealed secret is useless without the key, cannot be
//! changed unnoticed, and cannot be moved to another user's row.
//!
//! Stored form: `v2:<hex nonce>:<hex ciphertext and tag>`.
//!
//! The first scheme (`<hex nonce>:<hex secret XOR HMAC-SHA256(audit key,
//! tag || user id || nonce)>`) authenticated nothing and reused the audit key.
//! [`open_legacy`] reads it only so that start-up can reseal such rows
//! ([`crate::auth::totp::TotpStore::migrate_legacy_seals`]).

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

pub const KEY_BYTES: usize = crate::secrets::TOTP_KEY_BYTES;
const PREFIX: &str = "v2:";
const AAD_TAG: &[u8] = b"callvault-totp-seal-v2";
const LEGACY_TAG: &[u8] = b"callvault-totp-seal-v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the TOTP seal key is not {KEY_BYTES} bytes")]
    BadKey,
    #[error("sealing failed")]
    Seal,
    /// Malformed, sealed under another key or for another user, or altered.
    #[error("the sealed secret cannot be opened")]
    Open,
}

/// The AEAD key for TOTP secrets. Its `Debug` shows nothing of the key.
pub struct TotpSeal {
    key: RandomizedNonceKey,
}

impl std::fmt::Debug for TotpSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSeal(<redacted>)")
    }
}

fn aad(user_id: i64) -> Aad<Vec<u8>> {
    let mut bytes = AAD_TAG.to_vec();
    bytes.extend_from_slice(&user_id.to_be_bytes());
    Aad::from(bytes)
}

impl TotpSeal {
    pub fn new(key: &[u8]) -> Result<Self, SealError> {
        if key.len() != KEY_BYTES {
            return Err(SealError::BadKey);
        }
        RandomizedNonceKey::new(&AES_256_GCM, key)
            .map(|key| Self { key })
            .map_err(|_| SealError::BadKey)
    }

    pub fn seal(&self, user_id: i64, secret: &[u8]) -> Result<String, SealError> {
        let mut in_out = Zeroizing::new(secret.to_vec());
        let nonce = self
            .key
            .seal_in_place_append_tag(aad(user_id), &mut *in_out)
            .map_err(|_| SealError::Seal)?;
        Ok(format!(
            "{PREFIX}{}:{}",
            hex::encode(nonce.as_ref()),
            hex::encode(&*in_out)
        ))
    }

    pub fn open(&self, user_id: i64, sealed: &str) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(SealError::Open)?;
        let (nonce, body) = rest.split_once(':').ok_or(SealError::Open)?;
        let nonce: [u8; NONCE_LEN] = hex::decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(SealError::Open)?;
        let mut in_out = Zeroizing::new(hex::decode(body).map_err(|_| SealError::Open)?);
        let secret = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                aad(user_id),
                &mut in_out,
            )
            .map_err(|_| SealError::Open)?;
        Ok(Zeroizing::new(secret.to_vec()))
    }
}

/// Whether a stored value is in the current form (else it is a legacy seal).
pub fn is_current(sealed: &str) -> bool {
    sealed.starts_with(PREFIX)
}

/// Opens a seal of the first scheme with the audit key. `secret_len` is the
/// only check there is: that scheme cannot tell a wrong key or a tampered
/// value from the right one.
pub fn open_legacy(
    audit_key: &[u8],
    user_id: i64,
    sealed: &str,
    secret_len: usize,
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (nonce, masked) = sealed.split_once(':').ok_or(SealError::Open)?;
    let nonce = hex::decode(nonce).map_err(|_| SealError::Open)?;
    let masked = Zeroizing::new(hex::decode(masked).map_err(|_| SealError::Open)?);
    if masked.len() != secret_len {
        return Err(SealError::Open);
    }
    let ks = legacy_keystream(audit_key, user_id, &nonce)?;
    if ks.len() < masked.len() {
        return Err(SealError::Open);
    }
    Ok(Zeroizing::new(
        masked.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect(),
    ))
}

fn legacy_keystream(
    key: &[u8],
    user_id: i64,
    nonce: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| SealError::Open)?;
    mac.update(LEGACY_TAG);
    mac.update(&user_id.to_be_bytes());
    mac.update(nonce);
    Ok(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
}

/// The first scheme's sealing, kept for tests that build legacy rows.
#[doc(hidden)]
pub fn seal_legacy(
    audit_key: &[u8],
    user_id: i64,
    nonce: &[u8],
    secret: &[u8],
) -> Result<String, SealError> {
    let ks = legacy_keystream(audit_key, user_id, nonce)?;
    let masked: Vec<u8> = secret.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect();
    Ok(format!("{}:{}", hex::encode(nonce), hex::encode(masked)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8; 20] = b"12345678901234567890";

    fn seal_key(byte: u8) -> TotpSeal {
        TotpSeal::new(&[byte; KEY_BYTES]).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_for_its_user_with_its_key_only() {
        let key = seal_key(7);
        let sealed = key.seal(42, SECRET).unwrap();
        assert!(is_current(&sealed));
        assert!(!sealed.contains(&hex::encode(SECRET)));
        assert_eq!(&*key.open(42, &sealed).unwrap(), SECRET);
        assert_eq!(
            key.open(43, &sealed),
            Err(SealError::Open),
            "another user's row"
        );
        assert_eq!(
            seal_key(8).open(42, &sealed),
            Err(SealError::Open),
            "another key"
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = seal_key(7);
        let a = key.seal(1, SECRET).unwrap();
        let b = key.seal(1, SECRET).unwrap();
        assert_ne!(a, b);
        assert_ne!(a.split(':').nth(1), b.split(':').nth(1));
    }

    #[test]
    fn a_tampered_seal_is_refused() {
        let key = seal_key(7);
        let sealed = key.seal(42, SECRET).unwrap();
        // Flip one bit of the ciphertext, of the tag, and of the nonce.
        let (head, body) = sealed.rsplit_once(':').unwrap();
        let mut bytes = hex::decode(body).unwrap();
        for i in [0, bytes.len() - 1] {
            bytes[i] ^= 1;
            let forged = format!("{head}:{}", hex::encode(&bytes));
            assert_eq!(key.open(42, &forged), Err(SealError::Open));
            bytes[i] ^= 1;
        }
        let nonce = &sealed[3..27];
        let other = if nonce.starts_with('0') { "1" } else { "0" };
        let forged = format!("v2:{other}{}", &sealed[4..]);
        assert_eq!(key.open(42, &forged), Err(SealError::Open));
        for garbage in [
            "",
            "v2:",
            "v2:zz:zz",
            "v2:00:00",
            "00:00",
            &sealed[..sealed.len() - 2],
        ] {
            assert_eq!(key.open(42, garbage), Err(SealError::Open), "{garbage}");
        }
        assert!(TotpSeal::new(&[0; 16]).is_err());
        assert_eq!(format!("{key:?}"), "TotpSeal(<redacted>)");
    }

    #[test]
    fn a_legacy_seal_opens_with_the_audit_key_and_is_not_current() {
        let audit_key = [9u8; 32];
        let legacy = seal_legacy(&audit_key, 5, &[1; 16], SECRET).unwrap();
        assert!(!is_current(&legacy));
        assert_eq!(&*open_legacy(&audit_key, 5, &legacy, 20).unwrap(), SECRET);
        assert!(open_legacy(&audit_key, 5, &legacy, 16).is_err());
        assert!(open_legacy(&audit_key, 5, "nonsense", 20).is_err());
    }
}
