//! Counts for the auditor's alerts and charts, computed by the database
//! (never by loading rows): per actor with the newest time, per actor per
//! time bucket, per hour of the day.

use super::{Action, AuditError, AuditLog};

/// Rows of one action per actor in a window, with the newest row's time.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActorCount {
    pub actor: String,
    pub count: i64,
    pub last_us: i64,
}

/// A stretch of time with one UTC offset (a time zone between two of its
/// transitions), from `start_us` to the next stretch's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetSpan {
    pub start_us: i64,
    pub offset_us: i64,
}

const HOUR_US: i64 = 3_600_000_000;

impl AuditLog {
    /// Rows of `action` (and `outcome`, if given) per actor in
    /// `[from_us, to_us)`, with the newest row's time; by actor name.
    pub async fn actor_counts(
        &self,
        action: Action,
        outcome: Option<&str>,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<ActorCount>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT actor, COUNT(*) AS count, MAX(ts_us) AS last_us FROM audit_log \
             WHERE action = $1 AND ts_us >= $2 AND ts_us < $3 AND ($4 = '' OR outcome = $4) \
             GROUP BY actor ORDER BY actor",
        )
        .bind(action.as_str())
        .bind(from_us)
        .bind(to_us)
        .bind(outcome.unwrap_or(""))
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Rows of `action` per actor per bucket: bucket `i` is
    /// `[edges[i], edges[i + 1])` (edges ascending, e.g. a time zone's
    /// midnights). Only non-zero counts, as (actor, bucket, count).
    pub async fn bucket_counts(
        &self,
        action: Action,
        edges: &[i64],
    ) -> Result<Vec<(String, i64, i64)>, AuditError> {
        let [first, .., last] = edges else {
            return Ok(Vec::new());
        };
        // $1 action, $2 first edge, $3 last edge, $4.. the inner edges.
        let inner = &edges[1..edges.len() - 1];
        let mut case = String::from("CASE");
        for (i, _) in inner.iter().enumerate() {
            case.push_str(&format!(" WHEN ts_us < ${} THEN {i}", i + 4));
        }
        if inner.is_empty() {
            case = "0".to_owned();
        } else {
            case.push_str(&format!(" ELSE {} END", inner.len()));
        }
        let sql = format!(
            "SELECT actor, CAST({case} AS BIGINT), COUNT(*) FROM audit_log \
             WHERE action = $1 AND ts_us >= $2 AND ts_us < $3 GROUP BY 1, 2 ORDER BY 1, 2"
        );
        let mut q = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(action.as_str())
            .bind(*first)
            .bind(*last);
        for edge in inner {
            q = q.bind(*edge);
        }
        Ok(q.fetch_all(&self.db.pool).await?)
    }

    /// Rows of `action` in `[from_us, to_us)` per hour of the local day,
    /// with the UTC offset of each span (`spans` ascending, the first one
    /// starting at or before `from_us`).
    pub async fn hour_counts(
        &self,
        action: Action,
        from_us: i64,
        to_us: i64,
        spans: &[OffsetSpan],
    ) -> Result<[i64; 24], AuditError> {
        // $1 action, $2 from, $3 to, then each span's offset and (after the
        // first) its start. Timestamps after 1970 plus an offset stay
        // positive, so integer division is the floor on both databases.
        let mut offset = String::from("CASE");
        let mut n = 4;
        let mut binds = Vec::new();
        for pair in spans.windows(2) {
            offset.push_str(&format!(" WHEN ts_us < ${} THEN ${}", n, n + 1));
            binds.extend([pair[1].start_us, pair[0].offset_us]);
            n += 2;
        }
        if binds.is_empty() {
            // One offset throughout (no WHEN: CASE would not parse).
            offset = format!("${n}");
        } else {
            offset.push_str(&format!(" ELSE ${n} END"));
        }
        binds.push(spans.last().map_or(0, |s| s.offset_us));
        let sql = format!(
            "SELECT CAST(((ts_us + {offset}) / {HOUR_US}) % 24 AS BIGINT), COUNT(*) \
             FROM audit_log WHERE action = $1 AND ts_us >= $2 AND ts_us < $3 GROUP BY 1"
        );
        let mut q = sqlx::query_as::<_, (i64, i64)>(sqlx::AssertSqlSafe(sql))
            .bind(action.as_str())
            .bind(from_us)
            .bind(to_us);
        for b in binds {
            q = q.bind(b);
        }
        let mut hours = [0i64; 24];
        for (hour, count) in q.fetch_all(&self.db.pool).await? {
            if let Some(slot) = usize::try_from(hour).ok().and_then(|h| hours.get_mut(h)) {
                *slot += count;
            }
        }
        Ok(hours)
    }
}
