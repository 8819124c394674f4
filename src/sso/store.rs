//! What single sign-on keeps in the database: users it created (by the
//! provider's subject id, their role kept in step with the claim) and the
//! admin's "local sign-in for admins only" setting.

use sha2::Digest as _;

use crate::auth::users::{user_from_row, User, UserError, Username, COLUMNS};
use crate::auth::Role;
use crate::clock::SharedClock;
use crate::db::Db;

/// `console_settings` row: "admins_only" turns local sign-in off for
/// everyone but admins (break-glass); anything else leaves it on.
pub const LOCAL_SIGN_IN_SETTING: &str = "local_sign_in";

/// Stored instead of a password hash for SSO users: no password verifies.
const NO_PASSWORD: &str = "!sso";

#[derive(Clone)]
pub struct SsoStore {
    db: Db,
    clock: SharedClock,
}

/// What a sign-in did to the user record.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Provisioned {
    Created(User),
    RoleChanged { user: User, from: Role },
    Unchanged(User),
}

impl Provisioned {
    pub fn user(&self) -> &User {
        match self {
            Self::Created(u) | Self::Unchanged(u) => u,
            Self::RoleChanged { user, .. } => user,
        }
    }
}

impl SsoStore {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    pub async fn by_subject(&self, subject: &str) -> Result<Option<User>, UserError> {
        let mut conn = self.db.pool.acquire().await?;
        by_subject_in(&mut conn, subject).await
    }

    /// On `conn` (an audited change): the user for `subject`, created with
    /// `role` if new, given `role` if it differs (ending their other
    /// sessions). A disabled user stays disabled; the caller refuses them.
    pub async fn provision_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        subject: &str,
        display_name: Option<&str>,
        role: Role,
    ) -> Result<Provisioned, UserError> {
        let now = self.clock.now_us();
        if let Some(user) = by_subject_in(conn, subject).await? {
            if user.role == role {
                return Ok(Provisioned::Unchanged(user));
            }
            if user.role == Role::Admin && !user.disabled {
                let (admins,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0",
                )
                .fetch_one(&mut *conn)
                .await?;
                if admins <= 1 {
                    return Err(UserError::LastAdmin);
                }
            }
            sqlx::query("UPDATE users SET role = $1, updated_us = $2 WHERE id = $3")
                .bind(role.as_str())
                .bind(now)
                .bind(user.id)
                .execute(&mut *conn)
                .await?;
            // Sessions holding the old role end now.
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(user.id)
                .execute(&mut *conn)
                .await?;
            let from = user.role;
            let user = by_subject_in(conn, subject)
                .await?
                .ok_or(UserError::NotFound)?;
            return Ok(Provisioned::RoleChanged { user, from });
        }
        let username = self.free_username(conn, subject, display_name).await?;
        let result = sqlx::query(
            "INSERT INTO users (username, password_hash, role, disabled, created_us, updated_us, sso_subject) \
             VALUES ($1, $2, $3, 0, $4, $4, $5)",
        )
        .bind(username.as_str())
        .bind(NO_PASSWORD)
        .bind(role.as_str())
        .bind(now)
        .bind(subject)
        .execute(&mut *conn)
        .await;
        match result {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(UserError::Exists)
            }
            Err(e) => return Err(e.into()),
            Ok(_) => {}
        }
        let user = by_subject_in(conn, subject)
            .await?
            .ok_or(UserError::NotFound)?;
        Ok(Provisioned::Created(user))
    }

    /// The provider's name for the person if it is a valid username nobody
    /// holds (never a local account's: that would hand it over), else
    /// `sso-` and a digest of the subject.
    async fn free_username(
        &self,
        conn: &mut sqlx::AnyConnection,
        subject: &str,
        display_name: Option<&str>,
    ) -> Result<Username, UserError> {
        let digest = hex::encode(sha2::Sha256::digest(subject.as_bytes()));
        let candidates = display_name
            .and_then(|n| Username::parse(n).ok())
            .into_iter()
            .chain([8usize, 16, 64].into_iter().filter_map(|n| {
                Username::parse(&format!("sso-{}", digest.get(..n).unwrap_or(&digest))).ok()
            }));
        for candidate in candidates {
            let (taken,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM users WHERE username = $1")
                .bind(candidate.as_str())
                .fetch_one(&mut *conn)
                .await?;
            if taken == 0 {
                return Ok(candidate);
            }
        }
        Err(UserError::Exists)
    }

    /// Is local (password) sign-in limited to admins?
    pub async fn local_sign_in_admins_only(&self) -> Result<bool, UserError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT value FROM console_settings WHERE name = $1")
                .bind(LOCAL_SIGN_IN_SETTING)
                .fetch_optional(&self.db.pool)
                .await?;
        Ok(row.is_some_and(|(v,)| v == "admins_only"))
    }

    /// On `conn`: an audited change's transaction.
    pub async fn set_local_sign_in_admins_only(
        &self,
        conn: &mut sqlx::AnyConnection,
        admins_only: bool,
    ) -> Result<(), UserError> {
        sqlx::query(
            "INSERT INTO console_settings (name, value, updated_us) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_us = excluded.updated_us",
        )
        .bind(LOCAL_SIGN_IN_SETTING)
        .bind(if admins_only { "admins_only" } else { "all" })
        .bind(self.clock.now_us())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

async fn by_subject_in(
    conn: &mut sqlx::AnyConnection,
    subject: &str,
) -> Result<Option<User>, UserError> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users WHERE sso_subject = $1"
    ));
    let row = sqlx::query(sql)
        .bind(subject)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::OffsetClock;

    async fn store() -> (SsoStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Db::open(&url).await.unwrap();
        (SsoStore::new(db, Arc::new(OffsetClock::default())), dir)
    }

    #[tokio::test]
    async fn a_new_subject_becomes_a_user_and_a_changed_claim_changes_the_role() {
        let (s, _dir) = store().await;
        let mut conn = s.db.pool.acquire().await.unwrap();
        let p = s
            .provision_in(&mut conn, "sub-1", Some("kim"), Role::Supervisor)
            .await
            .unwrap();
        let Provisioned::Created(u) = p else {
            panic!("{p:?}")
        };
        assert_eq!((u.username.as_str(), u.role), ("kim", Role::Supervisor));
        assert_eq!(u.sso_subject.as_deref(), Some("sub-1"));
        let p = s
            .provision_in(&mut conn, "sub-1", Some("kim"), Role::Supervisor)
            .await
            .unwrap();
        assert!(matches!(p, Provisioned::Unchanged(_)));
        let p = s
            .provision_in(&mut conn, "sub-1", Some("kim"), Role::Auditor)
            .await
            .unwrap();
        assert!(
            matches!(&p, Provisioned::RoleChanged { user, from: Role::Supervisor } if user.role == Role::Auditor),
            "{p:?}"
        );
    }

    #[tokio::test]
    async fn a_taken_or_invalid_name_falls_back_to_a_digest_of_the_subject() {
        let (s, _dir) = store().await;
        let mut conn = s.db.pool.acquire().await.unwrap();
        let a = s
            .provision_in(&mut conn, "sub-a", Some("root"), Role::Admin)
            .await
            .unwrap();
        let b = s
            .provision_in(&mut conn, "sub-b", Some("root"), Role::Auditor)
            .await
            .unwrap();
        let c = s
            .provision_in(&mut conn, "sub-c", Some("<script>"), Role::Auditor)
            .await
            .unwrap();
        assert_eq!(a.user().username, "root");
        assert!(b.user().username.starts_with("sso-"));
        assert!(c.user().username.starts_with("sso-"));
        assert_ne!(b.user().username, c.user().username);
    }

    #[tokio::test]
    async fn the_last_admin_keeps_the_role_when_the_claim_drops_it() {
        let (s, _dir) = store().await;
        let mut conn = s.db.pool.acquire().await.unwrap();
        let _ = s
            .provision_in(&mut conn, "only-admin", None, Role::Admin)
            .await
            .unwrap();
        let e = s
            .provision_in(&mut conn, "only-admin", None, Role::Supervisor)
            .await
            .unwrap_err();
        assert!(matches!(e, UserError::LastAdmin));
    }

    #[tokio::test]
    async fn local_sign_in_is_open_until_an_admin_limits_it() {
        let (s, _dir) = store().await;
        assert!(!s.local_sign_in_admins_only().await.unwrap());
        let mut conn = s.db.pool.acquire().await.unwrap();
        s.set_local_sign_in_admins_only(&mut conn, true)
            .await
            .unwrap();
        assert!(s.local_sign_in_admins_only().await.unwrap());
        s.set_local_sign_in_admins_only(&mut conn, false)
            .await
            .unwrap();
        assert!(!s.local_sign_in_admins_only().await.unwrap());
    }
}
