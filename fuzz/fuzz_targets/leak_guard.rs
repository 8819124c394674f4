//! The console's leak guard (src/guard/leak_guard.rs) over arbitrary text.
//!
//! The file is included as a module rather than through the console crate,
//! which would pull actix, sqlx and the AWS SDK into the fuzz build.
//!
//! What the guard claims (its module doc): any 13-19 digit number (Unicode
//! digits, optionally grouped by up to `MAX_JOIN` separators) that passes
//! Luhn is masked to first 6 / last 4. A "card" below is exactly that: a
//! window of 13 to 19 digits of one run (digit groups, each gap 1 to
//! `MAX_JOIN` characters for which `is_joiner` holds) passing Luhn, that
//! begins and ends at group edges, except inside a group of more than 19
//! digits, where it may begin and end anywhere. Which characters are digits
//! and joiners is the guard's own `digit_value` / `is_joiner` (their unit
//! tests pin them); the cards are found here independently of the guard.
//!
//! Invariants:
//! - nothing panics (`guard`, `mask_card_numbers`, twice over);
//! - the output is the input with each span of `card_spans` replaced by its
//!   mask (first 6 digits, `*` for each middle digit, last 4, separators
//!   dropped): nothing else changes, and `findings` counts the spans;
//! - each span is exactly a chain of overlapping cards (it starts where a
//!   card starts, ends where one ends, and cards cover it without a hole);
//! - for every card in the input, only digits among its first 6 and last 4
//!   are visible in the output (so at least 3 of its digits are hidden). This
//!   also covers overlapping candidates: in "100000007 4111 1111 1111 1111"
//!   "100000007 4111" passes Luhn too; masking it alone would leave
//!   "4111 1111 1111 1111" readable;
//! - `guard`: a sensitive value that is not ciphertext is masked whole; any
//!   other non-ciphertext value is shown exactly as `mask_card_numbers` shows
//!   it; `contains_card_number` says whether there was a span;
//! - masking the output again obeys all of the above (what the first pass
//!   hid stays hidden; a second pass may only add masks).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/guard/leak_guard.rs"]
mod leak_guard;

use lambda_encrypt::validate::luhn_valid;
use leak_guard::{
    card_spans, contains_card_number, digit_value, guard, is_joiner, mask_card_numbers, Guarded,
    MAX_JOIN,
};

/// Every card in `chars` (by the definition above), as lists of the char
/// index of each of its digits.
fn cards(chars: &[char]) -> Vec<Vec<usize>> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if digit_value(chars[i]).is_some() {
            let s = i;
            while i < chars.len() && digit_value(chars[i]).is_some() {
                i += 1;
            }
            groups.push((s, i));
        } else {
            i += 1;
        }
    }
    let joined = |g: usize| {
        let (a, b) = (groups[g - 1], groups[g]);
        let gap = b.0 - a.1;
        (1..=MAX_JOIN).contains(&gap) && chars[a.1..b.0].iter().all(|&c| is_joiner(c))
    };
    let mut out = Vec::new();
    let mut run_start = 0;
    for g in 0..=groups.len() {
        if g < groups.len() && (g == 0 || joined(g)) {
            continue;
        }
        // Groups run_start..g form one run.
        let run = &groups[run_start..g];
        let digits: Vec<usize> = run.iter().flat_map(|&(s, e)| s..e).collect();
        let edge_start = |d: usize| run.iter().any(|&(s, e)| d == s || e - s > 19 && (s..e).contains(&d));
        let edge_end = |d: usize| run.iter().any(|&(s, e)| d + 1 == e || e - s > 19 && (s..e).contains(&d));
        for a in 0..digits.len() {
            for b in a + 13..=(a + 19).min(digits.len()) {
                if !edge_start(digits[a]) || !edge_end(digits[b - 1]) {
                    continue;
                }
                let ascii: Vec<u8> = digits[a..b]
                    .iter()
                    .filter_map(|&k| digit_value(chars[k]))
                    .map(|d| b'0' + d)
                    .collect();
                if luhn_valid(&ascii) {
                    out.push(digits[a..b].to_vec());
                }
            }
        }
        run_start = g;
    }
    out
}

fn check_masking(text: &str) -> String {
    let input: Vec<char> = text.chars().collect();
    let (shown, findings) = mask_card_numbers(text);
    let spans = card_spans(&input);
    assert_eq!(findings, spans.len(), "findings must count the spans");
    assert_eq!(contains_card_number(text), !spans.is_empty());
    // The output is the input with each span replaced by its mask.
    let mut expected = String::new();
    let mut visible = vec![true; input.len()];
    let mut at = 0;
    for span in &spans {
        assert!(at <= span.start && span.start < span.end, "spans in order");
        expected.extend(&input[at..span.start]);
        let n = span.digits.len();
        assert!(n >= 13);
        for k in span.start..span.end {
            visible[k] = false;
        }
        for (j, &d) in span.digits.iter().enumerate() {
            assert!(digit_value(input[d]).is_some());
            if j < 6 || j >= n - 4 {
                expected.push(input[d]);
                visible[d] = true;
            } else {
                expected.push('*');
            }
        }
        at = span.end;
    }
    expected.extend(&input[at..]);
    assert_eq!(shown, expected, "output is not the input with its spans masked");
    if findings == 0 {
        assert_eq!(shown, text);
    }
    let cards = cards(&input);
    // Each span is a chain of overlapping cards.
    for span in &spans {
        let inside: Vec<&Vec<usize>> = cards
            .iter()
            .filter(|c| c[0] >= span.start && c[c.len() - 1] < span.end)
            .collect();
        let mut reach = None;
        let mut sorted = inside.clone();
        sorted.sort_by_key(|c| c[0]);
        for c in sorted {
            match reach {
                None if c[0] == span.digits[0] => reach = Some(c[c.len() - 1]),
                Some(r) if c[0] <= r => reach = Some(r.max(c[c.len() - 1])),
                _ => {}
            }
        }
        assert_eq!(
            reach,
            span.digits.last().copied(),
            "masked a span that is not a card (or overlapping cards): {:?}",
            input[span.start..span.end].iter().collect::<String>()
        );
    }
    // No card shows more than its first 6 and last 4 digits.
    for card in &cards {
        let n = card.len();
        for (k, &d) in card.iter().enumerate() {
            assert!(
                !visible[d] || k < 6 || k >= n - 4,
                "digit {k} of the {n}-digit card at char {} is visible\n input: {text:?}\noutput: {shown:?}",
                card[0]
            );
        }
    }
    shown
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let shown = check_masking(&text);
    // A second pass over the output holds to the same rules.
    check_masking(&shown);

    let is_ciphertext = matches!(guard(&text, false), Guarded::Ciphertext(_));
    match guard(&text, true) {
        Guarded::Ciphertext(_) => assert!(is_ciphertext),
        Guarded::Masked => assert!(!is_ciphertext),
        Guarded::Text { .. } => panic!("a sensitive value was shown as text"),
    }
    if !is_ciphertext {
        assert_eq!(
            guard(&text, false),
            Guarded::Text {
                shown,
                findings: mask_card_numbers(&text).1
            }
        );
    }
});
