//! SSO settings (a contract: docs/configuration.md): flags with environment fallbacks,
//! parsed once into types that cannot hold an unusable configuration.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use secrecy::SecretString;
use url::Url;

use crate::auth::Role;

/// The path of the redirect URI under the public URL (contract).
pub const CALLBACK_PATH: &str = "/login/oidc/callback";
/// Where a signed-out user lands after the provider's sign-out.
pub const POST_LOGOUT_PATH: &str = "/login";
/// The roles claim when none is configured.
pub const DEFAULT_ROLES_CLAIM: &str = "groups";

/// Single sign-on with the company's OpenID Provider.
#[derive(Clone, Default, Args)]
pub struct OidcArgs {
    /// The OpenID Provider's issuer URL (https; http only on loopback). Unset, SSO is off.
    #[arg(long, env = "CALLVAULT_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the provider.
    #[arg(long, env = "CALLVAULT_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// The client secret (or CALLVAULT_OIDC_CLIENT_SECRET_FILE).
    #[arg(long, env = "CALLVAULT_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// A file holding the client secret (instead of CALLVAULT_OIDC_CLIENT_SECRET).
    #[arg(long, env = "CALLVAULT_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The console's address as browsers reach it; the redirect URI is <public url>/login/oidc/callback.
    #[arg(long, env = "CALLVAULT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The ID token claim that lists the person's groups.
    #[arg(long, env = "CALLVAULT_OIDC_ROLES_CLAIM", default_value = DEFAULT_ROLES_CLAIM)]
    pub oidc_roles_claim: String,
    /// Groups to roles: group=role,... (for example cc-supervisors=supervisor,cc-auditors=auditor,cc-admins=admin).
    #[arg(long, env = "CALLVAULT_OIDC_ROLE_MAP")]
    pub oidc_role_map: Option<String>,
    /// The provider's name on the sign-in button (default: the issuer's host).
    #[arg(long, env = "CALLVAULT_OIDC_PROVIDER_NAME")]
    pub oidc_provider_name: Option<String>,
    /// acr values asked for at step-up (space or comma list); the returned acr must be one of them.
    #[arg(long, env = "CALLVAULT_OIDC_STEP_UP_ACR")]
    pub oidc_step_up_acr: Option<String>,
    /// amr values of which the step-up's ID token must carry at least one (space or comma list).
    #[arg(long, env = "CALLVAULT_OIDC_STEP_UP_AMR")]
    pub oidc_step_up_amr: Option<String>,
}

impl std::fmt::Debug for OidcArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcArgs")
            .field("oidc_issuer", &self.oidc_issuer)
            .field("oidc_client_id", &self.oidc_client_id)
            .field(
                "oidc_client_secret",
                &self.oidc_client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("oidc_client_secret_file", &self.oidc_client_secret_file)
            .field("public_url", &self.public_url)
            .field("oidc_roles_claim", &self.oidc_roles_claim)
            .field("oidc_role_map", &self.oidc_role_map)
            .finish_non_exhaustive()
    }
}

/// Why the SSO settings are unusable. Names variables, never values.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SsoConfigError {
    #[error("SSO needs {0} as well (CALLVAULT_OIDC_ISSUER, CALLVAULT_OIDC_CLIENT_ID, a client secret, CALLVAULT_PUBLIC_URL and CALLVAULT_OIDC_ROLE_MAP go together)")]
    Missing(&'static str),
    #[error("{0} is not an absolute http(s) URL without query or fragment")]
    Url(&'static str),
    #[error("{0} uses http:// on a host that is not loopback; use https://")]
    PlainHttp(&'static str),
    #[error("set only one of CALLVAULT_OIDC_CLIENT_SECRET and CALLVAULT_OIDC_CLIENT_SECRET_FILE")]
    TwoSecrets,
    #[error("CALLVAULT_OIDC_CLIENT_SECRET_FILE cannot be read: {0}")]
    SecretFile(String),
    #[error("the OIDC client secret is empty")]
    EmptySecret,
    #[error("CALLVAULT_OIDC_CLIENT_ID is empty, too long or has control characters")]
    ClientId,
    #[error("CALLVAULT_OIDC_ROLES_CLAIM must be 1-64 characters of letters, digits and . _ : / -")]
    RolesClaim,
    #[error("CALLVAULT_OIDC_ROLE_MAP must be group=role pairs (roles: supervisor, auditor, admin), each group once")]
    RoleMap,
    #[error("CALLVAULT_OIDC_PROVIDER_NAME must be 1-40 printable characters")]
    ProviderName,
    #[error("{0} must be a list of printable values")]
    StepUpValues(&'static str),
}

/// Usable SSO settings.
#[derive(Debug, Clone)]
pub struct SsoSettings {
    /// Exactly as configured: ID tokens' `iss` must equal it character for character.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The console's public base URL, without a trailing slash.
    pub public_url: Url,
    pub roles_claim: String,
    pub role_map: RoleMap,
    /// Shown on the sign-in button.
    pub provider_name: String,
    pub step_up: StepUpRequirements,
}

/// What a step-up through the provider must show besides a fresh `auth_time`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepUpRequirements {
    /// Sent as `acr_values`; the returned `acr` must be one of them (if any).
    pub acr_values: Vec<String>,
    /// The returned `amr` must hold at least one of them (if any).
    pub amr: Vec<String>,
}

impl SsoSettings {
    /// `<public url>/login/oidc/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("{}{CALLBACK_PATH}", base(&self.public_url))
    }

    /// `<public url>/login`, where the provider's sign-out returns.
    pub fn post_logout_redirect_uri(&self) -> String {
        format!("{}{POST_LOGOUT_PATH}", base(&self.public_url))
    }
}

fn base(url: &Url) -> &str {
    url.as_str().trim_end_matches('/')
}

/// Groups to roles, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoleMap(BTreeMap<String, Role>);

impl RoleMap {
    /// `group=role,group=role`; a group appears once, every role is known.
    pub fn parse(s: &str) -> Result<Self, SsoConfigError> {
        let mut map = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (group, role) = pair.rsplit_once('=').ok_or(SsoConfigError::RoleMap)?;
            let (group, role) = (group.trim(), role.trim());
            let role = Role::parse(role).ok_or(SsoConfigError::RoleMap)?;
            if group.is_empty() || group.len() > 256 || group.chars().any(char::is_control) {
                return Err(SsoConfigError::RoleMap);
            }
            if map.insert(group.to_owned(), role).is_some() {
                return Err(SsoConfigError::RoleMap);
            }
        }
        if map.is_empty() {
            return Err(SsoConfigError::RoleMap);
        }
        Ok(Self(map))
    }

    pub fn role_of(&self, group: &str) -> Option<Role> {
        self.0.get(group).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, Role)> {
        self.0.iter().map(|(g, r)| (g.as_str(), *r))
    }
}

impl OidcArgs {
    /// None when SSO is not configured (no issuer); an error when it is half
    /// configured or a value is unusable.
    pub fn settings(&self) -> Result<Option<SsoSettings>, SsoConfigError> {
        let Some(issuer) = non_blank(self.oidc_issuer.as_deref()) else {
            let any_other = non_blank(self.oidc_client_id.as_deref()).is_some()
                || non_blank(self.oidc_client_secret.as_deref()).is_some()
                || self.oidc_client_secret_file.is_some()
                || non_blank(self.oidc_role_map.as_deref()).is_some();
            return if any_other {
                Err(SsoConfigError::Missing("CALLVAULT_OIDC_ISSUER"))
            } else {
                Ok(None)
            };
        };
        let issuer_url = parse_url("CALLVAULT_OIDC_ISSUER", issuer)?;
        let client_id = non_blank(self.oidc_client_id.as_deref())
            .ok_or(SsoConfigError::Missing("CALLVAULT_OIDC_CLIENT_ID"))?;
        if client_id.len() > 255 || client_id.chars().any(char::is_control) {
            return Err(SsoConfigError::ClientId);
        }
        let client_secret = match (
            non_blank(self.oidc_client_secret.as_deref()),
            &self.oidc_client_secret_file,
        ) {
            (Some(_), Some(_)) => return Err(SsoConfigError::TwoSecrets),
            (Some(secret), None) => SecretString::from(secret.to_owned()),
            (None, Some(path)) => read_secret_file(path)?,
            (None, None) => {
                return Err(SsoConfigError::Missing(
                    "CALLVAULT_OIDC_CLIENT_SECRET or CALLVAULT_OIDC_CLIENT_SECRET_FILE",
                ))
            }
        };
        let public_url = non_blank(self.public_url.as_deref())
            .ok_or(SsoConfigError::Missing("CALLVAULT_PUBLIC_URL"))?;
        let public_url = parse_url("CALLVAULT_PUBLIC_URL", public_url)?;
        let roles_claim = self.oidc_roles_claim.trim();
        if roles_claim.is_empty()
            || roles_claim.len() > 64
            || !roles_claim
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
        {
            return Err(SsoConfigError::RolesClaim);
        }
        let role_map = RoleMap::parse(
            non_blank(self.oidc_role_map.as_deref())
                .ok_or(SsoConfigError::Missing("CALLVAULT_OIDC_ROLE_MAP"))?,
        )?;
        let provider_name = match non_blank(self.oidc_provider_name.as_deref()) {
            Some(name) if name.chars().count() <= 40 && !name.chars().any(char::is_control) => {
                name.to_owned()
            }
            Some(_) => return Err(SsoConfigError::ProviderName),
            None => issuer_url
                .host_str()
                .unwrap_or("the identity provider")
                .to_owned(),
        };
        let step_up = StepUpRequirements {
            acr_values: list(
                "CALLVAULT_OIDC_STEP_UP_ACR",
                self.oidc_step_up_acr.as_deref(),
            )?,
            amr: list(
                "CALLVAULT_OIDC_STEP_UP_AMR",
                self.oidc_step_up_amr.as_deref(),
            )?,
        };
        Ok(Some(SsoSettings {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret,
            public_url,
            roles_claim: roles_claim.to_owned(),
            role_map,
            provider_name,
            step_up,
        }))
    }
}

fn non_blank(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

fn list(name: &'static str, s: Option<&str>) -> Result<Vec<String>, SsoConfigError> {
    let values: Vec<String> = s
        .unwrap_or("")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .collect();
    if values
        .iter()
        .any(|v| v.len() > 200 || !v.chars().all(|c| c.is_ascii_graphic()))
    {
        return Err(SsoConfigError::StepUpValues(name));
    }
    Ok(values)
}

/// An absolute http(s) URL with a host, no query, fragment or credentials;
/// `http://` only when the host is loopback (tests), like `--insecure-cookie`.
pub fn parse_url(name: &'static str, s: &str) -> Result<Url, SsoConfigError> {
    let url = Url::parse(s).map_err(|_| SsoConfigError::Url(name))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.host_str().is_none()
    {
        return Err(SsoConfigError::Url(name));
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(SsoConfigError::PlainHttp(name)),
        _ => Err(SsoConfigError::Url(name)),
    }
}

/// Is the URL's host a loopback address (or `localhost`)?
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn read_secret_file(path: &Path) -> Result<SecretString, SsoConfigError> {
    let raw =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            SsoConfigError::SecretFile(format!("{}: {}", path.display(), e.kind()))
        })?);
    let secret = raw.trim();
    if secret.is_empty() {
        return Err(SsoConfigError::EmptySecret);
    }
    Ok(SecretString::from(secret.to_owned()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    fn args() -> OidcArgs {
        OidcArgs {
            oidc_issuer: Some("https://idp.example.com/realms/staff".into()),
            oidc_client_id: Some("callvault".into()),
            oidc_client_secret: Some("s3cret-value".into()),
            oidc_client_secret_file: None,
            public_url: Some("https://callvault.example.com/".into()),
            oidc_roles_claim: DEFAULT_ROLES_CLAIM.into(),
            oidc_role_map: Some(
                "cc-supervisors=supervisor, cc-auditors=auditor,cc-admins=admin".into(),
            ),
            oidc_provider_name: None,
            oidc_step_up_acr: None,
            oidc_step_up_amr: None,
        }
    }

    #[test]
    fn a_complete_configuration_parses_and_names_the_redirect_uri() {
        let s = args().settings().unwrap().unwrap();
        assert_eq!(s.issuer, "https://idp.example.com/realms/staff");
        assert_eq!(
            s.redirect_uri(),
            "https://callvault.example.com/login/oidc/callback"
        );
        assert_eq!(
            s.post_logout_redirect_uri(),
            "https://callvault.example.com/login"
        );
        assert_eq!(s.roles_claim, "groups");
        assert_eq!(s.role_map.role_of("cc-auditors"), Some(Role::Auditor));
        assert_eq!(s.role_map.role_of("cc-sales"), None);
        assert_eq!(s.provider_name, "idp.example.com");
        assert_eq!(s.client_secret.expose_secret(), "s3cret-value");
    }

    #[test]
    fn the_issuer_is_kept_exactly_as_configured() {
        for issuer in ["http://127.0.0.1:4444", "https://idp.example.com/"] {
            let mut a = args();
            a.oidc_issuer = Some(format!(" {issuer} "));
            assert_eq!(a.settings().unwrap().unwrap().issuer, issuer);
        }
    }

    #[test]
    fn no_issuer_and_nothing_else_means_sso_is_off() {
        let a = OidcArgs {
            oidc_roles_claim: DEFAULT_ROLES_CLAIM.into(),
            ..Default::default()
        };
        assert!(a.settings().unwrap().is_none());
    }

    #[test]
    fn a_half_configuration_is_refused_by_name() {
        let mut a = args();
        a.oidc_issuer = None;
        assert_eq!(
            a.settings().unwrap_err(),
            SsoConfigError::Missing("CALLVAULT_OIDC_ISSUER")
        );
        let mut a = args();
        a.public_url = Some("  ".into());
        assert_eq!(
            a.settings().unwrap_err(),
            SsoConfigError::Missing("CALLVAULT_PUBLIC_URL")
        );
        let mut a = args();
        a.oidc_client_secret = None;
        assert!(matches!(
            a.settings().unwrap_err(),
            SsoConfigError::Missing(_)
        ));
        let mut a = args();
        a.oidc_role_map = None;
        assert_eq!(
            a.settings().unwrap_err(),
            SsoConfigError::Missing("CALLVAULT_OIDC_ROLE_MAP")
        );
    }

    #[test]
    fn plain_http_is_accepted_only_on_loopback() {
        for ok in [
            "http://127.0.0.1:4444",
            "http://[::1]:4444/",
            "http://localhost:4444",
        ] {
            let mut a = args();
            a.oidc_issuer = Some(ok.into());
            assert!(a.settings().is_ok(), "{ok}");
        }
        let mut a = args();
        a.oidc_issuer = Some("http://idp.example.com".into());
        assert_eq!(
            a.settings().unwrap_err(),
            SsoConfigError::PlainHttp("CALLVAULT_OIDC_ISSUER")
        );
        let mut a = args();
        a.public_url = Some("http://10.0.0.5:8080".into());
        assert_eq!(
            a.settings().unwrap_err(),
            SsoConfigError::PlainHttp("CALLVAULT_PUBLIC_URL")
        );
    }

    #[test]
    fn urls_with_queries_fragments_credentials_or_other_schemes_are_refused() {
        for bad in [
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#f",
            "https://user:pw@idp.example.com/",
            "ftp://idp.example.com/",
            "idp.example.com",
            "",
            "javascript:alert(1)",
        ] {
            let mut a = args();
            a.oidc_issuer = Some(bad.into());
            assert!(a.settings().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_secret_comes_from_one_place_only_and_a_file_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from-the-file\n").unwrap();
        let mut a = args();
        a.oidc_client_secret_file = Some(path.clone());
        assert_eq!(a.settings().unwrap_err(), SsoConfigError::TwoSecrets);
        a.oidc_client_secret = None;
        let s = a.settings().unwrap().unwrap();
        assert_eq!(s.client_secret.expose_secret(), "from-the-file");
        std::fs::write(&path, " \n").unwrap();
        assert_eq!(a.settings().unwrap_err(), SsoConfigError::EmptySecret);
        a.oidc_client_secret_file = Some(dir.path().join("absent"));
        assert!(matches!(
            a.settings().unwrap_err(),
            SsoConfigError::SecretFile(_)
        ));
    }

    #[test]
    fn the_client_secret_never_shows_in_debug_output_or_errors() {
        let s = args().settings().unwrap().unwrap();
        let debug = format!("{s:?} {:?}", args());
        assert!(!debug.contains("s3cret-value"), "{debug}");
        let mut a = args();
        a.oidc_role_map = Some("broken".into());
        assert!(!a.settings().unwrap_err().to_string().contains("s3cret"));
    }

    #[test]
    fn role_maps_need_known_roles_and_each_group_once() {
        assert!(RoleMap::parse("a=supervisor,b=auditor").is_ok());
        assert!(RoleMap::parse("a=supervisor,b=root").is_err());
        assert!(RoleMap::parse("a=supervisor,a=admin").is_err());
        assert!(RoleMap::parse("=admin").is_err());
        assert!(RoleMap::parse("noequals").is_err());
        assert!(RoleMap::parse(" , ").is_err());
        assert!(RoleMap::parse("a\u{0}b=admin").is_err());
        // A group name may hold '=': the role is after the last one.
        let m = RoleMap::parse("cn=cc-admins=admin").unwrap();
        assert_eq!(m.role_of("cn=cc-admins"), Some(Role::Admin));
    }

    #[test]
    fn roles_claim_names_are_restricted() {
        for ok in [
            "groups",
            "roles",
            "https://example.com/claims/groups",
            "realm_access.roles",
        ] {
            let mut a = args();
            a.oidc_roles_claim = ok.into();
            assert!(a.settings().is_ok(), "{ok}");
        }
        for bad in ["", "a b", "<x>", &"g".repeat(65)] {
            let mut a = args();
            a.oidc_roles_claim = bad.into();
            assert_eq!(
                a.settings().unwrap_err(),
                SsoConfigError::RolesClaim,
                "{bad}"
            );
        }
    }

    #[test]
    fn step_up_requirements_are_lists() {
        let mut a = args();
        a.oidc_step_up_acr = Some("urn:a, urn:b".into());
        a.oidc_step_up_amr = Some("mfa otp".into());
        a.oidc_provider_name = Some("Acme SSO".into());
        let s = a.settings().unwrap().unwrap();
        assert_eq!(s.step_up.acr_values, ["urn:a", "urn:b"]);
        assert_eq!(s.step_up.amr, ["mfa", "otp"]);
        assert_eq!(s.provider_name, "Acme SSO");
        a.oidc_step_up_amr = Some("m\u{7}fa".into());
        assert!(a.settings().is_err());
    }
}
