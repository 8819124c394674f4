//! The one type that holds a caller's value in the clear.

use std::fmt;

use zeroize::Zeroizing;

/// A caller-supplied value (card number, ZIP code...) in the clear.
///
/// The bytes are wiped when dropped. There is no `Display`, no `Clone` and no
/// `Serialize`; `Debug` shows only the length. Reading the value is an explicit
/// call to [`Plaintext::expose`] so that every use can be found with grep.
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn from_string(value: String) -> Self {
        Self::new(value.into_bytes())
    }

    /// The value itself. Call only where the value must leave: the encrypt call,
    /// and the one audited response that reveals it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The value as text, if it is UTF-8.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext(<redacted, {} bytes>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_value() {
        let p = Plaintext::from_string("4111111111111111".to_owned());
        let shown = format!("{p:?} {p:#?}");
        assert!(!shown.contains("4111"), "{shown}");
        assert!(shown.contains("16 bytes"));
    }

    #[test]
    fn expose_returns_the_value() {
        let p = Plaintext::from_string("12345".to_owned());
        assert_eq!(p.expose_str(), Some("12345"));
        assert_eq!(p.len(), 5);
    }
}
