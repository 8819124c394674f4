use std::path::PathBuf;
use std::sync::Arc;

use callvault::audit::AuditRow;
use callvault::auth::password::Password;
use callvault::auth::users::Username;
use callvault::auth::Role;
use callvault::clock::{Clock as _, OffsetClock};
use callvault::config::Settings;
use callvault::startup::Application;
use callvault::startup::Services;
use reqwest::header::LOCATION;
use reqwest::{Client, Response, StatusCode};

pub const PASSWORD: &str = "a long test password";

#[allow(dead_code)]
pub struct TestApp {
    pub address: String,
    pub clock: Arc<OffsetClock>,
    pub state: Arc<Services>,
    pub db_url: String,
    pub secrets_dir: PathBuf,
    /// The raw AES key file of demo apps.
    pub key_path: Option<PathBuf>,
    pub _dir: tempfile::TempDir,
}

/// A prerequisite provided by scripts/test: under CI its absence fails the
/// test; elsewhere the test says loudly that it did not run.
pub fn require_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{name} is not set: run the tests through scripts/test");
            }
            eprintln!("SKIPPED: {name} is not set; run scripts/test to include this test");
            None
        }
    }
}

/// A fresh, empty PostgreSQL database; its URL.
pub async fn fresh_postgres_database() -> Option<String> {
    use sqlx::Connection as _;
    let admin_url = require_env("CALLVAULT_TEST_POSTGRES")?;
    let name = format!("callvault_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Some(format!("{base}/{name}"))
}

pub fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite://{}", dir.path().join("callvault.db").display())
}

/// The one way a test gets a console: `AppBuilder::new()` (empty, local
/// settings parsed from production's defaults), `.demo()` for the demo's
/// contacts and flow logs with a raw AES keyring, `.settings(..)`,
/// `.modify(..)` (the demo's data), `.sources(..)`, `.database(..)`,
/// `.sdk(..)`; `.spawn()` starts it on a random loopback port. The
/// `spawn_*` functions below are its common shapes.
#[derive(Default)]
pub struct AppBuilder<'a> {
    dir: Option<tempfile::TempDir>,
    db_url: Option<String>,
    demo: bool,
    #[allow(clippy::type_complexity)]
    modify: Vec<Box<dyn FnOnce(&mut callvault::demo::DemoData, &std::path::Path) + 'a>>,
    settings: Vec<Box<dyn FnOnce(&mut Settings) + 'a>>,
    settings_whole: Option<Settings>,
    sources: Option<callvault::startup::Sources>,
    sdk: Option<aws_config::SdkConfig>,
}

#[allow(dead_code)]
impl<'a> AppBuilder<'a> {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn demo(mut self) -> Self {
        self.demo = true;
        self
    }
    pub fn database(mut self, dir: tempfile::TempDir, db_url: String) -> Self {
        self.dir = Some(dir);
        self.db_url = Some(db_url);
        self
    }
    pub fn settings(mut self, f: impl FnOnce(&mut Settings) + 'a) -> Self {
        self.settings.push(Box::new(f));
        self
    }
    /// Settings made whole by the test (their database is the app's).
    pub fn with_settings(mut self, dir: tempfile::TempDir, settings: Settings) -> Self {
        self.db_url = Some(settings.database_url.as_str().to_owned());
        self.dir = Some(dir);
        self.settings_whole = Some(settings);
        self
    }
    pub fn modify(
        mut self,
        f: impl FnOnce(&mut callvault::demo::DemoData, &std::path::Path) + 'a,
    ) -> Self {
        self.modify.push(Box::new(f));
        self
    }
    pub fn sources(mut self, sources: callvault::startup::Sources) -> Self {
        self.sources = Some(sources);
        self
    }
    pub fn sdk(mut self, sdk: Option<aws_config::SdkConfig>) -> Self {
        self.sdk = sdk;
        self
    }

    pub async fn spawn(self) -> TestApp {
        use callvault::demo::{generate, DemoDirectory, DemoLogStore};
        let dir = self.dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
        let db_url = self.db_url.unwrap_or_else(|| sqlite_url(&dir));
        let clock = Arc::new(OffsetClock::default());
        let mut settings = self
            .settings_whole
            .unwrap_or_else(|| local_settings(&dir, &db_url));
        let mut sources = self.sources;
        let mut key_path = None;
        if self.demo {
            let (handler, key) = lambda_handler(dir.path()).await;
            let mut data = generate(&handler, clock.now_us()).await.unwrap();
            for f in self.modify {
                f(&mut data, dir.path());
            }
            settings.cookie_secure = false;
            settings.keyring =
                Some(lambda_encrypt::keyring::KeyringSpec::RawAes { path: key.clone() });
            sources = Some(callvault::startup::Sources {
                directory: Arc::new(DemoDirectory::new(&data)),
                logs: Arc::new(DemoLogStore::new(&data)),
            });
            key_path = Some(key);
        }
        for f in self.settings {
            f(&mut settings);
        }
        let sdk = match (&settings.ship, self.sdk) {
            (Some(_), None) => {
                Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
            }
            (_, sdk) => sdk,
        };
        let app = match sources {
            Some(sources) => {
                Application::build_with(settings, clock.clone(), sources, sdk.as_ref())
                    .await
                    .expect("build app")
            }
            None => Application::build(settings, clock.clone())
                .await
                .expect("build app"),
        };
        launch(app, clock, dir, db_url, key_path)
    }
}

pub async fn spawn_app() -> TestApp {
    AppBuilder::new().spawn().await
}

pub async fn spawn_app_with(
    dir: tempfile::TempDir,
    db_url: String,
    cookie_secure: bool,
) -> TestApp {
    AppBuilder::new()
        .database(dir, db_url)
        .settings(move |s| s.cookie_secure = cookie_secure)
        .spawn()
        .await
}

/// Loopback, port 0, the given database, secrets in `dir`.
fn local_settings(dir: &tempfile::TempDir, db_url: &str) -> Settings {
    Settings::local(
        "127.0.0.1:0".parse().unwrap(),
        db_url.to_owned(),
        dir.path().join("secrets"),
    )
}

/// The console on these sources and settings (its database and secrets in `dir`).
#[allow(dead_code)]
pub async fn spawn_with_sources(
    dir: tempfile::TempDir,
    settings: Settings,
    sources: callvault::startup::Sources,
) -> TestApp {
    AppBuilder::new()
        .with_settings(dir, settings)
        .sources(sources)
        .spawn()
        .await
}

/// Runs a built app in the background.
fn launch(
    app: Application,
    clock: Arc<OffsetClock>,
    dir: tempfile::TempDir,
    db_url: String,
    key_path: Option<PathBuf>,
) -> TestApp {
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        clock,
        state,
        db_url,
        secrets_dir: dir.path().join("secrets"),
        key_path,
        _dir: dir,
    }
}

/// The Lambda handler with a new raw AES key in `dir`; the key's path.
pub async fn lambda_handler(dir: &std::path::Path) -> (lambda_encrypt::handler::Handler, PathBuf) {
    let key = dir.join("demo-key.b64");
    if !key.exists() {
        lambda_encrypt::keyring::generate_raw_aes_key_file(&key).unwrap();
    }
    let spec = lambda_encrypt::keyring::KeyringSpec::RawAes { path: key.clone() };
    let crypto = lambda_encrypt::crypto::FieldCrypto::from_spec(&spec, Default::default(), None)
        .await
        .unwrap();
    (
        lambda_encrypt::handler::Handler::new(Default::default(), crypto),
        key,
    )
}

/// The console on the demo's data sources (values encrypted by the Lambda's
/// handler), with a keyring; `modify` may change the data first.
pub async fn spawn_demo_app_with(
    modify: impl FnOnce(&mut callvault::demo::DemoData, &std::path::Path),
) -> TestApp {
    AppBuilder::new().demo().modify(modify).spawn().await
}

/// As `spawn_demo_app_with`; `settings_fn` may also change the console's settings.
pub async fn spawn_demo_app_custom(
    modify: impl FnOnce(&mut callvault::demo::DemoData, &std::path::Path),
    settings_fn: impl FnOnce(&mut Settings),
) -> TestApp {
    AppBuilder::new()
        .demo()
        .modify(modify)
        .settings(settings_fn)
        .spawn()
        .await
}

/// As `spawn_demo_app_custom`, with this AWS configuration for audit shipping
/// (the environment's when None and shipping is configured).
pub async fn spawn_demo_app_sdk(
    modify: impl FnOnce(&mut callvault::demo::DemoData, &std::path::Path),
    settings_fn: impl FnOnce(&mut Settings),
    sdk: Option<aws_config::SdkConfig>,
) -> TestApp {
    AppBuilder::new()
        .demo()
        .modify(modify)
        .settings(settings_fn)
        .sdk(sdk)
        .spawn()
        .await
}

pub async fn spawn_demo_app() -> TestApp {
    AppBuilder::new().demo().spawn().await
}

/// A moto server of this test's own on `port` (killed on drop).
pub struct Moto(pub std::process::Child);

impl Moto {
    pub fn start(port: u16) -> Option<Self> {
        let python = require_env("CALLVAULT_PYTHON")?;
        let child = std::process::Command::new(python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = Self(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(moto);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("moto did not start on port {port}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 100 ms for up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..secs * 10 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Asserts that no audit row holds `secret` anywhere.
pub async fn assert_audit_free_of(app: &TestApp, secret: &str) {
    for row in app.audit_rows().await {
        assert!(
            !format!("{row:?}").contains(secret),
            "audit row {} holds a secret",
            row.seq
        );
    }
}

pub fn client() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A value as the reveal page shows it: digits in groups of four.
pub fn grouped(value: &str) -> String {
    callvault::decrypt::grouped(value)
}

/// Whether a text shows `value`, as it is or grouped as the reveal page
/// shows it.
pub trait Shows {
    fn shows(&self, value: &str) -> bool;
}

impl<T: AsRef<str> + ?Sized> Shows for T {
    fn shows(&self, value: &str) -> bool {
        let text = self.as_ref();
        text.contains(value) || text.contains(&grouped(value))
    }
}

/// Where an admitted reveal is sent: its page (`/reveals/{grant}`), if so.
pub fn reveal_location(r: &Response) -> Option<String> {
    let to = r.headers().get(LOCATION)?.to_str().ok()?;
    (r.status() == StatusCode::SEE_OTHER && to.starts_with("/reveals/")).then(|| to.to_owned())
}

/// Follows an admitted reveal's redirect to the page that shows the value;
/// any other answer is returned as it is.
pub async fn follow_reveal(address: &str, client: &Client, r: Response) -> Response {
    match reveal_location(&r) {
        Some(to) => client.get(format!("{address}{to}")).send().await.unwrap(),
        None => r,
    }
}

pub fn assert_redirects_to(response: &Response, location: &str) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to {location}"
    );
    assert_eq!(response.headers()[LOCATION], location);
}

/// A sign-in that landed on a role's own page (`Role::home`: contacts,
/// audit log, users), where a sign-in with no page to return to goes.
pub fn assert_signed_in(response: &Response) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a signed-in redirect"
    );
    let to = response.headers()[LOCATION].to_str().unwrap();
    assert!(
        Role::ALL.iter().any(|r| r.home() == to),
        "a sign-in landed on {to}"
    );
}

/// A 303 to the sign-in page, whatever return target or notice it carries
/// (`reveal_pages.rs` checks those exactly).
pub fn assert_sent_to_sign_in(response: &Response) {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "expected a redirect to sign in"
    );
    let to = response.headers()[LOCATION].to_str().unwrap();
    assert!(to == "/login" || to.starts_with("/login?"), "sent to {to}");
}

/// One decrypt against a server that may be failing or going away: loads the
/// contact's page, posts its form (with whatever token the page had).
/// (status, body, request id), or None if the connection failed.
pub async fn decrypt_attempt(
    address: &str,
    client: &Client,
    contact: &str,
    field: &str,
    reason: &str,
) -> Option<(StatusCode, String, String)> {
    let html = client
        .get(format!("{address}/contacts/{contact}"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let token = csrf_in_opt(&html).unwrap_or_default();
    let r = client
        .post(format!("{address}/contacts/{contact}/decrypt"))
        .form(&[("field", field), ("reason", reason), ("csrf_token", &token)])
        .send()
        .await
        .ok()?;
    // The id of the request that asked (its audit row carries it).
    let request_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let r = match reveal_location(&r) {
        Some(to) => client.get(format!("{address}{to}")).send().await.ok()?,
        None => r,
    };
    let status = r.status();
    Some((status, r.text().await.ok()?, request_id))
}

/// The CSRF token in a page's forms, if it has one.
/// A client signed in as `username` to the console at `base` (a separate
/// process: a demo replica, a copied binary), through its real sign-in form.
pub async fn sign_in_at(base: &str, username: &str, password: &str) -> Client {
    let c = client();
    let html = c
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("username", username),
            ("password", password),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_signed_in(&r);
    c
}

pub fn csrf_in_opt(html: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker)? + marker.len();
    Some(html[start..].split('"').next()?.to_owned())
}

/// The CSRF token in a page's forms.
pub fn csrf_in(html: &str) -> String {
    csrf_in_opt(html).expect("page has a CSRF token")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// GET `path` with `client`; the body as text.
    pub async fn page(&self, client: &Client, path: &str) -> String {
        client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn add_user(&self, username: &str, role: Role) -> i64 {
        self.state
            .users
            .add(
                &Username::parse(username).unwrap(),
                &Password::new(PASSWORD.into()),
                role,
            )
            .await
            .unwrap()
            .id
    }

    /// GET `page`, then POST `fields` to `action` with that page's CSRF token.
    pub async fn post_form(
        &self,
        client: &Client,
        page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Response {
        let html = client
            .get(self.url(page))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let token = csrf_in(&html);
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        let r = client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .unwrap();
        // An admitted reveal continues at the page that shows it.
        follow_reveal(&self.address, client, r).await
    }

    /// Loads the contact's page, then posts its decrypt form; an admitted
    /// reveal is followed to its page (where the value is shown, once).
    pub async fn decrypt(
        &self,
        client: &Client,
        contact: &str,
        field: &str,
        reason: &str,
    ) -> Response {
        self.post_form(
            client,
            &format!("/contacts/{contact}"),
            &format!("/contacts/{contact}/decrypt"),
            &[("field", field), ("reason", reason)],
        )
        .await
    }

    pub async fn login(&self, client: &Client, username: &str, password: &str) -> Response {
        self.post_form(
            client,
            "/login",
            "/login",
            &[("username", username), ("password", password)],
        )
        .await
    }

    /// A signed-in client for a new user of `role`.
    pub async fn login_as(&self, role: Role) -> Client {
        let name = format!(
            "{}-{}",
            role.as_str(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.add_user(&name, role).await;
        let c = client();
        let r = self.login(&c, &name, PASSWORD).await;
        assert_redirects_to(&r, role.home());
        c
    }

    pub async fn audit_rows(&self) -> Vec<AuditRow> {
        let mut rows = self
            .state
            .audit
            .query(&Default::default(), None, 100_000)
            .await
            .unwrap();
        rows.reverse();
        rows
    }

    pub async fn last_audit(&self, action: &str) -> Option<AuditRow> {
        self.audit_rows()
            .await
            .into_iter()
            .rev()
            .find(|r| r.action == action)
    }
}
