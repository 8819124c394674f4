//! What every reveal passes through on the web (role, reason, step-up,
//! budget, the audited reveal and its never-cached page): the decrypt form's
//! handler, and the context the dual-control reveal shares.

use std::cell::OnceCell;

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::{ContactId, FieldName};
use serde::Deserialize;

use super::policy::{ApprovalMode, BudgetError, BudgetPermit};
use super::refusal::Refusal;
use super::{Reason, RevealError, RevealRequest, RevealState, MAX_REASON_CHARS};
use crate::audit::{Action, AuditEvent, RequestMeta};
use crate::auth::csrf;
use crate::auth::kept::KeptForm;
use crate::auth::principal::{Principal, SignedIn};
use crate::auth::step_up::{step_up_fresh, StepUp, STEP_UP_KEY};
use crate::auth::totp::Enrolment;
use crate::auth::Role;
use crate::clock::format_us;
use crate::web::{html, request_meta, see_other, AppError, Layout};

type State = web::Data<RevealState>;

#[derive(Template)]
#[template(path = "decrypt/reveal.html")]
pub struct RevealPage {
    pub layout: Layout,
    pub contact_id: String,
    pub field: String,
    pub value: String,
    pub legacy: bool,
    pub case_ref: String,
    /// Seconds until the page replaces itself with the contact page.
    pub show_secs: u64,
    pub audit_seq: i64,
    pub request_id: String,
}

/// Parses a contact id from a path or form, or answers 404 (hostile values included).
pub fn contact_id(raw: &str) -> Result<ContactId, AppError> {
    ContactId::parse(raw).map_err(|_| AppError::NotFound)
}

/// One reveal being decided: who, what, why, and how refusals are recorded.
pub struct RevealCtx<'a> {
    pub state: &'a State,
    pub session: &'a Session,
    pub principal: &'a Principal,
    pub meta: RequestMeta,
    pub contact_id: ContactId,
    pub field_text: String,
    pub reason_text: String,
    /// The case or ticket reference as given (checked, or cut short when refused).
    pub case_text: String,
    /// Extra words for every row (e.g. the approval it uses).
    pub detail: String,
    /// The contact's initial contact id, once read (transferred legs): on
    /// every row, so auditors find the reveal by either id.
    pub initial: OnceCell<String>,
}

impl RevealCtx<'_> {
    /// A row about this reveal.
    fn event(&self, action: Action, outcome: &str, detail: &str) -> AuditEvent {
        let p = self.principal;
        AuditEvent::new(action, &p.username, p.role.as_str(), outcome, &self.meta)
            .contact(self.contact_id.as_str(), &self.field_text)
            .reason(&self.reason_text)
            .case_ref(&self.case_text)
            .initial_contact(self.initial.get().map_or("", String::as_str))
            .detail(join(&self.detail, detail))
    }

    /// Records a refused decrypt.
    pub async fn deny(&self, outcome: &str, detail: String) -> Result<(), AppError> {
        let event = self.event(Action::DecryptDenied, outcome, &detail);
        self.state.audit.append(event).await?;
        Ok(())
    }

    /// Records that the reveal waits for a step-up (not a refusal), keeps
    /// what was typed for this person, and sends them to confirm.
    async fn wait_for_step_up(&self, back: &str) -> AppError {
        let event = self.event(Action::StepUpRequired, "pending", "");
        if let Err(e) = self.state.audit.append(event).await {
            return e.into();
        }
        if back.starts_with("/contacts/") {
            KeptForm::keep(
                self.session,
                self.principal,
                back,
                vec![
                    ("field".to_owned(), self.field_text.clone()),
                    ("reason".to_owned(), self.reason_text.clone()),
                    ("case_ref".to_owned(), self.case_text.clone()),
                ],
                self.state.clock.now_us(),
            );
        }
        Refusal::StepUpRequired(back.to_owned()).into()
    }

    /// Step-up and budget, checked before any key is used.
    pub async fn admit(&self, back: &str) -> Result<BudgetPermit, AppError> {
        let state = self.state;
        let p = self.principal;
        let enrolment = state.totp.enrolment(p.user_id).await?;
        // Single sign-on users always confirm at the provider (its MFA is
        // their second factor); local accounts use TOTP as before.
        let sso_user = p.sso_subject.is_some() && state.external.is_some();
        let mandatory = p.role == Role::Supervisor && state.totp.mandatory().await?;
        if enrolment != Enrolment::Active && mandatory && !sso_user {
            self.deny("totp_not_enrolled", String::new()).await?;
            return Err(Refusal::EnrolFirst.into());
        }
        if enrolment == Enrolment::Active || sso_user {
            let stepped = self.session.get::<StepUp>(STEP_UP_KEY).ok().flatten();
            if !step_up_fresh(
                stepped.as_ref(),
                p.user_id,
                &p.generation,
                state.clock.now_us(),
                state.policy.step_up_window,
            ) {
                return Err(self.wait_for_step_up(back).await);
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
                Err(Refusal::BudgetExceeded(limit).into())
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
        if initial != self.contact_id {
            let _ = self.initial.set(initial.to_string());
        }
        let stored = match state.directory.fresh_attributes(&initial).await {
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
            return Err(Refusal::Unavailable.into());
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
            case_ref: self.case_text.clone(),
            meta: self.meta.clone(),
            detail: self.detail.clone(),
            budget: state.budget.cap(),
        };
        match revealer.reveal(request).await {
            Ok(revealed) => {
                // Done: what was kept for this reveal is not offered again.
                KeptForm::forget(self.session);
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
                    case_ref: self.case_text.clone(),
                    show_secs: state.policy.show_for.as_secs(),
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
            Err(RevealError::Audit(e)) => Err(e.into()),
            Err(RevealError::OverBudget { limit, .. }) => {
                Err(Refusal::BudgetExceeded(limit).into())
            }
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

pub(super) fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (_, true) => a.to_owned(),
        _ => format!("{a}; {b}"),
    }
}

#[derive(Deserialize)]
pub struct DecryptForm {
    field: String,
    reason: String,
    #[serde(default)]
    case_ref: String,
}

pub async fn decrypt(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<DecryptForm>,
) -> Result<HttpResponse, AppError> {
    let p = user.principal().clone();
    let id = contact_id(&id)?;
    let form = form.into_inner();
    let mut ctx = RevealCtx {
        state: &state,
        session: &session,
        principal: &p,
        meta: request_meta(&req),
        contact_id: id.clone(),
        field_text: crate::text::one_line(&form.field)
            .chars()
            .take(64)
            .collect(),
        reason_text: String::new(),
        case_text: crate::text::one_line(&form.case_ref)
            .chars()
            .take(super::case::MAX_CASE_CHARS)
            .collect(),
        detail: String::new(),
        initial: OnceCell::new(),
    };
    // Separation of duties: only supervisors reveal; everyone else is refused and recorded.
    if p.role != Role::Supervisor {
        ctx.reason_text = crate::text::one_line(&form.reason)
            .chars()
            .take(MAX_REASON_CHARS)
            .collect();
        ctx.deny("role", String::new()).await?;
        return Err(AppError::Forbidden);
    }
    let Ok(field) = FieldName::parse(&form.field) else {
        ctx.deny("bad_field", String::new()).await?;
        return Err(AppError::BadRequest("That is not a field name.".into()));
    };
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            ctx.deny("no_reason", String::new()).await?;
            return Err(AppError::BadRequest(format!(
                "A reason is required to reveal a value ({e})."
            )));
        }
    };
    ctx.reason_text = reason.as_str().to_owned();
    match state.policy.case.parse(&form.case_ref) {
        Ok(case) => ctx.case_text = case,
        Err(e) => {
            ctx.deny(e.kind(), String::new()).await?;
            let rule = &state.policy.case;
            return Err(AppError::BadRequest(format!(
                "{}: {e} (expected: {}). Nothing was revealed; the attempt was recorded.",
                rule.label, rule.pattern
            )));
        }
    }
    if state.revealer.is_none() {
        ctx.deny("not_configured", String::new()).await?;
        return Err(Refusal::Unavailable.into());
    }
    if state.policy.approval == ApprovalMode::Required {
        return request_approval(ctx, field, reason).await;
    }
    let _permit = ctx.admit(&format!("/contacts/{}", id.as_str())).await?;
    ctx.reveal(field, reason).await
}

/// Dual control: the decrypt becomes a request for another supervisor.
async fn request_approval(
    ctx: RevealCtx<'_>,
    field: FieldName,
    reason: Reason,
) -> Result<HttpResponse, AppError> {
    let state = ctx.state;
    // Only fields the contact holds can be requested.
    ctx.stored_value(&field).await?;
    let p = ctx.principal;
    // The request and its audit row commit together, or neither does.
    let mut change = state.audit.begin_change().await?;
    let request = state
        .approvals
        .create(
            change.conn(),
            &p.username,
            ctx.contact_id.as_str(),
            field.as_str(),
            reason.as_str(),
            &ctx.case_text,
            state.policy.approval_expiry,
        )
        .await?;
    let event = AuditEvent::new(
        Action::DecryptRequest,
        &p.username,
        p.role.as_str(),
        "pending",
        &ctx.meta,
    )
    .contact(ctx.contact_id.as_str(), field.as_str())
    .reason(reason.as_str())
    .case_ref(&ctx.case_text)
    .detail(format!(
        "request {} expires {}",
        request.id,
        format_us(request.expires_us)
    ));
    change.commit(event).await?;
    Ok(see_other("/approvals?m=requested"))
}

/// What every reveal form shows besides the field: the budget left, the
/// case reference it asks for, and what this person typed before a step-up
/// or sign-in interrupted them.
pub struct RevealFormView {
    /// "3 of 20 reveals left this hour", or "" when there is no budget.
    pub budget: String,
    pub budget_spent: bool,
    pub case_label: String,
    pub case_pattern: String,
    pub case_required: bool,
    /// The field whose form was interrupted, and what was typed into it.
    pub kept_field: String,
    pub kept_reason: String,
    pub kept_case: String,
}

impl RevealFormView {
    /// The reason to show in `field`'s form ("" unless it was interrupted).
    pub fn reason_for(&self, field: &str) -> &str {
        if self.kept_field == field {
            &self.kept_reason
        } else {
            ""
        }
    }

    pub fn case_for(&self, field: &str) -> &str {
        if self.kept_field == field {
            &self.kept_case
        } else {
            ""
        }
    }
}

/// The reveal form's view for `principal` on the page at `path`.
pub async fn form_view(
    state: &RevealState,
    session: &Session,
    principal: &Principal,
    path: &str,
) -> Result<RevealFormView, AppError> {
    let remaining = state.budget.remaining(&principal.username).await?;
    let kept = KeptForm::for_page(session, principal, path, state.clock.now_us());
    let kept_value = |name: &str| {
        kept.as_ref()
            .and_then(|k| k.field(name))
            .unwrap_or("")
            .to_owned()
    };
    let rule = &state.policy.case;
    Ok(RevealFormView {
        budget: match remaining {
            Some((left, limit)) => format!("{left} of {limit} reveals left this hour"),
            None => String::new(),
        },
        budget_spent: remaining.is_some_and(|(left, _)| left == 0),
        case_label: rule.label.clone(),
        case_pattern: rule.pattern.clone(),
        case_required: rule.required,
        kept_field: kept_value("field"),
        kept_reason: kept_value("reason"),
        kept_case: kept_value("case_ref"),
    })
}
