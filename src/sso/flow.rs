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
    Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl, Nonce, OAuth2TokenResponse as _,
    PkceCodeChallenge, PkceCodeVerifier, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, StandardErrorResponse, StandardTokenResponse, TokenResponse as _,
};
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;
use tokio::sync::RwLock;

use super::config::SsoSettings;
use super::error::{claims_problem, discovery_error_kind, error_code, is_unknown_key, printable};
pub use super::error::{IdTokenProblem, SsoError};
pub use super::pending::{CallbackParams, PendingAuth, Purpose, VerifiedLogin};
use super::roles::role_from_claim;
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
