//! A form that a step-up or a new sign-in interrupted, kept in the session
//! (server-side: the cookie holds only the session's key) for the same person,
//! so that they do not type it again. Never in a URL, never for anyone else.
//! It holds what the person typed into a form (a reason, a case reference),
//! never a revealed value.

use actix_session::Session;

use super::principal::Principal;

/// Session key of the kept form.
pub const KEPT_FORM_KEY: &str = "kept_form";

/// How long a kept form is offered again.
pub const KEPT_FOR_US: i64 = 15 * 60 * 1_000_000;

/// What was typed, on which page, by whom, and when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeptForm {
    pub user_id: i64,
    /// The page the form is on (a local path).
    pub path: String,
    pub fields: Vec<(String, String)>,
    pub at_us: i64,
}

impl KeptForm {
    /// Keeps `fields` of the form on `path` for `p`, replacing what was kept.
    pub fn keep(
        session: &Session,
        p: &Principal,
        path: &str,
        fields: Vec<(String, String)>,
        now_us: i64,
    ) {
        let kept = Self {
            user_id: p.user_id,
            path: path.to_owned(),
            fields,
            at_us: now_us,
        };
        if let Err(e) = session.insert(KEPT_FORM_KEY, kept) {
            // Only a convenience: the person types it again.
            tracing::warn!(error = %e, "cannot keep a form in the session");
        }
    }

    /// The form kept for `p` on `path`, if it is still fresh.
    pub fn for_page(session: &Session, p: &Principal, path: &str, now_us: i64) -> Option<Self> {
        let kept = session.get::<Self>(KEPT_FORM_KEY).ok().flatten()?;
        kept.usable_by(p.user_id, now_us)
            .then_some(kept)
            .filter(|k| k.path == path)
    }

    /// Whether `user_id` may have this form back at `now_us`.
    pub fn usable_by(&self, user_id: i64, now_us: i64) -> bool {
        self.user_id == user_id && self.at_us <= now_us && now_us - self.at_us <= KEPT_FOR_US
    }

    pub fn forget(session: &Session) {
        session.remove(KEPT_FORM_KEY);
    }

    /// The value typed into `name`, if any.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// At sign-in the session starts afresh: what the old session kept
    /// survives only for the same person, still fresh.
    pub fn carried_over(session: &Session, user_id: i64, now_us: i64) -> Option<Self> {
        session
            .get::<Self>(KEPT_FORM_KEY)
            .ok()
            .flatten()
            .filter(|k| k.usable_by(user_id, now_us))
    }

    /// Puts a carried-over form into the new session.
    pub fn restore(self, session: &Session) {
        if let Err(e) = session.insert(KEPT_FORM_KEY, self) {
            tracing::warn!(error = %e, "cannot keep a form in the session");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(user_id: i64, at_us: i64) -> KeptForm {
        KeptForm {
            user_id,
            path: "/contacts/c-1".into(),
            fields: vec![("reason".into(), "chargeback".into())],
            at_us,
        }
    }

    #[test]
    fn a_kept_form_is_for_the_same_person_and_only_for_a_while() {
        let k = kept(7, 1_000);
        assert!(k.usable_by(7, 1_000 + KEPT_FOR_US));
        assert!(!k.usable_by(7, 1_001 + KEPT_FOR_US));
        assert!(!k.usable_by(8, 2_000), "another user never gets it");
        assert!(!k.usable_by(7, 999), "not from the future");
        assert_eq!(k.field("reason"), Some("chargeback"));
        assert_eq!(k.field("case_ref"), None);
    }
}
