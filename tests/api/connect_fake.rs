//! A wire-level fake of the Amazon Connect API (restJson1), for the operations
//! moto lacks: SearchContacts, DescribeContact, GetContactAttributes, and for
//! preflight DescribeInstanceAttribute and ListBots. The real
//! `aws-sdk-connect` client talks to it over HTTP; `connect_model.rs` checks
//! its routes and bodies against botocore's Connect model.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

#[derive(Clone, Debug)]
pub struct FakeContact {
    pub id: String,
    pub initial_contact_id: String,
    pub channel: String,
    pub initiated_secs: f64,
    pub attributes: BTreeMap<String, String>,
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

fn summary(c: &FakeContact, instance: &str) -> Value {
    json!({
        "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{instance}/contact/{}", c.id),
        "Id": c.id,
        "InitialContactId": c.initial_contact_id,
        "Channel": c.channel,
        "InitiationMethod": "INBOUND",
        "InitiationTimestamp": c.initiated_secs,
        "DisconnectTimestamp": c.initiated_secs + 240.0,
    })
}

async fn search(state: web::Data<Arc<Mutex<FakeState>>>, body: web::Json<Value>) -> HttpResponse {
    let mut s = state.lock().unwrap();
    s.searches.push(body.0.clone());
    if let Some(r) = refuse(&s) {
        return r;
    }
    if body["InstanceId"] != json!(s.instance_id) {
        return error(404, "ResourceNotFoundException", "instance not found");
    }
    let start = body["TimeRange"]["StartTime"].as_f64().unwrap_or(0.0);
    let end = body["TimeRange"]["EndTime"].as_f64().unwrap_or(f64::MAX);
    let channels: Vec<String> = body["SearchCriteria"]["Channels"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let max = body["MaxResults"].as_u64().unwrap_or(100) as usize;
    let offset: usize = body["NextToken"]
        .as_str()
        .and_then(|t| t.strip_prefix("tok"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let mut matching: Vec<&FakeContact> = s
        .contacts
        .iter()
        .filter(|c| c.initiated_secs >= start && c.initiated_secs < end)
        .filter(|c| channels.is_empty() || channels.contains(&c.channel))
        .collect();
    matching.sort_by(|a, b| b.initiated_secs.total_cmp(&a.initiated_secs));
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max)
        .map(|c| summary(c, &s.instance_id))
        .collect();
    let next = offset + page.len();
    let mut out = json!({"Contacts": page, "TotalCount": matching.len()});
    if next < matching.len() {
        out["NextToken"] = json!(format!("tok{next}"));
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(out.to_string())
}

async fn describe(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let s = state.lock().unwrap();
    if let Some(r) = refuse(&s) {
        return r;
    }
    let (instance, id) = path.into_inner();
    match s
        .contacts
        .iter()
        .find(|c| c.id == id && instance == s.instance_id)
    {
        Some(c) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json!({"Contact": summary(c, &instance)}).to_string()),
        None => error(404, "ResourceNotFoundException", "Contact not found"),
    }
}

async fn attributes(
    state: web::Data<Arc<Mutex<FakeState>>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let s = state.lock().unwrap();
    if let Some(r) = refuse(&s) {
        return r;
    }
    let (instance, initial) = path.into_inner();
    match s
        .contacts
        .iter()
        .find(|c| c.initial_contact_id == initial && instance == s.instance_id)
    {
        Some(c) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json!({"Attributes": c.attributes}).to_string()),
        None => error(404, "ResourceNotFoundException", "Contact not found"),
    }
}

impl ConnectFake {
    pub fn start(instance_id: &str, contacts: Vec<FakeContact>) -> Self {
        let state = Arc::new(Mutex::new(FakeState {
            instance_id: instance_id.to_owned(),
            contacts,
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
