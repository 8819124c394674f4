//! The auditor's pages: browse and filter, export, verify, and the decrypt
//! volume. Each is itself audited, refusals included.

mod alerts;
mod charts;
mod filter;
mod volume;

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use chrono::TimeZone as _;
use chrono_tz::Tz;
use futures_util::StreamExt as _;

use crate::audit::export::{self, ExportFormat};
use crate::audit::ship::Shipper;
use crate::audit::{Action, AuditLog, AuditRow, VerifyReport};
use crate::auth::csrf;
use crate::auth::principal::Auditor;
use crate::auth::users::Users;
use crate::auth::Role;
use crate::clock::{format_us, SharedClock};
use crate::decrypt::policy::BudgetLimit;
use crate::web::{html, AppError, Layout, Routes};

pub use alerts::AlertView;
mod key_states;
use filter::{AuditQuery, Refusal, KNOWN_OUTCOMES};

/// What the auditor's pages use; registered once as app data.
pub struct ReviewState {
    pub audit: AuditLog,
    pub clock: SharedClock,
    pub users: Users,
    /// Audit shipping, when configured.
    pub shipper: Option<Shipper>,
    /// The decrypt budget, as the volume page states it.
    pub budget: BudgetLimit,
}

type State = web::Data<ReviewState>;

pub fn configure(routes: &mut Routes) {
    let auditor = Role::Auditor.access();
    routes
        .get("/audit", auditor, audit_page)
        .get("/audit/export", auditor, export)
        .post("/audit/verify", auditor, verify)
        .get("/audit/volume", auditor, volume::volume_page);
}

/// A stored time in the reader's zone, to the second.
pub fn local_time(us: i64, zone: Tz) -> String {
    zone.timestamp_micros(us)
        .single()
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format_us(us))
}

/// An id cut to `n` characters for a compact table (the whole id goes in
/// the cell's `title`).
fn short(id: &str, n: usize) -> String {
    if id.chars().count() > n {
        let mut s: String = id.chars().take(n).collect();
        s.push('…');
        s
    } else {
        id.to_owned()
    }
}

/// One audit row as shown.
pub struct AuditRowView {
    pub seq: i64,
    pub time: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub contact_id: String,
    pub initial_contact_id: String,
    pub field: String,
    pub reason: String,
    pub case_ref: String,
    pub outcome: String,
    pub client_addr: String,
    pub request_id: String,
    pub request_short: String,
    pub detail: String,
    pub hash: String,
    pub hash_prefix: String,
    /// `refusal`, `leak` or empty: how the row is tinted (a CSS class).
    pub tint: &'static str,
}

/// Outcomes that mean something was refused or failed.
const REFUSAL_OUTCOMES: [&str; 5] = [
    "refused",
    "denied",
    "failed",
    "budget_exceeded",
    "throttled",
];

/// How a row stands out: leaks first, then anything refused.
fn tint(action: &str, outcome: &str) -> &'static str {
    if action == Action::LeakFound.as_str() {
        "leak"
    } else if REFUSAL_OUTCOMES.contains(&outcome)
        || outcome.starts_with("refused")
        || outcome.starts_with("error")
        || action.ends_with("_denied")
        || action.ends_with("_failed")
        || action.ends_with("_rejected")
    {
        "refusal"
    } else {
        ""
    }
}

impl AuditRowView {
    fn new(r: AuditRow, zone: Tz) -> Self {
        Self {
            seq: r.seq,
            time: local_time(r.ts_us, zone),
            hash_prefix: short(&r.hash, 12),
            request_short: short(&r.request_id, 8),
            tint: tint(&r.action, &r.outcome),
            hash: r.hash,
            actor: r.actor,
            role: r.role,
            action: r.action,
            contact_id: r.contact_id,
            initial_contact_id: r.initial_contact_id,
            field: r.field,
            reason: r.reason,
            case_ref: r.case_ref,
            outcome: r.outcome,
            client_addr: r.client_addr,
            request_id: r.request_id,
            detail: r.detail,
        }
    }
}

pub struct VerifyView {
    pub ok: bool,
    pub rows_checked: u64,
    pub head_seq: i64,
    pub problem: String,
    pub bad_seq: i64,
}

/// One entry of a multi-select.
pub struct Choice {
    pub value: String,
    pub selected: bool,
}

fn choices(known: &[&str], selected: &[String]) -> Vec<Choice> {
    let mut out: Vec<Choice> = known
        .iter()
        .map(|v| Choice {
            value: (*v).to_owned(),
            selected: selected.iter().any(|s| s == v),
        })
        .collect();
    // Values from a URL that the list does not offer stay selected.
    for s in selected {
        if !known.contains(&s.as_str()) {
            out.push(Choice {
                value: s.clone(),
                selected: true,
            });
        }
    }
    out
}

#[derive(Template)]
#[template(path = "review/audit.html")]
pub struct AuditPage {
    pub layout: Layout,
    pub zone: String,
    pub rows: Vec<AuditRowView>,
    pub actions: Vec<Choice>,
    pub outcomes: Vec<Choice>,
    pub f_actor: String,
    pub f_contact: String,
    pub f_from: String,
    pub f_to: String,
    /// The filter as a query string (already URL-encoded), for paging and export links.
    pub filter_query: String,
    pub older: Option<i64>,
    pub verify: Option<VerifyView>,
    pub alerts: Vec<AlertView>,
    /// Retired period keys and when their values become unrecoverable.
    pub key_states: Vec<key_states::KeyStateView>,
    pub shipping: Option<ShippingView>,
    /// Rows matching the filter, all pages together.
    pub matching: i64,
    /// The filter in words ("actions decrypt, outcome refused"), empty for none.
    pub summary: String,
}

/// The filter in words, for the line above the table.
fn summary(q: &AuditQuery) -> String {
    let mut parts = Vec::new();
    let list = |name: &str, plural: &str, v: &[String]| match v.len() {
        0 => None,
        1 => Some(format!("{name} {}", v[0])),
        _ => Some(format!("{plural} {}", v.join(", "))),
    };
    parts.extend(list("actor", "actors", &q.actors));
    parts.extend(list("action", "actions", &q.actions));
    parts.extend(list("outcome", "outcomes", &q.outcomes));
    if !q.contact.is_empty() {
        parts.push(format!("contact id starting {}", q.contact));
    }
    if !q.from.is_empty() {
        parts.push(format!("from {}", q.from));
    }
    if !q.to.is_empty() {
        parts.push(format!("to {}", q.to));
    }
    parts.join("; ")
}

pub struct ShippingView {
    pub healthy: bool,
    pub log_group: String,
    pub backlog: i64,
    pub oldest: String,
    pub last_error: String,
    pub checkpoint_seq: i64,
    pub checkpoint_time: String,
    pub checkpoint_error: String,
}

const PAGE_ROWS: i64 = 50;

/// The request's filter, or a 400 page naming what was refused, with an
/// `action` row (outcome `refused`) on the record.
async fn parsed_query(
    state: &State,
    auditor: &Auditor,
    req: &HttpRequest,
    action: Action,
) -> Result<AuditQuery, AppError> {
    match AuditQuery::parse(req.query_string()) {
        Ok(q) => Ok(q),
        Err(Refusal(message)) => {
            let p = auditor.principal();
            state
                .audit
                .append(p.event(req, action, "refused", &message))
                .await?;
            Err(AppError::BadRequest(message))
        }
    }
}

async fn page(
    state: &State,
    auditor: &Auditor,
    session: &Session,
    query: &AuditQuery,
    verify: Option<VerifyReport>,
) -> Result<HttpResponse, AppError> {
    let zone = state.users.time_zone(auditor.principal().user_id).await?;
    let filter = query.filter(zone);
    let mut rows = state
        .audit
        .query(&filter, query.before, PAGE_ROWS + 1)
        .await?;
    let older = if rows.len() as i64 > PAGE_ROWS {
        rows.truncate(PAGE_ROWS as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    let matching = state.audit.count(&filter).await?;
    let action_names: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    let page = AuditPage {
        layout: Layout::signed_in("Audit log", auditor.principal(), csrf::token(session)?),
        zone: zone.name().to_owned(),
        rows: rows
            .into_iter()
            .map(|r| AuditRowView::new(r, zone))
            .collect(),
        actions: choices(&action_names, &query.actions),
        outcomes: choices(&KNOWN_OUTCOMES, &query.outcomes),
        f_actor: query.actors.join(", "),
        f_contact: query.contact.clone(),
        f_from: query.from.clone(),
        f_to: query.to.clone(),
        filter_query: query.query_string(),
        older,
        verify: verify.map(|v| VerifyView {
            ok: v.ok(),
            rows_checked: v.rows_checked,
            head_seq: v.head_seq,
            bad_seq: v.first_bad.as_ref().map_or(0, |b| b.seq),
            problem: v.first_bad.map(|b| b.problem).unwrap_or_default(),
        }),
        alerts: alerts::alerts(state, zone).await?,
        key_states: key_states::key_states(&state.audit, zone).await?,
        shipping: shipping(state).await?,
        matching,
        summary: summary(query),
    };
    html(&page)
}

async fn shipping(state: &State) -> Result<Option<ShippingView>, AppError> {
    let Some(shipper) = &state.shipper else {
        return Ok(None);
    };
    let status = shipper.status();
    let (backlog, oldest) = crate::audit::ship::backlog(&state.audit).await?;
    let stale = oldest.is_some_and(|t| state.clock.now_us() - t > 60_000_000);
    Ok(Some(ShippingView {
        healthy: status.last_error.is_none() && status.checkpoint_error.is_none() && !stale,
        log_group: status.log_group,
        backlog,
        oldest: oldest.map(format_us).unwrap_or_default(),
        last_error: status.last_error.unwrap_or_default(),
        checkpoint_seq: status.last_checkpoint_seq,
        checkpoint_time: if status.last_checkpoint_us > 0 {
            format_us(status.last_checkpoint_us)
        } else {
            String::new()
        },
        checkpoint_error: status.checkpoint_error.unwrap_or_default(),
    }))
}

pub async fn audit_page(
    state: State,
    auditor: Auditor,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let query = parsed_query(&state, &auditor, &req, Action::AuditView).await?;
    let p = auditor.principal();
    state
        .audit
        .append(p.event(&req, Action::AuditView, "ok", &query.describe()))
        .await?;
    page(&state, &auditor, &session, &query, None).await
}

pub async fn export(
    state: State,
    auditor: Auditor,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let query = parsed_query(&state, &auditor, &req, Action::AuditExport).await?;
    let format = ExportFormat::parse(query.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| AppError::BadRequest("Export format must be csv or jsonl.".into()))?;
    // Exports are in UTC whatever the reader's zone, days included.
    let filter = query.filter(Tz::UTC);
    let p = auditor.principal();
    let detail = format!("{} {}", format.extension(), query.describe());
    state
        .audit
        .append(p.event(&req, Action::AuditExport, "ok", &detail))
        .await?;
    let stream = export::stream(state.audit.clone(), filter, format).map(|chunk| {
        chunk.map(web::Bytes::from).map_err(|e| {
            tracing::error!(error = %e, "audit export failed mid-stream");
            actix_web::error::ErrorInternalServerError("export failed")
        })
    });
    let filename = format!(
        "callvault-audit-{}.{}",
        state.clock.now().format("%Y%m%dT%H%M%SZ"),
        format.extension()
    );
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .streaming(stream))
}

pub async fn verify(
    state: State,
    auditor: Auditor,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let report = state.audit.verify().await?;
    let p = auditor.principal();
    let detail = match &report.first_bad {
        None => format!("{} rows verified", report.rows_checked),
        Some(b) => format!("broken at row {}: {}", b.seq, b.problem),
    };
    let outcome = if report.ok() { "ok" } else { "broken" };
    state
        .audit
        .append(p.event(&req, Action::AuditVerify, outcome, &detail))
        .await?;
    page(
        &state,
        &auditor,
        &session,
        &AuditQuery::default(),
        Some(report),
    )
    .await
}
