//! KMS: the field key (enabled, rotating, a policy with the context
//! conditions) and the checkpoint signing key.

use aws_sdk_kms::types::{KeyState, KeyUsageType};
use lambda_encrypt::keyring::KmsKeyArn;

use super::calls::{classify, Call, CallError, Service};
use super::key_policy;
use super::{Ctx, Outcome};

/// The checkpoint key's spec (what the template creates and the shipper prefers).
const CHECKPOINT_SPEC: &str = "ECC_NIST_P256";

fn call<'a>(action: &'static str, resource: &'a str) -> Call<'a> {
    Call {
        service: Service::Kms,
        action,
        resource,
    }
}

/// A failed call on a field key; a missing key names the region mismatch if any.
fn key_failed(ctx: &Ctx, action: &'static str, arn: &KmsKeyArn, err: &CallError) -> Outcome {
    match err {
        CallError::NotFound(code) if arn.region() != ctx.region => Outcome::fail(
            format!(
                "key not found in {} ({code}): its ARN is in {}",
                ctx.region,
                arn.region()
            ),
            format!(
                "set AWS_REGION={} or use a key of {}",
                arn.region(),
                ctx.region
            ),
        ),
        CallError::NotFound(code) => Outcome::fail(
            format!("key not found in {} ({code})", ctx.region),
            "correct the ARN in CALLVAULT_KEYRING (the template's KeyringSpec output)",
        ),
        other => call(action, arn.as_str()).failed(other, &ctx.region),
    }
}

pub(super) async fn field_key_enabled(ctx: &Ctx, arn: &KmsKeyArn) -> Outcome {
    let out = match ctx.kms.describe_key().key_id(arn.as_str()).send().await {
        Ok(out) => out,
        Err(e) => return key_failed(ctx, "kms:DescribeKey", arn, &classify(&e)),
    };
    let Some(meta) = out.key_metadata() else {
        return Outcome::fail(
            "KMS returned no key metadata",
            "check that AWS_ENDPOINT_URL_KMS (if set) points at KMS",
        );
    };
    match meta.key_state() {
        Some(KeyState::Enabled) => {}
        state => {
            let state = state.map_or("unknown", |s| s.as_str());
            return Outcome::fail(
                format!("the key is {state}, so nothing can be encrypted or revealed"),
                format!(
                    "aws kms enable-key --key-id {} (or cancel its deletion first)",
                    arn.as_str()
                ),
            );
        }
    }
    if meta.key_usage() != Some(&KeyUsageType::EncryptDecrypt)
        || meta
            .key_spec()
            .is_some_and(|s| s.as_str() != "SYMMETRIC_DEFAULT")
    {
        return Outcome::fail(
            format!(
                "the key is {} {}, not a symmetric ENCRYPT_DECRYPT key",
                meta.key_spec().map_or("?", |s| s.as_str()),
                meta.key_usage().map_or("?", |u| u.as_str())
            ),
            "point CALLVAULT_KEYRING at a SYMMETRIC_DEFAULT key (the template's field key)",
        );
    }
    Outcome::Pass
}

/// `kms-period:`: the key `<prefix>/current` names exists and is enabled.
pub(super) async fn current_key_enabled(ctx: &Ctx, alias: &str) -> Outcome {
    match ctx.kms.describe_key().key_id(alias).send().await {
        Ok(out) => match out.key_metadata().and_then(|m| m.key_state()) {
            Some(KeyState::Enabled) => Outcome::Pass,
            state => Outcome::fail(
                format!(
                    "{alias} names a key that is {}, so nothing can be encrypted",
                    state.map_or("unknown", |s| s.as_str())
                ),
                "callvault keys roll (it points current at this month's key)",
            ),
        },
        Err(e) => match classify(&e) {
            CallError::NotFound(code) => Outcome::fail(
                format!("{alias} does not exist in {} ({code})", ctx.region),
                "callvault keys roll --policy-from <the template's field key>",
            ),
            other => call("kms:DescribeKey", alias).failed(&other, &ctx.region),
        },
    }
}

pub(super) async fn field_key_rotation(ctx: &Ctx, arn: &KmsKeyArn) -> Outcome {
    match ctx
        .kms
        .get_key_rotation_status()
        .key_id(arn.as_str())
        .send()
        .await
    {
        Ok(out) if out.key_rotation_enabled() => Outcome::Pass,
        Ok(_) => Outcome::fail(
            "automatic key rotation is off",
            format!(
                "aws kms enable-key-rotation --key-id {} (the template sets EnableKeyRotation: true)",
                arn.as_str()
            ),
        ),
        Err(e) => key_failed(ctx, "kms:GetKeyRotationStatus", arn, &classify(&e)),
    }
}

pub(super) async fn field_key_policy(ctx: &Ctx, arn: &KmsKeyArn) -> Outcome {
    let out = match ctx
        .kms
        .get_key_policy()
        .key_id(arn.as_str())
        .policy_name("default")
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => return key_failed(ctx, "kms:GetKeyPolicy", arn, &classify(&e)),
    };
    let fix = format!(
        "give every key-policy statement that allows kms:Decrypt or kms:GenerateDataKey the conditions StringEquals kms:EncryptionContext:purpose = {}, ForAllValues:StringEquals kms:EncryptionContextKeys = [{}], Null kms:EncryptionContext:contactId/field = false (as the deploy template does)",
        key_policy::PURPOSE,
        key_policy::CONTEXT_KEYS.join(", ")
    );
    match key_policy::review(out.policy().unwrap_or("")) {
        Ok(problems) if problems.is_empty() => Outcome::Pass,
        Ok(problems) => Outcome::fail(problems.join(" / "), fix),
        Err(e) => Outcome::fail(e.to_string(), fix),
    }
}

pub(super) async fn checkpoint_key(ctx: &Ctx, key: &str) -> Outcome {
    let shown: String = key.chars().take(200).collect();
    let create = "point CALLVAULT_CHECKPOINT_KEY at an ECC_NIST_P256 SIGN_VERIFY key (the template's checkpoint key)";
    let out = match ctx.kms.get_public_key().key_id(key).send().await {
        Ok(out) => out,
        Err(e) => {
            let err = classify(&e);
            return match err.code() {
                Some(code @ ("DisabledException" | "KMSInvalidStateException")) => Outcome::fail(
                    format!("the key is disabled or pending deletion ({code})"),
                    format!("aws kms enable-key --key-id {shown} (or cancel its deletion first)"),
                ),
                // What KMS answers for a symmetric key.
                Some(code @ "UnsupportedOperationException") => Outcome::fail(
                    format!("the key has no public key ({code}): it is not a SIGN_VERIFY key"),
                    create,
                ),
                _ => match &err {
                    CallError::NotFound(code) => Outcome::fail(
                        format!("key {shown} not found in {} ({code})", ctx.region),
                        "correct CALLVAULT_CHECKPOINT_KEY (id, ARN or alias) and AWS_REGION",
                    ),
                    other => call("kms:GetPublicKey", &shown).failed(other, &ctx.region),
                },
            };
        }
    };
    if out.key_usage() != Some(&KeyUsageType::SignVerify) {
        let usage = out.key_usage().map_or("not reported", |u| u.as_str());
        return Outcome::fail(
            format!("the key's usage is {usage}, not SIGN_VERIFY: it cannot sign checkpoints"),
            create,
        );
    }
    #[allow(deprecated)] // older KMS implementations report only CustomerMasterKeySpec
    let spec = out.key_spec().map(|s| s.as_str().to_owned()).or_else(|| {
        out.customer_master_key_spec()
            .map(|s| s.as_str().to_owned())
    });
    if spec.as_deref() != Some(CHECKPOINT_SPEC) {
        return Outcome::fail(
            format!(
                "the key spec is {}, not {CHECKPOINT_SPEC}",
                spec.as_deref().unwrap_or("not reported")
            ),
            create,
        );
    }
    Outcome::Pass
}
