//! Dual control: the decrypt requests page, another supervisor's decision,
//! and the requester's single reveal of an approved request.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::ContactId;

use super::admission::{join, Ask, Channel, SecondFactor};
use super::approvals::{ApprovalError, DecryptRequest};
use super::policy::ApprovalMode;
use super::reveal_form::{respond, Kept};
use super::RevealState;
use crate::audit::{Action, AuditEvent, Recorded, Refusal};
use crate::auth::csrf;
use crate::auth::principal::{Principal, Supervisor};
use crate::auth::step_up::{StepUp, STEP_UP_KEY};
use crate::clock::local_time;
use crate::web::{html, request_meta, see_other, AppError, Layout};

type State = web::Data<RevealState>;

pub struct RequestView {
    pub id: String,
    pub mine: bool,
    pub can_decide: bool,
    pub can_reveal: bool,
    pub requester: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub case_ref: String,
    pub created: String,
    pub expires: String,
    pub status: String,
    /// The status in words, naming who did what: "approved by kim",
    /// "revealed by sam (approved by kim)", "rejected by kim: wrong contact".
    pub status_text: String,
}

#[derive(Template)]
#[template(path = "decrypt/approvals.html")]
pub struct ApprovalsPage {
    pub layout: Layout,
    /// The reader's time zone, named beside the times.
    pub zone: String,
    pub mine: Vec<RequestView>,
    /// Others' requests waiting for a decision: the inbox.
    pub inbox: Vec<RequestView>,
    /// Others' requests already decided, used or expired (last 24 hours).
    pub others: Vec<RequestView>,
    /// Seconds until the page refreshes itself, while one of the viewer's
    /// requests waits for a decision (0: no refresh).
    pub refresh_secs: u64,
    pub enabled: bool,
    pub expiry_min: u64,
    pub notice: Option<&'static str>,
}

fn view(r: &DecryptRequest, me: &str, now_us: i64, zone: chrono_tz::Tz) -> RequestView {
    let status = r.shown_status(now_us).to_owned();
    let status_text = match status.as_str() {
        "approved" => format!("approved by {}", r.decided_by),
        "used" => format!("revealed by {} (approved by {})", r.requester, r.decided_by),
        "rejected" if r.decision_note.is_empty() => format!("rejected by {}", r.decided_by),
        "rejected" => format!("rejected by {}: {}", r.decided_by, r.decision_note),
        other => other.to_owned(),
    };
    RequestView {
        status_text,
        id: r.id.clone(),
        mine: r.requester == me,
        can_decide: r.requester != me && status == "pending",
        can_reveal: r.requester == me && status == "approved",
        requester: r.requester.clone(),
        contact_id: r.contact_id.clone(),
        field: r.field.clone(),
        reason: r.reason.clone(),
        case_ref: r.case_ref.clone(),
        created: local_time(r.created_us, zone),
        expires: local_time(r.expires_us, zone),
        status,
    }
}

#[derive(serde::Deserialize)]
pub struct ApprovalsQuery {
    m: Option<String>,
}

pub async fn approvals_page(
    state: State,
    sup: Supervisor,
    session: Session,
    q: web::Query<ApprovalsQuery>,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let zone = state.users.time_zone(p.user_id).await?;
    let state = &state.reveals;
    let now = state.clock.now_us();
    let requests = state.approvals.recent(200).await.map_err(AppError::from)?;
    let (mine, others): (Vec<_>, Vec<_>) = requests
        .iter()
        .map(|r| view(r, &p.username, now, zone))
        .partition(|v| v.mine);
    let (inbox, others): (Vec<_>, Vec<_>) = others.into_iter().partition(|v| v.status == "pending");
    let waiting = mine.iter().any(|v| v.status == "pending");
    let notice = match q.m.as_deref() {
        Some("requested") => Some(
            "Request created. Another supervisor must approve it before you can reveal the value.",
        ),
        Some("approved") => {
            Some("Request approved. Only the requester can reveal the value, once.")
        }
        Some("rejected") => Some("Request rejected."),
        _ => None,
    };
    html(&ApprovalsPage {
        layout: Layout::signed_in("Decrypt requests", p, csrf::token(&session)?),
        zone: zone.name().to_owned(),
        refresh_secs: if waiting { 15 } else { 0 },
        mine,
        inbox,
        others,
        enabled: state.policy.approval == ApprovalMode::Required,
        expiry_min: state.policy.approval_expiry.as_secs() / 60,
        notice,
    })
}

/// A refused decision on, or use of, a request (recorded as `decrypt_approval`).
#[derive(Debug)]
struct ApprovalRefused {
    error: ApprovalError,
    detail: &'static str,
}

impl Refusal for ApprovalRefused {
    fn action(&self) -> Action {
        Action::DecryptApproval
    }
    fn outcome(&self) -> std::borrow::Cow<'static, str> {
        self.error.kind().into()
    }
    fn detail(&self) -> String {
        self.detail.to_owned()
    }
}

impl From<Recorded<ApprovalRefused>> for AppError {
    fn from(r: Recorded<ApprovalRefused>) -> Self {
        r.into_refusal().error.into()
    }
}

/// Records a refused decision or use of request `id`, ready to answer.
async fn refuse(
    state: &State,
    req: &HttpRequest,
    p: &Principal,
    request: Option<&DecryptRequest>,
    id: &str,
    refused: ApprovalRefused,
) -> AppError {
    let recorded = state
        .reveals
        .audit
        .refuse(refused, |action, outcome, detail| {
            approval_event(req, p, action, outcome, request, id, &detail)
        })
        .await;
    match recorded {
        Ok(r) => r.into(),
        Err(e) => e.into(),
    }
}

fn approval_event(
    req: &HttpRequest,
    p: &Principal,
    action: Action,
    outcome: &str,
    request: Option<&DecryptRequest>,
    id: &str,
    detail: &str,
) -> AuditEvent {
    let id_text: String = id.chars().take(64).collect();
    let mut event = AuditEvent::new(
        action,
        &p.username,
        p.role.as_str(),
        outcome,
        &request_meta(req),
    )
    .detail(join(&format!("request {id_text}"), detail));
    if let Some(r) = request {
        event = event
            .contact(&r.contact_id, &r.field)
            .reason(&r.reason)
            .case_ref(&r.case_ref);
    }
    event
}

/// Longest rejection note kept (characters).
const MAX_NOTE_CHARS: usize = 200;

#[derive(serde::Deserialize, Default)]
pub struct DecisionForm {
    #[serde(default)]
    note: String,
}

async fn decide(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: String,
    approve: bool,
    note: &str,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let note: String = crate::text::one_line(note)
        .trim()
        .chars()
        .take(MAX_NOTE_CHARS)
        .collect();
    // The decision and its audit row commit together, or neither does.
    let mut change = state.reveals.audit.begin_change().await?;
    match state
        .reveals
        .approvals
        .decide(change.conn(), &id, &p.username, approve, &note)
        .await
    {
        Ok(r) => {
            let outcome = if approve { "approved" } else { "rejected" };
            change
                .commit(approval_event(
                    &req,
                    p,
                    Action::DecryptApproval,
                    outcome,
                    Some(&r),
                    &id,
                    &if r.decision_note.is_empty() {
                        format!("requested by {}", r.requester)
                    } else {
                        format!("requested by {}; note: {}", r.requester, r.decision_note)
                    },
                ))
                .await?;
            Ok(see_other(&format!("/approvals?m={outcome}")))
        }
        Err(ApprovalError::Db(e)) => Err(e.into()),
        Err(error) => {
            change.rollback().await;
            let r = state.reveals.approvals.get(&id).await.ok();
            let refused = ApprovalRefused { error, detail: "" };
            Err(refuse(&state, &req, p, r.as_ref(), &id, refused).await)
        }
    }
}

pub async fn approve(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(state, sup, req, id.into_inner(), true, "").await
}

pub async fn reject(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: web::Path<String>,
    form: Option<web::Form<DecisionForm>>,
) -> Result<HttpResponse, AppError> {
    let note = form.map(|f| f.into_inner().note).unwrap_or_default();
    decide(state, sup, req, id.into_inner(), false, &note).await
}

/// The requester's single reveal of an approved request. The request is
/// only looked at here; the admission uses it up once step-up and budget
/// have passed, so their refusals leave it usable.
pub async fn reveal(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let id = id.into_inner();
    let refused = |error| ApprovalRefused {
        error,
        detail: "reveal refused",
    };
    let request = match state.reveals.approvals.get(&id).await {
        Ok(r) if r.requester == p.username => r,
        Ok(r) => {
            let no = refused(ApprovalError::NotRequester);
            return Err(refuse(&state, &req, p, Some(&r), &id, no).await);
        }
        Err(ApprovalError::Db(e)) => return Err(e.into()),
        Err(e) => return Err(refuse(&state, &req, p, None, &id, refused(e)).await),
    };
    let Ok(contact_id) = ContactId::parse(&request.contact_id) else {
        return Err(AppError::Internal("a stored request is malformed".into()));
    };
    let meta = request_meta(&req);
    let kept = Kept {
        back: "/approvals".to_owned(),
        field: request.field.clone(),
        reason: request.reason.clone(),
        case_ref: request.case_ref.clone(),
    };
    let channel = Channel::Approval {
        request_id: id,
        approved_by: request.decided_by.clone(),
    };
    let ask = Ask::by(
        p,
        channel,
        contact_id,
        &request.field,
        &request.reason,
        &request.case_ref,
        meta,
    );
    let proof = SecondFactor::Session(session.get::<StepUp>(STEP_UP_KEY).ok().flatten());
    let result = state.reveals.reveal(ask, proof).await;
    respond(&state, &session, &req, p, kept, result).await
}
