//! The case or ticket reference a reveal is made for (a chargeback case, a
//! support ticket): the number the rest of the company searches by, kept in
//! its own audit column. Its label and pattern are the deployment's
//! (`CALLVAULT_CASE_LABEL`, `CALLVAULT_CASE_PATTERN`, `CALLVAULT_CASE_REQUIRED`).

/// Longest reference kept (characters).
pub const MAX_CASE_CHARS: usize = 64;

/// What the form calls the reference when the deployment does not say.
pub const DEFAULT_CASE_LABEL: &str = "Case or ticket";

/// The pattern used when the deployment sets none: a letter or digit, then
/// letters, digits and `. _ : / # -`, with no run of more than 12 digits (a
/// card number has 13 to 19: it cannot be typed here as a reference).
pub const DEFAULT_CASE_PATTERN: &str =
    "[0-9]{1,12}|(?:[A-Za-z]|[0-9]{1,12}[A-Za-z._:/#-])(?:[0-9]{0,12}[A-Za-z._:/#-])*[0-9]{0,12}";

/// How references are asked for and checked.
#[derive(Debug, Clone)]
pub struct CaseRule {
    /// What the form calls it ("Case or ticket", "Chargeback case", ...).
    pub label: String,
    /// The pattern as configured, for the form's `pattern` attribute and the
    /// refusal's wording.
    pub pattern: String,
    /// `pattern`, anchored at both ends.
    matcher: regex_lite::Regex,
    /// A reveal without a reference is refused.
    pub required: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CaseConfigError {
    #[error("CALLVAULT_CASE_PATTERN is not a regular expression: {0}")]
    Pattern(String),
    #[error("CALLVAULT_CASE_LABEL must be 1 to 40 characters of plain text")]
    Label,
}

/// Why a reference was refused (never echoes the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    #[error("a case or ticket reference is required")]
    Missing,
    #[error("the reference is longer than {MAX_CASE_CHARS} characters")]
    TooLong,
    #[error("the reference does not have the expected form")]
    Pattern,
    #[error("a reference must not contain a card number")]
    CardNumber,
}

impl CaseError {
    /// What the person is told beside the reference field under `rule`: what
    /// to do, in plain words (never the pattern, never what they typed).
    pub fn advice(self, rule: &CaseRule) -> String {
        match self {
            Self::Missing => "Enter the reference this reveal is for.".into(),
            Self::TooLong => format!("A reference is at most {MAX_CASE_CHARS} characters."),
            Self::Pattern if rule.pattern == DEFAULT_CASE_PATTERN => {
                "Use letters and digits, with . _ : / # - between them if needed and no spaces (for example CB-2026/0042).".into()
            }
            Self::Pattern => {
                "That is not how references are written here: check it against the case and type it again.".into()
            }
            Self::CardNumber => {
                "Leave card numbers out of the reference (auditors read it). What you typed was not kept.".into()
            }
        }
    }

    /// The outcome word for the audit row.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Missing => "no_case_ref",
            Self::TooLong | Self::Pattern | Self::CardNumber => "bad_case_ref",
        }
    }
}

impl CaseRule {
    pub fn new(label: &str, pattern: &str, required: bool) -> Result<Self, CaseConfigError> {
        let label = crate::text::one_line(label).trim().to_owned();
        if label.is_empty() || label.chars().count() > 40 || label.chars().any(char::is_control) {
            return Err(CaseConfigError::Label);
        }
        let pattern = pattern.trim();
        let pattern = if pattern.is_empty() {
            DEFAULT_CASE_PATTERN
        } else {
            pattern
        };
        let matcher = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| CaseConfigError::Pattern(e.to_string()))?;
        Ok(Self {
            label,
            pattern: pattern.to_owned(),
            matcher,
            required,
        })
    }

    /// The pattern as a browser's `pattern` attribute takes it: compiled
    /// with the `v` flag, where `/`, `-`, `(`, `)`, `{`, `}` and `|` inside a
    /// character class must be escaped (browsers skip a pattern that does
    /// not compile). The server checks the pattern as configured.
    pub fn browser_pattern(&self) -> String {
        let mut out = String::with_capacity(self.pattern.len() + 8);
        let mut in_class = false;
        let mut escaped = false;
        let mut chars = self.pattern.chars().peekable();
        let mut class_start = false;
        while let Some(c) = chars.next() {
            if escaped {
                out.push(c);
                escaped = false;
                class_start = false;
                continue;
            }
            match c {
                '\\' => {
                    escaped = true;
                    out.push(c);
                }
                '[' if !in_class => {
                    in_class = true;
                    class_start = true;
                    out.push(c);
                    if chars.peek() == Some(&'^') {
                        out.push('^');
                        chars.next();
                    }
                    continue;
                }
                ']' if in_class && !class_start => {
                    in_class = false;
                    out.push(c);
                }
                '-' if in_class && (class_start || chars.peek() == Some(&']')) => {
                    out.push_str("\\-");
                }
                '/' | '(' | ')' | '{' | '}' | '|' if in_class => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
            class_start = false;
        }
        out
    }

    /// The reference as stored: one trimmed line that matches the pattern,
    /// or "" when none was given and none is required.
    pub fn parse(&self, raw: &str) -> Result<String, CaseError> {
        let cleaned = crate::text::one_line(raw);
        let value = cleaned.trim();
        if value.is_empty() {
            return if self.required {
                Err(CaseError::Missing)
            } else {
                Ok(String::new())
            };
        }
        if value.chars().count() > MAX_CASE_CHARS {
            return Err(CaseError::TooLong);
        }
        // Whatever the deployment's pattern allows: auditors read
        // references, and they never see card data.
        if crate::guard::contains_card_number(value) {
            return Err(CaseError::CardNumber);
        }
        if value.chars().any(char::is_control) || !self.matcher.is_match(value) {
            return Err(CaseError::Pattern);
        }
        Ok(value.to_owned())
    }
}

impl Default for CaseRule {
    fn default() -> Self {
        #[allow(clippy::expect_used)]
        Self::new(DEFAULT_CASE_LABEL, DEFAULT_CASE_PATTERN, false)
            .expect("the default case pattern compiles")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_is_in_words_never_the_pattern() {
        let strict = CaseRule::new("Chargeback case", "CB-[0-9]{6}", true).unwrap();
        for rule in [CaseRule::default(), strict] {
            for e in [
                CaseError::Missing,
                CaseError::TooLong,
                CaseError::Pattern,
                CaseError::CardNumber,
            ] {
                let said = e.advice(&rule);
                assert!(!said.contains('[') && !said.contains('{'), "{said}");
                assert!(!said.contains(&rule.pattern), "{said}");
            }
        }
    }

    #[test]
    fn references_follow_the_pattern_and_are_optional_by_default() {
        let rule = CaseRule::default();
        assert_eq!(rule.parse("  CB-2026/0042 ").unwrap(), "CB-2026/0042");
        assert_eq!(rule.parse("").unwrap(), "");
        assert_eq!(rule.parse(" \u{200B} ").unwrap(), "");
        // Bidi controls and invisible characters go, as in reasons.
        assert_eq!(rule.parse("\u{202E}CB-7\u{200B}").unwrap(), "CB-7");
        for bad in ["<script>", "a b", "-lead", "x\u{2028}y", "CB\u{0}7", "😀"] {
            assert!(rule.parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(rule.parse(&"9".repeat(65)), Err(CaseError::TooLong));
    }

    #[test]
    fn a_card_number_is_never_a_reference_nor_a_reason() {
        let rule = CaseRule::default();
        for card in [
            "4111111111111111",
            "4111-1111-1111-1111",
            "CB-4111111111111111",
            "4111_1111_1111_1111",
            "4111:1111:1111:1111",
            "41111111111111111225",
        ] {
            assert_eq!(rule.parse(card), Err(CaseError::CardNumber), "{card}");
        }
        // The default pattern holds no run of 13 digits or more, Luhn or not.
        for long in ["1234567890123", "CB-4111111111111112", "x12345678901234567"] {
            assert_eq!(rule.parse(long), Err(CaseError::Pattern), "{long}");
        }
        for ok in [
            "123456789012",
            "CB-2026-000000000042",
            "T#12/34:5",
            "a",
            "7",
        ] {
            assert_eq!(rule.parse(ok).unwrap(), ok);
        }
        // A deployment's own pattern cannot let one through either.
        let digits = CaseRule::new("Case", "[0-9]{16}", false).unwrap();
        assert_eq!(digits.parse("4111111111111111"), Err(CaseError::CardNumber));
        assert_eq!(
            digits.parse("4111111111111112").unwrap(),
            "4111111111111112"
        );
        // Reasons go through the same guard (and a Hangul filler is no text).
        use super::super::{Reason, ReasonError};
        for reason in [
            "refund 4111 1111 1111 1111",
            "card 4111, 1111, 1111, 1111 disputed",
        ] {
            assert_eq!(
                Reason::parse(reason),
                Err(ReasonError::CardNumber),
                "{reason}"
            );
        }
        for blank in ["\u{3164}", "\u{FFA0}\u{115F}\u{1160}", "\u{3164} \u{180B}"] {
            assert_eq!(
                Reason::parse(blank),
                Err(ReasonError::NothingVisible),
                "{blank:?}"
            );
        }
        assert_eq!(
            Reason::parse("case 2026-0042").unwrap().as_str(),
            "case 2026-0042"
        );
    }

    #[test]
    fn a_deployment_sets_its_own_label_pattern_and_requirement() {
        let rule = CaseRule::new("Chargeback case", "CB-[0-9]{6}", true).unwrap();
        assert_eq!(rule.parse("CB-123456").unwrap(), "CB-123456");
        assert_eq!(rule.parse("CB-12345"), Err(CaseError::Pattern));
        // Anchored: a match inside a longer value is not enough.
        assert_eq!(rule.parse("xCB-123456"), Err(CaseError::Pattern));
        assert_eq!(rule.parse(" "), Err(CaseError::Missing));
        assert!(CaseRule::new("x", "([", false).is_err());
        assert!(CaseRule::new("", "", false).is_err());
        assert!(CaseRule::new(&"l".repeat(41), "", false).is_err());
    }
}
