//! Console users, and the one writer of the `users` table (single sign-on's
//! provisioning comes through here too). Disabling a user or changing their
//! password revokes every session they hold; the last enabled admin cannot
//! be disabled or demoted. A user name is one name whatever its letter case
//! (`SAM` is `sam`): lookups ignore case and the database refuses twins.

use sqlx::Row as _;

mod provider;

use super::password::{self, Password, PasswordError};
use super::Role;
use crate::clock::SharedClock;
use crate::db::Db;

pub const MAX_USERNAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("usernames are 1-64 characters: letters, digits, '.', '_', '-', '@'")]
    InvalidUsername,
    /// User names are in every audit row and export: never card data.
    #[error("a username must not hold a card number")]
    CardNumber,
    #[error("that username is taken (user names are the same whatever their letter case)")]
    Exists,
    #[error("no such user")]
    NotFound,
    #[error("unknown role; use supervisor, auditor or admin")]
    UnknownRole,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("the last enabled admin cannot be disabled or lose the admin role")]
    LastAdmin,
    #[error("this user signs in with single sign-on: the identity provider owns their role; change their groups there")]
    ProviderOwnsRole,
    #[error("this user signs in with single sign-on and has no local password; pass --allow-sso-user to give them one anyway")]
    SsoUser,
    #[error("the user store failed")]
    Db(#[from] sqlx::Error),
}

impl From<UserError> for crate::web::AppError {
    fn from(e: UserError) -> Self {
        use actix_web::http::StatusCode;
        match e {
            UserError::Db(db) => Self::Db(db),
            UserError::NotFound => {
                Self::refused(StatusCode::NOT_FOUND, "Request refused", e.to_string())
            }
            other => Self::refused(
                StatusCode::BAD_REQUEST,
                "Request refused",
                other.to_string(),
            ),
        }
    }
}

/// A validated username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Self, UserError> {
        let ok = !s.is_empty()
            && s.chars().count() <= MAX_USERNAME_CHARS
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
        if !ok {
            Err(UserError::InvalidUsername)
        } else if crate::guard::contains_card_number(s) {
            Err(UserError::CardNumber)
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as throttles and comparisons key it: lower case (user
    /// names are ASCII).
    pub fn canonical(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

/// Stored instead of a password hash for single sign-on users: no password
/// verifies against it.
pub(crate) const NO_PASSWORD: &str = "!sso";

/// An IANA time zone name this build knows (exact spelling, as listed in
/// `chrono_tz::TZ_VARIANTS`), or `None`.
pub fn parse_time_zone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse::<chrono_tz::Tz>().ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub disabled: bool,
    pub created_us: i64,
    /// The OpenID Provider's subject id when single sign-on created the user.
    pub sso_subject: Option<String>,
    /// The provider (issuer URL) that subject belongs to; None for users
    /// created before issuers were recorded, until their next sign-in.
    pub sso_issuer: Option<String>,
}

/// The result of a sign-in check. Only `Success` signs anyone in.
#[must_use]
#[derive(Debug)]
pub enum AuthResult {
    Success(User),
    UnknownUser,
    BadPassword(User),
    Disabled(User),
}

#[derive(Clone)]
pub struct Users {
    db: Db,
    clock: SharedClock,
}

pub(crate) const COLUMNS: &str =
    "id, username, role, disabled, created_us, sso_subject, sso_issuer";

pub(crate) fn user_from_row(row: &sqlx::any::AnyRow) -> Result<User, sqlx::Error> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode("unknown role in users table".into()))?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        created_us: row.try_get("created_us")?,
        sso_subject: row.try_get("sso_subject")?,
        sso_issuer: row.try_get("sso_issuer")?,
    })
}

/// One user row by id or by name (in any letter case), on `conn`.
pub(super) async fn fetch_user(
    conn: &mut sqlx::AnyConnection,
    bind: UserKey<'_>,
) -> Result<Option<User>, UserError> {
    let q = match bind {
        UserKey::Id(id) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE id = $1"
        )))
        .bind(id),
        UserKey::Name(name) => sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE lower(username) = lower($1)"
        )))
        .bind(name),
    };
    let row = q.fetch_optional(&mut *conn).await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

pub(super) enum UserKey<'a> {
    Id(i64),
    Name(&'a str),
}

pub(super) fn unique_violation(e: sqlx::Error) -> UserError {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => UserError::Exists,
        e => e.into(),
    }
}

/// A new password, checked against the policy and hashed (before any
/// transaction opens: hashing is slow).
pub async fn new_password_hash(password: &Password) -> Result<String, UserError> {
    password.check_policy()?;
    Ok(password::hash(password).await?)
}

impl Users {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// Adds a user (unaudited: set-up and tests; audited changes use `add_in`).
    pub async fn add(
        &self,
        username: &Username,
        password: &Password,
        role: Role,
    ) -> Result<User, UserError> {
        let hash = new_password_hash(password).await?;
        let mut conn = self.db.pool.acquire().await?;
        self.add_in(&mut conn, username, &hash, role).await
    }

    /// Adds a user with an already hashed password, on `conn` (an audited
    /// change's transaction).
    pub async fn add_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        username: &Username,
        password_hash: &str,
        role: Role,
    ) -> Result<User, UserError> {
        let now = self.clock.now_us();
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, disabled, created_us, updated_us) VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(username.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(unique_violation)?;
        fetch_user(conn, UserKey::Name(username.as_str()))
            .await?
            .ok_or(UserError::NotFound)
    }

    pub async fn list(&self) -> Result<Vec<User>, UserError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users ORDER BY username"
        )))
        .fetch_all(&self.db.pool)
        .await?;
        Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
    }

    pub async fn by_name(&self, username: &str) -> Result<Option<User>, UserError> {
        let mut conn = self.db.pool.acquire().await?;
        fetch_user(&mut conn, UserKey::Name(username)).await
    }

    pub async fn by_id(&self, id: i64) -> Result<Option<User>, UserError> {
        let mut conn = self.db.pool.acquire().await?;
        fetch_user(&mut conn, UserKey::Id(id)).await
    }

    /// Checks a sign-in. Unknown users cost the same work as known ones.
    pub async fn authenticate(
        &self,
        username: &str,
        password: &Password,
    ) -> Result<AuthResult, UserError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS}, password_hash FROM users WHERE lower(username) = lower($1)"
        )))
        .bind(username)
        .fetch_optional(&self.db.pool)
        .await?;
        let Some(row) = row else {
            password::dummy_verify(password).await;
            return Ok(AuthResult::UnknownUser);
        };
        let user = user_from_row(&row)?;
        let stored: String = row.try_get("password_hash")?;
        Ok(
            match (password::verify(password, &stored).await, user.disabled) {
                (false, _) => AuthResult::BadPassword(user),
                (true, true) => AuthResult::Disabled(user),
                (true, false) => AuthResult::Success(user),
            },
        )
    }

    async fn guard_last_admin(
        conn: &mut sqlx::AnyConnection,
        user: &User,
    ) -> Result<(), UserError> {
        if user.role != Role::Admin || user.disabled {
            return Ok(());
        }
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(&mut *conn)
                .await?;
        if n <= 1 {
            return Err(UserError::LastAdmin);
        }
        Ok(())
    }

    /// Unaudited (tests); audited changes use `set_disabled_in`.
    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<User, UserError> {
        let mut conn = self.db.pool.acquire().await?;
        self.set_disabled_in(&mut conn, id, disabled).await
    }

    pub async fn set_disabled_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
        disabled: bool,
    ) -> Result<User, UserError> {
        let user = fetch_user(conn, UserKey::Id(id))
            .await?
            .ok_or(UserError::NotFound)?;
        if disabled {
            Self::guard_last_admin(conn, &user).await?;
        }
        sqlx::query("UPDATE users SET disabled = $1, updated_us = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(self.clock.now_us())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        if disabled {
            Self::revoke_sessions_in(conn, id).await?;
        }
        fetch_user(conn, UserKey::Id(id))
            .await?
            .ok_or(UserError::NotFound)
    }

    /// An admin's role change. A single sign-on user's role is the
    /// provider's (their next sign-in would overwrite it): refused.
    pub async fn set_role_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
        role: Role,
    ) -> Result<User, UserError> {
        let user = fetch_user(conn, UserKey::Id(id))
            .await?
            .ok_or(UserError::NotFound)?;
        if user.sso_subject.is_some() {
            return Err(UserError::ProviderOwnsRole);
        }
        self.change_role_in(conn, user, role).await
    }

    pub(super) async fn change_role_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        user: User,
        role: Role,
    ) -> Result<User, UserError> {
        let id = user.id;
        if role != Role::Admin {
            Self::guard_last_admin(conn, &user).await?;
        }
        sqlx::query("UPDATE users SET role = $1, updated_us = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(self.clock.now_us())
            .bind(id)
            .execute(&mut *conn)
            .await?;
        // A role change takes effect at once: old sessions carry old privileges.
        Self::revoke_sessions_in(conn, id).await?;
        fetch_user(conn, UserKey::Id(id))
            .await?
            .ok_or(UserError::NotFound)
    }

    /// Unaudited (tests); audited changes use `set_password_in`.
    pub async fn set_password(&self, id: i64, password: &Password) -> Result<(), UserError> {
        let hash = new_password_hash(password).await?;
        let mut conn = self.db.pool.acquire().await?;
        self.set_password_in(&mut conn, id, &hash, false).await
    }

    /// Sets an already hashed password, on `conn`; ends the user's sessions.
    /// A single sign-on user gets one only when `allow_sso_user` says an
    /// admin means it (a local password is a way around the provider).
    pub async fn set_password_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: i64,
        password_hash: &str,
        allow_sso_user: bool,
    ) -> Result<(), UserError> {
        let user = fetch_user(conn, UserKey::Id(id))
            .await?
            .ok_or(UserError::NotFound)?;
        if user.sso_subject.is_some() && !allow_sso_user {
            return Err(UserError::SsoUser);
        }
        let n = sqlx::query("UPDATE users SET password_hash = $1, updated_us = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(self.clock.now_us())
            .bind(id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(UserError::NotFound);
        }
        Self::revoke_sessions_in(conn, id).await
    }

    /// The time zone the user reads times in (UTC when none was chosen, or
    /// when the stored name is no longer a zone this build knows).
    pub async fn time_zone(&self, user_id: i64) -> Result<chrono_tz::Tz, UserError> {
        let zone: Option<(Option<String>,)> =
            sqlx::query_as("SELECT time_zone FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(zone
            .and_then(|(z,)| z)
            .and_then(|z| parse_time_zone(&z))
            .unwrap_or(chrono_tz::Tz::UTC))
    }

    /// Sets the user's time zone on `conn` (an audited change's
    /// transaction); UTC is stored as NULL. The previous zone's name.
    pub async fn set_time_zone_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
        zone: chrono_tz::Tz,
    ) -> Result<String, UserError> {
        let before: Option<(Option<String>,)> =
            sqlx::query_as("SELECT time_zone FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((before,)) = before else {
            return Err(UserError::NotFound);
        };
        let stored = (zone != chrono_tz::Tz::UTC).then(|| zone.name().to_owned());
        sqlx::query("UPDATE users SET time_zone = $1, updated_us = $2 WHERE id = $3")
            .bind(stored)
            .bind(self.clock.now_us())
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        Ok(before.unwrap_or_else(|| "UTC".to_owned()))
    }

    pub async fn revoke_sessions(&self, user_id: i64) -> Result<(), UserError> {
        let mut conn = self.db.pool.acquire().await?;
        Self::revoke_sessions_in(&mut conn, user_id).await
    }

    async fn revoke_sessions_in(
        conn: &mut sqlx::AnyConnection,
        user_id: i64,
    ) -> Result<(), UserError> {
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_plain_identifiers() {
        assert!(Username::parse("sam.supervisor@example").is_ok());
        for bad in ["", "a b", "<script>", "x\n", &"a".repeat(65), "ünï"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones_are_iana_names_only() {
        assert_eq!(
            parse_time_zone("Europe/Paris"),
            Some(chrono_tz::Tz::Europe__Paris)
        );
        assert_eq!(parse_time_zone("UTC"), Some(chrono_tz::Tz::UTC));
        for bad in [
            "",
            "Mars/Olympus",
            "europe/paris",
            " UTC",
            "<b>",
            "Europe/Paris\n",
            "../etc/passwd",
        ] {
            assert!(parse_time_zone(bad).is_none(), "{bad:?}");
        }
    }
}
