//! Authentication and role checks as extractors: handlers receive a typed
//! principal and never read the session themselves.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_session::{Session, SessionExt as _};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::session_store::{SIGNED_IN_COOKIE, USER_ID_KEY};
use super::users::Users;
use super::Role;
use crate::audit::{Action, AuditEvent, AuditLog};
use crate::clock::SharedClock;
use actix_web::HttpMessage as _;

use crate::web::layout::NavLink;
use crate::web::{request_meta, AppError, NavIdentity};

/// What deciding who a request is needs; registered once as app data.
#[derive(Clone)]
pub struct Gatekeeper {
    pub users: Users,
    pub audit: AuditLog,
    pub clock: SharedClock,
    /// Sessions end this long after sign-in, however active.
    pub absolute_timeout: std::time::Duration,
    /// Sign-in at an identity provider, when configured (startup fills it in).
    pub external: super::external::ExternalHook,
    /// Counts the top bar shows (open decrypt requests under dual control).
    pub counts: Option<std::sync::Arc<dyn NavCounts>>,
    /// Cookies are `Secure` (unless `CALLVAULT_INSECURE_COOKIE`).
    pub cookie_secure: bool,
}

/// What the top bar counts for a signed-in person (filled in by startup, so
/// `auth` need not name the capability that knows).
#[async_trait::async_trait]
pub trait NavCounts: Send + Sync {
    /// Decrypt requests waiting for this person's decision.
    async fn open_requests(&self, p: &Principal) -> i64;
}

/// When the session signed in (µs since the epoch), for the absolute timeout.
pub const AUTH_AT_KEY: &str = "auth_us";
/// Which sign-in the session holds: a random value set at every sign-in, so
/// that what was bound to one sign-in (a step-up) is void in the next.
pub const GENERATION_KEY: &str = "gen";
/// When the ID token of an SSO sign-in expires (µs since the epoch): the
/// session ends then, or at the absolute timeout, whichever is first.
pub const SSO_EXPIRY_KEY: &str = "sso_exp_us";

/// A fresh sign-in generation (128 random bits, hex).
pub fn new_generation() -> Result<String, AppError> {
    use rand::TryRngCore as _;
    let mut raw = [0u8; 16];
    rand::rngs::OsRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| AppError::Internal(format!("random: {e}")))?;
    Ok(hex::encode(raw))
}

/// A signed-in, enabled user, as of this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// The session's sign-in generation ("" for sessions from before it existed).
    pub generation: String,
    /// The OpenID Provider's subject id, for users single sign-on created.
    pub sso_subject: Option<String>,
    /// Decrypt requests waiting for this person's decision, where dual
    /// control is on (`None`: it is off, and the menu has no Requests).
    pub open_requests: Option<i64>,
}

impl Principal {
    /// Whether this user signs in (and steps up) at the identity provider.
    pub fn signs_in_externally(&self, gate: &Gatekeeper) -> bool {
        self.sso_subject.is_some() && gate.external.is_some()
    }
}

impl Principal {
    /// An audit row of this person's action in the request `req`.
    pub fn event(
        &self,
        req: &HttpRequest,
        action: Action,
        outcome: &str,
        detail: &str,
    ) -> AuditEvent {
        AuditEvent::new(
            action,
            &self.username,
            self.role.as_str(),
            outcome,
            &request_meta(req),
        )
        .detail(detail)
    }
}

/// The top bar of each role: the pages it works with. (The kernel's layout
/// shows whatever this says; it names no capability.)
impl NavIdentity for Principal {
    fn nav_username(&self) -> &str {
        &self.username
    }
    fn nav_role(&self) -> &'static str {
        self.role.as_str()
    }
    fn nav_links(&self) -> Vec<NavLink> {
        match self.role {
            Role::Supervisor => {
                let mut links = vec![
                    NavLink::to("/contacts", "Contacts"),
                    NavLink::to("/logs", "Flow logs"),
                ];
                // Requests only where dual control is on.
                if let Some(open) = self.open_requests {
                    links.push(NavLink {
                        count: open,
                        count_label: "waiting for your decision",
                        count_id: "open-requests",
                        ..NavLink::to("/approvals", "Requests")
                    });
                }
                links
            }
            Role::Auditor => vec![
                NavLink::to("/audit", "Audit log"),
                NavLink::to("/audit/volume", "Decrypt volume"),
            ],
            Role::Admin => vec![NavLink::to("/admin/users", "Users")],
        }
    }
    fn nav_account(&self) -> NavLink {
        NavLink::to("/account/totp", "Authenticator")
    }
    fn nav_sign_out(&self) -> &'static str {
        "/logout"
    }
}

/// The outcome of an access check. Must be acted on.
#[must_use]
#[derive(Debug)]
pub enum AccessDecision {
    Proceed(Principal),
    SignInRequired,
    Denied(Principal),
}

/// Who the session belongs to, if anyone: revoked, disabled and timed-out
/// sessions are purged here.
pub async fn current_principal(
    session: &Session,
    gate: &Gatekeeper,
) -> Result<Option<Principal>, AppError> {
    let Some(user_id) = session.get::<i64>(USER_ID_KEY).ok().flatten() else {
        return Ok(None);
    };
    let auth_at = session.get::<i64>(AUTH_AT_KEY).ok().flatten().unwrap_or(0);
    let max_age = i64::try_from(gate.absolute_timeout.as_micros()).unwrap_or(i64::MAX);
    let now = gate.clock.now_us();
    let sso_expired = session
        .get::<i64>(SSO_EXPIRY_KEY)
        .ok()
        .flatten()
        .is_some_and(|exp| now >= exp);
    if now.saturating_sub(auth_at) > max_age || sso_expired {
        session.purge();
        return Ok(None);
    }
    match gate.users.by_id(user_id).await? {
        Some(user) if !user.disabled => Ok(Some(Principal {
            user_id: user.id,
            username: user.username,
            role: user.role,
            generation: session
                .get::<String>(GENERATION_KEY)
                .ok()
                .flatten()
                .unwrap_or_default(),
            sso_subject: user.sso_subject,
            open_requests: None,
        })),
        _ => {
            session.purge();
            Ok(None)
        }
    }
}

pub async fn decide(
    session: &Session,
    gate: &Gatekeeper,
    role: Option<Role>,
) -> Result<AccessDecision, AppError> {
    Ok(match current_principal(session, gate).await? {
        None => AccessDecision::SignInRequired,
        Some(p) if role.is_none_or(|r| r == p.role) => AccessDecision::Proceed(p),
        Some(p) => AccessDecision::Denied(p),
    })
}

pub trait RoleRequirement {
    const ROLE: Option<Role>;
}

pub struct AnyRole;
pub struct SupervisorRole;
pub struct AuditorRole;
pub struct AdminRole;

impl RoleRequirement for AnyRole {
    const ROLE: Option<Role> = None;
}
impl RoleRequirement for SupervisorRole {
    const ROLE: Option<Role> = Some(Role::Supervisor);
}
impl RoleRequirement for AuditorRole {
    const ROLE: Option<Role> = Some(Role::Auditor);
}
impl RoleRequirement for AdminRole {
    const ROLE: Option<Role> = Some(Role::Admin);
}

/// A principal holding the role `R` requires. Anonymous requests are sent to
/// sign in; a wrong role gets a 403 page and an `access_denied` audit row.
pub struct Require<R: RoleRequirement>(pub Principal, PhantomData<R>);

pub type SignedIn = Require<AnyRole>;
pub type Supervisor = Require<SupervisorRole>;
pub type Auditor = Require<AuditorRole>;
pub type Admin = Require<AdminRole>;

impl<R: RoleRequirement> Require<R> {
    pub fn principal(&self) -> &Principal {
        &self.0
    }
}

impl<R: RoleRequirement + 'static> FromRequest for Require<R> {
    type Error = AppError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AppError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let gate = req
                .app_data::<actix_web::web::Data<Gatekeeper>>()
                .cloned()
                .ok_or_else(|| AppError::Internal("the gatekeeper is not configured".into()))?;
            let session = req.get_session();
            let mut decision = decide(&session, &gate, R::ROLE).await?;
            if let AccessDecision::Proceed(p) | AccessDecision::Denied(p) = &mut decision {
                if let Some(counts) = &gate.counts {
                    p.open_requests = Some(counts.open_requests(p).await);
                }
                // Every page of this request, error pages too, keeps the
                // navigation and its counts.
                if let Ok(csrf) = super::csrf::token(&session) {
                    req.extensions_mut()
                        .insert(crate::web::layout::SignedInNav {
                            user: crate::web::layout::NavUser::of(p),
                            csrf,
                        });
                }
            }
            match decision {
                AccessDecision::Proceed(p) => Ok(Require(p, PhantomData)),
                AccessDecision::SignInRequired => Err(super::pages::login_required(
                    // Back to this page after signing in (pages, not forms).
                    (req.method() == actix_web::http::Method::GET)
                        .then(|| req.uri().path_and_query().map(|pq| pq.as_str()))
                        .flatten(),
                    // This browser was signed in: its session ended.
                    req.cookie(SIGNED_IN_COOKIE).is_some(),
                )),
                AccessDecision::Denied(p) => {
                    let meta = request_meta(&req);
                    let path: String = req.path().chars().take(200).collect();
                    let event = AuditEvent::new(
                        Action::AccessDenied,
                        &p.username,
                        p.role.as_str(),
                        "denied",
                        &meta,
                    )
                    .detail(format!("{} {path}", req.method()));
                    if let Err(e) = gate.audit.append(event).await {
                        tracing::error!(error = %e, "cannot audit an access denial");
                    }
                    Err(AppError::Forbidden)
                }
            }
        })
    }
}
