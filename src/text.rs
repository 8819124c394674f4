//! Free text that ends up in line-based readers (audit exports read by a
//! SIEM, `grep`, a terminal): which characters may break or disguise a line.

use std::borrow::Cow;

/// Characters that end a line for some reader: the C0 and C1 controls (LF,
/// CR, VT, FF, NEL, the file/group/record separators that Python's
/// `splitlines` honours, tab) and the Unicode line and paragraph separators.
pub fn is_line_break(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

/// Bidirectional formatting controls: they reorder how a line is displayed,
/// so a reader sees other text than the bytes say (CVE-2021-42574).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Invisible characters with no role in plain text: zero-width space, word
/// joiner and invisible operators, byte order mark, interlinear annotation,
/// tags. (Zero-width joiner and non-joiner are kept: scripts such as Persian
/// and Devanagari need them.)
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Unicode's Default_Ignorable_Code_Point (DerivedCoreProperties.txt): code
/// points a renderer shows as nothing when it cannot draw them, among them
/// the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0), which are letters
/// by category and look like blank space.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A letter or digit a reader can see: alphanumeric and drawn with a
/// visible glyph (not a default-ignorable code point such as a Hangul
/// filler). What "a reason must contain letters or digits" counts.
pub fn is_visible_letter_or_digit(c: char) -> bool {
    c.is_alphanumeric() && !is_default_ignorable(c)
}

/// Whether `s` has at least one [`is_visible_letter_or_digit`] character.
pub fn has_visible_letter_or_digit(s: &str) -> bool {
    s.chars().any(is_visible_letter_or_digit)
}

/// Whether `c` is changed by [`one_line`].
pub fn is_unsafe_in_a_line(c: char) -> bool {
    is_line_break(c) || is_bidi_control(c) || is_invisible(c)
}

/// The text as one plain line: every line break becomes a space (so words
/// stay apart), bidi controls and invisible characters are dropped.
pub fn one_line(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe_in_a_line) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .filter(|&c| !is_bidi_control(c) && !is_invisible(c))
            .map(|c| if is_line_break(c) { ' ' } else { c })
            .collect(),
    )
}

/// Serialised JSON with every character [`one_line`] would change written as
/// a `\uXXXX` escape. JSON's structure is ASCII, so such characters only
/// occur inside strings, where the escape means the same: a JSON reader gets
/// the value back exactly, a line-based reader sees one line of ASCII-safe
/// text. (serde_json escapes C0 controls itself, not DEL, C1 controls or the
/// characters above.)
pub fn escape_json_for_lines(json: String) -> String {
    if !json.chars().any(is_unsafe_in_a_line) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if is_unsafe_in_a_line(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_become_spaces_and_bidi_and_invisible_characters_go() {
        assert_eq!(one_line("plain text"), "plain text");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(
            one_line("a\nb\r\nc\u{2028}d\u{2029}e\u{85}f\u{b}g\u{1e}h"),
            "a b  c d e f g h"
        );
        assert_eq!(
            one_line("x\u{202E}fdp.exe\u{202C}\u{2066}\u{2069}\u{200E}\u{200F}\u{61C}y"),
            "xfdp.exey"
        );
        assert_eq!(one_line("\u{200B}\u{2060}\u{FEFF}\u{E0041}"), "");
        assert_eq!(one_line("می\u{200C}خواهم"), "می\u{200C}خواهم");
    }

    #[test]
    fn fillers_and_other_default_ignorables_are_not_visible_letters() {
        for blank in [
            "\u{3164}",
            "\u{FFA0}\u{FFA0}",
            "\u{115F}\u{1160}",
            "\u{3164} \u{FFA0} \u{115F}",
            "\u{180B}\u{FE0F}\u{E0100}",
            "\u{00AD}\u{034F}\u{17B4}",
            "",
        ] {
            assert!(!has_visible_letter_or_digit(blank), "{blank:?}");
        }
        for text in ["a", "7", "\u{3164}x", "Prüfung", "한국", "٣", "ㅎ"] {
            assert!(has_visible_letter_or_digit(text), "{text:?}");
        }
        // The fillers are letters by category: the predicate, not
        // `is_alphanumeric`, is what tells them apart.
        assert!('\u{3164}'.is_alphanumeric());
    }

    #[test]
    fn json_keeps_its_meaning_and_loses_its_line_breaks() {
        let value = serde_json::json!({"reason": "a\u{2028}b\u{202E}c\u{85}d\u{E0041}e\nf"});
        let line = escape_json_for_lines(value.to_string());
        assert!(line.is_ascii(), "{line}");
        assert!(
            line.contains(r"a\u2028b\u202ec\u0085d\udb40\udc41e\nf"),
            "{line}"
        );
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, value);
    }
}
