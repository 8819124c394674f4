//! The contact search form, parsed at the edge into a `ContactSearch`: every
//! criterion bounded as SearchContacts allows it, attribute keys only those
//! the operator configured as searchable (`CALLVAULT_SEARCHABLE_ATTRIBUTES`).

use std::collections::BTreeMap;

use chrono_tz::Tz;
use lambda_encrypt::context::ContactId;

use crate::sources::contacts::{
    AttributeCriterion, Channel, ContactSearch, ContactSort, SortField, INITIATION_METHODS,
    PAGE_SIZES,
};

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
    #[error("That is not a contact id: paste the id as Amazon Connect shows it (36 letters, digits and hyphens), or its start.")]
    ContactId,
    #[error("Enter the date as year-month-day, for example 2026-12-07.")]
    Date,
    #[error("Choose an end date on or after the start date, at most 92 days later (Amazon Connect searches up to 92 days).")]
    Range,
    #[error("Choose a channel from the list.")]
    Channel,
    #[error("Choose an initiation method from the list.")]
    Method,
    #[error("Enter Amazon Connect ids (letters, digits and - _ : / .), up to 100 of them separated by commas.")]
    Ids,
    #[error("That contact attribute cannot be searched here.")]
    Attribute,
    #[error("Each attribute value is at most 100 characters, up to 20 values separated by |.")]
    AttributeValue,
    #[error("Sort by a column heading: start, end, channel or method.")]
    Sort,
    #[error("Choose 10, 25, 50 or 100 contacts per page.")]
    PageSize,
    #[error(
        "Choose a range from the list: the last hour, today, the last 24 hours, 7 days or 30 days."
    )]
    RelativeRange,
}

/// Where a refused search is shown on its form: the field the message is
/// beside (and the focus goes to), another field it also marks, or neither
/// (the sort links, an attribute the form does not offer).
pub fn refused_fields(e: &CriteriaError, form: &BTreeMap<String, String>) -> [Option<String>; 2] {
    let one = |name: &str| [Some(name.to_owned()), None];
    match e {
        CriteriaError::ContactId => one("contact_id"),
        CriteriaError::Date if field(form, "from").is_some_and(|d| parse_day(d).is_err()) => {
            one("from")
        }
        CriteriaError::Date => one("to"),
        CriteriaError::Range => [Some("from".to_owned()), Some("to".to_owned())],
        CriteriaError::Channel => one("channel"),
        CriteriaError::Method => one("method"),
        CriteriaError::Ids if ids(field(form, "agent")).is_err() => one("agent"),
        CriteriaError::Ids => one("queue"),
        CriteriaError::AttributeValue => [
            form.iter()
                .find(|(k, v)| k.starts_with(ATTRIBUTE_PREFIX) && attribute_values(v).is_err())
                .map(|(k, _)| k.clone()),
            None,
        ],
        CriteriaError::PageSize => one("per_page"),
        CriteriaError::RelativeRange => one("range"),
        CriteriaError::Attribute | CriteriaError::Sort => [None, None],
    }
}

/// The values of one attribute box (`a|b` for either), bounded.
fn attribute_values(value: &str) -> Result<Vec<String>, CriteriaError> {
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
    if ok {
        Ok(values)
    } else {
        Err(CriteriaError::AttributeValue)
    }
}

/// The relative ranges offered beside the dates: (key, label).
pub const RELATIVE_RANGES: [(&str, &str); 5] = [
    ("1h", "Last hour"),
    ("today", "Today"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
];

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
            Self::Sort => "refused:sort",
            Self::PageSize => "refused:page_size",
            Self::RelativeRange => "refused:relative_range",
        }
    }
}

fn field<'a>(form: &'a BTreeMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The first instant (µs) of `date` in `zone` that exists (a day may start
/// inside a daylight-saving gap).
pub fn local_day_start(date: chrono::NaiveDate, zone: Tz) -> Option<i64> {
    use chrono::TimeZone as _;
    (0..=3).find_map(|h| {
        date.and_hms_opt(h, 0, 0)
            .and_then(|t| zone.from_local_datetime(&t).earliest())
            .map(|t| t.timestamp_micros())
    })
}

fn parse_day(s: &str) -> Result<chrono::NaiveDate, CriteriaError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| CriteriaError::Date)
}

/// The start (µs) of a `YYYY-MM-DD` day in `zone`.
fn day_start_us(s: &str, zone: Tz) -> Result<i64, CriteriaError> {
    local_day_start(parse_day(s)?, zone).ok_or(CriteriaError::Date)
}

/// The end (µs, exclusive) of a `YYYY-MM-DD` day in `zone`: the next day's start.
fn day_end_us(s: &str, zone: Tz) -> Result<i64, CriteriaError> {
    parse_day(s)?
        .succ_opt()
        .and_then(|d| local_day_start(d, zone))
        .ok_or(CriteriaError::Date)
}

/// `(from, to)` of a relative range ending now; "today" starts at local midnight.
pub fn relative_range(key: &str, now_us: i64, zone: Tz) -> Result<(i64, i64), CriteriaError> {
    const HOUR_US: i64 = 3_600_000_000;
    let from = match key {
        "1h" => now_us - HOUR_US,
        "24h" => now_us - 24 * HOUR_US,
        "7d" => now_us - 7 * DAY_US,
        "30d" => now_us - 30 * DAY_US,
        "today" => {
            use chrono::TimeZone as _;
            let today = zone
                .timestamp_micros(now_us)
                .single()
                .map(|t| t.date_naive())
                .ok_or(CriteriaError::RelativeRange)?;
            local_day_start(today, zone).ok_or(CriteriaError::RelativeRange)?
        }
        _ => return Err(CriteriaError::RelativeRange),
    };
    // A minute past now: contacts that start while the page loads count.
    Ok((from, now_us + 60_000_000))
}

/// `sort=started` (ascending) or `sort=-started` (descending).
pub fn parse_sort(value: Option<&str>) -> Result<ContactSort, CriteriaError> {
    let Some(v) = value else {
        return Ok(ContactSort::default());
    };
    let (ascending, key) = match v.strip_prefix('-') {
        Some(k) => (false, k),
        None => (true, v),
    };
    SortField::parse(key)
        .map(|field| ContactSort { field, ascending })
        .ok_or(CriteriaError::Sort)
}

/// The `sort` parameter that gives `sort`.
pub fn sort_param(sort: ContactSort) -> String {
    format!(
        "{}{}",
        if sort.ascending { "" } else { "-" },
        sort.field.key()
    )
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
    zone: Tz,
) -> Result<ContactSearch, CriteriaError> {
    let contact_id = field(form, "contact_id")
        .map(|c| ContactId::parse(c).map_err(|_| CriteriaError::ContactId))
        .transpose()?;
    let sort = parse_sort(field(form, "sort"))?;
    let page_size = field(form, "per_page")
        .map(|n| {
            n.parse::<usize>()
                .ok()
                .filter(|n| PAGE_SIZES.contains(n))
                .ok_or(CriteriaError::PageSize)
        })
        .transpose()?;
    // A relative range wins over dates; dates are days in the user's zone.
    let (from_us, to_us) = match field(form, "range") {
        Some(r) => relative_range(r, now_us, zone)?,
        None => (
            field(form, "from")
                .map(|d| day_start_us(d, zone))
                .transpose()?
                .unwrap_or(now_us - DEFAULT_DAYS * DAY_US),
            field(form, "to")
                .map(|d| day_end_us(d, zone))
                .transpose()?
                .unwrap_or(now_us + DAY_US),
        ),
    };
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
        let values = attribute_values(value)?;
        attributes.push(AttributeCriterion {
            key: key.to_owned(),
            values,
        });
    }
    Ok(ContactSearch {
        sort,
        page_size,
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

/// What the contact id box asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdLookup {
    /// A whole id (Connect's are UUIDs, compared in lower case): open it.
    Exact(ContactId),
    /// The start of an id: searched in the range, with a hint.
    Prefix(String),
}

/// Characters of a Connect contact id (a UUID).
pub const CONTACT_ID_CHARS: usize = 36;

/// Reads the contact id box: spaces dropped (pasted ids carry them), a UUID
/// in any case or without hyphens made canonical, a shorter run of hex
/// digits and hyphens taken as a prefix.
pub fn id_lookup(raw: &str) -> Result<Option<IdLookup>, CriteriaError> {
    let s: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(uuid) = uuid::Uuid::try_parse(&s) {
        let id = ContactId::parse(&uuid.hyphenated().to_string())
            .map_err(|_| CriteriaError::ContactId)?;
        return Ok(Some(IdLookup::Exact(id)));
    }
    let id = ContactId::parse(&s).map_err(|_| CriteriaError::ContactId)?;
    let prefix_like =
        s.len() < CONTACT_ID_CHARS && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    Ok(Some(if prefix_like {
        IdLookup::Prefix(s.to_ascii_lowercase())
    } else {
        IdLookup::Exact(id)
    }))
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
    fn a_refusal_is_shown_beside_the_field_that_caused_it() {
        let f = form(&[("from", "2026-01-02"), ("to", "x"), ("agent", "a b")]);
        let at = |e| refused_fields(&e, &f);
        assert_eq!(at(CriteriaError::Date), [Some("to".into()), None]);
        assert_eq!(at(CriteriaError::Ids), [Some("agent".into()), None]);
        assert_eq!(
            at(CriteriaError::Range),
            [Some("from".into()), Some("to".into())]
        );
        let f = form(&[("from", "13/01/2026"), ("queue", "q;1")]);
        assert_eq!(
            refused_fields(&CriteriaError::Date, &f),
            [Some("from".into()), None]
        );
        assert_eq!(
            refused_fields(&CriteriaError::Ids, &f),
            [Some("queue".into()), None]
        );
        let f = form(&[("attr.a", "fine"), ("attr.b", "bad\u{1}")]);
        assert_eq!(
            refused_fields(&CriteriaError::AttributeValue, &f),
            [Some("attr.b".into()), None]
        );
        assert_eq!(refused_fields(&CriteriaError::Sort, &f), [None, None]);
    }

    #[test]
    fn an_empty_form_is_the_last_week() {
        let s = parse(&form(&[]), &[], NOW, Tz::UTC).unwrap();
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
            Tz::UTC,
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
            (vec![("sort", "agent; DROP")], CriteriaError::Sort),
            (vec![("sort", "--started")], CriteriaError::Sort),
            (vec![("per_page", "1000000")], CriteriaError::PageSize),
            (vec![("per_page", "-1")], CriteriaError::PageSize),
            (vec![("range", "forever")], CriteriaError::RelativeRange),
            (vec![("attr.tier", &long)], CriteriaError::AttributeValue),
            (
                vec![("attr.tier", "a\u{0}b")],
                CriteriaError::AttributeValue,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(
                parse(&form(&pairs), &["tier".to_owned()], NOW, Tz::UTC),
                Err(expected.clone()),
                "{pairs:?}"
            );
            assert!(expected.kind().starts_with("refused:"));
        }
    }

    #[test]
    fn sorting_ranges_and_zones_are_read() {
        let s = parse(
            &form(&[("sort", "-channel"), ("per_page", "50"), ("range", "1h")]),
            &[],
            NOW,
            Tz::UTC,
        )
        .unwrap();
        assert_eq!(s.sort.field, SortField::Channel);
        assert!(!s.sort.ascending);
        assert_eq!(sort_param(s.sort), "-channel");
        assert_eq!(s.page_size, Some(50));
        assert_eq!(s.from_us, NOW - 3_600_000_000);
        // "Today" in Paris starts at 23:00 UTC the day before (winter).
        let (from, _) = relative_range("today", NOW, Tz::Europe__Paris).unwrap();
        assert_eq!(from, NOW - 3_600_000_000);
        let paris = parse(
            &form(&[("from", "2025-12-01"), ("to", "2025-12-01")]),
            &[],
            NOW,
            Tz::Europe__Paris,
        )
        .unwrap();
        assert_eq!(paris.to_us - paris.from_us, DAY_US);
        assert_eq!(
            paris.from_us,
            parse(&form(&[("from", "2025-12-01")]), &[], NOW, Tz::UTC)
                .unwrap()
                .from_us
                - 3_600_000_000
        );
    }

    #[test]
    fn contact_ids_are_read_whatever_their_case_and_spaces() {
        let id = "1b4e28ba-2fa1-41d2-883f-0016d3cca427";
        let exact = |raw: &str| match id_lookup(raw).unwrap() {
            Some(IdLookup::Exact(c)) => c.to_string(),
            other => panic!("{raw}: {other:?}"),
        };
        assert_eq!(exact(id), id);
        assert_eq!(exact(&id.to_ascii_uppercase()), id);
        assert_eq!(exact(&format!("  {} ", &id.replace('-', ""))), id);
        assert_eq!(exact("1b4e28ba-2fa1- 41d2-883f-0016d3cca427"), id);
        assert_eq!(
            id_lookup("1B4E28").unwrap(),
            Some(IdLookup::Prefix("1b4e28".into()))
        );
        assert_eq!(id_lookup("   ").unwrap(), None);
        assert_eq!(id_lookup("<script>"), Err(CriteriaError::ContactId));
    }
}
