//! The supervisor's contact pages: search, one contact, and the audited reveal.

use actix_session::Session;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{NaiveDate, TimeZone as _, Utc};
use lambda_encrypt::context::{ContactId, FieldName};
use serde::Deserialize;

use super::{Channel, ContactSearch, ContactSummary};
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::{SignedIn, Supervisor};
use crate::auth::Role;
use crate::clock::format_us;
use crate::decrypt::{Reason, RevealError, RevealRequest};
use crate::web::error::AppError;
use crate::web::middleware::request_meta;
use crate::web::templates::{
    html, AttributeView, ContactPage, ContactRow, ContactsPage, Layout, RevealPage, ShownValue,
};
use crate::web::State;

const DEFAULT_DAYS: i64 = 7;
const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Default, Deserialize)]
pub struct ContactsQuery {
    contact_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
    next: Option<String>,
}

fn day_start(s: &str) -> Result<i64, AppError> {
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| AppError::BadRequest("Dates are YYYY-MM-DD.".into()))?;
    let t = d
        .and_hms_opt(0, 0, 0)
        .ok_or_else(|| AppError::BadRequest("Dates are YYYY-MM-DD.".into()))?;
    Ok(Utc.from_utc_datetime(&t).timestamp_micros())
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Parses a contact id from a path or form, or answers 404 (hostile values included).
pub fn contact_id(raw: &str) -> Result<ContactId, AppError> {
    ContactId::parse(raw).map_err(|_| AppError::NotFound)
}

fn row(c: ContactSummary) -> ContactRow {
    ContactRow {
        id: c.id.to_string(),
        channel: c.channel,
        initiation_method: c.initiation_method,
        initiated: c.initiated_us.map(format_us).unwrap_or_default(),
        disconnected: c.disconnected_us.map(format_us).unwrap_or_default(),
    }
}

pub async fn contacts_page(
    state: State,
    sup: Supervisor,
    session: Session,
    q: web::Query<ContactsQuery>,
) -> Result<HttpResponse, AppError> {
    let q = q.into_inner();
    let now = state.clock.now_us();
    let contact = non_empty(&q.contact_id)
        .map(|c| {
            ContactId::parse(c)
                .map_err(|_| AppError::BadRequest("That is not a contact id.".into()))
        })
        .transpose()?;
    let from_us = non_empty(&q.from)
        .map(day_start)
        .transpose()?
        .unwrap_or(now - DEFAULT_DAYS * DAY_US);
    let to_us = non_empty(&q.to)
        .map(|d| day_start(d).map(|t| t + DAY_US))
        .transpose()?
        .unwrap_or(now + DAY_US);
    if to_us <= from_us || to_us - from_us > 92 * DAY_US {
        return Err(AppError::BadRequest(
            "The time range must be forward and at most 92 days.".into(),
        ));
    }
    let channel = non_empty(&q.channel)
        .map(|c| Channel::parse(c).ok_or_else(|| AppError::BadRequest("Unknown channel.".into())))
        .transpose()?;
    let next_token = non_empty(&q.next).map(str::to_owned);
    let search = ContactSearch {
        contact_id: contact,
        from_us,
        to_us,
        channel,
        next_token,
    };
    let page = state.directory.search(&search).await?;
    let filter_query = serde_urlencoded::to_string(
        [
            ("contact_id", non_empty(&q.contact_id)),
            ("from", non_empty(&q.from)),
            ("to", non_empty(&q.to)),
            ("channel", non_empty(&q.channel)),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    html(&ContactsPage {
        layout: Layout::signed_in("Contacts", sup.principal(), csrf::token(&session)?),
        rows: page.items.into_iter().map(row).collect(),
        f_contact: q.contact_id.clone().unwrap_or_default(),
        f_from: q
            .from
            .clone()
            .unwrap_or_else(|| format_us(from_us).chars().take(10).collect()),
        f_to: q
            .to
            .clone()
            .unwrap_or_else(|| format_us(to_us - DAY_US).chars().take(10).collect()),
        f_channel: q.channel.clone().unwrap_or_default(),
        channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
        next: page.next_token,
        filter_query,
    })
}

pub async fn contact_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let id = contact_id(&id)?;
    let p = sup.principal();
    let meta = request_meta(&req);
    let loaded = async {
        let summary = state.directory.describe(&id).await?;
        let initial = summary
            .initial_contact_id
            .clone()
            .unwrap_or_else(|| summary.id.clone());
        let attributes = state.directory.attributes(&initial).await?;
        Ok::<_, crate::sources::SourceError>((summary, attributes))
    }
    .await;
    let (summary, attributes) = match loaded {
        Ok(v) => v,
        Err(e) => {
            let event = AuditEvent::new(
                Action::ContactView,
                &p.username,
                p.role.as_str(),
                &format!("error:{}", e.kind()),
                &meta,
            )
            .contact(id.as_str(), "");
            state.audit.append(event).await?;
            return Err(e.into());
        }
    };
    let mut views = Vec::new();
    let mut leak_rows = Vec::new();
    for (name, value) in &attributes {
        let sensitive = state.sensitive.contains(name);
        let shown = ShownValue::guard(value, sensitive);
        if shown.findings > 0 {
            let what = if shown.kind == "masked" {
                "sensitive attribute does not hold ciphertext".to_owned()
            } else {
                format!("{} card-like number(s) masked", shown.findings)
            };
            leak_rows.push(
                AuditEvent::new(
                    Action::LeakFound,
                    &p.username,
                    p.role.as_str(),
                    "masked",
                    &meta,
                )
                .contact(id.as_str(), name)
                .detail(format!("contact attribute: {what}")),
            );
        }
        let decryptable = shown.kind == "ciphertext"
            && state.revealer.is_some()
            && FieldName::parse(name).is_ok();
        views.push(AttributeView {
            name: name.clone(),
            value: shown,
            decryptable,
        });
    }
    let findings = leak_rows.len();
    let mut rows = vec![AuditEvent::new(
        Action::ContactView,
        &p.username,
        p.role.as_str(),
        "ok",
        &meta,
    )
    .contact(id.as_str(), "")];
    rows.extend(leak_rows);
    state.audit.append_many(rows).await?;
    html(&ContactPage {
        layout: Layout::signed_in("Contact", p, csrf::token(&session)?),
        contact: row(summary.clone()),
        initial_contact_id: summary
            .initial_contact_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
        attributes: views,
        findings,
        can_decrypt: state.revealer.is_some(),
    })
}

#[derive(Deserialize)]
pub struct DecryptForm {
    field: String,
    reason: String,
}

pub async fn decrypt(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
    form: web::Form<DecryptForm>,
) -> Result<HttpResponse, AppError> {
    let p = user.principal().clone();
    let meta = request_meta(&req);
    let id = contact_id(&id)?;
    let form = form.into_inner();
    let field_text: String = form.field.chars().take(64).collect();
    let deny = |outcome: &str, reason: &str| {
        AuditEvent::new(
            Action::DecryptDenied,
            &p.username,
            p.role.as_str(),
            outcome,
            &meta,
        )
        .contact(id.as_str(), &field_text)
        .reason(reason)
    };
    // Separation of duties: only supervisors reveal; everyone else is refused and recorded.
    if p.role != Role::Supervisor {
        state
            .audit
            .append(deny(
                "role",
                &form.reason.chars().take(500).collect::<String>(),
            ))
            .await?;
        return Err(AppError::Forbidden);
    }
    let Ok(field) = FieldName::parse(&form.field) else {
        state.audit.append(deny("bad_field", "")).await?;
        return Err(AppError::BadRequest("That is not a field name.".into()));
    };
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            state.audit.append(deny("no_reason", "")).await?;
            return Err(AppError::BadRequest(format!(
                "A reason is required to reveal a value ({e})."
            )));
        }
    };
    let Some(revealer) = state.revealer.clone() else {
        state
            .audit
            .append(deny("not_configured", reason.as_str()))
            .await?;
        return Err(AppError::DecryptUnavailable);
    };
    let summary = match state.directory.describe(&id).await {
        Ok(s) => s,
        Err(e) => {
            state
                .audit
                .append(deny(&format!("error:{}", e.kind()), reason.as_str()))
                .await?;
            return Err(e.into());
        }
    };
    let initial = summary
        .initial_contact_id
        .clone()
        .unwrap_or_else(|| summary.id.clone());
    let stored = match state.directory.attributes(&initial).await {
        Ok(mut attrs) => attrs.remove(field.as_str()),
        Err(e) => {
            state
                .audit
                .append(deny(&format!("error:{}", e.kind()), reason.as_str()))
                .await?;
            return Err(e.into());
        }
    };
    let Some(stored_value) = stored else {
        state
            .audit
            .append(deny("no_such_field", reason.as_str()))
            .await?;
        return Err(AppError::NotFound);
    };
    let request = RevealRequest {
        actor: p.username.clone(),
        role: p.role.as_str().to_owned(),
        contact_id: id.clone(),
        initial_contact_id: (initial != id).then_some(initial),
        field: field.clone(),
        stored_value,
        reason,
        meta: meta.clone(),
    };
    match revealer.reveal(request).await {
        Ok(revealed) => {
            let page = RevealPage {
                layout: Layout::signed_in("Revealed value", &p, csrf::token(&session)?),
                contact_id: id.to_string(),
                field: field.to_string(),
                value: revealed
                    .plaintext
                    .expose_str()
                    .unwrap_or("(not text)")
                    .to_owned(),
                legacy: revealed.legacy,
                audit_seq: revealed.audit_seq,
                request_id: meta.request_id,
            };
            let mut res = html(&page)?;
            // ASVS 8.2.1 / 8.1.1: never cached, never stored in history.
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                header::HeaderValue::from_static("no-store, max-age=0"),
            );
            res.headers_mut()
                .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
            Ok(res)
        }
        Err(RevealError::Audit(e)) => Err(AppError::Audit(e)),
        Err(RevealError::Denied { kind }) => {
            let mut res = AppError::BadRequest(format!(
                "This ciphertext is not bound to this contact and field ({kind}). Nothing was decrypted; the attempt was recorded."
            ))
            .error_response_owned();
            *res.status_mut() = StatusCode::FORBIDDEN;
            Ok(res)
        }
        Err(RevealError::Failed { kind }) => {
            let mut res = AppError::BadRequest(format!(
                "The value could not be decrypted ({kind}). Nothing was revealed; the attempt was recorded."
            ))
            .error_response_owned();
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(res)
        }
    }
}
