//! What single sign-on keeps in the database: users it created (by the
//! provider's issuer and subject id, their role kept in step with the
//! claim, written through `auth::users`, the one writer of the users table),
//! the single-use hand-offs of the second hop, and the admin's "local sign-in
//! for admins only" setting.

use sha2::Digest as _;

use crate::auth::users::{User, UserError, Username, Users};
use crate::auth::Role;
use crate::clock::SharedClock;
use crate::db::Db;

/// `console_settings` row: "admins_only" turns local sign-in off for
/// everyone but admins (break-glass); anything else leaves it on.
pub const LOCAL_SIGN_IN_SETTING: &str = "local_sign_in";

#[derive(Clone)]
pub struct SsoStore {
    db: Db,
    users: Users,
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

/// Who the provider vouched for: its issuer and subject, and a name it offered.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub display_name: Option<&'a str>,
}

fn digest(value: &str) -> String {
    hex::encode(sha2::Sha256::digest(value.as_bytes()))
}

impl SsoStore {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self {
            users: Users::new(db.clone(), clock.clone()),
            db,
            clock,
        }
    }

    pub async fn by_subject(&self, issuer: &str, subject: &str) -> Result<Option<User>, UserError> {
        let mut conn = self.db.pool.acquire().await?;
        self.users
            .by_sso_subject_in(&mut conn, issuer, subject)
            .await
    }

    /// On `conn` (an audited change): the user for the identity, created with
    /// `role` if new, given `role` if it differs (ending their other
    /// sessions; never the last enabled admin's). A disabled user stays
    /// disabled; the caller refuses them.
    pub async fn provision_in(
        &self,
        conn: &mut sqlx::AnyConnection,
        who: Identity<'_>,
        role: Role,
    ) -> Result<Provisioned, UserError> {
        if let Some(user) = self
            .users
            .by_sso_subject_in(conn, who.issuer, who.subject)
            .await?
        {
            if user.role == role {
                return Ok(Provisioned::Unchanged(user));
            }
            let from = user.role;
            let user = self
                .users
                .set_role_from_provider_in(conn, &user, role)
                .await?;
            return Ok(Provisioned::RoleChanged { user, from });
        }
        let username = self.free_username(conn, who).await?;
        let user = self
            .users
            .add_sso_in(conn, &username, role, who.issuer, who.subject)
            .await?;
        Ok(Provisioned::Created(user))
    }

    /// The provider's name for the person if it is a valid username nobody
    /// holds in any letter case (never a local account's: that would hand it
    /// over; never a twin of one), else `sso-` and a digest of the subject.
    async fn free_username(
        &self,
        conn: &mut sqlx::AnyConnection,
        who: Identity<'_>,
    ) -> Result<Username, UserError> {
        let digest = digest(&format!("{}\n{}", who.issuer, who.subject));
        let candidates = who
            .display_name
            .and_then(|n| Username::parse(n).ok())
            .into_iter()
            .chain([8usize, 16, 64].into_iter().filter_map(|n| {
                Username::parse(&format!("sso-{}", digest.get(..n).unwrap_or(&digest))).ok()
            }));
        for candidate in candidates {
            if !Users::name_taken_in(conn, &candidate).await? {
                return Ok(candidate);
            }
        }
        Err(UserError::Exists)
    }

    /// Records a single-use hand-off `id` (kept as its digest) valid until
    /// `expires_us`; forgets expired ones.
    pub async fn issue_handoff(&self, id: &str, expires_us: i64) -> Result<(), UserError> {
        let now = self.clock.now_us();
        sqlx::query("DELETE FROM sso_handoffs WHERE expires_us < $1")
            .bind(now)
            .execute(&self.db.pool)
            .await?;
        sqlx::query("INSERT INTO sso_handoffs (handoff, expires_us) VALUES ($1, $2)")
            .bind(digest(id))
            .bind(expires_us)
            .execute(&self.db.pool)
            .await?;
        Ok(())
    }

    /// Uses up the hand-off `id`: true for the first caller while it is
    /// valid, false ever after (one DELETE, so two replicas cannot both win).
    pub async fn consume_handoff(&self, id: &str) -> Result<bool, UserError> {
        let n = sqlx::query("DELETE FROM sso_handoffs WHERE handoff = $1 AND expires_us >= $2")
            .bind(digest(id))
            .bind(self.clock.now_us())
            .execute(&self.db.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
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

    const ISSUER: &str = "https://idp.example.test";

    fn who<'a>(subject: &'a str, display_name: Option<&'a str>) -> Identity<'a> {
        Identity {
            issuer: ISSUER,
            subject,
            display_name,
        }
    }

    #[tokio::test]
    async fn a_new_subject_becomes_a_user_and_a_changed_claim_changes_the_role() {
        let (s, _dir) = store().await;
        let mut conn = s.db.pool.acquire().await.unwrap();
        let p = s
            .provision_in(&mut conn, who("sub-1", Some("kim")), Role::Supervisor)
            .await
            .unwrap();
        let Provisioned::Created(u) = p else {
            panic!("{p:?}")
        };
        assert_eq!((u.username.as_str(), u.role), ("kim", Role::Supervisor));
        assert_eq!(u.sso_subject.as_deref(), Some("sub-1"));
        let p = s
            .provision_in(&mut conn, who("sub-1", Some("kim")), Role::Supervisor)
            .await
            .unwrap();
        assert!(matches!(p, Provisioned::Unchanged(_)));
        let p = s
            .provision_in(&mut conn, who("sub-1", Some("kim")), Role::Auditor)
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
            .provision_in(&mut conn, who("sub-a", Some("root")), Role::Admin)
            .await
            .unwrap();
        let b = s
            .provision_in(&mut conn, who("sub-b", Some("root")), Role::Auditor)
            .await
            .unwrap();
        let c = s
            .provision_in(&mut conn, who("sub-c", Some("<script>")), Role::Auditor)
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
            .provision_in(&mut conn, who("only-admin", None), Role::Admin)
            .await
            .unwrap();
        let e = s
            .provision_in(&mut conn, who("only-admin", None), Role::Supervisor)
            .await
            .unwrap_err();
        assert!(matches!(e, UserError::LastAdmin));
    }

    #[tokio::test]
    async fn a_provider_name_never_makes_a_twin_of_an_existing_user() {
        let (s, _dir) = store().await;
        let users = Users::new(s.db.clone(), s.clock.clone());
        let mut conn = s.db.pool.acquire().await.unwrap();
        users
            .add_in(
                &mut conn,
                &Username::parse("root").unwrap(),
                "x",
                Role::Admin,
            )
            .await
            .unwrap();
        for name in ["Root", "ROOT", "rOOt"] {
            let p = s
                .provision_in(
                    &mut conn,
                    who(&format!("sub-{name}"), Some(name)),
                    Role::Auditor,
                )
                .await
                .unwrap();
            assert!(p.user().username.starts_with("sso-"), "{name}: {p:?}");
        }
    }

    #[tokio::test]
    async fn a_subject_belongs_to_its_issuer() {
        let (s, _dir) = store().await;
        let mut conn = s.db.pool.acquire().await.unwrap();
        let a = s
            .provision_in(&mut conn, who("same-sub", Some("kim")), Role::Supervisor)
            .await
            .unwrap();
        let other = Identity {
            issuer: "https://other-idp.example.test",
            subject: "same-sub",
            display_name: Some("kim"),
        };
        let b = s.provision_in(&mut conn, other, Role::Admin).await.unwrap();
        assert!(matches!(b, Provisioned::Created(_)), "{b:?}");
        assert_ne!(a.user().id, b.user().id);
        assert_eq!(a.user().role, Role::Supervisor);
        assert_eq!(
            b.user().sso_issuer.as_deref(),
            Some("https://other-idp.example.test")
        );
        assert!(s.by_subject(ISSUER, "same-sub").await.unwrap().is_some());
        assert!(s
            .by_subject("https://third.test", "same-sub")
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn a_handoff_is_used_once_and_not_after_it_expires() {
        let (s, _dir) = store().await;
        let now = s.clock.now_us();
        s.issue_handoff("h-1", now + 1_000_000).await.unwrap();
        s.issue_handoff("h-2", now - 1).await.unwrap();
        assert!(s.consume_handoff("h-1").await.unwrap());
        assert!(!s.consume_handoff("h-1").await.unwrap());
        assert!(!s.consume_handoff("h-2").await.unwrap());
        assert!(!s.consume_handoff("never").await.unwrap());
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
