//! What pages may show of data from Connect and CloudWatch: the leak guard,
//! and values as it lets them through.

pub mod leak_guard;
pub mod shown;

pub use leak_guard::*;
pub use shown::{canonical_key, CiphertextView, Sensitive, ShownValue};

#[cfg(test)]
mod props;

/// Typed text that holds a card number as it is, or once invisible
/// characters and line breaks are gone (`text::one_line`), which is how it
/// would read when typed back into a form.
pub fn holds_card_number(text: &str) -> bool {
    contains_card_number(text) || contains_card_number(&crate::text::one_line(text))
}
