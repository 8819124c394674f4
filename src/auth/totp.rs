//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps) for the
//! step-up that a decrypt needs (OWASP ASVS 7.5.3 / 6.5).
//!
//! The shared secret is sealed with a key kept outside the database: a copy
//! of the database alone gives no usable secret. Each accepted code moves the
//! user's `last_step` forward, so a code (or any older one) is never accepted
//! twice.

use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::clock::SharedClock;
use crate::db::Db;

pub const ISSUER: &str = "callvault";
const STEP_SECONDS: i64 = 30;
const SECRET_BYTES: usize = 20;
const SEAL_TAG: &[u8] = b"callvault-totp-seal-v1";
/// The console setting that makes TOTP mandatory for supervisors.
pub const MANDATORY_SETTING: &str = "totp_mandatory";

#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("no authenticator is enrolled")]
    NotEnrolled,
    #[error("an authenticator is already enrolled; an admin must reset it first")]
    AlreadyEnrolled,
    #[error("codes are 6 digits")]
    Malformed,
    #[error("the code is wrong or expired")]
    Wrong,
    #[error("that code was already used")]
    Replayed,
    #[error("the stored authenticator secret is unusable")]
    Sealed,
    #[error("the second-factor store failed")]
    Db(#[from] sqlx::Error),
}

impl TotpError {
    /// A value-free name for audit rows.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotEnrolled => "not_enrolled",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::Malformed => "malformed_code",
            Self::Wrong => "wrong_code",
            Self::Replayed => "replayed_code",
            Self::Sealed => "sealed_secret_unusable",
            Self::Db(_) => "store_error",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enrolment {
    None,
    Pending,
    Active,
}

/// What a new enrolment shows the user, once.
pub struct NewEnrolment {
    pub secret_base32: Zeroizing<String>,
    pub otpauth_url: Zeroizing<String>,
    /// The otpauth URL as a QR code (inline SVG, no script).
    pub qr_svg: String,
}

#[derive(Clone)]
pub struct TotpStore {
    db: Db,
    seal_key: std::sync::Arc<Zeroizing<Vec<u8>>>,
    clock: SharedClock,
}

fn keystream(key: &[u8], user_id: i64, nonce: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(SEAL_TAG);
    mac.update(&user_id.to_be_bytes());
    mac.update(nonce);
    Some(Zeroizing::new(mac.finalize().into_bytes().to_vec()))
}

/// 6 ASCII digits, spaces allowed between them ("123 456").
pub fn parse_code(code: &str) -> Result<String, TotpError> {
    let digits: String = code.chars().filter(|c| *c != ' ').collect();
    if digits.len() == 6 && digits.bytes().all(|b| b.is_ascii_digit()) {
        Ok(digits)
    } else {
        Err(TotpError::Malformed)
    }
}

fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP, TotpError> {
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP_SECONDS as u64,
        secret,
        Some(ISSUER.to_owned()),
        account.replace(':', "_"),
    )
    .map_err(|_| TotpError::Sealed)
}

impl TotpStore {
    /// `key` is the console's audit key; the seal uses it under its own tag.
    pub fn new(db: Db, key: Zeroizing<Vec<u8>>, clock: SharedClock) -> Self {
        Self {
            db,
            seal_key: std::sync::Arc::new(key),
            clock,
        }
    }

    fn seal(&self, user_id: i64, secret: &[u8]) -> Result<String, TotpError> {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|_| TotpError::Sealed)?;
        let ks = keystream(&self.seal_key, user_id, &nonce).ok_or(TotpError::Sealed)?;
        let masked: Vec<u8> = secret.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect();
        Ok(format!("{}:{}", hex::encode(nonce), hex::encode(masked)))
    }

    fn unseal(&self, user_id: i64, sealed: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
        let (nonce, masked) = sealed.split_once(':').ok_or(TotpError::Sealed)?;
        let nonce = hex::decode(nonce).map_err(|_| TotpError::Sealed)?;
        let masked = hex::decode(masked).map_err(|_| TotpError::Sealed)?;
        if masked.len() != SECRET_BYTES {
            return Err(TotpError::Sealed);
        }
        let ks = keystream(&self.seal_key, user_id, &nonce).ok_or(TotpError::Sealed)?;
        Ok(Zeroizing::new(
            masked.iter().zip(ks.iter()).map(|(a, b)| a ^ b).collect(),
        ))
    }

    pub async fn enrolment(&self, user_id: i64) -> Result<Enrolment, TotpError> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT confirmed FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(match row {
            None => Enrolment::None,
            Some((0,)) => Enrolment::Pending,
            Some(_) => Enrolment::Active,
        })
    }

    /// Starts (or restarts) an enrolment. An active authenticator is replaced
    /// only after an admin reset: a stolen session cannot swap the factor.
    /// On `conn`: an audited change's transaction.
    pub async fn begin(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        account: &str,
    ) -> Result<NewEnrolment, TotpError> {
        let active: Option<(i64,)> =
            sqlx::query_as("SELECT confirmed FROM user_totp WHERE user_id = $1 AND confirmed <> 0")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?;
        if active.is_some() {
            return Err(TotpError::AlreadyEnrolled);
        }
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut secret)
            .map_err(|_| TotpError::Sealed)?;
        let sealed = self.seal(user_id, &secret)?;
        sqlx::query("DELETE FROM user_totp WHERE user_id = $1 AND confirmed = 0")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "INSERT INTO user_totp (user_id, sealed, confirmed, last_step, created_us) VALUES ($1, $2, 0, 0, $3)",
        )
        .bind(user_id)
        .bind(&sealed)
        .bind(self.clock.now_us())
        .execute(&mut *conn)
        .await?;
        let t = totp(secret.to_vec(), account)?;
        let url = Zeroizing::new(t.get_url());
        let qr_svg = qrcode::QrCode::new(url.as_bytes())
            .map(|code| {
                let svg = code
                    .render::<qrcode::render::svg::Color>()
                    .min_dimensions(220, 220)
                    .build();
                // Inline in HTML: drop the XML prolog.
                svg.find("<svg")
                    .map_or(svg.clone(), |i| svg[i..].to_owned())
            })
            .map_err(|_| TotpError::Sealed)?;
        Ok(NewEnrolment {
            secret_base32: Zeroizing::new(t.get_secret_base32()),
            otpauth_url: url,
            qr_svg,
        })
    }

    /// Checks a code against the user's secret; an accepted code moves
    /// `last_step` forward, so it (and any older code) cannot be used again.
    /// Pending enrolments are checked only when `confirming`. On `conn`, so
    /// that an accepted code and its audit row commit together.
    pub async fn verify(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        code: &str,
        confirming: bool,
    ) -> Result<(), TotpError> {
        let code = parse_code(code)?;
        let row: Option<(String, i64, i64)> =
            sqlx::query_as("SELECT sealed, confirmed, last_step FROM user_totp WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((sealed, confirmed, last_step)) = row else {
            return Err(TotpError::NotEnrolled);
        };
        if (confirmed != 0) == confirming {
            return Err(if confirming {
                TotpError::AlreadyEnrolled
            } else {
                TotpError::NotEnrolled
            });
        }
        let secret = self.unseal(user_id, &sealed)?;
        let t = totp(secret.to_vec(), "")?;
        let step = self.clock.now_us().div_euclid(1_000_000) / STEP_SECONDS;
        let matched = (step - 1..=step + 1).find(|s| {
            let expected = t.generate(u64::try_from(s * STEP_SECONDS).unwrap_or(0));
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        });
        let Some(matched) = matched else {
            return Err(TotpError::Wrong);
        };
        if matched <= last_step {
            return Err(TotpError::Replayed);
        }
        // Conditional update: of two concurrent uses of one code, one wins.
        let n = sqlx::query(
            "UPDATE user_totp SET last_step = $1, confirmed = 1 WHERE user_id = $2 AND last_step < $1",
        )
        .bind(matched)
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 1 {
            Ok(())
        } else {
            Err(TotpError::Replayed)
        }
    }

    /// Removes the user's authenticator (admin reset), on `conn`.
    pub async fn reset(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
    ) -> Result<bool, TotpError> {
        Ok(sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0)
    }

    pub async fn active_users(&self) -> Result<std::collections::HashSet<i64>, TotpError> {
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT user_id FROM user_totp WHERE confirmed = 1")
            .fetch_all(&self.db.pool)
            .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub async fn mandatory(&self) -> Result<bool, TotpError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM console_settings WHERE name = $1")
                .bind(MANDATORY_SETTING)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.is_some_and(|(v,)| v == "on"))
    }

    /// On `conn`: an audited change's transaction.
    pub async fn set_mandatory(
        &self,
        conn: &mut sqlx::AnyConnection,
        on: bool,
    ) -> Result<(), TotpError> {
        let value = if on { "on" } else { "off" };
        sqlx::query(
            "INSERT INTO console_settings (name, value, updated_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
        )
        .bind(MANDATORY_SETTING)
        .bind(value)
        .bind(self.clock.now_us())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        assert_eq!(parse_code("123 456").unwrap(), "123456");
        for bad in ["", "12345", "1234567", "12345a", "١٢٣٤٥٦", "123456\n"] {
            assert!(parse_code(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sealing_needs_the_key_and_the_user() {
        let key = b"0123456789abcdef0123456789abcdef";
        let a = keystream(key, 1, b"n").unwrap();
        assert_ne!(*a, *keystream(key, 2, b"n").unwrap());
        assert_ne!(*a, *keystream(b"another key", 1, b"n").unwrap());
        assert_ne!(*a, *keystream(key, 1, b"m").unwrap());
    }
}
