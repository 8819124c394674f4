//! The alerts at the top of the audit log (last 24 hours): reveals refused
//! over budget, leak findings, failed step-ups, and supervisors revealing
//! more than usual (the volume page's rule). Each links to its rows.

use chrono_tz::Tz;

use super::filter::AuditQuery;
use super::{local_time, volume, State};
use crate::audit::Action;
use crate::web::{AppError, DAY_US};

/// One alert: what happened, and the filtered rows behind it.
pub struct AlertView {
    /// `budget`, `leak`, `step_up`, `copied` or `volume` (a CSS class).
    pub kind: &'static str,
    pub text: String,
    /// `/audit?...`, the query already URL-encoded.
    pub link: String,
}

/// The day (in `zone`) 24 hours ago: the alert links' `from`.
fn day_of(us: i64, zone: Tz) -> String {
    local_time(us, zone).chars().take(10).collect()
}

fn link(actor: &str, action: Action, outcome: Option<&str>, from: &str) -> String {
    let q = AuditQuery {
        actors: vec![actor.to_owned()],
        actions: vec![action.as_str().to_owned()],
        outcomes: outcome.map(|o| vec![o.to_owned()]).unwrap_or_default(),
        from: from.to_owned(),
        ..AuditQuery::default()
    };
    format!("/audit?{}", q.query_string())
}

/// Leak findings rows read for the alerts at most (the newest).
const LEAK_ROWS: i64 = 2000;

/// Where a leak finding was found, from its row: the flow log stream (the
/// flow that logged the value), or the contact whose attributes held it.
/// The viewer only opened the page: they are not named.
fn leak_source(row: &crate::audit::AuditRow) -> (String, String) {
    // "<n> in <group> / <stream> at <time>" (flow-log pages).
    if let Some((_, rest)) = row.detail.split_once(" in ") {
        if let Some((place, _)) = rest.rsplit_once(" at ") {
            return (format!("Flow log {place}"), String::new());
        }
    }
    if row.contact_id.is_empty() {
        return ("A console page".to_owned(), String::new());
    }
    (
        format!("Contact {} (its attributes)", row.contact_id),
        row.contact_id.clone(),
    )
}

async fn leak_alerts(
    state: &State,
    zone: Tz,
    since: i64,
    until: i64,
    from: &str,
) -> Result<Vec<AlertView>, AppError> {
    let filter = crate::audit::AuditFilter {
        actions: vec![Action::LeakFound.as_str().to_owned()],
        from_us: Some(since),
        to_us: Some(until),
        ..Default::default()
    };
    let rows = state.audit.query(&filter, None, LEAK_ROWS).await?;
    // Newest first: the first row of a source is its last finding.
    let mut sources: Vec<(String, String, usize, i64)> = Vec::new();
    for row in &rows {
        let (source, contact) = leak_source(row);
        match sources.iter_mut().find(|s| s.0 == source) {
            Some(s) => s.2 += 1,
            None => sources.push((source, contact, 1, row.ts_us)),
        }
    }
    Ok(sources
        .into_iter()
        .map(|(source, contact, count, last)| {
            let q = AuditQuery {
                actions: vec![Action::LeakFound.as_str().to_owned()],
                contact,
                from: from.to_owned(),
                ..AuditQuery::default()
            };
            AlertView {
                kind: "leak",
                text: format!(
                    "{source}: {count} leak finding(s), card-like numbers masked when the page was viewed, last at {}.",
                    local_time(last, zone)
                ),
                link: format!("/audit?{}", q.query_string()),
            }
        })
        .collect())
}

pub(super) async fn alerts(state: &State, zone: Tz) -> Result<Vec<AlertView>, AppError> {
    let now = state.clock.now_us();
    let (since, until) = (now - DAY_US, now + 1);
    let from = day_of(since, zone);
    let mut out = Vec::new();
    let kinds: [(&str, Action, Option<&str>, &str); 3] = [
        (
            "budget",
            Action::DecryptDenied,
            Some("budget_exceeded"),
            "decrypt(s) refused over budget",
        ),
        ("step_up", Action::StepUpFailed, None, "failed step-up(s)"),
        (
            "copied",
            Action::DecryptDenied,
            Some("copied_message"),
            "keypad message(s) copied from another contact refused",
        ),
    ];
    out.extend(leak_alerts(state, zone, since, until, &from).await?);
    for (kind, action, outcome, what) in kinds {
        for c in state
            .audit
            .actor_counts(action, outcome, since, until)
            .await?
        {
            out.push(AlertView {
                kind,
                text: format!(
                    "{}: {} {what}, last at {}.",
                    c.actor,
                    c.count,
                    local_time(c.last_us, zone)
                ),
                link: link(&c.actor, action, outcome, &from),
            });
        }
    }
    for row in volume::decrypt_volume(state, now).await? {
        if volume::unusual_volume(row.last_day, row.usual_per_day) {
            out.push(AlertView {
                kind: "volume",
                text: format!(
                    "{}: {} reveal(s) in 24 hours against a usual {:.1} per day.",
                    row.actor, row.last_day, row.usual_per_day
                ),
                link: link(&row.actor, Action::Decrypt, None, &from),
            });
        }
    }
    Ok(out)
}
