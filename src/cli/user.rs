//! `callvault user`: add, list, disable, enable, change password or role.

use std::process::ExitCode;

use super::common::{audit_cli, cli_event, read_password, CliError, Cmd};
use super::UserCommand;
use crate::audit::Action;
use crate::auth::users::Username;
use crate::auth::Role;

pub async fn run(cmd: &Cmd, command: UserCommand) -> Result<ExitCode, CliError> {
    match command {
        UserCommand::Add { username, role } => {
            let username = Username::parse(&username)?;
            let role = Role::parse(&role).ok_or(crate::auth::users::UserError::UnknownRole)?;
            let password = read_password(true)?;
            let hash = crate::auth::users::new_password_hash(&password).await?;
            // The user and the audit row commit together, or neither does.
            let mut change = cmd.audit.begin_change().await?;
            let user = cmd
                .users
                .add_in(change.conn(), &username, &hash, role)
                .await?;
            change
                .commit(cli_event(
                    Action::UserChange,
                    "ok",
                    format!("added user {} as {}", user.username, user.role),
                ))
                .await?;
            println!("added user {} ({})", user.username, user.role);
        }
        UserCommand::List => {
            for u in cmd.users.list().await? {
                println!(
                    "{:<32} {:<10} {}",
                    u.username,
                    u.role.as_str(),
                    if u.disabled { "disabled" } else { "active" }
                );
            }
        }
        UserCommand::Disable { username } => {
            let user = cmd
                .users
                .by_name(&username)
                .await?
                .ok_or(crate::auth::users::UserError::NotFound)?;
            let mut change = cmd.audit.begin_change().await?;
            cmd.users
                .set_disabled_in(change.conn(), user.id, true)
                .await?;
            change
                .commit(cli_event(
                    Action::UserChange,
                    "ok",
                    format!("disabled user {}", user.username),
                ))
                .await?;
            println!("disabled user {}; their sessions have ended", user.username);
        }
        UserCommand::Passwd {
            username,
            allow_sso_user,
        } => {
            let user = cmd
                .users
                .by_name(&username)
                .await?
                .ok_or(crate::auth::users::UserError::NotFound)?;
            // A local password lets a single sign-on user around the
            // provider (its sign-out, its groups): only when asked for, and
            // the refusal is recorded too.
            if user.sso_subject.is_some() && !allow_sso_user {
                audit_cli(
                    cmd,
                    Action::UserChange,
                    "refused",
                    format!("set password of {}: a single sign-on user", user.username),
                )
                .await?;
                return Err(crate::auth::users::UserError::SsoUser.into());
            }
            let password = read_password(true)?;
            let hash = crate::auth::users::new_password_hash(&password).await?;
            let mut change = cmd.audit.begin_change().await?;
            cmd.users
                .set_password_in(change.conn(), user.id, &hash, allow_sso_user)
                .await?;
            let detail = if user.sso_subject.is_some() {
                format!(
                    "set password of {} (a single sign-on user, allowed by --allow-sso-user)",
                    user.username
                )
            } else {
                format!("set password of {}", user.username)
            };
            change
                .commit(cli_event(Action::UserChange, "ok", detail))
                .await?;
            println!(
                "password of {} changed; their sessions have ended",
                user.username
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
