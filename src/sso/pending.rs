//! What travels between the hops of a sign-in: the purpose, the pending
//! request's secrets (redacted in Debug, zeroized), the callback's
//! parameters, and the verified person.

use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

use super::error::SsoError;
use super::roles::RoleRefusal;
use crate::auth::Role;

/// What the authorization request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    SignIn,
    /// A fresh authentication of this (already signed-in) subject.
    StepUp {
        subject: String,
        max_age_secs: u64,
    },
}

/// What the browser's session keeps between `/login/oidc` and the callback.
/// Its secrets leave only through `to_session_value`.
pub struct PendingAuth {
    pub(crate) state: SecretString,
    pub(crate) nonce: SecretString,
    pub(crate) verifier: SecretString,
    pub purpose: Purpose,
    /// When the request was made (µs since the epoch, the console's clock).
    pub started_us: i64,
}

impl std::fmt::Debug for PendingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuth")
            .field("purpose", &self.purpose)
            .field("started_us", &self.started_us)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct PendingWire {
    state: String,
    nonce: String,
    verifier: String,
    purpose: Purpose,
    started_us: i64,
}

impl Drop for PendingWire {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.state.zeroize();
        self.nonce.zeroize();
        self.verifier.zeroize();
    }
}

impl PendingAuth {
    /// The value stored in the server-side session (never sent to the browser).
    pub fn to_session_value(&self) -> Result<zeroize::Zeroizing<String>, SsoError> {
        let wire = PendingWire {
            state: self.state.expose_secret().to_owned(),
            nonce: self.nonce.expose_secret().to_owned(),
            verifier: self.verifier.expose_secret().to_owned(),
            purpose: self.purpose.clone(),
            started_us: self.started_us,
        };
        serde_json::to_string(&wire)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| SsoError::Setup("cannot serialise the pending sign-in".into()))
    }

    pub fn from_session_value(value: &str) -> Option<Self> {
        let mut wire: PendingWire = serde_json::from_str(value).ok()?;
        Some(Self {
            state: SecretString::from(std::mem::take(&mut wire.state)),
            nonce: SecretString::from(std::mem::take(&mut wire.nonce)),
            verifier: SecretString::from(std::mem::take(&mut wire.verifier)),
            purpose: wire.purpose.clone(),
            started_us: wire.started_us,
        })
    }
}

/// The query of `GET /login/oidc/callback`.
#[derive(Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("state", &self.state.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A person the provider vouched for, after every check.
pub struct VerifiedLogin {
    /// The provider's subject identifier (`sub`).
    pub subject: String,
    /// A printable name from `preferred_username`, `email` or `name`, if any.
    pub display_name: Option<String>,
    /// The role the claim maps to, or why there is none.
    pub role: Result<Role, RoleRefusal>,
    /// The ID token's expiry (µs since the epoch).
    pub expires_us: i64,
    /// When the person authenticated at the provider (µs), if it said.
    pub auth_time_us: Option<i64>,
    pub purpose: Purpose,
}

impl std::fmt::Debug for VerifiedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedLogin")
            .field("subject", &self.subject)
            .field("role", &self.role)
            .field("expires_us", &self.expires_us)
            .field("auth_time_us", &self.auth_time_us)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_sign_in_survives_the_session_and_hides_its_secrets() {
        let p = PendingAuth {
            state: SecretString::from("the-state".to_owned()),
            nonce: SecretString::from("the-nonce".to_owned()),
            verifier: SecretString::from("the-verifier".to_owned()),
            purpose: Purpose::StepUp {
                subject: "s-1".into(),
                max_age_secs: 300,
            },
            started_us: 42,
        };
        let debug = format!("{p:?}");
        for secret in ["the-state", "the-nonce", "the-verifier"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let value = p.to_session_value().unwrap();
        let back = PendingAuth::from_session_value(&value).unwrap();
        assert_eq!(back.state.expose_secret(), "the-state");
        assert_eq!(back.verifier.expose_secret(), "the-verifier");
        assert_eq!(back.purpose, p.purpose);
        assert_eq!(back.started_us, 42);
        assert!(PendingAuth::from_session_value("{not json").is_none());
    }

    #[test]
    fn callback_parameters_hide_the_code_and_state_in_debug_output() {
        let c = CallbackParams {
            code: Some("secret-code".into()),
            state: Some("secret-state".into()),
            error: None,
            iss: None,
        };
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret-code") && !debug.contains("secret-state"));
    }
}
