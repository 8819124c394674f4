//! The encryption context that binds a ciphertext to one contact and one field.
//!
//! Contract (docs/contracts.md): exactly the keys `purpose`, `contactId` and
//! `field`. The ESDK adds keys of its own under the reserved `aws-crypto-`
//! prefix (the signing key of signed suites); those are ignored in comparisons.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

pub const PURPOSE_KEY: &str = "purpose";
pub const PURPOSE: &str = "callvault/caller-input";
pub const CONTACT_ID_KEY: &str = "contactId";
pub const FIELD_KEY: &str = "field";
/// Keys the ESDK itself adds to a message's context.
pub const RESERVED_PREFIX: &str = "aws-crypto-";

pub const MAX_CONTACT_ID_LEN: usize = 128;
pub const MAX_FIELD_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("contact id is empty")]
    EmptyContactId,
    #[error("contact id is longer than {MAX_CONTACT_ID_LEN} characters")]
    ContactIdTooLong,
    #[error("contact id may hold only letters, digits, '-', '_', '.' and ':'")]
    ContactIdCharacters,
    #[error("field name is empty")]
    EmptyFieldName,
    #[error("field name is longer than {MAX_FIELD_NAME_LEN} characters")]
    FieldNameTooLong,
    #[error("field name must start with a letter and hold only letters, digits, '_' and '-'")]
    FieldNameCharacters,
}

/// An Amazon Connect contact id (a UUID in practice) or a Lex session id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContactId(String);

impl ContactId {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Err(IdError::EmptyContactId);
        }
        if value.len() > MAX_CONTACT_ID_LEN {
            return Err(IdError::ContactIdTooLong);
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(IdError::ContactIdCharacters);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a captured field, e.g. `creditcard`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldName(String);

impl FieldName {
    pub fn parse(value: &str) -> Result<Self, IdError> {
        if value.is_empty() {
            return Err(IdError::EmptyFieldName);
        }
        if value.len() > MAX_FIELD_NAME_LEN {
            return Err(IdError::FieldNameTooLong);
        }
        let mut bytes = value.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
        if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(IdError::FieldNameCharacters);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The context of one captured value: which contact, which field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldContext {
    pub contact_id: ContactId,
    pub field: FieldName,
}

impl FieldContext {
    pub fn new(contact_id: ContactId, field: FieldName) -> Self {
        Self { contact_id, field }
    }

    /// The context map handed to the ESDK.
    pub fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            (PURPOSE_KEY.to_owned(), PURPOSE.to_owned()),
            (
                CONTACT_ID_KEY.to_owned(),
                self.contact_id.as_str().to_owned(),
            ),
            (FIELD_KEY.to_owned(), self.field.as_str().to_owned()),
        ])
    }

    pub fn to_expected(&self) -> ExpectedContext {
        ExpectedContext::from_pairs(self.to_map())
    }

    /// Reads a callvault context out of a message's context; `None` when the
    /// message is not a callvault caller-input message (other or extra keys).
    pub fn from_message_context(context: &BTreeMap<String, String>) -> Option<Self> {
        let user: BTreeMap<&str, &str> = user_keys(context).collect();
        if user.len() != 3 || user.get(PURPOSE_KEY) != Some(&PURPOSE) {
            return None;
        }
        let contact_id = ContactId::parse(user.get(CONTACT_ID_KEY)?).ok()?;
        let field = FieldName::parse(user.get(FIELD_KEY)?).ok()?;
        Some(Self { contact_id, field })
    }
}

fn user_keys(context: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    context
        .iter()
        .filter(|(k, _)| !k.starts_with(RESERVED_PREFIX))
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The exact context a decrypt must find in the message (reserved ESDK keys
/// aside). Used for callvault contexts and for the reference solution's legacy
/// `{stage, name, token}` context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedContext(BTreeMap<String, String>);

impl ExpectedContext {
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// Whether a message's context is exactly this one.
    pub fn matches(&self, message_context: &BTreeMap<String, String>) -> bool {
        user_keys(message_context).eq(self.0.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    pub fn to_hash_map(&self) -> HashMap<String, String> {
        self.0.clone().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_ids_accept_uuids_and_lex_session_ids() {
        assert!(ContactId::parse("5fb1c0a6-1b2c-4d3e-8f90-a1b2c3d4e5f6").is_ok());
        assert!(ContactId::parse("session:abc.DEF_1").is_ok());
    }

    #[test]
    fn contact_ids_reject_hostile_values() {
        assert_eq!(ContactId::parse(""), Err(IdError::EmptyContactId));
        assert_eq!(
            ContactId::parse("../etc"),
            Err(IdError::ContactIdCharacters)
        );
        assert_eq!(
            ContactId::parse("<script>"),
            Err(IdError::ContactIdCharacters)
        );
        assert_eq!(ContactId::parse("a\nb"), Err(IdError::ContactIdCharacters));
        assert_eq!(
            ContactId::parse(&"a".repeat(129)),
            Err(IdError::ContactIdTooLong)
        );
    }

    #[test]
    fn field_names_are_identifiers() {
        assert!(FieldName::parse("creditcard").is_ok());
        assert!(FieldName::parse("encrypted_cc").is_ok());
        assert_eq!(FieldName::parse("1abc"), Err(IdError::FieldNameCharacters));
        assert_eq!(FieldName::parse("a b"), Err(IdError::FieldNameCharacters));
        assert_eq!(FieldName::parse(""), Err(IdError::EmptyFieldName));
    }

    fn ctx() -> FieldContext {
        FieldContext::new(
            ContactId::parse("contact-a").unwrap(),
            FieldName::parse("creditcard").unwrap(),
        )
    }

    #[test]
    fn expected_context_ignores_reserved_keys_but_nothing_else() {
        let mut message: BTreeMap<_, _> = ctx().to_map().into_iter().collect();
        assert!(ctx().to_expected().matches(&message));
        message.insert("aws-crypto-public-key".into(), "AAAA".into());
        assert!(ctx().to_expected().matches(&message));
        message.insert("extra".into(), "x".into());
        assert!(!ctx().to_expected().matches(&message));
    }

    #[test]
    fn expected_context_refuses_another_contact_or_field() {
        let message: BTreeMap<_, _> = ctx().to_map().into_iter().collect();
        let other_contact = FieldContext::new(
            ContactId::parse("contact-b").unwrap(),
            FieldName::parse("creditcard").unwrap(),
        );
        let other_field = FieldContext::new(
            ContactId::parse("contact-a").unwrap(),
            FieldName::parse("zipcode").unwrap(),
        );
        assert!(!other_contact.to_expected().matches(&message));
        assert!(!other_field.to_expected().matches(&message));
    }

    #[test]
    fn field_context_round_trips_through_a_message_context() {
        let mut message: BTreeMap<_, _> = ctx().to_map().into_iter().collect();
        message.insert("aws-crypto-public-key".into(), "AAAA".into());
        assert_eq!(FieldContext::from_message_context(&message), Some(ctx()));
        message.insert("stage".into(), "dev".into());
        assert_eq!(FieldContext::from_message_context(&message), None);
    }
}
