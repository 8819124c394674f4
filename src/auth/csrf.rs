//! CSRF protection: a synchronizer token bound to the session, required on
//! every POST (OWASP ASVS 4.2.2 / 50.4), checked in one middleware before any
//! handler runs. Refusals are audited: individually for signed-in users,
//! counted per address and interval for anonymous clients.

use actix_session::{Session, SessionExt as _};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage as _, ResponseError as _};
use base64::Engine as _;
use futures_util::StreamExt as _;
use rand::TryRngCore as _;
use subtle::ConstantTimeEq as _;

use super::principal::{current_principal, Gatekeeper};
use crate::audit::{Action, AuditEvent};
use crate::web::{request_meta, AppError};

pub const CSRF_SESSION_KEY: &str = "csrf";
pub const CSRF_FIELD: &str = "csrf_token";
/// Largest form body accepted.
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// The session's token, created on first use.
pub fn token(session: &Session) -> Result<String, AppError> {
    if let Ok(Some(t)) = session.get::<String>(CSRF_SESSION_KEY) {
        return Ok(t);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| AppError::Internal(format!("random: {e}")))?;
    let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    session
        .insert(CSRF_SESSION_KEY, &t)
        .map_err(|e| AppError::Internal(format!("session: {e}")))?;
    Ok(t)
}

fn form_token(body: &[u8]) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v)
}

pub async fn csrf_guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if req.method() != Method::POST {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Ok(req.into_response(AppError::TooLarge.error_response()));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let expected = req
        .get_session()
        .get::<String>(CSRF_SESSION_KEY)
        .ok()
        .flatten();
    let given = form_token(&body);
    let ok = matches!((&expected, &given), (Some(e), Some(g)) if bool::from(e.as_bytes().ct_eq(g.as_bytes())));
    if !ok {
        let gate = req.app_data::<web::Data<Gatekeeper>>().cloned();
        let (http_req, _) = req.parts();
        let meta = request_meta(http_req);
        if let Some(gate) = gate {
            let principal = current_principal(&http_req.get_session(), &gate)
                .await
                .ok()
                .flatten();
            let detail = format!(
                "POST {}",
                http_req.path().chars().take(200).collect::<String>()
            );
            // A signed-in user's refusal is a row of its own; an anonymous
            // client's is counted into one summary row per address and
            // interval, so that a flood cannot grow the log without bound.
            let result = match principal {
                Some(p) => {
                    let event = AuditEvent::new(
                        Action::CsrfRejected,
                        &p.username,
                        p.role.as_str(),
                        "refused",
                        &meta,
                    )
                    .detail(detail);
                    gate.audit.append(event).await.map(|_| ())
                }
                None => {
                    let event =
                        AuditEvent::new(Action::CsrfRejected, "anonymous", "", "refused", &meta)
                            .detail(detail);
                    gate.audit.tally_anonymous(&event).await
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "cannot audit a CSRF refusal");
            }
        }
        return Ok(req.into_response(AppError::Csrf.error_response()));
    }
    req.set_payload(Payload::from(body));
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}
