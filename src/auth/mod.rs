//! Who is who: users and roles, passwords, sign-in throttling, server-side
//! sessions, CSRF, and the extractors that hand handlers a typed principal.

pub mod csrf;
pub mod handlers;
pub mod password;
pub mod principal;
pub mod second_factor;
pub mod session_store;
pub mod throttle;
pub mod totp;
pub mod totp_seal;
pub mod users;

use std::fmt;

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
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
