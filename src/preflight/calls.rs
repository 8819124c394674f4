//! What an AWS call's failure means for a check line: the error kind (the
//! service's error code only; never messages, which can echo request
//! details) and the fix an operator can act on.

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

use super::Outcome;

/// The services preflight talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Connect,
    Logs,
    Kms,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Self::Connect => "Amazon Connect",
            Self::Logs => "CloudWatch Logs",
            Self::Kms => "KMS",
        }
    }

    /// The per-service endpoint override (aws-config reads it).
    pub fn endpoint_variable(self) -> &'static str {
        match self {
            Self::Connect => "AWS_ENDPOINT_URL_CONNECT",
            Self::Logs => "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
            Self::Kms => "AWS_ENDPOINT_URL_KMS",
        }
    }
}

/// Why one AWS call failed, as far as preflight needs to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("access denied ({0})")]
    AccessDenied(String),
    #[error("not found ({0})")]
    NotFound(String),
    #[error("the credentials were refused ({0})")]
    Credentials(String),
    #[error("throttled ({0})")]
    Throttled(String),
    #[error("the request was refused ({0})")]
    Invalid(String),
    #[error("the service answered {0}")]
    Service(String),
    #[error("no answer in time")]
    Timeout,
    #[error("cannot connect to the endpoint")]
    Unreachable,
    #[error("unexpected response")]
    Unexpected,
}

impl CallError {
    /// The service's error code, if it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::AccessDenied(c)
            | Self::NotFound(c)
            | Self::Credentials(c)
            | Self::Throttled(c)
            | Self::Invalid(c)
            | Self::Service(c) => Some(c),
            Self::Timeout | Self::Unreachable | Self::Unexpected => None,
        }
    }
}

/// An error code as printed: a bounded identifier, nothing else.
fn clean(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        .take(64)
        .collect()
}

/// Classifies an SDK error (KMS, Connect and CloudWatch Logs share the type).
pub fn classify<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> CallError {
    match err {
        SdkError::ServiceError(e) => {
            let code = clean(e.err().code().unwrap_or("UnknownError"));
            match code.as_str() {
                "AccessDeniedException"
                | "AccessDenied"
                | "UnauthorizedException"
                | "UnauthorizedOperation" => CallError::AccessDenied(code),
                "ResourceNotFoundException" | "NotFoundException" => CallError::NotFound(code),
                "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "InvalidSignatureException"
                | "SignatureDoesNotMatch"
                | "IncompleteSignature"
                | "MissingAuthenticationToken"
                | "ExpiredTokenException"
                | "ExpiredToken" => CallError::Credentials(code),
                "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "LimitExceededException" => CallError::Throttled(code),
                "InvalidParameterException"
                | "InvalidParameterValueException"
                | "InvalidRequestException"
                | "ValidationException"
                | "InvalidArnException" => CallError::Invalid(code),
                _ => CallError::Service(code),
            }
        }
        SdkError::TimeoutError(_) => CallError::Timeout,
        SdkError::DispatchFailure(d) if d.is_timeout() => CallError::Timeout,
        SdkError::DispatchFailure(_) => CallError::Unreachable,
        _ => CallError::Unexpected,
    }
}

/// One AWS call a check makes: what to grant and where to look on failure.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    pub service: Service,
    /// The IAM action, e.g. `connect:DescribeInstanceAttribute`.
    pub action: &'static str,
    /// What the call is about, e.g. `instance 1111-...` or a key ARN.
    pub resource: &'a str,
}

impl Call<'_> {
    /// The check line for a failure no check-specific reading explains.
    pub fn failed(&self, err: &CallError, region: &str) -> Outcome {
        let (service, action, resource) = (self.service.name(), self.action, self.resource);
        let network = format!(
            "check network access to the {service} endpoint of {region} (AWS_REGION, {}, proxies)",
            self.service.endpoint_variable()
        );
        let (problem, fix) = match err {
            CallError::AccessDenied(code) => (
                format!("{action} was denied ({code})"),
                match self.service {
                    Service::Kms => format!(
                        "grant {action} on {resource} to the console role (in its IAM policy and, unless it enables IAM, the key policy)"
                    ),
                    _ => format!("grant {action} on {resource} to the console role"),
                },
            ),
            CallError::NotFound(code) => (
                format!("{resource} was not found in {region} ({code})"),
                "check the identifier and that AWS_REGION is its region".to_owned(),
            ),
            CallError::Credentials(code) => (
                format!("{service} refused the credentials ({code})"),
                "run with valid, unexpired credentials of the console role".to_owned(),
            ),
            CallError::Throttled(code) => (
                format!("{service} is throttling {action} ({code})"),
                "wait a moment and run preflight again".to_owned(),
            ),
            CallError::Invalid(code) => (
                format!("{service} refused {action} for {resource} ({code})"),
                "check the configured identifier".to_owned(),
            ),
            CallError::Service(code) => (
                format!("{action} failed ({code})"),
                format!("see the {service} documentation for {code}"),
            ),
            CallError::Timeout => (format!("no answer from {service} in time"), network),
            CallError::Unreachable => (
                format!("cannot connect to the {service} endpoint"),
                network,
            ),
            CallError::Unexpected => (
                format!("unexpected answer from {service} to {action}"),
                format!(
                    "check that {} (if set) points at {service}",
                    self.service.endpoint_variable()
                ),
            ),
        };
        Outcome::fail(problem, fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_printed_as_bounded_identifiers() {
        assert_eq!(clean("AccessDeniedException"), "AccessDeniedException");
        assert_eq!(clean("Bad code\n<script>"), "Badcodescript");
        assert_eq!(clean(&"x".repeat(500)).len(), 64);
    }

    #[test]
    fn an_access_denied_line_names_the_action_to_grant() {
        let call = Call {
            service: Service::Connect,
            action: "connect:DescribeInstanceAttribute",
            resource: "instance i-1",
        };
        let out = call.failed(
            &CallError::AccessDenied("AccessDeniedException".into()),
            "us-east-1",
        );
        assert_eq!(
            out,
            Outcome::fail(
                "connect:DescribeInstanceAttribute was denied (AccessDeniedException)",
                "grant connect:DescribeInstanceAttribute on instance i-1 to the console role"
            )
        );
    }
}
