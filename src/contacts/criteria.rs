//! The contact search form, parsed at the edge into a `ContactSearch`: every
//! criterion bounded as SearchContacts allows it, attribute keys only those
//! the operator configured as searchable (`CALLVAULT_SEARCHABLE_ATTRIBUTES`).

use std::collections::BTreeMap;

use lambda_encrypt::context::ContactId;

use crate::sources::contacts::{AttributeCriterion, Channel, ContactSearch, INITIATION_METHODS};

pub const DAY_US: i64 = 86_400_000_000;
/// SearchContacts' widest time range.
pub const MAX_RANGE_DAYS: i64 = 92;
/// When no range is given: the last week.
pub const DEFAULT_DAYS: i64 = 7;
/// AgentIds and QueueIds hold at most this many ids (botocore's model).
pub const MAX_IDS: usize = 100;
const MAX_ID_CHARS: usize = 256;
const MAX_VALUE_CHARS: usize = 100;
const MAX_VALUES: usize = 20;
/// Form fields of searchable attributes are named `attr.<key>`.
pub const ATTRIBUTE_PREFIX: &str = "attr.";

/// Why a search was refused (shown to the user; the kind is audited).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriteriaError {
    #[error("That is not a contact id.")]
    ContactId,
    #[error("Dates are YYYY-MM-DD.")]
    Date,
    #[error("The time range must be forward and at most 92 days (Amazon Connect's limit).")]
    Range,
    #[error("Unknown channel.")]
    Channel,
    #[error("Unknown initiation method.")]
    Method,
    #[error("Agent and queue ids are Connect ids (letters, digits, - _ : / .), at most 256 characters and 100 of them.")]
    Ids,
    #[error("That contact attribute is not searchable here (CALLVAULT_SEARCHABLE_ATTRIBUTES).")]
    Attribute,
    #[error(
        "Attribute values are at most 100 characters, 20 of them, without control characters."
    )]
    AttributeValue,
}

impl CriteriaError {
    /// The audit outcome (never the value that was refused).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::ContactId => "refused:contact_id",
            Self::Date => "refused:date",
            Self::Range => "refused:range",
            Self::Channel => "refused:channel",
            Self::Method => "refused:method",
            Self::Ids => "refused:ids",
            Self::Attribute => "refused:attribute",
            Self::AttributeValue => "refused:attribute_value",
        }
    }
}

fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The start (UTC, µs) of a `YYYY-MM-DD` day.
fn day_start_us(s: &str) -> Result<i64, CriteriaError> {
    use chrono::TimeZone as _;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| chrono::Utc.from_utc_datetime(&t).timestamp_micros())
        .ok_or(CriteriaError::Date)
}

/// A comma list of Connect ids (agents, queues).
fn ids(value: Option<&str>) -> Result<Vec<String>, CriteriaError> {
    let list: Vec<String> = value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let ok = list.len() <= MAX_IDS
        && list.iter().all(|id| {
            id.len() <= MAX_ID_CHARS
                && id.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'/' | b'.')
                })
        });
    if ok {
        Ok(list)
    } else {
        Err(CriteriaError::Ids)
    }
}

/// Parses the search form (query string pairs). `searchable` are the
/// configured attribute keys; `now_us` sets the default range.
pub fn parse(
    form: &BTreeMap<String, String>,
    searchable: &[String],
    now_us: i64,
) -> Result<ContactSearch, CriteriaError> {
    let contact_id = field(form, "contact_id")
        .map(|c| ContactId::parse(c).map_err(|_| CriteriaError::ContactId))
        .transpose()?;
    let from_us = field(form, "from")
        .map(day_start_us)
        .transpose()?
        .unwrap_or(now_us - DEFAULT_DAYS * DAY_US);
    let to_us = field(form, "to")
        .map(|d| day_start_us(d).map(|t| t + DAY_US))
        .transpose()?
        .unwrap_or(now_us + DAY_US);
    // An exact id is looked up whatever the range; the range must still be sane.
    if to_us <= from_us || to_us - from_us > MAX_RANGE_DAYS * DAY_US {
        return Err(CriteriaError::Range);
    }
    let channel = field(form, "channel")
        .map(|c| Channel::parse(c).ok_or(CriteriaError::Channel))
        .transpose()?;
    let initiation_methods = match field(form, "method") {
        None => Vec::new(),
        Some(m) => {
            let m = m.to_ascii_uppercase();
            if !INITIATION_METHODS.contains(&m.as_str()) {
                return Err(CriteriaError::Method);
            }
            vec![m]
        }
    };
    let agent_ids = ids(field(form, "agent"))?;
    let queue_ids = ids(field(form, "queue"))?;
    let mut attributes = Vec::new();
    for (name, value) in form {
        let Some(key) = name.strip_prefix(ATTRIBUTE_PREFIX) else {
            continue;
        };
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        if !searchable.iter().any(|k| k == key) {
            return Err(CriteriaError::Attribute);
        }
        let values: Vec<String> = value
            .split('|')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        let ok = values.len() <= MAX_VALUES
            && values
                .iter()
                .all(|v| v.chars().count() <= MAX_VALUE_CHARS && !v.chars().any(char::is_control));
        if !ok {
            return Err(CriteriaError::AttributeValue);
        }
        attributes.push(AttributeCriterion {
            key: key.to_owned(),
            values,
        });
    }
    Ok(ContactSearch {
        contact_id,
        from_us,
        to_us,
        channel,
        agent_ids,
        queue_ids,
        initiation_methods,
        attributes,
        next_token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_720_000_000_000; // 2025-12-03

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn an_empty_form_is_the_last_week() {
        let s = parse(&form(&[]), &[], NOW).unwrap();
        assert_eq!(s.to_us - s.from_us, (DEFAULT_DAYS + 1) * DAY_US);
    }

    #[test]
    fn every_criterion_is_read() {
        let s = parse(
            &form(&[
                ("from", "2025-11-01"),
                ("to", "2025-11-30"),
                ("channel", "voice"),
                ("method", "callback"),
                ("agent", "a-1, a-2"),
                ("queue", "q-1"),
                ("attr.tier", "gold|silver"),
            ]),
            &["tier".to_owned()],
            NOW,
        )
        .unwrap();
        assert_eq!(s.channel, Some(Channel::Voice));
        assert_eq!(s.initiation_methods, ["CALLBACK"]);
        assert_eq!(s.agent_ids, ["a-1", "a-2"]);
        assert_eq!(s.queue_ids, ["q-1"]);
        assert_eq!(s.attributes[0].values, ["gold", "silver"]);
    }

    #[test]
    fn bad_criteria_are_refused_with_their_kind() {
        let long = "x".repeat(300);
        let many = vec!["a"; 101].join(",");
        let cases: Vec<(Vec<(&str, &str)>, CriteriaError)> = vec![
            (vec![("contact_id", "<script>")], CriteriaError::ContactId),
            (vec![("from", "yesterday")], CriteriaError::Date),
            (
                vec![("from", "2025-01-01"), ("to", "2025-12-01")],
                CriteriaError::Range,
            ),
            (
                vec![("from", "2025-12-01"), ("to", "2025-11-01")],
                CriteriaError::Range,
            ),
            (vec![("channel", "fax")], CriteriaError::Channel),
            (vec![("method", "TELEPATHY")], CriteriaError::Method),
            (vec![("agent", &long)], CriteriaError::Ids),
            (vec![("queue", &many)], CriteriaError::Ids),
            (vec![("agent", "a b")], CriteriaError::Ids),
            (vec![("attr.creditcard", "4111")], CriteriaError::Attribute),
            (vec![("attr.tier", &long)], CriteriaError::AttributeValue),
            (
                vec![("attr.tier", "a\u{0}b")],
                CriteriaError::AttributeValue,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                parse(&form(&pairs), &["tier".to_owned()], NOW),
                Err(expected.clone()),
                "{pairs:?}"
            );
            assert!(expected.kind().starts_with("refused:"));
        }
    }
}
