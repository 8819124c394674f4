//! The auditor's filter as it arrives in a URL: repeated parameters
//! (`actor=a&actor=b`, `action=...`, `outcome=...`), a contact-id prefix and
//! days, checked before anything is queried. A refusal names what was
//! refused (cut short and cleaned) for the page and the audit row.

use chrono::TimeZone as _;
use chrono_tz::Tz;

use crate::audit::{Action, AuditFilter};
use crate::web::DAY_US;

/// Values of one kind at most.
pub const MAX_VALUES: usize = 20;
/// Longest actor, action or outcome value.
pub const MAX_VALUE_CHARS: usize = 64;
/// Longest contact-id prefix.
pub const MAX_CONTACT_CHARS: usize = 128;
/// Parameters in one query string at most (before splitting actors).
const MAX_PAIRS: usize = 100;
/// Characters of a refused value repeated in the message and the audit row.
const SHOWN_CHARS: usize = 32;

/// Outcomes the console writes, offered in the filter's list (any other
/// value is still accepted from a URL).
pub const KNOWN_OUTCOMES: [&str; 12] = [
    "ok",
    "refused",
    "denied",
    "failed",
    "budget_exceeded",
    "throttled",
    "started",
    "approved",
    "rejected",
    "broken",
    "masked",
    "error",
];

/// A filter parameter refused: what to tell the auditor and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// The parsed query of `/audit` and `/audit/export`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actors: Vec<String>,
    pub actions: Vec<String>,
    pub outcomes: Vec<String>,
    pub contact: String,
    pub from: String,
    pub to: String,
    pub before: Option<i64>,
    pub format: Option<String>,
}

/// A value as repeated in a refusal: one line, cut short (pages escape it
/// like any text; the audit row stores it as text).
pub fn shown(value: &str) -> String {
    let clean = crate::text::one_line(value);
    if clean.chars().count() > SHOWN_CHARS {
        let cut: String = clean.chars().take(SHOWN_CHARS).collect();
        format!("{cut}…")
    } else {
        clean.into_owned()
    }
}

/// Refuses a value with markup, control characters, line or paragraph
/// separators, bidi controls or invisible characters, or too long.
fn check_value(kind: &str, value: &str, max_chars: usize) -> Result<(), Refusal> {
    if value.chars().count() > max_chars {
        return Err(Refusal(format!(
            "The {kind} filter \"{}\" is longer than {max_chars} characters.",
            shown(value)
        )));
    }
    if value.chars().any(crate::text::is_unsafe_in_a_line) {
        return Err(Refusal(format!(
            "The {kind} filter \"{}\" holds control characters, line separators or bidi controls.",
            shown(value)
        )));
    }
    if value.contains(['<', '>', '"', '\'', '`']) {
        return Err(Refusal(format!(
            "The {kind} filter \"{}\" holds markup (< > \" ' `).",
            shown(value)
        )));
    }
    Ok(())
}

fn push_checked(
    kind: &str,
    list: &mut Vec<String>,
    value: &str,
    max_chars: usize,
) -> Result<(), Refusal> {
    check_value(kind, value, max_chars)?;
    if !list.iter().any(|v| v == value) {
        list.push(value.to_owned());
    }
    if list.len() > MAX_VALUES {
        return Err(Refusal(format!(
            "More than {MAX_VALUES} {kind} values: narrow the filter."
        )));
    }
    Ok(())
}

fn single(kind: &str, slot: &mut String, value: &str) -> Result<(), Refusal> {
    if !slot.is_empty() && slot != value {
        return Err(Refusal(format!("The {kind} filter is given twice.")));
    }
    *slot = value.to_owned();
    Ok(())
}

impl AuditQuery {
    /// Parses a raw query string (`form_urlencoded`: repeated keys kept).
    pub fn parse(query_string: &str) -> Result<Self, Refusal> {
        let mut q = Self::default();
        for (n, (key, value)) in url::form_urlencoded::parse(query_string.as_bytes()).enumerate() {
            if n >= MAX_PAIRS {
                return Err(Refusal(format!(
                    "More than {MAX_PAIRS} parameters: narrow the filter."
                )));
            }
            // Only spaces are trimmed: any other control or separator is
            // refused below.
            let value = value.trim_matches(' ');
            match key.as_ref() {
                "actor" => {
                    // One box, several names: commas or spaces between them.
                    for name in value
                        .split([',', ' '])
                        .filter(|s| !s.is_empty())
                    {
                        push_checked("actor", &mut q.actors, name, MAX_VALUE_CHARS)?;
                    }
                }
                "action" if !value.is_empty() => {
                    push_checked("action", &mut q.actions, value, MAX_VALUE_CHARS)?;
                    if Action::parse(value).is_none() {
                        return Err(Refusal(format!(
                            "Unknown action \"{}\".",
                            shown(value)
                        )));
                    }
                }
                "outcome" if !value.is_empty() => {
                    push_checked("outcome", &mut q.outcomes, value, MAX_VALUE_CHARS)?;
                }
                "contact" if !value.is_empty() => {
                    check_value("contact", value, MAX_CONTACT_CHARS)?;
                    if value.contains([',', ' ']) {
                        return Err(Refusal(format!(
                            "The contact filter \"{}\" takes one contact id or its beginning (no spaces or commas).",
                            shown(value)
                        )));
                    }
                    single("contact", &mut q.contact, value)?;
                }
                "from" | "to" if !value.is_empty() => {
                    if chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
                        return Err(Refusal(format!(
                            "The {key} date \"{}\" is not a day (YYYY-MM-DD).",
                            shown(value)
                        )));
                    }
                    let slot = if key == "from" { &mut q.from } else { &mut q.to };
                    single(&key, slot, value)?;
                }
                "before" if !value.is_empty() => {
                    let seq = value
                        .parse::<i64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or_else(|| {
                            Refusal(format!(
                                "\"{}\" is not a row number (before).",
                                shown(value)
                            ))
                        })?;
                    if q.before.is_some_and(|b| b != seq) {
                        return Err(Refusal("The before parameter is given twice.".into()));
                    }
                    q.before = Some(seq);
                }
                "format" if !value.is_empty() => {
                    if !matches!(value, "csv" | "jsonl") {
                        return Err(Refusal(format!(
                            "Export format \"{}\" is unknown: it must be csv or jsonl.",
                            shown(value)
                        )));
                    }
                    q.format = Some(value.to_owned());
                }
                "action" | "outcome" | "contact" | "from" | "to" | "before" | "format" => {}
                other => {
                    return Err(Refusal(format!(
                        "Unknown parameter \"{}\": the filters are actor, action, outcome, contact, from and to.",
                        shown(other)
                    )))
                }
            }
        }
        Ok(q)
    }

    /// The filter, with `from`/`to` read as whole days in `zone` (`to`
    /// inclusive).
    pub fn filter(&self, zone: Tz) -> AuditFilter {
        AuditFilter {
            actors: self.actors.clone(),
            actions: self.actions.clone(),
            outcomes: self.outcomes.clone(),
            contact_prefix: (!self.contact.is_empty()).then(|| self.contact.clone()),
            from_us: day_start_in(&self.from, zone),
            to_us: day_start_in(&self.to, zone).map(|t| next_day_start(&self.to, zone, t)),
        }
    }

    /// The filter as a URL query string (without `before` and `format`):
    /// every value kept, repeated keys for several.
    pub fn query_string(&self) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for a in &self.actors {
            s.append_pair("actor", a);
        }
        for a in &self.actions {
            s.append_pair("action", a);
        }
        for o in &self.outcomes {
            s.append_pair("outcome", o);
        }
        for (k, v) in [
            ("contact", &self.contact),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !v.is_empty() {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    /// What the audit row says was viewed.
    pub fn describe(&self) -> String {
        let q = self.query_string();
        if q.is_empty() {
            "all rows".into()
        } else {
            q
        }
    }
}

/// The first instant (µs since the epoch) of local day `day` in `zone`. A
/// midnight that does not exist there (a transition at midnight) is the
/// first instant that does.
pub fn day_start_in(day: &str, zone: Tz) -> Option<i64> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
    local_start(date, zone)
}

/// The first instant of `date` in `zone` that exists (µs since the epoch).
pub fn local_start(date: chrono::NaiveDate, zone: Tz) -> Option<i64> {
    // Transitions move the clock by at most a few hours; a quarter hour at
    // a time finds the first local time that exists.
    for quarter in 0..(4 * 24) {
        let local = date.and_hms_opt(0, 0, 0)? + chrono::Duration::minutes(15 * quarter);
        if let Some(t) = zone.from_local_datetime(&local).earliest() {
            return Some(t.timestamp_micros());
        }
    }
    None
}

/// The start of the day after `day` (for an inclusive `to`).
fn next_day_start(day: &str, zone: Tz, start: i64) -> i64 {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .and_then(|d| local_start(d, zone))
        .unwrap_or(start + DAY_US)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_and_separated_actors_are_kept() {
        let q = AuditQuery::parse(
            "actor=Sam%2C+kim&actor=lee&action=decrypt&action=decrypt_denied&outcome=ok&contact=abc-&from=2026-12-01&to=2026-12-02&before=9",
        )
        .unwrap();
        assert_eq!(q.actors, ["Sam", "kim", "lee"]);
        assert_eq!(q.actions, ["decrypt", "decrypt_denied"]);
        assert_eq!(q.outcomes, ["ok"]);
        assert_eq!(q.contact, "abc-");
        assert_eq!(q.before, Some(9));
        // The links keep every value (and parse back to the same filter).
        let again = AuditQuery::parse(&q.query_string()).unwrap();
        assert_eq!(again, AuditQuery { before: None, ..q });
        // Blank values are absent.
        assert_eq!(
            AuditQuery::parse("actor=&action=&outcome=&contact=&from=&to=").unwrap(),
            AuditQuery::default()
        );
    }

    #[test]
    fn hostile_values_are_refused_and_named_safely() {
        let many = (0..21)
            .map(|i| format!("actor=a{i}"))
            .collect::<Vec<_>>()
            .join("&");
        let long = format!("actor={}", "a".repeat(65));
        let long_contact = format!("contact={}", "c".repeat(129));
        for bad in [
            many.as_str(),
            long.as_str(),
            long_contact.as_str(),
            "action=drop",
            "action=decrypt%3Cscript%3E",
            "actor=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "actor=a%0Ab",
            "outcome=ok%E2%80%A8x",
            "contact=abc%E2%80%AEdef",
            "contact=a%2Cb",
            "from=yesterday",
            "to=2026-13-01",
            "before=abc",
            "before=-1",
            "format=xml",
            "colour=red",
            "contact=a&contact=b",
        ] {
            let Err(Refusal(message)) = AuditQuery::parse(bad) else {
                panic!("accepted {bad}");
            };
            assert!(
                !message.contains('\n') && !message.contains('\u{2028}'),
                "{message}"
            );
            assert!(message.chars().count() < 200, "{message}");
        }
        // A refusal repeats at most a short, cleaned part of the value.
        let Err(Refusal(m)) = AuditQuery::parse(&format!("actor={}", "x".repeat(500))) else {
            panic!()
        };
        assert!(m.contains(&format!("{}…", "x".repeat(32))), "{m}");
    }

    #[test]
    fn days_are_read_in_the_users_zone() {
        let utc = day_start_in("2026-07-01", Tz::UTC).unwrap();
        let paris = day_start_in("2026-07-01", Tz::Europe__Paris).unwrap();
        assert_eq!(utc - paris, 2 * 3_600_000_000);
        // "to" is inclusive: up to the next local midnight (23 h on the day
        // clocks go forward).
        let q = AuditQuery {
            from: "2026-03-29".into(),
            to: "2026-03-29".into(),
            ..AuditQuery::default()
        };
        let f = q.filter(Tz::Europe__Paris);
        assert_eq!(f.to_us.unwrap() - f.from_us.unwrap(), 23 * 3_600_000_000);
        // A midnight that does not exist (Santiago moves 00:00 to 01:00).
        assert!(day_start_in("2026-09-06", Tz::America__Santiago).is_some());
    }
}
