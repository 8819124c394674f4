//! Why a sign-in or step-up through the provider failed, in words fit for
//! an audit row (`kind`) and a log line (Display: no token, code or body).

use openidconnect::{ClaimsVerificationError, SignatureVerificationError};

/// Why a sign-in or step-up through the provider failed. `kind` is the
/// audit row's reason; the Display text is safe to log (no token, code or
/// response body).
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the OpenID Provider cannot be reached or its discovery document is unusable ({0})")]
    Unreachable(String),
    #[error("the provider answered the sign-in with an error ({0})")]
    ProviderError(String),
    #[error("the callback has no state")]
    StateMissing,
    #[error("the callback's state does not match this browser's sign-in")]
    StateMismatch,
    #[error("no sign-in was started in this browser, or it expired")]
    NoPendingSignIn,
    #[error("the callback names another issuer")]
    IssuerMismatch,
    #[error("the callback has no usable authorization code")]
    CodeMissing,
    #[error("the provider refused the authorization code ({0})")]
    CodeRejected(String),
    #[error("the token endpoint's answer is unusable")]
    BadTokenResponse,
    #[error("the token response has no ID token")]
    NoIdToken,
    #[error("the ID token is invalid: {0}")]
    IdToken(IdTokenProblem),
    #[error("the step-up was answered for another person")]
    SubjectMismatch,
    #[error("the provider did not authenticate the person again (auth_time is not fresh)")]
    StaleAuthTime,
    #[error("the provider's authentication does not meet the configured acr/amr")]
    AuthContext,
    #[error("the SSO client cannot be set up ({0})")]
    Setup(String),
}

/// Which ID token check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenProblem {
    Signature,
    Expired,
    Issuer,
    Audience,
    Nonce,
    AccessTokenHash,
    Subject,
    Other,
}

impl std::fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl IdTokenProblem {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Signature => "id_token_signature",
            Self::Expired => "id_token_expired",
            Self::Issuer => "id_token_issuer",
            Self::Audience => "id_token_audience",
            Self::Nonce => "id_token_nonce",
            Self::AccessTokenHash => "id_token_at_hash",
            Self::Subject => "id_token_subject",
            Self::Other => "id_token_invalid",
        }
    }
}

impl SsoError {
    /// A short, fixed name for audit rows.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "provider_unreachable",
            Self::ProviderError(_) => "provider_error",
            Self::StateMissing => "state_missing",
            Self::StateMismatch => "state_mismatch",
            Self::NoPendingSignIn => "no_pending_sign_in",
            Self::IssuerMismatch => "issuer_mismatch",
            Self::CodeMissing => "code_missing",
            Self::CodeRejected(_) => "code_rejected",
            Self::BadTokenResponse => "bad_token_response",
            Self::NoIdToken => "no_id_token",
            Self::IdToken(p) => p.kind(),
            Self::SubjectMismatch => "subject_mismatch",
            Self::StaleAuthTime => "stale_auth_time",
            Self::AuthContext => "auth_context",
            Self::Setup(_) => "setup",
        }
    }
}

/// A provider's error code, kept only if it is a plain word (it is shown and
/// audited); anything else becomes "other".
pub(crate) fn error_code(s: &str) -> String {
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        s.to_owned()
    } else {
        "other".to_owned()
    }
}

/// A name fit to show and audit: printable, at most 64 characters.
pub(crate) fn printable(s: &str) -> Option<String> {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .take(64)
        .collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

pub(crate) fn claims_problem(e: &ClaimsVerificationError) -> IdTokenProblem {
    match e {
        ClaimsVerificationError::Expired(_) => IdTokenProblem::Expired,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenProblem::Audience,
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenProblem::Issuer,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenProblem::Nonce,
        ClaimsVerificationError::InvalidSubject(_) => IdTokenProblem::Subject,
        ClaimsVerificationError::SignatureVerification(_) => IdTokenProblem::Signature,
        _ => IdTokenProblem::Other,
    }
}

pub(crate) fn is_unknown_key(e: &ClaimsVerificationError) -> bool {
    matches!(
        e,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)
    )
}

pub(crate) fn discovery_error_kind<E: std::error::Error + 'static>(
    e: &openidconnect::DiscoveryError<E>,
) -> &'static str {
    use openidconnect::DiscoveryError as D;
    match e {
        D::Request(_) => "request failed",
        D::Response(..) => "unexpected status",
        D::Parse(_) => "unparsable metadata",
        D::Validation(_) => "metadata names another issuer",
        D::UrlParse(_) => "bad URL",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_error_codes_are_kept_only_as_plain_words() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code("<script>"), "other");
        assert_eq!(error_code(&"a".repeat(41)), "other");
        assert_eq!(error_code(""), "other");
    }

    #[test]
    fn display_names_lose_control_and_direction_characters_and_length() {
        assert_eq!(printable("Eve\u{0}\u{202e}lin").as_deref(), Some("Evelin"));
        assert_eq!(printable("\u{7}\u{202e} ").as_deref(), None);
        assert_eq!(printable(&"x".repeat(500)).unwrap().chars().count(), 64);
    }

    #[test]
    fn error_kinds_are_fixed_words() {
        let all = [
            SsoError::Unreachable("x".into()),
            SsoError::ProviderError("access_denied".into()),
            SsoError::StateMissing,
            SsoError::StateMismatch,
            SsoError::NoPendingSignIn,
            SsoError::IssuerMismatch,
            SsoError::CodeMissing,
            SsoError::CodeRejected("invalid_grant".into()),
            SsoError::BadTokenResponse,
            SsoError::NoIdToken,
            SsoError::IdToken(IdTokenProblem::Nonce),
            SsoError::SubjectMismatch,
            SsoError::StaleAuthTime,
            SsoError::AuthContext,
            SsoError::Setup("x".into()),
        ];
        for e in all {
            assert!(e
                .kind()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
