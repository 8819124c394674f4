//! Request ids, request logging and security headers, in one place.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _};

/// The request's id, in its extensions (the one place it is kept).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The id of `req` ("-" before `request_id` gave it one).
pub fn request_id_of(req: &actix_web::HttpRequest) -> String {
    req.extensions()
        .get::<RequestId>()
        .map_or_else(|| "-".to_owned(), |r| r.0.clone())
}

/// Where a request came from; copied into every audit row it causes.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub client_addr: String,
    pub user_agent: String,
    pub request_id: String,
}

/// Gives every request an id (response header `X-Request-Id`, every log line,
/// every audit row, every error page) and logs one line per request. Paths
/// are logged without their query string.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.path().chars().take(200).collect::<String>();
    let result = next.call(req).await;
    let status = match &result {
        Ok(r) => r.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    let route = result
        .as_ref()
        .ok()
        .and_then(|r| r.request().match_pattern());
    crate::metrics::http_request(route.as_deref(), &method, status, started.elapsed());
    tracing::info!(
        request_id = id.as_str(),
        method = method.as_str(),
        path = path.as_str(),
        status,
        duration_us = started.elapsed().as_micros() as u64,
        "request"
    );
    let mut res = result?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), v);
    }
    Ok(res)
}

/// Security headers on every response.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let https = req.connection_info().scheme() == "https";
    let mut res = next.call(req).await?;
    insert_security_headers(res.headers_mut(), https);
    Ok(res)
}

/// The security headers, into `h`. Also used by the console's error page
/// itself: the failure page is rendered after every middleware (from an
/// error that left them), so it would otherwise carry none. HSTS only when
/// the request is known to have come over TLS.
pub fn insert_security_headers(h: &mut header::HeaderMap, https: bool) {
    // ASVS 14.4.3 / 50.2: a CSP with no inline script, no framing, no plugins.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    // ASVS 14.4.4: no MIME sniffing.
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // ASVS 14.4.6: no referrer leaves the console (contact ids are in paths).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // ASVS 14.4.7: framing refused for old browsers too.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    // ASVS 8.1.1: pages are not cached (static assets may be).
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    // ASVS 9.1.1 / 14.4.5: HSTS when served over TLS.
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}

/// The client's address: the peer's, or what a trusted proxy says it is
/// (`web::client_addr`). Throttling and the audit log both use this one.
pub fn client_addr(req: &actix_web::HttpRequest) -> String {
    let Some(peer) = req.peer_addr().map(|a| a.ip()) else {
        return String::new();
    };
    match req.app_data::<actix_web::web::Data<super::client_addr::TrustedProxies>>() {
        Some(proxies) => proxies.client(peer, req.headers()).to_string(),
        None => peer.to_canonical().to_string(),
    }
}

/// Client address, user agent and request id of a request, for audit rows.
pub fn request_meta(req: &actix_web::HttpRequest) -> RequestMeta {
    RequestMeta {
        client_addr: client_addr(req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .chars()
            .take(256)
            .collect(),
        request_id: request_id_of(req),
    }
}

/// A failure below the console's handlers (the session store's database gone
/// or its connection cut) makes actix-session answer with a bare, empty 500.
/// Fail closed with the console's own error page and request id instead;
/// errors that are already the console's own pass through unchanged. (The
/// page is rendered after every middleware; `AppError`'s page inserts the
/// security headers itself.)
pub async fn failure_page(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = request_id_of(req.request());
    match next.call(req).await {
        Err(e) if e.as_error::<super::error::AppError>().is_none() => {
            let failed = super::error::AppError::Internal(format!("before the handler: {e}"));
            let page = failed.page(None, &request_id);
            Err(actix_web::error::InternalError::from_response(failed, page).into())
        }
        other => other,
    }
}

/// Error pages made with the request at hand: the navigation of whoever it
/// was signed in as (the sign-in check put it in the request's extensions)
/// and the request's id. Redirects and pages that are not errors pass.
pub async fn error_pages(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, Error> {
    let res = next.call(req).await?;
    let again = res
        .response()
        .error()
        .and_then(|e| e.as_error::<super::error::AppError>())
        .filter(|e| !actix_web::ResponseError::status_code(*e).is_redirection())
        .map(|e| {
            let nav = res
                .request()
                .extensions()
                .get::<super::layout::SignedInNav>()
                .cloned();
            e.page(nav.as_ref(), &request_id_of(res.request()))
        });
    Ok(match again {
        Some(page) => res.into_response(page),
        None => res.map_into_boxed_body(),
    })
}
