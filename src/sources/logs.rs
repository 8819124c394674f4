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
    /// Events whose JSON `ContactId` is this contact, in every configured group.
    async fn events_for_contact(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<ContactLogEvent>, SourceError>;
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
    fn contact_ids_are_read_from_flow_log_json() {
        assert_eq!(
            event_contact_id(r#"{"ContactId":"c-1","x":1}"#),
            Some("c-1".into())
        );
        assert_eq!(event_contact_id("plain text"), None);
    }
}
