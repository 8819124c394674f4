//! Dual control: the decrypt requests page, another supervisor's decision,
//! and the requester's single reveal of an approved request.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::{ContactId, FieldName};

use super::approvals::{ApprovalError, DecryptRequest};
use super::policy::ApprovalMode;
use super::reveal::{join, RevealCtx};
use super::{Reason, RevealState};
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::{Principal, Supervisor};
use crate::clock::format_us;
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
    pub decided_by: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "decrypt/approvals.html")]
pub struct ApprovalsPage {
    pub layout: Layout,
    pub mine: Vec<RequestView>,
    pub others: Vec<RequestView>,
    pub enabled: bool,
    pub expiry_min: u64,
    pub notice: Option<&'static str>,
}

fn view(r: &DecryptRequest, me: &str, now_us: i64) -> RequestView {
    let status = r.shown_status(now_us).to_owned();
    RequestView {
        id: r.id.clone(),
        mine: r.requester == me,
        can_decide: r.requester != me && status == "pending",
        can_reveal: r.requester == me && status == "approved",
        requester: r.requester.clone(),
        contact_id: r.contact_id.clone(),
        field: r.field.clone(),
        reason: r.reason.clone(),
        case_ref: r.case_ref.clone(),
        created: format_us(r.created_us),
        expires: format_us(r.expires_us),
        decided_by: r.decided_by.clone(),
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
    let now = state.clock.now_us();
    let requests = state.approvals.recent(200).await.map_err(AppError::from)?;
    let (mine, others): (Vec<_>, Vec<_>) = requests
        .iter()
        .map(|r| view(r, &p.username, now))
        .partition(|v| v.mine);
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
        mine,
        others,
        enabled: state.policy.approval == ApprovalMode::Required,
        expiry_min: state.policy.approval_expiry.as_secs() / 60,
        notice,
    })
}

async fn audit_approval(
    state: &State,
    req: &HttpRequest,
    p: &Principal,
    outcome: &str,
    request: Option<&DecryptRequest>,
    id: &str,
    detail: &str,
) -> Result<(), AppError> {
    state
        .audit
        .append(approval_event(req, p, outcome, request, id, detail))
        .await?;
    Ok(())
}

fn approval_event(
    req: &HttpRequest,
    p: &Principal,
    outcome: &str,
    request: Option<&DecryptRequest>,
    id: &str,
    detail: &str,
) -> AuditEvent {
    let id_text: String = id.chars().take(64).collect();
    let mut event = AuditEvent::new(
        Action::DecryptApproval,
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

async fn decide(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: String,
    approve: bool,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    // The decision and its audit row commit together, or neither does.
    let mut change = state.audit.begin_change().await?;
    match state
        .approvals
        .decide(change.conn(), &id, &p.username, approve)
        .await
    {
        Ok(r) => {
            let outcome = if approve { "approved" } else { "rejected" };
            change
                .commit(approval_event(
                    &req,
                    p,
                    outcome,
                    Some(&r),
                    &id,
                    &format!("requested by {}", r.requester),
                ))
                .await?;
            Ok(see_other(&format!("/approvals?m={outcome}")))
        }
        Err(ApprovalError::Db(e)) => Err(e.into()),
        Err(e) => {
            change.rollback().await;
            let r = state.approvals.get(&id).await.ok();
            audit_approval(&state, &req, p, e.kind(), r.as_ref(), &id, "").await?;
            Err(e.into())
        }
    }
}

pub async fn approve(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(state, sup, req, id.into_inner(), true).await
}

pub async fn reject(
    state: State,
    sup: Supervisor,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    decide(state, sup, req, id.into_inner(), false).await
}

/// The requester's single reveal of an approved request.
pub async fn reveal(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let id = id.into_inner();
    // Look first (without consuming) so that step-up and budget refusals
    // leave the approval usable.
    let request = match state.approvals.get(&id).await {
        Ok(r) if r.requester == p.username => r,
        Ok(r) => {
            audit_approval(
                &state,
                &req,
                p,
                "not_requester",
                Some(&r),
                &id,
                "reveal refused",
            )
            .await?;
            return Err(AppError::Forbidden);
        }
        Err(ApprovalError::Db(e)) => return Err(e.into()),
        Err(e) => {
            audit_approval(&state, &req, p, e.kind(), None, &id, "reveal refused").await?;
            return Err(e.into());
        }
    };
    let (Ok(contact_id), Ok(field), Ok(reason)) = (
        ContactId::parse(&request.contact_id),
        FieldName::parse(&request.field),
        Reason::parse(&request.reason),
    ) else {
        return Err(AppError::Internal("a stored request is malformed".into()));
    };
    let ctx = RevealCtx {
        state: &state,
        session: &session,
        principal: p,
        meta: request_meta(&req),
        contact_id,
        field_text: request.field.clone(),
        reason_text: request.reason.clone(),
        case_text: request.case_ref.clone(),
        detail: format!("request {id} approved by {}", request.decided_by),
        initial: std::cell::OnceCell::new(),
    };
    let _permit = ctx.admit("/approvals").await?;
    match state.approvals.consume(&id, &p.username).await {
        Ok(_) => {}
        Err(ApprovalError::Db(e)) => return Err(e.into()),
        Err(e) => {
            ctx.deny(&format!("approval_{}", e.kind()), String::new())
                .await?;
            return Err(e.into());
        }
    }
    ctx.reveal(field, reason).await
}
