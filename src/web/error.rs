//! One error type for every handler, mapped to a status and a page here.
//! Users see a generic message and the request id; logs keep the cause chain.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template as _;

use super::middleware::current_request_id;
use super::templates::{ErrorPage, Layout};
use crate::audit::AuditError;
use crate::auth::users::UserError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("page not found")]
    NotFound,
    #[error("sign-in required")]
    LoginRequired,
    #[error("forbidden for this role")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form expired or did not come from this site")]
    Csrf,
    #[error("request too large")]
    TooLarge,
    #[error("the audit log could not be written")]
    Audit(#[from] AuditError),
    #[error("database failure")]
    Db(#[from] sqlx::Error),
    #[error("user store failure")]
    Users(#[source] UserError),
    #[error("page rendering failed")]
    Template(#[from] askama::Error),
    #[error("external service: {0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("decryption is not configured (CALLVAULT_KEYRING)")]
    DecryptUnavailable,
    #[error("a fresh second factor is required")]
    StepUpRequired(String),
    #[error("an authenticator must be enrolled first")]
    EnrolFirst,
    #[error("decrypt budget used up")]
    BudgetExceeded(u32),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::auth::totp::TotpError> for AppError {
    fn from(e: crate::auth::totp::TotpError) -> Self {
        match e {
            crate::auth::totp::TotpError::Db(db) => Self::Db(db),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<UserError> for AppError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Db(db) => Self::Db(db),
            other => Self::Users(other),
        }
    }
}

impl AppError {
    fn title_and_message(&self) -> (&'static str, String) {
        match self {
            Self::NotFound => ("Not found", "There is no page at this address.".into()),
            Self::LoginRequired => ("Sign in", "Please sign in.".into()),
            Self::Forbidden => (
                "Not allowed",
                "Your role does not give access to this page. The attempt has been recorded."
                    .into(),
            ),
            Self::BadRequest(m) => ("Request refused", m.clone()),
            Self::Csrf => (
                "Form expired",
                "This form expired or did not come from this site. Reload the page and try again."
                    .into(),
            ),
            Self::TooLarge => (
                "Request too large",
                "The request was larger than this console accepts.".into(),
            ),
            Self::Audit(_) => (
                "Audit log unavailable",
                "The access log could not be written, so nothing was done. Try again shortly."
                    .into(),
            ),
            Self::Users(e) => ("Request refused", e.to_string()),
            Self::Source(e) => {
                use crate::sources::SourceError as E;
                let m = match e {
                    E::Throttled => "Amazon Connect or CloudWatch Logs is throttling the console. Wait a moment and try again.",
                    E::AccessDenied => "The console's AWS role is not allowed to read this. Ask an administrator to check its IAM policy.",
                    E::NotFound => "There is no such contact, log group or stream.",
                    E::ExpiredCredentials => "The console's AWS credentials have expired. Ask an administrator to renew them.",
                    E::BadToken => "That paging link is not valid any more. Start the search again.",
                    E::NotConfigured(_) => "This console is not connected to that AWS service.",
                    E::Unavailable(_) => "The AWS service did not answer. Try again shortly.",
                };
                ("AWS service problem", m.into())
            }
            Self::DecryptUnavailable => (
                "Decryption unavailable",
                "This console has no keyring configured, so nothing can be decrypted.".into(),
            ),
            Self::StepUpRequired(_) => (
                "Confirm it is you",
                "Revealing a value needs your password and a code from your authenticator.".into(),
            ),
            Self::EnrolFirst => (
                "Authenticator required",
                "Revealing a value needs a second factor. Enrol an authenticator under Account > Authenticator first. The attempt was recorded.".into(),
            ),
            Self::BudgetExceeded(limit) => (
                "Decrypt limit reached",
                format!("You have used your decrypt budget ({limit} per hour). Nothing was revealed; the attempt was recorded and auditors have been alerted."),
            ),
            Self::Conflict(m) => ("Request refused", format!("{m}. Nothing was revealed; the attempt was recorded.")),
            Self::Db(_) | Self::Template(_) | Self::Internal(_) => (
                "Something went wrong",
                "The console could not complete this request.".into(),
            ),
        }
    }
}

impl AppError {
    /// The error page, for handlers that adjust the status themselves.
    pub fn error_response_owned(self) -> HttpResponse {
        ResponseError::error_response(&self)
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::LoginRequired => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Users(UserError::NotFound) => StatusCode::NOT_FOUND,
            Self::Users(UserError::Db(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Users(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Audit(_) | Self::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Template(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Source(e) => match e {
                crate::sources::SourceError::NotFound => StatusCode::NOT_FOUND,
                crate::sources::SourceError::BadToken => StatusCode::BAD_REQUEST,
                crate::sources::SourceError::AccessDenied => StatusCode::BAD_GATEWAY,
                _ => StatusCode::SERVICE_UNAVAILABLE,
            },
            Self::DecryptUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::StepUpRequired(_) => StatusCode::SEE_OTHER,
            Self::EnrolFirst => StatusCode::FORBIDDEN,
            Self::BudgetExceeded(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Conflict(_) => StatusCode::CONFLICT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let request_id = current_request_id();
        if status.is_server_error() {
            tracing::error!(request_id = request_id.as_str(), error = %self, cause = ?std::error::Error::source(self), "request failed");
        }
        if let Self::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        if let Self::StepUpRequired(next) = self {
            let q = serde_urlencoded::to_string([("next", next.as_str())]).unwrap_or_default();
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("/account/step-up?{q}")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let (title, message) = self.title_and_message();
        let page = ErrorPage {
            layout: Layout::anonymous(title),
            status: status.as_u16(),
            message,
            request_id,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body)
    }
}
