//! Why a reveal did not happen, as the person asking sees it. Every refusal
//! is recorded before it is answered.

use actix_web::http::StatusCode;

use crate::web::AppError;

#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("decryption is not configured (CALLVAULT_KEYRING)")]
    Unavailable,
    /// Sent to confirm it is them first, then back to this page.
    #[error("a fresh second factor is required")]
    StepUpRequired(String),
    #[error("an authenticator must be enrolled first")]
    EnrolFirst,
    #[error("decrypt budget used up")]
    BudgetExceeded(u32),
    #[error("conflict: {0}")]
    Conflict(String),
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Unavailable => AppError::refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Decryption unavailable",
                "This console has no keyring configured, so nothing can be decrypted.",
            ),
            Refusal::StepUpRequired(next) => {
                let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
                AppError::SeeOther(format!("/account/step-up?{q}"))
            }
            Refusal::EnrolFirst => AppError::refused(
                StatusCode::FORBIDDEN,
                "Authenticator required",
                "Revealing a value needs a second factor. Enrol an authenticator under Account > Authenticator first. The attempt was recorded.",
            ),
            Refusal::BudgetExceeded(limit) => AppError::refused(
                StatusCode::TOO_MANY_REQUESTS,
                "Decrypt limit reached",
                format!("You have used your decrypt budget ({limit} per hour). Nothing was revealed; the attempt was recorded and auditors have been alerted."),
            ),
            Refusal::Conflict(m) => AppError::refused(
                StatusCode::CONFLICT,
                "Request refused",
                format!("{m}. Nothing was revealed; the attempt was recorded."),
            ),
        }
    }
}
