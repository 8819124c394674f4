//! `callvault decrypt`: one reveal through the same admission as the web
//! (`decrypt::Reveals`), refused and recorded the same way. Its rows carry
//! the operator's own role and the client address `cli`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_encrypt::context::ContactId;

use super::common::{cli_meta, open, read_code, CliError};
use super::DecryptArgs;
use crate::audit::Refusal as _;
use crate::auth::principal::Principal;
use crate::config::{Settings, StorageArgs};
use crate::decrypt::admission::Asker;
use crate::decrypt::service::OpenError;
use crate::decrypt::{
    Ask, Channel, Decryptor, KeypadPath, Outcome, RevealError, Reveals, SecondFactor,
};
use crate::sources::ContactDirectory;
use lambda_encrypt::keypad::KeypadKeys;

pub async fn run(storage: &StorageArgs, args: DecryptArgs) -> Result<ExitCode, CliError> {
    let mut settings = Settings::defaults(
        storage.database_url.as_str().to_owned(),
        storage.secrets_dir.clone(),
    );
    args.sources.apply(&mut settings)?;
    args.protection
        .apply(&mut settings, storage.audit_log_group())?;
    let contact = ContactId::parse(&args.contact_id)
        .map_err(|e| CliError::Usage(format!("--contact-id: {e}")))?;
    if args.ciphertext.is_none() && settings.connect_instance_id.is_none() {
        return Err(CliError::Usage(
            "give --ciphertext, or set CALLVAULT_CONNECT_INSTANCE_ID".into(),
        ));
    }
    let cmd = open(storage).await?;
    // The AWS services this reveal may need: KMS for the keyring, Connect
    // for the stored value.
    let kms = settings.keyring.as_ref().is_some_and(|k| k.uses_kms());
    // With a Connect instance, a given ciphertext's contact is described
    // too (its start is the value's age for retention).
    let needs_connect = settings.connect_instance_id.is_some();
    let sdk = if kms || needs_connect {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    let directory: Option<Arc<dyn ContactDirectory>> =
        match (&settings.connect_instance_id, &sdk) {
            (Some(instance), Some(sdk)) => Some(Arc::new(
                crate::aws::connect::AwsConnect::with_quota(sdk, instance, settings.aws.connect),
            )),
            _ => None,
        };
    let decryptor = match &settings.keyring {
        Some(spec) => {
            let d = Decryptor::new(
                lambda_encrypt::crypto::FieldCrypto::from_spec(spec, settings.suite, sdk.as_ref())
                    .await?,
            );
            d.refresh().await?;
            Some(d)
        }
        None => None,
    };
    let keypad = match &settings.connect_input {
        Some((fields, keys)) => {
            let (fields, keys) = KeypadKeys::from_config(fields, keys)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?;
            Some(Arc::new(KeypadPath { fields, keys }))
        }
        None => None,
    };
    let reveals = Reveals {
        budget: crate::decrypt::policy::Budget::new(
            cmd.audit.clone(),
            cmd.clock.clone(),
            settings.policy.budget,
        ),
        approvals: crate::decrypt::approvals::Approvals::new(cmd.db.clone(), cmd.clock.clone()),
        audit: cmd.audit.clone(),
        totp: cmd.totp.clone(),
        clock: cmd.clock.clone(),
        directory,
        decryptor,
        keypad,
        grants: crate::decrypt::grants::Grants::new(cmd.db.clone(), cmd.clock.clone()),
        legacy: settings.legacy_context.clone(),
        policy: settings.policy.clone(),
        retention: settings.retention,
        // Accounts an identity provider signs in have no authenticator
        // here: the command line cannot send them to the provider.
        external_sign_in: false,
    };
    let user = cmd.users.by_name(&args.operator).await?;
    let generation = format!(
        "cli-{}",
        crate::decrypt::grants::new_id().map_err(crate::db::DbError::Query)?
    );
    let principal = user.as_ref().filter(|u| !u.disabled).map(|u| Principal {
        user_id: u.id,
        username: u.username.clone(),
        role: u.role,
        // The command's own "sign-in": its grant is usable by it alone.
        generation: generation.clone(),
        sso_subject: u.sso_subject.clone(),
        open_requests: None,
    });
    let who = Asker {
        actor: user
            .as_ref()
            .map_or_else(|| args.operator.clone(), |u| u.username.clone()),
        role: user.as_ref().map_or("none", |u| u.role.as_str()).to_owned(),
        principal,
    };
    let mut ask = Ask::new(
        who,
        Channel::Cli,
        contact,
        &args.field,
        &args.reason,
        &args.case_ref,
        cli_meta(),
    );
    ask.given_value = args.ciphertext;
    let proof = SecondFactor::Terminal(Box::new(|| read_code().ok()));
    let meta = ask.meta.clone();
    let granted = match reveals.reveal(ask, proof).await {
        Ok(Outcome::Granted(grant)) => grant,
        // The command line never asks for approval (refused above).
        Ok(Outcome::Requested(_)) => return Ok(ExitCode::from(2)),
        Err(e) => return refused(e),
    };
    match reveals
        .open(&granted.id, granted.user_id, &granted.generation, meta)
        .await
    {
        Ok(revealed) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(revealed.plaintext.expose())?;
            out.write_all(b"\n")?;
            out.flush()?;
            match &revealed.connect_key {
                Some(key) => eprintln!(
                    "recorded as audit row {} (keypad, Connect-encrypted with Connect key {key}, not bound to the contact)",
                    revealed.audit_seq
                ),
                None => eprintln!("recorded as audit row {}", revealed.audit_seq),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(OpenError::Refused(recorded)) => refused(RevealError::Refused(recorded)),
        Err(OpenError::Audit(e)) => Err(e.into()),
        Err(OpenError::Grant(e)) => Err(CliError::Usage(e.to_string())),
    }
}

/// A reveal that did not happen, as the command line says it: the same
/// refusal and outcome as the web, exit status 2.
fn refused(e: RevealError) -> Result<ExitCode, CliError> {
    match e {
        RevealError::Refused(recorded) => {
            let refusal = recorded.refusal();
            eprintln!(
                "callvault: nothing was revealed ({}): {refusal}; the attempt was recorded as audit row {}",
                refusal.outcome(),
                recorded.seq()
            );
            Ok(ExitCode::from(2))
        }
        RevealError::Audit(e) => Err(e.into()),
        RevealError::Totp(e) => Err(CliError::Usage(e.to_string())),
        RevealError::Requests(e) => Err(CliError::Db(crate::db::DbError::Query(e))),
    }
}
