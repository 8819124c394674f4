//! CloudWatch Logs: the flow-log groups exist and are readable the way the
//! console reads them; the audit group takes writes.

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata as _;
use aws_sdk_cloudwatchlogs::types::{InputLogEvent, OrderBy};

use super::calls::{classify, Call, CallError, Service};
use super::{Ctx, Outcome};
use crate::sources::LogGroupName;

/// The audit group's stream that preflight writes to: `audit verify
/// --checkpoints` reads only the rows and checkpoints streams.
pub const PREFLIGHT_STREAM: &str = "preflight";

/// How far back the FilterLogEvents probe looks.
const FILTER_WINDOW_MS: i64 = 3_600_000;

fn call<'a>(action: &'static str, resource: &'a str) -> Call<'a> {
    Call {
        service: Service::Logs,
        action,
        resource,
    }
}

/// DescribeLogStreams (the console's stream list; a missing group answers
/// ResourceNotFoundException, so logs:DescribeLogGroups is not needed) and
/// FilterLogEvents (its contact search), one item each.
pub(super) async fn readable(ctx: &Ctx, group: &LogGroupName) -> Outcome {
    let resource = format!("log group {}", group.as_str());
    if let Err(e) = ctx
        .logs
        .describe_log_streams()
        .log_group_name(group.as_str())
        .order_by(OrderBy::LastEventTime)
        .descending(true)
        .limit(1)
        .send()
        .await
    {
        return match classify(&e) {
            CallError::NotFound(_) => Outcome::fail(
                format!("log group {} does not exist in {}", group.as_str(), ctx.region),
                "turn on flow logs on the Connect instance (Connect creates /aws/connect/<instance alias> when a flow first logs), or correct CALLVAULT_LOG_GROUPS",
            ),
            other => call("logs:DescribeLogStreams", &resource).failed(&other, &ctx.region),
        };
    }
    let now_ms = ctx.clock.now().timestamp_millis();
    if let Err(e) = ctx
        .logs
        .filter_log_events()
        .log_group_name(group.as_str())
        .start_time(now_ms - FILTER_WINDOW_MS)
        .limit(1)
        .send()
        .await
    {
        return call("logs:FilterLogEvents", &resource).failed(&classify(&e), &ctx.region);
    }
    Outcome::Pass
}

/// Creates the `preflight` stream if absent and puts one event in it: the
/// same rights (logs:CreateLogStream, logs:PutLogEvents) the audit shipper
/// uses, without touching the audit streams.
pub(super) async fn audit_writable(ctx: &Ctx, group: &LogGroupName) -> Outcome {
    let resource = format!("log group {}", group.as_str());
    if let Err(e) = ctx
        .logs
        .create_log_stream()
        .log_group_name(group.as_str())
        .log_stream_name(PREFLIGHT_STREAM)
        .send()
        .await
    {
        if e.code() != Some("ResourceAlreadyExistsException") {
            return match classify(&e) {
                CallError::NotFound(_) => Outcome::fail(
                    format!("audit log group {} does not exist in {}", group.as_str(), ctx.region),
                    "create it with a retention and no delete rights for the console role (the template's audit log group), or correct CALLVAULT_AUDIT_LOG_GROUP",
                ),
                other => call("logs:CreateLogStream", &resource).failed(&other, &ctx.region),
            };
        }
    }
    let now = ctx.clock.now();
    let message = serde_json::json!({
        "callvault": "preflight",
        "checked_at": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
    .to_string();
    let event = match InputLogEvent::builder()
        .timestamp(now.timestamp_millis())
        .message(message)
        .build()
    {
        Ok(event) => event,
        Err(_) => {
            return Outcome::fail(
                "the preflight event could not be built",
                "report this as a callvault bug",
            )
        }
    };
    if let Err(e) = ctx
        .logs
        .put_log_events()
        .log_group_name(group.as_str())
        .log_stream_name(PREFLIGHT_STREAM)
        .log_events(event)
        .send()
        .await
    {
        return call("logs:PutLogEvents", &resource).failed(&classify(&e), &ctx.region);
    }
    Outcome::Pass
}
