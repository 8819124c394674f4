//! The console's settings for AWS calls (flags with environment fallbacks,
//! `CALLVAULT_*`): quotas, retries, the contact cache, the flow-log budget,
//! searchable attributes and the Connect console link.

use std::time::Duration;

use clap::Args;

use super::cache::CacheSettings;
use super::quota::ServiceQuota;

/// FilterLogEvents pages one flow-log lookup reads by default.
pub const DEFAULT_FLOW_LOG_PAGES: usize = 10;

/// A setting out of its range (the message names the variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AwsSettingsError(pub &'static str);

/// How hard the console calls Amazon Connect and CloudWatch Logs, and what
/// it keeps between calls.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Amazon Connect requests per second the console sends, per API (the account's default quota is 2, shared with every integration).
    #[arg(long, env = "CALLVAULT_CONNECT_RPS", default_value_t = ServiceQuota::CONNECT.per_second.get())]
    pub connect_rps: u32,
    /// Amazon Connect requests one API may send at once after a quiet spell (the default quota's burst is 5).
    #[arg(long, env = "CALLVAULT_CONNECT_BURST", default_value_t = ServiceQuota::CONNECT.burst.get())]
    pub connect_burst: u32,
    /// CloudWatch Logs requests per second the console sends, per API (burst the same).
    #[arg(long, env = "CALLVAULT_LOGS_RPS", default_value_t = ServiceQuota::LOGS.per_second.get())]
    pub logs_rps: u32,
    /// Calls in flight at once to each AWS service; more wait their turn.
    #[arg(long, env = "CALLVAULT_AWS_CONCURRENCY", default_value_t = ServiceQuota::CONNECT.concurrency)]
    pub aws_concurrency: usize,
    /// Attempts per AWS call, the first included (the SDK's standard retry with backoff); then the "busy" page.
    #[arg(long, env = "CALLVAULT_AWS_MAX_ATTEMPTS", default_value_t = ServiceQuota::CONNECT.max_attempts)]
    pub aws_max_attempts: u32,
    /// Seconds contact descriptions and attributes (ciphertext, never plaintext) are kept; 0: no cache.
    #[arg(long, env = "CALLVAULT_CONTACT_CACHE_SECS", default_value_t = CacheSettings::DEFAULT.ttl.as_secs())]
    pub contact_cache_secs: u64,
    /// FilterLogEvents pages one flow-log lookup of a contact reads before it says "more may exist".
    #[arg(long, env = "CALLVAULT_FLOW_LOG_PAGES", default_value_t = DEFAULT_FLOW_LOG_PAGES)]
    pub flow_log_pages: usize,
    /// Contact attribute keys configured as searchable in Amazon Connect (comma list): the contact search offers them.
    #[arg(long, env = "CALLVAULT_SEARCHABLE_ATTRIBUTES")]
    pub searchable_attributes: Option<String>,
    /// The Amazon Connect instance's access URL (https://ALIAS.my.connect.aws): contact pages link to the contact's details there.
    #[arg(long, env = "CALLVAULT_CONNECT_ACCESS_URL")]
    pub connect_access_url: Option<String>,
}

/// `AwsArgs`, checked.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    pub connect: super::quota::ServiceQuota,
    pub logs: super::quota::ServiceQuota,
    pub cache: super::cache::CacheSettings,
    pub flow_log_pages: usize,
    pub searchable_attributes: Vec<String>,
    /// `https://ALIAS.my.connect.aws`, without a trailing slash.
    pub connect_access_url: Option<String>,
}

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            connect: ServiceQuota::CONNECT,
            logs: ServiceQuota::LOGS,
            cache: CacheSettings::DEFAULT,
            flow_log_pages: DEFAULT_FLOW_LOG_PAGES,
            searchable_attributes: Vec::new(),
            connect_access_url: None,
        }
    }
}

impl AwsArgs {
    pub fn settings(&self) -> Result<AwsSettings, AwsSettingsError> {
        use std::num::NonZeroU32;
        let nz = |n: u32, what: &'static str| {
            NonZeroU32::new(n)
                .filter(|n| n.get() <= 10_000)
                .ok_or(AwsSettingsError(what))
        };
        if !(1..=256).contains(&self.aws_concurrency) {
            return Err(AwsSettingsError("CALLVAULT_AWS_CONCURRENCY is 1 to 256"));
        }
        if !(1..=10).contains(&self.aws_max_attempts) {
            return Err(AwsSettingsError("CALLVAULT_AWS_MAX_ATTEMPTS is 1 to 10"));
        }
        if !(1..=1000).contains(&self.flow_log_pages) {
            return Err(AwsSettingsError("CALLVAULT_FLOW_LOG_PAGES is 1 to 1000"));
        }
        if self.contact_cache_secs > 3600 {
            return Err(AwsSettingsError(
                "CALLVAULT_CONTACT_CACHE_SECS is at most 3600",
            ));
        }
        let base = AwsSettings::default();
        let attributes = parse_searchable_attributes(self.searchable_attributes.as_deref())?;
        Ok(AwsSettings {
            connect: super::quota::ServiceQuota {
                per_second: nz(self.connect_rps, "CALLVAULT_CONNECT_RPS is 1 to 10000")?,
                burst: nz(self.connect_burst, "CALLVAULT_CONNECT_BURST is 1 to 10000")?,
                concurrency: self.aws_concurrency,
                max_attempts: self.aws_max_attempts,
                ..base.connect
            },
            logs: super::quota::ServiceQuota {
                per_second: nz(self.logs_rps, "CALLVAULT_LOGS_RPS is 1 to 10000")?,
                burst: nz(self.logs_rps, "CALLVAULT_LOGS_RPS is 1 to 10000")?,
                concurrency: self.aws_concurrency,
                max_attempts: self.aws_max_attempts,
                ..base.logs
            },
            cache: super::cache::CacheSettings {
                ttl: Duration::from_secs(self.contact_cache_secs),
                reveal_max_age: Duration::from_secs(self.contact_cache_secs.min(30)),
                ..base.cache
            },
            flow_log_pages: self.flow_log_pages,
            searchable_attributes: attributes,
            connect_access_url: parse_access_url(self.connect_access_url.as_deref())?,
        })
    }
}

/// CALLVAULT_CONNECT_ACCESS_URL: an https origin (no path, query or markup).
pub fn parse_access_url(value: Option<&str>) -> Result<Option<String>, AwsSettingsError> {
    let Some(url) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let url = url.trim_end_matches('/');
    let host = url.strip_prefix("https://").unwrap_or("");
    let ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    if ok {
        Ok(Some(url.to_owned()))
    } else {
        Err(AwsSettingsError(
            "CALLVAULT_CONNECT_ACCESS_URL is https://HOST (the instance's access URL)",
        ))
    }
}

/// CALLVAULT_SEARCHABLE_ATTRIBUTES: attribute keys as Connect allows them
/// (1 to 100 characters; letters, digits, `_`, `-`, `.`), at most 15.
pub fn parse_searchable_attributes(value: Option<&str>) -> Result<Vec<String>, AwsSettingsError> {
    let keys: Vec<String> = value
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let bad = keys.iter().any(|k| {
        k.len() > 100
            || !k
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    });
    if bad || keys.len() > 15 {
        return Err(AwsSettingsError(
            "CALLVAULT_SEARCHABLE_ATTRIBUTES: up to 15 attribute keys (letters, digits, _ - .)",
        ));
    }
    Ok(keys)
}
