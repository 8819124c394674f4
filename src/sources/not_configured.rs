//! Stand-ins for a service the console is not configured for: every call
//! says so (a clear page, not a crash).

use lambda_encrypt::context::ContactId;

use super::contacts::{ContactDirectory, ContactSearch, ContactSummary};
use super::logs::{
    ContactLogQuery, ContactLogs, EventsPage, LogGroupName, LogStore, LogStreamName, StreamInfo,
};
use super::{Page, SourceError};

pub struct NotConfigured;

#[async_trait::async_trait]
impl ContactDirectory for NotConfigured {
    async fn search(&self, _: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
    async fn describe(&self, _: &ContactId) -> Result<ContactSummary, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
    async fn attributes(
        &self,
        _: &ContactId,
    ) -> Result<std::collections::BTreeMap<String, String>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_CONNECT_INSTANCE_ID"))
    }
}

#[async_trait::async_trait]
impl LogStore for NotConfigured {
    fn groups(&self) -> Vec<LogGroupName> {
        Vec::new()
    }
    async fn streams(
        &self,
        _: &LogGroupName,
        _: Option<&str>,
    ) -> Result<Page<StreamInfo>, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_LOG_GROUPS"))
    }
    async fn events(
        &self,
        _: &LogGroupName,
        _: &LogStreamName,
        _: Option<&str>,
    ) -> Result<EventsPage, SourceError> {
        Err(SourceError::NotConfigured("CALLVAULT_LOG_GROUPS"))
    }
    async fn events_for_contact(&self, _: &ContactLogQuery) -> Result<ContactLogs, SourceError> {
        Ok(ContactLogs::default())
    }
}
