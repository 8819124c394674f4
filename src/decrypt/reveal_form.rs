//! `POST /contacts/{id}/decrypt`, the reveal form on a contact's page: it
//! asks the admission (`service::Reveals`) and answers with the value's
//! never-cached page, the request made under dual control, a step-up, or
//! the refusal. Also what every reveal form shows (`form_view`).

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::future::LocalBoxFuture;
use lambda_encrypt::context::ContactId;
use serde::Deserialize;

use super::admission::{Ask, Channel, RevealError, RevealRefusal, SecondFactor};
use super::case::CaseError;
use super::service::Outcome;
use super::{Reason, ReasonError, RevealState};
use crate::auth::kept::KeptForm;
use crate::auth::principal::{Principal, SignedIn};
use crate::auth::step_up::{StepUp, STEP_UP_KEY};
use crate::auth::totp::Enrolment;
use crate::web::{request_meta, see_other, AppError};

type State = web::Data<RevealState>;

/// Parses a contact id from a path or form, or answers 404 (hostile values included).
pub fn contact_id(raw: &str) -> Result<ContactId, AppError> {
    ContactId::parse(raw).map_err(|_| AppError::NotFound)
}

/// A reveal form refused for something the person can fix (the reason, the
/// case reference): what they typed, to show again, and what to fix beside
/// each field ("" when it is fine). A value holding a card number is never
/// typed back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixableForm {
    pub field: String,
    pub reason: String,
    pub case_ref: String,
    pub reason_error: String,
    pub case_error: String,
}

impl FixableForm {
    /// What `kept` needs fixing under the admission's own checks.
    fn of(state: &RevealState, kept: &Kept) -> Self {
        let rule = &state.reveals.policy.case;
        let reason_error = Reason::parse(&kept.reason).err();
        let case_error = rule.parse(&kept.case_ref).err();
        // Neither the refused value nor anything card-like is sent back.
        let echo = |typed: &str, card: bool| {
            let card = card
                || crate::guard::contains_card_number(typed)
                || crate::guard::contains_card_number(&crate::text::one_line(typed));
            if card {
                String::new()
            } else {
                typed.to_owned()
            }
        };
        Self {
            field: kept.field.clone(),
            reason: echo(&kept.reason, reason_error == Some(ReasonError::CardNumber)),
            case_ref: echo(&kept.case_ref, case_error == Some(CaseError::CardNumber)),
            reason_error: reason_error.map(ReasonError::advice).unwrap_or_default(),
            case_error: case_error.map(|e| e.advice(rule)).unwrap_or_default(),
        }
    }
}

/// The contact's page with its reveal forms, `FixableForm` shown on it:
/// the contact pages make it, and `startup` hands it over (this capability
/// does not name them). Answered with 400.
pub type FormPage = fn(
    HttpRequest,
    Session,
    Principal,
    ContactId,
    FixableForm,
) -> LocalBoxFuture<'static, Result<HttpResponse, AppError>>;

/// Answers an outcome of the admission on the web: to the value's page
/// (`reveal_page`, shown once), the request made under dual control, or the
/// refusal; a reason or case reference to fix comes back on the contact's
/// page, with what was typed. A reveal
/// interrupted for a step-up keeps what was typed (for this person, on this
/// page) and continues at `back` after it.
pub(super) async fn respond(
    state: &State,
    session: &Session,
    req: &HttpRequest,
    principal: &Principal,
    ask: Kept,
    result: Result<Outcome, RevealError>,
) -> Result<HttpResponse, AppError> {
    let fixable = matches!(
        result.as_ref().err().and_then(RevealError::refusal),
        Some(RevealRefusal::Reason(_) | RevealRefusal::CaseRef(_))
    );
    let contact = ask
        .back
        .strip_prefix("/contacts/")
        .and_then(|id| ContactId::parse(id).ok());
    if let (true, Some(page), Some(contact)) = (fixable, state.form_page, contact) {
        // The row is written (the refusal is recorded); the form comes back.
        let form = FixableForm::of(state, &ask);
        let mut res = page(
            req.clone(),
            session.clone(),
            principal.clone(),
            contact,
            form,
        )
        .await?;
        *res.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
        return Ok(res);
    }
    match result {
        Ok(Outcome::Granted(grant)) => {
            // Admitted: what was kept for this reveal is not offered again.
            KeptForm::forget(session);
            Ok(see_other(&format!("/reveals/{}", grant.id)))
        }
        Ok(Outcome::Requested(_)) => Ok(see_other("/approvals?m=requested")),
        Err(e) if matches!(e.refusal(), Some(RevealRefusal::StepUpRequired)) => {
            // A reveal from a contact's page continues by itself once the
            // person has confirmed (`continue_kept`).
            let mut next = ask.back.clone();
            if ask.back.starts_with("/contacts/") {
                next = crate::account::CONTINUE_REVEAL.to_owned();
                KeptForm::keep(
                    session,
                    principal,
                    &ask.back,
                    vec![
                        ("field".to_owned(), ask.field.clone()),
                        ("reason".to_owned(), ask.reason.clone()),
                        ("case_ref".to_owned(), ask.case_ref.clone()),
                    ],
                    state.reveals.clock.now_us(),
                );
            }
            let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            Err(AppError::SeeOther(format!("/account/step-up?{q}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// What was typed, kept across a step-up.
pub(super) struct Kept {
    /// Where the asker continues after a step-up.
    pub back: String,
    pub field: String,
    pub reason: String,
    pub case_ref: String,
}

#[derive(Deserialize)]
pub struct DecryptForm {
    field: String,
    reason: String,
    #[serde(default)]
    case_ref: String,
}

/// `POST /contacts/{id}/decrypt`: the reveal form.
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
    let meta = request_meta(&req);
    let kept = Kept {
        back: format!("/contacts/{}", id.as_str()),
        field: form.field.clone(),
        reason: form.reason.clone(),
        case_ref: form.case_ref.clone(),
    };
    let ask = Ask::by(
        &p,
        Channel::Web,
        id,
        &form.field,
        &form.reason,
        &form.case_ref,
        meta,
    );
    let proof = SecondFactor::Session(session.get::<StepUp>(STEP_UP_KEY).ok().flatten());
    let result = state.reveals.reveal(ask, proof).await;
    respond(&state, &session, &req, &p, kept, result).await
}

/// `GET /reveals/continue`: after a step-up, the reveal it interrupted,
/// from what was kept in this person's session (at most 15 minutes old),
/// through the same admission, without a second press. Nothing kept: back
/// to the contacts.
pub async fn continue_kept(
    state: State,
    sup: crate::auth::principal::Supervisor,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let now = state.reveals.clock.now_us();
    let kept = KeptForm::carried_over(&session, p.user_id, now);
    let Some((kept, id)) = kept.and_then(|k| {
        let id = k
            .path
            .strip_prefix("/contacts/")
            .and_then(|i| ContactId::parse(i).ok())?;
        Some((k, id))
    }) else {
        return Ok(see_other("/contacts"));
    };
    let typed = |name: &str| kept.field(name).unwrap_or("").to_owned();
    let again = Kept {
        back: kept.path.clone(),
        field: typed("field"),
        reason: typed("reason"),
        case_ref: typed("case_ref"),
    };
    let ask = Ask::by(
        p,
        Channel::Web,
        id,
        &again.field,
        &again.reason,
        &again.case_ref,
        request_meta(&req),
    );
    let proof = SecondFactor::Session(session.get::<StepUp>(STEP_UP_KEY).ok().flatten());
    let result = state.reveals.reveal(ask, proof).await;
    respond(&state, &session, &req, p, again, result).await
}

/// What every reveal form shows besides the field: the budget left, the
/// case reference it asks for, and what this person typed before a step-up,
/// a sign-in or a refusal to fix interrupted them.
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
    /// What to fix in the kept field's form ("" when nothing).
    pub reason_error: String,
    pub case_error: String,
    /// The budget is used: when the next reveal is possible (µs).
    pub next_reveal_us: Option<i64>,
    /// An authenticator is mandatory and this person has none yet: every
    /// reveal would be refused until they enrol.
    pub totp_needed: bool,
    /// Pressing Reveal can only be refused: the buttons are disabled
    /// (under dual control a request is still made: its reveal is checked
    /// when the approved request is used).
    pub blocked: bool,
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

    /// What to fix in `field`'s reason ("" when nothing).
    pub fn reason_error_for(&self, field: &str) -> &str {
        if self.kept_field == field {
            &self.reason_error
        } else {
            ""
        }
    }

    pub fn case_error_for(&self, field: &str) -> &str {
        if self.kept_field == field {
            &self.case_error
        } else {
            ""
        }
    }

    /// A refused form is on the page, to fix.
    pub fn to_fix(&self) -> bool {
        !self.reason_error.is_empty() || !self.case_error.is_empty()
    }
}

/// The reveal form's view for `principal` on the page at `path`, with a
/// refused form to fix when there is one.
pub async fn form_view(
    state: &RevealState,
    session: &Session,
    principal: &Principal,
    path: &str,
    fixable: Option<FixableForm>,
) -> Result<RevealFormView, AppError> {
    let remaining = state.reveals.budget.remaining(&principal.username).await?;
    let kept = KeptForm::for_page(session, principal, path, state.reveals.clock.now_us());
    let kept_value = |name: &str| {
        kept.as_ref()
            .and_then(|k| k.field(name))
            .unwrap_or("")
            .to_owned()
    };
    let fix = fixable.unwrap_or_else(|| FixableForm {
        field: kept_value("field"),
        reason: kept_value("reason"),
        case_ref: kept_value("case_ref"),
        ..FixableForm::default()
    });
    let rule = &state.reveals.policy.case;
    let budget_spent = remaining.is_some_and(|(left, _)| left == 0);
    let next_reveal_us = if budget_spent {
        state
            .reveals
            .budget
            .next_possible_us(&principal.username)
            .await?
    } else {
        None
    };
    // As the admission decides it (`Reveals::admit`).
    let totp = &state.reveals.totp;
    let sso_user = principal.sso_subject.is_some() && state.reveals.external_sign_in;
    let totp_needed = !sso_user
        && totp.enrolment(principal.user_id).await? != Enrolment::Active
        && totp.mandatory().await?;
    Ok(RevealFormView {
        budget: match remaining {
            Some((left, limit)) => format!("{left} of {limit} reveals left this hour"),
            None => String::new(),
        },
        budget_spent,
        next_reveal_us,
        totp_needed,
        blocked: (budget_spent || totp_needed)
            && state.reveals.policy.approval != super::policy::ApprovalMode::Required,
        case_label: rule.label.clone(),
        case_pattern: rule.browser_pattern(),
        case_required: rule.required,
        kept_field: fix.field,
        kept_reason: fix.reason,
        kept_case: fix.case_ref,
        reason_error: fix.reason_error,
        case_error: fix.case_error,
    })
}
