//! The KMS side of the key commands: one key per period, aliased
//! `<prefix>/<YYYY-MM>`, and `<prefix>/current`. Mutating calls take the
//! bare key id (what every KMS API accepts).

use aws_sdk_kms::types::{KeySpec, KeyUsageType, Tag};
use lambda_encrypt::period::{AliasPrefix, Period};

use super::{KeyOptions, KeysError, StoredKey};

/// Tag keys on every period key.
pub const DEPLOYMENT_TAG: &str = "callvault:deployment";
pub const PERIOD_TAG: &str = "callvault:period";

#[derive(Debug, Clone)]
pub(crate) struct KmsKeys {
    client: aws_sdk_kms::Client,
    pub prefix: AliasPrefix,
    options: KeyOptions,
}

fn kms_err<E: aws_sdk_kms::error::ProvideErrorMetadata, R>(
    operation: &'static str,
) -> impl Fn(aws_sdk_kms::error::SdkError<E, R>) -> KeysError {
    move |e| match lambda_encrypt::period_kms::PeriodKeysError::kms(operation, &e) {
        lambda_encrypt::period_kms::PeriodKeysError::Kms { operation, code } => {
            KeysError::Kms { operation, code }
        }
        other => KeysError::PeriodKeys(other),
    }
}

fn code_of<E: aws_sdk_kms::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_kms::error::SdkError<E, R>,
) -> Option<String> {
    match e {
        aws_sdk_kms::error::SdkError::ServiceError(s) => s.err().code().map(str::to_owned),
        _ => None,
    }
}

impl KmsKeys {
    pub fn new(client: aws_sdk_kms::Client, prefix: AliasPrefix, options: KeyOptions) -> Self {
        Self {
            client,
            prefix,
            options,
        }
    }

    pub async fn stored(&self) -> Result<Vec<StoredKey>, KeysError> {
        let keys = lambda_encrypt::period_kms::load(&self.client, &self.prefix).await?;
        Ok(keys
            .keys
            .into_iter()
            .map(|k| StoredKey {
                period: k.period,
                key_id: k.key_id,
                state: k.state,
                current: k.current,
            })
            .collect())
    }

    /// The key policy new keys get: that of `--policy-from`, else that of
    /// the newest period key.
    pub async fn policy(&self, stored: &[StoredKey]) -> Result<String, KeysError> {
        let source = match &self.options.policy_from {
            Some(key) => key.clone(),
            None => stored
                .iter()
                .rev()
                .find(|k| k.state.usable())
                .or(stored.last())
                .map(|k| k.key_id.clone())
                .ok_or(KeysError::NoPolicySource)?,
        };
        let out = self
            .client
            .get_key_policy()
            .key_id(source)
            .policy_name("default")
            .send()
            .await
            .map_err(kms_err("GetKeyPolicy"))?;
        out.policy()
            .map(str::to_owned)
            .ok_or(KeysError::NoPolicySource)
    }

    async fn create(&self, period: Period, policy: &str) -> Result<String, KeysError> {
        let tag = |k: &str, v: String| Tag::builder().tag_key(k).tag_value(v).build();
        let tags = [
            tag(DEPLOYMENT_TAG, self.options.deployment.clone()),
            tag(PERIOD_TAG, period.to_string()),
        ]
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| KeysError::Kms {
            operation: "CreateKey",
            code: "bad tag".into(),
        })?;
        let created = self
            .client
            .create_key()
            .description(format!(
                "callvault caller input of {period} ({}); deleting it makes that month's values unrecoverable",
                self.options.deployment
            ))
            .key_usage(KeyUsageType::EncryptDecrypt)
            .key_spec(KeySpec::SymmetricDefault)
            .policy(policy)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(kms_err("CreateKey"))?;
        let key_id = created
            .key_metadata()
            .map(|m| m.key_id().to_owned())
            .ok_or(KeysError::Kms {
                operation: "CreateKey",
                code: "no key metadata".into(),
            })?;
        self.client
            .enable_key_rotation()
            .key_id(&key_id)
            .send()
            .await
            .map_err(kms_err("EnableKeyRotation"))?;
        let alias = self
            .client
            .create_alias()
            .alias_name(self.prefix.period_alias(period))
            .target_key_id(&key_id)
            .send()
            .await;
        match alias {
            Ok(_) => Ok(key_id),
            // Another roll made this period's key first: ours is not used.
            Err(e) if code_of(&e).as_deref() == Some("AlreadyExistsException") => {
                let _ = self.schedule_deletion(&key_id, 7).await;
                let keys = self.stored().await?;
                keys.into_iter()
                    .find(|k| k.period == period)
                    .map(|k| k.key_id)
                    .ok_or(KeysError::NoSuchPeriod(period))
            }
            Err(e) => Err(kms_err("CreateAlias")(e)),
        }
    }

    pub async fn roll(
        &self,
        stored: &[StoredKey],
        create: &[Period],
        policy: Option<&str>,
        this: Period,
        move_current: bool,
    ) -> Result<(), KeysError> {
        let mut made = Vec::new();
        if !create.is_empty() {
            let policy = policy.ok_or(KeysError::NoPolicySource)?;
            for period in create {
                made.push((*period, self.create(*period, policy).await?));
            }
        }
        if !move_current {
            return Ok(());
        }
        let key_id = made
            .iter()
            .find(|(p, _)| *p == this)
            .map(|(_, id)| id.clone())
            .or_else(|| {
                stored
                    .iter()
                    .find(|k| k.period == this)
                    .map(|k| k.key_id.clone())
            })
            .ok_or(KeysError::NoSuchPeriod(this))?;
        let current = self.prefix.current_alias();
        let updated = self
            .client
            .update_alias()
            .alias_name(&current)
            .target_key_id(&key_id)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(e) if code_of(&e).as_deref() == Some("NotFoundException") => {
                self.client
                    .create_alias()
                    .alias_name(&current)
                    .target_key_id(&key_id)
                    .send()
                    .await
                    .map_err(kms_err("CreateAlias"))?;
                Ok(())
            }
            Err(e) => Err(kms_err("UpdateAlias")(e)),
        }
    }

    /// Schedules a key's deletion; when KMS will delete it.
    pub async fn schedule_deletion(
        &self,
        key_id: &str,
        pending_days: u32,
    ) -> Result<Option<i64>, KeysError> {
        let out = self
            .client
            .schedule_key_deletion()
            .key_id(key_id)
            .pending_window_in_days(i32::try_from(pending_days).unwrap_or(30))
            .send()
            .await
            .map_err(kms_err("ScheduleKeyDeletion"))?;
        Ok(out
            .deletion_date()
            .map(|d| d.secs().saturating_mul(1_000_000)))
    }

    /// Cancels a pending deletion and enables the key again (KMS leaves a
    /// cancelled key disabled).
    pub async fn cancel_deletion(&self, key_id: &str) -> Result<(), KeysError> {
        self.client
            .cancel_key_deletion()
            .key_id(key_id)
            .send()
            .await
            .map_err(kms_err("CancelKeyDeletion"))?;
        self.client
            .enable_key()
            .key_id(key_id)
            .send()
            .await
            .map_err(kms_err("EnableKey"))?;
        Ok(())
    }
}
