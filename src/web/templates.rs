//! One askama struct per page, named after its template. askama escapes every
//! value for HTML; no page is built with `format!`.

use askama::Template;

use crate::audit::AuditRow;
use crate::auth::principal::Principal;
use crate::auth::users::User;
use crate::clock::format_us;

/// What the base layout needs: the page title, who is signed in, and the
/// CSRF token for the sign-out form.
pub struct Layout {
    pub title: String,
    pub user: Option<NavUser>,
    pub csrf: String,
}

pub struct NavUser {
    pub username: String,
    pub role: &'static str,
}

impl Layout {
    /// The stylesheet's URL, with its content hash (`web::assets`).
    pub fn stylesheet(&self) -> String {
        crate::web::assets::url("app.css")
    }

    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            user: None,
            csrf: String::new(),
        }
    }

    pub fn signed_in(title: &str, principal: &Principal, csrf: String) -> Self {
        Self {
            title: title.to_owned(),
            user: Some(NavUser {
                username: principal.username.clone(),
                role: principal.role.as_str(),
            }),
            csrf,
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub message: String,
    pub request_id: String,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub error: Option<&'static str>,
    pub notice: Option<&'static str>,
    pub username: String,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub layout: Layout,
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
#[template(path = "audit.html")]
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

#[derive(Template)]
#[template(path = "volume.html")]
pub struct VolumePage {
    pub layout: Layout,
    pub budget: String,
    pub rows: Vec<VolumeRow>,
}

pub struct VolumeRow {
    pub actor: String,
    pub last_hour: i64,
    pub last_day: i64,
    pub usual: String,
    pub over_budget: i64,
    pub flagged: bool,
}

#[derive(Template)]
#[template(path = "totp.html")]
pub struct TotpPage {
    pub layout: Layout,
    pub active: bool,
    pub pending: bool,
    pub mandatory: bool,
    pub secret: String,
    pub qr_svg: String,
    pub notice: Option<&'static str>,
    pub error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "step_up.html")]
pub struct StepUpPage {
    pub layout: Layout,
    pub next: String,
    pub minutes: u64,
    pub error: Option<&'static str>,
}

pub struct RequestView {
    pub id: String,
    pub mine: bool,
    pub can_decide: bool,
    pub can_reveal: bool,
    pub requester: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    pub created: String,
    pub expires: String,
    pub decided_by: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "approvals.html")]
pub struct ApprovalsPage {
    pub layout: Layout,
    pub mine: Vec<RequestView>,
    pub others: Vec<RequestView>,
    pub enabled: bool,
    pub expiry_min: u64,
    pub notice: Option<&'static str>,
}

pub struct UserView {
    pub id: i64,
    pub username: String,
    pub role: &'static str,
    pub disabled: bool,
    pub created: String,
    pub totp: bool,
}

impl From<User> for UserView {
    fn from(u: User) -> Self {
        Self {
            id: u.id,
            username: u.username,
            role: u.role.as_str(),
            disabled: u.disabled,
            created: format_us(u.created_us),
            totp: false,
        }
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
pub struct AdminUsersPage {
    pub layout: Layout,
    pub users: Vec<UserView>,
    pub roles: Vec<&'static str>,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub totp_mandatory: bool,
}

/// Renders a page as a `200 OK` HTML response that is never cached.
pub fn html<T: Template>(page: &T) -> Result<actix_web::HttpResponse, crate::web::error::AppError> {
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(page.render()?))
}

/// A value from Connect or CloudWatch as the leak guard lets it be shown.
pub struct ShownValue {
    /// "ciphertext", "text" or "masked".
    pub kind: &'static str,
    pub text: String,
    pub summary: Option<CiphertextView>,
    pub findings: usize,
}

pub struct CiphertextView {
    pub field: String,
    pub contact_id: String,
    pub key_ids: String,
    pub bytes: usize,
    pub fingerprint: String,
    pub suite: String,
    pub foreign_context: bool,
}

impl ShownValue {
    pub fn guard(value: &str, sensitive: bool) -> Self {
        use crate::logs::leak_guard::{guard, Guarded};
        let g = guard(value, sensitive);
        let findings = g.findings();
        match g {
            Guarded::Ciphertext(s) => Self {
                kind: "ciphertext",
                text: String::new(),
                summary: Some(CiphertextView {
                    field: s.field,
                    contact_id: s.contact_id,
                    key_ids: s.key_ids.join(", "),
                    bytes: s.bytes,
                    fingerprint: s.fingerprint,
                    suite: s.suite,
                    foreign_context: s.foreign_context,
                }),
                findings,
            },
            Guarded::Text { shown, findings } => Self {
                kind: "text",
                text: shown,
                summary: None,
                findings,
            },
            Guarded::Masked => Self {
                kind: "masked",
                text: String::new(),
                summary: None,
                findings,
            },
        }
    }
}

pub struct ContactRow {
    pub id: String,
    pub channel: String,
    pub initiation_method: String,
    pub initiated: String,
    pub disconnected: String,
}

#[derive(Template)]
#[template(path = "contacts.html")]
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
#[template(path = "contact.html")]
pub struct ContactPage {
    pub layout: Layout,
    pub contact: ContactRow,
    pub initial_contact_id: String,
    pub attributes: Vec<AttributeView>,
    pub findings: usize,
    pub can_decrypt: bool,
    pub approval_required: bool,
}

#[derive(Template)]
#[template(path = "reveal.html")]
pub struct RevealPage {
    pub layout: Layout,
    pub contact_id: String,
    pub field: String,
    pub value: String,
    pub legacy: bool,
    pub audit_seq: i64,
    pub request_id: String,
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
#[template(path = "logs.html")]
pub struct LogsPage {
    pub layout: Layout,
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
#[template(path = "log_stream.html")]
pub struct LogStreamPage {
    pub layout: Layout,
    pub group: String,
    pub stream: String,
    pub events: Vec<EventView>,
    pub findings: usize,
    pub newer: Option<String>,
    pub older: Option<String>,
}

#[derive(Template)]
#[template(path = "log_search.html")]
pub struct LogSearchPage {
    pub layout: Layout,
    pub contact_id: String,
    pub searched: bool,
    pub events: Vec<EventView>,
    pub findings: usize,
}
