//! Flow-log pages: groups and streams, one stream's events, search by contact.
//! Every shown value passes the leak guard; findings raise a banner and one
//! `leak_found` audit row per event. Page links carry paging handles, never
//! the service's tokens.

pub mod search;

use std::sync::Arc;

use actix_session::Session;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;
use serde_json::Value;

use crate::audit::{Action, AuditEvent, AuditLog, RequestMeta};
use crate::auth::csrf;
use crate::auth::principal::{Principal, Supervisor};
use crate::auth::Role;
use crate::clock::local_time;
use crate::guard::{canonical_key, Sensitive, ShownValue};
use crate::sources::paging::{self, PageStop, Paging, PagingError, PagingStore};
use crate::sources::{ContactDirectory, LogEvent, LogGroupName, LogStore, LogStreamName};
use crate::web::{html, request_meta, AppError, Layout, Routes};

/// What the flow-log pages use; registered once as app data.
pub struct LogsState {
    pub audit: AuditLog,
    pub logs: Arc<dyn LogStore>,
    pub sensitive: Sensitive,
    /// For a contact's own time window (cached descriptions).
    pub directory: Arc<dyn ContactDirectory>,
    pub clock: crate::clock::SharedClock,
    /// Paging state behind the handles in page links.
    pub paging: Arc<PagingStore>,
    /// FilterLogEvents pages per lookup (CALLVAULT_FLOW_LOG_PAGES).
    pub flow_log_pages: usize,
    /// Each user's time zone (times are shown in it).
    pub users: crate::auth::users::Users,
}

type State = web::Data<LogsState>;

pub fn configure(routes: &mut Routes) {
    let supervisor = Role::Supervisor.access();
    routes
        .get("/logs", supervisor, logs_page)
        .get("/logs/search", supervisor, search::search_page)
        .get("/logs/{group}/{stream}", supervisor, stream_page);
}

pub struct StreamView {
    pub name: String,
    pub href: String,
    pub last_event: String,
    pub bytes: i64,
}

pub struct GroupView {
    pub name: String,
    pub streams: Vec<StreamView>,
    pub next: Option<String>,
}

#[derive(Template)]
#[template(path = "logs/logs.html")]
pub struct LogsPage {
    pub layout: Layout,
    /// The reader's time zone, named beside the times.
    pub zone: String,
    pub groups: Vec<GroupView>,
}

pub struct EventParam {
    pub name: String,
    pub value: ShownValue,
}

pub struct EventView {
    pub time: String,
    pub group: String,
    pub stream: String,
    pub contact_id: String,
    pub module: String,
    pub params: Vec<EventParam>,
    pub raw: Option<ShownValue>,
    pub findings: usize,
}

#[derive(Template)]
#[template(path = "logs/stream.html")]
pub struct LogStreamPage {
    pub layout: Layout,
    pub zone: String,
    pub group: String,
    pub stream: String,
    pub events: Vec<EventView>,
    pub findings: usize,
    pub newer: Option<String>,
    pub older: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogsQuery {
    page: Option<String>,
}

pub async fn logs_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    q: web::Query<LogsQuery>,
) -> Result<HttpResponse, AppError> {
    // A refused paging handle is recorded here, once, for the whole page.
    let who = sup.principal().clone();
    let meta = request_meta(&req);
    let audit = state.audit.clone();
    let result = logs_page_inner(state, sup, session, q).await;
    paging::answer(
        &audit,
        (&who.username, who.role.as_str()),
        &meta,
        "streams",
        result,
    )
    .await
}

async fn logs_page_inner(
    state: State,
    sup: Supervisor,
    session: Session,
    q: web::Query<LogsQuery>,
) -> Result<HttpResponse, PageStop> {
    let p = sup.principal();
    let owner = paging::owner(&session, &p.username);
    // The next page of one group's streams, kept on the server.
    let resume = match q.page.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => match state.paging.get(&owner, h) {
            Ok(Paging::Streams { group, token }) => Some((group, token)),
            Ok(_) => return Err(PageStop::Refused(PagingError::WrongKind)),
            Err(e) => return Err(PageStop::Refused(e)),
        },
    };
    let zone = state
        .users
        .time_zone(p.user_id)
        .await
        .map_err(AppError::from)?;
    let mut groups = Vec::new();
    for group in state.logs.groups() {
        let token = match &resume {
            Some((g, t)) if *g == group => Some(t.as_str()),
            _ => None,
        };
        let page = state.logs.streams(&group, token).await?;
        groups.push(GroupView {
            name: group.as_str().to_owned(),
            streams: page
                .items
                .into_iter()
                .map(|s| StreamView {
                    href: format!("/logs/{}/{}", urlencode(group.as_str()), urlencode(&s.name)),
                    name: s.name,
                    last_event: s
                        .last_event_us
                        .map(|t| local_time(t, zone))
                        .unwrap_or_default(),
                    bytes: s.stored_bytes.unwrap_or(0),
                })
                .collect(),
            next: page.next_token.map(|token| {
                let h = state.paging.put(
                    &owner,
                    Paging::Streams {
                        group: group.clone(),
                        token,
                    },
                );
                format!("/logs?page={h}")
            }),
        });
    }
    Ok(html(&LogsPage {
        layout: Layout::signed_in("Flow logs", p, csrf::token(&session)?),
        zone: zone.name().to_owned(),
        groups,
    })?)
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e[1..].to_owned())
        .unwrap_or_default()
}

/// A flow-log event as shown: its JSON fields made readable, every key and
/// value guarded.
fn event_view(
    state: &State,
    group: &str,
    stream: &str,
    event: &LogEvent,
    zone: chrono_tz::Tz,
) -> EventView {
    let mut view = EventView {
        time: local_time(event.timestamp_us, zone),
        group: group.to_owned(),
        stream: stream.to_owned(),
        contact_id: String::new(),
        module: String::new(),
        params: Vec::new(),
        raw: None,
        findings: 0,
    };
    let mut findings = 0;
    match serde_json::from_str::<Value>(&event.message) {
        Ok(Value::Object(obj)) => {
            let mut text = |k: &str| {
                let shown =
                    ShownValue::guard(obj.get(k).and_then(Value::as_str).unwrap_or(""), false);
                findings += shown.findings;
                shown.text
            };
            view.contact_id = text("ContactId");
            view.module = text("ContactFlowModuleType");
            let params = obj.get("Parameters").and_then(Value::as_object);
            // SetAttributes names the attribute in "Key"; its "Value" is that attribute.
            let named = params
                .and_then(|p| p.iter().find(|(k, _)| canonical_key(k) == "key"))
                .and_then(|(_, v)| v.as_str())
                .unwrap_or("");
            let named_sensitive = state.sensitive.contains(named);
            let mut rows = Rows {
                state,
                params: &mut view.params,
                key_findings: 0,
            };
            for (k, v) in obj.iter().filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "ContactId" | "ContactFlowModuleType" | "Parameters" | "Timestamp"
                )
            }) {
                rows.push("", k, v, false);
            }
            if let Some(p) = params {
                for (k, v) in p {
                    let is_value = canonical_key(k) == "value";
                    rows.push("Parameters", k, v, is_value && named_sensitive);
                }
            }
            findings += rows.key_findings;
        }
        _ => {
            let shown = ShownValue::guard(&event.message, false);
            view.raw = Some(shown);
        }
    }
    view.findings = findings
        + view.params.iter().map(|p| p.value.findings).sum::<usize>()
        + view.raw.as_ref().map_or(0, |r| r.findings);
    view
}

/// The shown rows of one event: one per leaf of its JSON, named by its path.
struct Rows<'a> {
    state: &'a State,
    params: &'a mut Vec<EventParam>,
    /// Card numbers masked in keys.
    key_findings: usize,
}

impl Rows<'_> {
    /// Adds `key` (under the path `parent`) and everything under it. Keys pass
    /// the leak guard like values; a value under a sensitive key, at any
    /// depth, is one row masked whole (unless it is ciphertext).
    fn push(&mut self, parent: &str, key: &str, v: &Value, sensitive: bool) {
        let shown_key = ShownValue::guard(key, false);
        self.key_findings += shown_key.findings;
        let shown_key = match shown_key.kind {
            "text" => shown_key.text,
            _ => "[ciphertext]".to_owned(),
        };
        let name = if parent.is_empty() {
            shown_key
        } else {
            format!("{parent}.{shown_key}")
        };
        let sensitive = sensitive || self.state.sensitive.contains(key);
        self.node(name, v, sensitive);
    }

    fn node(&mut self, name: String, v: &Value, sensitive: bool) {
        match v {
            Value::Object(map) if !sensitive && !map.is_empty() => {
                for (k, v) in map {
                    self.push(&name, k, v, false);
                }
            }
            Value::Array(items) if !sensitive && !items.is_empty() => {
                for (i, v) in items.iter().enumerate() {
                    self.node(format!("{name}[{i}]"), v, false);
                }
            }
            Value::String(s) => self.leaf(name, s, sensitive),
            other => self.leaf(name, &other.to_string(), sensitive),
        }
    }

    fn leaf(&mut self, name: String, text: &str, sensitive: bool) {
        self.params.push(EventParam {
            name,
            value: ShownValue::guard(text, sensitive),
        });
    }
}

/// The view row and one leak row per event with findings, committed together.
async fn audit_view(
    state: &State,
    p: &Principal,
    meta: &RequestMeta,
    detail: String,
    contact: &str,
    events: &[EventView],
) -> Result<(), AppError> {
    let mut rows = vec![
        AuditEvent::new(Action::LogView, &p.username, p.role.as_str(), "ok", meta)
            .contact(contact, "")
            .detail(detail),
    ];
    for e in events.iter().filter(|e| e.findings > 0) {
        rows.push(
            AuditEvent::new(
                Action::LeakFound,
                &p.username,
                p.role.as_str(),
                "masked",
                meta,
            )
            .contact(&e.contact_id, "")
            .detail(format!(
                "{} in {} / {} at {}",
                e.findings, e.group, e.stream, e.time
            )),
        );
    }
    state.audit.append_many(rows).await?;
    Ok(())
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamQuery {
    /// A handle of a position in this stream.
    page: Option<String>,
    /// Service tokens no longer travel in URLs: refused when present.
    token: Option<String>,
}

pub async fn stream_page(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<StreamQuery>,
) -> Result<HttpResponse, AppError> {
    // A refused paging handle is recorded here, once, for the whole page.
    let who = sup.principal().clone();
    let meta = request_meta(&req);
    let audit = state.audit.clone();
    let result = stream_page_inner(state, sup, session, req, path, q).await;
    paging::answer(
        &audit,
        (&who.username, who.role.as_str()),
        &meta,
        "events",
        result,
    )
    .await
}

async fn stream_page_inner(
    state: State,
    sup: Supervisor,
    session: Session,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    q: web::Query<StreamQuery>,
) -> Result<HttpResponse, PageStop> {
    let (group, stream) = path.into_inner();
    let group = LogGroupName::parse(&group).ok_or(AppError::NotFound)?;
    let stream = LogStreamName::parse(&stream).ok_or(AppError::NotFound)?;
    if !state.logs.groups().contains(&group) {
        return Err(AppError::NotFound.into());
    }
    let p = sup.principal();
    let meta = request_meta(&req);
    let owner = paging::owner(&session, &p.username);
    if q.token.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(PageStop::Refused(PagingError::Unknown));
    }
    let token = match q.page.as_deref().filter(|h| !h.is_empty()) {
        None => None,
        Some(h) => match state.paging.get(&owner, h) {
            Ok(Paging::Stream {
                group: g,
                stream: s,
                token,
            }) if g == group && s == stream => Some(token),
            Ok(_) => return Err(PageStop::Refused(PagingError::WrongKind)),
            Err(e) => return Err(PageStop::Refused(e)),
        },
    };
    let page = match state.logs.events(&group, &stream, token.as_deref()).await {
        Ok(page) => page,
        Err(e) => {
            let event = AuditEvent::new(
                Action::LogView,
                &p.username,
                p.role.as_str(),
                &format!("error:{}", e.kind()),
                &meta,
            )
            .detail(format!("{} / {}", group.as_str(), stream.as_str()));
            state.audit.append(event).await?;
            return Err(e.into());
        }
    };
    let zone = state
        .users
        .time_zone(p.user_id)
        .await
        .map_err(AppError::from)?;
    let events: Vec<EventView> = page
        .events
        .iter()
        .map(|e| event_view(&state, group.as_str(), stream.as_str(), e, zone))
        .collect();
    audit_view(
        &state,
        p,
        &meta,
        format!("{} / {}", group.as_str(), stream.as_str()),
        "",
        &events,
    )
    .await?;
    let base = format!(
        "/logs/{}/{}",
        urlencode(group.as_str()),
        urlencode(stream.as_str())
    );
    let findings = events.iter().map(|e| e.findings).sum();
    let link = |token: String| {
        let h = state.paging.put(
            &owner,
            Paging::Stream {
                group: group.clone(),
                stream: stream.clone(),
                token,
            },
        );
        format!("{base}?page={h}")
    };
    Ok(html(&LogStreamPage {
        layout: Layout::signed_in("Flow log", p, csrf::token(&session)?),
        zone: zone.name().to_owned(),
        group: group.as_str().to_owned(),
        stream: stream.as_str().to_owned(),
        events,
        findings,
        newer: page.forward_token.map(&link),
        older: page.backward_token.map(link),
    })?)
}
