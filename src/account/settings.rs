//! The signed-in user's own settings: the time zone the audit pages show
//! times and read days in (exports stay UTC). A change and its audit row
//! commit together; a zone that does not exist is refused and recorded.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::State;
use crate::audit::Action;
use crate::auth::csrf;
use crate::auth::principal::{Principal, SignedIn};
use crate::auth::users::parse_time_zone;
use crate::web::{html, AppError, Layout};

/// Characters of a refused zone name repeated in the message and the log.
const SHOWN_CHARS: usize = 40;

#[derive(Template)]
#[template(path = "account/settings.html")]
pub struct SettingsPage {
    pub layout: Layout,
    pub zone: String,
    pub zones: Vec<&'static str>,
    pub notice: Option<String>,
}

#[derive(Deserialize)]
pub struct SettingsForm {
    time_zone: Option<String>,
}

async fn view(
    state: &State,
    session: &Session,
    p: &Principal,
    notice: Option<String>,
) -> Result<HttpResponse, AppError> {
    let zone = state.users.time_zone(p.user_id).await?;
    html(&SettingsPage {
        layout: Layout::signed_in("Settings", p, csrf::token(session)?),
        zone: zone.name().to_owned(),
        zones: chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect(),
        notice,
    })
}

pub async fn settings_page(
    state: State,
    user: SignedIn,
    session: Session,
) -> Result<HttpResponse, AppError> {
    view(&state, &session, user.principal(), None).await
}

/// A refused value as the message and the audit row repeat it: one line,
/// cut short (pages escape it).
fn shown(value: &str) -> String {
    let line = crate::text::one_line(value);
    let mut out: String = line.chars().take(SHOWN_CHARS).collect();
    if line.chars().count() > SHOWN_CHARS {
        out.push('…');
    }
    out
}

pub async fn save_settings(
    state: State,
    user: SignedIn,
    session: Session,
    req: HttpRequest,
    form: web::Form<SettingsForm>,
) -> Result<HttpResponse, AppError> {
    let p = user.principal();
    let asked = form.into_inner().time_zone.unwrap_or_default();
    let Some(zone) = parse_time_zone(&asked) else {
        let message = format!(
            "\"{}\" is not a time zone this console knows: choose one from the list (IANA names such as Europe/Paris).",
            shown(&asked)
        );
        state
            .audit
            .append(p.event(
                &req,
                Action::SettingChange,
                "refused",
                &format!("time zone: {message}"),
            ))
            .await?;
        return Err(AppError::refused(
            StatusCode::BAD_REQUEST,
            "Time zone refused",
            message,
        ));
    };
    let mut change = state.audit.begin_change().await?;
    let before = match state
        .users
        .set_time_zone_in(change.conn(), p.user_id, zone)
        .await
    {
        Ok(before) => before,
        Err(e) => {
            change.rollback().await;
            return Err(e.into());
        }
    };
    change
        .commit(p.event(
            &req,
            Action::SettingChange,
            "ok",
            &format!("time zone: {before} -> {}", zone.name()),
        ))
        .await?;
    let mut res = view(
        &state,
        &session,
        p,
        Some(format!("Times are now shown in {}.", zone.name())),
    )
    .await?;
    *res.status_mut() = StatusCode::OK;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn refused_values_are_repeated_on_one_line_and_short() {
        assert_eq!(shown("Mars/Olympus"), "Mars/Olympus");
        assert_eq!(shown("a\nb\u{2028}c\u{202E}"), "a b c");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 41);
    }
}
