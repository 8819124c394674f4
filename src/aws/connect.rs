//! `ContactDirectory` over Amazon Connect (aws-sdk-connect): SearchContacts,
//! DescribeContact, GetContactAttributes.

use std::collections::BTreeMap;

use aws_sdk_connect::types::{
    Channel as SdkChannel, SearchContactsTimeRange, SearchContactsTimeRangeType, SearchCriteria,
    Sort, SortOrder, SortableFieldName,
};
use aws_smithy_types::DateTime;
use lambda_encrypt::context::ContactId;

use super::source_error;
use crate::sources::contacts::{ContactDirectory, ContactSearch, ContactSummary};
use crate::sources::{check_token, Page, SourceError};

const PAGE_SIZE: i32 = 25;

pub struct AwsConnect {
    client: aws_sdk_connect::Client,
    instance_id: String,
}

impl AwsConnect {
    pub fn new(sdk: &aws_config::SdkConfig, instance_id: &str) -> Self {
        Self {
            client: aws_sdk_connect::Client::new(sdk),
            instance_id: instance_id.to_owned(),
        }
    }
}

fn micros(t: Option<&DateTime>) -> Option<i64> {
    t.and_then(|t| t.to_millis().ok()).map(|ms| ms * 1000)
}

fn id(s: Option<&str>) -> Option<ContactId> {
    s.and_then(|s| ContactId::parse(s).ok())
}

/// The fields callvault reads, as both `ContactSearchSummary` and `Contact`
/// expose them. `None` when the id is not a usable contact id.
fn summary(
    contact_id: Option<&str>,
    initial_contact_id: Option<&str>,
    channel: Option<&SdkChannel>,
    method: Option<&aws_sdk_connect::types::ContactInitiationMethod>,
    initiated: Option<&DateTime>,
    disconnected: Option<&DateTime>,
) -> Option<ContactSummary> {
    Some(ContactSummary {
        id: id(contact_id)?,
        initial_contact_id: id(initial_contact_id),
        channel: channel.map(|c| c.as_str().to_owned()).unwrap_or_default(),
        initiation_method: method.map(|m| m.as_str().to_owned()).unwrap_or_default(),
        initiated_us: micros(initiated),
        disconnected_us: micros(disconnected),
    })
}

fn bad(what: &'static str) -> SourceError {
    SourceError::Unavailable(format!("malformed {what} from Connect"))
}

#[async_trait::async_trait]
impl ContactDirectory for AwsConnect {
    async fn search(&self, q: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        // An exact id needs no search: describe it (and check it is in range).
        if let Some(contact) = &q.contact_id {
            return match self.describe(contact).await {
                Ok(c) if c.initiated_us.is_none_or(|t| t >= q.from_us && t < q.to_us) => Ok(Page {
                    items: vec![c],
                    next_token: None,
                }),
                Ok(_) | Err(SourceError::NotFound) => Ok(Page {
                    items: Vec::new(),
                    next_token: None,
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
            .field_name(SortableFieldName::InitiationTimestamp)
            .order(SortOrder::Descending)
            .build()
            .map_err(|_| bad("sort"))?;
        let mut req = self
            .client
            .search_contacts()
            .instance_id(&self.instance_id)
            .time_range(range)
            .sort(sort)
            .max_results(PAGE_SIZE)
            .set_next_token(q.next_token.clone());
        if let Some(ch) = q.channel {
            req = req.search_criteria(
                SearchCriteria::builder()
                    .channels(SdkChannel::from(ch.as_str()))
                    .build(),
            );
        }
        let out = req.send().await.map_err(|e| source_error(&e))?;
        let items = out
            .contacts()
            .iter()
            .filter_map(|c| {
                summary(
                    c.id(),
                    c.initial_contact_id(),
                    c.channel(),
                    c.initiation_method(),
                    c.initiation_timestamp(),
                    c.disconnect_timestamp(),
                )
            })
            .collect();
        Ok(Page {
            items,
            next_token: out.next_token().map(str::to_owned),
        })
    }

    async fn describe(&self, contact: &ContactId) -> Result<ContactSummary, SourceError> {
        let out = self
            .client
            .describe_contact()
            .instance_id(&self.instance_id)
            .contact_id(contact.as_str())
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        let c = out.contact().ok_or(SourceError::NotFound)?;
        summary(
            c.id(),
            c.initial_contact_id(),
            c.channel(),
            c.initiation_method(),
            c.initiation_timestamp(),
            c.disconnect_timestamp(),
        )
        .ok_or_else(|| bad("contact id"))
    }

    async fn attributes(
        &self,
        initial: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        let out = self
            .client
            .get_contact_attributes()
            .instance_id(&self.instance_id)
            .initial_contact_id(initial.as_str())
            .send()
            .await
            .map_err(|e| source_error(&e))?;
        Ok(out
            .attributes()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default())
    }
}
