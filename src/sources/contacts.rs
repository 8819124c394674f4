//! Amazon Connect contacts as the console reads them: the directory trait and search.

use std::collections::BTreeMap;

use lambda_encrypt::context::ContactId;

use super::{Page, SourceError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Voice,
    Chat,
    Task,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Self::Voice, Self::Chat, Self::Task, Self::Email];

    /// The Connect API's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Voice => "VOICE",
            Self::Chat => "CHAT",
            Self::Task => "TASK",
            Self::Email => "EMAIL",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactSummary {
    pub id: ContactId,
    pub initial_contact_id: Option<ContactId>,
    pub channel: String,
    pub initiation_method: String,
    pub initiated_us: Option<i64>,
    pub disconnected_us: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct ContactSearch {
    pub contact_id: Option<ContactId>,
    pub from_us: i64,
    pub to_us: i64,
    pub channel: Option<Channel>,
    pub next_token: Option<String>,
}

/// Where contacts come from: Amazon Connect, or the offline demo.
#[async_trait::async_trait]
pub trait ContactDirectory: Send + Sync {
    async fn search(&self, query: &ContactSearch) -> Result<Page<ContactSummary>, SourceError>;
    async fn describe(&self, id: &ContactId) -> Result<ContactSummary, SourceError>;
    /// The contact attributes, by the contact's *initial* contact id.
    async fn attributes(
        &self,
        initial_contact_id: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError>;
}
