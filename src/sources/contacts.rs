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

/// Connect's `ContactInitiationMethod` values (botocore's Connect model).
pub const INITIATION_METHODS: [&str; 12] = [
    "INBOUND",
    "OUTBOUND",
    "TRANSFER",
    "QUEUE_TRANSFER",
    "CALLBACK",
    "API",
    "DISCONNECT",
    "MONITOR",
    "EXTERNAL_OUTBOUND",
    "WEBRTC_API",
    "AGENT_REPLY",
    "FLOW",
];

/// A customer's phone number or address as Connect reports it. It is
/// personal data: shown and logged only as its last digits.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomerEndpoint(String);

impl CustomerEndpoint {
    pub fn new(address: &str) -> Self {
        Self(address.to_owned())
    }

    /// The last four characters of the address, the rest hidden.
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().filter(|c| !c.is_whitespace()).collect();
        let keep = chars.len().min(4).min(chars.len() / 2);
        let tail: String = chars[chars.len() - keep..].iter().collect();
        format!("\u{2022}\u{2022}\u{2022}\u{2022}{tail}")
    }
}

impl std::fmt::Debug for CustomerEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.masked())
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
    /// The contact's ARN (it names the instance: the console link).
    pub arn: Option<String>,
    pub agent_id: Option<String>,
    pub queue_id: Option<String>,
    /// DescribeContact only.
    pub customer_endpoint: Option<CustomerEndpoint>,
    /// DescribeContact only.
    pub disconnect_reason: Option<String>,
}

impl ContactSummary {
    /// A summary with only the identifying fields set.
    pub fn new(id: ContactId) -> Self {
        Self {
            id,
            initial_contact_id: None,
            channel: String::new(),
            initiation_method: String::new(),
            initiated_us: None,
            disconnected_us: None,
            arn: None,
            agent_id: None,
            queue_id: None,
            customer_endpoint: None,
            disconnect_reason: None,
        }
    }
}

/// A searchable contact attribute criterion: the attribute holds one of `values`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeCriterion {
    pub key: String,
    pub values: Vec<String>,
}

/// What a search is sorted by: the fields SearchContacts' `Sort` accepts
/// that the list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortField {
    #[default]
    Initiated,
    Disconnected,
    Channel,
    Method,
}

impl SortField {
    pub const ALL: [SortField; 4] = [
        Self::Initiated,
        Self::Disconnected,
        Self::Channel,
        Self::Method,
    ];

    /// The name in the page's links (`sort=started`).
    pub fn key(self) -> &'static str {
        match self {
            Self::Initiated => "started",
            Self::Disconnected => "ended",
            Self::Channel => "channel",
            Self::Method => "method",
        }
    }

    /// SearchContacts' `SortableFieldName`.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Initiated => "INITIATION_TIMESTAMP",
            Self::Disconnected => "DISCONNECT_TIMESTAMP",
            Self::Channel => "CHANNEL",
            Self::Method => "INITIATION_METHOD",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.key() == key)
    }
}

/// The order of a search: newest first unless asked otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContactSort {
    pub field: SortField,
    pub ascending: bool,
}

impl ContactSort {
    /// Sorts `items` in place as Connect would (the offline demo).
    pub fn apply(&self, items: &mut [ContactSummary]) {
        items.sort_by(|a, b| {
            let o = match self.field {
                SortField::Initiated => a.initiated_us.cmp(&b.initiated_us),
                SortField::Disconnected => a.disconnected_us.cmp(&b.disconnected_us),
                SortField::Channel => a.channel.cmp(&b.channel),
                SortField::Method => a.initiation_method.cmp(&b.initiation_method),
            };
            if self.ascending {
                o
            } else {
                o.reverse()
            }
        });
    }
}

/// Page sizes a search may ask for (SearchContacts' MaxResults is 1 to 100).
pub const PAGE_SIZES: [usize; 4] = [10, 25, 50, 100];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactSearch {
    /// The order (default: newest first).
    pub sort: ContactSort,
    /// Contacts per page, one of `PAGE_SIZES`; `None`: the directory's own.
    pub page_size: Option<usize>,
    /// An exact id is described directly, whatever the time range.
    pub contact_id: Option<ContactId>,
    pub from_us: i64,
    pub to_us: i64,
    pub channel: Option<Channel>,
    /// Connect agent ids (any of).
    pub agent_ids: Vec<String>,
    /// Connect queue ids (any of).
    pub queue_ids: Vec<String>,
    /// `INITIATION_METHODS` values (any of).
    pub initiation_methods: Vec<String>,
    /// Searchable contact attributes (all must match).
    pub attributes: Vec<AttributeCriterion>,
    pub next_token: Option<String>,
}

/// The instance's agents and queues by id, for choosing and showing them by
/// name (Connect's ListUsers and ListQueues).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryNames {
    /// Agent (user) id -> user name.
    pub agents: BTreeMap<String, String>,
    /// Standard queue id -> queue name.
    pub queues: BTreeMap<String, String>,
}

impl DirectoryNames {
    pub fn agent<'a>(&'a self, id: &'a str) -> &'a str {
        self.agents.get(id).map_or(id, String::as_str)
    }

    pub fn queue<'a>(&'a self, id: &'a str) -> &'a str {
        self.queues.get(id).map_or(id, String::as_str)
    }
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
    /// Contacts per search page.
    fn page_size(&self) -> usize {
        25
    }
    /// As `attributes`, for a reveal: a cache may answer only with a copy
    /// that is seconds old.
    async fn fresh_attributes(
        &self,
        initial_contact_id: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        self.attributes(initial_contact_id).await
    }
    /// The instance's agents and queues by name (none when the directory
    /// does not know them).
    async fn names(&self) -> Result<std::sync::Arc<DirectoryNames>, SourceError> {
        Ok(std::sync::Arc::default())
    }
}
