//! The supervisor's contact pages: search, one contact, and the audited reveal.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use lambda_encrypt::context::{ContactId, FieldName};
use serde::Deserialize;

use super::{Channel, ContactSearch, ContactSummary};
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::{SignedIn, Supervisor};
use crate::auth::Role;
use crate::clock::format_us;
use crate::decrypt::handlers::RevealCtx;
use crate::decrypt::policy::ApprovalMode;
use crate::decrypt::Reason;
use crate::web::error::AppError;
use crate::web::middleware::request_meta;
use crate::web::templates::{
    html, AttributeView, ContactPage, ContactRow, ContactsPage, Layout, ShownValue,
};
use crate::web::{day_start_us, see_other, State};

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
        .map(day_start_us)
        .transpose()?
        .unwrap_or(now - DEFAULT_DAYS * DAY_US);
    let to_us = non_empty(&q.to)
        .map(|d| day_start_us(d).map(|t| t + DAY_US))
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
    for (raw_name, value) in &attributes {
        let sensitive = state.sensitive.contains(raw_name);
        // Names come from Connect too: they pass the leak guard like values.
        let shown_name = ShownValue::guard(raw_name, false);
        let name_findings = shown_name.findings;
        let name = &match shown_name.kind {
            "text" => shown_name.text,
            _ => "[ciphertext]".to_owned(),
        };
        if name_findings > 0 {
            leak_rows.push(
                AuditEvent::new(
                    Action::LeakFound,
                    &p.username,
                    p.role.as_str(),
                    "masked",
                    &meta,
                )
                .contact(id.as_str(), name)
                .detail(format!(
                    "contact attribute name: {name_findings} card-like number(s) masked"
                )),
            );
        }
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
            && name == raw_name
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
        approval_required: state.settings.policy.approval == ApprovalMode::Required,
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
    let id = contact_id(&id)?;
    let form = form.into_inner();
    let mut ctx = RevealCtx {
        state: &state,
        session: &session,
        principal: &p,
        meta: request_meta(&req),
        contact_id: id.clone(),
        field_text: crate::text::one_line(&form.field)
            .chars()
            .take(64)
            .collect(),
        reason_text: String::new(),
        detail: String::new(),
    };
    // Separation of duties: only supervisors reveal; everyone else is refused and recorded.
    if p.role != Role::Supervisor {
        ctx.reason_text = crate::text::one_line(&form.reason)
            .chars()
            .take(500)
            .collect();
        ctx.deny("role", String::new()).await?;
        return Err(AppError::Forbidden);
    }
    let Ok(field) = FieldName::parse(&form.field) else {
        ctx.deny("bad_field", String::new()).await?;
        return Err(AppError::BadRequest("That is not a field name.".into()));
    };
    let reason = match Reason::parse(&form.reason) {
        Ok(r) => r,
        Err(e) => {
            ctx.deny("no_reason", String::new()).await?;
            return Err(AppError::BadRequest(format!(
                "A reason is required to reveal a value ({e})."
            )));
        }
    };
    ctx.reason_text = reason.as_str().to_owned();
    if state.revealer.is_none() {
        ctx.deny("not_configured", String::new()).await?;
        return Err(AppError::DecryptUnavailable);
    }
    if state.settings.policy.approval == ApprovalMode::Required {
        return request_approval(ctx, field, reason).await;
    }
    let _permit = ctx.admit(&format!("/contacts/{}", id.as_str())).await?;
    ctx.reveal(field, reason).await
}

/// Dual control: the decrypt becomes a request for another supervisor.
async fn request_approval(
    ctx: RevealCtx<'_>,
    field: FieldName,
    reason: Reason,
) -> Result<HttpResponse, AppError> {
    let state = ctx.state;
    // Only fields the contact holds can be requested.
    ctx.stored_value(&field).await?;
    let p = ctx.principal;
    // The request and its audit row commit together, or neither does.
    let mut change = state.audit.begin_change().await?;
    let request = state
        .approvals
        .create(
            change.conn(),
            &p.username,
            ctx.contact_id.as_str(),
            field.as_str(),
            reason.as_str(),
            state.settings.policy.approval_expiry,
        )
        .await
        .map_err(|e| match e {
            crate::decrypt::approvals::ApprovalError::Db(db) => AppError::Db(db),
            other => AppError::Internal(other.to_string()),
        })?;
    let event = AuditEvent::new(
        Action::DecryptRequest,
        &p.username,
        p.role.as_str(),
        "pending",
        &ctx.meta,
    )
    .contact(ctx.contact_id.as_str(), field.as_str())
    .reason(reason.as_str())
    .detail(format!(
        "request {} expires {}",
        request.id,
        format_us(request.expires_us)
    ));
    change.commit(event).await?;
    Ok(see_other("/approvals?m=requested"))
}
