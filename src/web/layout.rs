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

pub struct NavUser {
    pub username: String,
    pub role: &'static str,
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
        Self {
            title: title.to_owned(),
            user: Some(NavUser {
                username: who.nav_username().to_owned(),
                role: who.nav_role(),
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

/// Renders a page as a `200 OK` HTML response that is never cached.
pub fn html<T: Template>(page: &T) -> Result<actix_web::HttpResponse, AppError> {
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(page.render()?))
}
