//! The Connect instance: flow logs on (without them `/aws/connect/<alias>`
//! never exists) and the capture bot associated.

use aws_sdk_connect::types::{InstanceAttributeType, LexVersion};

use super::calls::{classify, Call, CallError, Service};
use super::{Ctx, Outcome};

/// ListBots pages read at most (25 bots each).
const MAX_BOT_PAGES: usize = 40;

fn instance_not_found(instance: &str, region: &str) -> Outcome {
    Outcome::fail(
        format!("instance {instance} was not found in {region}"),
        "set CALLVAULT_CONNECT_INSTANCE_ID to the instance id (the last part of its ARN) and AWS_REGION to the instance's region",
    )
}

pub(super) async fn flow_logs(ctx: &Ctx, instance: &str) -> Outcome {
    let resource = format!("instance {instance}");
    let call = Call {
        service: Service::Connect,
        action: "connect:DescribeInstanceAttribute",
        resource: &resource,
    };
    let out = match ctx
        .connect
        .describe_instance_attribute()
        .instance_id(instance)
        .attribute_type(InstanceAttributeType::ContactflowLogs)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return match classify(&e) {
                CallError::NotFound(_) => instance_not_found(instance, &ctx.region),
                other => call.failed(&other, &ctx.region),
            }
        }
    };
    match out.attribute().and_then(|a| a.value()) {
        Some(v) if v.eq_ignore_ascii_case("true") => Outcome::Pass,
        Some(_) => Outcome::fail(
            format!("flow logs are off on instance {instance} (CONTACTFLOW_LOGS is false), so no flow log group is written"),
            format!("turn on \"Enable flow logs\" in the instance's data storage settings, or: aws connect update-instance-attribute --instance-id {instance} --attribute-type CONTACTFLOW_LOGS --value true"),
        ),
        None => Outcome::fail(
            "Amazon Connect did not report the CONTACTFLOW_LOGS attribute",
            "check that AWS_ENDPOINT_URL_CONNECT (if set) points at Amazon Connect",
        ),
    }
}

/// A Lex V2 bot alias ARN (`arn:<partition>:lex:<region>:<account>:bot-alias/<bot>/<alias>`).
fn is_alias_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", partition, "lex", region, account, resource]
        if partition.starts_with("aws")
            && !region.is_empty()
            && account.len() == 12
            && account.bytes().all(|b| b.is_ascii_digit())
            && resource.strip_prefix("bot-alias/").is_some_and(|r| r.split('/').count() == 2))
}

pub(super) async fn bot_alias(ctx: &Ctx, instance: &str, wanted: Option<&str>) -> Outcome {
    if let Some(w) = wanted {
        if !is_alias_arn(w) {
            return Outcome::fail(
                "CALLVAULT_BOT_ALIAS_ARN is not a Lex V2 bot alias ARN",
                "set it to arn:aws:lex:<region>:<account>:bot-alias/<bot id>/<alias id> (the capture bot's alias), or unset it",
            );
        }
    }
    let resource = format!("instance {instance}");
    let call = Call {
        service: Service::Connect,
        action: "connect:ListBots",
        resource: &resource,
    };
    let mut aliases: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_BOT_PAGES {
        let out = match ctx
            .connect
            .list_bots()
            .instance_id(instance)
            .lex_version(LexVersion::V2)
            .max_results(25)
            .set_next_token(token.clone())
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                return match classify(&e) {
                    CallError::NotFound(_) => instance_not_found(instance, &ctx.region),
                    other => call.failed(&other, &ctx.region),
                }
            }
        };
        aliases.extend(
            out.lex_bots()
                .iter()
                .filter_map(|b| b.lex_v2_bot()?.alias_arn())
                .map(str::to_owned),
        );
        if wanted.is_some_and(|w| aliases.iter().any(|a| a == w)) {
            return Outcome::Pass;
        }
        let next = out.next_token().map(str::to_owned);
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    match wanted {
        None if !aliases.is_empty() => Outcome::Pass,
        None => Outcome::fail(
            format!("no Lex V2 bot is associated with instance {instance}"),
            format!("associate the capture bot's alias: aws connect associate-bot --instance-id {instance} --lex-v2-bot AliasArn=<alias ARN> (set CALLVAULT_BOT_ALIAS_ARN to check for that alias)"),
        ),
        Some(w) => Outcome::fail(
            format!(
                "bot alias {w} is not associated with instance {instance} ({} other V2 bot aliases are)",
                aliases.len()
            ),
            format!("aws connect associate-bot --instance-id {instance} --lex-v2-bot AliasArn={w}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lex_v2_alias_arns_are_accepted() {
        assert!(is_alias_arn(
            "arn:aws:lex:us-east-1:123456789012:bot-alias/BOTID1234/ALIASID12"
        ));
        assert!(!is_alias_arn(
            "arn:aws:lex:us-east-1:123456789012:bot/BOTID1234"
        ));
        assert!(!is_alias_arn("arn:aws:lex:us-east-1:1234:bot-alias/B/A"));
        assert!(!is_alias_arn("CaptureBot"));
    }
}
