//! The flow logs of one contact: looked up inside the contact's own time
//! window, a page budget at a time; when the budget is spent the page says
//! "more may exist" and links to where the lookup stopped (kept on the
//! server); repeated deliveries are shown once.

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use lambda_encrypt::context::ContactId;
use serde::Deserialize;

use super::{audit_view, event_view, urlencode, EventView, State};
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::clock::local_time;
use crate::sources::logs::{event_contact_id, ContactLogQuery, CONTACT_WINDOW_MARGIN_US};
use crate::sources::paging::{self, PageStop, Paging, PagingError};
use crate::sources::{ContactSummary, SourceError};
use crate::web::{html, request_meta, AppError, Layout};

#[derive(Template)]
#[template(path = "logs/search.html")]
pub struct LogSearchPage {
    pub layout: Layout,
    /// The reader's time zone, named beside the times.
    pub zone: String,
    pub contact_id: String,
    pub searched: bool,
    pub events: Vec<EventView>,
    pub findings: usize,
    /// The window searched, when there was a search.
    pub window: String,
    /// Repeated deliveries left out.
    pub duplicates: usize,
    /// Set when the page budget ran out: the link that continues.
    pub more: Option<String>,
    /// Pages read per lookup (CALLVAULT_FLOW_LOG_PAGES).
    pub budget: usize,
}

/// The flow-log lookup of a contact: its own time window when Connect
/// describes it, else the last 92 days (Connect's search window).
async fn contact_log_query(state: &State, contact: ContactId) -> Result<ContactLogQuery, AppError> {
    let now = state.clock.now_us();
    let budget = state.flow_log_pages;
    match state.directory.describe(&contact).await {
        Ok(ContactSummary {
            initiated_us: Some(initiated),
            disconnected_us,
            ..
        }) => Ok(ContactLogQuery::for_contact(
            contact,
            initiated,
            disconnected_us,
            now,
            budget,
        )),
        Ok(_) | Err(SourceError::NotFound) | Err(SourceError::NotConfigured(_)) => {
            Ok(ContactLogQuery {
                contact,
                from_us: now - 92 * 86_400_000_000,
                to_us: now + CONTACT_WINDOW_MARGIN_US,
                page_budget: budget.max(1),
                resume: None,
            })
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    contact_id: Option<String>,
    /// A handle of a lookup whose budget ran out.
    more: Option<String>,
}

pub async fn search_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    // A refused paging handle is recorded here, once, for the whole page.
    let who = sup.principal().clone();
    let meta = request_meta(&req);
    let audit = state.audit.clone();
    let result = search_page_inner(state, sup, session, req, q).await;
    paging::answer(
        &audit,
        (&who.username, who.role.as_str()),
        &meta,
        "flow-log",
        result,
    )
    .await
}

async fn search_page_inner(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<SearchQuery>,
) -> Result<HttpResponse, PageStop> {
    let p = sup.principal();
    let raw = q.contact_id.as_deref().map(str::trim).unwrap_or("");
    let budget = state.flow_log_pages;
    let mut events = Vec::new();
    let mut window = String::new();
    let mut duplicates = 0;
    let mut more = None;
    let zone = state
        .users
        .time_zone(p.user_id)
        .await
        .map_err(AppError::from)?;
    if !raw.is_empty() {
        let contact = ContactId::parse(raw)
            .map_err(|_| AppError::BadRequest("That is not a contact id.".into()))?;
        let meta = request_meta(&req);
        let owner = paging::owner(&session, &p.username);
        let query = match q.more.as_deref().filter(|h| !h.is_empty()) {
            None => contact_log_query(&state, contact.clone()).await?,
            Some(h) => match state.paging.get(&owner, h) {
                Ok(Paging::FlowLogs { query }) if query.contact == contact => query,
                Ok(_) => return Err(PageStop::Refused(PagingError::WrongKind)),
                Err(e) => return Err(PageStop::Refused(e)),
            },
        };
        window = format!(
            "{} to {} ({})",
            local_time(query.from_us, zone),
            local_time(query.to_us, zone),
            zone.name()
        );
        let found = state.logs.events_for_contact(&query).await?;
        duplicates = found.duplicates;
        more = found.more.map(|cursor| {
            let h = state.paging.put(
                &owner,
                Paging::FlowLogs {
                    query: ContactLogQuery {
                        resume: Some(cursor),
                        ..query.clone()
                    },
                },
            );
            format!(
                "/logs/search?contact_id={}&more={h}",
                urlencode(contact.as_str())
            )
        });
        // The service's filter is not trusted: each event must name this contact.
        events = found
            .events
            .iter()
            .filter(|e| event_contact_id(&e.event.message).as_deref() == Some(contact.as_str()))
            .map(|e| event_view(&state, &e.group, &e.stream, &e.event, zone))
            .collect();
        audit_view(
            &state,
            p,
            &meta,
            if more.is_some() {
                "search by contact (more may exist)".to_owned()
            } else {
                "search by contact".to_owned()
            },
            contact.as_str(),
            &events,
        )
        .await?;
    }
    let findings = events.iter().map(|e| e.findings).sum();
    Ok(html(&LogSearchPage {
        layout: Layout::signed_in("Flow logs of a contact", p, csrf::token(&session)?),
        zone: zone.name().to_owned(),
        contact_id: raw.chars().take(128).collect(),
        searched: !raw.is_empty(),
        events,
        findings,
        window,
        duplicates,
        more,
        budget,
    })?)
}
