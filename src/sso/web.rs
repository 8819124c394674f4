//! SSO on the web: `GET /login/oidc` starts a sign-in or a step-up at the
//! provider, `GET /login/oidc/callback` finishes it (contract routes), and
//! admins limit local sign-in to admins at `POST /admin/sign-in`.
//!
//! The session cookie is `SameSite=Strict`, so a browser coming back from a
//! provider on another site does not send it. What the flow needs between
//! the hops therefore travels in a cookie of its own (`SameSite=Lax`, path
//! `/login/oidc`, encrypted and authenticated with the session key, ten
//! minutes): first the pending request (state, nonce, PKCE verifier), then
//! the verified result. The callback checks everything, then sends the
//! browser on with a same-site refresh to `?resume=1`, where the session
//! cookie is present again and the sign-in (or step-up) is completed
//! (`signin.rs`).
//!
//! The verified result is good once, in the browser that started: the start
//! puts a random binding in that browser's session and in the flow cookie,
//! the callback records a single-use hand-off in the database, and the
//! resume needs both the binding from its own session and the hand-off,
//! which it deletes. A copied cookie is worth nothing elsewhere or twice.

use std::sync::Arc;

use actix_session::Session;
use actix_web::cookie::{time, Cookie, CookieJar, Key, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::{Deserialize, Serialize};

use super::flow::{CallbackParams, PendingAuth, Purpose, Sso, VerifiedLogin};
use super::signin::{known_actor, refuse, resume, sso_error_page};
use super::store::SsoStore;
use crate::audit::{Action, AuditEvent, AuditLog};
use crate::auth::external::ExternalSignIn;
use crate::auth::principal::{current_principal, Gatekeeper};
use crate::auth::Role;
use crate::clock::SharedClock;
use crate::web::{html, request_meta, see_other, Access, AppError, Layout, Routes};

/// The flow's own cookie (see the module docs).
pub const FLOW_COOKIE: &str = "callvault_oidc";
const FLOW_COOKIE_PATH: &str = "/login/oidc";
const FLOW_COOKIE_MINUTES: i64 = 10;

/// What the SSO pages use; registered once as app data (with `console`
/// None when single sign-on is not configured: its routes are then 404).
pub struct SsoState {
    pub console: Option<Arc<SsoConsole>>,
    pub audit: AuditLog,
    pub clock: SharedClock,
    /// How long a step-up opens reveals for (`CALLVAULT_STEP_UP_MIN`).
    pub step_up_window: std::time::Duration,
}

pub(super) type State = web::Data<SsoState>;

/// SSO as the console runs it: the flow, its store, the flow cookie's key.
pub struct SsoConsole {
    pub flow: Sso,
    pub store: SsoStore,
    cookie_key: Key,
    cookie_secure: bool,
}

impl SsoConsole {
    pub fn new(flow: Sso, store: SsoStore, cookie_key: Key, cookie_secure: bool) -> Self {
        Self {
            flow,
            store,
            cookie_key,
            cookie_secure,
        }
    }

    pub fn provider_name(&self) -> &str {
        &self.flow.settings().provider_name
    }

    /// The provider's issuer URL: subjects are unique only under it.
    pub fn issuer(&self) -> &str {
        &self.flow.settings().issuer
    }

    pub(super) fn flow_cookie(&self, carried: &Carried) -> Result<Cookie<'static>, AppError> {
        let value = zeroize::Zeroizing::new(
            serde_json::to_string(carried)
                .map_err(|_| AppError::Internal("sso: cannot serialise the flow cookie".into()))?,
        );
        let mut jar = CookieJar::new();
        jar.private_mut(&self.cookie_key).add(
            Cookie::build(FLOW_COOKIE, value.as_str().to_owned())
                .path(FLOW_COOKIE_PATH)
                .http_only(true)
                .secure(self.cookie_secure)
                .same_site(SameSite::Lax)
                .max_age(time::Duration::minutes(FLOW_COOKIE_MINUTES))
                .finish(),
        );
        jar.get(FLOW_COOKIE)
            .cloned()
            .ok_or_else(|| AppError::Internal("sso: flow cookie".into()))
    }

    fn read_flow_cookie(&self, req: &HttpRequest) -> Option<Carried> {
        let raw = req.cookie(FLOW_COOKIE)?;
        let mut jar = CookieJar::new();
        jar.add_original(raw.into_owned());
        let plain = jar.private(&self.cookie_key).get(FLOW_COOKIE)?;
        let value = zeroize::Zeroizing::new(plain.value().to_owned());
        serde_json::from_str(&value).ok()
    }

    pub(super) fn removal_cookie(&self) -> Cookie<'static> {
        let mut c = Cookie::build(FLOW_COOKIE, "")
            .path(FLOW_COOKIE_PATH)
            .http_only(true)
            .secure(self.cookie_secure)
            .same_site(SameSite::Lax)
            .finish();
        c.make_removal();
        c
    }
}

/// What `auth` offers of single sign-on (startup hands it this console).
#[async_trait::async_trait]
impl ExternalSignIn for SsoConsole {
    fn provider_name(&self) -> &str {
        SsoConsole::provider_name(self)
    }

    async fn local_sign_in_admins_only(&self) -> Result<bool, AppError> {
        Ok(self.store.local_sign_in_admins_only().await?)
    }

    /// After a local sign-out of an SSO user: on to the provider's sign-out
    /// (a page, not a redirect of the sign-out form, for `form-action 'self'`).
    async fn signed_out_page(&self) -> Result<Option<HttpResponse>, AppError> {
        let Some(url) = self.flow.end_session_url().await else {
            return Ok(None);
        };
        html(&SignedOutPage {
            layout: Layout::anonymous("Signed out"),
            provider: self.provider_name().to_owned(),
            end_session: url.to_string(),
        })
        .map(Some)
    }

    /// The step-up page of an SSO user: a link (not a redirect: a redirect
    /// after the reveal's form would break `form-action 'self'`) to the provider.
    fn step_up_page(
        &self,
        layout: Layout,
        next: &str,
        minutes: u64,
    ) -> Result<HttpResponse, AppError> {
        let q = serde_urlencoded::to_string([("step_up", "1"), ("next", next)])
            .map_err(|_| AppError::Internal("sso: step-up link".into()))?;
        html(&SsoStepUpPage {
            layout,
            provider: self.provider_name().to_owned(),
            minutes,
            start: format!("/login/oidc?{q}"),
        })
    }
}

/// Who asked for a step-up, and where they go back to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StepUpFor {
    pub user_id: i64,
    pub generation: String,
    pub username: String,
    pub role: String,
    pub next: String,
}

/// Session key: the binding of the flow this browser started.
pub(super) const FLOW_BINDING_KEY: &str = "sso_flow_binding";

/// A random value for a binding or a hand-off.
pub(super) fn random_token() -> Result<String, AppError> {
    use base64::Engine as _;
    use rand::TryRngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AppError::Internal(format!("random: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What the flow cookie carries.
#[derive(Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub(super) enum Carried {
    Pending {
        pending: String,
        step_up: Option<StepUpFor>,
        /// Also in the starting browser's session.
        binding: String,
    },
    Verified {
        /// From the pending stage: the resume's session must hold it.
        binding: String,
        /// The single-use hand-off recorded by the callback.
        handoff: String,
        subject: String,
        display_name: Option<String>,
        role: String,
        expires_us: i64,
        auth_time_us: Option<i64>,
        verified_us: i64,
        step_up: Option<StepUpFor>,
    },
}

#[derive(Template)]
#[template(path = "sso/continue.html")]
pub struct ContinuePage {
    pub layout: Layout,
    pub next: &'static str,
}

#[derive(Template)]
#[template(path = "sso/error.html")]
pub struct SsoErrorPage {
    pub layout: Layout,
    pub message: &'static str,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "sso/step_up.html")]
pub struct SsoStepUpPage {
    pub layout: Layout,
    pub provider: String,
    pub minutes: u64,
    pub start: String,
}

#[derive(Template)]
#[template(path = "sso/signed_out.html")]
pub struct SignedOutPage {
    pub layout: Layout,
    pub provider: String,
    pub end_session: String,
}

/// Routes of this capability.
pub fn configure(routes: &mut Routes) {
    routes
        .get("/login/oidc", Access::Public, start)
        .get("/login/oidc/callback", Access::Public, callback)
        .post(
            "/admin/sign-in",
            Role::Admin.access(),
            super::signin::admin_sign_in,
        );
}

pub(super) fn console(state: &SsoState) -> Result<Arc<SsoConsole>, AppError> {
    state.console.clone().ok_or(AppError::NotFound)
}

#[derive(Deserialize)]
pub struct StartQuery {
    step_up: Option<String>,
    next: Option<String>,
}

/// `GET /login/oidc`: to the provider, for a sign-in or (`?step_up=1`) a
/// fresh authentication of the signed-in SSO user.
pub async fn start(
    state: State,
    gate: web::Data<Gatekeeper>,
    session: Session,
    req: HttpRequest,
    q: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let sso = console(&state)?;
    let principal = current_principal(&session, &gate).await?;
    let (purpose, step_up) = match (q.step_up.is_some(), principal) {
        (false, Some(_)) => return Ok(see_other("/")),
        (false, None) => (Purpose::SignIn, None),
        (true, None) => return Err(crate::auth::pages::login_required(None, false)),
        (true, Some(p)) => {
            let next = crate::account::safe_next(q.next.as_deref());
            let Some(subject) = p.sso_subject.clone() else {
                // Local accounts step up with their password and TOTP.
                let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                return Ok(see_other(&format!("/account/step-up?{q}")));
            };
            let window = state.step_up_window.as_secs();
            (
                Purpose::StepUp {
                    subject,
                    max_age_secs: window,
                },
                Some(StepUpFor {
                    user_id: p.user_id,
                    generation: p.generation.clone(),
                    username: p.username.clone(),
                    role: p.role.as_str().to_owned(),
                    next,
                }),
            )
        }
    };
    match sso.flow.begin(purpose).await {
        Ok((url, pending)) => {
            let binding = random_token()?;
            session
                .insert(FLOW_BINDING_KEY, &binding)
                .map_err(|e| AppError::Internal(format!("session: {e}")))?;
            let mut carried = Carried::Pending {
                pending: pending
                    .to_session_value()
                    .map_err(|e| AppError::Internal(e.to_string()))?
                    .to_string(),
                step_up,
                binding,
            };
            let cookie = sso.flow_cookie(&carried);
            if let Carried::Pending { pending, .. } = &mut carried {
                zeroize::Zeroize::zeroize(pending);
            }
            let cookie = cookie?;
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, url.as_str()))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(cookie)
                .finish())
        }
        Err(e) => {
            let meta = request_meta(&req);
            refuse(&state, &sso, &meta, step_up.as_ref(), None, &e).await
        }
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    iss: Option<String>,
    resume: Option<String>,
}

/// `GET /login/oidc/callback`: the provider's answer (first hop), or
/// `?resume=1` (second hop, same-site) to complete what the first verified.
pub async fn callback(
    state: State,
    gate: web::Data<Gatekeeper>,
    session: Session,
    req: HttpRequest,
    q: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let sso = console(&state)?;
    let meta = request_meta(&req);
    let carried = sso.read_flow_cookie(&req);
    let q = q.into_inner();
    if q.resume.is_some() {
        return resume(&state, &gate, &sso, &session, &meta, carried).await;
    }
    let (pending, step_up, binding) = match carried {
        Some(Carried::Pending {
            mut pending,
            step_up,
            binding,
        }) => {
            let parsed = PendingAuth::from_session_value(&pending);
            zeroize::Zeroize::zeroize(&mut pending);
            (parsed, step_up, binding)
        }
        _ => (None, None, String::new()),
    };
    let params = CallbackParams {
        code: q.code,
        state: q.state,
        error: q.error,
        iss: q.iss,
    };
    let login = match sso.flow.finish(pending, &params).await {
        Ok(login) => login,
        Err(e) => return refuse(&state, &sso, &meta, step_up.as_ref(), None, &e).await,
    };
    let role = match &login.role {
        Ok(role) => *role,
        Err(refusal) => {
            let actor = known_actor(&sso, &login.subject, step_up.as_ref()).await?;
            let action = if step_up.is_some() {
                Action::StepUpFailed
            } else {
                Action::LoginFailed
            };
            state
                .audit
                .append(
                    AuditEvent::new(action, &actor, "", "refused", &meta).detail(format!(
                        "sso {} subject={}",
                        refusal.kind(),
                        login.subject
                    )),
                )
                .await?;
            return sso_error_page(
                &request_meta(&req).request_id,
                &sso,
                StatusCode::FORBIDDEN,
                no_role_message(refusal),
            );
        }
    };
    let handoff = random_token()?;
    let now = state.clock.now_us();
    sso.store
        .issue_handoff(
            &handoff,
            now.saturating_add(super::signin::RESUME_WITHIN_US),
        )
        .await?;
    let carried = verified(&state, &login, role, step_up, binding, handoff);
    let cookie = sso.flow_cookie(&carried)?;
    let mut res = html(&ContinuePage {
        layout: Layout::anonymous("Signing in"),
        next: "/login/oidc/callback?resume=1",
    })?;
    res.add_cookie(&cookie)
        .map_err(|e| AppError::Internal(format!("sso cookie: {e}")))?;
    Ok(res)
}

fn verified(
    state: &SsoState,
    login: &VerifiedLogin,
    role: Role,
    step_up: Option<StepUpFor>,
    binding: String,
    handoff: String,
) -> Carried {
    Carried::Verified {
        binding,
        handoff,
        subject: login.subject.clone(),
        display_name: login.display_name.clone(),
        role: role.as_str().to_owned(),
        expires_us: login.expires_us,
        auth_time_us: login.auth_time_us,
        verified_us: state.clock.now_us(),
        step_up,
    }
}

fn no_role_message(r: &super::RoleRefusal) -> &'static str {
    use super::RoleRefusal as R;
    match r {
        R::NoMappedGroup | R::MissingClaim => {
            "You signed in, but none of your groups gives access to callvault. Ask your administrator for access."
        }
        R::SeveralRoles(..) => {
            "Your groups give you more than one callvault role; callvault allows exactly one. Ask your administrator."
        }
        R::WrongType | R::TooLarge => {
            "The identity provider sent group information callvault cannot use. Ask your administrator."
        }
    }
}
