//! How a reveal that did not happen is answered on the web: one `match`
//! over the recorded refusal, the same words as the command line
//! ([`RevealRefusal::message`]) with the status a browser needs.

use actix_web::http::StatusCode;

use super::admission::{RevealError, RevealRefusal};
use super::approvals::ApprovalError;
use crate::web::AppError;

impl From<RevealError> for AppError {
    fn from(e: RevealError) -> Self {
        let recorded = match e {
            RevealError::Refused(r) => r,
            RevealError::Audit(e) => return e.into(),
            RevealError::Totp(e) => return e.into(),
            RevealError::Requests(e) => return AppError::Db(e),
        };
        let message = recorded.refusal().message();
        let refused = |status, title| AppError::refused(status, title, message.clone());
        match recorded.into_refusal() {
            RevealRefusal::Role => AppError::Forbidden,
            RevealRefusal::BadField | RevealRefusal::Reason(_) | RevealRefusal::CaseRef(_) => {
                refused(StatusCode::BAD_REQUEST, "Request refused")
            }
            RevealRefusal::NotConfigured => {
                refused(StatusCode::SERVICE_UNAVAILABLE, "Decryption unavailable")
            }
            RevealRefusal::ApprovalRequired => refused(StatusCode::CONFLICT, "Approval required"),
            RevealRefusal::TotpNotEnrolled => {
                refused(StatusCode::FORBIDDEN, "Authenticator required")
            }
            // The web form keeps what was typed and sends the asker to
            // confirm (`reveal_form`); any other page just sends them.
            RevealRefusal::StepUpRequired => AppError::SeeOther("/account/step-up".into()),
            RevealRefusal::StepUpFailed(_) => {
                refused(StatusCode::FORBIDDEN, "Second factor not accepted")
            }
            RevealRefusal::BudgetExceeded { .. } => {
                refused(StatusCode::TOO_MANY_REQUESTS, "Decrypt limit reached")
            }
            RevealRefusal::Source(e) => e.into(),
            RevealRefusal::NoSuchField => AppError::NotFound,
            RevealRefusal::Approval(e) => e.into(),
            RevealRefusal::ContextMismatch { .. } => {
                refused(StatusCode::FORBIDDEN, "Not bound to this contact")
            }
            RevealRefusal::RetentionExpired { .. }
            | RevealRefusal::RetentionUnknown
            | RevealRefusal::KeyRetired { .. } => refused(StatusCode::GONE, "Past retention"),
            RevealRefusal::WrongCapturePath { .. } => {
                refused(StatusCode::FORBIDDEN, "Not this field's capture path")
            }
            RevealRefusal::GivenNotStored => {
                refused(StatusCode::FORBIDDEN, "Not this contact's value")
            }
            RevealRefusal::CopiedMessage { .. } => {
                refused(StatusCode::FORBIDDEN, "Copied keypad message")
            }
            RevealRefusal::UnknownConnectKey { .. } => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Connect key not held")
            }
            RevealRefusal::Failed { .. } => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Not decrypted")
            }
        }
    }
}

impl From<ApprovalError> for AppError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::Db(db) => AppError::Db(db),
            ApprovalError::NotFound => AppError::NotFound,
            ApprovalError::SelfApproval | ApprovalError::NotRequester => AppError::Forbidden,
            other => AppError::refused(
                StatusCode::CONFLICT,
                "Request refused",
                format!("{other}. Nothing was revealed; the attempt was recorded."),
            ),
        }
    }
}
