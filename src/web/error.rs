//! One error type for every handler, mapped to a status and a page here.
//! Users see a generic message and the request id; logs keep the cause chain.
//! Capabilities convert their own errors into it (`impl From<TheirError> for
//! AppError` beside their error type), so adding one never edits this file.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template as _;

use super::layout::{ErrorPage, Layout};

type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("page not found")]
    NotFound,
    /// Nobody is signed in: to the sign-in page at `location` (which the
    /// authentication capability makes: `auth::pages::login_required`).
    #[error("sign-in required")]
    LoginRequired { location: String },
    #[error("forbidden for this role")]
    Forbidden,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("the form expired or did not come from this site")]
    Csrf,
    #[error("request too large")]
    TooLarge,
    /// A refusal a capability words itself: its status, title and message.
    #[error("{title}: {message}")]
    Refused {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// The request continues elsewhere first (303), e.g. a step-up.
    #[error("continues at another page")]
    SeeOther(String),
    /// Something the request depends on failed: a 503 with this wording; the
    /// cause is logged, never shown.
    #[error("{title}")]
    Unavailable {
        title: &'static str,
        message: &'static str,
        #[source]
        cause: Cause,
    },
    #[error("database failure")]
    Db(#[from] sqlx::Error),
    #[error("page rendering failed")]
    Template(#[from] askama::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// A refusal with its own status, title and message.
    pub fn refused(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            title,
            message: message.into(),
        }
    }

    fn title_and_message(&self) -> (&'static str, String) {
        match self {
            Self::NotFound => ("Not found", "There is no page at this address.".into()),
            Self::LoginRequired { .. } => ("Sign in", "Please sign in.".into()),
            Self::Forbidden => (
                "Not allowed",
                "Your role does not give access to this page. The attempt has been recorded."
                    .into(),
            ),
            Self::BadRequest(m) => ("Request refused", m.clone()),
            Self::Csrf => (
                "Form expired",
                "This form expired or did not come from this site. Reload the page and try again."
                    .into(),
            ),
            Self::TooLarge => (
                "Request too large",
                "The request was larger than this console accepts.".into(),
            ),
            Self::Refused { title, message, .. } => (title, message.clone()),
            Self::Unavailable { title, message, .. } => (title, (*message).to_owned()),
            Self::SeeOther(_) | Self::Db(_) | Self::Template(_) | Self::Internal(_) => (
                "Something went wrong",
                "The console could not complete this request.".into(),
            ),
        }
    }

    /// The error page, for handlers that adjust the status themselves.
    pub fn error_response_owned(self) -> HttpResponse {
        ResponseError::error_response(&self)
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::LoginRequired { .. } | Self::SeeOther(_) => StatusCode::SEE_OTHER,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Refused { status, .. } => *status,
            Self::Unavailable { .. } | Self::Db(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Template(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Without the request at hand (the page is made again with its
    /// navigation and id by `middleware::error_pages`).
    fn error_response(&self) -> HttpResponse {
        self.page(None, "-")
    }
}

impl AppError {
    /// The answer for this error: a redirect, or the error page with the
    /// request's navigation (when it was signed in) and its id. Server
    /// errors are logged with their cause.
    pub fn page(&self, nav: Option<&super::layout::SignedInNav>, request_id: &str) -> HttpResponse {
        let status = self.status_code();
        let request_id = request_id.to_owned();
        if status.is_server_error() && request_id != "-" {
            tracing::error!(request_id = request_id.as_str(), error = %self, cause = ?std::error::Error::source(self), "request failed");
        }
        let location = match self {
            Self::LoginRequired { location } | Self::SeeOther(location) => Some(location.clone()),
            _ => None,
        };
        if let Some(location) = location {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, location))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let (title, message) = self.title_and_message();
        let page = ErrorPage {
            layout: Layout::for_error_page(title, nav),
            status: status.as_u16(),
            message,
            request_id,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{} {title}", status.as_u16()));
        let mut res = HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body);
        // The page may be rendered after every middleware (a failure below
        // the handlers): it carries the security headers of its own.
        super::middleware::insert_security_headers(res.headers_mut(), false);
        res
    }
}
