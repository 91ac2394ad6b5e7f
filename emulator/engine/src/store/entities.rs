//! The store's entity tables (schema v6): `entities` (state, last change, lock), `entity_queue`
//! (each entity's messages in arrival order, some waiting for a due time) and
//! `entity_operations` (the operation log).
//!
//! Owns the SQL and row <-> type mapping of those tables. What a queued message means (a
//! signal, a call, a lock request) is the engine's business: the store keeps it as JSON of the
//! caller's type. Knows nothing of batches, plugins or front ends.

use super::{Store, StoreError, from_json, parse_time, time_text, to_json};
use crate::engine::{EntityOperationOutcome, EntityOperationRecord, EntityRequester};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;

/// One entity as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityRow {
    /// `@{name}@{key}`.
    pub instance_id: String,
    /// The entity name (lower-cased).
    pub name: String,
    /// The key.
    pub key: String,
    /// Its state; `None`: no state.
    pub state: Option<Value>,
    /// When its state, queue or lock last changed (emulator clock).
    pub last_modified: DateTime<Utc>,
    /// The orchestration instance holding its lock.
    pub locked_by: Option<String>,
    /// The critical section holding its lock.
    pub critical_section: Option<String>,
}

/// A message waiting in an entity's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityQueueRow<M> {
    /// Row id: arrival order.
    pub id: i64,
    /// The entity.
    pub instance_id: String,
    /// The message.
    pub message: M,
    /// Delivered no earlier than this (a delayed signal).
    pub due_at: Option<DateTime<Utc>>,
}

const ENTITY_COLUMNS: &str =
    "instance_id, name, key, state, last_modified, locked_by, critical_section";

type RawEntity = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn raw_entity(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntity> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn decode_entity(raw: RawEntity) -> Result<EntityRow, StoreError> {
    let (instance_id, name, key, state, last_modified, locked_by, critical_section) = raw;
    Ok(EntityRow {
        state: state
            .map(|text| from_json(&text, &format!("state of entity {instance_id}")))
            .transpose()?,
        last_modified: parse_time(&last_modified, || {
            format!("last-modified time of entity {instance_id}")
        })?,
        instance_id,
        name,
        key,
        locked_by,
        critical_section,
    })
}

impl Store {
    /// One entity, if it exists.
    pub fn entity(&self, instance_id: &str) -> Result<Option<EntityRow>, StoreError> {
        let raw = self
            .conn
            .prepare_cached(&format!(
                "SELECT {ENTITY_COLUMNS} FROM entities WHERE instance_id = ?1"
            ))?
            .query_row([instance_id], raw_entity)
            .optional()?;
        raw.map(decode_entity).transpose()
    }

    /// Inserts or replaces an entity row.
    pub fn put_entity(&self, entity: &EntityRow) -> Result<(), StoreError> {
        let id = &entity.instance_id;
        let last_modified = time_text(entity.last_modified, || {
            format!("last-modified time of entity {id}")
        })?;
        self.conn
            .prepare_cached(
                "INSERT INTO entities(instance_id, name, key, state, last_modified, locked_by, critical_section)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(instance_id) DO UPDATE SET name = excluded.name, key = excluded.key,
                   state = excluded.state, last_modified = excluded.last_modified,
                   locked_by = excluded.locked_by, critical_section = excluded.critical_section",
            )?
            .execute(params![
                entity.instance_id,
                entity.name,
                entity.key,
                entity.state.as_ref().map(Value::to_string),
                last_modified,
                entity.locked_by,
                entity.critical_section,
            ])?;
        Ok(())
    }

    /// Deletes an entity with its queue and operation log; returns whether it existed.
    pub fn remove_entity(&self, instance_id: &str) -> Result<bool, StoreError> {
        for sql in [
            "DELETE FROM entity_queue WHERE instance_id = ?1",
            "DELETE FROM entity_operations WHERE instance_id = ?1",
        ] {
            self.conn.prepare_cached(sql)?.execute([instance_id])?;
        }
        Ok(self
            .conn
            .prepare_cached("DELETE FROM entities WHERE instance_id = ?1")?
            .execute([instance_id])?
            > 0)
    }

    /// Entities whose id starts with `prefix` (None: all) and sorts after `after` (a page's
    /// continuation), ordered by id; at most `limit`.
    pub fn entity_rows(
        &self,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<EntityRow>, StoreError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {ENTITY_COLUMNS} FROM entities
             WHERE (?1 IS NULL OR substr(instance_id, 1, length(?1)) = ?1)
               AND (?2 IS NULL OR instance_id > ?2)
             ORDER BY instance_id LIMIT ?3"
        ))?;
        let rows = statement.query_map(
            params![prefix, after, i64::try_from(limit).unwrap_or(i64::MAX)],
            raw_entity,
        )?;
        rows.map(|row| decode_entity(row?)).collect()
    }

    /// Queues a message for an entity (to be delivered from `due_at` on, if set); returns its id.
    pub fn push_entity_message(
        &self,
        instance_id: &str,
        message: &impl serde::Serialize,
        due_at: Option<DateTime<Utc>>,
    ) -> Result<i64, StoreError> {
        let due_at = due_at
            .map(|at| time_text(at, || format!("due time of a message to {instance_id}")))
            .transpose()?;
        self.conn
            .prepare_cached(
                "INSERT INTO entity_queue(instance_id, message, due_at) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![instance_id, to_json(message), due_at])?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Removes a message that was run (or dropped).
    pub fn remove_entity_message(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM entity_queue WHERE id = ?1")?
            .execute([id])?;
        Ok(())
    }

    /// Every queued entity message (of one entity, or of all), in arrival order.
    pub fn entity_queue<M: serde::de::DeserializeOwned>(
        &self,
        instance_id: Option<&str>,
    ) -> Result<Vec<EntityQueueRow<M>>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, instance_id, message, due_at FROM entity_queue
             WHERE ?1 IS NULL OR instance_id = ?1 ORDER BY id",
        )?;
        let rows = statement.query_map([instance_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (id, instance_id, message, due_at) = row?;
            Ok(EntityQueueRow {
                message: from_json(&message, &format!("message {id} for entity {instance_id}"))?,
                due_at: due_at
                    .map(|text| {
                        parse_time(&text, || {
                            format!("due time of message {id} for {instance_id}")
                        })
                    })
                    .transpose()?,
                id,
                instance_id,
            })
        })
        .collect()
    }

    /// Appends an operation to an entity's log (its `seq` is the next number); returns the seq.
    pub fn add_entity_operation(
        &self,
        instance_id: &str,
        record: &EntityOperationRecord,
    ) -> Result<i64, StoreError> {
        let at = time_text(record.at, || {
            format!("time of operation {} of {instance_id}", record.request_id)
        })?;
        Ok(self
            .conn
            .prepare_cached(
                "INSERT INTO entity_operations(instance_id, seq, request_id, operation, input, requester, awaits_answer, outcome, state_after, state_known, at, fault)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM entity_operations WHERE instance_id = ?1), ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 RETURNING seq",
            )?
            .query_row(
                params![
                    instance_id,
                    record.request_id,
                    record.operation,
                    record.input.to_string(),
                    to_json(&record.requester),
                    record.awaits_answer,
                    to_json(&record.outcome),
                    record.state_after.as_ref().map(Value::to_string),
                    record.state_known,
                    at,
                    record.fault,
                ],
                |row| row.get(0),
            )?)
    }

    /// The last `limit` entries of an entity's operation log, oldest first.
    pub fn entity_operations(
        &self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<EntityOperationRecord>, StoreError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, request_id, operation, input, requester, awaits_answer, outcome, state_after, at, fault, state_known
             FROM (SELECT * FROM entity_operations WHERE instance_id = ?1 ORDER BY seq DESC LIMIT ?2)
             ORDER BY seq",
        )?;
        let rows = statement.query_map(
            params![instance_id, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, bool>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, Option<String>>(7)?,
                    row.get::<_, String>(8)?,
                    row.get::<_, Option<String>>(9)?,
                    row.get::<_, bool>(10)?,
                ))
            },
        )?;
        rows.map(|row| {
            let (
                seq,
                request_id,
                operation,
                input,
                requester,
                awaits,
                outcome,
                state,
                at,
                fault,
                state_known,
            ) = row?;
            let what = |field: &str| format!("{field} of operation {seq} of entity {instance_id}");
            Ok(EntityOperationRecord {
                seq,
                input: from_json(&input, &what("input"))?,
                requester: from_json::<EntityRequester>(&requester, &what("requester"))?,
                awaits_answer: awaits,
                outcome: from_json::<EntityOperationOutcome>(&outcome, &what("outcome"))?,
                state_after: state
                    .map(|text| from_json(&text, &what("state")))
                    .transpose()?,
                state_known,
                at: parse_time(&at, || what("time"))?,
                fault,
                request_id,
                operation,
            })
        })
        .collect()
    }
}
