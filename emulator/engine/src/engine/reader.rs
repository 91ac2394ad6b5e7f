//! Read-only queries on a database without running an engine: what `list`, `status`, `export`
//! and `entity list|get` use. A [`Reader`] opens the store read-only (`Store::open_read_only`),
//! so it creates no file or directory, migrates, marks and locks nothing, and cannot change a
//! byte of the file.
//!
//! Owns nothing but the shape of those queries (shared with the core's); knows nothing of the
//! core thread, plugins or front ends.

use super::entities::{self, EntityMetadata, EntityOperationRecord, EntityQuery};
use super::{EngineError, ExecutionHistory};
use crate::store::{DbLocation, InstanceListing, InstanceRecord, Store};

/// Answers queries from a database it only reads.
#[derive(Debug)]
pub struct Reader {
    store: Store,
}

impl Reader {
    /// Opens an existing database for reading. A missing or empty file, a directory or device,
    /// another program's database or a newer one is refused with a message, untouched.
    pub fn open(location: &DbLocation) -> Result<Self, EngineError> {
        Ok(Self {
            store: Store::open_read_only(location)?,
        })
    }

    /// Every instance that decodes, newest first, and every one that does not, named.
    pub fn instances(&self) -> Result<InstanceListing, EngineError> {
        Ok(self.store.instance_listing()?)
    }

    /// One instance.
    pub fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, EngineError> {
        Ok(self.store.instance(instance_id)?)
    }

    /// Every execution's history of an instance, oldest execution first.
    pub fn history(&self, instance_id: &str) -> Result<Vec<ExecutionHistory>, EngineError> {
        execution_histories(&self.store, instance_id)
    }

    /// One entity, with its state when `include_state`; `None` if it does not exist (as
    /// [`EngineHandle::entity`](super::EngineHandle::entity)).
    pub fn entity(
        &self,
        instance_id: &str,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>, EngineError> {
        entities::entity_in(&self.store, instance_id, include_state)
    }

    /// One page of the entities `query` matches, ordered by id, and the next page's token (as
    /// [`EngineHandle::entities`](super::EngineHandle::entities)).
    pub fn entities(
        &self,
        query: &EntityQuery,
    ) -> Result<(Vec<EntityMetadata>, Option<String>), EngineError> {
        entities::query_in(&self.store, query)
    }

    /// The entity's operation log, oldest first (at most the last `limit` entries).
    pub fn entity_operations(
        &self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<EntityOperationRecord>, EngineError> {
        entities::operations_in(&self.store, instance_id, limit)
    }
}

/// Every execution's history of an instance, oldest execution first.
pub(super) fn execution_histories(
    store: &Store,
    instance_id: &str,
) -> Result<Vec<ExecutionHistory>, EngineError> {
    if store.instance(instance_id)?.is_none() {
        return Err(EngineError::InstanceNotFound(instance_id.to_string()));
    }
    store
        .executions(instance_id)?
        .into_iter()
        .map(|execution| {
            let events = store.history(instance_id, &execution.execution_id)?;
            let builds = store.history_builds(instance_id, &execution.execution_id)?;
            Ok(ExecutionHistory {
                execution,
                events,
                builds,
            })
        })
        .collect()
}
