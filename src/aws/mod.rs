//! The AWS SDK implementations of the source traits.

pub mod connect;
pub mod logs;
pub mod metered;

use aws_sdk_connect::error::ProvideErrorMetadata;

use crate::sources::SourceError;

/// Maps an SDK error to what the console can say about it.
pub(crate) fn source_error<E, R>(err: &aws_sdk_connect::error::SdkError<E, R>) -> SourceError
where
    E: ProvideErrorMetadata,
{
    use aws_sdk_connect::error::SdkError;
    match err {
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or("");
            match code {
                "ThrottlingException" | "TooManyRequestsException" | "LimitExceededException" => {
                    SourceError::Throttled
                }
                "AccessDeniedException"
                | "UnauthorizedException"
                | "UnrecognizedClientException" => SourceError::AccessDenied,
                "ResourceNotFoundException" => SourceError::NotFound,
                "ExpiredTokenException" | "ExpiredToken" => SourceError::ExpiredCredentials,
                "InvalidParameterException"
                | "InvalidRequestException"
                | "InvalidParameterValueException" => SourceError::BadToken,
                other => SourceError::Unavailable(other.chars().take(80).collect()),
            }
        }
        SdkError::TimeoutError(_) => SourceError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => SourceError::Unavailable("connection failed".into()),
        _ => SourceError::Unavailable("unexpected response".into()),
    }
}
