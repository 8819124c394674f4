//! CloudWatch flow logs as the console reads them: the store trait, names and pages.

use lambda_encrypt::context::ContactId;

use super::{Page, SourceError};

/// A log group name as CloudWatch allows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogGroupName(String);

impl LogGroupName {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 512
            && s.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/' | b'#')
            });
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A log stream name: CloudWatch forbids ':' and '*'; control characters,
/// path tricks and markup are refused here too.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogStreamName(String);

impl LogStreamName {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 512
            && !s.contains("..")
            && s.chars()
                .all(|c| !c.is_control() && !matches!(c, ':' | '*' | '<' | '>' | '"' | '\\'));
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    pub name: String,
    pub last_event_us: Option<i64>,
    pub stored_bytes: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub timestamp_us: i64,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsPage {
    pub events: Vec<LogEvent>,
    /// Token for newer events (None at the end).
    pub forward_token: Option<String>,
    /// Token for older events (None at the start).
    pub backward_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLogEvent {
    pub group: String,
    pub stream: String,
    pub event: LogEvent,
}

pub const EVENTS_PER_PAGE: i32 = 50;

/// How far before a contact's initiation and after its disconnect its flow
/// logs are looked for (delivery and clock skew).
pub const CONTACT_WINDOW_MARGIN_US: i64 = 15 * 60 * 1_000_000;

/// Where a flow-log lookup for one contact goes on: the configured group it
/// reached (index) and the service's token in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCursor {
    pub group: usize,
    pub token: Option<String>,
}

/// The flow-log lookup of one contact, bounded by its own time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactLogQuery {
    pub contact: ContactId,
    /// The window searched (µs since the epoch), margins included.
    pub from_us: i64,
    pub to_us: i64,
    /// Service pages read at most by this call.
    pub page_budget: usize,
    /// Where an earlier call stopped.
    pub resume: Option<LogCursor>,
}

impl ContactLogQuery {
    /// The window from a contact's initiation to its disconnect (or `now`
    /// while it is open), with the margin either side.
    pub fn for_contact(
        contact: ContactId,
        initiated_us: i64,
        disconnected_us: Option<i64>,
        now_us: i64,
        page_budget: usize,
    ) -> Self {
        let end = disconnected_us.unwrap_or(now_us).max(initiated_us);
        Self {
            contact,
            from_us: initiated_us - CONTACT_WINDOW_MARGIN_US,
            to_us: end + CONTACT_WINDOW_MARGIN_US,
            page_budget: page_budget.max(1),
            resume: None,
        }
    }
}

/// A contact's flow-log events, each delivery shown once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactLogs {
    pub events: Vec<ContactLogEvent>,
    /// Set when the page budget ran out before the service said the end.
    pub more: Option<LogCursor>,
    /// Repeated deliveries (same stream, time and message) left out.
    pub duplicates: usize,
}

/// Drops repeated deliveries (same stream, time and message), keeping order;
/// how many were dropped.
pub fn drop_duplicates<T>(
    items: &mut Vec<T>,
    key: impl Fn(&T) -> (String, i64, String),
    seen: &mut std::collections::HashSet<(String, i64, String)>,
) -> usize {
    let before = items.len();
    items.retain(|item| seen.insert(key(item)));
    before - items.len()
}

/// Where flow logs come from: CloudWatch Logs, or the offline demo.
#[async_trait::async_trait]
pub trait LogStore: Send + Sync {
    /// The configured groups, in order.
    fn groups(&self) -> Vec<LogGroupName>;
    /// Streams of a group, most recent event first.
    async fn streams(
        &self,
        group: &LogGroupName,
        token: Option<&str>,
    ) -> Result<Page<StreamInfo>, SourceError>;
    /// One page of a stream; `token` is a forward or backward token from a previous page.
    async fn events(
        &self,
        group: &LogGroupName,
        stream: &LogStreamName,
        token: Option<&str>,
    ) -> Result<EventsPage, SourceError>;
    /// Events whose JSON `ContactId` is the query's contact, in every
    /// configured group, inside the query's window, oldest first.
    async fn events_for_contact(&self, query: &ContactLogQuery)
        -> Result<ContactLogs, SourceError>;
}

/// The `ContactId` a Connect flow-log event names, if it is JSON with one.
pub fn event_contact_id(message: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(message).ok()?;
    v.get("ContactId")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_hostile_values() {
        assert!(LogGroupName::parse("/aws/connect/demo-instance").is_some());
        for bad in ["", "a b", "<script>", "x\n", &"a".repeat(513)] {
            assert!(LogGroupName::parse(bad).is_none(), "{bad}");
        }
        assert!(LogStreamName::parse("2026/11/24/flow-logs").is_some());
        for bad in ["", "../etc/passwd", "a:b", "a*", "<b>", "x\u{0}"] {
            assert!(LogStreamName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn repeated_deliveries_are_dropped_and_counted() {
        let mut seen = std::collections::HashSet::new();
        let mut v = vec![("s", 1, "a"), ("s", 1, "a"), ("t", 1, "a"), ("s", 2, "a")];
        assert_eq!(
            drop_duplicates(&mut v, |e| (e.0.into(), e.1, e.2.into()), &mut seen),
            1
        );
        assert_eq!(v.len(), 3);
        let mut again = vec![("s", 2, "a")];
        assert_eq!(
            drop_duplicates(&mut again, |e| (e.0.into(), e.1, e.2.into()), &mut seen),
            1
        );
    }

    #[test]
    fn a_contacts_window_has_a_margin_either_side() {
        let id = ContactId::parse("c-1").unwrap();
        let q = ContactLogQuery::for_contact(id, 1_000_000_000_000, None, 1_000_060_000_000, 0);
        assert_eq!(q.from_us, 1_000_000_000_000 - CONTACT_WINDOW_MARGIN_US);
        assert_eq!(q.to_us, 1_000_060_000_000 + CONTACT_WINDOW_MARGIN_US);
        assert_eq!(q.page_budget, 1);
    }

    #[test]
    fn contact_ids_are_read_from_flow_log_json() {
        assert_eq!(
            event_contact_id(r#"{"ContactId":"c-1","x":1}"#),
            Some("c-1".into())
        );
        assert_eq!(event_contact_id("plain text"), None);
    }
}
