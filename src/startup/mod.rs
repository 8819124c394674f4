//! Composition: `Application::build` opens storage, builds every service
//! once, hands each capability what it uses, composes their routes, binds the
//! listener (port 0 in tests) and reports the real port.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_session::config::{BrowserSession, CookieContentSecurity, TtlExtensionPolicy};
use actix_session::SessionMiddleware;
use actix_web::cookie::{Key, SameSite};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::audit::AuditLog;
use crate::auth::csrf::{csrf_guard, MAX_FORM_BYTES};
use crate::auth::principal::Gatekeeper;
use crate::auth::session_store::DbSessionStore;
use crate::auth::throttle::Throttle;
use crate::auth::users::Users;
use crate::aws::cache::CachedDirectory;
use crate::aws::metered::{MeteredDirectory, MeteredLogs};
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::db::{Db, DbError};
use crate::decrypt::policy::ApprovalMode;
use crate::decrypt::Decryptor;
use crate::guard::Sensitive;
use crate::health::readiness::Readiness;
use crate::secrets::{Secrets, SecretsError};
use crate::sources::{ContactDirectory, LogStore, NotConfigured};
use crate::web::middleware::{error_pages, failure_page, request_id, security_headers};
use crate::web::{AppError, Route, Routes};

/// Every route of the console, capability by capability.
pub fn routes(routes: &mut Routes) {
    crate::health::configure(routes);
    crate::auth::configure(routes);
    crate::account::configure(routes);
    crate::admin::configure(routes);
    crate::contacts::configure(routes);
    crate::decrypt::configure(routes);
    crate::logs::configure(routes);
    crate::review::configure(routes);
    crate::sso::configure(routes);
    crate::web::assets::configure(routes);
}

/// The route table the router is built from (the route x role matrix test
/// walks it).
pub fn route_table() -> Vec<Route> {
    let mut table = Vec::new();
    let _ = App::new().configure(|cfg| routes(&mut Routes::new(cfg, &mut table)));
    table
}

/// Every service, built once. Handlers never see this: each capability gets
/// its own state with what it uses (`register`).
pub struct Services {
    pub settings: Settings,
    pub db: Db,
    pub users: Users,
    pub audit: AuditLog,
    pub throttle: Throttle,
    pub sessions: DbSessionStore,
    pub clock: SharedClock,
    pub directory: Arc<dyn ContactDirectory>,
    pub logs: Arc<dyn LogStore>,
    /// None when no keyring is configured: nothing can be decrypted.
    pub decryptor: Option<Decryptor>,
    /// Amazon Connect's keypad fields and the keys that open them, checked
    /// at start-up (a bad key file stops the console here).
    pub keypad: Option<Arc<crate::decrypt::KeypadPath>>,
    pub sensitive: Sensitive,
    pub totp: crate::auth::totp::TotpStore,
    pub budget: crate::decrypt::policy::Budget,
    pub approvals: crate::decrypt::approvals::Approvals,
    /// Audit shipping, when configured.
    pub shipper: Option<crate::audit::ship::Shipper>,
    /// The latest background readiness probe (`/readyz`).
    pub readiness: Readiness,
    /// Paging state behind the handles in page links (contacts, logs).
    pub paging: Arc<crate::sources::paging::PagingStore>,
    /// Single sign-on, when configured.
    pub sso: Option<Arc<crate::sso::SsoConsole>>,
}

mod register;
use register::register;

pub use crate::auth::session_store::SESSION_COOKIE;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("cannot listen on the configured address")]
    Bind(#[source] std::io::Error),
    #[error("audit shipping needs the AWS SDK configuration")]
    ShipWithoutAws,
    #[error("cannot set up decryption")]
    Crypto(#[from] lambda_encrypt::crypto::CryptoError),
    #[error(transparent)]
    Keypad(#[from] lambda_encrypt::keypad::KeypadConfigError),
    #[error("cannot set up the second-factor store")]
    Totp(#[from] crate::auth::totp::TotpError),
    #[error("AWS sources are configured but no AWS region is set (set AWS_REGION, or a profile with a region)")]
    NoRegion,
    #[error("cannot set up single sign-on")]
    Sso(#[from] crate::sso::SsoError),
}

/// The external services the console reads.
pub struct Sources {
    pub directory: Arc<dyn ContactDirectory>,
    pub logs: Arc<dyn LogStore>,
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    state: Arc<Services>,
}

impl Application {
    /// The console against AWS (Connect, CloudWatch Logs, KMS) as configured;
    /// AWS clients are built once here.
    pub async fn build(settings: Settings, clock: SharedClock) -> Result<Self, StartupError> {
        let needs_aws = settings.connect_instance_id.is_some()
            || settings.ship.is_some()
            || !settings.log_groups.is_empty()
            || settings.keyring.as_ref().is_some_and(|k| k.uses_kms());
        let sdk = if needs_aws {
            Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
        } else {
            None
        };
        // Without a region every AWS call fails: refuse to start instead.
        if sdk.as_ref().is_some_and(|c| c.region().is_none()) {
            return Err(StartupError::NoRegion);
        }
        let directory: Arc<dyn ContactDirectory> = match (&settings.connect_instance_id, &sdk) {
            (Some(instance), Some(sdk)) => Arc::new(MeteredDirectory(Arc::new(
                crate::aws::connect::AwsConnect::with_quota(sdk, instance, settings.aws.connect),
            ))),
            _ => Arc::new(NotConfigured),
        };
        let logs: Arc<dyn LogStore> = match &sdk {
            Some(sdk) if !settings.log_groups.is_empty() => Arc::new(MeteredLogs(Arc::new(
                crate::aws::logs::AwsLogs::with_quota(
                    sdk,
                    settings.log_groups.clone(),
                    settings.aws.logs,
                ),
            ))),
            _ => Arc::new(NotConfigured),
        };
        Self::build_with(settings, clock, Sources { directory, logs }, sdk.as_ref()).await
    }

    /// The console with the given sources (the offline demo, tests).
    pub async fn build_with(
        settings: Settings,
        clock: SharedClock,
        sources: Sources,
        sdk: Option<&aws_config::SdkConfig>,
    ) -> Result<Self, StartupError> {
        let db = Db::open(&settings.database_url).await?;
        let secrets = Secrets::load_or_create(&settings.secrets_dir)?;
        let mut audit = AuditLog::new(db.clone(), secrets.audit_key.clone(), clock.clone());
        let shipper = match (&settings.ship, sdk) {
            (Some(ship), Some(sdk)) => {
                audit = audit.with_outbox();
                Some(crate::audit::ship::Shipper::new(
                    audit.clone(),
                    clock.clone(),
                    sdk,
                    ship.clone(),
                ))
            }
            (Some(_), None) => return Err(StartupError::ShipWithoutAws),
            _ => None,
        };
        let decryptor = match &settings.keyring {
            Some(spec) => {
                let d = Decryptor::new(
                    lambda_encrypt::crypto::FieldCrypto::from_spec(spec, settings.suite, sdk)
                        .await?,
                );
                // A period keyring whose listing cannot be read fails here.
                d.refresh().await?;
                Some(d)
            }
            None => None,
        };
        let keypad = match &settings.connect_input {
            Some((fields, keys)) => {
                let (fields, keys) =
                    lambda_encrypt::keypad::KeypadKeys::from_config(fields, keys).await?;
                Some(Arc::new(crate::decrypt::KeypadPath { fields, keys }))
            }
            None => None,
        };
        let totp = crate::auth::totp::TotpStore::open(
            db.clone(),
            &secrets.totp_key,
            &secrets.audit_key,
            clock.clone(),
        )
        .await?;
        let kms = match (&settings.keyring, sdk) {
            (Some(lambda_encrypt::keyring::KeyringSpec::Kms { key_arns }), Some(sdk)) => {
                let mut conf = aws_sdk_kms::config::Builder::from(sdk);
                if let Some(arn) = key_arns.first() {
                    conf = conf.region(aws_sdk_kms::config::Region::new(arn.region().to_owned()));
                }
                Some(aws_sdk_kms::Client::from_conf(conf.build()))
            }
            _ => None,
        };
        let readiness = crate::health::readiness::Readiness::start(
            crate::health::readiness::Probes {
                db: db.clone(),
                database_url: settings.database_url.as_str().to_owned(),
                keyring: settings.keyring.clone(),
                kms,
                directory: Arc::clone(&sources.directory),
                logs: Arc::clone(&sources.logs),
            },
            settings.ready_interval,
        )
        .await;
        // Pages and reveals read contacts through the cache; readiness (above)
        // asks the service itself.
        let directory: Arc<dyn ContactDirectory> = Arc::new(CachedDirectory::new(
            sources.directory,
            settings.aws.cache,
            clock.clone(),
        ));
        let sso = match &settings.sso {
            Some(sso_settings) => {
                let flow = crate::sso::Sso::new(sso_settings.clone(), clock.clone())?;
                Some(Arc::new(crate::sso::SsoConsole::new(
                    flow,
                    crate::sso::store::SsoStore::new(db.clone(), clock.clone()),
                    Key::from(&secrets.session_key),
                    settings.cookie_secure,
                )))
            }
            None => None,
        };
        let state = Arc::new(Services {
            sso: sso.clone(),
            readiness,
            paging: Arc::new(crate::sources::paging::PagingStore::new(clock.clone())),
            directory,
            logs: sources.logs,
            decryptor,
            keypad,
            sensitive: Sensitive(settings.sensitive.clone()),
            users: Users::new(db.clone(), clock.clone()),
            totp,
            budget: crate::decrypt::policy::Budget::new(
                audit.clone(),
                clock.clone(),
                settings.policy.budget,
            ),
            approvals: crate::decrypt::approvals::Approvals::new(db.clone(), clock.clone()),
            shipper: shipper.clone(),
            audit,
            throttle: Throttle::new(db.clone(), clock.clone()),
            sessions: DbSessionStore::new(db.clone(), clock.clone()),
            db,
            clock,
            settings,
        });
        let listener = TcpListener::bind(state.settings.listen).map_err(StartupError::Bind)?;
        let port = listener.local_addr().map_err(StartupError::Bind)?.port();
        let key = Key::from(&secrets.session_key);
        let registry = Arc::new(register(&state));
        let store = state.sessions.clone();
        let secure = state.settings.cookie_secure;
        let idle = actix_web::cookie::time::Duration::seconds(
            i64::try_from(state.settings.idle_timeout.as_secs()).unwrap_or(i64::MAX),
        );
        let server = HttpServer::new(move || {
            let sessions = SessionMiddleware::builder(store.clone(), key.clone())
                .cookie_name(SESSION_COOKIE.to_owned())
                // ASVS 3.4.1-3.4.3: Secure, HttpOnly, SameSite=Strict.
                .cookie_secure(secure)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Strict)
                .cookie_content_security(CookieContentSecurity::Private)
                // ASVS 3.3.2: the idle timeout is enforced server-side and
                // extended by every request; the absolute one by the principal check.
                .session_lifecycle(
                    BrowserSession::default()
                        .state_ttl(idle)
                        .state_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                )
                .build();
            let registry = Arc::clone(&registry);
            App::new()
                .configure(move |cfg| {
                    for item in &registry.items {
                        item(cfg);
                    }
                })
                .app_data(
                    web::FormConfig::default()
                        .limit(MAX_FORM_BYTES)
                        .error_handler(|_, _| {
                            AppError::BadRequest("The form was incomplete or malformed.".into())
                                .into()
                        }),
                )
                .app_data(web::QueryConfig::default().error_handler(|_, _| {
                    AppError::BadRequest("The address has malformed parameters.".into()).into()
                }))
                .app_data(
                    web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()),
                )
                .configure(|cfg| routes(&mut Routes::new(cfg, &mut Vec::new())))
                // Signed-in people keep the navigation on a missing page too.
                .default_service(web::to(
                    |_: Option<crate::auth::principal::SignedIn>| async {
                        Err::<actix_web::HttpResponse, _>(AppError::NotFound)
                    },
                ))
                .wrap(from_fn(csrf_guard))
                .wrap(from_fn(error_pages))
                .wrap(sessions)
                .wrap(from_fn(failure_page))
                .wrap(from_fn(security_headers))
                .wrap(from_fn(request_id))
        })
        .listen(listener)
        .map_err(StartupError::Bind)?
        .shutdown_timeout(5)
        .run();

        if let Some(shipper) = shipper {
            shipper.spawn();
        }
        // Discovery now, so a misconfigured or unreachable provider shows in
        // the log at start-up; the console starts regardless (its sign-in
        // page says so when someone tries).
        if let Some(sso) = sso {
            tokio::spawn(async move {
                if let Err(e) = sso.flow.warm_up().await {
                    tracing::warn!(kind = e.kind(), error = %e, "the OpenID Provider is not usable yet");
                }
            });
        }
        // Summaries of anonymous refusals reach the log within an interval
        // even when no further refusal comes to write them.
        let tallies = state.audit.clone();
        tokio::spawn(async move {
            let period = u64::try_from(crate::audit::TALLY_INTERVAL_US / 1_000_000).unwrap_or(60);
            let mut tick = tokio::time::interval(Duration::from_secs(period));
            loop {
                tick.tick().await;
                if let Err(e) = tallies.flush_tallies().await {
                    tracing::warn!(error = %e, "writing refusal summaries failed");
                }
            }
        });
        let purger = state.sessions.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(300));
            loop {
                tick.tick().await;
                if let Err(e) = purger.purge_expired().await {
                    tracing::warn!(error = %e, "expired-session purge failed");
                }
            }
        });
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The services, for tests and the demo's first-run set-up.
    pub fn state(&self) -> Arc<Services> {
        Arc::clone(&self.state)
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
