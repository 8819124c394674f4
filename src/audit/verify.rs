//! `audit verify`: the sequence invariant over the whole table, then every
//! row's link and hash recomputed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::{AuditError, AuditLog, AuditRow, GENESIS_HASH, ROW_COLUMNS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    pub seq: i64,
    pub problem: String,
}

/// Sequence numbers over the whole table, from one statement.
#[derive(Debug, Clone, Copy)]
struct Census {
    rows: i64,
    /// NULL, REAL, TEXT or BLOB sequence numbers (SQLite only).
    not_integer: i64,
    /// Smallest and largest integer sequence numbers (head 0 if none).
    min: Option<i64>,
    head: i64,
}

struct RangeResult {
    first_seq: i64,
    last_seq: i64,
    first_prev_hash: Option<String>,
    last_hash: Option<String>,
    checked: u64,
    first_bad: Option<BadRow>,
}

impl RangeResult {
    fn into_report(self) -> VerifyReport {
        VerifyReport {
            rows_checked: self.checked,
            head_seq: self.first_bad.as_ref().map_or(self.last_seq, |b| b.seq),
            first_bad: self.first_bad,
        }
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

impl AuditLog {
    /// What one statement over the whole table says about sequence numbers.
    async fn census(&self) -> Result<Census, AuditError> {
        let row: (i64, i64, Option<i64>, Option<i64>) = match &self.db.sqlite_scan {
            // SQLite stores any value in any column of a rebuilt table:
            // count what is not an integer (NULL, REAL, TEXT, BLOB).
            Some(native) => {
                sqlx::query_as(
                    "SELECT COUNT(*), \
                     COALESCE(SUM(CASE WHEN typeof(seq) = 'integer' THEN 0 ELSE 1 END), 0), \
                     MIN(CASE WHEN typeof(seq) = 'integer' THEN seq END), \
                     MAX(CASE WHEN typeof(seq) = 'integer' THEN seq END) \
                     FROM audit_log",
                )
                .fetch_one(native)
                .await?
            }
            None => {
                sqlx::query_as(
                    "SELECT COUNT(*), COUNT(*) - COUNT(seq), MIN(seq), MAX(seq) FROM audit_log",
                )
                .fetch_one(&self.db.pool)
                .await?
            }
        };
        Ok(Census {
            rows: row.0,
            not_integer: row.1,
            min: row.2,
            head: row.3.unwrap_or(0),
        })
    }

    /// Recomputes the whole chain in sequence order; names the first bad row.
    ///
    /// The invariant, checked over the whole table: the rows are exactly rows
    /// 1 to the head, each once, with integer sequence numbers: no gap, no
    /// NULL, no row below 1 or beyond the head. Then every row's link and
    /// hash is recomputed.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let census = self.census().await?;
        let bad = |seq: i64, rows_checked: u64, problem: String| VerifyReport {
            rows_checked,
            head_seq: seq,
            first_bad: Some(BadRow { seq, problem }),
        };
        if census.not_integer > 0 {
            return Ok(bad(
                0,
                0,
                format!(
                    "{} row(s) with a NULL or non-integer sequence number (REAL, TEXT): outside the chain (rows inserted)",
                    census.not_integer
                ),
            ));
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
                self.verify_range(rows, 1, GENESIS_HASH.to_owned())
                    .await?
                    .into_report()
            }
        };
        if !chain.ok() {
            return Ok(chain);
        }
        // A verified chain is rows 1..=head, each once; anything else in the
        // table (a duplicate the scans could not see) was put there.
        let outside = census
            .rows
            .saturating_sub(i64::try_from(chain.rows_checked).unwrap_or(i64::MAX));
        if outside != 0 || chain.head_seq != head {
            return Ok(bad(
                head.saturating_add(1),
                chain.rows_checked,
                format!("{outside} row(s) outside the chain of rows 1 to {head} (rows inserted)"),
            ));
        }
        Ok(chain)
    }

    /// SQLite hands rows over one at a time from its worker thread, so one
    /// scan is latency-bound: scan four sequence ranges of 1..=head at once,
    /// verify each, then check that the ranges meet and link.
    async fn verify_sqlite_in_ranges(
        &self,
        native: &sqlx::SqlitePool,
        head: i64,
    ) -> Result<VerifyReport, AuditError> {
        const RANGES: usize = 4;
        let width = (head / RANGES as i64).max(1);
        let mut bounds: Vec<(i64, i64)> = Vec::with_capacity(RANGES);
        let mut lo = 1i64;
        while lo <= head {
            let hi = if bounds.len() == RANGES - 1 {
                head
            } else {
                lo.saturating_add(width - 1).min(head)
            };
            bounds.push((lo, hi));
            if hi >= head {
                break;
            }
            lo = hi + 1;
        }
        // One task per range, so decoding and HMACs use every core.
        let scans: Vec<_> = bounds
            .iter()
            .map(|&(lo, hi)| {
                let (log, native) = (self.clone(), native.clone());
                tokio::spawn(async move {
                    // Each range starts from the stored prev_hash of its first
                    // row; the links between ranges are checked below.
                    let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq >= $1 AND seq <= $2 ORDER BY seq");
                    let rows = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).bind(lo).bind(hi).fetch(&native);
                    log.verify_range(rows, lo, String::new()).await
                })
            })
            .collect();
        let mut results = Vec::with_capacity(scans.len());
        for scan in scans {
            results.push(
                scan.await
                    .map_err(|_| AuditError::Internal("verify task failed"))??,
            );
        }
        let mut checked = 0u64;
        let mut prev_last = GENESIS_HASH.to_owned();
        let mut verified_head = 0i64;
        for r in results {
            if r.checked == 0 {
                continue;
            }
            let broken = |problem: String| VerifyReport {
                rows_checked: checked + 1,
                head_seq: r.first_seq,
                first_bad: Some(BadRow {
                    seq: r.first_seq,
                    problem,
                }),
            };
            let expected = verified_head.saturating_add(1);
            if r.first_seq != expected {
                return Ok(broken(format!(
                    "sequence gap: expected row {expected}, found row {} (rows deleted or inserted)",
                    r.first_seq
                )));
            }
            if r.first_prev_hash.as_deref() != Some(prev_last.as_str()) {
                return Ok(broken(format!(
                    "row {} does not link to row {} (rows reordered, replaced or deleted)",
                    r.first_seq, verified_head
                )));
            }
            if let Some(bad) = r.first_bad {
                return Ok(VerifyReport {
                    rows_checked: checked + r.checked,
                    head_seq: bad.seq,
                    first_bad: Some(bad),
                });
            }
            checked += r.checked;
            prev_last = r.last_hash.unwrap_or_default();
            verified_head = r.last_seq;
        }
        Ok(VerifyReport {
            rows_checked: checked,
            head_seq: verified_head,
            first_bad: None,
        })
    }

    /// Verifies consecutive rows starting at `first_seq`. With an empty
    /// `prev_hash`, the first row's stored link is taken as given (the caller
    /// checks it).
    async fn verify_range<S>(
        &self,
        mut rows: S,
        first_seq: i64,
        mut prev_hash: String,
    ) -> Result<RangeResult, AuditError>
    where
        S: futures_util::Stream<Item = Result<AuditRow, sqlx::Error>> + Unpin,
    {
        use futures_util::TryStreamExt as _;
        let mac = Hmac::<Sha256>::new_from_slice(&self.key).map_err(|_| AuditError::Key)?;
        let mut out = RangeResult {
            first_seq,
            last_seq: first_seq.saturating_sub(1),
            first_prev_hash: None,
            last_hash: None,
            checked: 0,
            first_bad: None,
        };
        let mut expected_seq = first_seq;
        while let Some(row) = rows.try_next().await? {
            out.checked += 1;
            if out.first_prev_hash.is_none() {
                out.first_seq = row.seq;
                out.first_prev_hash = Some(row.prev_hash.clone());
                if prev_hash.is_empty() {
                    prev_hash = row.prev_hash.clone();
                }
            }
            let problem = if row.seq != expected_seq {
                Some(format!(
                    "sequence gap: expected row {expected_seq}, found row {} (rows deleted or inserted)",
                    row.seq
                ))
            } else if row.prev_hash != prev_hash {
                Some(format!(
                    "row {} does not link to row {} (rows reordered, replaced or deleted)",
                    row.seq,
                    row.seq.saturating_sub(1)
                ))
            } else {
                let mut m = mac.clone();
                m.update(row.prev_hash.as_bytes());
                m.update(&row.canonical_bytes());
                let expected = hex::encode(m.finalize().into_bytes());
                (!bool::from(expected.as_bytes().ct_eq(row.hash.as_bytes())))
                    .then(|| format!("row {} does not match its hash (edited)", row.seq))
            };
            if let Some(problem) = problem {
                out.first_bad = Some(BadRow {
                    seq: row.seq,
                    problem,
                });
                return Ok(out);
            }
            out.last_seq = row.seq;
            prev_hash = row.hash;
            expected_seq = expected_seq.saturating_add(1);
        }
        out.last_hash = (out.checked > 0).then_some(prev_hash);
        Ok(out)
    }
}
