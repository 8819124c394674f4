//! Liveness, readiness and metrics (no authentication, no audit), and the
//! background readiness probe behind `/readyz`.

pub mod readiness;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::audit::AuditLog;
use crate::clock::SharedClock;
use crate::db::Db;
use crate::web::{Access, Routes};
use readiness::{Readiness, ReadyState};

pub fn configure(routes: &mut Routes) {
    routes
        .get("/healthz", Access::Public, healthz)
        .get("/readyz", Access::Public, readyz)
        .get("/metrics", Access::Public, metrics);
}

/// The `/metrics` bearer token: compared in constant time, never printed.
#[derive(Clone)]
pub struct MetricsToken(zeroize::Zeroizing<String>);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        Self(zeroize::Zeroizing::new(token.to_owned()))
    }

    /// Does this `Authorization` header value carry the token?
    pub fn accepts(&self, authorization: Option<&str>) -> bool {
        use subtle::ConstantTimeEq as _;
        let given = authorization
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        bool::from(given.as_bytes().ct_eq(self.0.as_bytes()))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(<redacted>)")
    }
}

/// Who may read `/metrics`: anyone, or holders of the token.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess(pub Option<MetricsToken>);

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready to serve: the latest background probe of the database, the keyring
/// and every configured AWS source succeeded (`readiness`). The body
/// names what failed. Never waits on a probe.
pub async fn readyz(db: web::Data<Db>, readiness: web::Data<Readiness>) -> HttpResponse {
    if db.pool.is_closed() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready\ndatabase: closed\n");
    }
    match readiness.state() {
        ReadyState::Ready => HttpResponse::Ok().content_type("text/plain").body("ready"),
        ReadyState::NotReady(reasons) => {
            let mut body = String::from("not ready\n");
            for r in reasons {
                body.push_str(&r);
                body.push('\n');
            }
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body(body)
        }
    }
}

/// Prometheus metrics (`crate::metrics`), behind `CALLVAULT_METRICS_TOKEN`
/// when it is set. Shipping gauges are read from the database here.
pub async fn metrics(
    access: web::Data<MetricsAccess>,
    clock: web::Data<SharedClock>,
    audit: web::Data<AuditLog>,
    db: web::Data<Db>,
    req: HttpRequest,
) -> HttpResponse {
    if let Some(token) = &access.0 {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !token.accepts(given) {
            return HttpResponse::Unauthorized()
                .insert_header((
                    header::WWW_AUTHENTICATE,
                    "Bearer realm=\"callvault metrics\"",
                ))
                .content_type("text/plain")
                .body("a bearer token is required");
        }
    }
    let now = clock.now_us();
    let age = |us: i64| std::time::Duration::from_micros(u64::try_from(now - us).unwrap_or(0));
    let backlog = crate::audit::ship::backlog(&audit).await;
    let checkpoint: Result<(Option<i64>,), _> =
        sqlx::query_as("SELECT MAX(signed_us) FROM audit_checkpoints")
            .fetch_one(&db.pool)
            .await;
    match (backlog, checkpoint) {
        (Ok((n, oldest)), Ok((signed,))) => {
            crate::metrics::set_shipping(n, oldest.map(age), signed.map(age))
        }
        _ => tracing::warn!("metrics: cannot read the audit outbox"),
    }
    match crate::metrics::render() {
        Ok(text) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text),
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot render");
            HttpResponse::InternalServerError()
                .content_type("text/plain")
                .body("metrics unavailable")
        }
    }
}
