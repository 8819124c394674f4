//! The base layout every page extends, and how a page becomes a response.
//! One askama struct per page, named after its template; askama escapes every
//! value for HTML; no page is built with `format!`.

use askama::Template;

use super::error::AppError;

/// Who is signed in, as the top bar shows them. Implemented by the
/// authentication capability's principal.
pub trait NavIdentity {
    fn nav_username(&self) -> &str;
    fn nav_role(&self) -> &'static str;
}

/// What the base layout needs: the page title, who is signed in, and the
/// CSRF token for the sign-out form.
pub struct Layout {
    pub title: String,
    pub user: Option<NavUser>,
    pub csrf: String,
}

#[derive(Clone)]
pub struct NavUser {
    pub username: String,
    pub role: &'static str,
    /// Decrypt requests waiting for this person's decision (0: none shown).
    pub open_requests: i64,
}

impl Layout {
    /// The stylesheet's URL, with its content hash (`web::assets`).
    pub fn stylesheet(&self) -> String {
        super::assets::url("app.css")
    }

    pub fn anonymous(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            user: None,
            csrf: String::new(),
        }
    }

    /// An anonymous page with a form (sign-in): it carries the CSRF token.
    pub fn anonymous_with_form(title: &str, csrf: String) -> Self {
        Self {
            title: title.to_owned(),
            user: None,
            csrf,
        }
    }

    pub fn signed_in(title: &str, who: &impl NavIdentity, csrf: String) -> Self {
        // The counts noted when this request's sign-in was checked.
        let open_requests = SIGNED_IN
            .try_with(|cell| {
                cell.borrow()
                    .as_ref()
                    .filter(|(u, _)| u.username == who.nav_username())
                    .map_or(0, |(u, _)| u.open_requests)
            })
            .unwrap_or(0);
        Self {
            title: title.to_owned(),
            user: Some(NavUser {
                username: who.nav_username().to_owned(),
                role: who.nav_role(),
                open_requests,
            }),
            csrf,
        }
    }
}

tokio::task_local! {
    /// Who the request being handled is signed in as, once the
    /// authentication check has said so: error pages keep the navigation.
    static SIGNED_IN: std::cell::RefCell<Option<(NavUser, String)>>;
}

/// Runs a request with room to note who it is signed in as.
pub(crate) fn nav_scope<F: std::future::Future>(
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    SIGNED_IN.scope(std::cell::RefCell::new(None), f)
}

/// Notes who the current request is signed in as (and the CSRF token of the
/// sign-out form), for an error page it may end in.
pub fn remember_signed_in(who: &impl NavIdentity, csrf: String, open_requests: i64) {
    let user = NavUser {
        username: who.nav_username().to_owned(),
        role: who.nav_role(),
        open_requests,
    };
    let _ = SIGNED_IN.try_with(|cell| *cell.borrow_mut() = Some((user, csrf)));
}

impl Layout {
    /// An error page's layout: with the navigation and sign-out when the
    /// request was signed in, anonymous otherwise.
    pub fn for_error_page(title: &str) -> Self {
        match SIGNED_IN
            .try_with(|cell| cell.borrow().clone())
            .ok()
            .flatten()
        {
            Some((user, csrf)) => Self {
                title: title.to_owned(),
                user: Some(user),
                csrf,
            },
            None => Self::anonymous(title),
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

/// Renders a page as a `200 OK` HTML response that is never cached.
pub fn html<T: Template>(page: &T) -> Result<actix_web::HttpResponse, AppError> {
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(page.render()?))
}
