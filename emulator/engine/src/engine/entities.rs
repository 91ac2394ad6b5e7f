//! Durable entities as front ends see them: the entity records, the operation log, queries, and
//! the [`EngineHandle`] commands on entities (docs/semantics.md#entities).
//!
//! Owns the public entity types and the handle's entity methods. The entity machinery itself
//! (queues, locks, batches, routing answers to callers) lives in the core (`core/entities.rs`);
//! this module only carries commands to it and answers back. Knows nothing of any front end.

use super::{EngineError, EngineHandle};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use serde::Serialize;
use serde_json::Value;

/// An entity as stored: its state, when it last changed, its queue and its lock.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityMetadata {
    /// `@{name}@{key}`.
    pub instance_id: String,
    /// The entity name (lower-cased).
    pub name: String,
    /// The key.
    pub key: String,
    /// The state (JSON), when asked for and the entity has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Whether the entity has state (an entity without state and without queued work is
    /// "empty": `clean_entity_storage` removes it).
    pub has_state: bool,
    /// When its state, queue or lock last changed (emulator clock).
    pub last_modified: DateTime<Utc>,
    /// Operations and lock requests waiting in its queue (not yet run).
    pub backlog: usize,
    /// The orchestration instance holding its lock, if locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_by: Option<String>,
    /// The critical section holding its lock, if locked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_section: Option<String>,
    /// Orchestration instances waiting for its lock, first come first served.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lock_waiters: Vec<String>,
}

/// Who sent an entity operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum EntityRequester {
    /// A client (the UI, the CLI, a gRPC or HTTP client).
    Client,
    /// An orchestration (a call when `awaits_answer`, else a signal).
    #[serde(rename_all = "camelCase")]
    Orchestration {
        /// The instance.
        instance_id: String,
        /// Its execution.
        execution_id: String,
    },
    /// Another entity's (or this entity's own) signal.
    #[serde(rename_all = "camelCase")]
    Entity {
        /// The sending entity.
        instance_id: String,
    },
}

/// What became of one operation an entity ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum EntityOperationOutcome {
    /// It returned.
    Completed {
        /// Its result.
        result: Value,
    },
    /// It failed; the state was rolled back to before it.
    Failed {
        /// Why.
        failure: FailureDetails,
    },
}

/// One entry of an entity's operation log: an operation it ran, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntityOperationRecord {
    /// Position in the entity's log (1 for the first operation it ran).
    pub seq: i64,
    /// The request id.
    pub request_id: String,
    /// The operation name.
    pub operation: String,
    /// Its input.
    pub input: Value,
    /// Who sent it.
    pub requester: EntityRequester,
    /// Whether the requester awaited the answer (a call) or not (a signal).
    pub awaits_answer: bool,
    /// What became of it.
    pub outcome: EntityOperationOutcome,
    /// The entity's state after it (after the rollback, when it failed); `None`: no state.
    pub state_after: Option<Value>,
    /// When it ran (emulator clock).
    pub at: DateTime<Utc>,
    /// The fault rule that hit it, if one did (e.g. `rule 2: fail Declined`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// Which entities to list (the proto's `EntityQuery`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityQuery {
    /// Only ids starting with this (e.g. `@counter@` for every counter; `@count` matches
    /// names starting with `count`).
    pub instance_id_starts_with: Option<String>,
    /// Only entities last modified at or after this time.
    pub last_modified_from: Option<DateTime<Utc>>,
    /// Only entities last modified before this time.
    pub last_modified_to: Option<DateTime<Utc>>,
    /// Carry each entity's state.
    pub include_state: bool,
    /// Also list entities without state (that only have queued work or a lock).
    pub include_transient: bool,
    /// Most entities per page (default 100).
    pub page_size: Option<usize>,
    /// The token a previous page returned.
    pub continuation_token: Option<String>,
}

/// What `clean_entity_storage` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CleanedEntities {
    /// Entities without state, queue or lock that were removed.
    pub empty_entities_removed: usize,
    /// Locks held by orchestrations that no longer run, released.
    pub orphaned_locks_released: usize,
}

impl EngineHandle {
    /// Sends a one-way operation to an entity, delivered at `scheduled_time` on the emulator's
    /// clock when set (a delayed signal); returns the request id. Refused: an id that is not
    /// `@name@key` ([`EngineError::InvalidArgument`]). An entity nobody has touched yet is
    /// created by its first operation.
    pub fn signal_entity(
        &self,
        instance_id: &str,
        operation: &str,
        input: Value,
        scheduled_time: Option<DateTime<Utc>>,
    ) -> Result<String, EngineError> {
        let (instance_id, operation) = (instance_id.to_string(), operation.to_string());
        self.call(move |core| {
            core.signal_entity_from_client(&instance_id, &operation, input, scheduled_time)
        })
    }

    /// One entity, with its state when `include_state`; `None` if it does not exist.
    pub fn entity(
        &self,
        instance_id: &str,
        include_state: bool,
    ) -> Result<Option<EntityMetadata>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.entity_metadata(&instance_id, include_state))
    }

    /// One page of the entities `query` matches, ordered by id, and the next page's token.
    pub fn entities(
        &self,
        query: EntityQuery,
    ) -> Result<(Vec<EntityMetadata>, Option<String>), EngineError> {
        self.call(move |core| core.query_entities(&query))
    }

    /// The entity's operation log, oldest first (at most the last `limit` entries).
    pub fn entity_operations(
        &self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<EntityOperationRecord>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.entity_operations(&instance_id, limit))
    }

    /// Removes entities that have no state, no queued work and no lock, and/or releases locks
    /// held by orchestrations that are no longer running.
    pub fn clean_entity_storage(
        &self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<CleanedEntities, EngineError> {
        self.call(move |core| core.clean_entity_storage(remove_empty_entities, release_orphaned_locks))
    }
}
