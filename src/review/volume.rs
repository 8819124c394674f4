//! Each supervisor's decrypts against their usual volume.

use std::collections::{BTreeSet, HashMap};

use actix_session::Session;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::State;
use crate::audit::{Action, AuditEvent};
use crate::auth::csrf;
use crate::auth::principal::Auditor;
use crate::auth::Role;
use crate::web::{html, request_meta, AppError, Layout, DAY_US};

#[derive(Template)]
#[template(path = "review/volume.html")]
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
        .append(
            AuditEvent::new(
                Action::AuditView,
                &p.username,
                p.role.as_str(),
                "ok",
                &request_meta(&req),
            )
            .detail("decrypt volume"),
        )
        .await?;
    let now = state.clock.now_us();
    let count = |from: i64, to: i64, action: Action, outcome: Option<&'static str>| {
        let audit = state.audit.clone();
        async move { audit.counts_by_actor(action, outcome, from, to).await }
    };
    let hour: HashMap<_, _> = count(now - 3_600_000_000, now + 1, Action::Decrypt, None)
        .await?
        .into_iter()
        .collect();
    let day: HashMap<_, _> = count(now - DAY_US, now + 1, Action::Decrypt, None)
        .await?
        .into_iter()
        .collect();
    let usual: HashMap<_, _> = count(now - 29 * DAY_US, now - DAY_US, Action::Decrypt, None)
        .await?
        .into_iter()
        .collect();
    let over: HashMap<_, _> = count(
        now - DAY_US,
        now + 1,
        Action::DecryptDenied,
        Some("budget_exceeded"),
    )
    .await?
    .into_iter()
    .collect();
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
    let rows = actors
        .into_iter()
        .map(|actor| {
            let get = |m: &HashMap<String, i64>| m.get(&actor).copied().unwrap_or(0);
            let usual_per_day = get(&usual) as f64 / 28.0;
            let last_day = get(&day);
            let over_budget = get(&over);
            VolumeRow {
                flagged: over_budget > 0 || (last_day as f64) > (3.0 * usual_per_day).max(5.0),
                last_hour: get(&hour),
                last_day,
                usual: format!("{usual_per_day:.1}"),
                over_budget,
                actor,
            }
        })
        .collect();
    html(&VolumePage {
        layout: Layout::signed_in("Decrypt volume", p, csrf::token(&session)?),
        budget: match state.budget.0 {
            Some(n) => format!("{n} per user per hour"),
            None => "unlimited".into(),
        },
        rows,
    })
}
