//! actix-session's `SessionStore` over the console's own database.
//!
//! The cookie holds a random 256-bit key; the table holds only its SHA-256, so
//! a copy of the database does not let anyone resume a session. Expiry uses the
//! app's clock. A session that was revoked (deleted) is never re-created by a
//! late update.

use std::collections::HashMap;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time::Duration;
use base64::Engine as _;
use rand::TryRngCore as _;
use sha2::{Digest, Sha256};

use crate::clock::SharedClock;
use crate::db::Db;

pub const USER_ID_KEY: &str = "uid";
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "callvault_session";
/// A marker that this browser's session was signed in (set at sign-in,
/// removed at sign-out; it holds nothing else), so that a sign-in page
/// reached without a session says "your session ended" only when one did.
pub const SIGNED_IN_COOKIE: &str = "callvault_signed_in";

/// The signed-in marker, as set at sign-in.
pub fn signed_in_marker(secure: bool) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(SIGNED_IN_COOKIE, "1")
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(actix_web::cookie::SameSite::Strict)
        .finish()
}
/// Idle-timeout extensions smaller than this are not written.
const TTL_SLACK_US: i64 = 60_000_000;

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    clock: SharedClock,
}

impl DbSessionStore {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// Deletes expired sessions; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        Ok(sqlx::query("DELETE FROM sessions WHERE expires_us <= $1")
            .bind(self.clock.now_us())
            .execute(&self.db.pool)
            .await?
            .rows_affected())
    }

    fn expires(&self, ttl: &Duration) -> i64 {
        self.clock
            .now_us()
            .saturating_add(i64::try_from(ttl.whole_microseconds()).unwrap_or(i64::MAX))
    }
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// actix-session stores values JSON-encoded; the user id is a JSON number.
fn user_id(state: &HashMap<String, String>) -> Option<i64> {
    state.get(USER_ID_KEY).and_then(|v| v.parse().ok())
}

fn new_key() -> Result<String, anyhow::Error> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.try_fill_bytes(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

impl SessionStore for DbSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT state, expires_us FROM sessions WHERE key_hash = $1")
                .bind(key_hash(session_key.as_ref()))
                .fetch_optional(&self.db.pool)
                .await
                .map_err(|e| LoadError::Other(e.into()))?;
        match row {
            Some((_, expires)) if expires <= self.clock.now_us() => Ok(None),
            Some((state, _)) => serde_json::from_str(&state)
                .map(Some)
                .map_err(|e| LoadError::Deserialization(e.into())),
            None => Ok(None),
        }
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, SaveError> {
        let key = new_key().map_err(SaveError::Other)?;
        let state = serde_json::to_string(&session_state)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        sqlx::query(
            "INSERT INTO sessions (key_hash, user_id, state, expires_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(key_hash(&key))
        .bind(user_id(&session_state))
        .bind(state)
        .bind(self.expires(ttl))
        .execute(&self.db.pool)
        .await
        .map_err(|e| SaveError::Other(e.into()))?;
        SessionKey::try_from(key).map_err(|e| SaveError::Other(e.into()))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        ttl: &Duration,
    ) -> Result<SessionKey, UpdateError> {
        let state = serde_json::to_string(&session_state)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        // No row (revoked or expired meanwhile): do not resurrect it. The
        // client keeps a key that no longer loads, i.e. it is signed out.
        sqlx::query("UPDATE sessions SET user_id = $1, state = $2, expires_us = $3 WHERE key_hash = $4 AND expires_us > $5")
            .bind(user_id(&session_state))
            .bind(state)
            .bind(self.expires(ttl))
            .bind(key_hash(session_key.as_ref()))
            .bind(self.clock.now_us())
            .execute(&self.db.pool)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        Ok(session_key)
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &Duration,
    ) -> Result<(), anyhow::Error> {
        // Extending by less than a minute is skipped: the statement then
        // changes no row, and the database writes (and syncs) nothing.
        let expires = self.expires(ttl);
        let result = sqlx::query(
            "UPDATE sessions SET expires_us = $1 WHERE key_hash = $2 AND expires_us > $3 AND expires_us < $4",
        )
        .bind(expires)
        .bind(key_hash(session_key.as_ref()))
        .bind(self.clock.now_us())
        .bind(expires - TTL_SLACK_US)
        .execute(&self.db.pool)
        .await;
        // Not extending a session only shortens it (fail-safe). Failing the
        // request here would replace the console's own error page (the
        // audit store is usually the same database) with a bare 500.
        if let Err(e) = result {
            tracing::warn!(error = %e, "session expiry not extended: the session store failed");
        }
        Ok(())
    }

    async fn delete(&self, session_key: &SessionKey) -> Result<(), anyhow::Error> {
        sqlx::query("DELETE FROM sessions WHERE key_hash = $1")
            .bind(key_hash(session_key.as_ref()))
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }
}
