//! `POST /reveals/{grant}/extend`: "keep it open" on a shown value's page.
//! The value is not shown again (the grant was used up when the page was
//! made, and its ciphertext is gone): this records the extension, row and
//! count in one transaction, and answers the page's new deadline, which its
//! script counts down. Without scripts the page closes as it always did.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::grants::{ExtendError, MAX_EXTENSIONS};
use super::RevealState;
use crate::audit::{Action, AuditEvent};
use crate::auth::principal::Supervisor;
use crate::clock::format_us;
use crate::web::{request_meta, AppError};

impl From<ExtendError> for AppError {
    fn from(e: ExtendError) -> Self {
        match e {
            ExtendError::NotFound => AppError::NotFound,
            ExtendError::Closed => AppError::refused(
                StatusCode::GONE,
                "Already closed",
                "The value's page has closed; it cannot be kept open any more. Reveal it again from the contact's page if you still need it (that is recorded again).",
            ),
            ExtendError::Limit => AppError::refused(
                StatusCode::CONFLICT,
                "Kept open as long as it may be",
                format!("A value's page is kept open at most {MAX_EXTENSIONS} more times. Reveal it again from the contact's page if you still need it (that is recorded again)."),
            ),
            ExtendError::Db(e) => AppError::Db(e),
        }
    }
}

/// What the page's script is told: the seconds left and how many more
/// times it may be kept open.
#[derive(serde::Serialize)]
struct Extended {
    seconds: i64,
    left: i64,
}

pub async fn extend(
    state: web::Data<RevealState>,
    sup: Supervisor,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let reveals = &state.reveals;
    let show_for_us = i64::try_from(reveals.policy.show_for.as_micros()).unwrap_or(i64::MAX);
    let mut change = reveals.audit.begin_change().await?;
    let (grant, n) = reveals
        .grants
        .extend(change.conn(), &id, p.user_id, &p.generation, show_for_us)
        .await?;
    let until = grant
        .used_us
        .saturating_add(show_for_us.saturating_mul(n + 1));
    let event = AuditEvent::new(
        Action::RevealExtend,
        &grant.actor,
        &grant.role,
        "ok",
        &request_meta(&req),
    )
    .contact(&grant.contact_id, &grant.field)
    .reason(&grant.reason)
    .case_ref(&grant.case_ref)
    .initial_contact(&grant.initial_contact_id)
    .detail(format!(
        "grant {} (shown under audit row {}): kept open until {}, {n} of {MAX_EXTENSIONS}",
        grant.id,
        grant.audit_seq,
        format_us(until)
    ));
    change.commit(event).await?;
    let left_us = until - reveals.clock.now_us();
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(Extended {
            seconds: (left_us / 1_000_000).max(0),
            left: MAX_EXTENSIONS - n,
        }))
}
