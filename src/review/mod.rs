//! The auditor's pages: browse and filter, export, verify, and the decrypt
//! volume. Each is itself audited.

mod volume;

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use futures_util::StreamExt as _;
use serde::Deserialize;

use crate::audit::export::{self, ExportFormat};
use crate::audit::ship::Shipper;
use crate::audit::{Action, AuditEvent, AuditFilter, AuditLog, AuditRow, VerifyReport};
use crate::auth::csrf;
use crate::auth::principal::Auditor;
use crate::auth::users::Users;
use crate::auth::Role;
use crate::clock::{format_us, SharedClock};
use crate::decrypt::policy::BudgetLimit;
use crate::web::{day_start_us, html, request_meta, AppError, Layout, Routes, DAY_US};

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

/// One audit row as shown.
pub struct AuditRowView {
    pub seq: i64,
    pub time: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub outcome: String,
    pub client_addr: String,
    pub request_id: String,
    pub detail: String,
    pub hash_prefix: String,
}

impl From<AuditRow> for AuditRowView {
    fn from(r: AuditRow) -> Self {
        Self {
            seq: r.seq,
            time: format_us(r.ts_us),
            hash_prefix: r.hash.chars().take(12).collect(),
            actor: r.actor,
            role: r.role,
            action: r.action,
            contact_id: r.contact_id,
            field: r.field,
            reason: r.reason,
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

#[derive(Template)]
#[template(path = "review/audit.html")]
pub struct AuditPage {
    pub layout: Layout,
    pub rows: Vec<AuditRowView>,
    pub actions: Vec<&'static str>,
    pub f_actor: String,
    pub f_action: String,
    pub f_contact: String,
    pub f_from: String,
    pub f_to: String,
    /// The filter as a query string (already URL-encoded), for paging and export links.
    pub filter_query: String,
    pub older: Option<i64>,
    pub verify: Option<VerifyView>,
    pub error: Option<String>,
    pub alerts: Vec<AlertView>,
    pub shipping: Option<ShippingView>,
}

/// A supervisor refused over their decrypt budget.
pub struct AlertView {
    pub actor: String,
    pub count: i64,
    pub last: String,
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

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    contact: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<i64>,
    format: Option<String>,
}

fn non_empty(s: &Option<String>) -> Option<String> {
    crate::web::non_empty(s).map(str::to_owned)
}

impl AuditQuery {
    fn filter(&self) -> Result<AuditFilter, AppError> {
        let too_long =
            |s: &Option<String>, n: usize| s.as_ref().is_some_and(|s| s.chars().count() > n);
        if too_long(&self.actor, 64) || too_long(&self.contact, 128) {
            return Err(AppError::BadRequest("A filter value is too long.".into()));
        }
        let action = non_empty(&self.action);
        if let Some(a) = &action {
            if Action::parse(a).is_none() {
                return Err(AppError::BadRequest("Unknown action.".into()));
            }
        }
        Ok(AuditFilter {
            actor: non_empty(&self.actor),
            action,
            contact_id: non_empty(&self.contact),
            from_us: non_empty(&self.from)
                .map(|d| day_start_us(&d))
                .transpose()?,
            // "to" is inclusive: rows before the start of the next day.
            to_us: non_empty(&self.to)
                .map(|d| day_start_us(&d).map(|t| t + DAY_US))
                .transpose()?,
        })
    }

    /// The filter as a URL query string (without `before` and `format`).
    fn query_string(&self) -> String {
        let pairs: Vec<(&str, String)> = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("contact", &self.contact),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| non_empty(v).map(|v| (k, v)))
        .collect();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn describe(&self) -> String {
        let q = self.query_string();
        if q.is_empty() {
            "all rows".into()
        } else {
            q
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
    let filter = query.filter()?;
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
    let page = AuditPage {
        layout: Layout::signed_in("Audit log", auditor.principal(), csrf::token(session)?),
        rows: rows.into_iter().map(AuditRowView::from).collect(),
        actions: Action::ALL.iter().map(|a| a.as_str()).collect(),
        f_actor: query.actor.clone().unwrap_or_default(),
        f_action: query.action.clone().unwrap_or_default(),
        f_contact: query.contact.clone().unwrap_or_default(),
        f_from: query.from.clone().unwrap_or_default(),
        f_to: query.to.clone().unwrap_or_default(),
        filter_query: query.query_string(),
        older,
        verify: verify.map(|v| VerifyView {
            ok: v.ok(),
            rows_checked: v.rows_checked,
            head_seq: v.head_seq,
            bad_seq: v.first_bad.as_ref().map_or(0, |b| b.seq),
            problem: v.first_bad.map(|b| b.problem).unwrap_or_default(),
        }),
        error: None,
        alerts: alerts(state).await?,
        shipping: shipping(state).await?,
    };
    html(&page)
}

/// Budget refusals in the last day, per supervisor: the auditor's alerts.
async fn alerts(state: &State) -> Result<Vec<AlertView>, AppError> {
    let now = state.clock.now_us();
    let counts = state
        .audit
        .counts_by_actor(
            Action::DecryptDenied,
            Some("budget_exceeded"),
            now - DAY_US,
            now + 1,
        )
        .await?;
    let mut out = Vec::with_capacity(counts.len());
    for (actor, count) in counts {
        let filter = AuditFilter {
            actor: Some(actor.clone()),
            action: Some(Action::DecryptDenied.as_str().to_owned()),
            ..AuditFilter::default()
        };
        let last = state
            .audit
            .query(&filter, None, 1)
            .await?
            .first()
            .map(|r| format_us(r.ts_us))
            .unwrap_or_default();
        out.push(AlertView { actor, count, last });
    }
    Ok(out)
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
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    query.filter()?;
    let p = auditor.principal();
    let event = AuditEvent::new(
        Action::AuditView,
        &p.username,
        p.role.as_str(),
        "ok",
        &request_meta(&req),
    )
    .detail(query.describe());
    state.audit.append(event).await?;
    page(&state, &auditor, &session, &query, None).await
}

pub async fn export(
    state: State,
    auditor: Auditor,
    req: HttpRequest,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let format = ExportFormat::parse(query.format.as_deref().unwrap_or("csv"))
        .ok_or_else(|| AppError::BadRequest("Export format must be csv or jsonl.".into()))?;
    let filter = query.filter()?;
    let p = auditor.principal();
    let event = AuditEvent::new(
        Action::AuditExport,
        &p.username,
        p.role.as_str(),
        "ok",
        &request_meta(&req),
    )
    .detail(format!("{} {}", format.extension(), query.describe()));
    state.audit.append(event).await?;
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
        .append(
            AuditEvent::new(
                Action::AuditVerify,
                &p.username,
                p.role.as_str(),
                outcome,
                &request_meta(&req),
            )
            .detail(detail),
        )
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
