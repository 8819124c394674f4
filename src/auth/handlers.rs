//! Sign-in, sign-out, the start page, and user administration.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::csrf;
use super::password::Password;
use super::principal::{
    current_principal, new_generation, Admin, SignedIn, AUTH_AT_KEY, GENERATION_KEY,
};
use super::session_store::USER_ID_KEY;
use super::throttle::{addr_bucket, user_bucket, ThrottleDecision};
use super::users::{new_password_hash, AuthResult, User, UserError, Username};
use super::Role;
use crate::audit::{Action, AuditEvent, AuditedChange};
use crate::web::error::AppError;
use crate::web::middleware::request_meta;
use crate::web::templates::{html, AdminUsersPage, HomePage, Layout, LoginPage, UserView};
use crate::web::{see_other, State};

const GENERIC_LOGIN_ERROR: &str =
    "Sign-in failed. Check your username and password, or try again later.";

#[derive(Deserialize)]
pub struct NoticeQuery {
    m: Option<String>,
}

fn notice(m: Option<&str>) -> Option<&'static str> {
    match m? {
        "signed_out" => Some("You have signed out."),
        "expired" => Some("Your session ended. Please sign in again."),
        _ => None,
    }
}

pub async fn home(user: SignedIn, session: Session) -> Result<HttpResponse, AppError> {
    html(&HomePage {
        layout: Layout::signed_in("Start", user.principal(), csrf::token(&session)?),
    })
}

pub async fn login_form(
    state: State,
    session: Session,
    query: web::Query<NoticeQuery>,
) -> Result<HttpResponse, AppError> {
    if current_principal(&session, &state).await?.is_some() {
        return Ok(see_other("/"));
    }
    let page = LoginPage {
        layout: Layout {
            title: "Sign in".into(),
            user: None,
            csrf: csrf::token(&session)?,
        },
        error: None,
        notice: notice(query.m.as_deref()),
        username: String::new(),
    };
    html(&page)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

fn login_failed_page(
    session: &Session,
    status: StatusCode,
    username: &str,
) -> Result<HttpResponse, AppError> {
    let page = LoginPage {
        layout: Layout {
            title: "Sign in".into(),
            user: None,
            csrf: csrf::token(session)?,
        },
        error: Some(GENERIC_LOGIN_ERROR),
        notice: None,
        username: Username::parse(username)
            .map(|u| u.as_str().to_owned())
            .unwrap_or_default(),
    };
    let mut res = html(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn login(
    state: State,
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
        if let ThrottleDecision::Locked { .. } = state.throttle.admit(bucket).await? {
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
            state.audit.tally_anonymous(&event).await?;
            return login_failed_page(&session, StatusCode::TOO_MANY_REQUESTS, &form.username);
        }
    }

    let result = match &username {
        Some(u) => state.users.authenticate(u.as_str(), &password).await?,
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
            state
                .audit
                .append(
                    AuditEvent::new(Action::LoginFailed, &actor, "", "refused", &meta)
                        .detail(reason),
                )
                .await?;
            return login_failed_page(&session, StatusCode::UNAUTHORIZED, &form.username);
        }
    };

    for bucket in &buckets {
        state.throttle.clear(bucket).await?;
    }
    // The audit row is written before the session exists.
    state
        .audit
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
    // user's step-up), under a new sign-in generation.
    let generation = new_generation()?;
    session.clear();
    session.renew();
    session
        .insert(USER_ID_KEY, user.id)
        .and_then(|_| session.insert(AUTH_AT_KEY, state.clock.now_us()))
        .and_then(|_| session.insert(GENERATION_KEY, generation))
        .map_err(|e| AppError::Internal(format!("session: {e}")))?;
    Ok(see_other("/"))
}

pub async fn logout(
    state: State,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    if let Some(p) = current_principal(&session, &state).await? {
        let meta = request_meta(&req);
        state
            .audit
            .append(AuditEvent::new(
                Action::Logout,
                &p.username,
                p.role.as_str(),
                "ok",
                &meta,
            ))
            .await?;
    }
    session.purge();
    Ok(see_other("/login?m=signed_out"))
}

// ---- user administration (admin only) ------------------------------------

#[derive(Deserialize)]
pub struct AdminQuery {
    m: Option<String>,
}

fn admin_notice(m: Option<&str>) -> Option<String> {
    Some(
        match m? {
            "added" => "User added.",
            "disabled" => "User disabled; their sessions have ended.",
            "enabled" => "User enabled.",
            "role" => "Role changed; the user's sessions have ended.",
            "totp_reset" => "Authenticator reset; the user can enrol a new one.",
            "settings" => "Settings saved.",
            _ => return None,
        }
        .to_owned(),
    )
}

async fn users_page(
    state: &State,
    admin: &Admin,
    session: &Session,
    notice: Option<String>,
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let totp_users = state.totp.active_users().await?;
    let users = state
        .users
        .list()
        .await?
        .into_iter()
        .map(|u| {
            let totp = totp_users.contains(&u.id);
            UserView {
                totp,
                ..UserView::from(u)
            }
        })
        .collect();
    let totp_mandatory = state.totp.mandatory().await?;
    let page = AdminUsersPage {
        layout: Layout::signed_in("Users", admin.principal(), csrf::token(session)?),
        users,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        notice,
        error: error.clone(),
        totp_mandatory,
    };
    let mut res = html(&page)?;
    if error.is_some() {
        *res.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(res)
}

pub async fn admin_users(
    state: State,
    admin: Admin,
    session: Session,
    q: web::Query<AdminQuery>,
) -> Result<HttpResponse, AppError> {
    users_page(&state, &admin, &session, admin_notice(q.m.as_deref()), None).await
}

#[derive(Deserialize)]
pub struct AddUserForm {
    username: String,
    role: String,
    password: String,
}

/// One admin request: everything a user change needs to audit and answer.
struct AdminCtx<'a> {
    state: &'a State,
    admin: &'a Admin,
    session: &'a Session,
    req: &'a HttpRequest,
}

impl AdminCtx<'_> {
    fn event(&self, outcome: &str, detail: String) -> AuditEvent {
        let p = self.admin.principal();
        AuditEvent::new(
            Action::UserChange,
            &p.username,
            p.role.as_str(),
            outcome,
            &request_meta(self.req),
        )
        .detail(detail)
    }

    async fn refused(&self, what: String, e: UserError) -> Result<HttpResponse, AppError> {
        if let UserError::Db(db) = e {
            return Err(db.into());
        }
        self.state
            .audit
            .append(self.event("refused", format!("{what}: {e}")))
            .await?;
        if let UserError::NotFound = e {
            return Err(AppError::NotFound);
        }
        users_page(
            self.state,
            self.admin,
            self.session,
            None,
            Some(e.to_string()),
        )
        .await
    }

    /// Commits the change made in `change` with its audit row (or undoes
    /// it and records the refusal); redirects with `notice` on success.
    async fn finish(
        &self,
        what: String,
        change: AuditedChange,
        result: Result<User, UserError>,
        done: impl FnOnce(&User) -> String,
        notice: &str,
    ) -> Result<HttpResponse, AppError> {
        match result {
            Ok(u) => {
                change.commit(self.event("ok", done(&u))).await?;
                Ok(see_other(&format!("/admin/users?m={notice}")))
            }
            Err(e) => {
                change.rollback().await;
                self.refused(what, e).await
            }
        }
    }
}

pub async fn admin_add_user(
    state: State,
    admin: Admin,
    session: Session,
    req: HttpRequest,
    form: web::Form<AddUserForm>,
) -> Result<HttpResponse, AppError> {
    let ctx = AdminCtx {
        state: &state,
        admin: &admin,
        session: &session,
        req: &req,
    };
    let form = form.into_inner();
    let password = Password::new(form.password);
    let username = match Username::parse(&form.username) {
        Ok(u) => u,
        Err(e) => return ctx.refused("add user".into(), e).await,
    };
    let what = format!("add user {}", username.as_str());
    let Some(role) = Role::parse(&form.role) else {
        return ctx.refused(what, UserError::UnknownRole).await;
    };
    // Hashed before the transaction opens: it holds the audit chain's lock.
    let hash = match new_password_hash(&password).await {
        Ok(h) => h,
        Err(e) => return ctx.refused(what, e).await,
    };
    let mut change = state.audit.begin_change().await?;
    let result = state
        .users
        .add_in(change.conn(), &username, &hash, role)
        .await;
    ctx.finish(
        what,
        change,
        result,
        |u| format!("added user {} as {}", u.username, u.role),
        "added",
    )
    .await
}

async fn set_disabled(
    state: State,
    admin: Admin,
    session: Session,
    req: HttpRequest,
    id: i64,
    disabled: bool,
) -> Result<HttpResponse, AppError> {
    let ctx = AdminCtx {
        state: &state,
        admin: &admin,
        session: &session,
        req: &req,
    };
    let (what, notice) = if disabled {
        ("disable", "disabled")
    } else {
        ("enable", "enabled")
    };
    let mut change = state.audit.begin_change().await?;
    let result = state
        .users
        .set_disabled_in(change.conn(), id, disabled)
        .await;
    ctx.finish(
        format!("{what} user #{id}"),
        change,
        result,
        |u| format!("{notice} user {}", u.username),
        notice,
    )
    .await
}

pub async fn admin_disable_user(
    state: State,
    admin: Admin,
    session: Session,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(state, admin, session, req, id.into_inner(), true).await
}

pub async fn admin_enable_user(
    state: State,
    admin: Admin,
    session: Session,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    set_disabled(state, admin, session, req, id.into_inner(), false).await
}

#[derive(Deserialize)]
pub struct RoleForm {
    role: String,
}

pub async fn admin_set_role(
    state: State,
    admin: Admin,
    session: Session,
    req: HttpRequest,
    id: web::Path<i64>,
    form: web::Form<RoleForm>,
) -> Result<HttpResponse, AppError> {
    let ctx = AdminCtx {
        state: &state,
        admin: &admin,
        session: &session,
        req: &req,
    };
    let id = id.into_inner();
    let what = format!("set role of user #{id}");
    let Some(role) = Role::parse(&form.role) else {
        return ctx.refused(what, UserError::UnknownRole).await;
    };
    let mut change = state.audit.begin_change().await?;
    let result = state.users.set_role_in(change.conn(), id, role).await;
    ctx.finish(
        what,
        change,
        result,
        |u| format!("set role of {} to {}", u.username, u.role),
        "role",
    )
    .await
}
