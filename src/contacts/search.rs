//! The contact search page: criteria parsed at the edge (`criteria`), paging
//! kept on the server behind opaque handles (`sources::paging`), back and
//! forward, with the total Connect reports.

use std::collections::BTreeMap;

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::criteria::{self, DAY_US};
use super::{row, ContactRow, State};
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::clock::format_us;
use crate::sources::contacts::INITIATION_METHODS;
use crate::sources::paging::{self, refuse as refuse_paging, Paging, PagingError};
use crate::sources::Channel;
use crate::web::{html, request_meta, AppError, Layout};

/// Pages one search remembers tokens for (back and forward paging).
const MAX_PAGES: usize = 400;

/// A searchable contact attribute's form field.
pub struct AttributeField {
    pub key: String,
    pub value: String,
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
    pub f_method: String,
    pub f_agent: String,
    pub f_queue: String,
    pub attributes: Vec<AttributeField>,
    pub channels: Vec<&'static str>,
    pub methods: Vec<&'static str>,
    /// Links to the previous and next pages (opaque paging handles).
    pub prev: Option<String>,
    pub next: Option<String>,
    /// "Page 2 of 3 (60 contacts)".
    pub position: String,
}

fn day(us: i64) -> String {
    format_us(us).chars().take(10).collect()
}

pub async fn contacts_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, AppError> {
    let form = q.into_inner();
    let p = sup.principal();
    let meta = request_meta(&req);
    let owner = paging::owner(&session, &p.username);
    let searchable = &state.searchable;
    // Either a page of a search kept on the server, or a new search.
    let (mut search, handle, n, mut tokens, known_total) = match form.get("page") {
        Some(h) => {
            let n: usize = match form.get("n").map(|n| n.parse::<usize>()) {
                None => 0,
                Some(Ok(n)) if n < MAX_PAGES => n,
                Some(_) => {
                    return refuse_paging(
                        &state.audit,
                        (&p.username, p.role.as_str()),
                        &meta,
                        "contacts",
                        PagingError::Unknown,
                    )
                    .await
                }
            };
            match state.paging.get(&owner, h) {
                Ok(Paging::Contacts {
                    search,
                    tokens,
                    total,
                }) if n < tokens.len() => (search, Some(h.clone()), n, tokens, total),
                Ok(Paging::Contacts { .. }) => {
                    return refuse_paging(
                        &state.audit,
                        (&p.username, p.role.as_str()),
                        &meta,
                        "contacts",
                        PagingError::Unknown,
                    )
                    .await
                }
                Ok(_) => {
                    return refuse_paging(
                        &state.audit,
                        (&p.username, p.role.as_str()),
                        &meta,
                        "contacts",
                        PagingError::WrongKind,
                    )
                    .await
                }
                Err(e) => {
                    return refuse_paging(
                        &state.audit,
                        (&p.username, p.role.as_str()),
                        &meta,
                        "contacts",
                        e,
                    )
                    .await
                }
            }
        }
        None => {
            if form.contains_key("next") {
                // Service tokens never travel in URLs any more.
                return refuse_paging(
                    &state.audit,
                    (&p.username, p.role.as_str()),
                    &meta,
                    "contacts",
                    PagingError::Unknown,
                )
                .await;
            }
            match criteria::parse(&form, searchable, state.clock.now_us()) {
                Ok(search) => (search, None, 0, vec![None], None),
                Err(e) => {
                    let event = AuditEvent::new(
                        Action::ContactView,
                        &p.username,
                        p.role.as_str(),
                        e.kind(),
                        &meta,
                    )
                    .detail("contact search refused".to_owned());
                    state.audit.append(event).await?;
                    return Err(AppError::BadRequest(e.to_string()));
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
            };
            if let Err(e) = state.paging.update(&owner, &h, kept) {
                return refuse_paging(
                    &state.audit,
                    (&p.username, p.role.as_str()),
                    &meta,
                    "contacts",
                    e,
                )
                .await;
            }
            Some(h)
        }
        None if tokens.len() > 1 => Some(state.paging.put(
            &owner,
            Paging::Contacts {
                search: search.clone(),
                tokens: tokens.clone(),
                total,
            },
        )),
        None => None,
    };
    let link = |k: usize| handle.as_ref().map(|h| format!("/contacts?page={h}&n={k}"));
    let position = match total {
        Some(t) => format!(
            "Page {} of {} ({t} contact{})",
            n + 1,
            t.div_ceil(state.directory.page_size().max(1) as u64).max(1),
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
    html(&ContactsPage {
        layout: Layout::signed_in("Contacts", p, csrf::token(&session)?),
        rows: page.items.into_iter().map(row).collect(),
        f_contact: search
            .contact_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        f_from: day(search.from_us),
        f_to: day(search.to_us - DAY_US),
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
        attributes: searchable
            .iter()
            .map(|k| AttributeField {
                key: k.clone(),
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
    })
}
