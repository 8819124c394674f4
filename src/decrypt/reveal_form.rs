//! `POST /contacts/{id}/decrypt`, the reveal form on a contact's page: it
//! asks the admission (`service::Reveals`) and answers with the value's
//! never-cached page, the request made under dual control, a step-up, or
//! the refusal. Also what every reveal form shows (`form_view`).

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use lambda_encrypt::context::ContactId;
use serde::Deserialize;

use super::admission::{Ask, Channel, RevealError, RevealRefusal, SecondFactor};
use super::service::Outcome;
use super::RevealState;
use crate::auth::kept::KeptForm;
use crate::auth::principal::{Principal, SignedIn};
use crate::auth::step_up::{StepUp, STEP_UP_KEY};
use crate::web::{request_meta, see_other, AppError};

type State = web::Data<RevealState>;

/// Parses a contact id from a path or form, or answers 404 (hostile values included).
pub fn contact_id(raw: &str) -> Result<ContactId, AppError> {
    ContactId::parse(raw).map_err(|_| AppError::NotFound)
}

/// Answers an outcome of the admission on the web: to the value's page
/// (`reveal_page`, shown once), the request made under dual control, or the
/// refusal. A reveal
/// interrupted for a step-up keeps what was typed (for this person, on this
/// page) and continues at `back` after it.
pub(super) fn respond(
    state: &State,
    session: &Session,
    principal: &Principal,
    ask: Kept,
    result: Result<Outcome, RevealError>,
) -> Result<HttpResponse, AppError> {
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
    respond(&state, &session, &p, kept, result)
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
    respond(&state, &session, p, again, result)
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
    let remaining = state.reveals.budget.remaining(&principal.username).await?;
    let kept = KeptForm::for_page(session, principal, path, state.reveals.clock.now_us());
    let kept_value = |name: &str| {
        kept.as_ref()
            .and_then(|k| k.field(name))
            .unwrap_or("")
            .to_owned()
    };
    let rule = &state.reveals.policy.case;
    Ok(RevealFormView {
        budget: match remaining {
            Some((left, limit)) => format!("{left} of {limit} reveals left this hour"),
            None => String::new(),
        },
        budget_spent: remaining.is_some_and(|(left, _)| left == 0),
        case_label: rule.label.clone(),
        case_pattern: rule.browser_pattern(),
        case_required: rule.required,
        kept_field: kept_value("field"),
        kept_reason: kept_value("reason"),
        kept_case: kept_value("case_ref"),
    })
}
