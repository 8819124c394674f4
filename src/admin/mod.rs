//! The admin's pages: users and roles, authenticator resets, and the
//! "TOTP mandatory for supervisors" setting. Every change commits with its
//! audit row, or not at all.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use crate::audit::{Action, AuditEvent, AuditLog, AuditedChange};
use crate::auth::csrf;
use crate::auth::password::Password;
use crate::auth::principal::Admin;
use crate::auth::totp::TotpStore;
use crate::auth::users::{new_password_hash, User, UserError, Username, Users};
use crate::auth::Role;
use crate::clock::format_us;
use crate::web::{html, request_meta, see_other, AppError, Layout, Routes};

/// What the admin pages use; registered once as app data.
pub struct AdminState {
    pub audit: AuditLog,
    pub users: Users,
    pub totp: TotpStore,
    /// Sign-in at an identity provider, when configured.
    pub external: crate::auth::external::ExternalHook,
}

type State = web::Data<AdminState>;

pub fn configure(routes: &mut Routes) {
    let admin = Role::Admin.access();
    routes
        .get("/admin/users", admin, admin_users)
        .post("/admin/users", admin, admin_add_user)
        .post("/admin/users/{id}/disable", admin, admin_disable_user)
        .post("/admin/users/{id}/enable", admin, admin_enable_user)
        .post("/admin/users/{id}/role", admin, admin_set_role)
        .post("/admin/users/{id}/totp/reset", admin, admin_reset_totp)
        .post("/admin/settings", admin, admin_settings);
}

pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub disabled: bool,
    pub created: String,
    pub totp: bool,
    /// Created by single sign-on (its role follows the provider's groups).
    pub sso: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            role: u.role.as_str(),
            disabled: u.disabled,
            created: format_us(u.created_us),
            totp: false,
            sso: u.sso_subject.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct AdminUsersPage {
    pub layout: Layout,
    pub users: Vec<UserView>,
    pub roles: Vec<&'static str>,
    pub notice: Option<String>,
    pub error: Option<String>,
    /// A refused "Add a user" form: what was typed (never the password)
    /// and the field to fix.
    pub add: AddUserKept,
    pub totp_mandatory: bool,
    /// Single sign-on is configured: the local sign-in setting applies.
    pub sso: bool,
    pub local_sign_in_admins_only: bool,
}

/// The "Add a user" form as it comes back after a refusal.
#[derive(Default)]
pub struct AddUserKept {
    pub username: String,
    pub role: String,
    /// `username`, `password` or `role`: marked, its message beside it.
    pub field: &'static str,
    pub message: String,
}

impl AddUserKept {
    /// The form as typed, `e` beside the field it is about. A username
    /// holding a card-like number is not typed back.
    fn refused(form: &AddUserForm, e: &UserError) -> Self {
        let field = match e {
            UserError::InvalidUsername | UserError::CardNumber | UserError::Exists => "username",
            UserError::Password(_) => "password",
            UserError::UnknownRole => "role",
            _ => "",
        };
        let username = if crate::guard::holds_card_number(&form.username) {
            String::new()
        } else {
            crate::text::one_line(&form.username)
                .chars()
                .take(64)
                .collect()
        };
        Self {
            username,
            role: form.role.clone(),
            field,
            message: e.to_string(),
        }
    }
}

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
    add: AddUserKept,
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
    let local_sign_in_admins_only = match &state.external {
        Some(external) => external.local_sign_in_admins_only().await?,
        None => false,
    };
    let refused = error.is_some() || !add.field.is_empty();
    let page = AdminUsersPage {
        layout: Layout::signed_in("Users", admin.principal(), csrf::token(session)?),
        users,
        roles: Role::ALL.iter().map(|r| r.as_str()).collect(),
        notice,
        error: error.clone(),
        add,
        totp_mandatory,
        sso: state.external.is_some(),
        local_sign_in_admins_only,
    };
    let mut res = html(&page)?;
    if refused {
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
    users_page(
        &state,
        &admin,
        &session,
        admin_notice(q.m.as_deref()),
        None,
        AddUserKept::default(),
    )
    .await
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
        self.refused_with(what, e, None).await
    }

    /// As `refused`; a refused "Add a user" form comes back as typed.
    async fn refused_with(
        &self,
        what: String,
        e: UserError,
        form: Option<&AddUserForm>,
    ) -> Result<HttpResponse, AppError> {
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
        let add = form.map_or_else(AddUserKept::default, |f| AddUserKept::refused(f, &e));
        // Beside its field when it has one, else at the top.
        let error = (add.field.is_empty()).then(|| e.to_string());
        users_page(self.state, self.admin, self.session, None, error, add).await
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
    let password = Password::new(form.password.clone());
    let username = match Username::parse(&form.username) {
        Ok(u) => u,
        Err(e) => return ctx.refused_with("add user".into(), e, Some(&form)).await,
    };
    let what = format!("add user {}", username.as_str());
    let Some(role) = Role::parse(&form.role) else {
        return ctx
            .refused_with(what, UserError::UnknownRole, Some(&form))
            .await;
    };
    // Hashed before the transaction opens: it holds the audit chain's lock.
    let hash = match new_password_hash(&password).await {
        Ok(h) => h,
        Err(e) => return ctx.refused_with(what, e, Some(&form)).await,
    };
    let mut change = state.audit.begin_change().await?;
    let result = state
        .users
        .add_in(change.conn(), &username, &hash, role)
        .await;
    if let Err(e) = result {
        // A taken username comes back beside the form, as typed.
        change.rollback().await;
        return ctx.refused_with(what, e, Some(&form)).await;
    }
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

pub async fn admin_reset_totp(
    state: State,
    admin: Admin,
    req: HttpRequest,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    let id = id.into_inner();
    let p = admin.principal();
    let Some(user) = state.users.by_id(id).await? else {
        state
            .audit
            .append(p.event(
                &req,
                Action::TotpReset,
                "refused",
                &format!("no user #{id}"),
            ))
            .await?;
        return Err(AppError::NotFound);
    };
    let mut change = state.audit.begin_change().await?;
    let removed = state.totp.reset(change.conn(), id).await?;
    let detail = format!("authenticator of {} reset", user.username);
    change
        .commit(p.event(
            &req,
            Action::TotpReset,
            if removed { "ok" } else { "none_enrolled" },
            &detail,
        ))
        .await?;
    Ok(see_other("/admin/users?m=totp_reset"))
}

#[derive(Deserialize)]
pub struct SettingsForm {
    totp_mandatory: Option<String>,
}

pub async fn admin_settings(
    state: State,
    admin: Admin,
    req: HttpRequest,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let on = match form.totp_mandatory.as_deref() {
        Some("on") => true,
        Some("off") | None => false,
        Some(_) => return Err(AppError::BadRequest("totp_mandatory is on or off.".into())),
    };
    let mut change = state.audit.begin_change().await?;
    state.totp.set_mandatory(change.conn(), on).await?;
    change
        .commit(admin.principal().event(
            &req,
            Action::SettingChange,
            "ok",
            &format!("totp_mandatory = {}", if on { "on" } else { "off" }),
        ))
        .await?;
    Ok(see_other("/admin/users?m=settings"))
}
