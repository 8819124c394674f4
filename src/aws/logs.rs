//! `LogStore` over CloudWatch Logs (aws-sdk-cloudwatchlogs):
//! DescribeLogStreams, GetLogEvents, FilterLogEvents.
//!
//! Both event APIs may answer partly full or empty pages before the end:
//! only the tokens say where the end is. GetLogEvents' end is a forward
//! token that stops changing; FilterLogEvents' end is no token.

use std::collections::HashSet;

use aws_sdk_cloudwatchlogs::types::OrderBy;

use super::quota::{Limiter, ServiceQuota};
use super::source_error;
use crate::sources::logs::{
    drop_duplicates, event_contact_id, ContactLogEvent, ContactLogQuery, ContactLogs, EventsPage,
    LogCursor, LogEvent, LogGroupName, LogStore, LogStreamName, StreamInfo, EVENTS_PER_PAGE,
};
use crate::sources::{check_token, Page, SourceError};

const STREAMS_PER_PAGE: i32 = 25;
/// GetLogEvents calls one stream page may make while pages come back empty.
pub const STREAM_PAGE_BUDGET: usize = 20;

const APIS: [&str; 3] = ["DescribeLogStreams", "GetLogEvents", "FilterLogEvents"];

pub struct AwsLogs {
    client: aws_sdk_cloudwatchlogs::Client,
    groups: Vec<LogGroupName>,
    limiter: Limiter,
}

impl AwsLogs {
    /// With CloudWatch Logs' default quota.
    pub fn new(sdk: &aws_config::SdkConfig, groups: Vec<LogGroupName>) -> Self {
        Self::with_quota(sdk, groups, ServiceQuota::LOGS)
    }

    pub fn with_quota(
        sdk: &aws_config::SdkConfig,
        groups: Vec<LogGroupName>,
        quota: ServiceQuota,
    ) -> Self {
        let config = aws_sdk_cloudwatchlogs::config::Builder::from(sdk)
            .retry_config(quota.retry_config())
            .build();
        Self {
            client: aws_sdk_cloudwatchlogs::Client::from_conf(config),
            groups,
            limiter: Limiter::new(quota, &APIS),
        }
    }

    fn check_group(&self, group: &LogGroupName) -> Result<(), SourceError> {
        if self.groups.contains(group) {
            Ok(())
        } else {
            Err(SourceError::NotFound)
        }
    }

    /// One GetLogEvents call: (events, forward token, backward token).
    async fn get_events(
        &self,
        group: &LogGroupName,
        stream: &LogStreamName,
        token: Option<&str>,
    ) -> Result<(Vec<LogEvent>, Option<String>, Option<String>), SourceError> {
        let _turn = self.limiter.turn("GetLogEvents").await?;
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
            .map_err(|e| source_error(&e, token.is_some()))?;
        let events = out
            .events()
            .iter()
            .map(|e| LogEvent {
                timestamp_us: e.timestamp().unwrap_or(0) * 1000,
                message: e.message().unwrap_or("").to_owned(),
            })
            .collect();
        Ok((
            events,
            out.next_forward_token().map(str::to_owned),
            out.next_backward_token().map(str::to_owned),
        ))
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
        let _turn = self.limiter.turn("DescribeLogStreams").await?;
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
            .map_err(|e| source_error(&e, token.is_some()))?;
        Ok(Page::new(
            out.log_streams()
                .iter()
                .filter_map(|s| {
                    Some(StreamInfo {
                        name: s.log_stream_name()?.to_owned(),
                        last_event_us: s.last_event_timestamp().map(|ms| ms * 1000),
                        stored_bytes: None, // deprecated by the service: always 0
                    })
                })
                .collect(),
            out.next_token().map(str::to_owned),
        ))
    }

    /// One page of a stream. Empty pages are followed forward until events
    /// come or the forward token stops changing (the documented end), within
    /// `STREAM_PAGE_BUDGET` calls; past the budget the page is empty but
    /// still offers its forward token.
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
        let mut current: Option<String> = token.map(str::to_owned);
        let mut backward: Option<String> = None;
        for call in 0..STREAM_PAGE_BUDGET {
            let (mut events, forward, back) =
                self.get_events(group, stream, current.as_deref()).await?;
            if call == 0 {
                // The service hands back the token it was given when there is
                // nothing further that way.
                backward = back.filter(|b| token.is_some() && Some(b.as_str()) != token);
            }
            let moved = forward.filter(|f| Some(f.as_str()) != current.as_deref());
            let mut seen = HashSet::new();
            drop_duplicates(
                &mut events,
                |e| {
                    (
                        stream.as_str().to_owned(),
                        e.timestamp_us,
                        e.message.clone(),
                    )
                },
                &mut seen,
            );
            if !events.is_empty() || moved.is_none() {
                return Ok(EventsPage {
                    forward_token: if events.is_empty() { None } else { moved },
                    backward_token: backward,
                    events,
                });
            }
            current = moved;
        }
        Ok(EventsPage {
            events: Vec::new(),
            forward_token: current,
            backward_token: backward,
        })
    }

    async fn events_for_contact(&self, q: &ContactLogQuery) -> Result<ContactLogs, SourceError> {
        // ContactId holds no quotes or braces, so the pattern cannot be broken out of.
        let pattern = format!("{{ $.ContactId = \"{}\" }}", q.contact.as_str());
        let (first_group, mut token) = match &q.resume {
            Some(c) => (c.group, c.token.clone()),
            None => (0, None),
        };
        if let Some(t) = &token {
            check_token(t)?;
        }
        let mut found = Vec::new();
        let mut seen = HashSet::new();
        let mut duplicates = 0;
        let mut calls = 0;
        let mut more = None;
        'groups: for (index, group) in self.groups.iter().enumerate().skip(first_group) {
            if index != first_group {
                token = None;
            }
            loop {
                if calls >= q.page_budget {
                    more = Some(LogCursor {
                        group: index,
                        token: token.clone(),
                    });
                    break 'groups;
                }
                calls += 1;
                let sent_token = token.is_some();
                let out = {
                    let _turn = self.limiter.turn("FilterLogEvents").await?;
                    self.client
                        .filter_log_events()
                        .log_group_name(group.as_str())
                        .filter_pattern(&pattern)
                        .start_time(q.from_us.div_euclid(1000))
                        .end_time(q.to_us.div_euclid(1000))
                        .set_next_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| source_error(&e, sent_token))?
                };
                let mut page: Vec<ContactLogEvent> = out
                    .events()
                    .iter()
                    // Checked here too: not every implementation honours JSON patterns.
                    .filter(|e| {
                        event_contact_id(e.message().unwrap_or("")).as_deref()
                            == Some(q.contact.as_str())
                    })
                    .map(|e| ContactLogEvent {
                        group: group.as_str().to_owned(),
                        stream: e.log_stream_name().unwrap_or("").to_owned(),
                        event: LogEvent {
                            timestamp_us: e.timestamp().unwrap_or(0) * 1000,
                            message: e.message().unwrap_or("").to_owned(),
                        },
                    })
                    .collect();
                duplicates += drop_duplicates(
                    &mut page,
                    |e| {
                        (
                            e.stream.clone(),
                            e.event.timestamp_us,
                            e.event.message.clone(),
                        )
                    },
                    &mut seen,
                );
                found.extend(page);
                match out.next_token() {
                    Some(t) if Some(t) != token.as_deref() => token = Some(t.to_owned()),
                    _ => break,
                }
            }
        }
        found.sort_by_key(|e| e.event.timestamp_us);
        Ok(ContactLogs {
            events: found,
            more,
            duplicates,
        })
    }
}
