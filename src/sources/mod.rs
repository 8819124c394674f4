//! The external services the console reads (Amazon Connect contacts,
//! CloudWatch flow logs): the traits handlers see, their types, typed errors
//! and pages. The AWS implementations are in `aws`, the demo's in `demo`.

pub mod contacts;
pub mod logs;
pub mod not_configured;
pub mod paging;

pub use contacts::{Channel, ContactDirectory, ContactSearch, ContactSummary};
pub use logs::{LogEvent, LogGroupName, LogStore, LogStreamName};
pub use not_configured::NotConfigured;

use actix_web::http::StatusCode;

use crate::web::AppError;

/// Why an external service (Connect, CloudWatch Logs) did not answer.
/// Messages are for operators; users see the page text of `AppError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the service is throttling requests")]
    Throttled,
    #[error("access denied by the service")]
    AccessDenied,
    #[error("not found")]
    NotFound,
    #[error("the console's AWS credentials have expired")]
    ExpiredCredentials,
    #[error("the paging token is not valid")]
    BadToken,
    /// The service refused a parameter other than a paging token (the
    /// service's error code; never its message, which may echo input).
    #[error("the service refused the request: {0}")]
    BadRequest(String),
    #[error("the service is not configured: {0}")]
    NotConfigured(&'static str),
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
}

impl SourceError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::AccessDenied => "access_denied",
            Self::NotFound => "not_found",
            Self::ExpiredCredentials => "expired_credentials",
            Self::BadToken => "bad_token",
            Self::BadRequest(_) => "bad_request",
            Self::NotConfigured(_) => "not_configured",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// One page of results, the token for the next one and, where the service
/// reports it, how many results the whole search has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
    pub total: Option<u64>,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, next_token: Option<String>) -> Self {
        Self {
            items,
            next_token,
            total: None,
        }
    }
}

/// The longest paging token accepted: botocore's `LargeNextToken` (SearchContacts).
pub const MAX_TOKEN_CHARS: usize = 100_000;

/// A paging token as received back: bounded and plain.
pub fn check_token(token: &str) -> Result<(), SourceError> {
    let ok = !token.is_empty()
        && token.len() <= MAX_TOKEN_CHARS
        && token.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-' | b'.' | b':')
        });
    if ok {
        Ok(())
    } else {
        Err(SourceError::BadToken)
    }
}

impl From<SourceError> for AppError {
    fn from(e: SourceError) -> Self {
        use SourceError as E;
        let (status, message) = match &e {
            E::Throttled => {
                return AppError::refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Connect is busy",
                    "Connect is busy, try again in a few seconds. Amazon Connect or CloudWatch Logs is throttling the console's requests (the account's API quota is shared with other integrations); the console already retried.",
                )
            }
            E::NotFound => {
                return AppError::refused(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is no such contact, log group or stream. Check the id, or search again.",
                )
            }
            // The operator's fix is one variable: the page names it.
            E::NotConfigured(variable) => {
                return AppError::refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Not configured",
                    format!(
                        "This console is not connected to this AWS service: {variable} is not set. An administrator sets it and restarts the console."
                    ),
                )
            }
            E::AccessDenied => (StatusCode::BAD_GATEWAY, "The console's AWS role is not allowed to read this. Ask an administrator to check its IAM policy."),
            E::ExpiredCredentials => (StatusCode::SERVICE_UNAVAILABLE, "The console's AWS credentials have expired. Ask an administrator to renew them."),
            E::BadToken => (StatusCode::BAD_REQUEST, "That paging link is not valid any more. Start the search again."),
            E::BadRequest(_) => (StatusCode::BAD_REQUEST, "Amazon Connect or CloudWatch Logs refused the search as asked. Check the criteria (for example the time range) and try again."),
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "The AWS service did not answer. Try again shortly."),
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, kind = e.kind(), "external service failed");
        }
        AppError::refused(status, "AWS service problem", message)
    }
}
