//! The authorization code flow: discovery (cached, refreshed on age or on an
//! unknown signing key), the authorization request (PKCE S256, `state`,
//! `nonce`; `prompt=login`, `max_age` and `acr_values` for a step-up) and its
//! end (the code exchanged once, the ID token's signature and claims checked:
//! issuer, audience, expiry, nonce, `at_hash`, and for a step-up a fresh
//! `auth_time` and the configured `acr`/`amr`). The roles claim is read from
//! the ID token, else from the userinfo endpoint (same subject only).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthType, AuthenticationContextClass, AuthorizationCode,
    ClaimsVerificationError, Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce,
    OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::sync::RwLock;

use super::config::SsoSettings;
use super::roles::{role_from_claim, RoleRefusal};
use crate::auth::Role;
use crate::clock::SharedClock;

/// Discovery and keys are fetched again after this long.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(15 * 60);
/// An unknown signing key refetches the keys at most this often.
pub const KEY_REFRESH_MIN: Duration = Duration::from_secs(30);
/// An authorization request left unfinished longer than this is void.
pub const PENDING_TTL_US: i64 = 10 * 60 * 1_000_000;
/// Clock difference tolerated between the console and the provider when
/// judging `auth_time`.
pub const AUTH_TIME_SKEW_SECS: i64 = 60;
/// Callback parameters longer than this are refused before any use.
pub const MAX_PARAM_CHARS: usize = 2048;
/// A subject identifier is at most 255 ASCII characters (OIDC Core 2).
pub const MAX_SUBJECT_CHARS: usize = 255;

/// Every claim the ID token carries besides the standard ones; the roles
/// claim is read from here by name.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    pub claims: serde_json::Map<String, serde_json::Value>,
}
impl AdditionalClaims for OtherClaims {}

type IdTokenFieldsT = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type TokenResponseT = StandardTokenResponse<IdTokenFieldsT, CoreTokenType>;
type OidcClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponseT,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

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

/// What the authorization request is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Purpose {
    SignIn,
    /// A fresh authentication of this (already signed-in) subject.
    StepUp {
        subject: String,
        max_age_secs: u64,
    },
}

/// What the browser's session keeps between `/login/oidc` and the callback.
/// Its secrets leave only through `to_session_value`.
pub struct PendingAuth {
    state: SecretString,
    nonce: SecretString,
    verifier: SecretString,
    pub purpose: Purpose,
    /// When the request was made (µs since the epoch, the console's clock).
    pub started_us: i64,
}

impl std::fmt::Debug for PendingAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAuth")
            .field("purpose", &self.purpose)
            .field("started_us", &self.started_us)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct PendingWire {
    state: String,
    nonce: String,
    verifier: String,
    purpose: Purpose,
    started_us: i64,
}

impl Drop for PendingWire {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.state.zeroize();
        self.nonce.zeroize();
        self.verifier.zeroize();
    }
}

impl PendingAuth {
    /// The value stored in the server-side session (never sent to the browser).
    pub fn to_session_value(&self) -> Result<zeroize::Zeroizing<String>, SsoError> {
        let wire = PendingWire {
            state: self.state.expose_secret().to_owned(),
            nonce: self.nonce.expose_secret().to_owned(),
            verifier: self.verifier.expose_secret().to_owned(),
            purpose: self.purpose.clone(),
            started_us: self.started_us,
        };
        serde_json::to_string(&wire)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| SsoError::Setup("cannot serialise the pending sign-in".into()))
    }

    pub fn from_session_value(value: &str) -> Option<Self> {
        let mut wire: PendingWire = serde_json::from_str(value).ok()?;
        Some(Self {
            state: SecretString::from(std::mem::take(&mut wire.state)),
            nonce: SecretString::from(std::mem::take(&mut wire.nonce)),
            verifier: SecretString::from(std::mem::take(&mut wire.verifier)),
            purpose: wire.purpose.clone(),
            started_us: wire.started_us,
        })
    }
}

/// The query of `GET /login/oidc/callback`.
#[derive(Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub iss: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "<redacted>"))
            .field("state", &self.state.as_ref().map(|_| "<redacted>"))
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A person the provider vouched for, after every check.
pub struct VerifiedLogin {
    /// The provider's subject identifier (`sub`).
    pub subject: String,
    /// A printable name from `preferred_username`, `email` or `name`, if any.
    pub display_name: Option<String>,
    /// The role the claim maps to, or why there is none.
    pub role: Result<Role, RoleRefusal>,
    /// The ID token's expiry (µs since the epoch).
    pub expires_us: i64,
    /// When the person authenticated at the provider (µs), if it said.
    pub auth_time_us: Option<i64>,
    pub purpose: Purpose,
}

impl std::fmt::Debug for VerifiedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedLogin")
            .field("subject", &self.subject)
            .field("role", &self.role)
            .field("expires_us", &self.expires_us)
            .field("auth_time_us", &self.auth_time_us)
            .field("purpose", &self.purpose)
            .finish_non_exhaustive()
    }
}

struct Discovered {
    metadata: ProviderMetadataWithLogout,
    fetched: Instant,
}

/// The SSO service: one per console.
pub struct Sso {
    settings: SsoSettings,
    http: super::http::ProviderHttp,
    clock: SharedClock,
    discovered: RwLock<Option<Arc<Discovered>>>,
}

impl std::fmt::Debug for Sso {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sso")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl Sso {
    pub fn new(settings: SsoSettings, clock: SharedClock) -> Result<Self, SsoError> {
        let http = super::http::ProviderHttp::new().map_err(|e| SsoError::Setup(e.to_string()))?;
        Ok(Self {
            settings,
            http,
            clock,
            discovered: RwLock::new(None),
        })
    }

    pub fn settings(&self) -> &SsoSettings {
        &self.settings
    }

    /// The provider's metadata and keys, fetched when absent, old, or (with
    /// `refresh`) when a token names a key not seen yet.
    async fn discovered(&self, refresh: bool) -> Result<Arc<Discovered>, SsoError> {
        if let Some(d) = self.discovered.read().await.as_ref() {
            let age = d.fetched.elapsed();
            if age < DISCOVERY_TTL && !(refresh && age >= KEY_REFRESH_MIN) {
                return Ok(Arc::clone(d));
            }
        }
        let mut slot = self.discovered.write().await;
        if let Some(d) = slot.as_ref() {
            let age = d.fetched.elapsed();
            // Another request refreshed it meanwhile.
            if age < KEY_REFRESH_MIN || (!refresh && age < DISCOVERY_TTL) {
                return Ok(Arc::clone(d));
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|_| SsoError::Setup("issuer URL".into()))?;
        let metadata = ProviderMetadataWithLogout::discover_async(issuer, &self.http)
            .await
            .map_err(|e| SsoError::Unreachable(discovery_error_kind(&e).into()))?;
        let d = Arc::new(Discovered {
            metadata,
            fetched: Instant::now(),
        });
        *slot = Some(Arc::clone(&d));
        Ok(d)
    }

    /// Fetch discovery now (at start-up), so a misconfiguration shows in the
    /// log early; failure is not fatal (the sign-in page says it).
    pub async fn warm_up(&self) -> Result<(), SsoError> {
        self.discovered(false).await.map(|_| ())
    }

    fn client(&self, d: &Discovered) -> Result<OidcClient, SsoError> {
        let redirect = RedirectUrl::new(self.settings.redirect_uri())
            .map_err(|_| SsoError::Setup("redirect URI".into()))?;
        let client = OidcClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(
                self.settings.client_secret.expose_secret().to_owned(),
            )),
        )
        .set_redirect_uri(redirect);
        // client_secret_basic unless the provider offers only client_secret_post.
        let methods = d.metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|m| {
            use openidconnect::core::CoreClientAuthMethod as M;
            !m.contains(&M::ClientSecretBasic) && m.contains(&M::ClientSecretPost)
        });
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    /// The provider's authorization URL for `purpose`, and what the session
    /// keeps until the callback.
    pub async fn begin(&self, purpose: Purpose) -> Result<(url::Url, PendingAuth), SsoError> {
        let d = self.discovered(false).await?;
        let client = self.client(&d)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge);
        if let Some(scopes) = d.metadata.scopes_supported() {
            for extra in ["email", self.settings.roles_claim.as_str()] {
                if scopes.iter().any(|s| s.as_str() == extra) {
                    request = request.add_scope(Scope::new(extra.to_owned()));
                }
            }
        }
        if let Purpose::StepUp { max_age_secs, .. } = &purpose {
            request = request
                .add_prompt(CoreAuthPrompt::Login)
                .set_max_age(Duration::from_secs(*max_age_secs));
            for acr in &self.settings.step_up.acr_values {
                request =
                    request.add_auth_context_value(AuthenticationContextClass::new(acr.clone()));
            }
        }
        let (url, state, nonce) = request.url();
        Ok((
            url,
            PendingAuth {
                state: SecretString::from(state.into_secret()),
                nonce: SecretString::from(nonce.secret().clone()),
                verifier: SecretString::from(verifier.into_secret()),
                purpose,
                started_us: self.clock.now_us(),
            },
        ))
    }

    /// Checks the callback against the pending request, exchanges the code
    /// (once: the provider refuses a second use), and verifies the ID token.
    pub async fn finish(
        &self,
        pending: Option<PendingAuth>,
        params: &CallbackParams,
    ) -> Result<VerifiedLogin, SsoError> {
        if let Some(error) = &params.error {
            return Err(SsoError::ProviderError(error_code(error)));
        }
        let state = params
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(SsoError::StateMissing)?;
        let pending = pending.ok_or(SsoError::NoPendingSignIn)?;
        if state.len() > MAX_PARAM_CHARS
            || !bool::from(
                state
                    .as_bytes()
                    .ct_eq(pending.state.expose_secret().as_bytes()),
            )
        {
            return Err(SsoError::StateMismatch);
        }
        let now_us = self.clock.now_us();
        if now_us.saturating_sub(pending.started_us) > PENDING_TTL_US {
            return Err(SsoError::NoPendingSignIn);
        }
        // RFC 9207: when the provider names itself, it must be ours.
        if params
            .iss
            .as_deref()
            .is_some_and(|iss| iss != self.settings.issuer)
        {
            return Err(SsoError::IssuerMismatch);
        }
        let code = params
            .code
            .as_deref()
            .filter(|c| !c.is_empty() && c.len() <= MAX_PARAM_CHARS)
            .ok_or(SsoError::CodeMissing)?;
        let d = self.discovered(false).await?;
        let client = self.client(&d)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| SsoError::Setup("the provider has no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(
                pending.verifier.expose_secret().to_owned(),
            ))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(r) => {
                    SsoError::CodeRejected(error_code(r.error().as_ref()))
                }
                RequestTokenError::Request(_) => SsoError::Unreachable("token endpoint".into()),
                RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
                    SsoError::BadTokenResponse
                }
            })?;
        let id_token = token.id_token().ok_or(SsoError::NoIdToken)?;
        let nonce = Nonce::new(pending.nonce.expose_secret().to_owned());
        let clock = Arc::clone(&self.clock);
        let verify = |client: &OidcClient| {
            let clock = Arc::clone(&clock);
            let verifier = client.id_token_verifier().set_time_fn(move || clock.now());
            id_token
                .claims(&verifier, &nonce)
                .cloned()
                .map_err(|e| (claims_problem(&e), is_unknown_key(&e)))
        };
        let claims = match verify(&client) {
            Ok(c) => c,
            Err((_, true)) => {
                // The provider may have rotated its keys since discovery.
                let d = self.discovered(true).await?;
                verify(&self.client(&d)?).map_err(|(p, _)| SsoError::IdToken(p))?
            }
            Err((p, false)) => return Err(SsoError::IdToken(p)),
        };
        if let Some(expected) = claims.access_token_hash() {
            let verifier = client.id_token_verifier();
            let alg = id_token
                .signing_alg()
                .map_err(|_| SsoError::IdToken(IdTokenProblem::Other))?;
            let key = id_token
                .signing_key(&verifier)
                .map_err(|_| SsoError::IdToken(IdTokenProblem::Signature))?;
            let actual = AccessTokenHash::from_token(token.access_token(), alg, key)
                .map_err(|_| SsoError::IdToken(IdTokenProblem::AccessTokenHash))?;
            if actual != *expected {
                return Err(SsoError::IdToken(IdTokenProblem::AccessTokenHash));
            }
        }
        let subject = claims.subject().as_str();
        if subject.is_empty()
            || subject.len() > MAX_SUBJECT_CHARS
            || !subject.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(SsoError::IdToken(IdTokenProblem::Subject));
        }
        let auth_time_us = claims.auth_time().map(|t| t.timestamp_micros());
        if let Purpose::StepUp {
            subject: expected,
            max_age_secs,
        } = &pending.purpose
        {
            if expected != subject {
                return Err(SsoError::SubjectMismatch);
            }
            let fresh = auth_time_us.is_some_and(|at| {
                let skew = AUTH_TIME_SKEW_SECS * 1_000_000;
                let max_age = i64::try_from(*max_age_secs)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1_000_000);
                // After the step-up was asked for, and within max_age of now.
                at >= pending.started_us.saturating_sub(skew)
                    && now_us.saturating_sub(at) <= max_age.saturating_add(skew)
            });
            if !fresh {
                return Err(SsoError::StaleAuthTime);
            }
            let acr_ok = self.settings.step_up.acr_values.is_empty()
                || claims.auth_context_ref().is_some_and(|acr| {
                    self.settings
                        .step_up
                        .acr_values
                        .iter()
                        .any(|v| v == acr.as_str())
                });
            let amr_ok = self.settings.step_up.amr.is_empty()
                || claims.auth_method_refs().is_some_and(|amr| {
                    amr.iter()
                        .any(|m| self.settings.step_up.amr.iter().any(|v| v == m.as_str()))
                });
            if !acr_ok || !amr_ok {
                return Err(SsoError::AuthContext);
            }
        }
        let in_id_token = claims
            .additional_claims()
            .claims
            .get(&self.settings.roles_claim)
            .cloned();
        // Some providers release groups at the userinfo endpoint only; its
        // answer counts only for the same subject.
        let roles_claim = match in_id_token {
            Some(v) => Some(v),
            None => {
                self.userinfo_claim(&client, &token, claims.subject().clone())
                    .await?
            }
        };
        let role = role_from_claim(roles_claim.as_ref(), &self.settings.role_map);
        let display_name = claims
            .preferred_username()
            .map(|u| u.as_str().to_owned())
            .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
            .or_else(|| {
                claims
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned())
            })
            .and_then(|n| printable(&n));
        Ok(VerifiedLogin {
            subject: subject.to_owned(),
            display_name,
            role,
            expires_us: claims.expiration().timestamp_micros(),
            auth_time_us,
            purpose: pending.purpose,
        })
    }

    /// The roles claim from the userinfo endpoint, if the provider has one.
    async fn userinfo_claim(
        &self,
        client: &OidcClient,
        token: &TokenResponseT,
        subject: openidconnect::SubjectIdentifier,
    ) -> Result<Option<serde_json::Value>, SsoError> {
        let Ok(request) = client.user_info(token.access_token().clone(), Some(subject)) else {
            return Ok(None);
        };
        let info: openidconnect::UserInfoClaims<OtherClaims, CoreGenderClaim> = request
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                openidconnect::UserInfoError::Request(_) => {
                    SsoError::Unreachable("userinfo endpoint".into())
                }
                openidconnect::UserInfoError::ClaimsVerification(_) => {
                    SsoError::IdToken(IdTokenProblem::Subject)
                }
                _ => SsoError::BadTokenResponse,
            })?;
        Ok(info
            .additional_claims()
            .claims
            .get(&self.settings.roles_claim)
            .cloned())
    }

    /// Where to send the browser to sign out at the provider too, if it
    /// offers `end_session_endpoint` (known from discovery). No token goes in
    /// the URL: `client_id` identifies the console.
    pub async fn end_session_url(&self) -> Option<url::Url> {
        let d = match self.discovered(false).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "no provider sign-out: discovery failed");
                return None;
            }
        };
        let endpoint = d
            .metadata
            .additional_metadata()
            .end_session_endpoint
            .as_ref()?;
        let mut url = endpoint.url().clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair(
                "post_logout_redirect_uri",
                &self.settings.post_logout_redirect_uri(),
            );
        Some(url)
    }
}

/// A provider's error code, kept only if it is a plain word (it is shown and
/// audited); anything else becomes "other".
fn error_code(s: &str) -> String {
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        s.to_owned()
    } else {
        "other".to_owned()
    }
}

/// A name fit to show and audit: printable, at most 64 characters.
fn printable(s: &str) -> Option<String> {
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

fn claims_problem(e: &ClaimsVerificationError) -> IdTokenProblem {
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

fn is_unknown_key(e: &ClaimsVerificationError) -> bool {
    matches!(
        e,
        ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)
    )
}

fn discovery_error_kind<E: std::error::Error + 'static>(
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
    fn a_pending_sign_in_survives_the_session_and_hides_its_secrets() {
        let p = PendingAuth {
            state: SecretString::from("the-state".to_owned()),
            nonce: SecretString::from("the-nonce".to_owned()),
            verifier: SecretString::from("the-verifier".to_owned()),
            purpose: Purpose::StepUp {
                subject: "s-1".into(),
                max_age_secs: 300,
            },
            started_us: 42,
        };
        let debug = format!("{p:?}");
        for secret in ["the-state", "the-nonce", "the-verifier"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let value = p.to_session_value().unwrap();
        let back = PendingAuth::from_session_value(&value).unwrap();
        assert_eq!(back.state.expose_secret(), "the-state");
        assert_eq!(back.verifier.expose_secret(), "the-verifier");
        assert_eq!(back.purpose, p.purpose);
        assert_eq!(back.started_us, 42);
        assert!(PendingAuth::from_session_value("{not json").is_none());
    }

    #[test]
    fn callback_parameters_hide_the_code_and_state_in_debug_output() {
        let c = CallbackParams {
            code: Some("secret-code".into()),
            state: Some("secret-state".into()),
            error: None,
            iss: None,
        };
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret-code") && !debug.contains("secret-state"));
    }

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
