//! Dual control (`CALLVAULT_DECRYPT_APPROVAL=required`): a decrypt becomes a
//! request that another supervisor approves; the requester may then reveal
//! the value once, before the request expires. Every transition is one
//! conditional UPDATE, so two racing approvals or reveals cannot both win.

use rand::TryRngCore as _;

use crate::clock::SharedClock;
use crate::db::Db;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DecryptRequest {
    pub id: String,
    pub requester: String,
    pub contact_id: String,
    pub field: String,
    pub reason: String,
    /// The case or ticket reference ("" when none was given).
    pub case_ref: String,
    pub created_us: i64,
    pub expires_us: i64,
    pub status: String,
    pub decided_by: String,
    pub decided_us: i64,
    pub used_us: i64,
    /// Why it was rejected ("" otherwise), for the requester.
    pub decision_note: String,
}

impl DecryptRequest {
    pub fn expired(&self, now_us: i64) -> bool {
        now_us >= self.expires_us
    }

    /// What the pages show: the stored status, or "expired" once past due.
    pub fn shown_status(&self, now_us: i64) -> &str {
        match self.status.as_str() {
            "pending" | "approved" if self.expired(now_us) => "expired",
            s => s,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("there is no such request")]
    NotFound,
    #[error("nobody may approve their own request")]
    SelfApproval,
    #[error("this request belongs to another user")]
    NotRequester,
    #[error("this request has expired")]
    Expired,
    #[error("you already have an open request for this field of this contact")]
    Duplicate,
    #[error("this request is {0}, not {1}")]
    WrongState(String, &'static str),
    #[error("the request store failed")]
    Db(#[from] sqlx::Error),
}

impl ApprovalError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound => "unknown_request",
            Self::SelfApproval => "self_approval",
            Self::NotRequester => "not_requester",
            Self::Expired => "expired",
            Self::Duplicate => "duplicate",
            Self::WrongState(..) => "wrong_state",
            Self::Db(_) => "store_error",
        }
    }
}

const COLUMNS: &str = "id, requester, contact_id, field, reason, case_ref, created_us, expires_us, status, decided_by, decided_us, used_us, decision_note";

/// Request ids are 128 random bits in hex; anything else is not looked up.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[derive(Clone)]
pub struct Approvals {
    db: Db,
    clock: SharedClock,
}

impl Approvals {
    pub fn new(db: Db, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    /// On `conn`: an audited change's transaction.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        &self,
        conn: &mut sqlx::AnyConnection,
        requester: &str,
        contact_id: &str,
        field: &str,
        reason: &str,
        case_ref: &str,
        expiry: std::time::Duration,
    ) -> Result<DecryptRequest, ApprovalError> {
        let mut raw = [0u8; 16];
        rand::rngs::OsRng
            .try_fill_bytes(&mut raw)
            .map_err(|e| sqlx::Error::Protocol(format!("no randomness: {e}")))?;
        let now = self.clock.now_us();
        let request = DecryptRequest {
            id: hex::encode(raw),
            requester: requester.to_owned(),
            contact_id: contact_id.to_owned(),
            field: field.to_owned(),
            reason: reason.to_owned(),
            case_ref: case_ref.to_owned(),
            created_us: now,
            expires_us: now + i64::try_from(expiry.as_micros()).unwrap_or(i64::MAX / 2),
            status: "pending".into(),
            decided_by: String::new(),
            decided_us: 0,
            used_us: 0,
            decision_note: String::new(),
        };
        // One open request per person, contact and field.
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM decrypt_requests WHERE requester = $1 AND contact_id = $2 \
             AND field = $3 AND status IN ('pending', 'approved') AND expires_us > $4",
        )
        .bind(&request.requester)
        .bind(&request.contact_id)
        .bind(&request.field)
        .bind(now)
        .fetch_one(&mut *conn)
        .await?;
        if open > 0 {
            return Err(ApprovalError::Duplicate);
        }
        sqlx::query(
            "INSERT INTO decrypt_requests (id, requester, contact_id, field, reason, case_ref, created_us, expires_us, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
        )
        .bind(&request.id)
        .bind(&request.requester)
        .bind(&request.contact_id)
        .bind(&request.field)
        .bind(&request.reason)
        .bind(&request.case_ref)
        .bind(request.created_us)
        .bind(request.expires_us)
        .execute(&mut *conn)
        .await?;
        Ok(request)
    }

    pub async fn get(&self, id: &str) -> Result<DecryptRequest, ApprovalError> {
        let mut conn = self.db.pool.acquire().await?;
        Self::get_in(&mut conn, id).await
    }

    async fn get_in(
        conn: &mut sqlx::AnyConnection,
        id: &str,
    ) -> Result<DecryptRequest, ApprovalError> {
        if !valid_id(id) {
            return Err(ApprovalError::NotFound);
        }
        sqlx::query_as::<_, DecryptRequest>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM decrypt_requests WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ApprovalError::NotFound)
    }

    /// Requests created in the last day, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<DecryptRequest>, ApprovalError> {
        let since = self.clock.now_us() - 86_400_000_000;
        Ok(sqlx::query_as::<_, DecryptRequest>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM decrypt_requests WHERE created_us >= $1 ORDER BY created_us DESC LIMIT $2"
        )))
        .bind(since)
        .bind(limit)
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Open requests `actor` could decide (someone else's, pending, not
    /// expired): the count in the top bar.
    pub async fn open_for(&self, actor: &str) -> Result<i64, ApprovalError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM decrypt_requests WHERE status = 'pending' AND requester <> $1 AND expires_us > $2",
        )
        .bind(actor)
        .bind(self.clock.now_us())
        .fetch_one(&self.db.pool)
        .await?;
        Ok(n)
    }

    /// Why a transition did not happen, from the row as it is now.
    async fn explain(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &str,
        actor: &str,
        want: &'static str,
        approving: bool,
    ) -> ApprovalError {
        let r = match Self::get_in(conn, id).await {
            Ok(r) => r,
            Err(e) => return e,
        };
        if approving && r.requester == actor {
            ApprovalError::SelfApproval
        } else if !approving && r.requester != actor {
            ApprovalError::NotRequester
        } else if r.status != want {
            ApprovalError::WrongState(r.status, want)
        } else if r.expired(self.clock.now_us()) {
            ApprovalError::Expired
        } else {
            ApprovalError::WrongState(r.status, want)
        }
    }

    /// A different supervisor approves (or rejects) a pending, unexpired
    /// request, on `conn` (an audited change's transaction).
    pub async fn decide(
        &self,
        conn: &mut sqlx::AnyConnection,
        id: &str,
        approver: &str,
        approve: bool,
        note: &str,
    ) -> Result<DecryptRequest, ApprovalError> {
        if !valid_id(id) {
            return Err(ApprovalError::NotFound);
        }
        let now = self.clock.now_us();
        let n = sqlx::query(
            "UPDATE decrypt_requests SET status = $1, decided_by = $2, decided_us = $3, decision_note = $5 \
             WHERE id = $4 AND status = 'pending' AND requester <> $2 AND expires_us > $3",
        )
        .bind(if approve { "approved" } else { "rejected" })
        .bind(approver)
        .bind(now)
        .bind(id)
        .bind(note)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 1 {
            Self::get_in(conn, id).await
        } else {
            Err(self.explain(conn, id, approver, "pending", true).await)
        }
    }

    /// The requester uses an approved, unexpired request: exactly once.
    pub async fn consume(
        &self,
        id: &str,
        requester: &str,
    ) -> Result<DecryptRequest, ApprovalError> {
        if !valid_id(id) {
            return Err(ApprovalError::NotFound);
        }
        let now = self.clock.now_us();
        let mut conn = self.db.pool.acquire().await?;
        let n = sqlx::query(
            "UPDATE decrypt_requests SET status = 'used', used_us = $1 \
             WHERE id = $2 AND requester = $3 AND status = 'approved' AND expires_us > $1",
        )
        .bind(now)
        .bind(id)
        .bind(requester)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if n == 1 {
            Self::get_in(&mut conn, id).await
        } else {
            Err(self
                .explain(&mut conn, id, requester, "approved", false)
                .await)
        }
    }
}

/// The top bar's count of open requests, for supervisors who can decide them.
#[async_trait::async_trait]
impl crate::auth::principal::NavCounts for Approvals {
    async fn open_requests(&self, p: &crate::auth::principal::Principal) -> i64 {
        if p.role != crate::auth::Role::Supervisor {
            return 0;
        }
        match self.open_for(&p.username).await {
            Ok(n) => n,
            Err(e) => {
                // Only a hint: the requests page itself shows the truth.
                tracing::warn!(error = %e, "cannot count open decrypt requests");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_are_looked_up() {
        assert!(valid_id("0123456789abcdef0123456789abcdef"));
        for bad in [
            "",
            "0123456789ABCDEF0123456789abcdef",
            "' OR 1=1 --",
            "0123456789abcdef0123456789abcde",
            "../../etc/passwd",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
