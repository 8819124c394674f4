//! The external services the console reads (Amazon Connect contacts,
//! CloudWatch flow logs): the traits handlers see, their types, typed errors
//! and pages. The AWS implementations are in `aws`, the demo's in `demo`.

pub mod contacts;
pub mod logs;
pub mod not_configured;

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
            Self::NotConfigured(_) => "not_configured",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// One page of results and the token for the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_token: Option<String>,
}

/// A paging token as received from a user: bounded and plain.
pub fn check_token(token: &str) -> Result<(), SourceError> {
    let ok = !token.is_empty()
        && token.len() <= 2048
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
            E::Throttled => (StatusCode::SERVICE_UNAVAILABLE, "Amazon Connect or CloudWatch Logs is throttling the console. Wait a moment and try again."),
            E::AccessDenied => (StatusCode::BAD_GATEWAY, "The console's AWS role is not allowed to read this. Ask an administrator to check its IAM policy."),
            E::NotFound => (StatusCode::NOT_FOUND, "There is no such contact, log group or stream."),
            E::ExpiredCredentials => (StatusCode::SERVICE_UNAVAILABLE, "The console's AWS credentials have expired. Ask an administrator to renew them."),
            E::BadToken => (StatusCode::BAD_REQUEST, "That paging link is not valid any more. Start the search again."),
            E::NotConfigured(_) => (StatusCode::SERVICE_UNAVAILABLE, "This console is not connected to that AWS service."),
            E::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "The AWS service did not answer. Try again shortly."),
        };
        if status.is_server_error() {
            tracing::warn!(error = %e, kind = e.kind(), "external service failed");
        }
        AppError::refused(status, "AWS service problem", message)
    }
}
