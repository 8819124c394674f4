//! The leak guard: the one function every value shown from Connect or
//! CloudWatch goes through.
//!
//! - A valid callvault ESDK message is shown as ciphertext (a summary).
//! - A configured sensitive field holding anything else is masked entirely.
//! - Any 13-19 digit number that passes Luhn is masked to first 6 / last 4
//!   (PCI DSS 4.0.1 req. 3.4.1) and reported as a finding. A digit is any
//!   Unicode digit (ASCII, full-width `４`, Arabic-Indic `٤`, superscript,
//!   circled...); digit groups may be joined by up to [`MAX_JOIN`] characters
//!   that are neither digits nor letters (spaces, tabs, `, _ : | ; . / -`,
//!   brackets, dashes, invisible format characters): a reader sees a card
//!   number through all of them. A digit string longer than any card is
//!   searched for cards inside it (a card with its expiry glued on).
//!
//! Display only: stored data is never changed. The mask keeps the visible
//! digits as they were written.

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
    /// An Amazon Connect keypad ("Store customer input") message.
    pub keypad: bool,
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
        keypad: lambda_encrypt::keypad::inspect(ct).is_ok(),
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

/// At most this many separator characters join two digit groups of one
/// number: "4111, 1111", "(4111) 1111", "4111 -- 1111" and a few spaces
/// more than a reader would type still read as one number.
pub const MAX_JOIN: usize = 8;

/// Card numbers have 13 to 19 digits (ISO/IEC 7812).
pub const MIN_CARD_DIGITS: usize = 13;
pub const MAX_CARD_DIGITS: usize = 19;

/// Whether `c` may sit between the digit groups of one card number: any
/// character that is neither a digit nor a letter (whitespace, punctuation
/// such as `, _ : | ; .`, brackets, dashes, symbols, invisible format
/// characters). A letter breaks a number; nothing else does.
pub fn is_joiner(c: char) -> bool {
    digit_value(c).is_none() && !c.is_alphabetic()
}

/// Unicode characters with a digit value (general category Nd, plus the
/// superscript, circled and similar digits of No), as runs
/// `(first, last, value of first)`, sorted. Unicode 14 from Python's
/// `unicodedata.digit`, plus the Nd blocks of Unicode 15 and 16.
const DIGIT_RUNS: &[(u32, u32, u8)] = &[
    (0x30, 0x39, 0),
    (0xB2, 0xB3, 2),
    (0xB9, 0xB9, 1),
    (0x660, 0x669, 0),
    (0x6F0, 0x6F9, 0),
    (0x7C0, 0x7C9, 0),
    (0x966, 0x96F, 0),
    (0x9E6, 0x9EF, 0),
    (0xA66, 0xA6F, 0),
    (0xAE6, 0xAEF, 0),
    (0xB66, 0xB6F, 0),
    (0xBE6, 0xBEF, 0),
    (0xC66, 0xC6F, 0),
    (0xCE6, 0xCEF, 0),
    (0xD66, 0xD6F, 0),
    (0xDE6, 0xDEF, 0),
    (0xE50, 0xE59, 0),
    (0xED0, 0xED9, 0),
    (0xF20, 0xF29, 0),
    (0x1040, 0x1049, 0),
    (0x1090, 0x1099, 0),
    (0x1369, 0x1371, 1),
    (0x17E0, 0x17E9, 0),
    (0x1810, 0x1819, 0),
    (0x1946, 0x194F, 0),
    (0x19D0, 0x19D9, 0),
    (0x19DA, 0x19DA, 1),
    (0x1A80, 0x1A89, 0),
    (0x1A90, 0x1A99, 0),
    (0x1B50, 0x1B59, 0),
    (0x1BB0, 0x1BB9, 0),
    (0x1C40, 0x1C49, 0),
    (0x1C50, 0x1C59, 0),
    (0x2070, 0x2070, 0),
    (0x2074, 0x2079, 4),
    (0x2080, 0x2089, 0),
    (0x2460, 0x2468, 1),
    (0x2474, 0x247C, 1),
    (0x2488, 0x2490, 1),
    (0x24EA, 0x24EA, 0),
    (0x24F5, 0x24FD, 1),
    (0x24FF, 0x24FF, 0),
    (0x2776, 0x277E, 1),
    (0x2780, 0x2788, 1),
    (0x278A, 0x2792, 1),
    (0xA620, 0xA629, 0),
    (0xA8D0, 0xA8D9, 0),
    (0xA900, 0xA909, 0),
    (0xA9D0, 0xA9D9, 0),
    (0xA9F0, 0xA9F9, 0),
    (0xAA50, 0xAA59, 0),
    (0xABF0, 0xABF9, 0),
    (0xFF10, 0xFF19, 0),
    (0x104A0, 0x104A9, 0),
    (0x10A40, 0x10A43, 1),
    (0x10D30, 0x10D39, 0),
    (0x10D40, 0x10D49, 0),
    (0x10E60, 0x10E68, 1),
    (0x11052, 0x1105A, 1),
    (0x11066, 0x1106F, 0),
    (0x110F0, 0x110F9, 0),
    (0x11136, 0x1113F, 0),
    (0x111D0, 0x111D9, 0),
    (0x112F0, 0x112F9, 0),
    (0x11450, 0x11459, 0),
    (0x114D0, 0x114D9, 0),
    (0x11650, 0x11659, 0),
    (0x116C0, 0x116C9, 0),
    (0x116D0, 0x116D9, 0),
    (0x116DA, 0x116E3, 0),
    (0x11730, 0x11739, 0),
    (0x118E0, 0x118E9, 0),
    (0x11950, 0x11959, 0),
    (0x11BF0, 0x11BF9, 0),
    (0x11C50, 0x11C59, 0),
    (0x11D50, 0x11D59, 0),
    (0x11DA0, 0x11DA9, 0),
    (0x11F50, 0x11F59, 0),
    (0x16130, 0x16139, 0),
    (0x16A60, 0x16A69, 0),
    (0x16AC0, 0x16AC9, 0),
    (0x16B50, 0x16B59, 0),
    (0x16D70, 0x16D79, 0),
    (0x1CCF0, 0x1CCF9, 0),
    (0x1D7CE, 0x1D7D7, 0),
    (0x1D7D8, 0x1D7E1, 0),
    (0x1D7E2, 0x1D7EB, 0),
    (0x1D7EC, 0x1D7F5, 0),
    (0x1D7F6, 0x1D7FF, 0),
    (0x1E140, 0x1E149, 0),
    (0x1E2F0, 0x1E2F9, 0),
    (0x1E4F0, 0x1E4F9, 0),
    (0x1E5F1, 0x1E5FA, 0),
    (0x1E950, 0x1E959, 0),
    (0x1F100, 0x1F100, 0),
    (0x1F101, 0x1F10A, 0),
    (0x1FBF0, 0x1FBF9, 0),
];

/// The value of a digit in any script: `'4'`, `'４'`, `'٤'` and `'④'` are 4.
pub fn digit_value(c: char) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c as u8 - b'0');
    }
    let cp = u32::from(c);
    let i = DIGIT_RUNS.partition_point(|&(_, last, _)| last < cp);
    let &(first, last, value) = DIGIT_RUNS.get(i)?;
    let offset = u8::try_from(cp.checked_sub(first)?).ok()?;
    (cp <= last).then_some(value + offset)
}

/// One span the guard masks: the chars it replaces (`start..end`) and the
/// char index of each digit in it. A span is a card, or the union of cards
/// that overlap (share a digit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardSpan {
    pub start: usize,
    pub end: usize,
    pub digits: Vec<usize>,
}

/// Every span to mask in `chars`, in order. A card is a window of 13-19
/// digits of one run (digit groups joined by at most [`MAX_JOIN`] joiners)
/// that passes Luhn, and begins and ends at the edges of its groups, except
/// inside a group longer than any card: there any window counts (a card with
/// its expiry or CVV glued on, two cards glued together).
pub fn card_spans(chars: &[char]) -> Vec<CardSpan> {
    let values: Vec<Option<u8>> = chars.iter().map(|&c| digit_value(c)).collect();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if values[i].is_none() {
            i += 1;
            continue;
        }
        let mut groups: Vec<(usize, usize)> = Vec::new(); // [start, end) in chars
        let mut j = i;
        loop {
            let start = j;
            while j < chars.len() && values[j].is_some() {
                j += 1;
            }
            groups.push((start, j));
            let mut k = j;
            while k < chars.len() && k - j < MAX_JOIN && is_joiner(chars[k]) {
                k += 1;
            }
            if k == j || k >= chars.len() || values[k].is_none() {
                break;
            }
            j = k;
        }
        i = j;
        spans_in_run(&values, &groups, &mut spans);
    }
    spans
}

/// The spans of one run of digit groups.
fn spans_in_run(values: &[Option<u8>], groups: &[(usize, usize)], out: &mut Vec<CardSpan>) {
    // The run's digits: char index, ASCII value, and whether a card may
    // start at / end after each one.
    let mut pos = Vec::new();
    let mut digits = Vec::new();
    let mut can_start = Vec::new();
    let mut can_end = Vec::new();
    for &(s, e) in groups {
        let long = e - s > MAX_CARD_DIGITS;
        for (k, value) in values.iter().enumerate().take(e).skip(s) {
            pos.push(k);
            digits.push(value.map_or(b'0', |d| b'0' + d));
            can_start.push(long || k == s);
            can_end.push(long || k + 1 == e);
        }
    }
    let n = digits.len();
    if n < MIN_CARD_DIGITS {
        return;
    }
    // Cards as digit ranges, by start; overlapping ones merge into one span.
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for a in (0..n).filter(|&a| can_start[a]) {
        for len in MIN_CARD_DIGITS..=MAX_CARD_DIGITS {
            let b = a + len;
            if b > n {
                break;
            }
            if !can_end[b - 1] || !luhn_valid(&digits[a..b]) {
                continue;
            }
            match merged.last_mut() {
                Some(m) if a < m.1 => m.1 = m.1.max(b),
                _ => merged.push((a, b)),
            }
        }
    }
    out.extend(merged.into_iter().map(|(a, b)| CardSpan {
        start: pos[a],
        end: pos[b - 1] + 1,
        digits: pos[a..b].to_vec(),
    }));
}

/// Masks every card number in free text (see [`card_spans`]): first 6 and
/// last 4 digits as written, a `*` for each digit between, the separators
/// inside the span dropped. Returns the text and the number of spans masked.
pub fn mask_card_numbers(text: &str) -> (String, usize) {
    let chars: Vec<char> = text.chars().collect();
    let spans = card_spans(&chars);
    if spans.is_empty() {
        return (text.to_owned(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    for span in &spans {
        out.extend(&chars[i..span.start]);
        let digits: Vec<char> = span.digits.iter().map(|&k| chars[k]).collect();
        out.push_str(&mask(&digits));
        i = span.end;
    }
    out.extend(&chars[i..]);
    (out, spans.len())
}

/// Whether `text` holds a card number the guard would mask: free text that
/// is stored and shown to others (reasons, case references) is refused
/// when it does.
pub fn contains_card_number(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    !card_spans(&chars).is_empty()
}

/// First 6 and last 4 digits as written, a `*` for each one between.
fn mask(digits: &[char]) -> String {
    let n = digits.len();
    digits
        .iter()
        .enumerate()
        .map(|(k, &c)| if k < 6 || k + 4 >= n { c } else { '*' })
        .collect()
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
            "4111111111111112",            // Luhn fails
            "411111111111",                // 12 digits
            "4111         1111 1111 1111", // nine spaces break the run
            "4111a1111b1111c1111",         // letters break it
            "4111 x 1111 y 1111 z 1111",
            "phone 555-0100, zip 98101",
            "2026-11-24T12:00:00Z",
        ] {
            assert_eq!(masked(text), (text.to_owned(), 0), "{text}");
        }
    }

    #[test]
    fn cards_in_the_formats_an_attack_found_are_masked() {
        for text in [
            "4111, 1111, 1111, 1111",
            "4111,1111,1111,1111",
            "4111_1111_1111_1111",
            "4111:1111:1111:1111",
            "4111|1111|1111|1111",
            "4111;1111;1111;1111",
            "(4111) 1111 1111 1111",
            "[4111][1111][1111][1111]",
            "4111    1111    1111    1111",
            "4111 ,;:| 1111 ,;:| 1111 ,;:| 1111",
            "4111\n1111\n1111\n1111",
        ] {
            let (shown, n) = masked(&format!("card {text} end"));
            assert!(n >= 1, "{text:?} -> {shown:?}");
            assert!(
                !shown.contains("1111 1111") && shown.contains("******"),
                "{text:?} -> {shown:?}"
            );
        }
        // A card with its expiry glued on, two cards glued together, a card
        // inside a long id: digit strings longer than a card are searched.
        for text in [
            "41111111111111111225",
            "41111111111111115555555555554444",
            "00004111111111111111",
        ] {
            let (shown, n) = masked(text);
            assert!(n >= 1, "{text} -> {shown}");
            assert!(!shown.contains("4111111111111111"), "{text} -> {shown}");
            assert!(!shown.contains("5555555555554444"), "{text} -> {shown}");
        }
    }

    #[test]
    fn contains_card_number_says_whether_the_guard_would_mask() {
        assert!(contains_card_number("refund 4111 1111 1111 1111"));
        assert!(contains_card_number("CB-4111111111111111"));
        assert!(contains_card_number("4111_1111_1111_1111"));
        assert!(!contains_card_number("chargeback case 2026-0042"));
        assert!(!contains_card_number("4111 1111 1111 1112"));
        assert!(!contains_card_number(""));
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
    fn card_digits_joined_by_dots_slashes_tabs_or_double_spaces_are_masked() {
        for text in [
            "4111.1111.1111.1111",
            "4111/1111/1111/1111",
            "4111\t1111\t1111\t1111",
            "4111  1111  1111  1111",
            "4111 - 1111 - 1111 - 1111",
            "4111\u{00A0}1111\u{2009}1111\u{3000}1111",
            "4111\u{200B}1111\u{2060}1111\u{FEFF}1111",
            "4111\u{2013}1111\u{2212}1111\u{FF0F}1111",
            "4111\t \t1111.1111/1111",
        ] {
            assert_eq!(
                masked(&format!("card {text} end")),
                ("card 411111******1111 end".to_owned(), 1),
                "{text:?}"
            );
        }
    }

    #[test]
    fn full_width_and_other_script_digits_are_masked_as_written() {
        let full_width: String = "4111111111111111"
            .chars()
            .map(|c| char::from_u32(u32::from(c) - 0x30 + 0xFF10).unwrap())
            .collect();
        assert_eq!(
            masked(&full_width),
            ("４１１１１１******１１１１".to_owned(), 1)
        );
        assert_eq!(
            masked("４１１１ １１１１ １１１１ １１１１"),
            ("４１１１１１******１１１１".to_owned(), 1)
        );
        // Arabic-Indic, Devanagari, circled, mathematical bold, and a mix.
        for text in [
            "٤١١١١١١١١١١١١١١١",
            "४१११ ११११ ११११ ११११",
            "④①①①①①①①①①①①①①①①",
            "𝟒𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏𝟏",
            "4111 １１１１ ١١١١ 1111",
        ] {
            let (shown, n) = masked(text);
            assert_eq!(n, 1, "{text}");
            assert_eq!(
                shown.chars().filter(|&c| c == '*').count(),
                6,
                "{text} -> {shown}"
            );
            assert_eq!(shown.chars().count(), 16, "{text} -> {shown}");
        }
        // Luhn still decides: the same digits with a bad check digit stay.
        let bad = "４１１１１１１１１１１１１１１２";
        assert_eq!(masked(bad), (bad.to_owned(), 0));
    }

    #[test]
    fn digit_values_cover_every_script_and_nothing_else() {
        for (first, last, value) in DIGIT_RUNS {
            for cp in *first..=*last {
                let c = char::from_u32(cp).unwrap();
                assert!(c.is_numeric(), "U+{cp:04X} is not numeric");
                assert_eq!(
                    digit_value(c),
                    Some(value + u8::try_from(cp - first).unwrap())
                );
            }
        }
        assert!(DIGIT_RUNS.windows(2).all(|w| w[0].1 < w[1].0));
        assert_eq!(digit_value('７'), Some(7));
        assert_eq!(digit_value('٣'), Some(3));
        for c in [
            'a',
            '*',
            '½',
            'Ⅻ',
            '\u{2F}',
            '\u{3A}',
            '\u{FF1A}',
            '\u{10FFFF}',
        ] {
            assert_eq!(digit_value(c), None, "{c:?}");
        }
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
