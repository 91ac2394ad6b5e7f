//! Entities on the core: each entity's queue, lock and state; running batches of operations on
//! the plugin (or a remote worker); routing answers to calling orchestrations; lock requests
//! granted first come first served; delayed signals on the clock (docs/semantics.md#entities).
//!
//! CONTRACT PLACEHOLDER: the command entry points exist so front ends compile; the machinery is
//! to be written here.

use super::Core;
use crate::engine::EngineError;
use crate::engine::entities::{
    CleanedEntities, EntityMetadata, EntityOperationRecord, EntityQuery,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

impl Core {
    /// A remote worker's answer to an entity batch (`RemoteHub::complete_entity`).
    pub(crate) fn accept_remote_entity_batch(
        &mut self,
        token: &str,
        instance_id: &str,
        result: durable_sdk::protocol::EntityBatchResult,
    ) -> Result<(), crate::remote::RemoteError> {
        let _ = (token, instance_id, result);
        Err(crate::remote::RemoteError::InvalidCompletion(
            "entities are not implemented yet".into(),
        ))
    }

    /// Carries out an orchestration's entity action (its history event is already recorded):
    /// queue the signal or call at the entity, queue the lock request, release a lock.
    pub(super) fn carry_out_entity_action(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        action_id: i32,
        action: durable_sdk::protocol::ActionKind,
    ) -> Result<(), EngineError> {
        let _ = (instance_id, execution_id, action_id, action);
        Ok(())
    }

    pub(crate) fn signal_entity_from_client(
        &mut self,
        instance_id: &str,
        operation: &str,
        input: Value,
        scheduled_time: Option<DateTime<Utc>>,
    ) -> Result<String, EngineError> {
        let _ = (instance_id, operation, input, scheduled_time);
        Err(EngineError::InvalidArgument(
            "entities are not implemented yet".into(),
        ))
    }

    pub(crate) fn entity_metadata(
        &mut self,
        instance_id: &str,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>, EngineError> {
        let _ = (instance_id, include_state);
        Ok(None)
    }

    pub(crate) fn query_entities(
        &mut self,
        query: &EntityQuery,
    ) -> Result<(Vec<EntityMetadata>, Option<String>), EngineError> {
        let _ = query;
        Ok((Vec::new(), None))
    }

    pub(crate) fn entity_operations(
        &mut self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<EntityOperationRecord>, EngineError> {
        let _ = (instance_id, limit);
        Ok(Vec::new())
    }

    pub(crate) fn clean_entity_storage(
        &mut self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<CleanedEntities, EngineError> {
        let _ = (remove_empty_entities, release_orphaned_locks);
        Ok(CleanedEntities::default())
    }
}
