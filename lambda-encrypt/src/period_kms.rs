//! The period keys of a `kms-period:` keyring as KMS reports them: every
//! alias under the prefix (ListAliases, paged) and the state of the key it
//! names (DescribeKey). The console decrypts only with a key listed here,
//! and only while it is enabled; `callvault keys` reads the same listing.

use std::collections::HashMap;

use crate::period::{AliasKind, AliasPrefix, KeyState, Period};

/// Most aliases read (a prefix holds one per month: a century is 1,200).
pub const MAX_ALIASES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodKeysError {
    #[error(
        "alias {alias} names a key of account {key_account}, not of this account \
         ({alias_account}): refusing to use it"
    )]
    ForeignAccount {
        alias: String,
        key_account: String,
        alias_account: String,
    },
    #[error("key {key_id} has two period aliases ({first} and {second}): one key per period")]
    TwoPeriods {
        key_id: String,
        first: Period,
        second: Period,
    },
    #[error("alias {alias} names key {key_id}, which KMS cannot describe ({code})")]
    Undescribed {
        alias: String,
        key_id: String,
        code: String,
    },
    #[error("KMS {operation} failed: {code}")]
    Kms {
        operation: &'static str,
        code: String,
    },
    #[error("more than {MAX_ALIASES} aliases in this account and region")]
    TooManyAliases,
}

impl PeriodKeysError {
    pub fn kms<E, R>(operation: &'static str, err: &aws_sdk_kms::error::SdkError<E, R>) -> Self
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata,
    {
        use aws_sdk_kms::error::SdkError;
        let code = match err {
            SdkError::ServiceError(e) => e.err().code().unwrap_or("service error").to_owned(),
            SdkError::TimeoutError(_) => "timeout".into(),
            SdkError::DispatchFailure(_) => "connection failed".into(),
            _ => "unexpected response".into(),
        };
        Self::Kms {
            operation,
            code: code.chars().take(80).collect(),
        }
    }
}

/// One period's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodKey {
    pub period: Period,
    /// `<prefix>/<YYYY-MM>`.
    pub alias: String,
    /// The bare key id (what moto's mutating calls take).
    pub key_id: String,
    pub arn: String,
    pub state: KeyState,
    /// `<prefix>/current` names this key.
    pub current: bool,
}

/// Every period key under a prefix, oldest period first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeriodKeys {
    pub keys: Vec<PeriodKey>,
    /// The key id `<prefix>/current` names, if the alias exists.
    pub current_key_id: Option<String>,
    /// The account id of the aliases (from their AliasArn), when KMS gave one.
    pub account: Option<String>,
}

impl PeriodKeys {
    pub fn by_arn(&self, arn: &str) -> Option<&PeriodKey> {
        self.keys.iter().find(|k| k.arn == arn)
    }

    pub fn get(&self, period: Period) -> Option<&PeriodKey> {
        self.keys.iter().find(|k| k.period == period)
    }

    /// The period key `current` names.
    pub fn current(&self) -> Option<&PeriodKey> {
        self.keys.iter().find(|k| k.current)
    }
}

/// An alias as ListAliases returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    pub name: String,
    pub alias_arn: Option<String>,
    pub target_key_id: Option<String>,
}

/// A key as DescribeKey returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub key_id: String,
    pub arn: String,
    pub state: KeyState,
}

/// The account field of an ARN (`arn:partition:service:region:ACCOUNT:...`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Builds the listing from the aliases under `prefix` and the keys they
/// name: refuses a key of another account, and one key under two periods.
pub fn assemble(
    prefix: &AliasPrefix,
    aliases: &[AliasEntry],
    keys: &HashMap<String, KeyInfo>,
) -> Result<PeriodKeys, PeriodKeysError> {
    let mut out = PeriodKeys::default();
    let mut periods: Vec<(Period, &AliasEntry, &KeyInfo)> = Vec::new();
    for alias in aliases {
        let (Some(kind), Some(target)) = (prefix.classify(&alias.name), &alias.target_key_id)
        else {
            continue;
        };
        let key = keys
            .get(target)
            .ok_or_else(|| PeriodKeysError::Undescribed {
                alias: alias.name.clone(),
                key_id: target.clone(),
                code: "not described".into(),
            })?;
        let alias_account = alias.alias_arn.as_deref().and_then(arn_account);
        if out.account.is_none() {
            out.account = alias_account.map(str::to_owned);
        }
        if let (Some(alias_account), Some(key_account)) = (alias_account, arn_account(&key.arn)) {
            if alias_account != key_account {
                return Err(PeriodKeysError::ForeignAccount {
                    alias: alias.name.clone(),
                    key_account: key_account.to_owned(),
                    alias_account: alias_account.to_owned(),
                });
            }
        }
        match kind {
            AliasKind::Current => out.current_key_id = Some(key.key_id.clone()),
            AliasKind::Period(p) => periods.push((p, alias, key)),
        }
    }
    periods.sort_by_key(|(p, _, _)| *p);
    for (period, alias, key) in periods {
        if let Some(first) = out.keys.iter().find(|k| k.key_id == key.key_id) {
            return Err(PeriodKeysError::TwoPeriods {
                key_id: key.key_id.clone(),
                first: first.period,
                second: period,
            });
        }
        out.keys.push(PeriodKey {
            period,
            alias: alias.name.clone(),
            key_id: key.key_id.clone(),
            arn: key.arn.clone(),
            state: key.state.clone(),
            current: out.current_key_id.as_deref() == Some(key.key_id.as_str()),
        });
    }
    Ok(out)
}

/// Every alias of the account and region, following ListAliases' pages.
pub async fn list_aliases(
    client: &aws_sdk_kms::Client,
) -> Result<Vec<AliasEntry>, PeriodKeysError> {
    let mut out = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_aliases()
            .set_marker(marker.take())
            .limit(100)
            .send()
            .await
            .map_err(|e| PeriodKeysError::kms("ListAliases", &e))?;
        for a in page.aliases() {
            out.push(AliasEntry {
                name: a.alias_name().unwrap_or_default().to_owned(),
                alias_arn: a.alias_arn().map(str::to_owned),
                target_key_id: a.target_key_id().map(str::to_owned),
            });
        }
        if out.len() > MAX_ALIASES {
            return Err(PeriodKeysError::TooManyAliases);
        }
        match (page.truncated(), page.next_marker()) {
            (true, Some(next)) if !next.is_empty() => marker = Some(next.to_owned()),
            _ => return Ok(out),
        }
    }
}

/// DescribeKey of one key id.
pub async fn describe(
    client: &aws_sdk_kms::Client,
    key_id: &str,
) -> Result<KeyInfo, (String, PeriodKeysError)> {
    let out = client
        .describe_key()
        .key_id(key_id)
        .send()
        .await
        .map_err(|e| {
            let err = PeriodKeysError::kms("DescribeKey", &e);
            let code = match &err {
                PeriodKeysError::Kms { code, .. } => code.clone(),
                _ => String::new(),
            };
            (code, err)
        })?;
    let meta = out.key_metadata().ok_or_else(|| {
        (
            "no metadata".to_owned(),
            PeriodKeysError::Kms {
                operation: "DescribeKey",
                code: "no key metadata".into(),
            },
        )
    })?;
    use aws_sdk_kms::types::KeyState as S;
    let state = match meta.key_state() {
        Some(S::Enabled) => KeyState::Enabled,
        Some(S::Disabled) => KeyState::Disabled,
        Some(S::PendingDeletion) | Some(S::PendingReplicaDeletion) => KeyState::PendingDeletion {
            until_us: meta
                .deletion_date()
                .map(|d| d.secs().saturating_mul(1_000_000)),
        },
        Some(other) => KeyState::Other(other.as_str().to_owned()),
        None => KeyState::Other("unknown".into()),
    };
    Ok(KeyInfo {
        key_id: meta.key_id().to_owned(),
        arn: meta.arn().unwrap_or_default().to_owned(),
        state,
    })
}

/// The period keys under `prefix`: one ListAliases walk, one DescribeKey per
/// key named under the prefix.
pub async fn load(
    client: &aws_sdk_kms::Client,
    prefix: &AliasPrefix,
) -> Result<PeriodKeys, PeriodKeysError> {
    let aliases: Vec<AliasEntry> = list_aliases(client)
        .await?
        .into_iter()
        .filter(|a| prefix.classify(&a.name).is_some())
        .collect();
    let mut keys = HashMap::new();
    for alias in &aliases {
        let Some(target) = &alias.target_key_id else {
            continue;
        };
        if keys.contains_key(target) {
            continue;
        }
        let info =
            describe(client, target)
                .await
                .map_err(|(code, _)| PeriodKeysError::Undescribed {
                    alias: alias.name.clone(),
                    key_id: target.clone(),
                    code,
                })?;
        keys.insert(target.clone(), info);
    }
    assemble(prefix, &aliases, &keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "111122223333";

    fn alias(name: &str, target: &str) -> AliasEntry {
        AliasEntry {
            name: name.into(),
            alias_arn: Some(format!("arn:aws:kms:us-east-1:{ACCOUNT}:{name}")),
            target_key_id: Some(target.into()),
        }
    }

    fn key(id: &str, account: &str, state: KeyState) -> (String, KeyInfo) {
        (
            id.into(),
            KeyInfo {
                key_id: id.into(),
                arn: format!("arn:aws:kms:us-east-1:{account}:key/{id}"),
                state,
            },
        )
    }

    fn prefix() -> AliasPrefix {
        AliasPrefix::parse("alias/cv/fields").unwrap()
    }

    #[test]
    fn periods_current_and_states_are_assembled() {
        let keys: HashMap<_, _> = [
            key(
                "k1",
                ACCOUNT,
                KeyState::PendingDeletion { until_us: Some(0) },
            ),
            key("k2", ACCOUNT, KeyState::Enabled),
            key("k3", ACCOUNT, KeyState::Enabled),
        ]
        .into_iter()
        .collect();
        let aliases = [
            alias("alias/cv/fields/2025-02", "k2"),
            alias("alias/cv/fields/current", "k2"),
            alias("alias/cv/fields/2025-01", "k1"),
            alias("alias/cv/other/2025-01", "k3"),
            alias("alias/cv/fields/notes", "k3"),
        ];
        let got = assemble(&prefix(), &aliases, &keys).unwrap();
        let periods: Vec<String> = got.keys.iter().map(|k| k.period.to_string()).collect();
        assert_eq!(periods, ["2025-01", "2025-02"]);
        assert_eq!(got.current().unwrap().key_id, "k2");
        assert!(!got.keys[0].state.usable());
        assert_eq!(got.account.as_deref(), Some(ACCOUNT));
        assert_eq!(
            got.by_arn(&format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/k1"))
                .unwrap()
                .period
                .to_string(),
            "2025-01"
        );
    }

    #[test]
    fn a_key_of_another_account_is_refused() {
        let keys: HashMap<_, _> = [key("k1", "999988887777", KeyState::Enabled)]
            .into_iter()
            .collect();
        let err =
            assemble(&prefix(), &[alias("alias/cv/fields/2025-01", "k1")], &keys).unwrap_err();
        assert!(
            matches!(err, PeriodKeysError::ForeignAccount { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("999988887777"));
    }

    #[test]
    fn one_key_under_two_periods_is_refused() {
        let keys: HashMap<_, _> = [key("k1", ACCOUNT, KeyState::Enabled)]
            .into_iter()
            .collect();
        let aliases = [
            alias("alias/cv/fields/2025-01", "k1"),
            alias("alias/cv/fields/2025-02", "k1"),
        ];
        assert!(matches!(
            assemble(&prefix(), &aliases, &keys),
            Err(PeriodKeysError::TwoPeriods { .. })
        ));
    }
}
