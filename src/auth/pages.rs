//! Sign-in, sign-out and the start page.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use askama::Template;

use super::csrf;
use super::kept::KeptForm;
use super::password::Password;
use super::principal::{
    current_principal, new_generation, Gatekeeper, SignedIn, AUTH_AT_KEY, GENERATION_KEY,
};
use super::session_store::{signed_in_marker, USER_ID_KEY};
use super::throttle::{addr_bucket, user_bucket, Throttle, ThrottleDecision};
use super::users::{AuthResult, Username};
use super::Role;
use crate::audit::{Action, AuditEvent};
use crate::web::{html, request_meta, see_other, AppError, Layout};

#[derive(Template)]
#[template(path = "auth/login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub error: Option<&'static str>,
    pub notice: Option<&'static str>,
    pub username: String,
    /// "Sign in with <provider>" when an identity provider is configured.
    pub sso_provider: Option<String>,
}

#[derive(Template)]
#[template(path = "auth/home.html")]
pub struct HomePage {
    pub layout: Layout,
}

const GENERIC_LOGIN_ERROR: &str =
    "Sign-in failed. Check your username and password, or try again later.";

#[derive(Deserialize)]
pub struct NoticeQuery {
    m: Option<String>,
    /// The page to return to after signing in (a local path).
    next: Option<String>,
}

/// Session key: the page to return to after signing in (a local path).
pub const RETURN_TO_KEY: &str = "return_to";

fn notice(m: Option<&str>) -> Option<&'static str> {
    match m? {
        "signed_out" => Some("You have signed out."),
        "expired" => Some("Your session ended. Sign in again to go back to the page you were on."),
        _ => None,
    }
}

pub async fn home(user: SignedIn, session: Session) -> Result<HttpResponse, AppError> {
    html(&HomePage {
        layout: Layout::signed_in("Start", user.principal(), csrf::token(&session)?),
    })
}

pub async fn login_form(
    gate: web::Data<Gatekeeper>,
    session: Session,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    if let Some(p) = current_principal(&session, &gate).await? {
        return Ok(see_other(p.role.home()));
    }
    // Where to go after signing in is kept in the session (server-side), so
    // it needs no form field; anything but a local path is ignored.
    if let Some(to) = query.next.as_deref().and_then(return_target) {
        if let Err(e) = session.insert(RETURN_TO_KEY, to) {
            tracing::warn!(error = %e, "cannot keep the return target");
        }
    }
    let page = LoginPage {
        layout: Layout::anonymous_with_form("Sign in", csrf::token(&session)?),
        error: None,
        notice: notice(query.m.as_deref()),
        username: String::new(),
        sso_provider: sso_provider(&gate),
    };
    html(&page)
}

fn sso_provider(gate: &Gatekeeper) -> Option<String> {
    gate.external.as_ref().map(|e| e.provider_name().to_owned())
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

fn login_failed_page(
    gate: &Gatekeeper,
    session: &Session,
    status: StatusCode,
    username: &str,
) -> Result<HttpResponse, AppError> {
    let page = LoginPage {
        layout: Layout::anonymous_with_form("Sign in", csrf::token(session)?),
        error: Some(GENERIC_LOGIN_ERROR),
        notice: None,
        username: Username::parse(username)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
        sso_provider: sso_provider(gate),
    };
    let mut res = html(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn login(
    gate: web::Data<Gatekeeper>,
    throttle: web::Data<Throttle>,
    session: Session,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let password = Password::new(form.password);
    let meta = request_meta(&req);
    let username = Username::parse(&form.username).ok();
    // Typed names that are not users are not recorded: people type passwords there.
    let actor_of = |u: &Option<Username>| u.as_ref().map_or("unknown", |u| u.as_str()).to_owned();
    let buckets = [user_bucket(&form.username), addr_bucket(&meta.client_addr)];

    // Counted before the password is checked (atomically): of any number of
    // parallel attempts, at most the free ones reach the hash.
    for bucket in &buckets {
        if let ThrottleDecision::Locked { .. } = throttle.admit(bucket).await? {
            let event = AuditEvent::new(
                Action::LoginFailed,
                &actor_of(&username),
                "",
                "throttled",
                &meta,
            )
            .detail(bucket.split(':').next().unwrap_or("").to_owned() + " locked");
            // Nobody is signed in: a flood of refused attempts is counted
            // into one summary row per address and interval.
            gate.audit.tally_anonymous(&event).await?;
            return login_failed_page(
                &gate,
                &session,
                StatusCode::TOO_MANY_REQUESTS,
                &form.username,
            );
        }
    }

    let result = match &username {
        Some(u) => gate.users.authenticate(u.as_str(), &password).await?,
        None => AuthResult::UnknownUser,
    };
    let user = match result {
        AuthResult::Success(user) => user,
        failure => {
            let (actor, reason) = match &failure {
                AuthResult::BadPassword(u) => (u.username.clone(), "bad_password"),
                AuthResult::Disabled(u) => (u.username.clone(), "disabled"),
                _ => ("unknown".to_owned(), "unknown_user"),
            };
            gate.audit
                .append(
                    AuditEvent::new(Action::LoginFailed, &actor, "", "refused", &meta)
                        .detail(reason),
                )
                .await?;
            return login_failed_page(&gate, &session, StatusCode::UNAUTHORIZED, &form.username);
        }
    };

    // Once an admin turns local sign-in off, only admins (break-glass) use
    // passwords; everyone else signs in at the identity provider.
    if let Some(external) = &gate.external {
        if user.role != Role::Admin && external.local_sign_in_admins_only().await? {
            gate.audit
                .append(
                    AuditEvent::new(Action::LoginFailed, &user.username, "", "refused", &meta)
                        .detail("local_sign_in_off"),
                )
                .await?;
            return login_failed_page(&gate, &session, StatusCode::UNAUTHORIZED, &form.username);
        }
    }

    for bucket in &buckets {
        throttle.clear(bucket).await?;
    }
    // The audit row is written before the session exists.
    gate.audit
        .append(AuditEvent::new(
            Action::Login,
            &user.username,
            user.role.as_str(),
            "ok",
            &meta,
        ))
        .await?;
    // ASVS 3.2.1: a sign-in starts a new session: a new id, and nothing
    // carried over from the session before it (its CSRF token, another
    // user's step-up), under a new sign-in generation; only the page to
    // return to and a form this same person was typing survive.
    let carried = CarriedOver::take(&session, user.id, gate.clock.now_us());
    let generation = new_generation()?;
    session.clear();
    session.renew();
    session
        .insert(USER_ID_KEY, user.id)
        .and_then(|_| session.insert(AUTH_AT_KEY, gate.clock.now_us()))
        .and_then(|_| session.insert(GENERATION_KEY, generation))
        .map_err(|e| AppError::Internal(format!("session: {e}")))?;
    let mut res = see_other(&carried.restore(&session, user.role));
    res.add_cookie(&signed_in_marker(gate.cookie_secure))
        .map_err(|e| AppError::Internal(format!("cookie: {e}")))?;
    Ok(res)
}

/// What a sign-in carries from the session before it into the new one.
pub struct CarriedOver {
    return_to: Option<String>,
    kept: Option<KeptForm>,
}

impl CarriedOver {
    /// Read before the old session is cleared.
    pub fn take(session: &Session, user_id: i64, now_us: i64) -> Self {
        Self {
            return_to: session
                .get::<String>(RETURN_TO_KEY)
                .ok()
                .flatten()
                .filter(|t| return_target(t).is_some()),
            kept: KeptForm::carried_over(session, user_id, now_us),
        }
    }

    /// Puts the kept form into the new session; the page to go to now: the
    /// one the sign-in interrupted, else `role`'s own.
    pub fn restore(self, session: &Session, role: Role) -> String {
        if let Some(kept) = self.kept {
            kept.restore(session);
        }
        self.return_to.unwrap_or_else(|| role.home().to_owned())
    }
}

pub async fn logout(
    gate: web::Data<Gatekeeper>,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    // Signing out never waits for anything: the session ends first,
    // whatever else fails. Who it was is read before (a failure to read it
    // ends the session all the same), the audit row written after; a row
    // that cannot be written is logged, never a reason to stay signed in.
    let principal = current_principal(&session, &gate).await;
    session.purge();
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "sign-out: cannot read who was signed in; the session ended");
            None
        }
    };
    let mut external_user = false;
    if let Some(p) = principal {
        external_user = p.signs_in_externally(&gate);
        let row = AuditEvent::new(
            Action::Logout,
            &p.username,
            p.role.as_str(),
            "ok",
            &request_meta(&req),
        );
        if let Err(e) = gate.audit.append(row).await {
            tracing::error!(error = %e, user = p.username.as_str(), "sign-out: cannot write the audit row; the session ended");
        }
    }
    // A single sign-on user is signed out at the provider too, when it
    // offers that.
    let mut res = match (external_user, &gate.external) {
        (true, Some(external)) => match external.signed_out_page().await? {
            Some(page) => page,
            None => see_other("/login?m=signed_out"),
        },
        _ => see_other("/login?m=signed_out"),
    };
    res.add_removal_cookie(&signed_in_marker(gate.cookie_secure))
        .map_err(|e| AppError::Internal(format!("cookie: {e}")))?;
    Ok(res)
}

/// Pages a sign-in never returns to.
const NOT_RETURN_TARGETS: [&str; 3] = ["/login", "/logout", "/account/step-up"];

/// A page of this console to come back to after signing in (a local path,
/// never another site, never the sign-in pages).
pub fn return_target(target: &str) -> Option<&str> {
    crate::web::local_path(target, &NOT_RETURN_TARGETS)
}

/// Sign-in required: to the sign-in page, which comes back to `return_to`
/// (a GET page) and says when a session ended.
pub fn login_required(return_to: Option<&str>, expired: bool) -> AppError {
    let mut q: Vec<(&str, &str)> = Vec::new();
    if expired {
        q.push(("m", "expired"));
    }
    if let Some(to) = return_to.and_then(return_target) {
        q.push(("next", to));
    }
    let location = match serde_urlencoded::to_string(q) {
        Ok(q) if !q.is_empty() => format!("/login?{q}"),
        _ => "/login".to_owned(),
    };
    AppError::LoginRequired { location }
}
