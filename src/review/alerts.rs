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
    /// `budget`, `leak`, `step_up` or `volume` (a CSS class).
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
        (
            "leak",
            Action::LeakFound,
            None,
            "leak finding(s) (card-like numbers masked on pages they opened)",
        ),
        ("step_up", Action::StepUpFailed, None, "failed step-up(s)"),
    ];
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
