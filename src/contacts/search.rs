//! The contact search page: criteria parsed at the edge (`criteria`), paging
//! kept on the server behind opaque handles (`sources::paging`), back and
//! forward, with the total Connect reports.

use std::collections::BTreeMap;

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use chrono_tz::Tz;

use super::criteria::{self, IdLookup, DAY_US, RELATIVE_RANGES};
use super::{row, ContactRow, State};
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::sources::contacts::{ContactSort, SortField, INITIATION_METHODS, PAGE_SIZES};
use crate::sources::paging::{self, PageStop, Paging, PagingError};
use crate::sources::Channel;
use crate::web::{html, request_meta, see_other, AppError, Layout};

/// Pages one search remembers tokens for (back and forward paging).
const MAX_PAGES: usize = 400;

/// A searchable contact attribute's form field.
pub struct AttributeField {
    pub key: String,
    /// Its input's name (`attr.<key>`).
    pub input: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "contacts/contacts.html")]
pub struct ContactsPage {
    pub layout: Layout,
    pub rows: Vec<ContactRow>,
    /// The reader's time zone (times shown and dates read in it).
    pub zone: String,
    /// The sortable column headers, as links.
    pub sorts: Vec<SortLink>,
    pub f_range: String,
    pub ranges: Vec<(&'static str, &'static str)>,
    pub f_per_page: usize,
    pub page_sizes: Vec<usize>,
    /// The contact id box held the start of an id.
    pub hint: Option<IdHint>,
    pub f_contact: String,
    pub f_from: String,
    pub f_to: String,
    pub f_channel: String,
    pub f_method: String,
    pub f_agent: String,
    pub f_queue: String,
    /// The instance's agents and queues by name (empty: ids are typed).
    pub agents: Vec<super::NameOption>,
    pub queues: Vec<super::NameOption>,
    pub attributes: Vec<AttributeField>,
    pub channels: Vec<&'static str>,
    pub methods: Vec<&'static str>,
    /// Links to the previous and next pages (opaque paging handles).
    pub prev: Option<String>,
    pub next: Option<String>,
    /// "Page 2 of 3 (60 contacts)".
    pub position: String,
    /// The search was refused: what to fix, and where.
    pub error: Option<SearchError>,
}

impl ContactsPage {
    /// Agents are chosen from a list of names, unless the names are unknown
    /// or the search names ids the list does not hold (then they are typed).
    pub fn agent_list(&self) -> bool {
        choosable(&self.agents, &self.f_agent)
    }

    pub fn queue_list(&self) -> bool {
        choosable(&self.queues, &self.f_queue)
    }

    /// `name` is a field of a refused search to fix.
    pub fn marks(&self, name: &str) -> bool {
        self.error.as_ref().is_some_and(|e| e.marks(name))
    }
}

fn choosable(options: &[super::NameOption], chosen: &str) -> bool {
    !options.is_empty() && (chosen.is_empty() || options.iter().any(|o| o.id == chosen))
}

/// A refused search as its form shows it.
pub struct SearchError {
    pub message: String,
    /// The field the message is beside (focused), if the form has one.
    pub field: Option<String>,
    /// Another field it marks (the other end of a range).
    pub also: Option<String>,
}

impl SearchError {
    /// `name` is marked invalid.
    pub fn marks(&self, name: &str) -> bool {
        self.field.as_deref() == Some(name) || self.also.as_deref() == Some(name)
    }

    /// The message is beside `name`, and the focus starts there.
    pub fn beside(&self, name: &str) -> bool {
        self.field.as_deref() == Some(name)
    }

    /// The message has no field of its own (shown above the table).
    pub fn general(&self) -> bool {
        self.field.is_none()
    }
}

/// A sortable column header: its link and, when sorted by it, the order
/// (`aria-sort`).
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    pub aria_sort: &'static str,
}

/// "Did you mean": contacts of this page whose id starts with the prefix.
pub struct IdHint {
    pub prefix: String,
    pub matches: Vec<String>,
}

/// The day of `us` in `zone`.
fn day(us: i64, zone: Tz) -> String {
    use chrono::TimeZone as _;
    zone.timestamp_micros(us)
        .single()
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The search form's own parameters (not paging or sorting) as a query string.
fn form_query(form: &BTreeMap<String, String>) -> String {
    let kept: Vec<(&str, &str)> = form
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "page" | "n" | "sort") && !v.trim().is_empty())
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    serde_urlencoded::to_string(kept).unwrap_or_default()
}

fn sort_links(query: &str, current: ContactSort) -> Vec<SortLink> {
    SortField::ALL
        .into_iter()
        .map(|field| {
            let sorted = current.field == field;
            // A click on the sorted column turns its order; a new column
            // starts newest (or Z) first.
            let next = ContactSort {
                field,
                ascending: sorted && !current.ascending,
            };
            let sep = if query.is_empty() { "" } else { "&" };
            SortLink {
                label: match field {
                    SortField::Initiated => "Started",
                    SortField::Disconnected => "Ended",
                    SortField::Channel => "Channel",
                    SortField::Method => "Method",
                },
                href: format!("/contacts?{query}{sep}sort={}", criteria::sort_param(next)),
                aria_sort: match (sorted, current.ascending) {
                    (false, _) => "none",
                    (true, true) => "ascending",
                    (true, false) => "descending",
                },
            }
        })
        .collect()
}

/// A refused search: recorded (its kind, never the value), then the form
/// again with what was typed and the message beside the field to fix (400).
async fn refuse(
    state: &State,
    r: Refused<'_>,
    e: criteria::CriteriaError,
) -> Result<HttpResponse, AppError> {
    let p = r.principal;
    let event = AuditEvent::new(
        Action::ContactView,
        &p.username,
        p.role.as_str(),
        e.kind(),
        r.meta,
    )
    .detail("contact search refused".to_owned());
    state.audit.append(event).await?;
    let [field, also] = criteria::refused_fields(&e, r.form);
    // What was typed comes back, except anything card-like.
    let typed = |name: &str| {
        r.form
            .get(name)
            .filter(|v| !crate::guard::holds_card_number(v))
            .cloned()
            .unwrap_or_default()
    };
    let clean: BTreeMap<String, String> = r
        .form
        .iter()
        .filter(|(_, v)| !crate::guard::holds_card_number(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let query = form_query(&clean);
    let names = super::names(state).await;
    let mut res = html(&ContactsPage {
        layout: Layout::signed_in("Contacts", p, csrf::token(r.session)?),
        zone: r.zone.name().to_owned(),
        sorts: sort_links(&query, ContactSort::default()),
        f_range: typed("range"),
        ranges: RELATIVE_RANGES.to_vec(),
        f_per_page: r
            .form
            .get("per_page")
            .and_then(|n| n.trim().parse().ok())
            .filter(|n| PAGE_SIZES.contains(n))
            .unwrap_or_else(|| state.directory.page_size()),
        page_sizes: PAGE_SIZES.to_vec(),
        hint: None,
        rows: Vec::new(),
        f_contact: typed("contact_id"),
        f_from: typed("from"),
        f_to: typed("to"),
        f_channel: typed("channel"),
        f_method: typed("method"),
        f_agent: typed("agent"),
        f_queue: typed("queue"),
        agents: super::options(&names.agents),
        queues: super::options(&names.queues),
        attributes: state
            .searchable
            .iter()
            .map(|k| {
                let input = format!("{}{k}", criteria::ATTRIBUTE_PREFIX);
                AttributeField {
                    key: k.clone(),
                    value: typed(&input),
                    input,
                }
            })
            .collect(),
        channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
        methods: INITIATION_METHODS.to_vec(),
        prev: None,
        next: None,
        position: String::new(),
        error: Some(SearchError {
            message: e.to_string(),
            field,
            also,
        }),
    })?;
    *res.status_mut() = actix_web::http::StatusCode::BAD_REQUEST;
    Ok(res)
}

/// Who asked a refused search, and what they typed.
struct Refused<'a> {
    principal: &'a crate::auth::principal::Principal,
    meta: &'a crate::audit::RequestMeta,
    session: &'a Session,
    form: &'a BTreeMap<String, String>,
    zone: Tz,
}

pub async fn contacts_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    // A refused paging handle is recorded here, once, for the whole page.
    let who = sup.principal().clone();
    let meta = request_meta(&req);
    let audit = state.audit.clone();
    let result = contacts_page_inner(state, sup, session, req, q).await;
    paging::answer(
        &audit,
        (&who.username, who.role.as_str()),
        &meta,
        "contacts",
        result,
    )
    .await
}

async fn contacts_page_inner(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, PageStop> {
    let mut form = q.into_inner();
    let p = sup.principal();
    let meta = request_meta(&req);
    let zone = state
        .users
        .time_zone(p.user_id)
        .await
        .map_err(AppError::from)?;
    // An exact id opens the contact; the start of one searches the range
    // and says which contacts it could be.
    let mut prefix = None;
    if !form.contains_key("page") {
        match criteria::id_lookup(form.get("contact_id").map(String::as_str).unwrap_or("")) {
            Ok(Some(IdLookup::Exact(id))) => {
                let path = format!("/contacts/{}", super::urlencode(id.as_str()));
                return Ok(see_other(&path));
            }
            Ok(Some(IdLookup::Prefix(start))) => {
                form.remove("contact_id");
                prefix = Some(start);
            }
            Ok(None) => {
                form.remove("contact_id");
            }
            Err(e) => {
                let r = Refused {
                    principal: p,
                    meta: &meta,
                    session: &session,
                    form: &form,
                    zone,
                };
                return refuse(&state, r, e).await.map_err(PageStop::Failed);
            }
        }
    }
    let owner = paging::owner(&session, &p.username);
    let searchable = &state.searchable;
    // Either a page of a search kept on the server, or a new search.
    let (mut search, handle, n, mut tokens, known_total, query) = match form.get("page") {
        Some(h) => {
            let n: usize = match form.get("n").map(|n| n.parse::<usize>()) {
                None => 0,
                Some(Ok(n)) if n < MAX_PAGES => n,
                Some(_) => return Err(PageStop::Refused(PagingError::Unknown)),
            };
            match state.paging.get(&owner, h) {
                Ok(Paging::Contacts {
                    search,
                    tokens,
                    total,
                    query,
                }) if n < tokens.len() => (search, Some(h.clone()), n, tokens, total, query),
                Ok(Paging::Contacts { .. }) => return Err(PageStop::Refused(PagingError::Unknown)),
                Ok(_) => return Err(PageStop::Refused(PagingError::WrongKind)),
                Err(e) => return Err(PageStop::Refused(e)),
            }
        }
        None => {
            if form.contains_key("next") {
                // Service tokens never travel in URLs any more.
                return Err(PageStop::Refused(PagingError::Unknown));
            }
            match criteria::parse(&form, searchable, state.clock.now_us(), zone) {
                Ok(search) => (search, None, 0, vec![None], None, form_query(&form)),
                Err(e) => {
                    let r = Refused {
                        principal: p,
                        meta: &meta,
                        session: &session,
                        form: &form,
                        zone,
                    };
                    return refuse(&state, r, e).await.map_err(PageStop::Failed);
                }
            }
        }
    };
    search.next_token = tokens.get(n).cloned().flatten();
    let page = state.directory.search(&search).await?;
    let total = page.total.or(known_total);
    // Remember where the next page starts, under a handle of this session.
    if let Some(next) = &page.next_token {
        if tokens.len() == n + 1 && n + 1 < MAX_PAGES {
            tokens.push(Some(next.clone()));
        }
    }
    search.next_token = None;
    let handle = match handle {
        Some(h) => {
            let kept = Paging::Contacts {
                search: search.clone(),
                tokens: tokens.clone(),
                total,
                query: query.clone(),
            };
            if let Err(e) = state.paging.update(&owner, &h, kept) {
                return Err(PageStop::Refused(e));
            }
            Some(h)
        }
        None if tokens.len() > 1 => Some(state.paging.put(
            &owner,
            Paging::Contacts {
                search: search.clone(),
                tokens: tokens.clone(),
                total,
                query: query.clone(),
            },
        )),
        None => None,
    };
    let per_page = search
        .page_size
        .unwrap_or_else(|| state.directory.page_size());
    let link = |k: usize| handle.as_ref().map(|h| format!("/contacts?page={h}&n={k}"));
    let position = match total {
        Some(t) => format!(
            "Page {} of {} ({t} contact{})",
            n + 1,
            t.div_ceil(per_page.max(1) as u64).max(1),
            if t == 1 { "" } else { "s" }
        ),
        None => format!("Page {}", n + 1),
    };
    let values = |key: &str| {
        search
            .attributes
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.values.join("|"))
            .unwrap_or_default()
    };
    let hint = prefix.map(|prefix| IdHint {
        matches: page
            .items
            .iter()
            .map(|c| c.id.to_string())
            .filter(|id| id.to_ascii_lowercase().starts_with(&prefix))
            .collect(),
        prefix,
    });
    let names = super::names(&state).await;
    Ok(html(&ContactsPage {
        layout: Layout::signed_in("Contacts", p, csrf::token(&session)?),
        zone: zone.name().to_owned(),
        sorts: sort_links(&query, search.sort),
        f_range: form.get("range").cloned().unwrap_or_default(),
        ranges: RELATIVE_RANGES.to_vec(),
        f_per_page: per_page,
        page_sizes: PAGE_SIZES.to_vec(),
        hint,
        rows: page
            .items
            .into_iter()
            .map(|c| row(c, zone, &names))
            .collect(),
        f_contact: search
            .contact_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        f_from: day(search.from_us, zone),
        f_to: day(search.to_us - DAY_US, zone),
        f_channel: search
            .channel
            .map(|c| c.as_str().to_owned())
            .unwrap_or_default(),
        f_method: search
            .initiation_methods
            .first()
            .cloned()
            .unwrap_or_default(),
        f_agent: search.agent_ids.join(","),
        f_queue: search.queue_ids.join(","),
        agents: super::options(&names.agents),
        queues: super::options(&names.queues),
        attributes: searchable
            .iter()
            .map(|k| AttributeField {
                key: k.clone(),
                input: format!("{}{k}", criteria::ATTRIBUTE_PREFIX),
                value: values(k),
            })
            .collect(),
        channels: Channel::ALL.iter().map(|c| c.as_str()).collect(),
        methods: INITIATION_METHODS.to_vec(),
        prev: if n > 0 { link(n - 1) } else { None },
        next: if tokens.len() > n + 1 {
            link(n + 1)
        } else {
            None
        },
        position,
        error: None,
    })?)
}
