//! TOTP second factor (RFC 6238: SHA-1, 6 digits, 30-second steps) for the
//! step-up that a decrypt needs (OWASP ASVS 7.5.3 / 6.5).
//!
//! The shared secret is sealed with an AEAD under a key kept outside the
//! database (`totp_seal`): a copy of the database alone gives no usable
//! secret, and a changed or moved seal does not open. Each accepted code moves the
//! user's `last_step` forward, so a code (or any older one) is never accepted
//! twice.

use rand::TryRngCore as _;
use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use super::totp_seal::{self, TotpSeal};
use crate::clock::SharedClock;
use crate::db::Db;

pub const ISSUER: &str = "callvault";
const STEP_SECONDS: i64 = 30;
const SECRET_BYTES: usize = 20;
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

impl From<TotpError> for crate::web::AppError {
    fn from(e: TotpError) -> Self {
        match e {
            TotpError::Db(db) => Self::Db(db),
            other => Self::Internal(other.to_string()),
        }
    }
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
    seal: std::sync::Arc<TotpSeal>,
    clock: SharedClock,
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
    /// `seal_key` is the TOTP key from the secrets directory (`totp.key`).
    pub fn new(db: Db, seal_key: &[u8], clock: SharedClock) -> Result<Self, TotpError> {
        Ok(Self {
            db,
            seal: std::sync::Arc::new(TotpSeal::new(seal_key).map_err(|_| TotpError::Sealed)?),
            clock,
        })
    }

    /// The store as a process starts it: [`Self::new`], then every
    /// enrolment still sealed the old way resealed
    /// ([`Self::migrate_legacy_seals`]).
    pub async fn open(
        db: Db,
        seal_key: &[u8],
        audit_key: &[u8],
        clock: SharedClock,
    ) -> Result<Self, TotpError> {
        let store = Self::new(db, seal_key, clock)?;
        let (resealed, unusable) = store.migrate_legacy_seals(audit_key).await?;
        if resealed > 0 || unusable > 0 {
            tracing::info!(
                resealed,
                unusable,
                "TOTP enrolments moved from the HMAC keystream seal to AES-256-GCM"
            );
        }
        Ok(store)
    }

    fn seal(&self, user_id: i64, secret: &[u8]) -> Result<String, TotpError> {
        self.seal
            .seal(user_id, secret)
            .map_err(|_| TotpError::Sealed)
    }

    fn unseal(&self, user_id: i64, sealed: &str) -> Result<Zeroizing<Vec<u8>>, TotpError> {
        let secret = self
            .seal
            .open(user_id, sealed)
            .map_err(|_| TotpError::Sealed)?;
        if secret.len() != SECRET_BYTES {
            return Err(TotpError::Sealed);
        }
        Ok(secret)
    }

    /// Reseals every enrolment still in the first scheme (HMAC keystream under
    /// the audit key) with the AEAD, at start-up, so no row depends on the
    /// audit key afterwards and the verifier never has to read the old form.
    /// Each row is replaced only if it is still the one read (replicas
    /// starting together do no harm). A row that does not open is left as it
    /// is and counted: it fails closed at use, and an admin reset clears it.
    /// Returns (resealed, unusable).
    pub async fn migrate_legacy_seals(
        &self,
        audit_key: &[u8],
    ) -> Result<(usize, usize), TotpError> {
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT user_id, sealed FROM user_totp")
            .fetch_all(&self.db.pool)
            .await?;
        let (mut resealed, mut unusable) = (0, 0);
        for (user_id, old) in rows.into_iter().filter(|(_, s)| !totp_seal::is_current(s)) {
            let Ok(secret) = totp_seal::open_legacy(audit_key, user_id, &old, SECRET_BYTES) else {
                unusable += 1;
                continue;
            };
            let new = self.seal(user_id, &secret)?;
            resealed +=
                sqlx::query("UPDATE user_totp SET sealed = $1 WHERE user_id = $2 AND sealed = $3")
                    .bind(&new)
                    .bind(user_id)
                    .bind(&old)
                    .execute(&self.db.pool)
                    .await?
                    .rows_affected() as usize;
        }
        Ok((resealed, unusable))
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

    struct FixedClock(i64);

    impl crate::clock::Clock for FixedClock {
        fn now(&self) -> chrono::DateTime<chrono::Utc> {
            chrono::DateTime::from_timestamp(self.0, 0).unwrap()
        }
    }

    const NOW: i64 = 1_800_000_000;

    async fn store(dir: &tempfile::TempDir, key: &[u8]) -> TotpStore {
        let url = format!("sqlite://{}", dir.path().join("totp.db").display());
        let db = Db::open(&url).await.unwrap();
        TotpStore::new(db, key, std::sync::Arc::new(FixedClock(NOW))).unwrap()
    }

    fn code_at(secret: &[u8], unix: i64) -> String {
        totp(secret.to_vec(), "").unwrap().generate(unix as u64)
    }

    #[tokio::test]
    async fn enrolment_seals_the_secret_with_the_aead_and_codes_still_verify() {
        let dir = tempfile::tempdir().unwrap();
        let totp_store = store(&dir, &[3; 32]).await;
        let mut conn = totp_store.db.pool.acquire().await.unwrap();
        let new = totp_store.begin(&mut conn, 7, "sup").await.unwrap();
        let secret = totp_rs::Secret::Encoded(new.secret_base32.to_string())
            .to_bytes()
            .unwrap();
        let (sealed,): (String,) = sqlx::query_as("SELECT sealed FROM user_totp WHERE user_id = 7")
            .fetch_one(&totp_store.db.pool)
            .await
            .unwrap();
        assert!(sealed.starts_with("v2:"), "{sealed}");
        assert!(!sealed.contains(&hex::encode(&secret)));
        totp_store
            .verify(&mut conn, 7, &code_at(&secret, NOW), true)
            .await
            .unwrap();
        assert_eq!(totp_store.enrolment(7).await.unwrap(), Enrolment::Active);
        // The row does not open under another key, nor moved to another user.
        let other = TotpStore::new(
            totp_store.db.clone(),
            &[4; 32],
            std::sync::Arc::new(FixedClock(NOW + 30)),
        )
        .unwrap();
        assert!(matches!(
            other
                .verify(&mut conn, 7, &code_at(&secret, NOW + 30), false)
                .await,
            Err(TotpError::Sealed)
        ));
        sqlx::query("UPDATE user_totp SET user_id = 8 WHERE user_id = 7")
            .execute(&totp_store.db.pool)
            .await
            .unwrap();
        assert!(matches!(
            totp_store
                .verify(&mut conn, 8, &code_at(&secret, NOW), false)
                .await,
            Err(TotpError::Sealed)
        ));
    }

    #[tokio::test]
    async fn an_old_scheme_secret_is_resealed_at_start_up_and_keeps_working() {
        let dir = tempfile::tempdir().unwrap();
        let audit_key = [9u8; 32];
        let totp_store = store(&dir, &[3; 32]).await;
        let secret = *b"abcdefghijklmnopqrst";
        let legacy = totp_seal::seal_legacy(&audit_key, 11, &[5; 16], &secret).unwrap();
        for (user, sealed) in [(11, legacy.clone()), (12, "00:11".to_owned())] {
            sqlx::query(
                "INSERT INTO user_totp (user_id, sealed, confirmed, last_step, created_us) VALUES ($1, $2, 1, 0, 0)",
            )
            .bind(user)
            .bind(sealed)
            .execute(&totp_store.db.pool)
            .await
            .unwrap();
        }
        // Before the migration the verifier reads only the AEAD form.
        let mut conn = totp_store.db.pool.acquire().await.unwrap();
        assert!(matches!(
            totp_store
                .verify(&mut conn, 11, &code_at(&secret, NOW), false)
                .await,
            Err(TotpError::Sealed)
        ));
        assert_eq!(
            totp_store.migrate_legacy_seals(&audit_key).await.unwrap(),
            (1, 1)
        );
        let (sealed,): (String,) =
            sqlx::query_as("SELECT sealed FROM user_totp WHERE user_id = 11")
                .fetch_one(&totp_store.db.pool)
                .await
                .unwrap();
        assert!(sealed.starts_with("v2:") && sealed != legacy);
        totp_store
            .verify(&mut conn, 11, &code_at(&secret, NOW), false)
            .await
            .unwrap();
        // A second start finds nothing left to do; the unusable row stays unusable.
        assert_eq!(
            totp_store.migrate_legacy_seals(&audit_key).await.unwrap(),
            (0, 1)
        );
        assert!(matches!(
            totp_store.verify(&mut conn, 12, "123456", false).await,
            Err(TotpError::Sealed)
        ));
    }
}
