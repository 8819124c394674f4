//! Liveness and readiness probes (no authentication, no audit).

use actix_web::HttpResponse;

use super::State;
use crate::readiness::ReadyState;

/// The process is up.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready to serve: the latest background probe of the database, the keyring
/// and every configured AWS source succeeded (`crate::readiness`). The body
/// names what failed. Never waits on a probe.
pub async fn readyz(state: State) -> HttpResponse {
    if state.db.pool.is_closed() {
        return HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("not ready\ndatabase: closed\n");
    }
    match state.readiness.state() {
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
pub async fn metrics(state: State, req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::http::header;
    if let Some(token) = &state.settings.metrics_token {
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
    let now = state.clock.now_us();
    let age = |us: i64| std::time::Duration::from_micros(u64::try_from(now - us).unwrap_or(0));
    let backlog = crate::audit::ship::backlog(&state.audit).await;
    let checkpoint: Result<(Option<i64>,), _> =
        sqlx::query_as("SELECT MAX(signed_us) FROM audit_checkpoints")
            .fetch_one(&state.db.pool)
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
