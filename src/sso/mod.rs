//! Single sign-on with the company's OpenID Provider: settings,
//! discovery, the authorization code flow with PKCE, state and nonce, ID
//! token verification, and the roles claim mapped to one callvault role.

pub mod config;
pub mod error;
pub mod flow;
pub mod http;
pub mod pending;
pub mod roles;
pub mod signin;
pub mod store;
pub mod web;

pub use config::{OidcArgs, RoleMap, SsoConfigError, SsoSettings, StepUpRequirements};
pub use flow::{CallbackParams, PendingAuth, Purpose, Sso, SsoError, VerifiedLogin};
pub use roles::RoleRefusal;
pub use web::{configure, SsoConsole, SsoState};
