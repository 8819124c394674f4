//! `audit verify`: the sequence invariant over the whole table, then every
//! row's link and hash recomputed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::event::CANONICAL_TAG;
use super::{AuditError, AuditLog, AuditRow, GENESIS_HASH, ROW_COLUMNS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub seq: i64,
    pub problem: String,
}

/// Sequence numbers over the whole table, from one statement.
#[derive(Debug, Clone, Copy)]
pub(super) struct Census {
    rows: i64,
    /// NULL, REAL, TEXT or BLOB sequence numbers (SQLite only).
    not_integer: i64,
    /// Smallest and largest integer sequence numbers (head 0 if none).
    min: Option<i64>,
    head: i64,
}

pub(super) struct RangeResult {
    pub(super) first_seq: i64,
    pub(super) last_seq: i64,
    /// The first row's link (None if there is no row, or it was unreadable).
    pub(super) first_prev_hash: Option<Vec<u8>>,
    pub(super) last_hash: Option<Vec<u8>>,
    pub(super) checked: u64,
    pub(super) first_bad: Option<BadRow>,
}

impl RangeResult {
    pub(super) fn into_report(self) -> VerifyReport {
        VerifyReport {
            rows_checked: self.checked,
            head_seq: self.first_bad.as_ref().map_or(self.last_seq, |b| b.seq),
            first_bad: self.first_bad,
        }
    }
}

/// Recomputes the chain over consecutive rows, one row at a time: each
/// row's sequence number follows the one before, its link is the hash of
/// the row before, and its hash matches. Stops at the first bad row.
pub(super) struct ChainCheck {
    mac: Hmac<Sha256>,
    canonical: Vec<u8>,
    expected_seq: i64,
    prev_hash: Vec<u8>,
    out: RangeResult,
}

impl ChainCheck {
    /// From `first_seq`. With an empty `prev_hash`, the first row's stored
    /// link is taken as given (the caller checks it).
    pub(super) fn new(key: &[u8], first_seq: i64, prev_hash: &[u8]) -> Result<Self, AuditError> {
        Ok(Self {
            mac: Hmac::<Sha256>::new_from_slice(key).map_err(|_| AuditError::Key)?,
            canonical: Vec::with_capacity(512),
            expected_seq: first_seq,
            prev_hash: prev_hash.to_vec(),
            out: RangeResult {
                first_seq,
                last_seq: first_seq.saturating_sub(1),
                first_prev_hash: None,
                last_hash: None,
                checked: 0,
                first_bad: None,
            },
        })
    }

    /// Checks the next row; false once a bad row was found.
    pub(super) fn push(&mut self, row: &StoredRow<'_>) -> bool {
        self.out.checked += 1;
        if self.out.checked == 1 {
            self.out.first_seq = row.seq;
            self.out.first_prev_hash = Some(row.prev_hash.to_vec());
            if self.prev_hash.is_empty() {
                self.prev_hash = row.prev_hash.to_vec();
            }
        }
        let problem = if row.seq != self.expected_seq {
            Some(format!(
                "sequence gap: expected row {}, found row {} (rows deleted or inserted)",
                self.expected_seq, row.seq
            ))
        } else if row.prev_hash != self.prev_hash.as_slice() {
            Some(format!(
                "row {} does not link to row {} (rows reordered, replaced or deleted)",
                row.seq,
                row.seq.saturating_sub(1)
            ))
        } else {
            canonical_into(&mut self.canonical, row);
            let mut mac = self.mac.clone();
            mac.update(row.prev_hash);
            mac.update(&self.canonical);
            let mut expected = [0u8; 64];
            let matches = hex::encode_to_slice(mac.finalize().into_bytes(), &mut expected).is_ok()
                && bool::from(expected.as_slice().ct_eq(row.hash));
            (!matches).then(|| format!("row {} does not match its hash (edited)", row.seq))
        };
        if let Some(problem) = problem {
            self.out.first_bad = Some(BadRow {
                seq: row.seq,
                problem,
            });
            return false;
        }
        self.out.last_seq = row.seq;
        self.prev_hash.clear();
        self.prev_hash.extend_from_slice(row.hash);
        self.expected_seq = self.expected_seq.saturating_add(1);
        true
    }

    /// The next row could not be read as a row (a NULL, a REAL or TEXT
    /// sequence number or timestamp, a column of the wrong type).
    pub(super) fn unreadable(&mut self, seq: Option<i64>, what: &str) {
        self.out.checked += 1;
        if self.out.checked == 1 {
            self.out.first_seq = seq.unwrap_or(self.expected_seq);
        }
        let problem = match seq {
            Some(seq) => format!("row {seq} is not a well-formed row: {what} (edited)"),
            None => format!(
                "the row after row {} is not a well-formed row: {what} (inserted or edited)",
                self.expected_seq.saturating_sub(1)
            ),
        };
        self.out.first_bad = Some(BadRow {
            seq: seq.unwrap_or(self.expected_seq),
            problem,
        });
    }

    pub(super) fn finish(mut self) -> RangeResult {
        if self.out.checked > 0 && self.out.first_bad.is_none() {
            self.out.last_hash = Some(self.prev_hash);
        }
        self.out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub rows_checked: u64,
    pub head_seq: i64,
    pub first_bad: Option<BadRow>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }
}

/// One stored row's columns, borrowed: from an [`AuditRow`], or straight
/// from a batch of SQLite records (see `SQLITE_BATCH`).
pub(super) struct StoredRow<'a> {
    pub(super) seq: i64,
    pub(super) ts_us: i64,
    /// actor, role, action, contact_id, field, reason, outcome, client_addr,
    /// user_agent, request_id, detail: the canonical order.
    pub(super) texts: [&'a [u8]; 11],
    /// case_ref, initial_contact_id (the columns added after the first chain layout).
    pub(super) extra: [&'a [u8]; 2],
    pub(super) prev_hash: &'a [u8],
    pub(super) hash: &'a [u8],
}

/// Writes a row's canonical bytes (what the HMAC covers) into `out`.
///
/// The v1 part (tag, sequence number, timestamp, the eleven texts each
/// length-prefixed) is self-delimiting. The issue-16 columns (case
/// reference, initial contact id) follow it, length-prefixed, only when
/// either is non-empty: rows written before they existed (both empty) keep
/// exactly the bytes they were hashed with, and the encoding stays
/// injective (a reader knows where the v1 part ends, then finds either
/// nothing or exactly two length-prefixed values).
pub(super) fn canonical_into(out: &mut Vec<u8>, row: &StoredRow<'_>) {
    out.clear();
    out.extend_from_slice(CANONICAL_TAG);
    out.extend_from_slice(&row.seq.to_be_bytes());
    out.extend_from_slice(&row.ts_us.to_be_bytes());
    for text in row.texts {
        out.extend_from_slice(&(text.len() as u32).to_be_bytes());
        out.extend_from_slice(text);
    }
    if row.extra.iter().any(|t| !t.is_empty()) {
        for text in row.extra {
            out.extend_from_slice(&(text.len() as u32).to_be_bytes());
            out.extend_from_slice(text);
        }
    }
}

impl AuditRow {
    /// The row's columns, borrowed, as the chain check reads them.
    pub(super) fn as_stored(&self) -> StoredRow<'_> {
        StoredRow {
            seq: self.seq,
            ts_us: self.ts_us,
            texts: [
                self.actor.as_bytes(),
                self.role.as_bytes(),
                self.action.as_bytes(),
                self.contact_id.as_bytes(),
                self.field.as_bytes(),
                self.reason.as_bytes(),
                self.outcome.as_bytes(),
                self.client_addr.as_bytes(),
                self.user_agent.as_bytes(),
                self.request_id.as_bytes(),
                self.detail.as_bytes(),
            ],
            extra: [self.case_ref.as_bytes(), self.initial_contact_id.as_bytes()],
            prev_hash: self.prev_hash.as_bytes(),
            hash: self.hash.as_bytes(),
        }
    }
}

impl AuditLog {
    /// What the whole table says about sequence numbers, without reading
    /// its rows on SQLite: `count(*)` and the two ends of the rowid b-tree.
    /// MIN and MAX skip NULLs, and TEXT and BLOB sort above every number, so
    /// integer ends mean no TEXT or BLOB anywhere and no REAL below or above
    /// every integer; `verify`'s scan of 1..=head and the count account for
    /// the rest (a REAL in between, a NULL).
    async fn census(&self) -> Result<Census, AuditError> {
        match &self.db.sqlite_scan {
            Some(native) => {
                let (rows, integer_ends, min, max): (i64, bool, Option<i64>, Option<i64>) =
                    sqlx::query_as(
                        "SELECT n, n = 0 OR (typeof(lo) = 'integer' AND typeof(hi) = 'integer'), \
                         CASE WHEN typeof(lo) = 'integer' THEN lo END, \
                         CASE WHEN typeof(hi) = 'integer' THEN hi END \
                         FROM (SELECT (SELECT count(*) FROM audit_log) AS n, \
                         (SELECT min(seq) FROM audit_log) AS lo, \
                         (SELECT max(seq) FROM audit_log) AS hi)",
                    )
                    .fetch_one(native)
                    .await?;
                if !integer_ends {
                    return self.sqlite_full_census(native).await;
                }
                Ok(Census {
                    rows,
                    not_integer: 0,
                    min,
                    head: max.unwrap_or(0),
                })
            }
            None => {
                let (rows, not_integer, min, max): (i64, i64, Option<i64>, Option<i64>) =
                    sqlx::query_as(
                        "SELECT COUNT(*), COUNT(*) - COUNT(seq), MIN(seq), MAX(seq) FROM audit_log",
                    )
                    .fetch_one(&self.db.pool)
                    .await?;
                Ok(Census {
                    rows,
                    not_integer,
                    min,
                    head: max.unwrap_or(0),
                })
            }
        }
    }

    /// The census from one scan of every row, counting the sequence numbers
    /// that are not integers (NULL, REAL, TEXT, BLOB): run only once the
    /// cheap census or the scan has found something wrong, to name it.
    async fn sqlite_full_census(&self, native: &sqlx::SqlitePool) -> Result<Census, AuditError> {
        let (rows, not_integer, min, max): (i64, i64, Option<i64>, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), \
             COALESCE(SUM(CASE WHEN typeof(seq) = 'integer' THEN 0 ELSE 1 END), 0), \
             MIN(CASE WHEN typeof(seq) = 'integer' THEN seq END), \
             MAX(CASE WHEN typeof(seq) = 'integer' THEN seq END) \
             FROM audit_log",
        )
        .fetch_one(native)
        .await?;
        Ok(Census {
            rows,
            not_integer,
            min,
            head: max.unwrap_or(0),
        })
    }

    /// Recomputes the whole chain in sequence order; names the first bad row.
    ///
    /// The invariant, checked over the whole table: the rows are exactly rows
    /// 1 to the head, each once, with integer sequence numbers: no gap, no
    /// NULL, no row below 1 or beyond the head. In one pass: the census
    /// gives the row count and the ends (on SQLite from the b-trees, not the
    /// rows), the scan of 1..=head sees every row numbered in between and
    /// recomputes its link and hash, and the count must then equal the rows
    /// the scan verified (a row the scan could not see, a NULL one, was put
    /// there).
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let census = self.census().await?;
        let bad = |seq: i64, rows_checked: u64, problem: String| VerifyReport {
            rows_checked,
            head_seq: seq,
            first_bad: Some(BadRow { seq, problem }),
        };
        let not_integer = |rows: i64, named: String| {
            bad(
                0,
                0,
                format!(
                    "{rows} row(s) with a NULL or non-integer sequence number (REAL, TEXT){named}: outside the chain (rows inserted or edited)"
                ),
            )
        };
        if census.not_integer > 0 {
            let named = self.name_not_integer().await?;
            return Ok(not_integer(census.not_integer, named));
        }
        // Rows below 1 come first in sequence order: name them first.
        if let Some(min) = census.min.filter(|m| *m < 1) {
            return Ok(bad(
                min,
                1,
                format!("sequence gap: expected row 1, found row {min} (rows deleted or inserted)"),
            ));
        }
        let head = census.head;
        let chain = match &self.db.sqlite_scan {
            Some(native) => self.verify_sqlite_in_ranges(native, head).await?,
            None => {
                let sql =
                    format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq <= $1 ORDER BY seq");
                let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
                    .bind(head)
                    .fetch(&self.db.pool);
                self.verify_range(rows, 1, GENESIS_HASH.as_bytes())
                    .await?
                    .into_report()
            }
        };
        if !chain.ok() {
            return Ok(chain);
        }
        // A verified chain is rows 1..=head, each once; anything else in the
        // table (a NULL, a duplicate the scan could not see) was put there.
        let outside = census
            .rows
            .saturating_sub(i64::try_from(chain.rows_checked).unwrap_or(i64::MAX));
        if outside != 0 || chain.head_seq != head {
            if let Some(native) = &self.db.sqlite_scan {
                let full = self.sqlite_full_census(native).await?;
                if full.not_integer > 0 {
                    let named = self.name_not_integer().await?;
                    return Ok(not_integer(full.not_integer, named));
                }
            }
            return Ok(bad(
                head.saturating_add(1),
                chain.rows_checked,
                format!("{outside} row(s) outside the chain of rows 1 to {head} (rows inserted)"),
            ));
        }
        Ok(chain)
    }

    /// ", the first with sequence number 'x' (text)": names a row whose
    /// sequence number is not an integer (on SQLite, where a column's type
    /// does not bind its values), so that the report points at it.
    async fn name_not_integer(&self) -> Result<String, AuditError> {
        let Some(native) = &self.db.sqlite_scan else {
            return Ok(String::new());
        };
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT quote(seq), typeof(seq), rowid FROM audit_log \
             WHERE typeof(seq) != 'integer' ORDER BY rowid LIMIT 1",
        )
        .fetch_optional(native)
        .await?;
        Ok(row.map_or_else(String::new, |(value, kind, rowid)| {
            let value: String = crate::text::one_line(&value).chars().take(40).collect();
            format!(", the first with sequence number {value} ({kind}, SQLite rowid {rowid})")
        }))
    }

    /// Verifies consecutive rows starting at `first_seq`. With an empty
    /// `prev_hash`, the first row's stored link is taken as given (the caller
    /// checks it).
    async fn verify_range<S>(
        &self,
        mut rows: S,
        first_seq: i64,
        prev_hash: &[u8],
    ) -> Result<RangeResult, AuditError>
    where
        S: futures_util::Stream<Item = Result<AuditRow, sqlx::Error>> + Unpin,
    {
        use futures_util::TryStreamExt as _;
        let mut chain = ChainCheck::new(&self.key, first_seq, prev_hash)?;
        while let Some(row) = rows.try_next().await? {
            if !chain.push(&row.as_stored()) {
                break;
            }
        }
        Ok(chain.finish())
    }
}
