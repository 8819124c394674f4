//! The users single sign-on provisions: found by the provider's issuer and
//! subject, created without a password, their role set from the claim. Part
//! of `auth::users`, the one writer of the users table, so the same rules
//! (unique names whatever their case, the last enabled admin) hold for them.

use super::{
    fetch_user, unique_violation, user_from_row, User, UserError, UserKey, Username, Users,
    COLUMNS, NO_PASSWORD,
};
use crate::auth::Role;

impl Users {
    /// Whether a user holds `username` in any letter case, on `conn`.
    pub async fn name_taken_in(
        conn: &mut sqlx::AnyConnection,
        username: &Username,
    ) -> Result<bool, UserError> {
        Ok(fetch_user(conn, UserKey::Name(username.as_str()))
            .await?
            .is_some())
    }

    /// The user single sign-on created for `subject` at `issuer`, on
    /// `conn`. A user recorded before issuers were kept (no issuer yet) is
    /// that subject's too, and is bound to `issuer` now.
    pub async fn by_sso_subject_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, UserError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM users WHERE sso_subject = $1 \
             AND (sso_issuer = $2 OR sso_issuer IS NULL) ORDER BY sso_issuer IS NULL LIMIT 1"
        )))
        .bind(subject)
        .bind(issuer)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(user) = row.as_ref().map(user_from_row).transpose()? else {
            return Ok(None);
        };
        if user.sso_issuer.is_none() {
            sqlx::query(
                "UPDATE users SET sso_issuer = $1, updated_us = $2 WHERE id = $3 AND sso_issuer IS NULL",
            )
            .bind(issuer)
            .bind(self.clock.now_us())
            .bind(user.id)
            .execute(&mut *conn)
            .await
            .map_err(unique_violation)?;
            return fetch_user(conn, UserKey::Id(user.id)).await;
        }
        Ok(Some(user))
    }

    /// Adds a user for `subject` at `issuer`, with no password, on `conn`
    /// (an audited change's transaction).
    pub async fn add_sso_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        username: &Username,
        role: Role,
        issuer: &str,
        subject: &str,
    ) -> Result<User, UserError> {
        let now = self.clock.now_us();
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, disabled, created_us, updated_us, sso_subject, sso_issuer) \
             VALUES ($1, $2, $3, 0, $4, $4, $5, $6)",
        )
        .bind(username.as_str())
        .bind(NO_PASSWORD)
        .bind(role.as_str())
        .bind(now)
        .bind(subject)
        .bind(issuer)
        .execute(&mut *conn)
        .await
        .map_err(unique_violation)?;
        fetch_user(conn, UserKey::Name(username.as_str()))
            .await?
            .ok_or(UserError::NotFound)
    }

    /// The role the provider's claim gives a single sign-on user, on `conn`
    /// (the sign-in's audited change); the same last-admin rule.
    pub async fn set_role_from_provider_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        user: &User,
        role: Role,
    ) -> Result<User, UserError> {
        self.change_role_in(conn, user.clone(), role).await
    }
}
