//! What every reveal passes through on the web (step-up, budget, the audited
//! reveal and its never-cached page), and the dual-control pages.

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use lambda_encrypt::context::{ContactId, FieldName};

use super::approvals::{ApprovalError, DecryptRequest};
use super::policy::{step_up_fresh, BudgetError, BudgetPermit, StepUp, STEP_UP_KEY};
use super::{Reason, RevealError, RevealRequest};
use crate::audit::{Action, AuditEvent, RequestMeta};
use crate::auth::csrf;
use crate::auth::principal::{Principal, Supervisor};
use crate::auth::totp::Enrolment;
use crate::auth::Role;
use crate::clock::format_us;
use crate::web::error::AppError;
use crate::web::middleware::request_meta;
use crate::web::templates::{html, ApprovalsPage, Layout, RequestView, RevealPage};
use crate::web::{see_other, State};

/// One reveal being decided: who, what, why, and how refusals are recorded.
pub struct RevealCtx<'a> {
    pub state: &'a State,
    pub session: &'a Session,
    pub principal: &'a Principal,
    pub meta: RequestMeta,
    pub contact_id: ContactId,
    pub field_text: String,
    pub reason_text: String,
    /// Extra words for every row (e.g. the approval it uses).
    pub detail: String,
}

impl RevealCtx<'_> {
    /// Records a refused decrypt.
    pub async fn deny(&self, outcome: &str, detail: String) -> Result<(), AppError> {
        let p = self.principal;
        let event = AuditEvent::new(
            Action::DecryptDenied,
            &p.username,
            p.role.as_str(),
            outcome,
            &self.meta,
        )
        .contact(self.contact_id.as_str(), &self.field_text)
        .reason(&self.reason_text)
        .detail(join(&self.detail, &detail));
        self.state.audit.append(event).await?;
        Ok(())
    }

    /// Step-up and budget, checked before any key is used.
    pub async fn admit(&self, back: &str) -> Result<BudgetPermit, AppError> {
        let state = self.state;
        let p = self.principal;
        let enrolment = state.totp.enrolment(p.user_id).await?;
        let mandatory = p.role == Role::Supervisor && state.totp.mandatory().await?;
        if enrolment != Enrolment::Active && mandatory {
            self.deny("totp_not_enrolled", String::new()).await?;
            return Err(AppError::EnrolFirst);
        }
        if enrolment == Enrolment::Active {
            let stepped = self.session.get::<StepUp>(STEP_UP_KEY).ok().flatten();
            if !step_up_fresh(
                stepped.as_ref(),
                p.user_id,
                &p.generation,
                state.clock.now_us(),
                state.settings.policy.step_up_window,
            ) {
                self.deny("step_up_required", String::new()).await?;
                return Err(AppError::StepUpRequired(back.to_owned()));
            }
        }
        match state.budget.reserve(&p.username).await {
            Ok(permit) => Ok(permit),
            Err(BudgetError::Exceeded { used, limit }) => {
                // The alert: auditors see these rows on their dashboard.
                self.deny(
                    "budget_exceeded",
                    format!("{used} of {limit} per hour used"),
                )
                .await?;
                Err(AppError::BudgetExceeded(limit))
            }
            Err(BudgetError::Audit(e)) => Err(e.into()),
        }
    }

    /// The contact's stored value of `field` and the contact it is bound to
    /// (its initial contact, after transfers). Refusals are recorded.
    pub async fn stored_value(&self, field: &FieldName) -> Result<(String, ContactId), AppError> {
        let state = self.state;
        let summary = match state.directory.describe(&self.contact_id).await {
            Ok(s) => s,
            Err(e) => {
                self.deny(&format!("error:{}", e.kind()), String::new())
                    .await?;
                return Err(e.into());
            }
        };
        let initial = summary.initial_contact_id.unwrap_or(summary.id);
        let stored = match state.directory.attributes(&initial).await {
            Ok(mut attrs) => attrs.remove(field.as_str()),
            Err(e) => {
                self.deny(&format!("error:{}", e.kind()), String::new())
                    .await?;
                return Err(e.into());
            }
        };
        match stored {
            Some(value) => Ok((value, initial)),
            None => {
                self.deny("no_such_field", String::new()).await?;
                Err(AppError::NotFound)
            }
        }
    }

    /// Loads the stored value and reveals it through the audited path.
    pub async fn reveal(self, field: FieldName, reason: Reason) -> Result<HttpResponse, AppError> {
        let state = self.state;
        let id = self.contact_id.clone();
        let (stored_value, initial) = self.stored_value(&field).await?;
        let Some(revealer) = state.revealer.clone() else {
            self.deny("not_configured", String::new()).await?;
            return Err(AppError::DecryptUnavailable);
        };
        let p = self.principal;
        let request = RevealRequest {
            actor: p.username.clone(),
            role: p.role.as_str().to_owned(),
            contact_id: id.clone(),
            initial_contact_id: (initial != id).then_some(initial),
            field: field.clone(),
            stored_value,
            reason,
            meta: self.meta.clone(),
            detail: self.detail.clone(),
            budget: state.budget.cap(),
        };
        match revealer.reveal(request).await {
            Ok(revealed) => {
                let page = RevealPage {
                    layout: Layout::signed_in("Revealed value", p, csrf::token(self.session)?),
                    contact_id: id.to_string(),
                    field: field.to_string(),
                    value: revealed
                        .plaintext
                        .expose_str()
                        .unwrap_or("(not text)")
                        .to_owned(),
                    legacy: revealed.legacy,
                    audit_seq: revealed.audit_seq,
                    request_id: self.meta.request_id.clone(),
                };
                let mut res = html(&page)?;
                // ASVS 8.2.1 / 8.1.1: never cached, never stored in history.
                res.headers_mut().insert(
                    header::CACHE_CONTROL,
                    header::HeaderValue::from_static("no-store, max-age=0"),
                );
                res.headers_mut()
                    .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
                Ok(res)
            }
            Err(RevealError::Audit(e)) => Err(AppError::Audit(e)),
            Err(RevealError::OverBudget { limit, .. }) => Err(AppError::BudgetExceeded(limit)),
            Err(RevealError::Denied { kind }) => {
                let mut res = AppError::BadRequest(format!(
                    "This ciphertext is not bound to this contact and field ({kind}). Nothing was decrypted; the attempt was recorded."
                ))
                .error_response_owned();
                *res.status_mut() = StatusCode::FORBIDDEN;
                Ok(res)
            }
            Err(RevealError::Failed { kind }) => {
                let mut res = AppError::BadRequest(format!(
                    "The value could not be decrypted ({kind}). Nothing was revealed; the attempt was recorded."
                ))
                .error_response_owned();
                *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                Ok(res)
            }
        }
    }
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}; {b}"),
    }
}

// ---- dual control --------------------------------------------------------------

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
    let requests = state.approvals.recent(200).await.map_err(approval_db)?;
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
        enabled: state.settings.policy.approval == super::policy::ApprovalMode::Required,
        expiry_min: state.settings.policy.approval_expiry.as_secs() / 60,
        notice,
    })
}

fn approval_db(e: ApprovalError) -> AppError {
    match e {
        ApprovalError::Db(db) => AppError::Db(db),
        ApprovalError::NotFound => AppError::NotFound,
        ApprovalError::SelfApproval | ApprovalError::NotRequester => AppError::Forbidden,
        other => AppError::Conflict(other.to_string()),
    }
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
        event = event.contact(&r.contact_id, &r.field).reason(&r.reason);
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
            Err(approval_db(e))
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
            return Err(approval_db(e));
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
        detail: format!("request {id} approved by {}", request.decided_by),
    };
    let _permit = ctx.admit("/approvals").await?;
    match state.approvals.consume(&id, &p.username).await {
        Ok(_) => {}
        Err(ApprovalError::Db(e)) => return Err(e.into()),
        Err(e) => {
            ctx.deny(&format!("approval_{}", e.kind()), String::new())
                .await?;
            return Err(approval_db(e));
        }
    }
    ctx.reveal(field, reason).await
}
