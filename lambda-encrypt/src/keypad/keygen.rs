//! The RSA key pair Amazon Connect's "Store customer input" block encrypts
//! to: `callvault connect-key new` writes these, the tests check them.
//!
//! The key is made and the certificate signed by aws-lc-rs (through rcgen),
//! never by a hand-written encoder.

use zeroize::Zeroizing;

/// The certificate only proves possession of the key to Connect; ten years
/// spares a rotation forced by a date rather than by policy.
pub const CERTIFICATE_YEARS: i32 = 10;
pub const CERTIFICATE_COMMON_NAME: &str = "callvault Amazon Connect customer input";

#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    #[error("cannot generate the RSA key or its certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{0}-{1:02}-{2:02} is not a date a certificate can start on")]
    BadDate(i32, u8, u8),
}

/// The three PEM files; the private key is wiped on drop.
pub struct ConnectKeyFiles {
    /// PKCS#8 `PRIVATE KEY`, for `CALLVAULT_CONNECT_INPUT_KEYS`.
    pub private_pem: Zeroizing<String>,
    /// SubjectPublicKeyInfo `PUBLIC KEY`, to upload to Connect.
    pub public_pem: String,
    /// Self-signed X.509 certificate of the same key, for the flow block.
    pub certificate_pem: String,
}

/// A new RSA 4096 key pair and its self-signed certificate, valid from
/// `year-month-day` for [`CERTIFICATE_YEARS`].
pub fn generate_connect_key(year: i32, month: u8, day: u8) -> Result<ConnectKeyFiles, KeygenError> {
    // Checked here: rcgen's date helper panics on an impossible date. The
    // 28th exists in every month, ten years on too.
    if !(1970..=9000).contains(&year) || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(KeygenError::BadDate(year, month, day));
    }
    let day = day.min(28);
    let key = rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_4096)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, CERTIFICATE_COMMON_NAME);
    params.not_before = rcgen::date_time_ymd(year, month, day);
    params.not_after = rcgen::date_time_ymd(year + CERTIFICATE_YEARS, month, day);
    let certificate = params.self_signed(&key)?;
    Ok(ConnectKeyFiles {
        private_pem: Zeroizing::new(key.serialize_pem()),
        public_pem: key.public_key_pem(),
        certificate_pem: certificate.pem(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impossible_dates_are_refused_not_a_panic() {
        for (y, m, d) in [
            (2026, 0, 1),
            (2026, 13, 1),
            (2026, 2, 0),
            (2026, 1, 32),
            (1900, 1, 1),
        ] {
            assert!(matches!(
                generate_connect_key(y, m, d),
                Err(KeygenError::BadDate(..))
            ));
        }
    }
}
