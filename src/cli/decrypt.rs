//! `callvault decrypt`: audited exactly like the web.

use std::io::Write as _;
use std::process::ExitCode;

use super::common::{cli_meta, open, read_code, CliError};
use super::DecryptArgs;
use crate::audit::{Action, AuditEvent};
use crate::auth::Role;
use crate::config::{Settings, StorageArgs};

pub async fn run(storage: &StorageArgs, args: DecryptArgs) -> Result<ExitCode, CliError> {
    use lambda_encrypt::context::{ContactId, FieldName};

    use crate::decrypt::{Decryptor, Reason, RevealError, RevealRequest, Revealer};

    let mut settings = Settings::local(
        "127.0.0.1:0"
            .parse()
            .map_err(|_| CliError::Usage("listen".into()))?,
        storage.database_url.clone(),
        storage.secrets_dir.clone(),
    );
    args.sources.apply(&mut settings)?;
    args.protection
        .apply(&mut settings, storage.audit_log_group())?;
    let cmd = open(storage).await?;
    let meta = cli_meta();
    let contact = ContactId::parse(&args.contact_id)
        .map_err(|e| CliError::Usage(format!("--contact-id: {e}")))?;
    let field =
        FieldName::parse(&args.field).map_err(|e| CliError::Usage(format!("--field: {e}")))?;
    let deny = |outcome: &str| {
        AuditEvent::new(Action::DecryptDenied, &args.operator, "cli", outcome, &meta)
            .contact(contact.as_str(), field.as_str())
            .reason(&args.reason.chars().take(500).collect::<String>())
    };
    // The operator must be an enabled supervisor (separation of duties, as on the web).
    let operator = cmd.users.by_name(&args.operator).await?;
    let Some(operator) = operator.filter(|u| !u.disabled && u.role == Role::Supervisor) else {
        cmd.audit.append(deny("role")).await?;
        return Err(CliError::Usage(
            "--operator must name an enabled supervisor".into(),
        ));
    };
    let reason = match Reason::parse(&args.reason) {
        Ok(r) => r,
        Err(e) => {
            cmd.audit.append(deny("no_reason")).await?;
            return Err(CliError::Usage(format!("--reason: {e}")));
        }
    };
    // Dual control has no command-line path: the second person is in the console.
    if settings.policy.approval == crate::decrypt::policy::ApprovalMode::Required {
        cmd.audit.append(deny("approval_required")).await?;
        return Err(CliError::Usage(
            "dual control is on (CALLVAULT_DECRYPT_APPROVAL=required): request the reveal in the console".into(),
        ));
    }
    let totp_err = |e: crate::auth::totp::TotpError| CliError::Usage(e.to_string());
    let enrolled = cmd.totp.enrolment(operator.id).await.map_err(totp_err)?
        == crate::auth::totp::Enrolment::Active;
    if !enrolled && cmd.totp.mandatory().await.map_err(totp_err)? {
        cmd.audit.append(deny("totp_not_enrolled")).await?;
        return Err(CliError::Usage(
            "TOTP is mandatory for supervisors: the operator must enrol an authenticator".into(),
        ));
    }
    if enrolled {
        let code = read_code()?;
        let mut conn = cmd
            .db
            .pool
            .acquire()
            .await
            .map_err(crate::db::DbError::Query)?;
        let checked = cmd.totp.verify(&mut conn, operator.id, &code, false).await;
        drop(conn);
        if let Err(e) = checked {
            cmd.audit
                .append(
                    AuditEvent::new(
                        Action::StepUpFailed,
                        &operator.username,
                        "cli",
                        "refused",
                        &meta,
                    )
                    .detail(e.kind()),
                )
                .await?;
            cmd.audit.append(deny("step_up_required")).await?;
            return Err(CliError::Usage(format!("TOTP: {e}")));
        }
    }
    let budget = crate::decrypt::policy::Budget::new(
        cmd.audit.clone(),
        cmd.clock.clone(),
        settings.policy.budget,
    );
    let _permit = match budget.reserve(&operator.username).await {
        Ok(p) => p,
        Err(crate::decrypt::policy::BudgetError::Exceeded { used, limit }) => {
            cmd.audit
                .append(deny("budget_exceeded").detail(format!("{used} of {limit} per hour used")))
                .await?;
            return Err(CliError::Usage(format!(
                "decrypt budget used: {used} of {limit} in the last hour"
            )));
        }
        Err(crate::decrypt::policy::BudgetError::Audit(e)) => return Err(e.into()),
    };
    let Some(spec) = settings.keyring.clone() else {
        cmd.audit.append(deny("not_configured")).await?;
        return Err(CliError::Usage("CALLVAULT_KEYRING is not set".into()));
    };
    let kms = matches!(spec, lambda_encrypt::keyring::KeyringSpec::Kms { .. })
        || settings.connect_instance_id.is_some();
    let sdk = if kms {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    let (stored_value, initial) = match (args.ciphertext, &settings.connect_instance_id, &sdk) {
        (Some(ct), _, _) => (ct, None),
        (None, Some(instance), Some(sdk)) => {
            use crate::sources::ContactDirectory as _;
            let connect =
                crate::aws::connect::AwsConnect::with_quota(sdk, instance, settings.aws.connect);
            let summary = connect.describe(&contact).await?;
            let initial = summary
                .initial_contact_id
                .unwrap_or_else(|| summary.id.clone());
            let value = connect.attributes(&initial).await?.remove(field.as_str());
            let Some(value) = value else {
                cmd.audit.append(deny("no_such_field")).await?;
                return Err(CliError::Usage("the contact has no such attribute".into()));
            };
            (value, (initial != contact).then_some(initial))
        }
        _ => {
            return Err(CliError::Usage(
                "give --ciphertext, or set CALLVAULT_CONNECT_INSTANCE_ID".into(),
            ))
        }
    };
    let crypto =
        lambda_encrypt::crypto::FieldCrypto::from_spec(&spec, settings.suite, sdk.as_ref()).await?;
    let revealer = Revealer::new(
        Decryptor::new(crypto),
        cmd.audit.clone(),
        settings.legacy_context.clone(),
    );
    let request = RevealRequest {
        actor: operator.username.clone(),
        role: operator.role.as_str().to_owned(),
        contact_id: contact,
        initial_contact_id: initial,
        field,
        stored_value,
        reason,
        case_ref: String::new(),
        meta,
        detail: String::new(),
        budget: budget.cap(),
    };
    match revealer.reveal(request).await {
        Ok(revealed) => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            out.write_all(revealed.plaintext.expose())?;
            out.write_all(b"\n")?;
            out.flush()?;
            eprintln!("recorded as audit row {}", revealed.audit_seq);
            Ok(ExitCode::SUCCESS)
        }
        Err(RevealError::Denied { kind }) | Err(RevealError::Failed { kind }) => {
            eprintln!("callvault: nothing was decrypted ({kind}); the attempt was recorded");
            Ok(ExitCode::from(2))
        }
        Err(RevealError::OverBudget { used, limit }) => Err(CliError::Usage(format!(
            "decrypt budget used: {used} of {limit} in the last hour"
        ))),
        Err(RevealError::Audit(e)) => Err(e.into()),
    }
}
