//! The AWS SDK implementations of the source traits, and what they share:
//! error mapping, client-side quotas (`quota`) and the contact cache (`cache`).

pub mod cache;
pub mod connect;
mod connect_names;
pub mod logs;
pub mod metered;
pub mod quota;
pub mod settings;

use aws_sdk_connect::error::ProvideErrorMetadata;

use crate::sources::SourceError;

/// Maps an SDK error to what actually happened. An invalid-parameter error
/// is a bad paging token only when a token was sent and the service names
/// it; otherwise it is a refused request, named by its code (never by the
/// service's message, which may echo input).
pub(crate) fn source_error<E, R>(
    err: &aws_sdk_connect::error::SdkError<E, R>,
    sent_token: bool,
) -> SourceError
where
    E: ProvideErrorMetadata,
{
    use aws_sdk_connect::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("");
            let names_token = e
                .err()
                .message()
                .is_some_and(|m| m.to_ascii_lowercase().contains("token"));
            match code {
                "ThrottlingException"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "Throttling" => SourceError::Throttled,
                "AccessDeniedException"
                | "UnauthorizedException"
                | "UnrecognizedClientException" => SourceError::AccessDenied,
                "ResourceNotFoundException" => SourceError::NotFound,
                "ExpiredTokenException" | "ExpiredToken" => SourceError::ExpiredCredentials,
                "InvalidParameterException"
                | "InvalidRequestException"
                | "InvalidParameterValueException"
                    if sent_token && names_token =>
                {
                    SourceError::BadToken
                }
                "InvalidParameterException"
                | "InvalidRequestException"
                | "InvalidParameterValueException" => SourceError::BadRequest(code.to_owned()),
                "InternalServiceException" | "ServiceUnavailableException" => {
                    SourceError::Unavailable(code.to_owned())
                }
                other => SourceError::Unavailable(
                    other
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(80)
                        .collect(),
                ),
            }
        }
        SdkError::TimeoutError(_) => SourceError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => SourceError::Unavailable("connection failed".into()),
        _ => SourceError::Unavailable("unexpected response".into()),
    }
}
