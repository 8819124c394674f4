//! Sign-in at an external identity provider, as `auth` sees it: a hook that
//! composition fills in (single sign-on implements it), so that sign-in,
//! sign-out, step-up and the admin's page can offer it without `auth` (or
//! any capability it serves) naming the provider's module.

use std::sync::Arc;

use actix_web::HttpResponse;

use crate::web::{AppError, Layout};

/// An identity provider people may sign in at instead of with a password.
#[async_trait::async_trait]
pub trait ExternalSignIn: Send + Sync {
    /// The provider's name, for "Sign in with <provider>".
    fn provider_name(&self) -> &str;

    /// Whether an admin limited local (password) sign-in to admins.
    async fn local_sign_in_admins_only(&self) -> Result<bool, AppError>;

    /// After the console session of a user the provider signed in ended: a
    /// page that sends them on to sign out at the provider, if it offers that.
    async fn signed_out_page(&self) -> Result<Option<HttpResponse>, AppError>;

    /// The step-up page for a user the provider signed in: a fresh
    /// authentication at the provider, then back to `next`.
    fn step_up_page(
        &self,
        layout: Layout,
        next: &str,
        minutes: u64,
    ) -> Result<HttpResponse, AppError>;
}

/// The hook, when one is configured.
pub type ExternalHook = Option<Arc<dyn ExternalSignIn>>;
