//! A wire-level fake of the Amazon Connect API (restJson1), for the operations
//! moto lacks: SearchContacts, DescribeContact, GetContactAttributes, and for
//! preflight DescribeInstanceAttribute and ListBots. The real
//! `aws-sdk-connect` client talks to it over HTTP; `connect_model.rs` checks
//! its routes and bodies against botocore's Connect model.
//!
//! It behaves as the API reference says the service does: SearchContacts
//! tokens as long as botocore's `LargeNextToken` allows (20,000 characters
//! here by default), bound to the search that issued them; partial and empty
//! pages before the end when asked; bursts of 429 `ThrottlingException`;
//! every `SearchCriteria` member validated as botocore's model shapes it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Clone, Debug, Default)]
pub struct FakeContact {
    pub id: String,
    pub initial_contact_id: String,
    pub channel: String,
    pub initiated_secs: f64,
    pub attributes: BTreeMap<String, String>,
    /// INBOUND unless set.
    pub initiation_method: Option<String>,
    pub agent_id: Option<String>,
    pub queue_id: Option<String>,
    /// The caller's number (DescribeContact's CustomerEndpoint).
    pub customer_number: Option<String>,
    pub disconnect_reason: Option<String>,
}

impl FakeContact {
    pub fn method(&self) -> &str {
        self.initiation_method.as_deref().unwrap_or("INBOUND")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Normal,
    Throttle,
    Deny,
}

#[derive(Default)]
pub struct FakeState {
    pub instance_id: String,
    pub contacts: Vec<FakeContact>,
    pub mode: Option<Mode>,
    /// Bodies of the SearchContacts requests received.
    pub searches: Vec<Value>,
    /// The instance's CONTACTFLOW_LOGS attribute.
    pub flow_logs: bool,
    /// Alias ARNs of the Lex V2 bots associated with the instance.
    pub v2_bots: Vec<String>,
    /// Operations answered with AccessDeniedException, e.g. "ListBots".
    pub denied: Vec<&'static str>,
    /// Query strings of the ListBots requests received.
    pub bot_queries: Vec<String>,
    /// The instance's users (agents): (id, user name).
    pub users: Vec<(String, String)>,
    /// The instance's queues: (id, name, STANDARD or AGENT).
    pub queues: Vec<(String, String, &'static str)>,
    /// Query strings of the ListUsers and ListQueues requests received.
    pub list_queries: Vec<String>,
    /// Length of SearchContacts tokens (botocore's `LargeNextToken`: up to 100,000).
    pub token_len: usize,
    /// Page sizes in turn (0 is an empty page before the end); MaxResults when empty.
    pub ragged: Vec<usize>,
    /// The next this many requests, of any operation, answer 429 ThrottlingException.
    pub throttle_next: usize,
    /// Requests received per operation (throttled ones included).
    pub calls: BTreeMap<&'static str, usize>,
    /// Tokens issued: token -> (the search's key, offset, page number).
    tokens: HashMap<String, (String, usize, usize)>,
    /// The account's quota, enforced like Connect: (requests per second,
    /// burst) per operation; past it, 429 ThrottlingException.
    pub quota: Option<(f64, f64)>,
    /// Per operation: (tokens left, when last refilled).
    buckets: HashMap<&'static str, (f64, std::time::Instant)>,
    /// Requests refused by the quota.
    pub over_quota: usize,
}

impl FakeState {
    pub fn calls_to(&self, operation: &str) -> usize {
        self.calls.get(operation).copied().unwrap_or(0)
    }

    pub fn connect_calls(&self) -> usize {
        self.calls.values().sum()
    }
}

/// botocore's `InstanceAttributeType` enum.
const ATTRIBUTE_TYPES: [&str; 14] = [
    "INBOUND_CALLS",
    "OUTBOUND_CALLS",
    "CONTACTFLOW_LOGS",
    "CONTACT_LENS",
    "AUTO_RESOLVE_BEST_VOICES",
    "USE_CUSTOM_TTS_VOICES",
    "EARLY_MEDIA",
    "MULTI_PARTY_CONFERENCE",
    "AUTO_MUTE_AGENT_ON_HOLD",
    "HIGH_VOLUME_OUTBOUND",
    "ENHANCED_CONTACT_MONITORING",
    "ENHANCED_CHAT_MONITORING",
    "MULTI_PARTY_CHAT_CONFERENCE",
    "MESSAGE_STREAMING",
];

pub struct ConnectFake {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .insert_header(("x-amzn-ErrorType", code))
        .content_type("application/json")
        .body(json!({"__type": code, "message": message}).to_string())
}

/// Counts the call; the mode's refusal or a throttling burst's, if any.
fn refuse_counted(state: &mut FakeState, operation: &'static str) -> Option<HttpResponse> {
    *state.calls.entry(operation).or_default() += 1;
    if state.throttle_next > 0 {
        state.throttle_next -= 1;
        return Some(error(429, "ThrottlingException", "Rate exceeded"));
    }
    if let Some((rate, burst)) = state.quota {
        let now = std::time::Instant::now();
        let (tokens, at) = state.buckets.entry(operation).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens < 1.0 {
            state.over_quota += 1;
            return Some(error(429, "ThrottlingException", "Rate exceeded"));
        }
        *tokens -= 1.0;
    }
    refuse(state)
}

fn refuse(state: &FakeState) -> Option<HttpResponse> {
    match state.mode.unwrap_or(Mode::Normal) {
        Mode::Normal => None,
        Mode::Throttle => Some(error(429, "ThrottlingException", "Rate exceeded")),
        Mode::Deny => Some(error(
            403,
            "AccessDeniedException",
            "not authorized to perform connect:SearchContacts",
        )),
    }
}

/// The mode's refusal, or AccessDenied if this operation is denied.
fn refuse_op(state: &FakeState, operation: &str) -> Option<HttpResponse> {
    refuse(state).or_else(|| {
        state.denied.contains(&operation).then(|| {
            error(
                403,
                "AccessDeniedException",
                &format!("not authorized to perform connect:{operation}"),
            )
        })
    })
}

fn ok_json(body: &Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}

/// `GET /instance/{InstanceId}/attribute/{AttributeType}`
async fn instance_attribute(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let s = state.lock().unwrap();
    if let Some(r) = refuse_op(&s, "DescribeInstanceAttribute") {
        return r;
    }
    let (instance, attribute) = path.into_inner();
    if instance != s.instance_id {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    if !ATTRIBUTE_TYPES.contains(&attribute.as_str()) {
        return error(400, "InvalidParameterException", "unknown attribute type");
    }
    let on = attribute == "CONTACTFLOW_LOGS" && s.flow_logs;
    ok_json(&json!({"Attribute": {"AttributeType": attribute, "Value": on.to_string()}}))
}

/// `GET /instance/{InstanceId}/bots?lexVersion=&maxResults=&nextToken=`
async fn list_bots(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<String>,
    query: web::Query<BTreeMap<String, String>>,
    req: HttpRequest,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.bot_queries.push(req.query_string().to_owned());
    if let Some(r) = refuse_op(&s, "ListBots") {
        return r;
    }
    if path.into_inner() != s.instance_id {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    let v2 = match query.get("lexVersion").map(String::as_str) {
        Some("V2") => true,
        Some("V1") => false,
        _ => return error(400, "InvalidParameterException", "lexVersion is required"),
    };
    let max = match query.get("maxResults").map(|m| m.parse::<usize>()) {
        None => 10,
        Some(Ok(m)) if (1..=25).contains(&m) => m,
        Some(_) => return error(400, "InvalidParameterException", "maxResults is 1 to 25"),
    };
    let offset: usize = match query.get("nextToken") {
        None => 0,
        Some(t) => match t.strip_prefix("bots").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return error(400, "InvalidParameterException", "bad nextToken"),
        },
    };
    let bots: &[String] = if v2 { &s.v2_bots } else { &[] };
    let page: Vec<Value> = bots
        .iter()
        .skip(offset)
        .take(max)
        .map(|arn| json!({"LexV2Bot": {"AliasArn": arn}}))
        .collect();
    let next = offset + page.len();
    let mut out = json!({"LexBots": page});
    if next < bots.len() {
        out["NextToken"] = json!(format!("bots{next}"));
    }
    ok_json(&out)
}

/// `maxResults` (1 to 1000, default 100) and `nextToken` (`<prefix><offset>`)
/// of a ListUsers/ListQueues request.
fn list_window(query: &[(String, String)], prefix: &str) -> Result<(usize, usize), HttpResponse> {
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let max = match get("maxResults").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(m)) if (1..=1000).contains(&m) => m,
        Some(_) => {
            return Err(error(
                400,
                "InvalidParameterException",
                "maxResults is 1 to 1000",
            ))
        }
    };
    let offset = match get("nextToken") {
        None => 0,
        Some(t) => match t.strip_prefix(prefix).and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return Err(error(400, "InvalidParameterException", "bad nextToken")),
        },
    };
    Ok((max, offset))
}

fn pairs(req: &HttpRequest) -> Vec<(String, String)> {
    serde_urlencoded::from_str(req.query_string()).unwrap_or_default()
}

/// `GET /users-summary/{InstanceId}?maxResults=&nextToken=` (ListUsers)
async fn list_users(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.list_queries
        .push(format!("ListUsers?{}", req.query_string()));
    if let Some(r) = refuse_counted(&mut s, "ListUsers") {
        return r;
    }
    if let Some(r) = refuse_op(&s, "ListUsers") {
        return r;
    }
    if path.into_inner() != s.instance_id {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    let (max, offset) = match list_window(&pairs(&req), "users") {
        Ok(w) => w,
        Err(r) => return r,
    };
    let instance = s.instance_id.clone();
    let page: Vec<Value> = s
        .users
        .iter()
        .skip(offset)
        .take(max)
        .map(|(id, name)| {
            json!({
                "Id": id,
                "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{instance}/agent/{id}"),
                "Username": name,
                "LastModifiedTime": 1.7e9,
                "LastModifiedRegion": "us-east-1",
            })
        })
        .collect();
    let next = offset + page.len();
    let mut out = json!({"UserSummaryList": page});
    if next < s.users.len() {
        out["NextToken"] = json!(format!("users{next}"));
    }
    ok_json(&out)
}

/// `GET /queues-summary/{InstanceId}?queueTypes=&maxResults=&nextToken=` (ListQueues)
async fn list_queues(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<String>,
    req: HttpRequest,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.list_queries
        .push(format!("ListQueues?{}", req.query_string()));
    if let Some(r) = refuse_counted(&mut s, "ListQueues") {
        return r;
    }
    if let Some(r) = refuse_op(&s, "ListQueues") {
        return r;
    }
    if path.into_inner() != s.instance_id {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    let query = pairs(&req);
    let types: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "queueTypes")
        .map(|(_, v)| v.as_str())
        .collect();
    if types.len() > 2 || types.iter().any(|t| !["STANDARD", "AGENT"].contains(t)) {
        return error(400, "InvalidParameterException", "queueTypes");
    }
    let (max, offset) = match list_window(&query, "queues") {
        Ok(w) => w,
        Err(r) => return r,
    };
    let instance = s.instance_id.clone();
    let wanted: Vec<&(String, String, &str)> = s
        .queues
        .iter()
        .filter(|q| types.is_empty() || types.contains(&q.2))
        .collect();
    let page: Vec<Value> = wanted
        .iter()
        .skip(offset)
        .take(max)
        .map(|(id, name, kind)| {
            json!({
                "Id": id,
                "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{instance}/queue/{id}"),
                "Name": name,
                "QueueType": kind,
                "LastModifiedTime": 1.7e9,
                "LastModifiedRegion": "us-east-1",
            })
        })
        .collect();
    let next = offset + page.len();
    let mut out = json!({"QueueSummaryList": page});
    if next < wanted.len() {
        out["NextToken"] = json!(format!("queues{next}"));
    }
    ok_json(&out)
}

fn arn(c: &FakeContact, instance: &str) -> String {
    format!(
        "arn:aws:connect:us-east-1:123456789012:instance/{instance}/contact/{}",
        c.id
    )
}

/// A `ContactSearchSummary`.
fn summary(c: &FakeContact, instance: &str) -> Value {
    let mut v = json!({
        "Arn": arn(c, instance),
        "Id": c.id,
        "InitialContactId": c.initial_contact_id,
        "Channel": c.channel,
        "InitiationMethod": c.method(),
        "InitiationTimestamp": c.initiated_secs,
        "DisconnectTimestamp": c.initiated_secs + 240.0,
    });
    if let Some(a) = &c.agent_id {
        v["AgentInfo"] = json!({"Id": a, "ConnectedToAgentTimestamp": c.initiated_secs + 20.0});
    }
    if let Some(q) = &c.queue_id {
        v["QueueInfo"] = json!({"Id": q, "EnqueueTimestamp": c.initiated_secs + 5.0});
    }
    v
}

/// A `Contact` as DescribeContact answers it.
fn contact_body(c: &FakeContact, instance: &str) -> Value {
    let mut v = json!({
        "Arn": arn(c, instance),
        "Id": c.id,
        "InitialContactId": c.initial_contact_id,
        "Channel": c.channel,
        "InitiationMethod": c.method(),
        "InitiationTimestamp": c.initiated_secs,
        "DisconnectTimestamp": c.initiated_secs + 240.0,
        "LastUpdateTimestamp": c.initiated_secs + 241.0,
        "SystemEndpoint": {"Type": "TELEPHONE_NUMBER", "Address": "+18005550100"},
    });
    if let Some(a) = &c.agent_id {
        v["AgentInfo"] = json!({"Id": a, "ConnectedToAgentTimestamp": c.initiated_secs + 20.0});
    }
    if let Some(q) = &c.queue_id {
        v["QueueInfo"] = json!({"Id": q, "EnqueueTimestamp": c.initiated_secs + 5.0});
    }
    if let Some(n) = &c.customer_number {
        v["CustomerEndpoint"] = json!({"Type": "TELEPHONE_NUMBER", "Address": n});
    }
    if let Some(r) = &c.disconnect_reason {
        v["DisconnectReason"] = json!(r);
    }
    v
}

/// botocore's `ContactInitiationMethod` enum.
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
const CHANNELS: [&str; 4] = ["VOICE", "CHAT", "TASK", "EMAIL"];
const MAX_RANGE_SECS: f64 = 92.0 * 86_400.0;

fn invalid(message: &str) -> HttpResponse {
    error(400, "InvalidParameterException", message)
}

/// A list of strings, each `min..=max` long, at most `most` of them.
fn strings(v: &Value, most: usize, min: usize, max: usize) -> Result<Vec<String>, String> {
    let list = v.as_array().ok_or("expected a list")?;
    if list.len() > most {
        return Err(format!("at most {most} values"));
    }
    list.iter()
        .map(|x| {
            x.as_str()
                .filter(|s| (min..=max).contains(&s.chars().count()))
                .map(str::to_owned)
                .ok_or_else(|| format!("each value is a string of {min} to {max} characters"))
        })
        .collect()
}

fn one_of(values: &[String], allowed: &[&str], what: &str) -> Result<(), String> {
    match values.iter().find(|v| !allowed.contains(&v.as_str())) {
        Some(v) => Err(format!("{v} is not a valid {what}")),
        None => Ok(()),
    }
}

/// What a SearchContacts body asks, validated as botocore's model shapes it.
struct Criteria {
    start: f64,
    end: f64,
    max: usize,
    channels: Vec<String>,
    agents: Vec<String>,
    queues: Vec<String>,
    methods: Vec<String>,
    /// (key, values), and whether any one suffices.
    attributes: Vec<(String, Vec<String>)>,
    match_any: bool,
}

fn parse_search(body: &Value) -> Result<Criteria, String> {
    const TOP: [&str; 6] = [
        "InstanceId",
        "TimeRange",
        "SearchCriteria",
        "MaxResults",
        "NextToken",
        "Sort",
    ];
    let obj = body.as_object().ok_or("expected an object")?;
    if let Some(k) = obj.keys().find(|k| !TOP.contains(&k.as_str())) {
        return Err(format!("unknown member {k}"));
    }
    let range = &body["TimeRange"];
    const TYPES: [&str; 5] = [
        "INITIATION_TIMESTAMP",
        "SCHEDULED_TIMESTAMP",
        "CONNECTED_TO_AGENT_TIMESTAMP",
        "DISCONNECT_TIMESTAMP",
        "ENQUEUE_TIMESTAMP",
    ];
    if !range["Type"].as_str().is_some_and(|t| TYPES.contains(&t)) {
        return Err("TimeRange.Type is required".into());
    }
    let (Some(start), Some(end)) = (range["StartTime"].as_f64(), range["EndTime"].as_f64()) else {
        return Err("TimeRange.StartTime and EndTime are epoch seconds".into());
    };
    if end < start || end - start > MAX_RANGE_SECS {
        return Err("The time range must be forward and at most 92 days".into());
    }
    let max = match &body["MaxResults"] {
        Value::Null => 100,
        v => match v.as_u64() {
            Some(m @ 1..=100) => m as usize,
            _ => return Err("MaxResults is 1 to 100".into()),
        },
    };
    if let Some(sort) = body.get("Sort") {
        let field_ok = sort["FieldName"].as_str().is_some_and(|f| {
            [
                "INITIATION_TIMESTAMP",
                "SCHEDULED_TIMESTAMP",
                "CONNECTED_TO_AGENT_TIMESTAMP",
                "DISCONNECT_TIMESTAMP",
                "INITIATION_METHOD",
                "CHANNEL",
                "EXPIRY_TIMESTAMP",
            ]
            .contains(&f)
        });
        let order_ok = sort["Order"]
            .as_str()
            .is_some_and(|o| o == "ASCENDING" || o == "DESCENDING");
        if !field_ok || !order_ok {
            return Err("Sort needs FieldName and Order".into());
        }
    }
    if let Some(t) = body.get("NextToken") {
        if !t.as_str().is_some_and(|t| (1..=100_000).contains(&t.len())) {
            return Err("NextToken is 1 to 100000 characters".into());
        }
    }
    let mut c = Criteria {
        start,
        end,
        max,
        channels: Vec::new(),
        agents: Vec::new(),
        queues: Vec::new(),
        methods: Vec::new(),
        attributes: Vec::new(),
        match_any: false,
    };
    let Some(sc) = body.get("SearchCriteria") else {
        return Ok(c);
    };
    const MEMBERS: [&str; 5] = [
        "AgentIds",
        "QueueIds",
        "InitiationMethods",
        "Channels",
        "SearchableContactAttributes",
    ];
    let sc = sc.as_object().ok_or("SearchCriteria is an object")?;
    if let Some(k) = sc.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(format!(
            "SearchCriteria member {k} is not served by this fake"
        ));
    }
    if let Some(v) = sc.get("AgentIds") {
        c.agents = strings(v, 100, 1, 256).map_err(|e| format!("AgentIds: {e}"))?;
    }
    if let Some(v) = sc.get("QueueIds") {
        c.queues = strings(v, 100, 1, 256).map_err(|e| format!("QueueIds: {e}"))?;
    }
    if let Some(v) = sc.get("Channels") {
        c.channels = strings(v, 4, 1, 16).map_err(|e| format!("Channels: {e}"))?;
        one_of(&c.channels, &CHANNELS, "Channel")?;
    }
    if let Some(v) = sc.get("InitiationMethods") {
        c.methods = strings(v, 12, 1, 32).map_err(|e| format!("InitiationMethods: {e}"))?;
        one_of(&c.methods, &INITIATION_METHODS, "ContactInitiationMethod")?;
    }
    if let Some(v) = sc.get("SearchableContactAttributes") {
        let list = v["Criteria"]
            .as_array()
            .ok_or("SearchableContactAttributes.Criteria is required")?;
        if list.len() > 15 {
            return Err("at most 15 SearchableContactAttributes criteria".into());
        }
        for item in list {
            let key = item["Key"]
                .as_str()
                .filter(|k| (1..=100).contains(&k.chars().count()))
                .ok_or("a criterion's Key is 1 to 100 characters")?;
            let values = strings(&item["Values"], 20, 0, 100)
                .map_err(|e| format!("SearchableContactAttributes Values: {e}"))?;
            c.attributes.push((key.to_owned(), values));
        }
        c.match_any = match v.get("MatchType").and_then(Value::as_str) {
            None | Some("MATCH_ALL") => false,
            Some("MATCH_ANY") => true,
            Some(_) => return Err("MatchType is MATCH_ALL or MATCH_ANY here".into()),
        };
    }
    Ok(c)
}

impl Criteria {
    fn matches(&self, c: &FakeContact) -> bool {
        let any = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        let attribute = |(k, vals): &(String, Vec<String>)| {
            c.attributes.get(k).is_some_and(|v| vals.contains(v))
        };
        let attributes_ok = self.attributes.is_empty()
            || if self.match_any {
                self.attributes.iter().any(attribute)
            } else {
                self.attributes.iter().all(attribute)
            };
        c.initiated_secs >= self.start
            && c.initiated_secs < self.end
            && any(&self.channels, Some(&c.channel))
            && any(&self.agents, c.agent_id.as_deref())
            && any(&self.queues, c.queue_id.as_deref())
            && any(&self.methods, Some(c.method()))
            && attributes_ok
    }
}

/// The search a token belongs to: its body without the token.
fn search_key(body: &Value) -> String {
    let mut b = body.clone();
    if let Some(o) = b.as_object_mut() {
        o.remove("NextToken");
    }
    b.to_string()
}

/// An opaque token of `len` characters (base64 alphabet).
fn long_token(len: usize) -> String {
    let mut t = String::with_capacity(len + 32);
    while t.len() < len.max(1) {
        t.push_str(&uuid::Uuid::new_v4().simple().to_string());
        t.push('+');
    }
    t.truncate(len.max(1));
    t
}

async fn search(state: web::Data<Arc<Mutex<FakeState>>>, body: web::Json<Value>) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.searches.push(body.0.clone());
    if let Some(r) = refuse_counted(&mut s, "SearchContacts") {
        return r;
    }
    if body["InstanceId"] != json!(s.instance_id) {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    let criteria = match parse_search(&body) {
        Ok(c) => c,
        Err(e) => return invalid(&e),
    };
    let key = search_key(&body);
    let (offset, page_no) = match body["NextToken"].as_str() {
        None => (0, 0),
        Some(t) => match s.tokens.get(t) {
            Some((k, offset, page)) if *k == key => (*offset, *page),
            Some(_) => {
                return error(
                    400,
                    "InvalidRequestException",
                    "The NextToken does not belong to this search",
                )
            }
            None => return error(400, "InvalidRequestException", "Invalid NextToken"),
        },
    };
    let mut matching: Vec<&FakeContact> =
        s.contacts.iter().filter(|c| criteria.matches(c)).collect();
    let ascending = body["Sort"]["Order"] == "ASCENDING";
    // Descending by the asked field (Connect's default order when none is given).
    let field = body["Sort"]["FieldName"]
        .as_str()
        .unwrap_or("INITIATION_TIMESTAMP");
    matching.sort_by(|a, b| {
        let o = match field {
            "CHANNEL" => b.channel.cmp(&a.channel),
            "INITIATION_METHOD" => b.method().cmp(a.method()),
            _ => b.initiated_secs.total_cmp(&a.initiated_secs),
        };
        if ascending {
            o.reverse()
        } else {
            o
        }
    });
    let size = if s.ragged.is_empty() {
        criteria.max
    } else {
        s.ragged[page_no % s.ragged.len()].min(criteria.max)
    };
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|c| summary(c, &s.instance_id))
        .collect();
    let next = offset + page.len();
    let total = matching.len();
    let mut out = json!({"Contacts": page, "TotalCount": total});
    if next < total {
        let token = long_token(s.token_len);
        s.tokens.insert(token.clone(), (key, next, page_no + 1));
        out["NextToken"] = json!(token);
    }
    ok_json(&out)
}

async fn describe(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    if let Some(r) = refuse_counted(&mut s, "DescribeContact") {
        return r;
    }
    let (instance, id) = path.into_inner();
    match s
        .contacts
        .iter()
        .find(|c| c.id == id && instance == s.instance_id)
    {
        Some(c) => ok_json(&json!({"Contact": contact_body(c, &instance)})),
        None => error(404, "ResourceNotFoundException", "Contact not found"),
    }
}

async fn attributes(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let mut s = state.lock().unwrap();
    if let Some(r) = refuse_counted(&mut s, "GetContactAttributes") {
        return r;
    }
    let (instance, initial) = path.into_inner();
    match s
        .contacts
        .iter()
        .find(|c| c.initial_contact_id == initial && instance == s.instance_id)
    {
        Some(c) => ok_json(&json!({"Attributes": c.attributes})),
        None => error(404, "ResourceNotFoundException", "Contact not found"),
    }
}

impl ConnectFake {
    pub fn start(instance_id: &str, contacts: Vec<FakeContact>) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            instance_id: instance_id.to_owned(),
            contacts,
            token_len: 20_000,
            ..Default::default()
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/search-contacts", web::post().to(search))
                .route("/contacts/{instance}/{id}", web::get().to(describe))
                .route(
                    "/contact/attributes/{instance}/{initial}",
                    web::get().to(attributes),
                )
                .route(
                    "/instance/{instance}/attribute/{attribute}",
                    web::get().to(instance_attribute),
                )
                .route("/instance/{instance}/bots", web::get().to(list_bots))
                .route("/users-summary/{instance}", web::get().to(list_users))
                .route("/queues-summary/{instance}", web::get().to(list_queues))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let url = format!("http://{}", server.addrs()[0]);
        tokio::spawn(server.run());
        Self { url, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = Some(mode);
    }

    /// The next `n` requests answer 429 ThrottlingException.
    pub fn throttle_next(&self, n: usize) {
        self.state.lock().unwrap().throttle_next = n;
    }

    pub fn calls_to(&self, operation: &str) -> usize {
        self.state.lock().unwrap().calls_to(operation)
    }

    pub fn connect_calls(&self) -> usize {
        self.state.lock().unwrap().connect_calls()
    }

    /// An SDK configuration pointing at this fake (dummy credentials, no retries).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config_for(&self.url).await
    }
}

pub async fn sdk_config_for(url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(aws_sdk_connect::config::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await
}
