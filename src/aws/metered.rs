//! Source adapters wrapped so every AWS call is counted and timed
//! (`crate::metrics`: service, operation, error kind; never an argument).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_encrypt::context::ContactId;

use crate::sources::contacts::{ContactDirectory, ContactSearch, ContactSummary, DirectoryNames};
use crate::sources::logs::{
    ContactLogQuery, ContactLogs, EventsPage, LogGroupName, LogStore, LogStreamName, StreamInfo,
};
use crate::sources::{Page, SourceError};

async fn timed<T>(
    service: &'static str,
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    let started = Instant::now();
    let result = call.await;
    crate::metrics::aws_call(
        service,
        operation,
        result.as_ref().err().map(SourceError::kind),
        started.elapsed(),
    );
    result
}

pub struct MeteredDirectory(pub Arc<dyn ContactDirectory>);

#[async_trait::async_trait]
impl ContactDirectory for MeteredDirectory {
    fn page_size(&self) -> usize {
        self.0.page_size()
    }

    async fn search(&self, query: &ContactSearch) -> Result<Page<ContactSummary>, SourceError> {
        timed("connect", "SearchContacts", self.0.search(query)).await
    }

    async fn describe(&self, id: &ContactId) -> Result<ContactSummary, SourceError> {
        timed("connect", "DescribeContact", self.0.describe(id)).await
    }

    async fn attributes(
        &self,
        initial_contact_id: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        timed(
            "connect",
            "GetContactAttributes",
            self.0.attributes(initial_contact_id),
        )
        .await
    }

    async fn fresh_attributes(
        &self,
        initial_contact_id: &ContactId,
    ) -> Result<BTreeMap<String, String>, SourceError> {
        timed(
            "connect",
            "GetContactAttributes",
            self.0.fresh_attributes(initial_contact_id),
        )
        .await
    }

    async fn names(&self) -> Result<Arc<DirectoryNames>, SourceError> {
        timed("connect", "ListUsersAndQueues", self.0.names()).await
    }
}

pub struct MeteredLogs(pub Arc<dyn LogStore>);

#[async_trait::async_trait]
impl LogStore for MeteredLogs {
    fn groups(&self) -> Vec<LogGroupName> {
        self.0.groups()
    }

    async fn streams(
        &self,
        group: &LogGroupName,
        token: Option<&str>,
    ) -> Result<Page<StreamInfo>, SourceError> {
        timed("logs", "DescribeLogStreams", self.0.streams(group, token)).await
    }

    async fn events(
        &self,
        group: &LogGroupName,
        stream: &LogStreamName,
        token: Option<&str>,
    ) -> Result<EventsPage, SourceError> {
        timed("logs", "GetLogEvents", self.0.events(group, stream, token)).await
    }

    async fn events_for_contact(
        &self,
        query: &ContactLogQuery,
    ) -> Result<ContactLogs, SourceError> {
        timed("logs", "FilterLogEvents", self.0.events_for_contact(query)).await
    }
}
