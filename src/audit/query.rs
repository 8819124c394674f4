//! Reading the log: the auditor's filters, keyset pages and counts.

use super::{Action, AuditError, AuditLog, AuditRow, ROW_COLUMNS};
use crate::db::Backend;

/// Filters of the auditor's pages and exports. Within a kind the values are
/// alternatives (any of these actors), across kinds all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Actor names, matched in any letter case.
    pub actors: Vec<String>,
    /// Action names (`Action::as_str`).
    pub actions: Vec<String>,
    pub outcomes: Vec<String>,
    /// A prefix of the contact id or of the initial contact id.
    pub contact_prefix: Option<String>,
    pub from_us: Option<i64>,
    /// Exclusive.
    pub to_us: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The smallest string greater than every string that starts with `prefix`
/// (in code point order, which is UTF-8 byte order): `prefix` with its last
/// character replaced by the next one. `None` when every character is the
/// last one (then every string not below `prefix` starts with it).
pub(crate) fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

struct Clauses {
    sql: Vec<String>,
    binds: Vec<Bind>,
    next: usize,
}

impl Clauses {
    fn placeholder(&mut self, bind: Bind) -> String {
        let p = format!("${}", self.next);
        self.next += 1;
        self.binds.push(bind);
        p
    }

    /// `expr IN (wrap($a), wrap($b), ...)` for a non-empty list.
    fn any_of(&mut self, expr: &str, wrap: &str, values: &[String]) {
        if values.is_empty() {
            return;
        }
        let list: Vec<String> = values
            .iter()
            .map(|v| wrap.replace('?', &self.placeholder(Bind::Text(v.clone()))))
            .collect();
        self.sql.push(format!("{expr} IN ({})", list.join(", ")));
    }
}

impl AuditFilter {
    /// `WHERE ...` with `$N` placeholders starting at `first`.
    fn where_clause(&self, first: usize, backend: Backend) -> (String, Vec<Bind>) {
        let mut c = Clauses {
            sql: Vec::new(),
            binds: Vec::new(),
            next: first,
        };
        c.any_of("lower(actor)", "lower(?)", &self.actors);
        c.any_of("action", "?", &self.actions);
        c.any_of("outcome", "?", &self.outcomes);
        if let Some(prefix) = self.contact_prefix.as_deref().filter(|p| !p.is_empty()) {
            // A range in byte order (index-friendly; no LIKE wildcards to
            // escape): PostgreSQL compares in "C" order whatever the
            // database's collation, SQLite's TEXT is BINARY already.
            let collate = match backend {
                Backend::Postgres => " COLLATE \"C\"",
                Backend::Sqlite => "",
            };
            let lo = c.placeholder(Bind::Text(prefix.to_owned()));
            let hi = prefix_successor(prefix).map(|s| c.placeholder(Bind::Text(s)));
            let range = |column: &str| match &hi {
                Some(hi) => format!("({column}{collate} >= {lo} AND {column}{collate} < {hi})"),
                None => format!("{column}{collate} >= {lo}"),
            };
            c.sql.push(format!(
                "({} OR {})",
                range("contact_id"),
                range("initial_contact_id")
            ));
        }
        if let Some(t) = self.from_us {
            let p = c.placeholder(Bind::Int(t));
            c.sql.push(format!("ts_us >= {p}"));
        }
        if let Some(t) = self.to_us {
            let p = c.placeholder(Bind::Int(t));
            c.sql.push(format!("ts_us < {p}"));
        }
        if c.sql.is_empty() {
            ("1 = 1".to_owned(), c.binds)
        } else {
            (c.sql.join(" AND "), c.binds)
        }
    }
}

impl AuditLog {
    /// Decrypt attempts (revealed or failed) by `actor` since `since_us`,
    /// in one indexed count.
    pub async fn decrypt_attempts_since(
        &self,
        actor: &str,
        since_us: i64,
    ) -> Result<i64, AuditError> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_log WHERE actor = $1 AND action IN ($2, $3) AND ts_us >= $4",
        )
        .bind(actor)
        .bind(Action::Decrypt.as_str())
        .bind(Action::DecryptFailed.as_str())
        .bind(since_us)
        .fetch_one(&self.db.pool)
        .await?;
        Ok(n)
    }

    /// When `actor`'s decrypt attempt number `nth` (0 is the oldest) since
    /// `since_us` was made, if there are that many.
    pub async fn decrypt_attempt_at(
        &self,
        actor: &str,
        since_us: i64,
        nth: i64,
    ) -> Result<Option<i64>, AuditError> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT ts_us FROM audit_log WHERE actor = $1 AND action IN ($2, $3) AND ts_us >= $4 \
             ORDER BY ts_us ASC LIMIT 1 OFFSET $5",
        )
        .bind(actor)
        .bind(Action::Decrypt.as_str())
        .bind(Action::DecryptFailed.as_str())
        .bind(since_us)
        .bind(nth.max(0))
        .fetch_optional(&self.db.pool)
        .await?;
        Ok(row.map(|(ts,)| ts))
    }

    /// Rows of `action` per actor in `[from_us, to_us)`.
    pub async fn counts_by_actor(
        &self,
        action: Action,
        outcome: Option<&str>,
        from_us: i64,
        to_us: i64,
    ) -> Result<Vec<(String, i64)>, AuditError> {
        Ok(sqlx::query_as(
            "SELECT actor, COUNT(*) FROM audit_log WHERE action = $1 AND ts_us >= $2 AND ts_us < $3 \
             AND ($4 = '' OR outcome = $4) GROUP BY actor ORDER BY actor",
        )
        .bind(action.as_str())
        .bind(from_us)
        .bind(to_us)
        .bind(outcome.unwrap_or(""))
        .fetch_all(&self.db.pool)
        .await?)
    }

    /// Chain head: (seq, hash, ts_us) of the newest row.
    pub async fn head(&self) -> Result<Option<(i64, String, i64)>, AuditError> {
        Ok(
            sqlx::query_as("SELECT seq, hash, ts_us FROM audit_log ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&self.db.pool)
                .await?,
        )
    }

    /// One row by sequence number.
    pub async fn row(&self, seq: i64) -> Result<Option<AuditRow>, AuditError> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM audit_log WHERE seq = $1");
        Ok(sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql))
            .bind(seq)
            .fetch_optional(&self.db.pool)
            .await?)
    }

    /// How many rows match `filter` (the audit page's row count).
    pub async fn count(&self, filter: &AuditFilter) -> Result<i64, AuditError> {
        let (clause, binds) = filter.where_clause(1, self.db.backend);
        let sql = format!("SELECT COUNT(*) FROM audit_log WHERE {clause}");
        let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.fetch_one(&self.db.pool).await?.0)
    }

    /// Newest first, `limit` rows, optionally before a sequence number (keyset paging).
    pub async fn query(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let (mut clause, mut binds) = filter.where_clause(1, self.db.backend);
        if let Some(before) = before_seq {
            clause.push_str(&format!(" AND seq < ${}", binds.len() + 1));
            binds.push(Bind::Int(before));
        }
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE {clause} ORDER BY seq DESC LIMIT ${}",
            binds.len() + 1
        );
        let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.bind(limit).fetch_all(&self.db.pool).await?)
    }

    /// Oldest first, rows after `after_seq` (export paging).
    pub async fn page_after(
        &self,
        filter: &AuditFilter,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let (clause, binds) = filter.where_clause(2, self.db.backend);
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM audit_log WHERE seq > $1 AND {clause} ORDER BY seq LIMIT ${}",
            binds.len() + 2
        );
        let mut q = sqlx::query_as::<_, AuditRow>(sqlx::AssertSqlSafe(sql)).bind(after_seq);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        Ok(q.bind(limit).fetch_all(&self.db.pool).await?)
    }
}
