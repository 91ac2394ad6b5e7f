//! The client side of durable entities on the sidecar: `SignalEntity`, `GetEntity`,
//! `QueryEntities` and `CleanEntityStorage` (docs/semantics.md#entities).
//!
//! Owns the checks of these requests (entity ids, operation names, page sizes), the mapping of
//! the engine's [`EntityMetadata`] to the wire's and the normalisation of id prefixes. The
//! worker side of entities (work items, `CompleteEntityTask`, abandons) is `worker.rs`; the
//! entity messages themselves are `mapping.rs`. Knows nothing of how the engine stores or runs
//! entities: it calls the entity commands of the engine's async handle.

use crate::mapping;
use crate::proto;
use crate::server::{Sidecar, engine_status, mapping_status};
use durable_emu_engine::engine::{EntityMetadata, EntityQuery};
use durable_sdk::EntityId;
use tonic::Status;

/// Entities per QueryEntities page when the caller asks for none.
const DEFAULT_ENTITY_PAGE_SIZE: usize = 100;

/// An entity id a request must carry, canonical (`@name@key`, name lower-cased).
fn entity_id(field: &str, text: &str) -> Result<String, Status> {
    if text.trim().is_empty() {
        return Err(Status::invalid_argument(format!(
            "{field} is empty; give the entity's id, @name@key (e.g. @counter@a)"
        )));
    }
    EntityId::parse(text)
        .map(|id| id.to_string())
        .map_err(|error| Status::invalid_argument(format!("{field}: {error}")))
}

/// A QueryEntities prefix as the ids are stored: a bare prefix (`count`) is an entity-name
/// prefix, as the .NET client's `InstanceIdStartsWith` treats it, and the name part is
/// lower-cased (names are case-insensitive; keys are not).
pub(crate) fn id_prefix(prefix: &str) -> String {
    let rest = prefix.strip_prefix('@').unwrap_or(prefix);
    match rest.split_once('@') {
        Some((name, key)) => format!("@{}@{key}", name.to_lowercase()),
        None => format!("@{}", rest.to_lowercase()),
    }
}

/// An entity as GetEntity and QueryEntities answer it; its state only `with_state`.
pub(crate) fn entity_to_wire(entity: &EntityMetadata, with_state: bool) -> proto::EntityMetadata {
    proto::EntityMetadata {
        instance_id: entity.instance_id.clone(),
        last_modified_time: Some(mapping::time_to_wire(entity.last_modified)),
        backlog_queue_size: i32::try_from(entity.backlog).unwrap_or(i32::MAX),
        locked_by: entity.locked_by.clone(),
        serialized_state: if with_state {
            entity.state.as_ref().and_then(mapping::payload_to_wire)
        } else {
            None
        },
    }
}

fn time_field(
    field: &'static str,
    time: Option<&prost_types::Timestamp>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Status> {
    time.map(|time| mapping::time_from_wire(field, time))
        .transpose()
        .map_err(mapping_status)
}

impl Sidecar {
    pub(crate) async fn signal_entity_rpc(
        &self,
        request: proto::SignalEntityRequest,
    ) -> Result<proto::SignalEntityResponse, Status> {
        let id = entity_id("SignalEntityRequest.instanceId", &request.instance_id)?;
        if request.name.trim().is_empty() {
            return Err(Status::invalid_argument(
                "SignalEntityRequest.name is empty; give the operation to run (e.g. add)",
            ));
        }
        let input =
            mapping::payload_from_wire("SignalEntityRequest.input", request.input.as_deref())
                .map_err(mapping_status)?;
        let scheduled_time = time_field(
            "SignalEntityRequest.scheduledTime",
            request.scheduled_time.as_ref(),
        )?;
        self.engine
            .signal_entity(&id, &request.name, input, scheduled_time)
            .await
            .map_err(engine_status)?;
        Ok(proto::SignalEntityResponse {})
    }

    pub(crate) async fn get_entity_rpc(
        &self,
        request: proto::GetEntityRequest,
    ) -> Result<proto::GetEntityResponse, Status> {
        let id = entity_id("GetEntityRequest.instanceId", &request.instance_id)?;
        let with_state = request.include_state;
        let entity = self
            .engine
            .entity(&id, with_state)
            .await
            .map_err(engine_status)?;
        Ok(match entity {
            Some(entity) => proto::GetEntityResponse {
                exists: true,
                entity: Some(entity_to_wire(&entity, with_state)),
            },
            None => proto::GetEntityResponse {
                exists: false,
                entity: None,
            },
        })
    }

    pub(crate) async fn query_entities_rpc(
        &self,
        request: proto::QueryEntitiesRequest,
    ) -> Result<proto::QueryEntitiesResponse, Status> {
        let query = request.query.unwrap_or_default();
        let page_size = match query.page_size {
            None | Some(0) => DEFAULT_ENTITY_PAGE_SIZE,
            Some(size) => usize::try_from(size).map_err(|_| {
                Status::invalid_argument(format!(
                    "EntityQuery.pageSize is {size}; give a positive page size (or none for {DEFAULT_ENTITY_PAGE_SIZE})"
                ))
            })?,
        };
        let with_state = query.include_state;
        let engine_query = EntityQuery {
            instance_id_starts_with: query
                .instance_id_starts_with
                .as_deref()
                .filter(|prefix| !prefix.is_empty())
                .map(id_prefix),
            last_modified_from: time_field(
                "EntityQuery.lastModifiedFrom",
                query.last_modified_from.as_ref(),
            )?,
            last_modified_to: time_field(
                "EntityQuery.lastModifiedTo",
                query.last_modified_to.as_ref(),
            )?,
            include_state: with_state,
            include_transient: query.include_transient,
            page_size: Some(page_size),
            continuation_token: query.continuation_token.filter(|token| !token.is_empty()),
        };
        let (entities, next) = self
            .engine
            .entities(engine_query)
            .await
            .map_err(engine_status)?;
        Ok(proto::QueryEntitiesResponse {
            entities: entities
                .iter()
                .map(|entity| entity_to_wire(entity, with_state))
                .collect(),
            continuation_token: next,
        })
    }

    pub(crate) async fn clean_entity_storage_rpc(
        &self,
        request: proto::CleanEntityStorageRequest,
    ) -> Result<proto::CleanEntityStorageResponse, Status> {
        let cleaned = self
            .engine
            .clean_entity_storage(
                request.remove_empty_entities,
                request.release_orphaned_locks,
            )
            .await
            .map_err(engine_status)?;
        // One pass cleans everything, so there is never a next page.
        Ok(proto::CleanEntityStorageResponse {
            continuation_token: None,
            empty_entities_removed: i32::try_from(cleaned.empty_entities_removed)
                .unwrap_or(i32::MAX),
            orphaned_locks_released: i32::try_from(cleaned.orphaned_locks_released)
                .unwrap_or(i32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use serde_json::json;

    #[test]
    fn an_entity_goes_out_with_its_lock_holder_and_backlog_and_its_state_only_when_asked() {
        let entity = EntityMetadata {
            instance_id: "@purse@a".into(),
            name: "purse".into(),
            key: "a".into(),
            state: Some(json!({"balance": 5})),
            has_state: true,
            last_modified: DateTime::<Utc>::UNIX_EPOCH,
            backlog: 3,
            locked_by: Some("transfer-1".into()),
            critical_section: Some("cs-1".into()),
            lock_waiters: vec!["transfer-2".into()],
        };
        let wire = entity_to_wire(&entity, true);
        assert_eq!(wire.instance_id, "@purse@a");
        assert_eq!(wire.backlog_queue_size, 3);
        assert_eq!(wire.locked_by.as_deref(), Some("transfer-1"));
        assert_eq!(wire.serialized_state.as_deref(), Some(r#"{"balance":5}"#));
        assert_eq!(entity_to_wire(&entity, false).serialized_state, None);
    }

    #[test]
    fn a_bare_prefix_is_an_entity_name_prefix_and_names_are_lower_cased() {
        for (given, stored) in [
            ("count", "@count"),
            ("@Count", "@count"),
            ("@Counter@", "@counter@"),
            ("@Counter@Key", "@counter@Key"),
            ("Counter@a@b", "@counter@a@b"),
        ] {
            assert_eq!(id_prefix(given), stored, "{given}");
        }
    }
}
