//! The offline demo: contacts and flow logs whose values were encrypted by
//! running the Lambda's own handler on synthetic Lex V2 events, served by
//! plain in-memory implementations of the directory and log-store traits.

pub mod keypad;
pub mod periods;
pub mod run;

use std::collections::BTreeMap;

use lambda_encrypt::context::ContactId;
use lambda_encrypt::handler::Handler;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::sources::contacts::{ContactDirectory, ContactSearch, ContactSummary, DirectoryNames};
use crate::sources::logs::{
    event_contact_id, ContactLogEvent, ContactLogQuery, ContactLogs, EventsPage, LogEvent,
    LogGroupName, LogStore, LogStreamName, StreamInfo, EVENTS_PER_PAGE,
};
use crate::sources::{check_token, Page, SourceError};

pub const DEMO_LOG_GROUP: &str = "/aws/connect/callvault-demo";
/// The demo's Amazon Connect instance id (for contact ARNs and console links).
pub const DEMO_INSTANCE: &str = "00000000-0000-4000-8000-00000000demo";
pub const DEMO_CONTACTS: usize = 60;
/// A well-known test card number, "leaked" in one demo stream on purpose.
pub const LEAKED_DEMO_CARD: &str = "4000 0566 5566 5556";
const CONTACTS_PER_PAGE: usize = 20;
/// The demo agents' Connect user names (`demo-agent-<index>`).
const DEMO_AGENTS: [&str; 4] = ["ana.lima", "ben.okafor", "chen.wei", "dana.ruiz"];
const STREAMS_PER_PAGE: usize = 25;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the Lambda handler refused a demo event: {0}")]
    Handler(&'static str),
    #[error("the Lambda handler did not capture demo contact {0}")]
    NotCaptured(String),
    #[error("the demo could not start: {0}")]
    Setup(String),
}

#[derive(Debug, Clone)]
pub struct DemoContact {
    pub summary: ContactSummary,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone)]
pub struct DemoStream {
    pub name: String,
    pub events: Vec<LogEvent>,
}

#[derive(Debug, Clone, Default)]
pub struct DemoData {
    pub contacts: Vec<DemoContact>,
    pub streams: Vec<DemoStream>,
}

fn digest(label: &str, i: usize) -> [u8; 32] {
    Sha256::digest(format!("callvault-demo/{label}/{i}").as_bytes()).into()
}

pub fn demo_contact_id(i: usize) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest("contact", i)[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// A Luhn-valid 16-digit number in the 4xxx test range, different per contact.
pub fn demo_card(i: usize) -> String {
    let d = digest("card", i);
    let mut digits: Vec<u8> = vec![4];
    digits.extend(d.iter().take(14).map(|b| b % 10));
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &x)| {
            let x = u32::from(x);
            if k % 2 == 0 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum();
    digits.push(((10 - sum % 10) % 10) as u8);
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

pub fn demo_zip(i: usize) -> String {
    let d = digest("zip", i);
    format!("{:05}", (u32::from(d[0]) << 8 | u32::from(d[1])) % 100_000)
}

fn lex_event(contact: &str, card: &str, zip: &str) -> Value {
    let slot = |v: &str| json!({"shape": "Scalar", "value": {"originalValue": v, "interpretedValue": v, "resolvedValues": [v]}});
    json!({
        "messageVersion": "1.0",
        "invocationSource": "DialogCodeHook",
        "inputMode": "DTMF",
        "sessionId": format!("lex-{contact}"),
        "inputTranscript": card,
        "bot": {"id": "CVDEMOBOT1", "name": "CallvaultCapture", "aliasId": "TSTALIASID", "localeId": "en_US", "version": "DRAFT"},
        "sessionState": {
            "sessionAttributes": {"contactId": contact},
            "intent": {"name": "CapturePaymentDetails", "slots": {"creditcard": slot(card), "zipcode": slot(zip)}, "state": "InProgress", "confirmationState": "None"}
        }
    })
}

fn flow_event(contact: &str, ts_us: i64, module: &str, parameters: Value) -> LogEvent {
    let time = crate::clock::format_us(ts_us);
    let message = json!({
        "ContactId": contact,
        "ContactFlowId": "arn:aws:connect:us-east-1:123456789012:instance/demo/contact-flow/callvault-capture",
        "ContactFlowName": "callvault-capture",
        "ContactFlowModuleType": module,
        "Identifier": format!("{module}-{}", ts_us % 9973),
        "Timestamp": time,
        "Parameters": parameters,
    });
    LogEvent {
        timestamp_us: ts_us,
        message: message.to_string(),
    }
}

/// Builds the demo data set: every captured value goes through `handler`.
pub async fn generate(handler: &Handler, now_us: i64) -> Result<DemoData, DemoError> {
    let mut data = DemoData::default();
    let mut stream_events: BTreeMap<String, Vec<LogEvent>> = BTreeMap::new();
    for i in 0..DEMO_CONTACTS {
        let id = demo_contact_id(i);
        let response = handler
            .handle(lex_event(&id, &demo_card(i), &demo_zip(i)))
            .await
            .map_err(|e| DemoError::Handler(e.kind()))?;
        let attrs = serde_json::to_value(&response)
            .ok()
            .and_then(|v| v["sessionState"]["sessionAttributes"].as_object().cloned())
            .ok_or_else(|| DemoError::NotCaptured(id.clone()))?;
        let get = |k: &str| attrs.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(card_ct), Some(zip_ct)) = (get("creditcard"), get("zipcode")) else {
            return Err(DemoError::NotCaptured(id));
        };
        let started = now_us - (i as i64) * 37 * 60_000_000 - 5 * 60_000_000;
        let contact_id = ContactId::parse(&id).map_err(|_| DemoError::NotCaptured(id.clone()))?;
        let mut attributes = BTreeMap::new();
        attributes.insert("creditcard".to_owned(), card_ct.clone());
        attributes.insert("creditcard_status".to_owned(), "captured".to_owned());
        attributes.insert("zipcode".to_owned(), zip_ct.clone());
        attributes.insert("zipcode_status".to_owned(), "captured".to_owned());
        attributes.insert(
            "language".to_owned(),
            if i % 4 == 0 { "es-US" } else { "en-US" }.to_owned(),
        );
        attributes.insert(
            "customerTier".to_owned(),
            ["standard", "gold", "platinum"][i % 3].to_owned(),
        );
        data.contacts.push(DemoContact {
            summary: ContactSummary {
                initial_contact_id: Some(contact_id.clone()),
                channel: if i % 7 == 6 { "CHAT" } else { "VOICE" }.to_owned(),
                initiation_method: if i % 5 == 4 { "OUTBOUND" } else { "INBOUND" }.to_owned(),
                initiated_us: Some(started),
                disconnected_us: Some(started + 4 * 60_000_000 + (i as i64 % 9) * 20_000_000),
                arn: Some(format!(
                    "arn:aws:connect:us-east-1:111122223333:instance/{DEMO_INSTANCE}/contact/{}",
                    contact_id.as_str()
                )),
                agent_id: Some(format!("demo-agent-{}", i % 4)),
                queue_id: Some(["demo-queue-billing", "demo-queue-support"][i % 2].to_owned()),
                customer_endpoint: Some(crate::sources::contacts::CustomerEndpoint::new(&format!(
                    "+1555010{:04}",
                    i % 10_000
                ))),
                disconnect_reason: Some(
                    ["CUSTOMER_DISCONNECT", "AGENT_DISCONNECT"][i % 2].to_owned(),
                ),
                ..ContactSummary::new(contact_id)
            },
            attributes,
        });
        let day = crate::clock::format_us(started)
            .chars()
            .take(10)
            .collect::<String>()
            .replace('-', "/");
        let stream = format!("{day}/callvault-capture-flow/{:02}", i % 4);
        let events = stream_events.entry(stream).or_default();
        events.push(flow_event(&id, started + 1_000_000, "GetUserInput", json!({"BotAliasArn": "arn:aws:lex:us-east-1:123456789012:bot-alias/CVDEMOBOT1/TSTALIASID", "Text": "Please key in your card number."})));
        events.push(flow_event(
            &id,
            started + 40_000_000,
            "SetAttributes",
            json!({"Key": "creditcard", "Value": card_ct}),
        ));
        events.push(flow_event(
            &id,
            started + 70_000_000,
            "SetAttributes",
            json!({"Key": "zipcode", "Value": zip_ct}),
        ));
        events.push(flow_event(
            &id,
            started + 90_000_000,
            "Disconnect",
            json!({}),
        ));
    }
    // One stream from a misconfigured debug flow that logged the slot in the clear.
    let leaked_contact = demo_contact_id(DEMO_CONTACTS - 1);
    let t = now_us - 26 * 3_600_000_000;
    stream_events.insert(
        "legacy-debug-flow/leaked".to_owned(),
        vec![
            flow_event(
                &leaked_contact,
                t,
                "SetLoggingBehavior",
                json!({"LoggingBehavior": "Enable"}),
            ),
            flow_event(
                &leaked_contact,
                t + 30_000_000,
                "SetAttributes",
                json!({"Key": "debug_authNumber", "Value": LEAKED_DEMO_CARD}),
            ),
            flow_event(
                &leaked_contact,
                t + 31_000_000,
                "PlayPrompt",
                json!({"Text": "Thank you."}),
            ),
        ],
    );
    data.streams = stream_events
        .into_iter()
        .map(|(name, mut events)| {
            events.sort_by_key(|e| e.timestamp_us);
            DemoStream { name, events }
        })
        .collect();
    Ok(data)
}

fn offset_token(prefix: char, token: Option<&str>) -> Result<usize, SourceError> {
    match token {
        None => Ok(0),
        Some(t) => {
            check_token(t)?;
            t.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .ok_or(SourceError::BadToken)
        }
    }
}

pub struct DemoDirectory {
    contacts: Vec<DemoContact>,
}

impl DemoDirectory {
    pub fn new(data: &DemoData) -> Self {
        let mut contacts = data.contacts.clone();
        contacts.sort_by_key(|c| std::cmp::Reverse(c.summary.initiated_us));
        Self { contacts }
    }
}

#[async_trait::async_trait]
impl ContactDirectory for DemoDirectory {
    fn page_size(&self) -> usize {
        CONTACTS_PER_PAGE
    }

    async fn search(&self, q: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        let start = offset_token('c', q.next_token.as_deref())?;
        let any = |list: &[String], v: Option<&String>| {
            list.is_empty() || v.is_some_and(|v| list.contains(v))
        };
        let per_page = q.page_size.unwrap_or(CONTACTS_PER_PAGE);
        let mut matching: Vec<ContactSummary> = self
            .contacts
            .iter()
            .filter(|c| match &q.contact_id {
                // An exact id is found whatever the time range.
                Some(id) => &c.summary.id == id,
                None => c
                    .summary
                    .initiated_us
                    .is_some_and(|t| t >= q.from_us && t < q.to_us),
            })
            .filter(|c| q.channel.is_none_or(|ch| c.summary.channel == ch.as_str()))
            .filter(|c| any(&q.agent_ids, c.summary.agent_id.as_ref()))
            .filter(|c| any(&q.queue_ids, c.summary.queue_id.as_ref()))
            .filter(|c| any(&q.initiation_methods, Some(&c.summary.initiation_method)))
            .filter(|c| {
                q.attributes
                    .iter()
                    .all(|a| any(&a.values, c.attributes.get(&a.key)))
            })
            .map(|c| c.summary.clone())
            .collect();
        // Sorted as SearchContacts' `Sort` asks.
        q.sort.apply(&mut matching);
        let items: Vec<ContactSummary> = matching
            .iter()
            .skip(start)
            .take(per_page)
            .cloned()
            .collect();
        let next = start + items.len();
        Ok(Page {
            items,
            next_token: (next < matching.len()).then(|| format!("c{next}")),
            total: Some(matching.len() as u64),
        })
    }

    async fn describe(&self, id: &ContactId) -> Result<ContactSummary, SourceError> {
        self.contacts
            .iter()
            .find(|c| &c.summary.id == id)
            .map(|c| c.summary.clone())
            .ok_or(SourceError::NotFound)
    }

    async fn attributes(
        &self,
        initial: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        self.contacts
            .iter()
            .find(|c| {
                c.summary
                    .initial_contact_id
                    .as_ref()
                    .unwrap_or(&c.summary.id)
                    == initial
            })
            .map(|c| c.attributes.clone())
            .ok_or(SourceError::NotFound)
    }

    async fn names(&self) -> Result<std::sync::Arc<DirectoryNames>, SourceError> {
        Ok(std::sync::Arc::new(demo_names()))
    }
}

/// The demo instance's agents and queues, as ListUsers and ListQueues name them.
pub fn demo_names() -> DirectoryNames {
    DirectoryNames {
        agents: DEMO_AGENTS
            .iter()
            .enumerate()
            .map(|(i, name)| (format!("demo-agent-{i}"), (*name).to_owned()))
            .collect(),
        queues: [
            ("demo-queue-billing", "Billing"),
            ("demo-queue-support", "Support"),
        ]
        .into_iter()
        .map(|(id, name)| (id.to_owned(), name.to_owned()))
        .collect(),
    }
}

pub struct DemoLogStore {
    group: LogGroupName,
    streams: Vec<DemoStream>,
}

impl DemoLogStore {
    pub fn new(data: &DemoData) -> Self {
        let mut streams = data.streams.clone();
        streams.sort_by_key(|s| std::cmp::Reverse(s.events.last().map(|e| e.timestamp_us)));
        Self {
            #[allow(clippy::expect_used)]
            group: LogGroupName::parse(DEMO_LOG_GROUP).expect("the demo group name is valid"),
            streams,
        }
    }
}

#[async_trait::async_trait]
impl LogStore for DemoLogStore {
    fn groups(&self) -> Vec<LogGroupName> {
        vec![self.group.clone()]
    }

    async fn streams(
        &self,
        group: &LogGroupName,
        token: Option<&str>,
    ) -> Result<Page<StreamInfo>, SourceError> {
        if group != &self.group {
            return Err(SourceError::NotFound);
        }
        let start = offset_token('s', token)?;
        let items: Vec<StreamInfo> = self
            .streams
            .iter()
            .skip(start)
            .take(STREAMS_PER_PAGE)
            .map(|s| StreamInfo {
                name: s.name.clone(),
                last_event_us: s.events.last().map(|e| e.timestamp_us),
                stored_bytes: Some(s.events.iter().map(|e| e.message.len() as i64).sum()),
            })
            .collect();
        let next = start + items.len();
        Ok(Page::new(
            items,
            (next < self.streams.len()).then(|| format!("s{next}")),
        ))
    }

    async fn events(
        &self,
        group: &LogGroupName,
        stream: &LogStreamName,
        token: Option<&str>,
    ) -> Result<EventsPage, SourceError> {
        if group != &self.group {
            return Err(SourceError::NotFound);
        }
        let s = self
            .streams
            .iter()
            .find(|s| s.name == stream.as_str())
            .ok_or(SourceError::NotFound)?;
        let per_page = EVENTS_PER_PAGE as usize;
        let start = match token {
            None => 0,
            Some(t) if t.starts_with('b') => offset_token('b', Some(t))?,
            Some(t) => offset_token('f', Some(t))?,
        };
        if start > s.events.len() {
            return Err(SourceError::BadToken);
        }
        let end = (start + per_page).min(s.events.len());
        Ok(EventsPage {
            events: s.events[start..end].to_vec(),
            forward_token: (end < s.events.len()).then(|| format!("f{end}")),
            backward_token: (start > 0).then(|| format!("b{}", start.saturating_sub(per_page))),
        })
    }

    async fn events_for_contact(&self, q: &ContactLogQuery) -> Result<ContactLogs, SourceError> {
        let mut events: Vec<ContactLogEvent> = self
            .streams
            .iter()
            .flat_map(|s| {
                s.events
                    .iter()
                    .filter(|e| e.timestamp_us >= q.from_us && e.timestamp_us <= q.to_us)
                    .filter(|e| event_contact_id(&e.message).as_deref() == Some(q.contact.as_str()))
                    .map(|e| ContactLogEvent {
                        group: self.group.as_str().to_owned(),
                        stream: s.name.clone(),
                        event: e.clone(),
                    })
            })
            .collect();
        events.sort_by_key(|e| e.event.timestamp_us);
        Ok(ContactLogs {
            events,
            more: None,
            duplicates: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_cards_are_luhn_valid_and_distinct() {
        let cards: std::collections::BTreeSet<String> = (0..DEMO_CONTACTS).map(demo_card).collect();
        assert_eq!(cards.len(), DEMO_CONTACTS);
        for c in &cards {
            assert_eq!(c.len(), 16);
            assert!(lambda_encrypt::validate::luhn_valid(c.as_bytes()), "{c}");
        }
        assert!(lambda_encrypt::validate::luhn_valid(
            LEAKED_DEMO_CARD.replace(' ', "").as_bytes()
        ));
    }

    #[test]
    fn demo_ids_are_stable_contact_ids() {
        assert_eq!(demo_contact_id(3), demo_contact_id(3));
        assert!(ContactId::parse(&demo_contact_id(0)).is_ok());
    }
}
