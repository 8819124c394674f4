//! `GET /reveals/{grant}`: where an admitted reveal is shown, once. The
//! grant is used up as the page is made (by the person it was made for, in
//! the same sign-in, within a minute); a reload or a second tab says the
//! value was already shown, with no decrypt and no row.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;

use super::admission::RevealError;
use super::grants::GrantError;
use super::service::OpenError;
use super::RevealState;
use crate::auth::csrf;
use crate::auth::principal::Supervisor;
use crate::web::{html, request_meta, AppError, Layout};

#[derive(Template)]
#[template(path = "decrypt/reveal.html")]
pub struct RevealPage {
    pub layout: Layout,
    pub contact_id: String,
    pub field: String,
    /// What the field is called for people ("Card number").
    pub field_label: String,
    /// The value, digits in groups of four for reading aloud.
    pub grouped: String,
    pub legacy: bool,
    /// The Connect key id of a keypad value (Connect-encrypted, unbound).
    pub connect_key: Option<String>,
    pub case_ref: String,
    /// Seconds until the page replaces itself with the contact page.
    pub show_secs: u64,
    /// Where "keep it open" asks for one more showing (its script only).
    pub extend_to: String,
    /// How many more times it may.
    pub extensions: i64,
    pub audit_seq: i64,
    /// The request whose audit row admitted the reveal.
    pub request_id: String,
    /// The page's small script (countdown, copy, no restore from history).
    pub script: String,
}

/// What a field is called on the page.
pub fn field_label(field: &str) -> String {
    match field {
        "creditcard" => "Card number".into(),
        "zipcode" => "ZIP code".into(),
        "encrypted_cc" => "Card number (legacy)".into(),
        "encrypted_zip" => "ZIP code (legacy)".into(),
        other => other.to_owned(),
    }
}

/// A value in groups of four characters when it is all digits (card
/// numbers are read 4-4-4-4), else as it is.
pub fn grouped(value: &str) -> String {
    if value.len() > 5 && value.bytes().all(|b| b.is_ascii_digit()) {
        let groups: Vec<&str> = value
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        groups.join(" ")
    } else {
        value.to_owned()
    }
}

impl From<OpenError> for AppError {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Grant(GrantError::NotFound) => AppError::NotFound,
            OpenError::Grant(GrantError::Used) => AppError::refused(
                StatusCode::GONE,
                "Already shown",
                "This value was already shown once; reloading or another tab does not show it again. Reveal it again from the contact's page if you still need it (that is recorded again).",
            ),
            OpenError::Grant(GrantError::Expired) => AppError::refused(
                StatusCode::GONE,
                "Reveal expired",
                "This reveal was not opened within a minute and has expired; nothing was shown. Reveal it again from the contact's page (that is recorded again).",
            ),
            OpenError::Grant(GrantError::Db(e)) => AppError::Db(e),
            OpenError::Refused(r) => RevealError::Refused(r).into(),
            OpenError::Audit(e) => e.into(),
        }
    }
}

pub async fn reveal_page(
    state: web::Data<RevealState>,
    sup: Supervisor,
    session: actix_session::Session,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let p = sup.principal();
    let meta = request_meta(&req);
    let revealed = state
        .reveals
        .open(&id, p.user_id, &p.generation, meta)
        .await?;
    let page = RevealPage {
        layout: Layout::signed_in("Revealed value", p, csrf::token(&session)?),
        contact_id: revealed.contact_id.to_string(),
        field_label: field_label(&revealed.field),
        field: revealed.field,
        grouped: grouped(revealed.plaintext.expose_str().unwrap_or("(not text)")),
        legacy: revealed.legacy,
        connect_key: revealed.connect_key,
        case_ref: revealed.case_ref,
        show_secs: state.reveals.policy.show_for.as_secs(),
        extend_to: format!("/reveals/{}/extend", id.as_str()),
        extensions: super::grants::MAX_EXTENSIONS,
        audit_seq: revealed.audit_seq,
        request_id: revealed.request_id,
        script: crate::web::assets::url("reveal.js"),
    };
    let mut res = html(&page)?;
    // ASVS 8.2.1 / 8.1.1: never cached, never stored in history.
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store, max-age=0"),
    );
    res.headers_mut()
        .insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_are_grouped_in_fours_and_other_values_are_left_alone() {
        assert_eq!(grouped("4111111111111111"), "4111 1111 1111 1111");
        assert_eq!(grouped("378282246310005"), "3782 8224 6310 005");
        assert_eq!(grouped("12345"), "12345");
        assert_eq!(grouped("(not text)"), "(not text)");
    }
}
