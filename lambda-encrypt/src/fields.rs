//! Which values are captured and how each is validated (`CALLVAULT_FIELDS`).

use std::fmt;

use crate::context::{FieldName, IdError};
use crate::validate::{UnknownValidator, Validator};

pub const DEFAULT_FIELDS: &str = "creditcard:card,zipcode:zip5";
pub const MAX_FIELDS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsError {
    #[error("CALLVAULT_FIELDS is empty")]
    Empty,
    #[error("CALLVAULT_FIELDS entry {0} is not 'name:validator'")]
    NoValidator(usize),
    #[error("CALLVAULT_FIELDS entry {index}: {source}")]
    BadName {
        index: usize,
        #[source]
        source: IdError,
    },
    #[error("CALLVAULT_FIELDS entry {index}: {source}")]
    BadValidator {
        index: usize,
        #[source]
        source: UnknownValidator,
    },
    #[error("CALLVAULT_FIELDS names field '{0}' twice")]
    Duplicate(String),
    #[error("CALLVAULT_FIELDS holds more than {MAX_FIELDS} fields")]
    TooMany,
    #[error("CALLVAULT_FIELDS field '{0}' collides with the attribute names callvault writes")]
    Reserved(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: FieldName,
    pub validator: Validator,
}

/// The configured fields, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Vec<FieldSpec>);

impl Fields {
    /// Parses `name:validator[,name:validator...]`, e.g. `creditcard:card,zipcode:zip5,pin:digits:4`.
    pub fn parse(spec: &str) -> Result<Self, FieldsError> {
        let mut out: Vec<FieldSpec> = Vec::new();
        for (index, entry) in spec
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .enumerate()
        {
            let (name, validator) = entry
                .split_once(':')
                .ok_or(FieldsError::NoValidator(index))?;
            let name = FieldName::parse(name.trim())
                .map_err(|source| FieldsError::BadName { index, source })?;
            let validator = validator
                .trim()
                .parse()
                .map_err(|source| FieldsError::BadValidator { index, source })?;
            if out.iter().any(|f| f.name == name) {
                return Err(FieldsError::Duplicate(name.to_string()));
            }
            let n = name.as_str();
            if n.ends_with("_status")
                || n.ends_with("_retries")
                || matches!(n, "contactId" | "field" | "isValid")
            {
                return Err(FieldsError::Reserved(name.to_string()));
            }
            out.push(FieldSpec { name, validator });
        }
        if out.is_empty() {
            return Err(FieldsError::Empty);
        }
        if out.len() > MAX_FIELDS {
            return Err(FieldsError::TooMany);
        }
        Ok(Self(out))
    }

    pub fn get(&self, name: &str) -> Option<&FieldSpec> {
        self.0.iter().find(|f| f.name.as_str() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &FieldSpec> {
        self.0.iter()
    }
}

impl Default for Fields {
    fn default() -> Self {
        #[allow(clippy::expect_used)]
        Self::parse(DEFAULT_FIELDS).expect("the default field list parses")
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}:{}", field.name, field.validator)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_card_and_zip() {
        let fields = Fields::default();
        assert_eq!(fields.to_string(), DEFAULT_FIELDS);
        assert_eq!(fields.get("creditcard").unwrap().validator, Validator::Card);
    }

    #[test]
    fn digits_validators_keep_their_colon() {
        let fields = Fields::parse("pin:digits:4, account:digits:10").unwrap();
        assert_eq!(fields.get("pin").unwrap().validator, Validator::Digits(4));
        assert_eq!(
            fields.get("account").unwrap().validator,
            Validator::Digits(10)
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert_eq!(Fields::parse(""), Err(FieldsError::Empty));
        assert_eq!(
            Fields::parse("creditcard"),
            Err(FieldsError::NoValidator(0))
        );
        assert!(matches!(
            Fields::parse("credit card:card"),
            Err(FieldsError::BadName { .. })
        ));
        assert!(matches!(
            Fields::parse("cc:luhn"),
            Err(FieldsError::BadValidator { .. })
        ));
        assert_eq!(
            Fields::parse("a:card,a:zip5"),
            Err(FieldsError::Duplicate("a".into()))
        );
        assert_eq!(
            Fields::parse("x_status:card"),
            Err(FieldsError::Reserved("x_status".into()))
        );
    }
}
