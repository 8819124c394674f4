//! HTTP: routing, the shared state, error pages, security middleware.

pub mod assets;
pub mod client_addr;
pub mod error;
pub mod health;
pub mod middleware;
pub mod templates;

use std::sync::Arc;

use actix_web::web;

use crate::audit::AuditLog;
use crate::auth::session_store::DbSessionStore;
use crate::auth::throttle::Throttle;
use crate::auth::users::Users;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::contacts::ContactDirectory;
use crate::db::Db;
use crate::decrypt::Revealer;
use crate::logs::LogStore;

/// What every handler can reach.
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub users: Users,
    pub audit: AuditLog,
    pub throttle: Throttle,
    pub sessions: DbSessionStore,
    pub clock: SharedClock,
    pub directory: Arc<dyn ContactDirectory>,
    pub logs: Arc<dyn LogStore>,
    /// None when no keyring is configured: nothing can be decrypted.
    pub revealer: Option<Revealer>,
    /// Attribute names that must hold ciphertext (`CALLVAULT_FIELDS`, plus the
    /// reference solution's names in legacy mode).
    pub sensitive: std::collections::BTreeSet<String>,
    pub totp: crate::auth::totp::TotpStore,
    pub budget: crate::decrypt::policy::Budget,
    pub approvals: crate::decrypt::approvals::Approvals,
    /// Audit shipping, when configured.
    pub shipper: Option<crate::audit::ship::Shipper>,
    /// The latest background readiness probe (`/readyz`).
    pub readiness: crate::readiness::Readiness,
}

pub type State = web::Data<Arc<AppState>>;

/// The start (UTC, µs since the epoch) of a `YYYY-MM-DD` day from a filter form.
pub fn day_start_us(s: &str) -> Result<i64, error::AppError> {
    use chrono::TimeZone as _;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| chrono::Utc.from_utc_datetime(&t).timestamp_micros())
        .ok_or_else(|| error::AppError::BadRequest("Dates are YYYY-MM-DD.".into()))
}

/// A 303 to `location` (after a POST), never cached.
pub fn see_other(location: &str) -> actix_web::HttpResponse {
    use actix_web::http::header;
    actix_web::HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Every route of the console. The route x role matrix test walks this list.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use crate::audit::handlers as audit;
    use crate::auth::handlers as auth;
    use crate::auth::second_factor;
    use crate::contacts::handlers as contacts;
    use crate::decrypt::handlers as approvals;
    use crate::logs::handlers as logs;
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/", web::get().to(auth::home))
        .route("/login", web::get().to(auth::login_form))
        .route("/login", web::post().to(auth::login))
        .route("/logout", web::post().to(auth::logout))
        .route("/contacts", web::get().to(contacts::contacts_page))
        .route("/contacts/{id}", web::get().to(contacts::contact_page))
        .route("/contacts/{id}/decrypt", web::post().to(contacts::decrypt))
        .route("/logs", web::get().to(logs::logs_page))
        .route("/logs/search", web::get().to(logs::search_page))
        .route("/logs/{group}/{stream}", web::get().to(logs::stream_page))
        .route("/audit", web::get().to(audit::audit_page))
        .route("/audit/export", web::get().to(audit::export))
        .route("/audit/verify", web::post().to(audit::verify))
        .route("/audit/volume", web::get().to(audit::volume_page))
        .route("/account/totp", web::get().to(second_factor::totp_page))
        .route(
            "/account/totp/enrol",
            web::post().to(second_factor::totp_enrol),
        )
        .route(
            "/account/totp/confirm",
            web::post().to(second_factor::totp_confirm),
        )
        .route(
            "/account/step-up",
            web::get().to(second_factor::step_up_form),
        )
        .route("/account/step-up", web::post().to(second_factor::step_up))
        .route("/approvals", web::get().to(approvals::approvals_page))
        .route(
            "/approvals/{id}/approve",
            web::post().to(approvals::approve),
        )
        .route("/approvals/{id}/reject", web::post().to(approvals::reject))
        .route("/approvals/{id}/reveal", web::post().to(approvals::reveal))
        .route(
            "/admin/settings",
            web::post().to(second_factor::admin_settings),
        )
        .route(
            "/admin/users/{id}/totp/reset",
            web::post().to(second_factor::admin_reset_totp),
        )
        .route("/admin/users", web::get().to(auth::admin_users))
        .route("/admin/users", web::post().to(auth::admin_add_user))
        .route(
            "/admin/users/{id}/disable",
            web::post().to(auth::admin_disable_user),
        )
        .route(
            "/admin/users/{id}/enable",
            web::post().to(auth::admin_enable_user),
        )
        .route(
            "/admin/users/{id}/role",
            web::post().to(auth::admin_set_role),
        )
        .route("/static/{name}", web::get().to(assets::serve));
}
