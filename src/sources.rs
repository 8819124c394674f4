//! What the external-service adapters share: typed errors and pages.

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

/// Stand-ins for a service the console is not configured for: every call
/// says so (a clear page, not a crash).
pub struct NotConfigured;

#[async_trait::async_trait]
impl crate::contacts::ContactDirectory for NotConfigured {
    async fn search(
        &self,
        _: &crate::contacts::ContactSearch,
    ) -> Result<Page<crate::contacts::ContactSummary>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
    async fn describe(
        &self,
        _: &lambda_encrypt::context::ContactId,
    ) -> Result<crate::contacts::ContactSummary, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
    async fn attributes(
        &self,
        _: &lambda_encrypt::context::ContactId,
    ) -> Result<std::collections::BTreeMap<String, String>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
}

#[async_trait::async_trait]
impl crate::logs::LogStore for NotConfigured {
    fn groups(&self) -> Vec<crate::logs::LogGroupName> {
        Vec::new()
    }
    async fn streams(
        &self,
        _: &crate::logs::LogGroupName,
        _: Option<&str>,
    ) -> Result<Page<crate::logs::StreamInfo>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_LOG_GROUPS"))
    }
    async fn events(
        &self,
        _: &crate::logs::LogGroupName,
        _: &crate::logs::LogStreamName,
        _: Option<&str>,
    ) -> Result<crate::logs::EventsPage, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_LOG_GROUPS"))
    }
    async fn events_for_contact(
        &self,
        _: &lambda_encrypt::context::ContactId,
    ) -> Result<Vec<crate::logs::ContactLogEvent>, SourceError> {
        Ok(Vec::new())
    }
}
