//! `audit verify` on SQLite: four ranges scanned at once, each a batch of
//! rows at a time, encoded by SQLite as one value and checked in place.

use super::verify::{ChainCheck, RangeResult, StoredRow};
use super::{AuditError, AuditLog, BadRow, VerifyReport, GENESIS_HASH};

impl AuditLog {
    /// Scans four sequence ranges of 1..=head at once (SQLite builds each
    /// range's batches on its own connection's thread while the tasks
    /// recompute HMACs), verifies each, then checks that the ranges meet and
    /// link.
    pub(super) async fn verify_sqlite_in_ranges(
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
        // One task per range, so decoding and HMACs use every core. Each
        // range starts from the stored prev_hash of its first row; the links
        // between ranges are checked below.
        let scans: Vec<_> = bounds
            .iter()
            .map(|&(lo, hi)| {
                let (log, native) = (self.clone(), native.clone());
                tokio::spawn(async move { log.verify_sqlite_range(&native, lo, hi).await })
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
        let mut prev_last = GENESIS_HASH.as_bytes().to_vec();
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
            if r.first_prev_hash
                .as_ref()
                .is_some_and(|link| *link != prev_last)
            {
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

    /// Verifies the rows numbered `lo..=hi` on SQLite, a batch at a time:
    /// SQLite encodes each batch of rows as one value (`SQLITE_BATCH`), so
    /// the driver hands over one value per batch instead of seventeen per row,
    /// and the rows are checked in place, without a copy per column.
    async fn verify_sqlite_range(
        &self,
        native: &sqlx::SqlitePool,
        lo: i64,
        hi: i64,
    ) -> Result<RangeResult, AuditError> {
        let mut chain = ChainCheck::new(&self.key, lo, b"")?;
        let mut after = lo.saturating_sub(1);
        loop {
            let (batch,): (Option<Vec<u8>>,) = sqlx::query_as(SQLITE_BATCH)
                .bind(after)
                .bind(hi)
                .bind(SQLITE_BATCH_ROWS)
                .fetch_one(native)
                .await?;
            let Some(batch) = batch else {
                return Ok(chain.finish());
            };
            let mut rest = batch.as_slice();
            while !rest.is_empty() {
                match stored_record(rest) {
                    Ok((row, tail)) => {
                        if !chain.push(&row) {
                            return Ok(chain.finish());
                        }
                        // Each accepted row's number is one more than the
                        // last: the next batch starts strictly later.
                        after = row.seq;
                        rest = tail;
                    }
                    Err((seq, what)) => {
                        chain.unreadable(seq, what);
                        return Ok(chain.finish());
                    }
                }
            }
        }
    }
}

/// Rows per SQLite verify batch (about 350 KB of records).
const SQLITE_BATCH_ROWS: i64 = 1_000;

/// The next rows after `$1`, up to `$2` and at most `$3` of them, as one
/// value: each row a record of its sequence number, its timestamp and the
/// byte length of each text column, in decimal, each followed by a comma,
/// then the text columns' bytes back to back, in `ROW_COLUMNS` order. A row
/// whose timestamp is not an INTEGER or a text column not TEXT (NULL, BLOB)
/// is written as its sequence number and `T`; a sequence number is written
/// as stored, so a REAL one is not a decimal integer. The decoder refuses
/// both. The batch is in the subquery's `ORDER BY seq` order; any other
/// order would show as a sequence gap, never pass.
const SQLITE_BATCH: &str = "SELECT group_concat(rec, '') FROM (SELECT \
    CASE WHEN typeof(ts_us) = 'integer' AND min(typeof(actor), typeof(role), typeof(action), \
    typeof(contact_id), typeof(field), typeof(reason), typeof(outcome), typeof(client_addr), \
    typeof(user_agent), typeof(request_id), typeof(detail), typeof(prev_hash), typeof(hash), \
    typeof(case_ref), typeof(initial_contact_id)) = 'text' \
    THEN concat(concat_ws(',', seq, ts_us, octet_length(actor), octet_length(role), \
    octet_length(action), octet_length(contact_id), octet_length(field), octet_length(reason), \
    octet_length(outcome), octet_length(client_addr), octet_length(user_agent), \
    octet_length(request_id), octet_length(detail), octet_length(prev_hash), octet_length(hash), \
    octet_length(case_ref), octet_length(initial_contact_id), ''), \
    actor, role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, \
    detail, prev_hash, hash, case_ref, initial_contact_id) \
    ELSE concat_ws(',', seq, 'T', '') END AS rec \
    FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3)";

/// Why a record could not be read: its sequence number if it was read, and
/// what is wrong.
type RecordError = (Option<i64>, &'static str);

/// Decodes one record of a `SQLITE_BATCH` value into the row it stores and
/// the rest of the batch. On failure: the row's sequence number if it was
/// read, and what is wrong.
fn stored_record(batch: &[u8]) -> Result<(StoredRow<'_>, &[u8]), RecordError> {
    /// A decimal `i64` as SQLite writes one: no sign but `-`, no leading zero.
    fn integer(digits: &[u8]) -> Option<i64> {
        let magnitude = digits.strip_prefix(b"-").unwrap_or(digits);
        let canonical = match magnitude {
            [] => false,
            [b'0'] => magnitude.len() == digits.len(),
            [first, ..] => *first != b'0' && magnitude.iter().all(u8::is_ascii_digit),
        };
        if !canonical {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    }
    /// The header field up to the next comma; `rest` moves past the comma.
    fn next_field<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
        let all: &'a [u8] = rest;
        let comma = all.iter().position(|b| *b == b',')?;
        *rest = &all[comma + 1..];
        Some(&all[..comma])
    }
    let mut rest = batch;
    let seq = next_field(&mut rest)
        .and_then(integer)
        .ok_or((None, "its sequence number is not an integer"))?;
    let ts_us = match next_field(&mut rest) {
        Some(b"T") => Err((
            Some(seq),
            "a column is NULL or of the wrong type (timestamp INTEGER, the rest TEXT)",
        )),
        field => field
            .and_then(integer)
            .ok_or((Some(seq), "its timestamp is not an integer")),
    }?;
    let mut lengths = [0usize; 15];
    for length in &mut lengths {
        *length = next_field(&mut rest)
            .and_then(integer)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or((Some(seq), "its record is malformed"))?;
    }
    let mut texts: [&[u8]; 15] = [&[]; 15];
    for (text, length) in texts.iter_mut().zip(lengths) {
        if rest.len() < length {
            return Err((Some(seq), "its record is malformed"));
        }
        let (head, tail) = rest.split_at(length);
        *text = head;
        rest = tail;
    }
    let [actor, role, action, contact_id, field, reason, outcome, client_addr, user_agent, request_id, detail, prev_hash, hash, case_ref, initial_contact_id] =
        texts;
    Ok((
        StoredRow {
            seq,
            ts_us,
            texts: [
                actor,
                role,
                action,
                contact_id,
                field,
                reason,
                outcome,
                client_addr,
                user_agent,
                request_id,
                detail,
            ],
            extra: [case_ref, initial_contact_id],
            prev_hash,
            hash,
        },
        rest,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify::canonical_into;
    use crate::audit::AuditRow;

    /// A record as `SQLITE_BATCH` writes it for a row.
    fn record_of(row: &AuditRow) -> Vec<u8> {
        let stored = row.as_stored();
        let mut texts = stored.texts.to_vec();
        texts.extend([stored.prev_hash, stored.hash]);
        texts.extend(stored.extra);
        let mut out = format!("{},{},", row.seq, row.ts_us).into_bytes();
        for t in &texts {
            out.extend(format!("{},", t.len()).bytes());
        }
        for t in &texts {
            out.extend_from_slice(t);
        }
        out
    }

    #[test]
    fn sqlite_records_decode_to_the_stored_columns_and_nothing_else_does() {
        let row = AuditRow {
            seq: 7,
            ts_us: -3,
            actor: "a,b".into(),
            role: "supervisor".into(),
            action: "decrypt".into(),
            contact_id: "c-1".into(),
            field: "creditcard".into(),
            reason: "caf\u{e9}, 12,".into(),
            outcome: "ok".into(),
            client_addr: String::new(),
            user_agent: "agent".into(),
            request_id: "r".into(),
            detail: String::new(),
            prev_hash: "p".repeat(64),
            hash: "h".repeat(64),
            case_ref: "CASE-1,2".into(),
            initial_contact_id: "c-0".into(),
        };
        let mut batch = record_of(&row);
        batch.extend(record_of(&AuditRow {
            seq: 8,
            ..row.clone()
        }));
        let (first, rest) = stored_record(&batch).unwrap();
        assert_eq!(first.seq, 7);
        assert_eq!(first.ts_us, -3);
        let mut canonical = Vec::new();
        canonical_into(&mut canonical, &first);
        assert_eq!(canonical, row.canonical_bytes());
        assert_eq!(
            (first.prev_hash, first.hash),
            (row.prev_hash.as_bytes(), row.hash.as_bytes())
        );
        let (second, rest) = stored_record(rest).unwrap();
        assert_eq!(second.seq, 8);
        assert!(rest.is_empty());

        let whole = record_of(&row);
        let refused: [(&[u8], Option<i64>); 9] = [
            (b"7.5,1,", None),
            (b"007,1,", None),
            (b"-0,1,", None),
            (b"+7,1,", None),
            (b"7,T,", Some(7)),
            (b"7,1.5e3,", Some(7)),
            (b"7,1,2,3,", Some(7)),
            // A record of the 13 columns of the first chain layout: too short.
            (b"7,1,0,0,0,0,0,0,0,0,0,0,0,0,0,", Some(7)),
            (&whole[..whole.len() - 1], Some(7)),
        ];
        for (record, seq) in refused {
            let (at, _) = stored_record(record).map(|_| ()).unwrap_err();
            assert_eq!(at, seq, "{}", String::from_utf8_lossy(record));
        }
    }
}
