//! The base layout every page extends, and how a page becomes a response.
//! One askama struct per page, named after its template; askama escapes every
//! value for HTML; no page is built with `format!`.

use askama::Template;

use super::error::AppError;

/// Who is signed in, as the top bar shows them, and where their menu
/// leads. Implemented by the authentication capability's principal: the
/// kernel names no capability's pages.
pub trait NavIdentity {
    fn nav_username(&self) -> &str;
    fn nav_role(&self) -> &'static str;
    /// The menu: the pages this person's role works with.
    fn nav_links(&self) -> Vec<NavLink>;
    /// Their own account's page.
    fn nav_account(&self) -> NavLink;
    /// Where the sign-out form posts.
    fn nav_sign_out(&self) -> &'static str;
}

/// One entry of the top bar's menu.
#[derive(Clone, Debug)]
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    /// A count shown beside it (0: none), and what it counts.
    pub count: i64,
    pub count_label: &'static str,
    /// The element id of the count, for tests and assistive technology.
    pub count_id: &'static str,
}

impl NavLink {
    pub const fn to(href: &'static str, label: &'static str) -> Self {
        Self {
            href,
            label,
            count: 0,
            count_label: "",
            count_id: "",
        }
    }
}

/// What the base layout needs: the page title, who is signed in, and the
/// CSRF token for the sign-out form.
pub struct Layout {
    pub title: String,
    pub user: Option<NavUser>,
    pub csrf: String,
}

#[derive(Clone, Debug)]
pub struct NavUser {
    pub username: String,
    pub role: &'static str,
    pub links: Vec<NavLink>,
    pub account: NavLink,
    pub sign_out: &'static str,
}

impl NavUser {
    pub fn of(who: &impl NavIdentity) -> Self {
        Self {
            username: who.nav_username().to_owned(),
            role: who.nav_role(),
            links: who.nav_links(),
            account: who.nav_account(),
            sign_out: who.nav_sign_out(),
        }
    }
}

/// Who a request is signed in as, and its sign-out form's CSRF token: put
/// in the request's extensions by the sign-in check, so the error page a
/// request ends in keeps the navigation (`middleware::error_pages`).
#[derive(Clone, Debug)]
pub struct SignedInNav {
    pub user: NavUser,
    pub csrf: String,
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
            user: Some(NavUser::of(who)),
            csrf,
        }
    }

    /// An error page's layout: with the navigation and sign-out when the
    /// request was signed in, anonymous otherwise.
    pub fn for_error_page(title: &str, nav: Option<&SignedInNav>) -> Self {
        match nav {
            Some(nav) => Self {
                title: title.to_owned(),
                user: Some(nav.user.clone()),
                csrf: nav.csrf.clone(),
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
