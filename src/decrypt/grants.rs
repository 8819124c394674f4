//! A reveal happens once. The admission commits the reveal's audit row and
//! a single-use grant in one transaction; the value is decrypted and shown
//! only when the grant is used, by the same person in the same sign-in,
//! within [`GRANT_TTL`]. A reload or a second tab finds it used (no decrypt,
//! no row). The grant holds the ciphertext and the reveal's audit words,
//! never a value, and lives in the database, so it works across replicas.

use std::time::Duration;

use rand::TryRngCore as _;

use crate::clock::SharedClock;
use crate::db::Db;

/// How long an admitted reveal waits to be shown.
pub const GRANT_TTL: Duration = Duration::from_secs(60);

/// How many times a shown value's page may be kept open one more showing
/// (`CALLVAULT_REVEAL_SHOW_SECS` each time).
pub const MAX_EXTENSIONS: i64 = 2;

/// One admitted reveal, waiting to be shown.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Grant {
    pub id: String,
    pub user_id: i64,
    pub generation: String,
    pub actor: String,
    pub role: String,
    pub contact_id: String,
    /// The contact whose context the message is bound to (the contact, or
    /// its initial contact after a transfer).
    pub bound_to: String,
    pub initial_contact_id: String,
    pub field: String,
    pub reason: String,
    pub case_ref: String,
    /// The ciphertext, as stored.
    pub stored_value: String,
    /// 1 when it is bound to the reference solution's fixed context.
    pub legacy: i64,
    /// How the value was captured: `lex` or `keypad` ([`super::keypad::Capture`]).
    pub capture: String,
    pub audit_seq: i64,
    /// The request whose audit row admitted it.
    pub request_id: String,
    pub created_us: i64,
    pub expires_us: i64,
    pub used_us: i64,
}

/// Why a grant cannot be used (never says more to someone it is not for).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error("there is no such reveal")]
    NotFound,
    #[error("this value was already shown")]
    Used,
    #[error("this reveal expired before it was shown")]
    Expired,
    #[error("the reveal store failed")]
    Db(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, user_id, generation, actor, role, contact_id, bound_to, initial_contact_id, field, reason, case_ref, stored_value, legacy, capture, audit_seq, request_id, created_us, expires_us, used_us";

/// Grant ids are 128 random bits in hex; anything else is not looked up.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub fn new_id() -> Result<String, sqlx::Error> {
    let mut raw = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| sqlx::Error::Protocol(format!("no randomness: {e}")))?;
    Ok(hex::encode(raw))
}

#[derive(Clone)]
pub struct Grants {
    db: Db,
    clock: SharedClock,
}

impl Grants {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// Writes `grant` on `conn` (the transaction its audit row commits in).
    pub async fn create(conn: &mut sqlx::AnyConnection, grant: &Grant) -> Result<(), sqlx::Error> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO reveal_grants ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
        )))
        .bind(&grant.id)
        .bind(grant.user_id)
        .bind(&grant.generation)
        .bind(&grant.actor)
        .bind(&grant.role)
        .bind(&grant.contact_id)
        .bind(&grant.bound_to)
        .bind(&grant.initial_contact_id)
        .bind(&grant.field)
        .bind(&grant.reason)
        .bind(&grant.case_ref)
        .bind(&grant.stored_value)
        .bind(grant.legacy)
        .bind(&grant.capture)
        .bind(grant.audit_seq)
        .bind(&grant.request_id)
        .bind(grant.created_us)
        .bind(grant.expires_us)
        .bind(grant.used_us)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Uses grant `id` for `user_id` in sign-in `generation`: exactly once,
    /// before it expires. Spent grants lose their ciphertext.
    pub async fn consume(
        &self,
        id: &str,
        user_id: i64,
        generation: &str,
    ) -> Result<Grant, GrantError> {
        if !valid_id(id) {
            return Err(GrantError::NotFound);
        }
        let now = self.clock.now_us();
        let mut conn = self.db.pool.acquire().await?;
        let grant: Option<Grant> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reveal_grants WHERE id = $1 AND user_id = $2 AND generation = $3 AND generation <> ''"
        )))
        .bind(id)
        .bind(user_id)
        .bind(generation)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(grant) = grant else {
            return Err(GrantError::NotFound);
        };
        let used = sqlx::query(
            "UPDATE reveal_grants SET used_us = $1, stored_value = '' \
             WHERE id = $2 AND used_us = 0 AND expires_us > $1",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        match used {
            1 => Ok(grant),
            _ if grant.used_us != 0 => Err(GrantError::Used),
            _ if grant.expires_us <= now => Err(GrantError::Expired),
            _ => Err(GrantError::Used),
        }
    }

    /// Forgets grant `id` once its value failed to decrypt: there is no
    /// page to keep open, and nothing to show.
    pub async fn forget(&self, id: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM reveal_grants WHERE id = $1")
            .bind(id)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Keeps the page of shown grant `id` open one more showing of
    /// `show_for_us`, on `conn` (the transaction its row commits in): only
    /// for its own person and sign-in, while the page is still open, at
    /// most [`MAX_EXTENSIONS`] times. Nothing is decrypted or shown again;
    /// the page only moves its countdown. The grant (no value in it) and
    /// how often it is now kept open.
    pub async fn extend(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &str,
        user_id: i64,
        generation: &str,
        show_for_us: i64,
    ) -> Result<(Grant, i64), ExtendError> {
        if !valid_id(id) {
            return Err(ExtendError::NotFound);
        }
        let now = self.clock.now_us();
        let extended = sqlx::query(
            "UPDATE reveal_grants SET extensions = extensions + 1 \
             WHERE id = $1 AND user_id = $2 AND generation = $3 AND generation <> '' AND used_us > 0 \
             AND extensions < $4 AND used_us + (extensions + 1) * $5 > $6",
        )
        .bind(id)
        .bind(user_id)
        .bind(generation)
        .bind(MAX_EXTENSIONS)
        .bind(show_for_us)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let grant: Option<Grant> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reveal_grants WHERE id = $1 AND user_id = $2 AND generation = $3 AND generation <> ''"
        )))
        .bind(id)
        .bind(user_id)
        .bind(generation)
        .fetch_optional(&mut *conn)
        .await?;
        let (n,): (i64,) = sqlx::query_as("SELECT extensions FROM reveal_grants WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| match e {
                sqlx::Error::RowNotFound => ExtendError::NotFound,
                e => e.into(),
            })?;
        match grant {
            Some(g) if g.used_us == 0 => Err(ExtendError::NotFound),
            Some(g) if extended == 1 => Ok((g, n)),
            Some(_) if n >= MAX_EXTENSIONS => Err(ExtendError::Limit),
            Some(_) => Err(ExtendError::Closed),
            None => Err(ExtendError::NotFound),
        }
    }
}

/// Why a shown value's page was not kept open longer.
#[derive(Debug, thiserror::Error)]
pub enum ExtendError {
    /// No such shown value for this person and sign-in.
    #[error("there is no such shown value")]
    NotFound,
    #[error("the value's page has closed")]
    Closed,
    #[error("the value's page was kept open as often as it may be")]
    Limit,
    #[error("the reveal store failed")]
    Db(#[from] sqlx::Error),
}
