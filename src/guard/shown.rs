//! A value from Connect or CloudWatch as pages show it: what the leak guard
//! let through, and which attribute names are sensitive.

use std::collections::BTreeSet;

use super::{guard, Guarded};

/// Attribute names that must hold ciphertext (`CALLVAULT_FIELDS`, plus the
/// reference solution's names in legacy mode). A key names a field whatever
/// its letter case and separators: `zipcode`, `ZIPCODE`, `ZipCode`,
/// `zip_code` and `zip-code` are one field to a reader, so to the guard too.
#[derive(Debug, Clone, Default)]
pub struct Sensitive(pub BTreeSet<String>);

impl Sensitive {
    pub fn contains(&self, name: &str) -> bool {
        let key = canonical_key(name);
        !key.is_empty() && self.0.iter().any(|field| canonical_key(field) == key)
    }
}

/// A key as the guard compares it: its letters and digits, lower case.
pub fn canonical_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A value as the leak guard lets it be shown.
pub struct ShownValue {
    /// "ciphertext", "text" or "masked".
    pub kind: &'static str,
    pub text: String,
    pub summary: Option<CiphertextView>,
    pub findings: usize,
}

pub struct CiphertextView {
    pub field: String,
    pub contact_id: String,
    pub key_ids: String,
    pub bytes: usize,
    pub fingerprint: String,
    pub suite: String,
    pub foreign_context: bool,
    /// Amazon Connect's keypad encryption: bound to no contact or field.
    pub keypad: bool,
}

impl ShownValue {
    /// A keypad field where the caller keyed nothing: Connect stores the
    /// word "Timeout" there, which is no leak.
    pub fn nothing_keyed() -> Self {
        Self {
            kind: "text",
            text: "nothing keyed (Connect stored \"Timeout\")".to_owned(),
            summary: None,
            findings: 0,
        }
    }

    pub fn guard(value: &str, sensitive: bool) -> Self {
        let g = guard(value, sensitive);
        let findings = g.findings();
        match g {
            Guarded::Ciphertext(s) => Self {
                kind: "ciphertext",
                text: String::new(),
                summary: Some(CiphertextView {
                    field: s.field,
                    contact_id: s.contact_id,
                    key_ids: s.key_ids.join(", "),
                    bytes: s.bytes,
                    fingerprint: s.fingerprint,
                    suite: s.suite,
                    foreign_context: s.foreign_context,
                    keypad: s.keypad,
                }),
                findings,
            },
            Guarded::Text { shown, findings } => Self {
                kind: "text",
                text: shown,
                summary: None,
                findings,
            },
            Guarded::Masked => Self {
                kind: "masked",
                text: String::new(),
                summary: None,
                findings,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_keys_match_whatever_their_case_and_separators() {
        let fields = Sensitive(["zipcode".to_owned(), "creditcard".to_owned()].into());
        for key in [
            "zipcode",
            "ZIPCODE",
            "ZipCode",
            "zip_code",
            "zip-code",
            "Zip Code",
            "zip.code",
            "CreditCard",
            "credit_card",
            "CREDIT-CARD",
        ] {
            assert!(fields.contains(key), "{key}");
        }
        for key in ["zip", "code", "zipcodes", "", "_-", "card"] {
            assert!(!fields.contains(key), "{key}");
        }
    }
}
