//! Validation of what a caller said or keyed in.
//!
//! Lex usually resolves spoken numbers to digits, but a generic slot type can
//! hand over the words themselves ("four one one one", "oh", "double five"),
//! so both are normalised here. Rejections carry no part of the input.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::plaintext::Plaintext;

/// Input longer than this is refused before any parsing.
pub const MAX_INPUT_CHARS: usize = 512;
const MAX_DIGITS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// 13-19 digits, Luhn-valid (payment card numbers).
    Card,
    /// Exactly 16 digits, Luhn-valid (the reference solution's rule).
    Card16,
    /// A five-digit US ZIP code.
    Zip5,
    /// A ZIP code, 5 digits or ZIP+4 (stored as `NNNNN-NNNN`).
    Zip,
    /// Exactly N digits.
    Digits(u8),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown validator; use card, card16, zip5, zip or digits:N (N from 1 to {MAX_DIGITS})")]
pub struct UnknownValidator;

impl FromStr for Validator {
    type Err = UnknownValidator;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "card" => Ok(Self::Card),
            "card16" => Ok(Self::Card16),
            "zip5" => Ok(Self::Zip5),
            "zip" => Ok(Self::Zip),
            _ => {
                let n: u8 = s
                    .strip_prefix("digits:")
                    .and_then(|n| n.parse().ok())
                    .ok_or(UnknownValidator)?;
                if n == 0 || n as usize > MAX_DIGITS {
                    return Err(UnknownValidator);
                }
                Ok(Self::Digits(n))
            }
        }
    }
}

impl fmt::Display for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Card => f.write_str("card"),
            Self::Card16 => f.write_str("card16"),
            Self::Zip5 => f.write_str("zip5"),
            Self::Zip => f.write_str("zip"),
            Self::Digits(n) => write!(f, "digits:{n}"),
        }
    }
}

/// Why a value was refused. Holds no part of the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no value")]
    Empty,
    #[error("input too long")]
    TooLong,
    #[error("not a sequence of digits")]
    NotDigits,
    #[error("wrong number of digits")]
    WrongLength,
    #[error("check digit (Luhn) does not match")]
    Luhn,
    /// Spoken or typed where the flow asks for the keypad only.
    #[error("not keyed on the keypad")]
    NotKeyed,
}

impl Rejection {
    pub fn kind(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong => "too_long",
            Self::NotDigits => "not_digits",
            Self::WrongLength => "wrong_length",
            Self::Luhn => "luhn",
            Self::NotKeyed => "not_keyed",
        }
    }
}

impl Validator {
    /// Checks and normalises a value; on success the canonical form is
    /// returned as a [`Plaintext`].
    pub fn validate(self, input: &str) -> Result<Plaintext, Rejection> {
        let digits = normalise_digits(input)?;
        let n = digits.len();
        let ok_len = match self {
            Self::Card => (13..=19).contains(&n),
            Self::Card16 => n == 16,
            Self::Zip5 => n == 5,
            Self::Zip => n == 5 || n == 9,
            Self::Digits(want) => n == want as usize,
        };
        if !ok_len {
            return Err(Rejection::WrongLength);
        }
        if matches!(self, Self::Card | Self::Card16) && !luhn_valid(digits.as_bytes()) {
            return Err(Rejection::Luhn);
        }
        if self == Self::Zip && n == 9 {
            let mut out = String::with_capacity(10);
            out.push_str(&digits[..5]);
            out.push('-');
            out.push_str(&digits[5..]);
            return Ok(Plaintext::from_string(out));
        }
        Ok(Plaintext::from_string(digits.to_string()))
    }

    /// What the caller hears after a refused value. Never repeats the value.
    pub fn reprompt(self) -> String {
        match self {
            Self::Card | Self::Card16 => "Sorry, that didn't sound like a valid card number. Please say or key in the long number on the front of your card, one digit at a time.".to_owned(),
            Self::Zip5 => "Sorry, that didn't sound like a valid ZIP code. Please say or key in your five-digit ZIP code.".to_owned(),
            Self::Zip => "Sorry, that didn't sound like a valid ZIP code. Please say or key in your five-digit ZIP code, or all nine digits of your ZIP plus four.".to_owned(),
            Self::Digits(n) => format!("Sorry, I need exactly {n} digits. Please say or key them in, one at a time."),
        }
    }

    /// What the caller hears after speaking where only the keypad counts.
    pub fn keypad_reprompt(self) -> String {
        format!(
            "Please use your phone's keypad for your {}, then press the pound key.",
            self.label()
        )
    }

    /// How the field is named to the caller.
    pub fn label(self) -> &'static str {
        match self {
            Self::Card | Self::Card16 => "card number",
            Self::Zip5 | Self::Zip => "ZIP code",
            Self::Digits(_) => "number",
        }
    }
}

/// The Luhn (mod 10) check over ASCII digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 {
                    dd - 9
                } else {
                    dd
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn digit_word(word: &str) -> Option<char> {
    Some(match word {
        "zero" | "oh" | "o" | "nought" => '0',
        "one" => '1',
        "two" => '2',
        "three" => '3',
        "four" => '4',
        "five" => '5',
        "six" => '6',
        "seven" => '7',
        "eight" => '8',
        "nine" | "niner" => '9',
        _ => return None,
    })
}

/// Turns "4111 1111-1111 1111", "four one one one" or "double five oh" into
/// bare digits. Separators (space, '-', '.', ',', '/') are dropped; anything
/// else is refused.
pub fn normalise_digits(input: &str) -> Result<Zeroizing<String>, Rejection> {
    if input.chars().count() > MAX_INPUT_CHARS {
        return Err(Rejection::TooLong);
    }
    let lower = Zeroizing::new(input.to_lowercase());
    let mut out = Zeroizing::new(String::with_capacity(24));
    let mut repeat: Option<usize> = None;
    let push = |c: char, out: &mut String, repeat: &mut Option<usize>| -> Result<(), Rejection> {
        let times = repeat.take().unwrap_or(1);
        for _ in 0..times {
            if out.len() >= MAX_DIGITS {
                return Err(Rejection::TooLong);
            }
            out.push(c);
        }
        Ok(())
    };
    for token in lower.split(|c: char| c.is_whitespace() || matches!(c, '-' | '.' | ',' | '/')) {
        if token.is_empty() {
            continue;
        }
        if token.bytes().all(|b| b.is_ascii_digit()) {
            let mut chars = token.chars();
            if let Some(first) = chars.next() {
                push(first, &mut out, &mut repeat)?;
            }
            for c in chars {
                push(c, &mut out, &mut None)?;
            }
        } else if let Some(d) = digit_word(token) {
            push(d, &mut out, &mut repeat)?;
        } else if matches!(token, "double" | "triple") {
            if repeat.is_some() {
                return Err(Rejection::NotDigits);
            }
            repeat = Some(if token == "double" { 2 } else { 3 });
        } else {
            return Err(Rejection::NotDigits);
        }
    }
    if repeat.is_some() {
        return Err(Rejection::NotDigits);
    }
    if out.is_empty() {
        return Err(Rejection::Empty);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(v: Validator, input: &str) -> String {
        v.validate(input).unwrap().expose_str().unwrap().to_owned()
    }

    #[test]
    fn luhn_accepts_known_test_numbers() {
        for n in [
            "4111111111111111",
            "5555555555554444",
            "378282246310005",
            "6011111111111117",
            "4222222222222",
            "6304000000000000",
            "0",
        ] {
            assert!(luhn_valid(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn luhn_rejects_one_digit_changes_and_transpositions() {
        assert!(!luhn_valid(b"4111111111111112"));
        assert!(!luhn_valid(b"4111111111111121"));
        assert!(!luhn_valid(b""));
        assert!(!luhn_valid(b"41111111111111a1"));
    }

    #[test]
    fn cards_accept_separators() {
        assert_eq!(
            ok(Validator::Card, "4111 1111 1111 1111"),
            "4111111111111111"
        );
        assert_eq!(
            ok(Validator::Card, "4111-1111-1111-1111"),
            "4111111111111111"
        );
        assert_eq!(
            ok(Validator::Card, " 4111.1111.1111.1111 "),
            "4111111111111111"
        );
    }

    #[test]
    fn cards_accept_spoken_digits() {
        assert_eq!(
            ok(
                Validator::Card,
                "four one one one one one one one one one one one one one one one"
            ),
            "4111111111111111"
        );
        assert_eq!(
            ok(
                Validator::Card,
                "Four triple one, one one one one, double one one one, one one one one"
            ),
            "4111111111111111"
        );
        assert_eq!(
            ok(
                Validator::Card,
                "three seven eight two eight two two four six three one oh oh oh five"
            ),
            "378282246310005"
        );
    }

    #[test]
    fn card_lengths_are_enforced() {
        assert_eq!(Validator::Card.validate("4222222222222").unwrap().len(), 13);
        assert_eq!(
            Validator::Card.validate("422222222222").err(),
            Some(Rejection::WrongLength)
        );
        assert_eq!(
            Validator::Card.validate("41111111111111111111").err(),
            Some(Rejection::WrongLength)
        );
        assert_eq!(
            Validator::Card16.validate("378282246310005").err(),
            Some(Rejection::WrongLength)
        );
        assert_eq!(
            Validator::Card16.validate("4111111111111112").err(),
            Some(Rejection::Luhn)
        );
        assert_eq!(
            Validator::Card.validate("4111111111111112").err(),
            Some(Rejection::Luhn)
        );
    }

    #[test]
    fn zip_codes() {
        assert_eq!(ok(Validator::Zip5, "98101"), "98101");
        assert_eq!(ok(Validator::Zip5, "nine eight one oh one"), "98101");
        assert_eq!(
            Validator::Zip5.validate("9810").err(),
            Some(Rejection::WrongLength)
        );
        assert_eq!(
            Validator::Zip5.validate("98101-1234").err(),
            Some(Rejection::WrongLength)
        );
        assert_eq!(ok(Validator::Zip, "98101-1234"), "98101-1234");
        assert_eq!(ok(Validator::Zip, "981011234"), "98101-1234");
        assert_eq!(ok(Validator::Zip, "98101"), "98101");
        assert_eq!(
            Validator::Zip.validate("9810112").err(),
            Some(Rejection::WrongLength)
        );
    }

    #[test]
    fn digits_n() {
        assert_eq!("digits:4".parse(), Ok(Validator::Digits(4)));
        assert_eq!(ok(Validator::Digits(4), "double oh double seven"), "0077");
        assert_eq!(
            Validator::Digits(4).validate("123").err(),
            Some(Rejection::WrongLength)
        );
        assert!("digits:0".parse::<Validator>().is_err());
        assert!("digits:33".parse::<Validator>().is_err());
        assert!("digits:x".parse::<Validator>().is_err());
        assert!("luhn".parse::<Validator>().is_err());
    }

    #[test]
    fn garbage_is_refused_without_echoing_it() {
        assert_eq!(Validator::Card.validate("").err(), Some(Rejection::Empty));
        assert_eq!(
            Validator::Card.validate(" - . ").err(),
            Some(Rejection::Empty)
        );
        assert_eq!(
            Validator::Card.validate("my card is 4111").err(),
            Some(Rejection::NotDigits)
        );
        assert_eq!(
            Validator::Card.validate("4111<script>").err(),
            Some(Rejection::NotDigits)
        );
        assert_eq!(
            Validator::Card.validate("double").err(),
            Some(Rejection::NotDigits)
        );
        assert_eq!(
            Validator::Card.validate("double triple one").err(),
            Some(Rejection::NotDigits)
        );
        assert_eq!(
            Validator::Card.validate("４１１１").err(),
            Some(Rejection::NotDigits)
        );
        assert_eq!(
            Validator::Card
                .validate(&"1".repeat(MAX_INPUT_CHARS + 1))
                .err(),
            Some(Rejection::TooLong)
        );
        assert_eq!(
            Validator::Card.validate(&"1 ".repeat(40)).err(),
            Some(Rejection::TooLong)
        );
        let shown = format!("{:?}", Validator::Card.validate("4111111111111112"));
        assert!(!shown.contains("4111"));
    }

    #[test]
    fn reprompts_never_hold_digits_of_the_input() {
        for v in [
            Validator::Card,
            Validator::Zip5,
            Validator::Zip,
            Validator::Digits(6),
        ] {
            let p = v.reprompt();
            assert!(!p.contains("4111"));
            assert!(!p.is_empty());
        }
    }
}
