//! Who is who: users and roles, passwords, sign-in throttling, server-side
//! sessions, CSRF, second factors, and the extractors that hand handlers a
//! typed principal; and the sign-in, sign-out and start pages.

pub mod csrf;
pub mod external;
pub mod kept;
pub mod pages;
pub mod password;
pub mod principal;
pub mod session_store;
pub mod step_up;
pub mod throttle;
pub mod totp;
pub mod totp_seal;
pub mod users;

use std::fmt;

use crate::web::{Access, Routes};

/// Separation of duties: only supervisors decrypt; auditors read the audit
/// log; admins manage users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Supervisor,
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Supervisor, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Supervisor => "supervisor",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The page this role works from, where a sign-in lands (unless it
    /// returns to the page it interrupted): the first of its menu.
    pub const fn home(self) -> &'static str {
        match self {
            Self::Supervisor => "/contacts",
            Self::Auditor => "/audit",
            Self::Admin => "/admin/users",
        }
    }

    /// Who may use a route that requires this role.
    pub const fn access(self) -> Access {
        Access::Role(match self {
            Self::Supervisor => "supervisor",
            Self::Auditor => "auditor",
            Self::Admin => "admin",
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub fn configure(routes: &mut Routes) {
    use pages::*;
    routes
        .get("/", Access::SignedIn, home)
        .get("/login", Access::Public, login_form)
        .post("/login", Access::Public, login)
        .post("/logout", Access::Public, logout);
}
