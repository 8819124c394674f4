//! The supervisor's contact pages: search (`search`), and one contact with
//! what DescribeContact says and its attributes as the leak guard shows them
//! (the reveal is `decrypt`'s).

pub mod criteria;
pub mod search;

use std::sync::Arc;

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::FieldName;

use crate::audit::{Action, AuditEvent, AuditLog};
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::auth::Role;
use chrono_tz::Tz;

use crate::auth::principal::Principal;
use crate::clock::{local_time, SharedClock};
use crate::decrypt::RevealState;
use crate::decrypt::{contact_id, form_view, FixableForm, RevealFormView};
use crate::guard::{Sensitive, ShownValue};
use crate::sources::contacts::DirectoryNames;
use crate::sources::paging::PagingStore;
use crate::sources::{ContactDirectory, ContactSummary};
use crate::web::{html, request_meta, AppError, Layout, Routes};
use futures_util::future::LocalBoxFuture;
use lambda_encrypt::context::ContactId;
use lambda_encrypt::keypad::CONNECT_TIMEOUT_VALUE;

/// What the contact pages use; registered once as app data.
pub struct ContactsState {
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub directory: Arc<dyn ContactDirectory>,
    pub sensitive: Sensitive,
    /// A keyring or Connect keypad keys are configured: fields can be revealed.
    pub can_decrypt: bool,
    /// Reveals need another supervisor's approval first.
    pub approval_required: bool,
    /// Paging state behind the handles in page links.
    pub paging: Arc<PagingStore>,
    /// Attribute keys searchable in Connect (CALLVAULT_SEARCHABLE_ATTRIBUTES).
    pub searchable: Vec<String>,
    /// The instance's access URL, for links to a contact (CALLVAULT_CONNECT_ACCESS_URL).
    pub connect_access_url: Option<String>,
    /// Each user's time zone (times are shown in it, dates read in it).
    pub users: crate::auth::users::Users,
}

type State = web::Data<ContactsState>;

pub fn configure(routes: &mut Routes) {
    let supervisor = Role::Supervisor.access();
    routes
        .get("/contacts", supervisor, search::contacts_page)
        .get("/contacts/{id}", supervisor, contact_page);
}

pub struct ContactRow {
    pub id: String,
    pub channel: String,
    pub initiation_method: String,
    pub initiated: String,
    pub disconnected: String,
    pub duration: String,
    pub agent: String,
    pub queue: String,
    /// The customer's endpoint, its last four only ("-" when the search
    /// does not report it).
    pub customer: String,
}

/// What DescribeContact says about a contact, as shown.
pub struct ContactDetails {
    pub agent: String,
    pub queue: String,
    pub customer: String,
    pub duration: String,
    pub disconnect_reason: String,
    pub connect_link: Option<String>,
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
    /// The reader's time zone, named beside the times.
    pub zone: String,
    pub contact: ContactRow,
    pub details: ContactDetails,
    pub initial_contact_id: String,
    pub attributes: Vec<AttributeView>,
    pub findings: usize,
    pub can_decrypt: bool,
    pub approval_required: bool,
    /// The reveal forms' budget, case reference and kept reason.
    pub reveal: Option<RevealFormView>,
    /// The budget is used: when the next reveal is possible, in the
    /// reader's time zone.
    pub next_reveal: Option<String>,
    /// The revealed value's page closed itself and came back here.
    pub hidden_notice: bool,
    /// "2026-01-07": the contact is past retention since then, and none of
    /// its values is offered for reveal.
    pub past_retention: Option<String>,
}

/// One path segment or query value, percent-encoded.
pub(crate) fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].to_owned())
        .unwrap_or_default()
}

/// Connect's own text as shown: through the leak guard, "-" when absent.
fn shown(v: Option<&str>) -> String {
    v.map(|v| ShownValue::guard(v, false).text)
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "-".to_owned())
}

fn duration(c: &ContactSummary) -> String {
    match (c.initiated_us, c.disconnected_us) {
        (Some(a), Some(b)) if b >= a => {
            let secs = (b - a) / 1_000_000;
            format!("{}:{:02}", secs / 60, secs % 60)
        }
        (Some(_), None) => "in progress".to_owned(),
        _ => "-".to_owned(),
    }
}

/// A contact as a row, its times in `zone`.
/// The instance's agent and queue names; without them (a directory that
/// cannot list them, or a failed call) pages show ids, as before.
pub(crate) async fn names(state: &ContactsState) -> Arc<DirectoryNames> {
    match state.directory.names().await {
        Ok(names) => names,
        Err(e) => {
            tracing::warn!(error_kind = e.kind(), "agent and queue names unavailable");
            Arc::default()
        }
    }
}

/// An agent or queue to choose by name (the search still sends its id).
pub struct NameOption {
    pub id: String,
    pub name: String,
}

/// Agents and queues sorted by name, for the search form's lists.
pub(crate) fn options(names: &std::collections::BTreeMap<String, String>) -> Vec<NameOption> {
    let mut out: Vec<NameOption> = names
        .iter()
        .map(|(id, name)| NameOption {
            id: id.clone(),
            name: ShownValue::guard(name, false).text,
        })
        .collect();
    out.sort_by_key(|o| o.name.to_lowercase());
    out
}

pub(crate) fn row(c: ContactSummary, zone: Tz, names: &DirectoryNames) -> ContactRow {
    ContactRow {
        duration: duration(&c),
        agent: shown(c.agent_id.as_deref().map(|a| names.agent(a))),
        queue: shown(c.queue_id.as_deref().map(|q| names.queue(q))),
        customer: c
            .customer_endpoint
            .as_ref()
            .map(|e| e.masked())
            .unwrap_or_else(|| "-".to_owned()),
        id: c.id.to_string(),
        channel: c.channel,
        initiation_method: c.initiation_method,
        initiated: c
            .initiated_us
            .map(|t| local_time(t, zone))
            .unwrap_or_default(),
        disconnected: c
            .disconnected_us
            .map(|t| local_time(t, zone))
            .unwrap_or_default(),
    }
}

/// What the contact page shows of DescribeContact (Connect's own values
/// pass the leak guard like attributes do).
fn details(state: &State, c: &ContactSummary, names: &DirectoryNames) -> ContactDetails {
    let duration = duration(c);
    ContactDetails {
        agent: shown(c.agent_id.as_deref().map(|a| names.agent(a))),
        queue: shown(c.queue_id.as_deref().map(|q| names.queue(q))),
        customer: c
            .customer_endpoint
            .as_ref()
            .map(|e| e.masked())
            .unwrap_or_else(|| "-".to_owned()),
        duration,
        disconnect_reason: shown(c.disconnect_reason.as_deref()),
        connect_link: state.connect_access_url.as_ref().map(|base| {
            format!(
                "{base}/contact-trace-records/details/{}?tz=UTC",
                c.id.as_str()
            )
        }),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub struct ContactQuery {
    /// `value_hidden`: a revealed value's page closed itself.
    m: Option<String>,
}

pub async fn contact_page(
    state: State,
    reveal_state: web::Data<RevealState>,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    id: web::Path<String>,
    query: web::Query<ContactQuery>,
) -> Result<HttpResponse, AppError> {
    let id = contact_id(&id)?;
    let shown = Shown {
        hidden_notice: query.m.as_deref() == Some("value_hidden"),
        fixable: None,
    };
    render(
        &state,
        &reveal_state,
        sup.principal(),
        &session,
        &req,
        id,
        shown,
    )
    .await
}

/// The contact's page again, with a reveal form refused for something the
/// person can fix (`decrypt::FormPage`, handed to `decrypt` by `startup`).
pub fn form_page(
    req: HttpRequest,
    session: Session,
    p: Principal,
    id: ContactId,
    fixable: FixableForm,
) -> LocalBoxFuture<'static, Result<HttpResponse, AppError>> {
    Box::pin(async move {
        let (Some(state), Some(reveal_state)) = (
            req.app_data::<State>().cloned(),
            req.app_data::<web::Data<RevealState>>().cloned(),
        ) else {
            return Err(AppError::Internal(
                "the contact pages are not set up".into(),
            ));
        };
        let shown = Shown {
            hidden_notice: false,
            fixable: Some(fixable),
        };
        render(&state, &reveal_state, &p, &session, &req, id, shown).await
    })
}

/// What the page shows besides the contact.
struct Shown {
    hidden_notice: bool,
    fixable: Option<FixableForm>,
}

async fn render(
    state: &State,
    reveal_state: &RevealState,
    p: &Principal,
    session: &Session,
    req: &HttpRequest,
    id: ContactId,
    shown_too: Shown,
) -> Result<HttpResponse, AppError> {
    let meta = request_meta(req);
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
    let zone = state.users.time_zone(p.user_id).await?;
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
    let past_retention = match (reveal_state.reveals.retention, summary.initiated_us) {
        (Some(days), Some(started)) => {
            crate::keys::past_retention(started, state.clock.now_us(), days)
        }
        _ => None,
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
        let path = FieldName::parse(name).ok().map(|f| {
            let keypad = reveal_state.reveals.keypad.as_ref();
            keypad.is_some_and(|k| k.validator(&f).is_some())
        });
        let shown = if path == Some(true) && value.trim() == CONNECT_TIMEOUT_VALUE {
            ShownValue::nothing_keyed()
        } else {
            ShownValue::guard(value, sensitive)
        };
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
        // Each path reveals with its own keys: a keypad field with the
        // Connect keys, any other with the keyring.
        let keys_held = match path {
            Some(true) => true,
            Some(false) => reveal_state.reveals.decryptor.is_some(),
            None => false,
        };
        // A message of the other capture path is not offered either.
        let same_path = shown.summary.as_ref().map(|s| s.keypad) == path;
        let decryptable = shown.kind == "ciphertext"
            && keys_held
            && same_path
            && past_retention.is_none()
            && name == raw_name;
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
    let names = names(state).await;
    let path = format!("/contacts/{}", id.as_str());
    let reveal = if state.can_decrypt {
        Some(form_view(reveal_state, session, p, &path, shown_too.fixable).await?)
    } else {
        None
    };
    let next_reveal = reveal
        .as_ref()
        .and_then(|f| f.next_reveal_us)
        .map(|at| local_time(at, zone));
    html(&ContactPage {
        next_reveal,
        layout: Layout::signed_in("Contact", p, csrf::token(session)?),
        zone: zone.name().to_owned(),
        details: details(state, &summary, &names),
        contact: row(summary.clone(), zone, &names),
        initial_contact_id: summary
            .initial_contact_id
            .map(|c| c.to_string())
            .unwrap_or_default(),
        attributes: views,
        findings,
        can_decrypt: state.can_decrypt,
        approval_required: state.approval_required,
        reveal,
        hidden_notice: shown_too.hidden_notice,
        past_retention: past_retention.map(|since| local_time(since, zone)),
    })
}
