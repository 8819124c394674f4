//! Each supervisor's decrypts against their usual volume, as a table and
//! as two charts (reveals per day per supervisor, reveals per hour of day).

use std::collections::{BTreeSet, HashMap};

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::charts::{self, DayChart, HourChart};
use super::State;
use crate::audit::Action;
use crate::auth::csrf;
use crate::auth::principal::Auditor;
use crate::auth::Role;
use crate::web::{html, AppError, Layout, DAY_US};

#[derive(Template)]
#[template(path = "review/volume.html")]
pub struct VolumePage {
    pub layout: Layout,
    pub budget: String,
    pub zone: String,
    pub rows: Vec<VolumeRow>,
    pub days: DayChart,
    pub hours: HourChart,
}

pub struct VolumeRow {
    pub actor: String,
    pub last_hour: i64,
    pub last_day: i64,
    pub usual_per_day: f64,
    pub usual: String,
    pub over_budget: i64,
    pub flagged: bool,
}

/// The volume rule: more reveals in the last 24 hours than three times the
/// usual day (the average of the 28 days before), and more than five.
pub fn unusual_volume(last_day: i64, usual_per_day: f64) -> bool {
    (last_day as f64) > (3.0 * usual_per_day).max(5.0)
}

/// Every supervisor's reveals (and refusals over budget) at `now`: the
/// volume table, and the audit page's volume alerts.
pub(super) async fn decrypt_volume(state: &State, now: i64) -> Result<Vec<VolumeRow>, AppError> {
    let count = |from: i64, to: i64, action: Action, outcome: Option<&'static str>| {
        let audit = state.audit.clone();
        async move {
            audit
                .counts_by_actor(action, outcome, from, to)
                .await
                .map(|v| v.into_iter().collect::<HashMap<String, i64>>())
        }
    };
    let hour = count(now - 3_600_000_000, now + 1, Action::Decrypt, None).await?;
    let day = count(now - DAY_US, now + 1, Action::Decrypt, None).await?;
    let usual = count(now - 29 * DAY_US, now - DAY_US, Action::Decrypt, None).await?;
    let over = count(
        now - DAY_US,
        now + 1,
        Action::DecryptDenied,
        Some("budget_exceeded"),
    )
    .await?;
    let mut actors: BTreeSet<String> = state
        .users
        .list()
        .await?
        .into_iter()
        .filter(|u| u.role == Role::Supervisor)
        .map(|u| u.username)
        .collect();
    actors.extend(day.keys().cloned());
    actors.extend(over.keys().cloned());
    Ok(actors
        .into_iter()
        .map(|actor| {
            let get = |m: &HashMap<String, i64>| m.get(&actor).copied().unwrap_or(0);
            let usual_per_day = get(&usual) as f64 / 28.0;
            let last_day = get(&day);
            let over_budget = get(&over);
            VolumeRow {
                flagged: over_budget > 0 || unusual_volume(last_day, usual_per_day),
                last_hour: get(&hour),
                last_day,
                usual_per_day,
                usual: format!("{usual_per_day:.1}"),
                over_budget,
                actor,
            }
        })
        .collect())
}

/// Each supervisor's decrypts against their usual volume.
pub async fn volume_page(
    state: State,
    auditor: Auditor,
    session: Session,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let p = auditor.principal();
    state
        .audit
        .append(p.event(&req, Action::AuditView, "ok", "decrypt volume"))
        .await?;
    let now = state.clock.now_us();
    let zone = state.users.time_zone(p.user_id).await?;
    let rows = decrypt_volume(&state, now).await?;
    let days = charts::day_chart(&state.audit, zone, now).await?;
    let hours = charts::hour_chart(&state.audit, zone, now).await?;
    html(&VolumePage {
        layout: Layout::signed_in("Decrypt volume", p, csrf::token(&session)?),
        budget: match state.budget.0 {
            Some(n) => format!("{n} per user per hour"),
            None => "unlimited".into(),
        },
        zone: zone.name().to_owned(),
        rows,
        days,
        hours,
    })
}

#[cfg(test)]
mod tests {
    use super::unusual_volume;

    #[test]
    fn volume_is_unusual_above_three_times_the_usual_day_and_five() {
        assert!(!unusual_volume(5, 0.0));
        assert!(unusual_volume(6, 0.0));
        assert!(!unusual_volume(30, 10.0));
        assert!(unusual_volume(31, 10.0));
    }
}
