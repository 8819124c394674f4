//! Reading the field key's policy: every statement that lets a principal use
//! the key must carry the encryption-context conditions itself (
//! item 5: KMS ignores IAM limits unless the key policy enables IAM).

use serde_json::Value;

/// The `purpose` every callvault ciphertext carries (docs/contracts.md, field encryption).
pub const PURPOSE: &str = "callvault/caller-input";
/// The context keys a callvault message may hold (the ESDK adds
/// `aws-crypto-public-key` with signed suites).
pub const CONTEXT_KEYS: [&str; 4] = ["purpose", "contactId", "field", "aws-crypto-public-key"];
/// Actions that produce or recover plaintext data keys.
const USE_ACTIONS: [&str; 3] = ["kms:Decrypt", "kms:GenerateDataKey", "kms:ReEncryptFrom"];
/// Context keys that must be present (a `Null` condition set to false).
const REQUIRED_PRESENT: [&str; 2] = ["contactId", "field"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the key policy is not JSON")]
    NotJson,
    #[error("the key policy has no Statement")]
    NoStatements,
}

/// What is missing from the policy, one entry per problem; empty when right.
pub fn review(policy: &str) -> Result<Vec<String>, PolicyError> {
    let doc: Value = serde_json::from_str(policy).map_err(|_| PolicyError::NotJson)?;
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return Err(PolicyError::NoStatements),
    };
    let mut problems = Vec::new();
    let mut decrypt_allowed = false;
    for (i, statement) in statements.iter().enumerate() {
        if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let covered: Vec<&str> = USE_ACTIONS
            .into_iter()
            .filter(|a| allows(statement, a))
            .collect();
        if covered.is_empty() {
            continue;
        }
        decrypt_allowed |= covered.contains(&"kms:Decrypt");
        let missing = missing_conditions(statement.get("Condition"));
        if !missing.is_empty() {
            let label = statement
                .get("Sid")
                .and_then(Value::as_str)
                .map(|s| format!("'{}'", s.chars().take(64).collect::<String>()))
                .unwrap_or_else(|| format!("#{}", i + 1));
            problems.push(format!(
                "statement {label} allows {} without {}",
                covered.join("/"),
                missing.join(", ")
            ));
        }
    }
    if !decrypt_allowed {
        problems.push("no statement allows kms:Decrypt (the console could not reveal)".into());
    }
    Ok(problems)
}

/// Whether the statement's Action (or NotAction) covers `action`.
fn allows(statement: &Value, action: &str) -> bool {
    if let Some(patterns) = statement.get("Action") {
        strings(patterns).iter().any(|p| glob(p, action))
    } else if let Some(patterns) = statement.get("NotAction") {
        !strings(patterns).iter().any(|p| glob(p, action))
    } else {
        false
    }
}

fn missing_conditions(condition: Option<&Value>) -> Vec<String> {
    let values = |operator: &str, key: &str| -> Option<Vec<String>> {
        let block = condition?.get(operator)?.as_object()?;
        block
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| strings(v))
    };
    let mut missing = Vec::new();
    let purpose = values("StringEquals", "kms:EncryptionContext:purpose");
    if purpose.as_deref() != Some(&[PURPOSE.to_owned()]) {
        missing.push(format!(
            "StringEquals kms:EncryptionContext:purpose = {PURPOSE}"
        ));
    }
    match values("ForAllValues:StringEquals", "kms:EncryptionContextKeys") {
        Some(keys) if !keys.is_empty() => {
            let extra: Vec<&str> = keys
                .iter()
                .map(String::as_str)
                .filter(|k| !CONTEXT_KEYS.contains(k))
                .collect();
            if !extra.is_empty() {
                missing.push(format!(
                    "kms:EncryptionContextKeys limited to {} (it also allows {})",
                    CONTEXT_KEYS.join("/"),
                    extra.join("/")
                ));
            }
        }
        _ => missing.push(format!(
            "ForAllValues:StringEquals kms:EncryptionContextKeys = {}",
            CONTEXT_KEYS.join("/")
        )),
    }
    for key in REQUIRED_PRESENT {
        let present = values("Null", &format!("kms:EncryptionContext:{key}"));
        if present.as_deref() != Some(&["false".to_owned()]) {
            missing.push(format!("Null kms:EncryptionContext:{key} = false"));
        }
    }
    missing
}

/// A JSON string, boolean, or list of them, as strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Bool(b) => vec![b.to_string()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// IAM action matching: `*` and `?` wildcards, case-insensitive.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good_conditions() -> Value {
        json!({
            "StringEquals": {"kms:EncryptionContext:purpose": PURPOSE},
            "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": CONTEXT_KEYS},
            "Null": {"kms:EncryptionContext:contactId": "false", "kms:EncryptionContext:field": false}
        })
    }

    fn policy(statements: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": statements}).to_string()
    }

    fn admin() -> Value {
        json!({"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "root"},
               "Action": ["kms:Create*", "kms:Describe*", "kms:Get*", "kms:Put*"], "Resource": "*"})
    }

    #[test]
    fn a_policy_like_the_templates_passes() {
        let p = policy(json!([
            admin(),
            {"Sid": "Lambda", "Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": "*", "Condition": good_conditions()},
            {"Sid": "Console", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*", "Condition": good_conditions()},
        ]));
        assert_eq!(review(&p), Ok(vec![]));
    }

    #[test]
    fn the_default_policy_lets_iam_decrypt_without_conditions() {
        let p = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}"#;
        let problems = review(p).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with(
            "statement 'Enable IAM User Permissions' allows kms:Decrypt/kms:GenerateDataKey/kms:ReEncryptFrom without StringEquals kms:EncryptionContext:purpose"
        ));
    }

    #[test]
    fn a_statement_without_the_purpose_condition_is_named() {
        let mut c = good_conditions();
        c.as_object_mut().unwrap().remove("StringEquals");
        let p = policy(json!({"Effect": "Allow", "Action": "kms:Decrypt", "Condition": c}));
        assert_eq!(
            review(&p).unwrap(),
            vec!["statement #1 allows kms:Decrypt without StringEquals kms:EncryptionContext:purpose = callvault/caller-input"]
        );
    }

    #[test]
    fn only_the_purpose_condition_reports_the_context_key_conditions() {
        let p = policy(
            json!([{"Sid": "Console", "Effect": "Allow", "Action": "kms:Decrypt",
            "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": PURPOSE}}}]),
        );
        assert_eq!(
            review(&p).unwrap(),
            vec!["statement 'Console' allows kms:Decrypt without ForAllValues:StringEquals kms:EncryptionContextKeys = purpose/contactId/field/aws-crypto-public-key, Null kms:EncryptionContext:contactId = false, Null kms:EncryptionContext:field = false"]
        );
    }

    #[test]
    fn extra_context_keys_and_wrong_purposes_are_reported() {
        let mut c = good_conditions();
        c["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] = json!(["purpose", "stage"]);
        c["StringEquals"]["kms:EncryptionContext:purpose"] =
            json!(["callvault/caller-input", "other"]);
        let p = policy(json!([{"Effect": "Allow", "Action": "kms:decrypt", "Condition": c}]));
        let problems = review(&p).unwrap();
        assert!(
            problems[0].contains("StringEquals kms:EncryptionContext:purpose"),
            "{problems:?}"
        );
        assert!(problems[0].contains("it also allows stage"), "{problems:?}");
    }

    #[test]
    fn not_action_and_wildcards_count_as_allowing() {
        let p = policy(json!([
            {"Sid": "Wild", "Effect": "Allow", "Action": "kms:Re*", "Condition": good_conditions()},
            {"Sid": "Not", "Effect": "Allow", "NotAction": ["kms:Encrypt"]},
            {"Sid": "Deny", "Effect": "Deny", "Action": "*"},
        ]));
        let problems = review(&p).unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("statement 'Not' allows kms:Decrypt"));
    }

    #[test]
    fn a_policy_that_allows_no_decrypt_says_so() {
        let p = policy(json!([admin()]));
        assert_eq!(
            review(&p).unwrap(),
            vec!["no statement allows kms:Decrypt (the console could not reveal)"]
        );
        assert_eq!(review("{"), Err(PolicyError::NotJson));
        assert_eq!(review("{}"), Err(PolicyError::NoStatements));
    }

    #[test]
    fn action_globs_match_like_iam() {
        assert!(glob("kms:*", "kms:Decrypt"));
        assert!(glob("*", "kms:Decrypt"));
        assert!(glob("KMS:decrypt", "kms:Decrypt"));
        assert!(glob("kms:Gen*Key", "kms:GenerateDataKey"));
        assert!(glob("kms:Decryp?", "kms:Decrypt"));
        assert!(!glob("kms:Get*", "kms:GenerateDataKey"));
        assert!(!glob("kms:Decrypt", "kms:DecryptX"));
    }
}
