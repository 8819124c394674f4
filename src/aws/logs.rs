//! `LogStore` over CloudWatch Logs (aws-sdk-cloudwatchlogs):
//! DescribeLogStreams, GetLogEvents, FilterLogEvents.

use aws_sdk_cloudwatchlogs::types::OrderBy;
use lambda_encrypt::context::ContactId;

use super::source_error;
use crate::sources::logs::{
    event_contact_id, ContactLogEvent, EventsPage, LogEvent, LogGroupName, LogStore, LogStreamName,
    StreamInfo, EVENTS_PER_PAGE,
};
use crate::sources::{check_token, Page, SourceError};

const STREAMS_PER_PAGE: i32 = 25;
/// A contact search reads at most this many filter pages per group.
const MAX_FILTER_PAGES: usize = 5;

pub struct AwsLogs {
    client: aws_sdk_cloudwatchlogs::Client,
    groups: Vec<LogGroupName>,
}

impl AwsLogs {
    pub fn new(sdk: &aws_config::SdkConfig, groups: Vec<LogGroupName>) -> Self {
        Self {
            client: aws_sdk_cloudwatchlogs::Client::new(sdk),
            groups,
        }
    }

    fn check_group(&self, group: &LogGroupName) -> Result<(), SourceError> {
        if self.groups.contains(group) {
            Ok(())
        } else {
            Err(SourceError::NotFound)
        }
    }
}

#[async_trait::async_trait]
impl LogStore for AwsLogs {
    fn groups(&self) -> Vec<LogGroupName> {
        self.groups.clone()
    }

    async fn streams(
        &self,
        group: &LogGroupName,
        token: Option<&str>,
    ) -> Result<Page<StreamInfo>, SourceError> {
        self.check_group(group)?;
        if let Some(t) = token {
            check_token(t)?;
        }
        let out = self
            .client
            .describe_log_streams()
            .log_group_name(group.as_str())
            .order_by(OrderBy::LastEventTime)
            .descending(true)
            .limit(STREAMS_PER_PAGE)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        Ok(Page {
            items: out
                .log_streams()
                .iter()
                .filter_map(|s| {
                    Some(StreamInfo {
                        name: s.log_stream_name()?.to_owned(),
                        last_event_us: s.last_event_timestamp().map(|ms| ms * 1000),
                        stored_bytes: None, // deprecated by the service: always 0
                    })
                })
                .collect(),
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn events(
        &self,
        group: &LogGroupName,
        stream: &LogStreamName,
        token: Option<&str>,
    ) -> Result<EventsPage, SourceError> {
        self.check_group(group)?;
        if let Some(t) = token {
            check_token(t)?;
        }
        let out = self
            .client
            .get_log_events()
            .log_group_name(group.as_str())
            .log_stream_name(stream.as_str())
            .start_from_head(true)
            .limit(EVENTS_PER_PAGE)
            .set_next_token(token.map(str::to_owned))
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        let events: Vec<LogEvent> = out
            .events()
            .iter()
            .map(|e| LogEvent {
                timestamp_us: e.timestamp().unwrap_or(0) * 1000,
                message: e.message().unwrap_or("").to_owned(),
            })
            .collect();
        // The service hands back the token it was given when there is nothing
        // further that way; and an empty page has nowhere further to go.
        let moved = |t: Option<&str>| t.filter(|t| Some(*t) != token).map(str::to_owned);
        Ok(EventsPage {
            forward_token: if events.is_empty() {
                None
            } else {
                moved(out.next_forward_token())
            },
            backward_token: if token.is_none() {
                None
            } else {
                moved(out.next_backward_token())
            },
            events,
        })
    }

    async fn events_for_contact(
        &self,
        contact: &ContactId,
    ) -> Result<Vec<ContactLogEvent>, SourceError> {
        // ContactId holds no quotes or braces, so the pattern cannot be broken out of.
        let pattern = format!("{{ $.ContactId = \"{}\" }}", contact.as_str());
        let mut found = Vec::new();
        for group in &self.groups {
            let mut token: Option<String> = None;
            for _ in 0..MAX_FILTER_PAGES {
                let out = self
                    .client
                    .filter_log_events()
                    .log_group_name(group.as_str())
                    .filter_pattern(&pattern)
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| source_error(&e))?;
                for e in out.events() {
                    let message = e.message().unwrap_or("");
                    // Checked here too: not every implementation honours JSON patterns.
                    if event_contact_id(message).as_deref() == Some(contact.as_str()) {
                        found.push(ContactLogEvent {
                            group: group.as_str().to_owned(),
                            stream: e.log_stream_name().unwrap_or("").to_owned(),
                            event: LogEvent {
                                timestamp_us: e.timestamp().unwrap_or(0) * 1000,
                                message: message.to_owned(),
                            },
                        });
                    }
                }
                token = out.next_token().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
        }
        found.sort_by_key(|e| e.event.timestamp_us);
        Ok(found)
    }
}
