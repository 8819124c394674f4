//! The test OpenID Provider (tests/oidc-provider, started by scripts/test):
//! client registration, accounts, and a person signing in at it.

use callvault::auth::Role;
use reqwest::header::LOCATION;
use reqwest::{Client, StatusCode};

use crate::helpers::require_env;

/// The provider scripts/test started, if any (a test says SKIPPED without it,
/// and fails under CI).
pub fn issuer() -> Option<String> {
    require_env("CALLVAULT_TEST_OIDC_ISSUER")
}

/// A client registered at the provider (dynamic registration).
#[derive(Debug, Clone)]
pub struct RegisteredClient {
    pub client_id: String,
    pub client_secret: String,
}

/// Registers a confidential client whose redirect URI is
/// `<public_url>/login/oidc/callback`.
pub async fn register_client(issuer: &str, public_url: &str) -> RegisteredClient {
    let body = serde_json::json!({
        "redirect_uris": [format!("{public_url}/login/oidc/callback")],
        "post_logout_redirect_uris": [format!("{public_url}/login")],
        "response_types": ["code"],
        "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "require_auth_time": true,
        "client_name": "callvault test",
    });
    let r = reqwest::Client::new()
        .post(format!("{issuer}/reg"))
        .json(&body)
        .send()
        .await
        .expect("register at the test provider");
    assert_eq!(r.status(), StatusCode::CREATED, "client registration");
    let v: serde_json::Value = r.json().await.unwrap();
    RegisteredClient {
        client_id: v["client_id"].as_str().unwrap().to_owned(),
        client_secret: v["client_secret"].as_str().unwrap().to_owned(),
    }
}

/// Creates or replaces an account at the provider with these claims.
pub async fn put_account(issuer: &str, id: &str, claims: serde_json::Value) {
    let r = reqwest::Client::new()
        .put(format!("{issuer}/test/accounts/{id}"))
        .json(&claims)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
}

/// A fresh account id for one test.
pub fn unique_account(prefix: &str) -> String {
    // Letters only: a run of random hex digits can read as a card number,
    // which no username may hold.
    let letters: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .map(|c| match c.to_digit(10) {
            Some(d) => char::from(b'g' + d as u8),
            None => c,
        })
        .collect();
    format!("{prefix}-{letters}")
}

/// How the person answers the provider's sign-in form.
#[derive(Debug, Clone)]
pub struct Login<'a> {
    pub account: &'a str,
    /// Report the authentication as this many seconds old.
    pub auth_age_secs: u64,
    /// Press "Cancel" instead of signing in.
    pub cancel: bool,
}

impl<'a> Login<'a> {
    pub fn as_(account: &'a str) -> Self {
        Self {
            account,
            auth_age_secs: 0,
            cancel: false,
        }
    }
}

/// Follows `start` (a URL that leads to the provider) through the provider's
/// sign-in, answering its form as `login` says, until the provider sends the
/// browser back to something that is not the provider; that URL.
/// `browser` keeps both the console's and the provider's cookies.
pub async fn through_provider(
    browser: &Client,
    issuer: &str,
    start: &str,
    login: &Login<'_>,
) -> String {
    let mut url = start.to_owned();
    for _ in 0..10 {
        let r = browser.get(&url).send().await.unwrap();
        match r.status() {
            s if s.is_redirection() => {
                let next = r.headers()[LOCATION].to_str().unwrap().to_owned();
                let next = if next.starts_with('/') {
                    // Relative locations only come from the provider here.
                    let origin = if url.starts_with(issuer) {
                        issuer.to_owned()
                    } else {
                        origin_of(&url)
                    };
                    format!("{origin}{next}")
                } else {
                    next
                };
                if !next.starts_with(issuer) && url.starts_with(issuer) {
                    return next;
                }
                url = next;
            }
            StatusCode::OK if url.starts_with(&format!("{issuer}/interaction/")) => {
                let action = if login.cancel { "abort" } else { "login" };
                let r = browser
                    .post(format!("{url}/{action}"))
                    .form(&[
                        ("login", login.account),
                        ("auth_age", &login.auth_age_secs.to_string()),
                    ])
                    .send()
                    .await
                    .unwrap();
                assert!(
                    r.status().is_redirection(),
                    "the provider took the sign-in form"
                );
                url = r.headers()[LOCATION].to_str().unwrap().to_owned();
                if url.starts_with('/') {
                    url = format!("{issuer}{url}");
                }
            }
            other => {
                let body = r.text().await.unwrap_or_default();
                // Signing in as another person than the provider's session
                // holds: the provider asks (a self-submitting form) to end
                // that session first; a browser submits it by script.
                if other == StatusCode::OK && body.contains("Submitting Callback") {
                    url = submit_form_post(browser, issuer, &body).await;
                    continue;
                }
                panic!("unexpected {other} at {url}: {body:.500}")
            }
        }
    }
    panic!("the provider did not send the browser back");
}

/// Posts the provider's self-submitting form; where it redirects to.
async fn submit_form_post(browser: &Client, issuer: &str, body: &str) -> String {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        let start = tag.find(&key).unwrap() + key.len();
        tag[start..]
            .split('"')
            .next()
            .unwrap()
            .replace("&amp;", "&")
    };
    let form_at = body.find("<form").unwrap();
    let action = attr(&body[form_at..], "action");
    let fields: Vec<(String, String)> = body[form_at..]
        .split("<input")
        .skip(1)
        .map(|tag| (attr(tag, "name"), attr(tag, "value")))
        .collect();
    let action = if action.starts_with('/') {
        format!("{issuer}{action}")
    } else {
        action
    };
    let r = browser.post(&action).form(&fields).send().await.unwrap();
    assert!(
        r.status().is_redirection(),
        "the provider took its own form"
    );
    let next = r.headers()[LOCATION].to_str().unwrap().to_owned();
    if next.starts_with('/') {
        format!("{issuer}{next}")
    } else {
        next
    }
}

fn origin_of(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    )
}

/// A provider of the test's own (node tests/oidc-provider/provider.mjs),
/// killed on drop: for tests that stop it mid-flow.
pub struct OwnProvider {
    child: std::process::Child,
    pub issuer: String,
    _dir: tempfile::TempDir,
}

impl OwnProvider {
    pub fn start() -> Option<Self> {
        let script = require_env("CALLVAULT_TEST_OIDC_PROVIDER")?;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("issuer.json");
        let child = std::process::Command::new("node")
            .arg(&script)
            .arg("--issuer-file")
            .arg(&file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start node");
        // Owned at once, so it is killed and reaped on every path.
        let mut own = Self {
            child,
            issuer: String::new(),
            _dir: dir,
        };
        for _ in 0..100 {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                own.issuer = v["issuer"].as_str().unwrap().to_owned();
                return Some(own);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        own.stop();
        panic!("the test's own OpenID Provider did not start");
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnProvider {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A browser-like client: cookies, no automatic redirects.
pub fn browser() -> Client {
    crate::helpers::client()
}

/// The query parameters of a URL.
pub fn query_of(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A demo console (contacts, reveals) with single sign-on at `issuer`.
pub struct SsoApp {
    pub app: crate::helpers::TestApp,
    pub issuer: String,
    pub client: RegisteredClient,
}

pub const ROLE_MAP: &str = "cc-supervisors=supervisor,cc-auditors=auditor,cc-admins=admin";

/// The demo console with SSO at the test provider (None, and SKIPPED, when
/// scripts/test did not start one).
pub async fn spawn_sso_app() -> Option<SsoApp> {
    let issuer = issuer()?;
    Some(spawn_sso_app_at(&issuer, true).await)
}

/// As `spawn_sso_app`, with the provider at `issuer`; `register` false for
/// an issuer nothing answers at (the client is then made up).
pub async fn spawn_sso_app_at(issuer: &str, register: bool) -> SsoApp {
    // The redirect URI names the port, so the port is chosen first.
    let port = crate::helpers::free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let client = if register {
        register_client(issuer, &public_url).await
    } else {
        RegisteredClient {
            client_id: "never-registered".into(),
            client_secret: "never-registered".into(),
        }
    };
    let args = callvault::sso::OidcArgs {
        oidc_issuer: Some(issuer.to_owned()),
        oidc_client_id: Some(client.client_id.clone()),
        oidc_client_secret: Some(client.client_secret.clone()),
        public_url: Some(public_url),
        oidc_roles_claim: "groups".into(),
        oidc_role_map: Some(ROLE_MAP.into()),
        ..Default::default()
    };
    let sso = args.settings().unwrap().unwrap();
    let app = crate::helpers::spawn_demo_app_custom(
        |_, _| {},
        move |s| {
            s.listen = format!("127.0.0.1:{port}").parse().unwrap();
            s.sso = Some(sso);
        },
    )
    .await;
    SsoApp {
        app,
        issuer: issuer.to_owned(),
        client,
    }
}

/// What a sign-in through the provider came to.
pub struct SsoOutcome {
    /// The callback's status (200: verified, on to `resume`).
    pub callback: StatusCode,
    /// The callback page.
    pub callback_body: String,
    /// The resume's status and location (303 to the role's page when signed in).
    pub resumed: Option<(StatusCode, String)>,
}

impl SsoApp {
    /// `browser` starts at `start` (e.g. /login/oidc), signs in at the
    /// provider as `login` says, and follows the console's callback.
    pub async fn through(&self, browser: &Client, start: &str, login: &Login<'_>) -> SsoOutcome {
        let back = through_provider(browser, &self.issuer, &self.app.url(start), login).await;
        assert!(
            back.starts_with(&self.app.url("/login/oidc/callback?")),
            "{back}"
        );
        self.callback(browser, &back).await
    }

    /// The console's callback at `url`, and its resume if it verified.
    pub async fn callback(&self, browser: &Client, url: &str) -> SsoOutcome {
        let r = browser.get(url).send().await.unwrap();
        let callback = r.status();
        let callback_body = r.text().await.unwrap();
        let resumed = if callback == StatusCode::OK {
            assert!(callback_body.contains("http-equiv=\"refresh\""));
            let r = browser
                .get(self.app.url("/login/oidc/callback?resume=1"))
                .send()
                .await
                .unwrap();
            let location = r
                .headers()
                .get(LOCATION)
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_default();
            Some((r.status(), location))
        } else {
            None
        };
        SsoOutcome {
            callback,
            callback_body,
            resumed,
        }
    }

    /// A browser signed in by SSO as `account` (which must be allowed in).
    pub async fn sign_in(&self, account: &str) -> Client {
        let b = browser();
        let out = self.through(&b, "/login/oidc", &Login::as_(account)).await;
        assert_eq!(out.callback, StatusCode::OK, "{}", out.callback_body);
        // Each role lands on its own page (`Role::home`).
        let homes = [Role::Supervisor, Role::Auditor, Role::Admin].map(Role::home);
        assert!(
            matches!(&out.resumed, Some((StatusCode::SEE_OTHER, to)) if homes.contains(&to.as_str())),
            "{account} signs in: {:?}",
            out.resumed
        );
        b
    }

    /// Is `browser` signed in?
    pub async fn signed_in(&self, browser: &Client) -> bool {
        browser
            .get(self.app.url("/"))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    }
}

/// The `href` of the element with this id in a page, unescaped.
pub fn href_of(html: &str, id: &str) -> String {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &html[at..];
    let start = rest.find("href=\"").unwrap() + 6;
    let end = rest[start..].find('"').unwrap() + start;
    let mut href = rest[start..end].to_owned();
    for (entity, c) in [
        ("&amp;", "&"),
        ("&#38;", "&"),
        ("&#x2f;", "/"),
        ("&#x2F;", "/"),
        ("&#47;", "/"),
        ("&#61;", "="),
    ] {
        href = href.replace(entity, c);
    }
    href
}
