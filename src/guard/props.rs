//! Property tests of the leak guard over generated formats: cards written
//! with any separators up to the bound, brackets, other scripts' digits,
//! glued-on digits, and the near misses that must stay readable. A small
//! deterministic generator (a fixed-seed xorshift), so a failure repeats.

use super::leak_guard::{contains_card_number, digit_value, mask_card_numbers, MAX_JOIN};
use lambda_encrypt::validate::luhn_valid;

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Characters that are neither digits nor letters: what may join groups.
const SEPARATORS: &[char] = &[
    ' ', '\t', '\n', ',', ';', ':', '|', '_', '.', '/', '-', '(', ')', '[', ']', '{', '}', '<',
    '>', '\'', '"', '*', '#', '+', '~', '\u{00A0}', '\u{2009}', '\u{3000}', '\u{2013}', '\u{2212}',
    '\u{200B}', '\u{2060}', '\u{FEFF}', '\u{FF0C}', '\u{3001}', '\u{2022}',
];

/// Where digits of other scripts start (their zero).
const ZEROS: &[u32] = &[0x30, 0xFF10, 0x660, 0x966, 0x1D7CE];

/// A random Luhn-valid card of 13 to 19 ASCII digits.
fn card(g: &mut Gen) -> Vec<u8> {
    let len = 13 + g.below(7);
    let mut digits: Vec<u8> = (0..len - 1).map(|_| b'0' + g.below(10) as u8).collect();
    digits[0] = b'2' + g.below(5) as u8;
    for check in b'0'..=b'9' {
        digits.push(check);
        if luhn_valid(&digits) {
            return digits;
        }
        digits.pop();
    }
    unreachable!("one check digit always passes Luhn")
}

fn script_digit(zero: u32, d: u8) -> char {
    char::from_u32(zero + u32::from(d - b'0')).unwrap_or('0')
}

/// The card's digits split into groups joined by 1..=MAX_JOIN separators.
fn written(g: &mut Gen, digits: &[u8], max_gap: usize) -> String {
    let zero = *g.pick(ZEROS);
    let mut out = String::new();
    if g.below(3) == 0 {
        out.push(*g.pick(&['(', '[', '{', '<', '"']));
    }
    let mut i = 0;
    while i < digits.len() {
        let group = (1 + g.below(6)).min(digits.len() - i);
        for &d in &digits[i..i + group] {
            out.push(script_digit(zero, d));
        }
        i += group;
        if i < digits.len() {
            for _ in 0..1 + g.below(max_gap) {
                out.push(*g.pick(SEPARATORS));
            }
        }
    }
    if g.below(3) == 0 {
        out.push(*g.pick(&[')', ']', '}', '>', '"']));
    }
    out
}

/// The ASCII digits of `text`, every script's digits and the mask's `*`
/// kept in order.
fn digits_of(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '*' => Some('*'),
            c => digit_value(c).map(|d| char::from(b'0' + d)),
        })
        .collect()
}

#[test]
fn a_card_in_any_generated_format_is_masked() {
    let mut g = Gen(0x5eed_cafe_f00d_0001);
    for round in 0..4000 {
        let card = card(&mut g);
        let mut text = written(&mut g, &card, MAX_JOIN);
        let before = ["", "card ", "cc=", "note: ", "x "];
        let after = ["", " ok", ".", " exp 12/29", ","];
        text = format!("{}{text}{}", g.pick(&before), g.pick(&after));
        let (shown, findings) = mask_card_numbers(&text);
        let plain = String::from_utf8_lossy(&card).into_owned();
        assert!(findings >= 1, "round {round}: {text:?} -> {shown:?}");
        assert!(contains_card_number(&text), "round {round}: {text:?}");
        assert!(
            !digits_of(&shown).contains(&plain),
            "round {round}: the card is readable in {shown:?} (from {text:?})"
        );
        let hidden = card.len() - 10;
        assert!(
            shown.chars().filter(|&c| c == '*').count() >= hidden,
            "round {round}: {text:?} -> {shown:?}"
        );
    }
}

#[test]
fn a_card_glued_to_other_digits_is_masked() {
    let mut g = Gen(0x5eed_cafe_f00d_0002);
    for round in 0..2000 {
        let card = card(&mut g);
        // Expiry, CVV, a second card or an id glued on either side, so the
        // digit string is longer than any card.
        let lead: String = (0..g.below(8))
            .map(|_| char::from(b'0' + g.below(10) as u8))
            .collect();
        let tail_len = (20usize.saturating_sub(card.len() + lead.len())).max(1) + g.below(8);
        let tail: String = (0..tail_len)
            .map(|_| char::from(b'0' + g.below(10) as u8))
            .collect();
        let text = format!("{lead}{}{tail}", String::from_utf8_lossy(&card));
        let (shown, findings) = mask_card_numbers(&text);
        assert!(findings >= 1, "round {round}: {text} -> {shown}");
        assert!(
            !shown.contains(&*String::from_utf8_lossy(&card)),
            "round {round}: {text} -> {shown}"
        );
    }
}

#[test]
fn numbers_broken_by_letters_or_long_gaps_are_left_alone() {
    let mut g = Gen(0x5eed_cafe_f00d_0003);
    for round in 0..2000 {
        // Groups of at most 12 digits, kept apart by a letter or by more
        // separators than the bound: no card can form.
        let mut text = String::new();
        for k in 0..2 + g.below(4) {
            if k > 0 {
                if g.below(2) == 0 {
                    text.push(*g.pick(&['a', 'x', 'T', 'é', 'ж']));
                } else {
                    for _ in 0..=MAX_JOIN {
                        text.push(*g.pick(SEPARATORS));
                    }
                }
            }
            for _ in 0..1 + g.below(12) {
                text.push(char::from(b'0' + g.below(10) as u8));
            }
        }
        let (shown, findings) = mask_card_numbers(&text);
        assert_eq!(
            (shown.as_str(), findings),
            (text.as_str(), 0),
            "round {round}"
        );
    }
}
