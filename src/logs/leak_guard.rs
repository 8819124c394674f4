//! The leak guard (DESIGN.md section 5): the one function every value shown
//! from Connect or CloudWatch goes through.
//!
//! - A valid callvault ESDK message is shown as ciphertext (a summary).
//! - A configured sensitive field holding anything else is masked entirely.
//! - Any 13-19 digit run (digits, optionally grouped by single spaces or
//!   dashes) that passes Luhn is masked to first 6 / last 4 (PCI DSS 4.0.1
//!   req. 3.4.1) and reported as a finding.
//!
//! Display only: stored data is never changed.

use lambda_encrypt::envelope::Ciphertext;
use lambda_encrypt::validate::luhn_valid;

/// What a value looks like once guarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    /// A callvault (or other ESDK) message: safe to summarise.
    Ciphertext(CiphertextSummary),
    /// Text that may be shown, with any card numbers masked.
    Text { shown: String, findings: usize },
    /// A sensitive field that did not hold ciphertext: nothing of it is shown.
    Masked,
}

impl Guarded {
    pub fn findings(&self) -> usize {
        match self {
            Self::Text { findings, .. } => *findings,
            // A sensitive field holding something other than ciphertext is a leak too.
            Self::Masked => 1,
            Self::Ciphertext(_) => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiphertextSummary {
    /// Field and contact named by the message's encryption context (callvault
    /// messages), empty for other contexts.
    pub field: String,
    pub contact_id: String,
    /// Key ids of the message's data keys (KMS ARNs, raw key names).
    pub key_ids: Vec<String>,
    pub bytes: usize,
    pub fingerprint: String,
    pub suite: String,
    /// The message's context is not callvault's (e.g. the reference solution's).
    pub foreign_context: bool,
}

pub fn summarise(ct: &Ciphertext) -> CiphertextSummary {
    let header = ct.header();
    let ctx = header.field_context();
    CiphertextSummary {
        field: ctx
            .as_ref()
            .map(|c| c.field.to_string())
            .unwrap_or_default(),
        contact_id: ctx
            .as_ref()
            .map(|c| c.contact_id.to_string())
            .unwrap_or_default(),
        key_ids: header.data_keys.iter().map(|k| k.key_id.clone()).collect(),
        bytes: ct.len(),
        fingerprint: ct.fingerprint(),
        suite: format!("0x{:04X}", header.suite_id),
        foreign_context: ctx.is_none(),
    }
}

/// Guards one value. `sensitive` says whether it sits under a configured
/// sensitive field name.
pub fn guard(value: &str, sensitive: bool) -> Guarded {
    let trimmed = value.trim();
    if trimmed.len() >= 40 {
        if let Ok(ct) = Ciphertext::from_base64(trimmed) {
            return Guarded::Ciphertext(summarise(&ct));
        }
    }
    if sensitive {
        return Guarded::Masked;
    }
    let (shown, findings) = mask_card_numbers(value);
    Guarded::Text { shown, findings }
}

/// Masks every Luhn-valid 13-19 digit card number in free text.
pub fn mask_card_numbers(text: &str) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut findings = 0;
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // A run: digit groups joined by single spaces or dashes.
        let mut groups: Vec<(usize, usize)> = Vec::new(); // [start, end) in chars
        let mut j = i;
        loop {
            let start = j;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            groups.push((start, j));
            let joins = j + 1 < chars.len()
                && matches!(chars[j], ' ' | '-')
                && chars[j + 1].is_ascii_digit();
            if !joins {
                break;
            }
            j += 1;
        }
        let run_end = groups.last().map_or(i, |g| g.1);
        match find_card(&chars, &groups) {
            Some((from_group, to_group)) => {
                let to_group = extend_over_overlapping_cards(&chars, &groups, from_group, to_group);
                let start = groups[from_group].0;
                let end = groups[to_group].1;
                out.extend(&chars[i..start]);
                let digits: String = chars[start..end]
                    .iter()
                    .filter(|c| c.is_ascii_digit())
                    .collect();
                out.push_str(&mask(&digits));
                findings += 1;
                i = end;
            }
            None => {
                out.extend(&chars[i..run_end]);
                i = run_end;
            }
        }
    }
    (out, findings)
}

/// The first span of whole groups holding 13-19 digits that passes Luhn.
/// A single unbroken digit string counts only as a whole (a 25-digit id is
/// not a card).
fn find_card(chars: &[char], groups: &[(usize, usize)]) -> Option<(usize, usize)> {
    for from in 0..groups.len() {
        let mut digits = String::new();
        for (to, &(s, e)) in groups.iter().enumerate().skip(from) {
            digits.extend(&chars[s..e]);
            if digits.len() > 19 {
                break;
            }
            if digits.len() >= 13 && luhn_valid(digits.as_bytes()) {
                return Some((from, to));
            }
        }
    }
    None
}

/// Extends a card's span (groups `from..=to`) over every card that starts
/// inside it and ends beyond it, until none does. Masking only the first card
/// found would leave such a card readable: in "100000007 4111 1111 1111 1111"
/// both "100000007 4111" and "4111 1111 1111 1111" pass Luhn, and masking the
/// first alone shows the second whole. The union is masked as one span (first
/// 6 / last 4 of the union), so every card in it keeps at least 3 digits hidden
/// and shows none but its own first 6 / last 4.
fn extend_over_overlapping_cards(
    chars: &[char],
    groups: &[(usize, usize)],
    from: usize,
    mut to: usize,
) -> usize {
    let mut start = from;
    while start <= to {
        let mut digits = String::new();
        for (end, &(s, e)) in groups.iter().enumerate().skip(start) {
            digits.extend(&chars[s..e]);
            if digits.len() > 19 {
                break;
            }
            if end > to && digits.len() >= 13 && luhn_valid(digits.as_bytes()) {
                to = end;
            }
        }
        start += 1;
    }
    to
}

fn mask(digits: &str) -> String {
    let n = digits.len();
    format!("{}{}{}", &digits[..6], "*".repeat(n - 10), &digits[n - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> (String, usize) {
        mask_card_numbers(text)
    }

    #[test]
    fn bare_and_grouped_card_numbers_are_masked_to_first_six_last_four() {
        assert_eq!(masked("4111111111111111"), ("411111******1111".into(), 1));
        assert_eq!(
            masked("card 4111 1111 1111 1111 ok"),
            ("card 411111******1111 ok".into(), 1)
        );
        assert_eq!(
            masked("4111-1111-1111-1111"),
            ("411111******1111".into(), 1)
        );
        assert_eq!(
            masked("amex 3782 822463 10005."),
            ("amex 378282*****0005.".into(), 1)
        );
        assert_eq!(
            masked("{\"cc\":\"6011111111111117\"}"),
            ("{\"cc\":\"601111******1117\"}".into(), 1)
        );
        assert_eq!(masked("two: 4111111111111111 and 5555555555554444").1, 2);
    }

    #[test]
    fn near_misses_are_left_alone() {
        for text in [
            "4111111111111112",          // Luhn fails
            "411111111111",              // 12 digits
            "41111111111111111111",      // 20 digits, one unbroken run
            "1234567890123456789012345", // a long id
            "4111  1111 1111 1111",      // double space breaks the run
            "phone 555-0100, zip 98101",
            "2026-11-24T12:00:00Z",
        ] {
            assert_eq!(masked(text), (text.to_owned(), 0), "{text}");
        }
    }

    #[test]
    fn a_card_next_to_other_digit_groups_is_still_found() {
        // A card followed by an expiry year, joined by a space.
        let (shown, n) = masked("4111 1111 1111 1111 2030");
        assert_eq!(n, 1);
        assert!(shown.starts_with("411111******1111"), "{shown}");
        assert!(!shown.contains("4111 1111"));
    }

    #[test]
    fn overlapping_cards_are_masked_together() {
        // "100000007 4111" passes Luhn as well as the card after it: masking
        // only the first used to leave "4111 1111 1111 1111" readable.
        assert_eq!(
            masked("order 100000007 4111 1111 1111 1111"),
            ("order 100000***************1111".into(), 1)
        );
        // Found by `cargo fuzz run leak_guard` (fuzz/corpus/leak_guard/
        // regression-overlapping-cards): "1111 1111 220301111" was masked, and
        // the overlapping card "1111 220301111 1111" kept 8 digits readable.
        assert_eq!(
            masked("4111q1111 11 1111 1111 220301111 1111\u{fffd}\u{fffd}\u{fffd}\u{fffd}0"),
            (
                "4111q1111 11 111111***********1111\u{fffd}\u{fffd}\u{fffd}\u{fffd}0".into(),
                1
            )
        );
    }

    #[test]
    fn sensitive_fields_without_ciphertext_are_masked_whole() {
        assert_eq!(guard("98101", true), Guarded::Masked);
        assert_eq!(guard("not base64 at all", true), Guarded::Masked);
        assert_eq!(
            guard("98101", false),
            Guarded::Text {
                shown: "98101".into(),
                findings: 0
            }
        );
    }

    #[test]
    fn unicode_text_is_handled() {
        assert_eq!(
            masked("Zahlung ✓ 4111111111111111 ü"),
            ("Zahlung ✓ 411111******1111 ü".into(), 1)
        );
    }
}
