//! The signed-in user's own account: TOTP enrolment, the step-up before a
//! decrypt, and settings (`settings`: the time zone). Every outcome is audited.

mod settings;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use askama::Template;

use crate::audit::{Action, AuditEvent, AuditLog};
use crate::auth::csrf;
use crate::auth::password::Password;
use crate::auth::principal::{Principal, SignedIn};
use crate::auth::step_up::StepUp;
use crate::auth::throttle::{Throttle, ThrottleDecision};
use crate::auth::totp::{Enrolment, NewEnrolment, TotpError, TotpStore};
use crate::auth::users::{AuthResult, Users};
use crate::clock::SharedClock;
use crate::web::{html, see_other, Access, AppError, Layout, Routes};

/// What the account pages use; registered once as app data.
pub struct AccountState {
    pub audit: AuditLog,
    pub users: Users,
    pub throttle: Throttle,
    pub totp: TotpStore,
    pub clock: SharedClock,
    /// How long a step-up opens reveals for (`CALLVAULT_STEP_UP_MIN`).
    pub step_up_window: std::time::Duration,
    /// Sign-in at an identity provider: its users step up there.
    pub external: crate::auth::external::ExternalHook,
}

type State = actix_web::web::Data<AccountState>;

pub fn configure(routes: &mut Routes) {
    routes
        .get("/account/totp", Access::SignedIn, totp_page)
        .post("/account/totp/enrol", Access::SignedIn, totp_enrol)
        .post("/account/totp/confirm", Access::SignedIn, totp_confirm)
        .get("/account/step-up", Access::SignedIn, step_up_form)
        .post("/account/step-up", Access::SignedIn, step_up)
        .get(
            "/account/settings",
            Access::SignedIn,
            settings::settings_page,
        )
        .post(
            "/account/settings",
            Access::SignedIn,
            settings::save_settings,
        );
}

#[derive(Template)]
#[template(path = "account/totp.html")]
pub struct TotpPage {
    pub layout: Layout,
    pub active: bool,
    pub pending: bool,
    pub mandatory: bool,
    pub secret: String,
    pub qr_svg: String,
    pub notice: Option<&'static str>,
    pub error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "account/step_up.html")]
pub struct StepUpPage {
    pub layout: Layout,
    pub next: String,
    pub minutes: u64,
    pub error: Option<&'static str>,
}

fn totp_bucket(p: &Principal) -> String {
    format!("totp:{}", p.username.to_lowercase())
}

/// The interrupted reveal's continuation (`decrypt`'s route): where a
/// step-up sends the person back to.
pub const CONTINUE_REVEAL: &str = "/reveals/continue";

/// Where to go after a step-up: only this console's contact and approval
/// pages, or the interrupted reveal's continuation (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    let next = next.unwrap_or("").trim();
    let ok = (next.starts_with("/contacts/")
        || next.starts_with("/approvals")
        || next == CONTINUE_REVEAL)
        && next.len() <= 200
        && !next.contains("..")
        && next
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b':'));
    if ok {
        next.to_owned()
    } else {
        "/contacts".to_owned()
    }
}

async fn audit(
    state: &State,
    req: &HttpRequest,
    p: &Principal,
    action: Action,
    outcome: &str,
    detail: &str,
) -> Result<(), AppError> {
    state
        .audit
        .append(p.event(req, action, outcome, detail))
        .await?;
    Ok(())
}

/// Checks the password and a TOTP code with throttling; audits failures as
/// `failure_action`. `confirming` checks a pending enrolment instead. On
/// success, the accepted code (which can never be used again) and `success`
/// commit together.
#[allow(clippy::too_many_arguments)]
async fn check_factors(
    state: &State,
    req: &HttpRequest,
    p: &Principal,
    password: String,
    code: &str,
    failure_action: Action,
    confirming: bool,
    success: AuditEvent,
) -> Result<Result<(), &'static str>, AppError> {
    let bucket = totp_bucket(p);
    // Counted before the password and code are checked (atomically): of any
    // number of parallel attempts, at most the free ones are checked.
    if let ThrottleDecision::Locked { .. } = state.throttle.admit(&bucket).await? {
        audit(
            state,
            req,
            p,
            failure_action,
            "throttled",
            "too many failed codes",
        )
        .await?;
        return Ok(Err(
            "Too many failed attempts. Wait a few minutes and try again.",
        ));
    }
    let password = Password::new(password);
    let password_ok = matches!(
        state.users.authenticate(&p.username, &password).await?,
        AuthResult::Success(u) if u.id == p.user_id
    );
    let outcome = if password_ok {
        let mut change = state.audit.begin_change().await?;
        match state
            .totp
            .verify(change.conn(), p.user_id, code, confirming)
            .await
        {
            Ok(()) => {
                change.commit(success).await?;
                None
            }
            Err(TotpError::Db(e)) => return Err(e.into()),
            Err(e) => {
                change.rollback().await;
                Some(e.kind())
            }
        }
    } else {
        Some("bad_password")
    };
    match outcome {
        None => {
            state.throttle.clear(&bucket).await?;
            Ok(Ok(()))
        }
        Some(kind) => {
            audit(state, req, p, failure_action, "refused", kind).await?;
            Ok(Err(match kind {
                "replayed_code" => "That code was already used. Wait for the next one.",
                "not_enrolled" => "You have no authenticator enrolled.",
                _ => "The password or the code is wrong, or the code has expired.",
            }))
        }
    }
}

async fn totp_view(
    state: &State,
    session: &Session,
    p: &Principal,
    status: StatusCode,
    enrolment: Option<NewEnrolment>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let current = state.totp.enrolment(p.user_id).await?;
    let page = TotpPage {
        layout: Layout::signed_in("Authenticator", p, csrf::token(session)?),
        active: current == Enrolment::Active,
        pending: current == Enrolment::Pending,
        mandatory: state.totp.mandatory().await?,
        secret: enrolment
            .as_ref()
            .map(|e| e.secret_base32.to_string())
            .unwrap_or_default(),
        qr_svg: enrolment.map(|e| e.qr_svg).unwrap_or_default(),
        notice,
        error,
    };
    let mut res = html(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn totp_page(
    state: State,
    user: SignedIn,
    session: Session,
) -> Result<HttpResponse, AppError> {
    totp_view(
        &state,
        &session,
        user.principal(),
        StatusCode::OK,
        None,
        None,
        None,
    )
    .await
}

pub async fn totp_enrol(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let p = user.principal();
    let mut change = state.audit.begin_change().await?;
    match state
        .totp
        .begin(change.conn(), p.user_id, &p.username)
        .await
    {
        Ok(new) => {
            change
                .commit(p.event(&req, Action::TotpEnrol, "started", ""))
                .await?;
            totp_view(&state, &session, p, StatusCode::OK, Some(new), None, None).await
        }
        Err(TotpError::AlreadyEnrolled) => {
            change.rollback().await;
            audit(
                &state,
                &req,
                p,
                Action::TotpEnrol,
                "refused",
                "already_enrolled",
            )
            .await?;
            totp_view(
                &state,
                &session,
                p,
                StatusCode::CONFLICT,
                None,
                None,
                Some("An authenticator is already enrolled. An admin must reset it before you enrol another."),
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct FactorsForm {
    password: String,
    code: String,
    next: Option<String>,
}

pub async fn totp_confirm(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
    form: web::Form<FactorsForm>,
) -> Result<HttpResponse, AppError> {
    let p = user.principal();
    let form = form.into_inner();
    match check_factors(
        &state,
        &req,
        p,
        form.password,
        &form.code,
        Action::TotpEnrol,
        true,
        p.event(&req, Action::TotpEnrol, "ok", "authenticator confirmed"),
    )
    .await?
    {
        Ok(()) => {
            // The confirming code is also a fresh step-up.
            StepUp::record(&session, p.user_id, &p.generation, state.clock.now_us())?;
            totp_view(
                &state,
                &session,
                p,
                StatusCode::OK,
                None,
                Some("Your authenticator is enrolled."),
                None,
            )
            .await
        }
        Err(message) => {
            totp_view(
                &state,
                &session,
                p,
                StatusCode::UNAUTHORIZED,
                None,
                None,
                Some(message),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

fn step_up_page(
    session: &Session,
    p: &Principal,
    next: String,
    minutes: u64,
    status: StatusCode,
    error: Option<&'static str>,
) -> Result<HttpResponse, AppError> {
    let mut res = html(&StepUpPage {
        layout: Layout::signed_in("Confirm it is you", p, csrf::token(session)?),
        next,
        minutes,
        error,
    })?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn step_up_form(
    state: State,
    user: SignedIn,
    session: Session,
    q: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    // Single sign-on users confirm at their identity provider.
    if let (Some(_), Some(external)) = (&user.principal().sso_subject, &state.external) {
        return external.step_up_page(
            Layout::signed_in(
                "Confirm it is you",
                user.principal(),
                csrf::token(&session)?,
            ),
            &safe_next(q.next.as_deref()),
            state.step_up_window.as_secs() / 60,
        );
    }
    step_up_page(
        &session,
        user.principal(),
        safe_next(q.next.as_deref()),
        state.step_up_window.as_secs() / 60,
        StatusCode::OK,
        None,
    )
}

pub async fn step_up(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
    form: web::Form<FactorsForm>,
) -> Result<HttpResponse, AppError> {
    let p = user.principal();
    let form = form.into_inner();
    let next = safe_next(form.next.as_deref());
    let minutes = state.step_up_window.as_secs() / 60;
    match check_factors(
        &state,
        &req,
        p,
        form.password,
        &form.code,
        Action::StepUpFailed,
        false,
        p.event(&req, Action::StepUp, "ok", "password + TOTP"),
    )
    .await?
    {
        Ok(()) => {
            StepUp::record(&session, p.user_id, &p.generation, state.clock.now_us())?;
            Ok(see_other(&next))
        }
        Err(message) => step_up_page(
            &session,
            p,
            next,
            minutes,
            StatusCode::UNAUTHORIZED,
            Some(message),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn step_up_only_returns_to_local_pages() {
        assert_eq!(safe_next(Some("/contacts/abc-1")), "/contacts/abc-1");
        assert_eq!(safe_next(Some("/approvals")), "/approvals");
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/contacts/../admin",
            "/contacts/x?y=<script>",
            "/admin/users",
        ] {
            let got = safe_next(Some(bad));
            assert!(got == "/contacts" || !got.contains(".."), "{bad} -> {got}");
            assert!(!got.starts_with("//") && !got.contains("evil"), "{bad}");
        }
    }
}
