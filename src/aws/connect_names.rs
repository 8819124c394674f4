//! The instance's agents and queues by name: ListUsers and ListQueues
//! (standard queues), every page up to a bound, each call in its turn of the
//! client-side quota. A supervisor chooses and reads them by name; the
//! search still sends Connect their ids.

use std::collections::BTreeMap;

use aws_sdk_connect::types::QueueType;

use super::connect::AwsConnect;
use super::source_error;
use crate::sources::SourceError;

/// Entries per ListUsers/ListQueues page (the API's maximum).
const PER_PAGE: i32 = 1000;
/// Pages read at most per list: 10,000 agents or queues.
const MAX_PAGES: usize = 10;

impl AwsConnect {
    /// Agent (user) id -> user name.
    pub(super) async fn list_users(&self) -> Result<BTreeMap<String, String>, SourceError> {
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let _turn = self.limiter.turn("ListUsers").await?;
            let page = self
                .client
                .list_users()
                .instance_id(&self.instance_id)
                .max_results(PER_PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| source_error(&e, token.is_some()))?;
            for u in page.user_summary_list() {
                if let (Some(id), Some(name)) = (u.id(), u.username()) {
                    out.insert(id.to_owned(), name.to_owned());
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }

    /// Standard queue id -> queue name (agent queues are not chosen by name).
    pub(super) async fn list_queues(&self) -> Result<BTreeMap<String, String>, SourceError> {
        let mut out = BTreeMap::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let _turn = self.limiter.turn("ListQueues").await?;
            let page = self
                .client
                .list_queues()
                .instance_id(&self.instance_id)
                .queue_types(QueueType::Standard)
                .max_results(PER_PAGE)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| source_error(&e, token.is_some()))?;
            for q in page.queue_summary_list() {
                if let (Some(id), Some(name)) = (q.id(), q.name()) {
                    out.insert(id.to_owned(), name.to_owned());
                }
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(out)
    }
}
