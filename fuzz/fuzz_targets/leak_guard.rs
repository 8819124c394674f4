//! The console's leak guard (src/guard/leak_guard.rs) over arbitrary text.
//!
//! The file is included as a module rather than through the console crate,
//! which would pull actix, sqlx and the AWS SDK into the fuzz build.
//!
//! What the guard claims (its module doc): any 13-19 digit run (Unicode
//! digits, optionally grouped by up to `MAX_JOIN` separators) that passes
//! Luhn is masked to first 6 / last 4. A "card" below is exactly that: a span
//! of whole digit groups, each gap 1 to `MAX_JOIN` characters for which
//! `is_joiner` holds, of 13 to 19 digits in all, passing Luhn (a longer
//! unbroken digit string is not a card). Which characters are digits and
//! joiners is the guard's own `digit_value` / `is_joiner` (their unit tests
//! pin them); everything else here is independent of the guard.
//!
//! Invariants:
//! - nothing panics (`guard`, `mask_card_numbers`, twice over);
//! - the output is the input with some cards, or chains of overlapping cards,
//!   replaced by their mask (first 6 digits, `*` for each middle digit, last
//!   4, separators dropped): nothing else changes, and `findings` counts the
//!   masks;
//! - for every card in the input, only digits among its first 6 and last 4
//!   are visible in the output (so at least 3 of its digits are hidden). This
//!   also covers overlapping candidates: in "100000007 4111 1111 1111 1111"
//!   "100000007 4111" passes Luhn too; masking it alone would leave
//!   "4111 1111 1111 1111" readable;
//! - `guard`: a sensitive value that is not ciphertext is masked whole; any
//!   other non-ciphertext value is shown exactly as `mask_card_numbers` shows it;
//! - idempotence where it is sensible: output with no findings is the input,
//!   and masking the output again obeys all of the above (so it only adds
//!   masks: what the first pass hid stays hidden).
//!   (Strict idempotence does not hold and is not wanted: a mask's first six
//!   digits next to other digit groups can form a new Luhn-valid span, e.g.
//!   "1234567 411111******1111", which a second pass masks again. No digit
//!   that the first pass hid becomes visible by that.)

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/guard/leak_guard.rs"]
mod leak_guard;

use lambda_encrypt::validate::luhn_valid;
use leak_guard::{digit_value, guard, is_joiner, mask_card_numbers, Guarded, MAX_JOIN};

/// The digit groups of a text and the cards among them.
struct Scan {
    /// Maximal digit strings, as char ranges.
    groups: Vec<(usize, usize)>,
    /// Cards as group ranges `from..=to`.
    cards: Vec<(usize, usize)>,
}

impl Scan {
    /// Every card in `chars`, by the definition above (independently of the guard).
    fn new(chars: &[char]) -> Self {
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
        let mut scan = Self {
            groups,
            cards: Vec::new(),
        };
        for from in 0..scan.groups.len() {
            let mut digits: Vec<u8> = Vec::new();
            for to in from..scan.groups.len() {
                if to > from && !scan.joined(chars, to) {
                    break;
                }
                let (s, e) = scan.groups[to];
                digits.extend(
                    chars[s..e]
                        .iter()
                        .filter_map(|&c| digit_value(c))
                        .map(|d| b'0' + d),
                );
                if digits.len() > 19 {
                    break;
                }
                if digits.len() >= 13 && luhn_valid(&digits) {
                    scan.cards.push((from, to));
                }
            }
        }
        scan
    }

    /// Whether group `g` continues the run of group `g - 1` (a gap of 1 to
    /// `MAX_JOIN` separators).
    fn joined(&self, chars: &[char], g: usize) -> bool {
        let (a, b) = (self.groups[g - 1], self.groups[g]);
        let gap = b.0 - a.1;
        (1..=MAX_JOIN).contains(&gap) && chars[a.1..b.0].iter().all(|&c| is_joiner(c))
    }

    /// Char indexes of the digits of groups `from..=to`.
    fn digits(&self, from: usize, to: usize) -> Vec<usize> {
        self.groups[from..=to]
            .iter()
            .flat_map(|&(s, e)| s..e)
            .collect()
    }

    /// Whether groups `from..=to` are exactly a union of overlapping cards
    /// starting with one at `from` (what the guard may mask as one span).
    fn is_card_union(&self, from: usize, to: usize) -> bool {
        let mut reach = None;
        for &(f, t) in &self.cards {
            if f < from || t > to {
                continue;
            }
            match reach {
                None if f == from => reach = Some(t),
                Some(r) if f <= r => reach = Some(r.max(t)),
                _ => {}
            }
        }
        // Cards are listed by start group, so one pass finds the chain.
        reach == Some(to)
    }
}

fn mask_of(chars: &[char], digits: &[usize]) -> Vec<char> {
    let n = digits.len();
    digits
        .iter()
        .enumerate()
        .map(|(k, &d)| if k < 6 || k >= n - 4 { chars[d] } else { '*' })
        .collect()
}

/// Aligns the output with the input: which input chars are visible, and how
/// many masks were made. Panics if the output is anything else than the input
/// with some card spans masked (first 6, a '*' per middle digit, last 4).
fn visible_chars(input: &[char], scan: &Scan, output: &[char]) -> (Vec<bool>, usize) {
    let mut visible = vec![false; input.len()];
    let mut masks = 0;
    let (mut i, mut o) = (0, 0);
    let in_a_card: Vec<bool> = (0..scan.groups.len())
        .map(|g| scan.cards.iter().any(|&(f, t)| f <= g && g <= t))
        .collect();
    while i < input.len() {
        // A mask differs from the text it replaces at its 7th char ('*'),
        // and masks of different lengths differ too: at most one fits.
        let mut masked = None;
        if let Some(from) = scan
            .groups
            .iter()
            .position(|g| g.0 == i)
            .filter(|&g| scan.cards.iter().any(|c| c.0 == g))
        {
            let mut to = from;
            while to < scan.groups.len() && in_a_card[to] && (to == from || scan.joined(input, to))
            {
                let digits = scan.digits(from, to);
                if digits.len() >= 13 {
                    let m = mask_of(input, &digits);
                    if output.get(o..o + m.len()) == Some(m.as_slice()) {
                        masked = Some((from, to, digits, m.len()));
                        break;
                    }
                }
                to += 1;
            }
        }
        if let Some((from, to, digits, len)) = masked {
            assert!(
                scan.is_card_union(from, to),
                "masked a span that is not a card (or overlapping cards): {:?}",
                input[scan.groups[from].0..scan.groups[to].1]
                    .iter()
                    .collect::<String>()
            );
            let n = digits.len();
            for (k, &d) in digits.iter().enumerate() {
                visible[d] = k < 6 || k >= n - 4;
            }
            masks += 1;
            i = scan.groups[to].1;
            o += len;
            continue;
        }
        assert_eq!(
            output.get(o),
            Some(&input[i]),
            "output differs from the input at char {i} other than by masking a card\n input: {:?}\noutput: {:?}",
            input.iter().collect::<String>(),
            output.iter().collect::<String>()
        );
        visible[i] = true;
        i += 1;
        o += 1;
    }
    assert_eq!(o, output.len(), "output has trailing text");
    (visible, masks)
}

fn check_masking(text: &str) -> String {
    let input: Vec<char> = text.chars().collect();
    let (shown, findings) = mask_card_numbers(text);
    let output: Vec<char> = shown.chars().collect();
    let scan = Scan::new(&input);
    let (visible, masks) = visible_chars(&input, &scan, &output);
    assert_eq!(findings, masks, "findings must count the masks");
    if findings == 0 {
        assert_eq!(shown, text);
    }
    for &(from, to) in &scan.cards {
        let digits = scan.digits(from, to);
        let n = digits.len();
        for (k, &d) in digits.iter().enumerate() {
            assert!(
                !visible[d] || k < 6 || k >= n - 4,
                "digit {k} of the {n}-digit card at chars {}..{} is visible\n input: {text:?}\noutput: {shown:?}",
                scan.groups[from].0,
                scan.groups[to].1
            );
        }
    }
    shown
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let shown = check_masking(&text);
    // A second pass over the output holds to the same rules, so it only ever
    // adds masks: a '*' already there is never a digit again.
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
