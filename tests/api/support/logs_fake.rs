//! A wire-level fake of CloudWatch Logs (awsJson1.1: `POST /` with
//! `X-Amz-Target: Logs_20140328.<Operation>`) for what moto cannot show:
//! partly full and empty pages before the end ("Partially full or empty pages
//! don't necessarily mean that pagination is finished"), forward tokens that
//! stop changing at the end of a stream, throttling bursts, and the
//! at-least-once delivery of Connect's flow logs (an event stored twice).
//! It serves FilterLogEvents, GetLogEvents and DescribeLogStreams as the
//! console calls them; `logs_model.rs` checks it against botocore's model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeEvent {
    pub timestamp_ms: i64,
    pub message: String,
}

#[derive(Default)]
pub struct LogsState {
    /// group -> stream -> events (kept in time order).
    pub groups: BTreeMap<String, BTreeMap<String, Vec<FakeEvent>>>,
    /// Events per FilterLogEvents page at most (the service decides, not `limit`).
    pub filter_page: usize,
    /// Events one FilterLogEvents page examines at most, matching or not
    /// (0: all): the service answers after scanning a chunk, so a search
    /// over a long time range returns empty pages while it scans.
    pub scan_page: usize,
    /// Empty pages served before every page that has events.
    pub empty_pages: usize,
    /// The next this many requests answer ThrottlingException.
    pub throttle_next: usize,
    /// Requests received: (operation, body).
    pub requests: Vec<(String, Value)>,
}

impl LogsState {
    pub fn bodies(&self, operation: &str) -> Vec<Value> {
        self.requests
            .iter()
            .filter(|(o, _)| o == operation)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

pub struct LogsFake {
    pub url: String,
    pub state: Arc<Mutex<LogsState>>,
}

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

fn error(code: &str, message: &str) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type(CONTENT_TYPE)
        .body(json!({"__type": code, "message": message}).to_string())
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(CONTENT_TYPE)
        .body(body.to_string())
}

fn bad_token() -> HttpResponse {
    error(
        "InvalidParameterException",
        "The specified nextToken is invalid.",
    )
}

/// The members botocore's logs model gives each operation (the ones served).
fn members(operation: &str) -> &'static [&'static str] {
    match operation {
        "FilterLogEvents" => &[
            "logGroupName",
            "logGroupIdentifier",
            "logStreamNames",
            "logStreamNamePrefix",
            "startTime",
            "endTime",
            "filterPattern",
            "nextToken",
            "limit",
            "startFromHead",
            "interleaved",
            "unmask",
        ],
        "GetLogEvents" => &[
            "logGroupName",
            "logGroupIdentifier",
            "logStreamName",
            "startTime",
            "endTime",
            "nextToken",
            "limit",
            "startFromHead",
            "unmask",
        ],
        "DescribeLogStreams" => &[
            "logGroupName",
            "logGroupIdentifier",
            "logStreamNamePrefix",
            "orderBy",
            "descending",
            "nextToken",
            "limit",
        ],
        _ => &[],
    }
}

/// `{ $.ContactId = "x" }`: the contact id, if the pattern is that.
fn contact_pattern(pattern: &str) -> Option<String> {
    let inner = pattern.trim().strip_prefix('{')?.strip_suffix('}')?.trim();
    let value = inner
        .strip_prefix("$.ContactId")?
        .trim()
        .strip_prefix('=')?
        .trim();
    Some(value.strip_prefix('"')?.strip_suffix('"')?.to_owned())
}

fn contact_of(message: &str) -> Option<String> {
    serde_json::from_str::<Value>(message)
        .ok()?
        .get("ContactId")?
        .as_str()
        .map(str::to_owned)
}

/// FilterLogEvents tokens: `F<position>.<empty pages left>.<search hash>`.
fn filter_token(pos: usize, empties: usize, key: u64) -> String {
    format!("F{pos}.{empties}.{key:x}")
}

fn parse_filter_token(t: &str) -> Option<(usize, usize, u64)> {
    let mut parts = t.strip_prefix('F')?.split('.');
    let pos = parts.next()?.parse().ok()?;
    let empties = parts.next()?.parse().ok()?;
    let key = u64::from_str_radix(parts.next()?, 16).ok()?;
    Some((pos, empties, key))
}

fn hash(s: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

fn filter(s: &LogsState, body: &Value) -> HttpResponse {
    let Some(streams) = body["logGroupName"].as_str().and_then(|g| s.groups.get(g)) else {
        return error(
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        );
    };
    let start = body["startTime"].as_i64().unwrap_or(0);
    let end = body["endTime"].as_i64().unwrap_or(i64::MAX);
    let pattern = body["filterPattern"].as_str().unwrap_or("");
    let contact = contact_pattern(pattern);
    let mut all: Vec<(&str, &FakeEvent)> = streams
        .iter()
        .flat_map(|(name, events)| events.iter().map(move |e| (name.as_str(), e)))
        .filter(|(_, e)| e.timestamp_ms >= start && e.timestamp_ms <= end)
        .collect();
    all.sort_by_key(|(_, e)| e.timestamp_ms);
    let mut key_body = body.clone();
    if let Some(o) = key_body.as_object_mut() {
        o.remove("nextToken");
    }
    let key = hash(&key_body.to_string());
    let (pos, empties) = match body["nextToken"].as_str() {
        None => (0, s.empty_pages),
        Some(t) => match parse_filter_token(t) {
            Some((p, e, k)) if k == key && p <= all.len() => (p, e),
            _ => return bad_token(),
        },
    };
    let mut out = json!({"events": [], "searchedLogStreams": []});
    if empties > 0 {
        out["nextToken"] = json!(filter_token(pos, empties - 1, key));
        return ok(out);
    }
    let limit = body["limit"].as_u64().map_or(10_000, |l| l as usize);
    let take = s.filter_page.max(1).min(limit);
    let scan = if s.scan_page == 0 {
        usize::MAX
    } else {
        s.scan_page
    };
    let mut page = Vec::new();
    let mut next = pos;
    while next < all.len() && next - pos < scan && page.len() < take {
        let (stream, e) = all[next];
        if contact.is_none() || contact_of(&e.message) == contact {
            page.push(json!({
                "logStreamName": stream,
                "timestamp": e.timestamp_ms,
                "message": e.message,
                "ingestionTime": e.timestamp_ms + 100,
                "eventId": format!("{next:056}"),
            }));
        }
        next += 1;
    }
    out["events"] = json!(page);
    if next < all.len() {
        out["nextToken"] = json!(filter_token(next, s.empty_pages, key));
    }
    ok(out)
}

/// GetLogEvents tokens: `f/<position>/<empty pages left>` and `b/<position>`.
fn get_events(s: &LogsState, body: &Value) -> HttpResponse {
    let events = body["logGroupName"]
        .as_str()
        .and_then(|g| s.groups.get(g))
        .and_then(|streams| streams.get(body["logStreamName"].as_str()?));
    let Some(events) = events else {
        return error(
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
        );
    };
    let limit = body["limit"].as_u64().map_or(10_000, |l| l as usize).max(1);
    let given = body["nextToken"].as_str();
    let parse = |t: &str| -> Option<(char, usize, usize)> {
        let mut parts = t.split('/');
        let dir = parts.next()?.chars().next()?;
        let pos: usize = parts.next()?.parse().ok()?;
        let empties: usize = parts.next().map_or(Some(0), |e| e.parse().ok())?;
        (pos <= events.len() && (dir == 'f' || dir == 'b')).then_some((dir, pos, empties))
    };
    let (dir, pos, empties) = match given {
        None => ('f', 0, s.empty_pages),
        Some(t) => match parse(t) {
            Some(p) => p,
            None => return bad_token(),
        },
    };
    let shown = |slice: &[FakeEvent]| -> Vec<Value> {
        slice
            .iter()
            .map(|e| {
                json!({"timestamp": e.timestamp_ms, "message": e.message,
                       "ingestionTime": e.timestamp_ms + 100})
            })
            .collect()
    };
    if dir == 'b' {
        let from = pos.saturating_sub(limit);
        return ok(json!({
            "events": shown(&events[from..pos]),
            "nextForwardToken": format!("f/{pos}/0"),
            "nextBackwardToken": format!("b/{from}"),
        }));
    }
    if empties > 0 {
        return ok(json!({
            "events": [],
            "nextForwardToken": format!("f/{pos}/{}", empties - 1),
            "nextBackwardToken": format!("b/{pos}"),
        }));
    }
    let end = (pos + limit).min(events.len());
    if end == pos {
        // The end: the forward token stops changing.
        return ok(json!({
            "events": [],
            "nextForwardToken": given.map_or_else(|| format!("f/{pos}/0"), str::to_owned),
            "nextBackwardToken": format!("b/{pos}"),
        }));
    }
    ok(json!({
        "events": shown(&events[pos..end]),
        "nextForwardToken": format!("f/{end}/{}", s.empty_pages),
        "nextBackwardToken": format!("b/{pos}"),
    }))
}

fn describe_streams(s: &LogsState, body: &Value) -> HttpResponse {
    let Some(streams) = body["logGroupName"].as_str().and_then(|g| s.groups.get(g)) else {
        return error(
            "ResourceNotFoundException",
            "The specified log group does not exist.",
        );
    };
    let limit = match body["limit"].as_u64() {
        None => 50,
        Some(l @ 1..=50) => l as usize,
        Some(_) => return error("InvalidParameterException", "limit is 1 to 50"),
    };
    let mut list: Vec<(&String, &Vec<FakeEvent>)> = streams.iter().collect();
    if body["orderBy"] == "LastEventTime" {
        list.sort_by_key(|(_, e)| e.last().map(|e| e.timestamp_ms));
    }
    if body["descending"] == true {
        list.reverse();
    }
    let offset = match body["nextToken"].as_str() {
        None => 0,
        Some(t) => match t.strip_prefix('S').and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= list.len() => n,
            _ => return bad_token(),
        },
    };
    let page: Vec<Value> = list
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(name, events)| {
            let first = events.first().map_or(0, |e| e.timestamp_ms);
            let last = events.last().map_or(0, |e| e.timestamp_ms);
            json!({
                "logStreamName": name,
                "creationTime": first,
                "firstEventTimestamp": first,
                "lastEventTimestamp": last,
                "lastIngestionTime": last + 100,
                "arn": format!("arn:aws:logs:us-east-1:123456789012:log-group:{}:log-stream:{name}",
                    body["logGroupName"].as_str().unwrap_or("")),
                "storedBytes": 0,
            })
        })
        .collect();
    let next = offset + page.len();
    let mut out = json!({"logStreams": page});
    if next < list.len() {
        out["nextToken"] = json!(format!("S{next}"));
    }
    ok(out)
}

async fn dispatch(
    state: web::Data<Arc<Mutex<LogsState>>>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(operation) = target.strip_prefix("Logs_20140328.") else {
        return error("UnknownOperationException", "missing X-Amz-Target");
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error("SerializationException", "the body is not JSON");
    };
    let mut s = state.lock().unwrap();
    s.requests.push((operation.to_owned(), body.clone()));
    if s.throttle_next > 0 {
        s.throttle_next -= 1;
        return error("ThrottlingException", "Rate exceeded");
    }
    let allowed = members(operation);
    if allowed.is_empty() {
        return error("UnknownOperationException", "not served by this fake");
    }
    if let Some(k) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| !allowed.contains(&k.as_str())))
    {
        return error("InvalidParameterException", &format!("unknown member {k}"));
    }
    match operation {
        "FilterLogEvents" => filter(&s, &body),
        "GetLogEvents" => get_events(&s, &body),
        _ => describe_streams(&s, &body),
    }
}

impl LogsFake {
    pub fn start(groups: BTreeMap<String, BTreeMap<String, Vec<FakeEvent>>>) -> Self {
        let state = Arc::new(Mutex::new(LogsState {
            groups,
            filter_page: 50,
            ..Default::default()
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/", web::post().to(dispatch))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        Self { url, state }
    }

    /// An SDK configuration pointing at this fake (dummy credentials, no retries).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        crate::connect_fake::sdk_config_for(&self.url).await
    }
}
