//! `ContactDirectory` over Amazon Connect (aws-sdk-connect): SearchContacts,
//! DescribeContact, GetContactAttributes; each call waits for its turn in
//! the client-side quota and goes through the SDK's standard retry.

use std::collections::BTreeMap;

use aws_sdk_connect::types::{
    Channel as SdkChannel, ContactInitiationMethod, SearchContactsMatchType,
    SearchContactsTimeRange, SearchContactsTimeRangeType, SearchCriteria,
    SearchableContactAttributes, SearchableContactAttributesCriteria, Sort, SortOrder,
    SortableFieldName,
};
use aws_smithy_types::DateTime;
use lambda_encrypt::context::ContactId;

use super::quota::{Limiter, ServiceQuota};
use super::source_error;
use crate::sources::contacts::{
    ContactDirectory, ContactSearch, ContactSummary, CustomerEndpoint, DirectoryNames,
};
use crate::sources::{check_token, Page, SourceError};

pub const PAGE_SIZE: i32 = 25;

const APIS: [&str; 5] = [
    "SearchContacts",
    "DescribeContact",
    "GetContactAttributes",
    "ListUsers",
    "ListQueues",
];

pub struct AwsConnect {
    pub(super) client: aws_sdk_connect::Client,
    pub(super) instance_id: String,
    pub(super) limiter: Limiter,
}

impl AwsConnect {
    /// With Amazon Connect's default quota.
    pub fn new(sdk: &aws_config::SdkConfig, instance_id: &str) -> Self {
        Self::with_quota(sdk, instance_id, ServiceQuota::CONNECT)
    }

    pub fn with_quota(sdk: &aws_config::SdkConfig, instance_id: &str, quota: ServiceQuota) -> Self {
        let config = aws_sdk_connect::config::Builder::from(sdk)
            .retry_config(quota.retry_config())
            .build();
        Self {
            client: aws_sdk_connect::Client::from_conf(config),
            instance_id: instance_id.to_owned(),
            limiter: Limiter::new(quota, &APIS),
        }
    }
}

fn micros(t: Option<&DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok()).map(|ms| ms * 1000)
}

fn id(s: Option<&str>) -> Option<ContactId> {
    s.and_then(|s| ContactId::parse(s).ok())
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The fields both `ContactSearchSummary` and `Contact` expose. `None` when
/// the id is not a usable contact id.
struct Common<'a> {
    arn: Option<&'a str>,
    contact_id: Option<&'a str>,
    initial_contact_id: Option<&'a str>,
    channel: Option<&'a SdkChannel>,
    method: Option<&'a ContactInitiationMethod>,
    initiated: Option<&'a DateTime>,
    disconnected: Option<&'a DateTime>,
    agent_id: Option<&'a str>,
    queue_id: Option<&'a str>,
}

fn summary(c: Common<'_>) -> Option<ContactSummary> {
    let mut s = ContactSummary::new(id(c.contact_id)?);
    s.initial_contact_id = id(c.initial_contact_id);
    s.channel = c.channel.map(|c| c.as_str().to_owned()).unwrap_or_default();
    s.initiation_method = c.method.map(|m| m.as_str().to_owned()).unwrap_or_default();
    s.initiated_us = micros(c.initiated);
    s.disconnected_us = micros(c.disconnected);
    s.arn = non_empty(c.arn);
    s.agent_id = non_empty(c.agent_id);
    s.queue_id = non_empty(c.queue_id);
    Some(s)
}

fn bad(what: &'static str) -> SourceError {
    SourceError::Unavailable(format!("malformed {what} from Connect"))
}

/// SearchContacts' `SearchCriteria` for a search, or None if it has none.
fn criteria(q: &ContactSearch) -> Result<Option<SearchCriteria>, SourceError> {
    let mut c = SearchCriteria::builder();
    let mut any = false;
    if let Some(ch) = q.channel {
        c = c.channels(SdkChannel::from(ch.as_str()));
        any = true;
    }
    if !q.agent_ids.is_empty() {
        c = c.set_agent_ids(Some(q.agent_ids.clone()));
        any = true;
    }
    if !q.queue_ids.is_empty() {
        c = c.set_queue_ids(Some(q.queue_ids.clone()));
        any = true;
    }
    if !q.initiation_methods.is_empty() {
        c = c.set_initiation_methods(Some(
            q.initiation_methods
                .iter()
                .map(|m| ContactInitiationMethod::from(m.as_str()))
                .collect(),
        ));
        any = true;
    }
    if !q.attributes.is_empty() {
        let mut list = Vec::new();
        for a in &q.attributes {
            list.push(
                SearchableContactAttributesCriteria::builder()
                    .key(&a.key)
                    .set_values(Some(a.values.clone()))
                    .build()
                    .map_err(|_| bad("attribute criterion"))?,
            );
        }
        c = c.searchable_contact_attributes(
            SearchableContactAttributes::builder()
                .set_criteria(Some(list))
                .match_type(SearchContactsMatchType::MatchAll)
                .build()
                .map_err(|_| bad("attribute criteria"))?,
        );
        any = true;
    }
    Ok(any.then(|| c.build()))
}

#[async_trait::async_trait]
impl ContactDirectory for AwsConnect {
    fn page_size(&self) -> usize {
        PAGE_SIZE.unsigned_abs() as usize
    }

    async fn search(&self, q: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        // An exact id needs no search: describe it, whatever the time range.
        if let Some(contact) = &q.contact_id {
            return match self.describe(contact).await {
                Ok(c) => Ok(Page {
                    items: vec![c],
                    next_token: None,
                    total: Some(1),
                }),
                Err(SourceError::NotFound) => Ok(Page {
                    items: Vec::new(),
                    next_token: None,
                    total: Some(0),
                }),
                Err(e) => Err(e),
            };
        }
        if let Some(t) = &q.next_token {
            check_token(t)?;
        }
        let range = SearchContactsTimeRange::builder()
            .r#type(SearchContactsTimeRangeType::InitiationTimestamp)
            .start_time(DateTime::from_millis(q.from_us / 1000))
            .end_time(DateTime::from_millis(q.to_us / 1000))
            .build()
            .map_err(|_| bad("time range"))?;
        let sort = Sort::builder()
            .field_name(SortableFieldName::from(q.sort.field.api_name()))
            .order(if q.sort.ascending {
                SortOrder::Ascending
            } else {
                SortOrder::Descending
            })
            .build()
            .map_err(|_| bad("sort"))?;
        let req = self
            .client
            .search_contacts()
            .instance_id(&self.instance_id)
            .time_range(range)
            .sort(sort)
            .max_results(
                q.page_size
                    .and_then(|n| i32::try_from(n).ok())
                    .unwrap_or(PAGE_SIZE),
            )
            .set_search_criteria(criteria(q)?)
            .set_next_token(q.next_token.clone());
        let _turn = self.limiter.turn("SearchContacts").await?;
        let out = req
            .send()
            .await
            .map_err(|e| source_error(&e, q.next_token.is_some()))?;
        let items = out
            .contacts()
            .iter()
            .filter_map(|c| {
                summary(Common {
                    arn: c.arn(),
                    contact_id: c.id(),
                    initial_contact_id: c.initial_contact_id(),
                    channel: c.channel(),
                    method: c.initiation_method(),
                    initiated: c.initiation_timestamp(),
                    disconnected: c.disconnect_timestamp(),
                    agent_id: c.agent_info().and_then(|a| a.id()),
                    queue_id: c.queue_info().and_then(|q| q.id()),
                })
            })
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
            total: out.total_count().and_then(|n| u64::try_from(n).ok()),
        })
    }

    async fn names(&self) -> Result<std::sync::Arc<DirectoryNames>, SourceError> {
        Ok(std::sync::Arc::new(DirectoryNames {
            agents: self.list_users().await?,
            queues: self.list_queues().await?,
        }))
    }

    async fn describe(&self, contact: &ContactId) -> Result<ContactSummary, SourceError> {
        let _turn = self.limiter.turn("DescribeContact").await?;
        let out = self
            .client
            .describe_contact()
            .instance_id(&self.instance_id)
            .contact_id(contact.as_str())
            .send()
            .await
            .map_err(|e| source_error(&e, false))?;
        let c = out.contact().ok_or(SourceError::NotFound)?;
        let mut s = summary(Common {
            arn: c.arn(),
            contact_id: c.id(),
            initial_contact_id: c.initial_contact_id(),
            channel: c.channel(),
            method: c.initiation_method(),
            initiated: c.initiation_timestamp(),
            disconnected: c.disconnect_timestamp(),
            agent_id: c.agent_info().and_then(|a| a.id()),
            queue_id: c.queue_info().and_then(|q| q.id()),
        })
        .ok_or_else(|| bad("contact id"))?;
        s.customer_endpoint = c
            .customer_endpoint()
            .and_then(|e| e.address())
            .filter(|a| !a.is_empty())
            .map(CustomerEndpoint::new);
        s.disconnect_reason = non_empty(c.disconnect_reason());
        Ok(s)
    }

    async fn attributes(
        &self,
        initial: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        let _turn = self.limiter.turn("GetContactAttributes").await?;
        let out = self
            .client
            .get_contact_attributes()
            .instance_id(&self.instance_id)
            .initial_contact_id(initial.as_str())
            .send()
            .await
            .map_err(|e| source_error(&e, false))?;
        Ok(out
            .attributes()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }
}
