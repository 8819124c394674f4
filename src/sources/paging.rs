//! Paging state kept on the server. Connect's SearchContacts tokens run to
//! 100,000 characters and CloudWatch's tokens are the service's own: neither
//! belongs in a URL, and a token from a URL could be injected. A page link
//! carries an opaque, random handle instead; the handle names an entry bound
//! to the user and the session that made it, which expires after a short
//! while. This is per process: behind several replicas without sticky
//! sessions a handle made by another replica reads as expired (the user
//! starts the search again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::contacts::ContactSearch;
use super::logs::{ContactLogQuery, LogGroupName, LogStreamName};
use crate::clock::SharedClock;

/// How long a paging handle works after it was last used.
pub const HANDLE_LIFETIME: Duration = Duration::from_secs(15 * 60);
/// Entries kept at most (oldest dropped first).
pub const MAX_ENTRIES: usize = 20_000;

/// Who may use a handle: a user in one session (the session's own random
/// binding, never the session id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub username: String,
    pub session_binding: String,
}

/// What a handle resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// A contact search: `tokens[n]` is the service token of page `n`
    /// (page 0 has none); known pages can be revisited either way.
    Contacts {
        search: ContactSearch,
        tokens: Vec<Option<String>>,
        total: Option<u64>,
        /// The search form's own query string (sorting links start from it).
        query: String,
    },
    /// A contact's flow-log lookup, where its budget ran out.
    FlowLogs { query: ContactLogQuery },
    /// A position in one stream (a forward or backward token).
    Stream {
        group: LogGroupName,
        stream: LogStreamName,
        token: String,
    },
    /// The next page of a group's streams.
    Streams { group: LogGroupName, token: String },
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PagingError {
    #[error("the paging handle is not one this console issued")]
    Unknown,
    #[error("the paging handle has expired")]
    Expired,
    #[error("the paging handle belongs to another user or session")]
    Foreign,
    #[error("the paging handle is for another kind of page")]
    WrongKind,
}

impl PagingError {
    /// The audit outcome.
    pub fn outcome(self) -> &'static str {
        match self {
            Self::Unknown => "paging:unknown",
            Self::Expired => "paging:expired",
            Self::Foreign => "paging:foreign",
            Self::WrongKind => "paging:wrong_kind",
        }
    }
}

struct Entry {
    owner: Owner,
    used_us: i64,
    paging: Paging,
}

pub struct PagingStore {
    clock: SharedClock,
    lifetime_us: i64,
    entries: Mutex<HashMap<String, Entry>>,
}

const SESSION_KEY: &str = "paging_binding";

/// A refused paging handle, as a value: recorded (`access_denied`, naming
/// why and which pages) by [`answer`] at the handler's boundary.
#[derive(Debug)]
pub struct PagingRefusal {
    pub what: &'static str,
    pub error: PagingError,
}

impl crate::audit::Refusal for PagingRefusal {
    fn action(&self) -> crate::audit::Action {
        crate::audit::Action::AccessDenied
    }
    fn outcome(&self) -> std::borrow::Cow<'static, str> {
        self.error.outcome().into()
    }
    fn detail(&self) -> String {
        format!("{} paging handle", self.what)
    }
}

impl From<crate::audit::Recorded<PagingRefusal>> for crate::web::AppError {
    fn from(_: crate::audit::Recorded<PagingRefusal>) -> Self {
        crate::web::AppError::BadRequest(
            "That paging link is not valid: it has expired, or it belongs to another user or \
             session. Start the search again."
                .into(),
        )
    }
}

/// Why a paged page was not served: a refused handle, or a failure.
#[derive(Debug)]
pub enum PageStop {
    Refused(PagingError),
    Failed(crate::web::AppError),
}

impl From<crate::web::AppError> for PageStop {
    fn from(e: crate::web::AppError) -> Self {
        Self::Failed(e)
    }
}

impl From<crate::sources::SourceError> for PageStop {
    fn from(e: crate::sources::SourceError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<crate::audit::AuditError> for PageStop {
    fn from(e: crate::audit::AuditError) -> Self {
        Self::Failed(e.into())
    }
}

impl From<PagingError> for PageStop {
    fn from(e: PagingError) -> Self {
        Self::Refused(e)
    }
}

/// The boundary of a paged handler: a refused handle is recorded once, as
/// `username`'s, and only then answered (a clear 400 that says what to do).
pub async fn answer(
    audit: &crate::audit::AuditLog,
    (username, role): (&str, &str),
    meta: &crate::web::RequestMeta,
    what: &'static str,
    result: Result<actix_web::HttpResponse, PageStop>,
) -> Result<actix_web::HttpResponse, crate::web::AppError> {
    match result {
        Ok(res) => Ok(res),
        Err(PageStop::Failed(e)) => Err(e),
        Err(PageStop::Refused(error)) => {
            let refusal = PagingRefusal { what, error };
            let recorded = audit
                .refuse(refusal, |action, outcome, detail| {
                    crate::audit::AuditEvent::new(action, username, role, outcome, meta)
                        .detail(detail)
                })
                .await?;
            Err(recorded.into())
        }
    }
}

/// The owner of handles made in this request's session: the user, and a
/// random binding kept in the (server-side) session, made on first use.
pub fn owner(session: &actix_session::Session, username: &str) -> Owner {
    let binding = match session.get::<String>(SESSION_KEY) {
        Ok(Some(b)) if is_handle(&b) => b,
        _ => {
            let b = format!("{:032x}", rand::random::<u128>());
            // If the session cannot keep it, handles simply do not resolve
            // on the next request (the user starts again).
            let _ = session.insert(SESSION_KEY, &b);
            b
        }
    };
    Owner {
        username: username.to_owned(),
        session_binding: binding,
    }
}

/// A handle as it may appear in a URL: 32 lowercase hex characters.
pub fn is_handle(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl PagingStore {
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            lifetime_us: i64::try_from(HANDLE_LIFETIME.as_micros()).unwrap_or(i64::MAX),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves plain data: keep using it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `paging` for `owner`; the new handle.
    pub fn put(&self, owner: &Owner, paging: Paging) -> String {
        let now = self.clock.now_us();
        let handle = format!("{:032x}", rand::random::<u128>());
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let lifetime = self.lifetime_us;
            entries.retain(|_, e| now - e.used_us <= lifetime);
            if entries.len() >= MAX_ENTRIES {
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.used_us)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(
            handle.clone(),
            Entry {
                owner: owner.clone(),
                used_us: now,
                paging,
            },
        );
        handle
    }

    /// The paging state behind `handle`, if `owner` may use it.
    pub fn get(&self, owner: &Owner, handle: &str) -> Result<Paging, PagingError> {
        if !is_handle(handle) {
            return Err(PagingError::Unknown);
        }
        let now = self.clock.now_us();
        let mut entries = self.lock();
        let entry = entries.get_mut(handle).ok_or(PagingError::Unknown)?;
        if now - entry.used_us > self.lifetime_us {
            entries.remove(handle);
            return Err(PagingError::Expired);
        }
        if entry.owner != *owner {
            return Err(PagingError::Foreign);
        }
        entry.used_us = now;
        Ok(entry.paging.clone())
    }

    /// Replaces the state behind a handle `owner` may use.
    pub fn update(&self, owner: &Owner, handle: &str, paging: Paging) -> Result<(), PagingError> {
        self.get(owner, handle)?;
        if let Some(entry) = self.lock().get_mut(handle) {
            entry.paging = paging;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::OffsetClock;

    fn owner(user: &str, session: &str) -> Owner {
        Owner {
            username: user.into(),
            session_binding: session.into(),
        }
    }

    fn contacts() -> Paging {
        Paging::Contacts {
            search: ContactSearch::default(),
            tokens: vec![None, Some("t".repeat(20_000))],
            total: Some(60),
            query: String::new(),
        }
    }

    #[test]
    fn a_handle_works_for_its_owner_only_and_until_it_expires() {
        let clock = Arc::new(OffsetClock::default());
        let store = PagingStore::new(clock.clone());
        let sam = owner("sam", "s1");
        let h = store.put(&sam, contacts());
        assert!(is_handle(&h));
        assert_eq!(store.get(&sam, &h), Ok(contacts()));
        assert_eq!(
            store.get(&owner("kim", "s1"), &h),
            Err(PagingError::Foreign)
        );
        assert_eq!(
            store.get(&owner("sam", "s2"), &h),
            Err(PagingError::Foreign)
        );
        assert_eq!(
            store.get(&sam, "0123456789abcdef0123456789abcdef"),
            Err(PagingError::Unknown)
        );
        assert_eq!(store.get(&sam, "<script>"), Err(PagingError::Unknown));
        clock.advance(HANDLE_LIFETIME + Duration::from_secs(1));
        assert_eq!(store.get(&sam, &h), Err(PagingError::Expired));
        assert_eq!(store.get(&sam, &h), Err(PagingError::Unknown));
    }

    #[test]
    fn using_a_handle_keeps_it_alive_and_updates_replace_its_state() {
        let clock = Arc::new(OffsetClock::default());
        let store = PagingStore::new(clock.clone());
        let sam = owner("sam", "s1");
        let h = store.put(&sam, contacts());
        clock.advance(HANDLE_LIFETIME / 2);
        assert!(store.get(&sam, &h).is_ok());
        clock.advance(HANDLE_LIFETIME / 2 + Duration::from_secs(1));
        assert!(store.get(&sam, &h).is_ok());
        let other = Paging::Contacts {
            search: ContactSearch::default(),
            tokens: vec![None],
            total: None,
            query: String::new(),
        };
        store.update(&sam, &h, other.clone()).unwrap();
        assert_eq!(store.get(&sam, &h), Ok(other));
    }
}
