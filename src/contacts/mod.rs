//! The supervisor's contact pages: search, and one contact with its
//! attributes as the leak guard shows them (the reveal is `decrypt`'s).

use std::sync::Arc;

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::{ContactId, FieldName};
use serde::Deserialize;

use crate::audit::{Action, AuditEvent, AuditLog};
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::auth::Role;
use crate::clock::{format_us, SharedClock};
use crate::decrypt::reveal::contact_id;
use crate::guard::{Sensitive, ShownValue};
use crate::sources::{Channel, ContactDirectory, ContactSearch, ContactSummary};
use crate::web::{day_start_us, html, non_empty, request_meta, AppError, Layout, Routes, DAY_US};

const DEFAULT_DAYS: i64 = 7;

/// What the contact pages use; registered once as app data.
pub struct ContactsState {
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub directory: Arc<dyn ContactDirectory>,
    pub sensitive: Sensitive,
    /// A keyring is configured: fields can be revealed.
    pub can_decrypt: bool,
    /// Reveals need another supervisor's approval first.
    pub approval_required: bool,
}

type State = web::Data<ContactsState>;

pub fn configure(routes: &mut Routes) {
    let supervisor = Role::Supervisor.access();
    routes.get("/contacts", supervisor, contacts_page).get(
        "/contacts/{id}",
        supervisor,
        contact_page,
    );
}

pub struct ContactRow {
    pub id: String,
    pub channel: String,
    pub initiation_method: String,
    pub initiated: String,
    pub disconnected: String,
}

#[derive(Template)]
#[template(path = "contacts/contacts.html")]
pub struct ContactsPage {
    pub layout: Layout,
    pub rows: Vec<ContactRow>,
    pub f_contact: String,
    pub f_from: String,
    pub f_to: String,
    pub f_channel: String,
    pub channels: Vec<&'static str>,
    pub next: Option<String>,
    pub filter_query: String,
}

pub struct AttributeView {
    pub name: String,
    pub value: ShownValue,
    pub decryptable: bool,
}

#[derive(Template)]
#[template(path = "contacts/contact.html")]
pub struct ContactPage {
    pub layout: Layout,
    pub contact: ContactRow,
    pub initial_contact_id: String,
    pub attributes: Vec<AttributeView>,
    pub findings: usize,
    pub can_decrypt: bool,
    pub approval_required: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct ContactsQuery {
    contact_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    channel: Option<String>,
    next: Option<String>,
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
            && state.can_decrypt
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
        can_decrypt: state.can_decrypt,
        approval_required: state.approval_required,
    })
}
