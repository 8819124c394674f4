//! The second hop of an SSO sign-in or step-up (the session cookie is back),
//! the failure page every refusal shows, and the admin's local sign-in setting.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::flow::SsoError;
use subtle::ConstantTimeEq as _;

use super::store::{Identity, Provisioned};
use super::web::{
    console, Carried, SsoConsole, SsoErrorPage, SsoState, State, StepUpFor, FLOW_BINDING_KEY,
};
use crate::audit::{Action, AuditEvent};
use crate::auth::principal::{
    current_principal, new_generation, Admin, Gatekeeper, AUTH_AT_KEY, GENERATION_KEY,
    SSO_EXPIRY_KEY,
};
use crate::auth::session_store::USER_ID_KEY;
use crate::auth::step_up::StepUp;
use crate::auth::users::UserError;
use crate::auth::Role;
use crate::web::{html, request_meta, see_other, AppError, Layout, RequestMeta};

/// The verified result must be picked up this soon after the callback.
pub(super) const RESUME_WITHIN_US: i64 = 2 * 60 * 1_000_000;

/// The second hop: the session cookie is back; sign in, or record the step-up.
pub(super) async fn resume(
    state: &SsoState,
    gate: &Gatekeeper,
    sso: &SsoConsole,
    session: &Session,
    meta: &RequestMeta,
    carried: Option<Carried>,
) -> Result<HttpResponse, AppError> {
    let Some(Carried::Verified {
        binding,
        handoff,
        subject,
        display_name,
        role,
        expires_us,
        auth_time_us,
        verified_us,
        step_up,
    }) = carried
    else {
        return refuse(state, sso, meta, None, None, &SsoError::NoPendingSignIn).await;
    };
    // Only in the browser that started the flow (its session holds the
    // binding), and only once (the hand-off is deleted by the first resume).
    let started_here = session
        .get::<String>(FLOW_BINDING_KEY)
        .ok()
        .flatten()
        .is_some_and(|b| !binding.is_empty() && bool::from(b.as_bytes().ct_eq(binding.as_bytes())));
    if !started_here {
        return refuse(state, sso, meta, None, None, &SsoError::NoPendingSignIn).await;
    }
    if !sso.store.consume_handoff(&handoff).await? {
        return refuse(state, sso, meta, None, None, &SsoError::NoPendingSignIn).await;
    }
    session.remove(FLOW_BINDING_KEY);
    let now = state.clock.now_us();
    if now.saturating_sub(verified_us) > RESUME_WITHIN_US || verified_us > now {
        return refuse(
            state,
            sso,
            meta,
            step_up.as_ref(),
            Some(&subject),
            &SsoError::NoPendingSignIn,
        )
        .await;
    }
    let role = Role::parse(&role).ok_or_else(|| AppError::Internal("sso: role".into()))?;
    let auth_time = auth_time_us.map_or_else(|| "unknown".to_owned(), crate::clock::format_us);
    if let Some(ctx) = step_up {
        let verified = Verified {
            subject: &subject,
            role,
            auth_time: &auth_time,
        };
        return finish_step_up(state, gate, sso, session, meta, ctx, verified).await;
    }
    let mut change = state.audit.begin_change().await?;
    let provisioned = match sso
        .store
        .provision_in(
            change.conn(),
            Identity {
                issuer: sso.issuer(),
                subject: &subject,
                display_name: display_name.as_deref(),
            },
            role,
        )
        .await
    {
        Ok(p) => p,
        Err(UserError::Db(e)) => {
            change.rollback().await;
            return Err(e.into());
        }
        Err(e) => {
            change.rollback().await;
            let kind = match e {
                UserError::LastAdmin => "last_admin",
                _ => "provisioning",
            };
            let actor = known_actor(sso, &subject, None).await?;
            state
                .audit
                .append(
                    AuditEvent::new(Action::LoginFailed, &actor, "", "refused", meta)
                        .detail(format!("sso {kind} subject={subject}")),
                )
                .await?;
            return sso_error_page(
                &meta.request_id,
                sso,
                StatusCode::FORBIDDEN,
                "Your account cannot be signed in. An administrator can see why in the audit log.",
            );
        }
    };
    let user = provisioned.user().clone();
    if user.disabled {
        change.rollback().await;
        state
            .audit
            .append(
                AuditEvent::new(Action::LoginFailed, &user.username, "", "refused", meta)
                    .detail(format!("sso disabled subject={subject}")),
            )
            .await?;
        return sso_error_page(
            &meta.request_id,
            sso,
            StatusCode::FORBIDDEN,
            "Your callvault account is disabled. Ask an administrator.",
        );
    }
    let mut events = Vec::new();
    match &provisioned {
        Provisioned::Created(u) => events.push(
            AuditEvent::new(Action::UserChange, &u.username, u.role.as_str(), "ok", meta)
                .detail(format!("created by sso as {} subject={subject}", u.role)),
        ),
        Provisioned::RoleChanged { user: u, from } => events.push(
            AuditEvent::new(Action::UserChange, &u.username, u.role.as_str(), "ok", meta).detail(
                format!(
                    "role from sso claim: {from} -> {} subject={subject}",
                    u.role
                ),
            ),
        ),
        Provisioned::Unchanged(_) => {}
    }
    // The audit row is written before the session exists.
    events.push(
        AuditEvent::new(
            Action::Login,
            &user.username,
            user.role.as_str(),
            "ok",
            meta,
        )
        .detail(format!("sso subject={subject} auth_time={auth_time}")),
    );
    change.commit_many(events).await?;
    // ASVS 3.2.1: a new session, a new generation, nothing carried over but
    // the page to return to and a form this same person was typing.
    let carried_over = crate::auth::pages::CarriedOver::take(session, user.id, now);
    let generation = new_generation()?;
    session.clear();
    session.renew();
    session
        .insert(USER_ID_KEY, user.id)
        .and_then(|_| session.insert(AUTH_AT_KEY, now))
        .and_then(|_| session.insert(GENERATION_KEY, generation))
        .and_then(|_| session.insert(SSO_EXPIRY_KEY, expires_us))
        .map_err(|e| AppError::Internal(format!("session: {e}")))?;
    let mut res = see_other(&carried_over.restore(session, user.role));
    res.add_removal_cookie(&sso.removal_cookie())
        .and_then(|_| {
            res.add_cookie(&crate::auth::session_store::signed_in_marker(
                gate.cookie_secure,
            ))
        })
        .map_err(|e| AppError::Internal(format!("sso cookie: {e}")))?;
    Ok(res)
}

/// What the provider confirmed, for a step-up.
struct Verified<'a> {
    subject: &'a str,
    role: Role,
    auth_time: &'a str,
}

async fn finish_step_up(
    state: &SsoState,
    gate: &Gatekeeper,
    sso: &SsoConsole,
    session: &Session,
    meta: &RequestMeta,
    ctx: StepUpFor,
    verified: Verified<'_>,
) -> Result<HttpResponse, AppError> {
    let Verified {
        subject,
        role,
        auth_time,
    } = verified;
    let principal = current_principal(session, gate).await?;
    let same_sign_in = principal.as_ref().is_some_and(|p| {
        p.user_id == ctx.user_id
            && p.generation == ctx.generation
            && !p.generation.is_empty()
            && p.sso_subject.as_deref() == Some(subject)
    });
    let role_kept = principal.as_ref().is_some_and(|p| p.role == role);
    if !same_sign_in || !role_kept {
        let kind = if same_sign_in {
            "role_changed"
        } else {
            "other_session"
        };
        state
            .audit
            .append(
                AuditEvent::new(
                    Action::StepUpFailed,
                    &ctx.username,
                    &ctx.role,
                    "refused",
                    meta,
                )
                .detail(format!("sso {kind} subject={subject}")),
            )
            .await?;
        return sso_error_page(
            &meta.request_id,
            sso,
            StatusCode::FORBIDDEN,
            "The confirmation does not belong to this sign-in. Sign in again.",
        );
    }
    state
        .audit
        .append(
            AuditEvent::new(Action::StepUp, &ctx.username, &ctx.role, "ok", meta)
                .detail(format!("sso subject={subject} auth_time={auth_time}")),
        )
        .await?;
    StepUp::record(session, ctx.user_id, &ctx.generation, state.clock.now_us())?;
    let mut res = see_other(&ctx.next);
    res.add_removal_cookie(&sso.removal_cookie())
        .map_err(|e| AppError::Internal(format!("sso cookie: {e}")))?;
    Ok(res)
}

/// The console user of `subject` (or of the step-up), else "unknown".
pub(super) async fn known_actor(
    sso: &SsoConsole,
    subject: &str,
    step_up: Option<&StepUpFor>,
) -> Result<String, AppError> {
    if let Some(ctx) = step_up {
        return Ok(ctx.username.clone());
    }
    Ok(sso
        .store
        .by_subject(sso.issuer(), subject)
        .await?
        .map_or_else(|| "unknown".to_owned(), |u| u.username))
}

/// Records a failed sign-in or step-up and shows a clear page; no session
/// changes, the flow cookie is dropped.
pub(super) async fn refuse(
    state: &SsoState,
    sso: &SsoConsole,
    meta: &RequestMeta,
    step_up: Option<&StepUpFor>,
    subject: Option<&str>,
    e: &SsoError,
) -> Result<HttpResponse, AppError> {
    tracing::warn!(kind = e.kind(), error = %e, "single sign-on refused");
    let detail = match subject {
        Some(s) => format!("sso {} subject={s}", e.kind()),
        None => format!("sso {}", e.kind()),
    };
    match step_up {
        // A signed-in user's refusal is a row of its own.
        Some(ctx) => {
            let event = AuditEvent::new(
                Action::StepUpFailed,
                &ctx.username,
                &ctx.role,
                "refused",
                meta,
            )
            .detail(detail);
            state.audit.append(event).await?;
        }
        // Nobody is signed in, and anyone can ask for these pages: counted
        // into one summary row per address and interval, so that a flood of
        // callbacks cannot grow the log without bound.
        None => {
            let event = AuditEvent::new(Action::LoginFailed, "anonymous", "", "refused", meta)
                .detail(detail);
            state.audit.tally_anonymous(&event).await?;
        }
    }
    let (status, message) = match e {
        SsoError::Unreachable(_) | SsoError::Setup(_) => (
            StatusCode::BAD_GATEWAY,
            "The identity provider cannot be reached right now. Try again in a moment, or ask an administrator.",
        ),
        SsoError::ProviderError(_) => (
            StatusCode::FORBIDDEN,
            "The identity provider did not sign you in.",
        ),
        SsoError::StaleAuthTime | SsoError::AuthContext | SsoError::SubjectMismatch => (
            StatusCode::FORBIDDEN,
            "The identity provider did not confirm it is you just now. Try again.",
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "This sign-in could not be completed. Start again from the sign-in page.",
        ),
    };
    sso_error_page(&meta.request_id, sso, status, message)
}

pub(super) fn sso_error_page(
    request_id: &str,
    sso: &SsoConsole,
    status: StatusCode,
    message: &'static str,
) -> Result<HttpResponse, AppError> {
    let mut res = html(&SsoErrorPage {
        layout: Layout::anonymous("Sign-in failed"),
        message,
        request_id: request_id.to_owned(),
    })?;
    *res.status_mut() = status;
    res.add_removal_cookie(&sso.removal_cookie())
        .map_err(|e| AppError::Internal(format!("sso cookie: {e}")))?;
    Ok(res)
}

#[derive(Deserialize)]
pub struct SignInForm {
    local_sign_in: String,
}

/// `POST /admin/sign-in`: local (password) sign-in for everyone, or for
/// admins only (break-glass) once SSO is in place.
pub async fn admin_sign_in(
    state: State,
    admin: Admin,
    req: HttpRequest,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, AppError> {
    let sso = console(&state)?;
    let admins_only = match form.local_sign_in.as_str() {
        "admins_only" => true,
        "all" => false,
        _ => {
            return Err(AppError::BadRequest(
                "local_sign_in is all or admins_only.".into(),
            ))
        }
    };
    let p = admin.principal();
    let mut change = state.audit.begin_change().await?;
    sso.store
        .set_local_sign_in_admins_only(change.conn(), admins_only)
        .await?;
    change
        .commit(
            AuditEvent::new(
                Action::SettingChange,
                &p.username,
                p.role.as_str(),
                "ok",
                &request_meta(&req),
            )
            .detail(format!(
                "local_sign_in = {}",
                if admins_only { "admins_only" } else { "all" }
            )),
        )
        .await?;
    Ok(see_other("/admin/users?m=settings"))
}
