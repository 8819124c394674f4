//! Reading the log: the auditor's filters, keyset pages and counts.

use super::{Action, AuditError, AuditLog, AuditRow, ROW_COLUMNS};

/// Filters of the auditor's pages and exports.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub contact_id: Option<String>,
    pub from_us: Option<i64>,
    pub to_us: Option<i64>,
}

enum Bind {
    Text(String),
    Int(i64),
}

impl AuditFilter {
    /// `WHERE ...` with `$N` placeholders starting after `first - 1`.
    fn where_clause(&self, first: usize) -> (String, Vec<Bind>) {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        let mut n = first;
        let mut push = |sql: &str, bind: Bind, clauses: &mut Vec<String>, binds: &mut Vec<Bind>| {
            clauses.push(sql.replace('?', &format!("${n}")));
            binds.push(bind);
            n += 1;
        };
        if let Some(a) = &self.actor {
            push("actor = ?", Bind::Text(a.clone()), &mut clauses, &mut binds);
        }
        if let Some(a) = &self.action {
            push(
                "action = ?",
                Bind::Text(a.clone()),
                &mut clauses,
                &mut binds,
            );
        }
        if let Some(c) = &self.contact_id {
            push(
                "contact_id = ?",
                Bind::Text(c.clone()),
                &mut clauses,
                &mut binds,
            );
        }
        if let Some(t) = self.from_us {
            push("ts_us >= ?", Bind::Int(t), &mut clauses, &mut binds);
        }
        if let Some(t) = self.to_us {
            push("ts_us < ?", Bind::Int(t), &mut clauses, &mut binds);
        }
        if clauses.is_empty() {
            ("1 = 1".to_owned(), binds)
        } else {
            (clauses.join(" AND "), binds)
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

    /// Newest first, `limit` rows, optionally before a sequence number (keyset paging).
    pub async fn query(
        &self,
        filter: &AuditFilter,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, AuditError> {
        let (mut clause, mut binds) = filter.where_clause(1);
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
        let (clause, binds) = filter.where_clause(2);
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
