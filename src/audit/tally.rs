//! Refusals of anonymous clients, counted per address and interval and
//! written as one summary row each, instead of one row per request.

use super::event::clean;
use super::{
    Action, AuditError, AuditEvent, AuditLog, RequestMeta, TALLY_FLUSH_ROWS, TALLY_INTERVAL_US,
};

impl AuditLog {
    /// Counts a refusal of an anonymous client instead of appending a row
    /// for it: an anonymous flood costs one summary row per address per
    /// interval (see `flush_tallies`), not one row per request. The summary
    /// shows the latest refusal's detail as its example.
    pub async fn tally_anonymous(&self, event: &AuditEvent) -> Result<(), AuditError> {
        let now = self.clock.now_us();
        let window = now - now.rem_euclid(TALLY_INTERVAL_US);
        sqlx::query(
            "INSERT INTO refusal_tally (client_addr, window_us, action, refusals, first_us, last_us, sample) \
             VALUES ($1, $2, $3, 1, $4, $4, $5) \
             ON CONFLICT (client_addr, window_us, action) \
             DO UPDATE SET refusals = refusal_tally.refusals + 1, last_us = excluded.last_us, \
             sample = excluded.sample",
        )
        .bind(clean(&event.meta.client_addr, 64))
        .bind(window)
        .bind(event.action.as_str())
        .bind(now)
        .bind(clean(&event.detail, 200))
        .execute(&self.db.pool)
        .await?;
        self.flush_tallies().await?;
        Ok(())
    }

    /// Writes one summary row per address and action for each interval that
    /// is over, and forgets those counts, in one transaction. Returns how
    /// many rows it wrote.
    pub async fn flush_tallies(&self) -> Result<usize, AuditError> {
        let now = self.clock.now_us();
        let current = now - now.rem_euclid(TALLY_INTERVAL_US);
        let due: Option<(i64,)> =
            sqlx::query_as("SELECT window_us FROM refusal_tally WHERE window_us < $1 LIMIT 1")
                .bind(current)
                .fetch_optional(&self.db.pool)
                .await?;
        if due.is_none() {
            return Ok(0);
        }
        let mut change = self.begin_change().await?;
        let tallies: Vec<(String, i64, String, i64, i64, i64, String)> = sqlx::query_as(
            "SELECT client_addr, window_us, action, refusals, first_us, last_us, sample \
             FROM refusal_tally WHERE window_us < $1 \
             ORDER BY window_us, client_addr, action LIMIT $2",
        )
        .bind(current)
        .bind(TALLY_FLUSH_ROWS)
        .fetch_all(&mut *change.conn())
        .await?;
        let mut events = Vec::with_capacity(tallies.len());
        for (addr, window, action, refusals, first_us, last_us, sample) in tallies {
            sqlx::query(
                "DELETE FROM refusal_tally WHERE client_addr = $1 AND window_us = $2 AND action = $3",
            )
            .bind(&addr)
            .bind(window)
            .bind(&action)
            .execute(&mut *change.conn())
            .await?;
            let meta = RequestMeta {
                client_addr: addr,
                ..RequestMeta::default()
            };
            let action = Action::parse(&action).unwrap_or(Action::CsrfRejected);
            events.push(
                AuditEvent::new(action, "anonymous", "", "refused_summary", &meta).detail(format!(
                    "{refusals} refusal(s) of an anonymous client from {} to {}; e.g. {sample}",
                    crate::clock::format_us(first_us),
                    crate::clock::format_us(last_us)
                )),
            );
        }
        let written = events.len();
        change.commit_many(events).await?;
        Ok(written)
    }
}
