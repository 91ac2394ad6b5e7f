//! Durable entities as front ends see them: the entity records, the operation log, queries, and
//! the [`EngineHandle`] commands on entities (docs/semantics.md#entities).
//!
//! Owns the public entity types, the handle's entity methods, the shape of a queued message
//! (`EntityMessage`, as `entity_queue` stores it) and the store queries both the core and the
//! read-only [`Reader`](super::Reader) answer with (`entity_in`, `query_in`, `operations_in`), so
//! an engine and a reader describe an entity alike. The entity machinery itself (queues, locks,
//! batches, routing answers to callers) lives in the core (`core/entities.rs`); this module only
//! carries commands to it and answers back. Knows nothing of any front end.

use super::{EngineError, EngineHandle};
use crate::store::{EntityRow, Store};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use serde::{Deserialize, Serialize};
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The entity's state after it (after the rollback, when it failed); `None`: no state (or
    /// not known, see `state_known`).
    pub state_after: Option<Value>,
    /// Whether `state_after` is known. A remote worker reports only the state after its whole
    /// batch, so an operation before the last of a remote batch has none of its own.
    pub state_known: bool,
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
    /// Most entities per page (default [`DEFAULT_ENTITY_PAGE`]).
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
        self.call(move |core| {
            core.clean_entity_storage(remove_empty_entities, release_orphaned_locks)
        })
    }
}

/// A message in an entity's queue, as the store keeps it (`entity_queue`, JSON): an operation
/// (a signal, or a call whose answer goes to `caller`), a lock request on its way along its
/// lock set, or the release at the end of a critical section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub(crate) enum EntityMessage {
    /// Run an operation.
    #[serde(rename_all = "camelCase")]
    Operation {
        request_id: String,
        operation: String,
        #[serde(default)]
        input: Value,
        requester: EntityRequester,
        /// Where the answer goes (a call); `None` for a signal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<durable_sdk::protocol::EntityCaller>,
    },
    /// Lock this entity for a critical section, then pass the request on to the next entity of
    /// `lock_set` (`position` is this entity's index in it).
    #[serde(rename_all = "camelCase")]
    Lock {
        critical_section_id: String,
        lock_set: Vec<String>,
        position: usize,
        holder: durable_sdk::protocol::EntityCaller,
    },
    /// Release this entity's lock (the critical section ended).
    #[serde(rename_all = "camelCase")]
    Unlock {
        critical_section_id: String,
        holder: String,
    },
}

impl EntityMessage {
    /// The orchestration instance that sent it, if one did.
    pub(crate) fn sender_instance(&self) -> Option<&str> {
        match self {
            EntityMessage::Operation {
                requester: EntityRequester::Orchestration { instance_id, .. },
                ..
            } => Some(instance_id),
            EntityMessage::Operation { .. } => None,
            EntityMessage::Lock { holder, .. } => Some(&holder.instance_id),
            EntityMessage::Unlock { holder, .. } => Some(holder),
        }
    }
}

/// Most entities on one page of [`EngineHandle::entities`] when the query names no page size.
pub const DEFAULT_ENTITY_PAGE: usize = 100;

/// An entity's metadata as the store has it (state, lock, queue): shared by the core and the
/// [`Reader`](super::Reader), so both answer alike.
pub(super) fn metadata_in(
    store: &Store,
    row: EntityRow,
    include_state: bool,
) -> Result<EntityMetadata, EngineError> {
    let queue = store.entity_queue::<EntityMessage>(Some(&row.instance_id))?;
    let backlog = queue
        .iter()
        .filter(|queued| !matches!(queued.message, EntityMessage::Unlock { .. }))
        .count();
    let lock_waiters = queue
        .iter()
        .filter_map(|queued| match &queued.message {
            EntityMessage::Lock { holder, .. } => Some(holder.instance_id.clone()),
            _ => None,
        })
        .collect();
    let has_state = row.state.is_some();
    Ok(EntityMetadata {
        instance_id: row.instance_id,
        name: row.name,
        key: row.key,
        state: if include_state { row.state } else { None },
        has_state,
        last_modified: row.last_modified,
        backlog,
        locked_by: row.locked_by,
        critical_section: row.critical_section,
        lock_waiters,
    })
}

/// The canonical form of an entity id (`@{name lowercased}@{key}`), or why the text is not one
/// (the SDK's reason, as [`EngineError::InvalidArgument`]).
pub(super) fn canonical_id(instance_id: &str) -> Result<String, EngineError> {
    durable_sdk::EntityId::parse(instance_id)
        .map(|id| id.to_string())
        .map_err(|error| EngineError::InvalidArgument(error.to_string()))
}

/// A query's id prefix with its entity-name part lower-cased, as ids are stored (`@Counter@a`
/// finds `@counter@a...`; the key part is kept as given).
fn stored_prefix(prefix: &str) -> String {
    let Some(rest) = prefix.strip_prefix('@') else {
        return prefix.to_string();
    };
    match rest.split_once('@') {
        Some((name, key)) => format!("@{}@{key}", name.to_lowercase()),
        None => format!("@{}", rest.to_lowercase()),
    }
}

/// One entity from the store.
pub(super) fn entity_in(
    store: &Store,
    instance_id: &str,
    include_state: bool,
) -> Result<Option<EntityMetadata>, EngineError> {
    store
        .entity(&canonical_id(instance_id)?)?
        .map(|row| metadata_in(store, row, include_state))
        .transpose()
}

/// The last `limit` entries of an entity's operation log from the store, oldest first.
pub(super) fn operations_in(
    store: &Store,
    instance_id: &str,
    limit: usize,
) -> Result<Vec<EntityOperationRecord>, EngineError> {
    Ok(store.entity_operations(&canonical_id(instance_id)?, limit)?)
}

/// One page of a query from the store, and the next page's token (the last id of a full page).
pub(super) fn query_in(
    store: &Store,
    query: &EntityQuery,
) -> Result<(Vec<EntityMetadata>, Option<String>), EngineError> {
    let page_size = query.page_size.unwrap_or(DEFAULT_ENTITY_PAGE).max(1);
    let prefix = query
        .instance_id_starts_with
        .as_deref()
        .filter(|prefix| !prefix.is_empty())
        .map(stored_prefix);
    let prefix = prefix.as_deref();
    let mut after = query
        .continuation_token
        .clone()
        .filter(|token| !token.is_empty());
    let mut page = Vec::new();
    loop {
        let rows = store.entity_rows(prefix, after.as_deref(), page_size)?;
        let exhausted = rows.len() < page_size;
        for row in rows {
            after = Some(row.instance_id.clone());
            let in_range = query
                .last_modified_from
                .is_none_or(|from| row.last_modified >= from)
                && query
                    .last_modified_to
                    .is_none_or(|to| row.last_modified < to);
            if !in_range || (row.state.is_none() && !query.include_transient) {
                continue;
            }
            page.push(metadata_in(store, row, query.include_state)?);
            if page.len() == page_size {
                return Ok((page, after));
            }
        }
        if exhausted {
            return Ok((page, None));
        }
    }
}
