//! Commands on the core: what front ends ask through the engine handle (start, raise,
//! terminate, suspend, resume, purge, restart, the clock, fault rules, queries, import).

use super::{Core, ExecutionStarted, Live, new_id};
use crate::engine::{EngineError, EngineEvent, ExecutionHistory};
use crate::export::InstanceExport;
use crate::store::{ExecutionRecord, InstanceRecord, TimerRow};
use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use durable_sdk::protocol::ActionKind;
use serde_json::Value;
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::time::Duration;

impl Core {
    pub(crate) fn start_instance(
        &mut self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
        parent: Option<ParentInstance>,
        occurrence: crate::faults::Occurrence,
    ) -> Result<String, EngineError> {
        self.create_instance(
            name,
            input,
            instance_id,
            parent,
            occurrence,
            InstanceMeta::default(),
        )
    }

    /// Creates an instance (replacing an ended one of the same id; a live one is refused) and
    /// plans its start; with a scheduled start later than now, the start is held until then.
    pub(super) fn create_instance(
        &mut self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
        parent: Option<ParentInstance>,
        occurrence: crate::faults::Occurrence,
        meta: InstanceMeta,
    ) -> Result<String, EngineError> {
        self.check_orchestration_known(name)?;
        self.check_payload("the input", &input)?;
        let instance_id = instance_id.unwrap_or_else(new_id);
        if instance_id.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "an instance id cannot be empty".into(),
            ));
        }
        if self.mirror.live.contains_key(&instance_id) {
            return Err(EngineError::InstanceExists(instance_id));
        }
        // Starting over a terminal instance's id replaces it, as Durable Functions does.
        self.store.purge(&instance_id)?;
        let now = self.clock.now();
        let execution_id = new_id();
        let record = InstanceRecord {
            instance_id: instance_id.clone(),
            name: name.to_string(),
            execution_id: execution_id.clone(),
            status: RuntimeStatus::Pending,
            input: input.clone(),
            output: Value::Null,
            failure: None,
            custom_status: None,
            created_at: now,
            updated_at: now,
            parent: parent.clone(),
            history_len: 0,
            build: None,
            pinned: false,
            divergence: None,
            awaited_events: Vec::new(),
            version: meta.version.clone(),
            tags: meta.tags,
            scheduled_start: meta.scheduled_start,
        };
        self.store.put_instance(&record)?;
        self.store.add_execution(
            &instance_id,
            &ExecutionRecord {
                execution_id: execution_id.clone(),
                ordinal: 0,
                input: input.clone(),
                started_at: now,
            },
        )?;
        self.batch.outbox.push(EngineEvent::InstanceCreated {
            instance_id: instance_id.clone(),
            name: name.to_string(),
            parent_instance_id: parent.as_ref().map(|parent| parent.instance_id.clone()),
        });
        self.mirror.live.insert(
            instance_id.clone(),
            Live {
                record,
                has_session: false,
                calls: None,
            },
        );
        let is_sub_orchestration = parent.is_some();
        let started = ExecutionStarted {
            name: name.to_string(),
            input,
            instance_id: instance_id.clone(),
            execution_id,
            parent,
        };
        let mut started = started.into_event();
        if let EventKind::ExecutionStarted {
            version,
            scheduled_start,
            ..
        } = &mut started
        {
            *version = meta.version;
            *scheduled_start = meta.scheduled_start;
        }
        self.plan_start(
            &instance_id,
            name,
            is_sub_orchestration,
            occurrence,
            started,
        )?;
        if let Some(at) = meta.scheduled_start.filter(|at| *at > now) {
            self.hold_until(&instance_id, at)?;
        }
        Ok(instance_id)
    }

    pub(super) fn live_or_error(
        &self,
        instance_id: &str,
        action: &'static str,
    ) -> Result<&Live, EngineError> {
        if let Some(live) = self.mirror.live.get(instance_id) {
            return Ok(live);
        }
        match self.store.instance(instance_id)? {
            Some(record) => Err(EngineError::InstanceTerminal {
                id: instance_id.to_string(),
                status: record.status.to_string(),
                action,
            }),
            None => Err(EngineError::InstanceNotFound(instance_id.to_string())),
        }
    }

    pub(crate) fn raise_event(
        &mut self,
        instance_id: &str,
        name: &str,
        input: Value,
    ) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "an event name cannot be empty".into(),
            ));
        }
        self.live_or_error(instance_id, "receive events")?;
        self.check_payload(&format!("the data of event '{name}'"), &input)?;
        self.deliver_event(instance_id, name, input)?;
        self.hold_with_start(instance_id)
    }

    pub(crate) fn terminate(
        &mut self,
        instance_id: &str,
        reason: Value,
        recursive: bool,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be terminated")?;
        // A start held for later is let go now: the instance starts and ends in one episode.
        self.release_held_start(instance_id);
        self.deliver(
            instance_id,
            EventKind::ExecutionTerminated {
                reason: reason.clone(),
                recurse: recursive,
            },
        );
        if recursive {
            for child in self.live_children(instance_id) {
                self.terminate(&child, reason.clone(), true)?;
            }
        }
        Ok(())
    }

    pub(crate) fn suspend(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be suspended")?;
        self.deliver(instance_id, EventKind::ExecutionSuspended { reason });
        self.hold_with_start(instance_id)
    }

    pub(crate) fn resume(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be resumed")?;
        self.pin_if_diverged(instance_id)?;
        self.deliver(instance_id, EventKind::ExecutionResumed { reason });
        self.hold_with_start(instance_id)
    }

    pub(crate) fn purge(&mut self, instance_id: &str) -> Result<bool, EngineError> {
        if self.mirror.live.contains_key(instance_id) {
            return Err(EngineError::InstanceRunning(instance_id.to_string()));
        }
        // An ended instance holds no locks; one left by an older emulator is released too.
        self.release_entity_locks(instance_id)?;
        Ok(self.store.purge(instance_id)?)
    }

    pub(crate) fn restart(&mut self, instance_id: &str) -> Result<String, EngineError> {
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        let first_input = self
            .store
            .executions(instance_id)?
            .into_iter()
            .next()
            .map_or(record.input, |execution| execution.input);
        let restarted = self.start_instance(
            &record.name,
            first_input,
            None,
            None,
            crate::faults::Occurrence::FIRST,
        )?;
        if self.is_diverged(instance_id) {
            // Restarting a diverged instance means "run it again on the new build instead".
            let on = match self.builds.active {
                Some(build) if !self.remote_diverged(instance_id) => format!("build #{build}"),
                _ => "the connected workers' code".to_string(),
            };
            self.terminate(
                instance_id,
                Value::String(format!("restarted on {on} as {restarted}")),
                true,
            )?;
        }
        Ok(restarted)
    }

    /// Moves virtual time `by` forward as if it passed (see [`Core::process`]); returns where
    /// the advance ends. Under auto-skip (which skips every wait anyway), or before any build is
    /// loaded (nothing could run on the way), the clock jumps there at once.
    pub(crate) fn advance_clock(&mut self, by: Duration) -> Result<DateTime<Utc>, EngineError> {
        if self.advances_at_once() {
            let now = self.clock.advance(by)?;
            self.clock_moved();
            return Ok(now);
        }
        // A second advance while one is under way extends it, as the user meant "then more".
        let from = self
            .advance_until
            .map_or(self.clock.now(), |until| until.max(self.clock.now()));
        let until = self.clock.later(from, by)?;
        self.advance_until = Some(until);
        Ok(until)
    }

    /// Moves virtual time to the next pending timer (the next after an advance under way);
    /// returns that time, or None when there is none. Stepping like [`Core::advance_clock`].
    pub(crate) fn advance_to_next_timer(&mut self) -> Result<Option<DateTime<Utc>>, EngineError> {
        let after = self.advance_until;
        // Delayed entity signals are timers too, as far as the clock goes.
        let Some(fire_at) = self
            .mirror
            .timers
            .iter()
            .map(|timer| timer.fire_at)
            .chain(self.entity_due_times())
            .filter(|fire_at| after.is_none_or(|after| *fire_at > after))
            .min()
        else {
            return Ok(None);
        };
        if self.advances_at_once() {
            let now = self.clock.advance_to(fire_at)?;
            self.clock_moved();
            return Ok(Some(now));
        }
        if !self.clock.is_virtual() {
            return Err(crate::clock::ClockError::NotVirtual.into());
        }
        self.advance_until = Some(fire_at);
        Ok(Some(fire_at))
    }

    fn advances_at_once(&self) -> bool {
        self.clock.auto_skip || !self.has_executor()
    }

    /// Where an advance under way is taking virtual time; None once it got there.
    pub(crate) fn advancing_to(&self) -> Option<DateTime<Utc>> {
        self.advance_until
    }

    pub(crate) fn builds(&self) -> Result<Vec<crate::store::BuildRecord>, EngineError> {
        Ok(self.store.builds()?)
    }

    pub(crate) fn active_build(&self) -> Option<u32> {
        self.builds.active
    }

    pub(crate) fn add_fault(&mut self, rule: crate::faults::FaultRule) -> u32 {
        self.faults.add(rule, self.clock.now())
    }

    pub(crate) fn faults(&self) -> Vec<crate::faults::RuleState> {
        self.faults.list()
    }

    pub(crate) fn set_fault_enabled(&mut self, id: u32, enabled: bool) -> Result<(), EngineError> {
        if self.faults.set_enabled(id, enabled) {
            Ok(())
        } else {
            Err(EngineError::FaultRuleNotFound(id))
        }
    }

    pub(crate) fn remove_fault(&mut self, id: u32) -> Result<(), EngineError> {
        if self.faults.remove(id) {
            Ok(())
        } else {
            Err(EngineError::FaultRuleNotFound(id))
        }
    }

    pub(crate) fn set_auto_skip(&mut self, on: bool) {
        self.clock.auto_skip = on;
    }

    pub(crate) fn set_clock_playing(
        &mut self,
        playing: bool,
    ) -> Result<DateTime<Utc>, EngineError> {
        let was = self.clock.is_playing();
        let now = self.clock.set_playing(playing)?;
        if was != playing {
            // Stored now, so a pause (or a stop right after) keeps the time reached.
            self.clock_moved();
        }
        Ok(now)
    }

    pub(crate) fn clock_snapshot(&self) -> crate::clock::ClockSnapshot {
        crate::clock::ClockSnapshot {
            kind: self.clock.kind(),
            now: self.clock.now(),
            playing: self.clock.is_playing(),
            auto_skip: self.clock.auto_skip,
            advancing_to: self.advance_until,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn pending_timers(&self) -> Vec<TimerRow> {
        self.mirror
            .timers
            .iter()
            .map(|timer| TimerRow {
                instance_id: timer.instance_id.clone(),
                execution_id: timer.execution_id.clone(),
                timer_id: timer.timer_id,
                fire_at: timer.fire_at,
            })
            .collect()
    }

    pub(crate) fn instance(
        &self,
        instance_id: &str,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        Ok(self.store.instance(instance_id)?)
    }

    /// Every instance that decodes; each one that does not is named in a warning instead of
    /// hiding the others.
    pub(crate) fn instances(&mut self) -> Result<Vec<InstanceRecord>, EngineError> {
        let listing = self.store.instance_listing()?;
        for unreadable in listing.unreadable {
            self.warn(
                Some(&unreadable.instance_id),
                format!(
                    "instance {} cannot be read: {}",
                    unreadable.instance_id, unreadable.reason
                ),
            );
        }
        Ok(listing.instances)
    }

    pub(crate) fn history(&self, instance_id: &str) -> Result<Vec<ExecutionHistory>, EngineError> {
        crate::engine::reader::execution_histories(&self.store, instance_id)
    }

    pub(crate) fn notify_when_terminal(
        &mut self,
        instance_id: &str,
        waiter: super::TerminalWaiter,
    ) -> Result<(), EngineError> {
        if self.mirror.live.contains_key(instance_id) {
            self.outlets.terminal_waiters.add(instance_id, waiter);
            return Ok(());
        }
        match self.store.instance(instance_id)? {
            Some(record) => {
                waiter.answer(record);
                Ok(())
            }
            None => Err(EngineError::InstanceNotFound(instance_id.to_string())),
        }
    }

    /// Lets go of the waiters for `instance_id` whose callers stopped waiting.
    pub(crate) fn prune_terminal_waiters(&mut self, instance_id: &str) {
        self.outlets.terminal_waiters.prune(instance_id);
    }

    /// How many terminal waiters the core holds.
    pub(crate) fn terminal_waiter_count(&self) -> usize {
        self.outlets.terminal_waiters.len()
    }

    pub(crate) fn import(&mut self, export: InstanceExport) -> Result<String, EngineError> {
        // Everything is checked before the first write, so a refused import changes nothing.
        export.validate()?;
        let record = export.to_record().map_err(EngineError::InvalidArgument)?;
        let instance_id = record.instance_id.clone();
        if self.mirror.live.contains_key(&instance_id) {
            return Err(EngineError::InstanceExists(instance_id));
        }
        if let Some(existing) = self.store.instance(&instance_id)? {
            return Err(if existing.status.is_terminal() {
                EngineError::InstanceEnded {
                    id: instance_id,
                    status: existing.status.to_string(),
                }
            } else {
                EngineError::InstanceExists(instance_id)
            });
        }
        self.store.put_instance(&record)?;
        for (execution, exported) in export.execution_records().iter().zip(&export.executions) {
            self.store.add_execution(&instance_id, execution)?;
            self.store.append_history(
                &instance_id,
                &execution.execution_id,
                0,
                &exported.history,
                None,
            )?;
        }
        if !record.status.is_terminal() {
            let current = export
                .executions
                .iter()
                .find(|execution| execution.execution_id == record.execution_id)
                .map(|execution| execution.history.clone())
                .unwrap_or_default();
            self.mirror.live.insert(
                instance_id.clone(),
                Live {
                    record: record.clone(),
                    has_session: false,
                    calls: None,
                },
            );
            self.reschedule_open_work(&record, &current)?;
        }
        self.batch.outbox.push(EngineEvent::InstanceCreated {
            instance_id: instance_id.clone(),
            name: record.name.clone(),
            parent_instance_id: record
                .parent
                .as_ref()
                .map(|parent| parent.instance_id.clone()),
        });
        Ok(instance_id)
    }

    /// For an imported running instance: activities and timers its history scheduled but never
    /// completed are scheduled again.
    pub(super) fn reschedule_open_work(
        &mut self,
        record: &InstanceRecord,
        history: &[HistoryEvent],
    ) -> Result<(), EngineError> {
        let completed: HashSet<i32> = history
            .iter()
            .filter_map(|event| event.kind.completes_task())
            .collect();
        for event in history {
            if completed.contains(&event.event_id) {
                continue;
            }
            match &event.kind {
                EventKind::TaskScheduled { name, input } => {
                    self.carry_out(
                        &record.instance_id,
                        &record.execution_id,
                        &record.name,
                        event.event_id,
                        ActionKind::ScheduleTask {
                            name: name.clone(),
                            input: input.clone(),
                        },
                    )?;
                }
                EventKind::TimerCreated { fire_at } => {
                    self.carry_out(
                        &record.instance_id,
                        &record.execution_id,
                        &record.name,
                        event.event_id,
                        ActionKind::CreateTimer { fire_at: *fire_at },
                    )?;
                }
                EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => {
                    self.warn(
                        Some(&record.instance_id),
                        format!("imported instance waits for sub-orchestration '{instance_id}', which was not imported"),
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a client may give an instance besides its name and input (kept on its record).
#[derive(Debug, Clone, Default)]
pub(crate) struct InstanceMeta {
    pub(crate) version: Option<String>,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) scheduled_start: Option<DateTime<Utc>>,
}

// ----- client commands (the SDK clients' calls; docs/semantics.md#clients) ---------------------

impl Core {
    /// Starts an instance with a client's options (docs/semantics.md#starting-with-options).
    /// Everything is checked before anything changes; an id in use is refused with
    /// `AlreadyExists` unless the reuse policy replaces its status (a live one is terminated
    /// by the host first).
    pub(crate) fn start_with(
        &mut self,
        name: &str,
        input: Value,
        options: crate::engine::StartOptions,
    ) -> Result<String, EngineError> {
        let crate::engine::StartOptions {
            instance_id,
            version,
            tags,
            scheduled_start,
            reuse,
        } = options;
        self.check_orchestration_known(name)?;
        self.check_payload("the input", &input)?;
        if instance_id
            .as_deref()
            .is_some_and(|id| id.trim().is_empty())
        {
            return Err(EngineError::InvalidArgument(
                "an instance id cannot be empty; leave it out to get a new one".into(),
            ));
        }
        if let Some(at) = scheduled_start {
            durable_sdk::history::check_time(at).map_err(|error| {
                EngineError::InvalidArgument(format!("the scheduled start time: {error}"))
            })?;
        }
        let instance_id = instance_id.unwrap_or_else(new_id);
        if let Some(status) = self.status_of(&instance_id)? {
            if !reuse.replaces(status) {
                return Err(EngineError::AlreadyExists {
                    id: instance_id,
                    status: status.to_string(),
                });
            }
            if !status.is_terminal() {
                self.end_for_replacement(&instance_id)?;
            }
        }
        self.create_instance(
            name,
            input,
            Some(instance_id),
            None,
            crate::faults::Occurrence::FIRST,
            InstanceMeta {
                version,
                tags,
                scheduled_start,
            },
        )
    }

    /// The status of an instance, live or stored; None if there is none.
    fn status_of(&self, instance_id: &str) -> Result<Option<RuntimeStatus>, EngineError> {
        if let Some(live) = self.mirror.live.get(instance_id) {
            return Ok(Some(live.record.status));
        }
        Ok(self
            .store
            .instance(instance_id)?
            .map(|record| record.status))
    }

    /// The running sub-orchestrations of an instance.
    fn live_children(&self, instance_id: &str) -> Vec<String> {
        self.mirror
            .live
            .values()
            .filter(|live| {
                live.record
                    .parent
                    .as_ref()
                    .is_some_and(|parent| parent.instance_id == instance_id)
            })
            .map(|live| live.record.instance_id.clone())
            .collect()
    }

    /// Ends a live instance at once so a start can take its id: its running children are asked
    /// to terminate, and it is recorded terminated by the host (its code is not run again).
    fn end_for_replacement(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let reason = Value::String(format!(
            "replaced by a new instance with the same id '{instance_id}'"
        ));
        for child in self.live_children(instance_id) {
            self.terminate(&child, reason.clone(), true)?;
        }
        self.finish_by_host(instance_id, RuntimeStatus::Terminated, reason, None)
    }

    /// Holds an instance's queued messages (its start first) until `due` on the engine clock:
    /// they wait in its inbox with that due time, so a restart keeps holding them.
    fn hold_until(&mut self, instance_id: &str, due: DateTime<Utc>) -> Result<(), EngineError> {
        let Some(messages) = self.mirror.pending.remove(instance_id) else {
            return Ok(());
        };
        self.mirror.runnable_set.remove(instance_id);
        self.mirror.runnable.retain(|id| id != instance_id);
        let mut held = Vec::with_capacity(messages.len());
        for mut message in messages {
            if let Some(inbox_id) = message.inbox_id {
                self.store.remove_inbox(inbox_id)?;
            }
            message.inbox_id = Some(
                self.store
                    .push_inbox_due(instance_id, &message.event, due)?,
            );
            held.push(message);
        }
        self.defer(
            due,
            super::faults::Deferred::Deliver(instance_id.to_string(), held),
        );
        Ok(())
    }

    /// When the instance's start is held (a scheduled start not reached yet), when it is due.
    fn held_start(&self, instance_id: &str) -> Option<DateTime<Utc>> {
        self.mirror
            .deferred
            .iter()
            .find_map(|((due, _), deferred)| match deferred {
                super::faults::Deferred::Deliver(id, messages)
                    if id == instance_id
                        && messages.iter().any(|message| {
                            matches!(message.event.kind, EventKind::ExecutionStarted { .. })
                        }) =>
                {
                    Some(*due)
                }
                _ => None,
            })
    }

    /// A message for an instance whose start is held waits with it (its code cannot take
    /// anything before it has started).
    fn hold_with_start(&mut self, instance_id: &str) -> Result<(), EngineError> {
        match self.held_start(instance_id) {
            Some(due) => self.hold_until(instance_id, due),
            None => Ok(()),
        }
    }

    /// Lets a held start (and what waits with it) go now, ahead of anything queued since.
    fn release_held_start(&mut self, instance_id: &str) {
        if self.held_start(instance_id).is_none() {
            return;
        }
        let keys: Vec<(DateTime<Utc>, u64)> = self
            .mirror
            .deferred
            .iter()
            .filter(|(_, deferred)| {
                matches!(deferred, super::faults::Deferred::Deliver(id, _) if id == instance_id)
            })
            .map(|(key, _)| *key)
            .collect();
        let mut released = Vec::new();
        for key in keys {
            if let Some(super::faults::Deferred::Deliver(_, messages)) =
                self.mirror.deferred.remove(&key)
            {
                released.extend(messages);
            }
        }
        let now = self.clock.now();
        let queue = self
            .mirror
            .pending
            .entry(instance_id.to_string())
            .or_default();
        for mut message in released.into_iter().rev() {
            message.event.timestamp = now;
            queue.push_front(message);
        }
        self.mark_runnable(instance_id);
    }

    /// One page of instances matching `query` (docs/semantics.md#queries).
    pub(crate) fn query(
        &mut self,
        query: &crate::engine::InstanceQuery,
    ) -> Result<(Vec<InstanceRecord>, Option<String>), EngineError> {
        query.check()?;
        let candidates = self.readable(
            self.store
                .instance_listing_where(&query.statuses, query.instance_id_prefix.as_deref())?,
        );
        query.page(candidates)
    }

    /// One page of ended instances' ids (`ListInstanceIds`).
    pub(crate) fn list_instance_ids(
        &mut self,
        query: &crate::engine::InstanceIdsQuery,
    ) -> Result<(Vec<String>, Option<String>), EngineError> {
        query.check()?;
        let terminal: Vec<RuntimeStatus> = if query.statuses.is_empty() {
            vec![
                RuntimeStatus::Completed,
                RuntimeStatus::Failed,
                RuntimeStatus::Canceled,
                RuntimeStatus::Terminated,
            ]
        } else {
            query.statuses.clone()
        };
        let candidates = self.readable(self.store.instance_listing_where(&terminal, None)?);
        query.page(candidates)
    }

    /// The records of a listing; each row that does not decode is named in a warning.
    fn readable(&mut self, listing: crate::store::InstanceListing) -> Vec<InstanceRecord> {
        for unreadable in listing.unreadable {
            self.warn(
                Some(&unreadable.instance_id),
                format!(
                    "instance {} cannot be read: {}",
                    unreadable.instance_id, unreadable.reason
                ),
            );
        }
        listing.instances
    }

    /// Purges an ended instance and, with `recursive`, the sub-orchestrations it started (at any
    /// depth) that have ended; returns how many instances were deleted (0: there was none).
    /// The instance itself still running is refused; a descendant still running is left alone.
    pub(crate) fn purge_tree(
        &mut self,
        instance_id: &str,
        recursive: bool,
    ) -> Result<usize, EngineError> {
        if self.mirror.live.contains_key(instance_id) {
            return Err(EngineError::InstanceRunning(instance_id.to_string()));
        }
        let mut seen = HashSet::new();
        self.purge_descending(instance_id, recursive, &mut seen)
    }

    fn purge_descending(
        &mut self,
        instance_id: &str,
        recursive: bool,
        seen: &mut HashSet<String>,
    ) -> Result<usize, EngineError> {
        if !seen.insert(instance_id.to_string()) || self.mirror.live.contains_key(instance_id) {
            return Ok(0);
        }
        let children = if recursive {
            self.children_of(instance_id)?
        } else {
            Vec::new()
        };
        let mut purged = usize::from(self.store.purge(instance_id)?);
        for child in children {
            purged += self.purge_descending(&child, true, seen)?;
        }
        Ok(purged)
    }

    /// The sub-orchestrations an instance started, in any of its executions.
    fn children_of(&self, instance_id: &str) -> Result<Vec<String>, EngineError> {
        let mut children = Vec::new();
        for execution in self.store.executions(instance_id)? {
            for event in self.store.history(instance_id, &execution.execution_id)? {
                if let EventKind::SubOrchestrationInstanceCreated { instance_id, .. } = event.kind {
                    children.push(instance_id);
                }
            }
        }
        Ok(children)
    }

    /// Purges every ended instance `filter` matches (with `recursive`, their ended
    /// sub-orchestrations too); returns how many were deleted.
    pub(crate) fn purge_where(
        &mut self,
        filter: &crate::engine::PurgeFilter,
        recursive: bool,
    ) -> Result<usize, EngineError> {
        filter.check()?;
        let listing = self.store.instance_listing_where(&filter.statuses, None)?;
        let matching: Vec<String> = self
            .readable(listing)
            .into_iter()
            .filter(|record| filter.matches(record))
            .map(|record| record.instance_id)
            .collect();
        let mut seen = HashSet::new();
        let mut purged = 0;
        for instance_id in matching {
            purged += self.purge_descending(&instance_id, recursive, &mut seen)?;
        }
        Ok(purged)
    }

    /// Starts the orchestration again with its first input, version and tags: under the same id
    /// (only once it has ended; it replaces the old one) or a new one. Returns the id.
    pub(crate) fn restart_as(
        &mut self,
        instance_id: &str,
        new_instance_id: bool,
    ) -> Result<String, EngineError> {
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        if !new_instance_id && self.mirror.live.contains_key(instance_id) {
            return Err(EngineError::NotEnded {
                id: instance_id.to_string(),
                status: self
                    .status_of(instance_id)?
                    .unwrap_or(record.status)
                    .to_string(),
                action: "be restarted with the same id",
            });
        }
        let first_input = self
            .store
            .executions(instance_id)?
            .into_iter()
            .next()
            .map_or(record.input, |execution| execution.input);
        let id = (!new_instance_id).then(|| instance_id.to_string());
        self.create_instance(
            &record.name,
            first_input,
            id,
            None,
            crate::faults::Occurrence::FIRST,
            InstanceMeta {
                version: record.version,
                tags: record.tags,
                scheduled_start: None,
            },
        )
    }

    /// Rewinds a failed instance (docs/semantics.md#rewind): a new execution whose history is
    /// the failed one's with its failures taken out, run on from there; the failed children it
    /// still awaits are rewound too, purged ones started again.
    ///
    /// The host rewrites history for every instance. A remote worker replays the rewritten
    /// history as an ordinary episode (it holds no `ExecutionCompleted`, so the SDK's own
    /// rewrite is not triggered). An executor that prefers the worker's rewrite (the proto's
    /// `RewindOrchestrationAction`) delivers `ExecutionRewound` to the failed execution
    /// instead and hands the history the worker answers to [`Core::install_rewound_execution`].
    pub(crate) fn rewind(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.rewind_under(instance_id, reason, None)
    }

    /// The stored record of a failed instance; `NotFailed` for a live or otherwise ended one.
    pub(super) fn failed_record(&self, instance_id: &str) -> Result<InstanceRecord, EngineError> {
        if let Some(live) = self.mirror.live.get(instance_id) {
            return Err(EngineError::NotFailed {
                id: instance_id.to_string(),
                status: live.record.status.to_string(),
            });
        }
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        if record.status != RuntimeStatus::Failed {
            return Err(EngineError::NotFailed {
                id: instance_id.to_string(),
                status: record.status.to_string(),
            });
        }
        Ok(record)
    }

    fn rewind_under(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
        parent_execution: Option<String>,
    ) -> Result<(), EngineError> {
        let record = self.failed_record(instance_id)?;
        let failed = self.store.history(instance_id, &record.execution_id)?;
        let execution_id = new_id();
        let rewound =
            crate::engine::rewind::rewrite(&failed, &execution_id, parent_execution.as_deref());
        self.install_rewound_execution(record, execution_id, rewound, parent_execution, reason)
    }

    /// Makes `rewound` the instance's new current execution and runs it on: the instance is live
    /// again, `ExecutionRewound` is delivered (its next episode replays the history and makes
    /// again the calls that failed), work the history left open is scheduled again, and the
    /// children it awaits are rewound, started again or re-read.
    pub(crate) fn install_rewound_execution(
        &mut self,
        mut record: InstanceRecord,
        execution_id: String,
        rewound: crate::engine::rewind::Rewound,
        parent_execution: Option<String>,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let instance_id = record.instance_id.clone();
        let now = self.clock.now();
        let ordinal = self.store.executions(&instance_id)?.len() as i64;
        self.store.add_execution(
            &instance_id,
            &ExecutionRecord {
                execution_id: execution_id.clone(),
                ordinal,
                input: record.input.clone(),
                started_at: now,
            },
        )?;
        self.store
            .append_history(&instance_id, &execution_id, 0, &rewound.history, None)?;
        record.execution_id = execution_id.clone();
        record.status = RuntimeStatus::Running;
        record.output = Value::Null;
        record.failure = None;
        record.history_len = rewound.history.len();
        record.updated_at = now;
        if let (Some(parent), Some(parent_execution)) = (&mut record.parent, &parent_execution) {
            parent.execution_id = parent_execution.clone();
        }
        self.store.put_instance(&record)?;
        if self.wants_history_events() {
            self.batch.outbox.push(EngineEvent::HistoryAppended {
                instance_id: instance_id.clone(),
                execution_id: execution_id.clone(),
                first_seq: 0,
                events: rewound.history.clone(),
            });
        }
        self.batch.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.clone(),
            status: RuntimeStatus::Running,
            custom_status: record.custom_status.clone(),
        });
        let name = record.name.clone();
        self.mirror.live.insert(
            instance_id.clone(),
            Live {
                record,
                has_session: false,
                calls: None,
            },
        );
        self.deliver(
            &instance_id,
            EventKind::ExecutionRewound {
                reason: reason.clone(),
            },
        );
        for event in rewound.open_tasks.into_iter().chain(rewound.open_timers) {
            let action = match event.kind {
                EventKind::TaskScheduled { name, input } => {
                    ActionKind::ScheduleTask { name, input }
                }
                EventKind::TimerCreated { fire_at } => ActionKind::CreateTimer { fire_at },
                _ => continue,
            };
            self.carry_out(&instance_id, &execution_id, &name, event.event_id, action)?;
        }
        for child in rewound.awaited_children {
            let existing = self.store.instance(&child.instance_id)?;
            match existing {
                None => self.carry_out(
                    &instance_id,
                    &execution_id,
                    &name,
                    child.task_scheduled_id,
                    ActionKind::CreateSubOrchestration {
                        name: child.name,
                        instance_id: child.instance_id,
                        input: child.input,
                    },
                )?,
                Some(found) if found.status == RuntimeStatus::Failed => self.rewind_under(
                    &child.instance_id,
                    reason.clone(),
                    Some(execution_id.clone()),
                )?,
                Some(_) if self.mirror.live.contains_key(&child.instance_id) => {
                    // Still running: its completion must reach the new execution.
                    if let Some(live) = self.mirror.live.get_mut(&child.instance_id) {
                        if let Some(parent) = &mut live.record.parent {
                            parent.execution_id = execution_id.clone();
                        }
                        self.store.put_instance(&live.record)?;
                    }
                }
                Some(found) => {
                    // Ended another way after its outcome was taken out: deliver it again.
                    let kind = match found.status {
                        RuntimeStatus::Completed => EventKind::SubOrchestrationInstanceCompleted {
                            task_scheduled_id: child.task_scheduled_id,
                            result: found.output,
                        },
                        status => EventKind::SubOrchestrationInstanceFailed {
                            task_scheduled_id: child.task_scheduled_id,
                            failure: found.failure.unwrap_or_else(|| {
                                durable_sdk::FailureDetails::new(
                                    status.as_str(),
                                    format!(
                                        "sub-orchestration '{}' was {status}: {}",
                                        child.instance_id, found.output
                                    ),
                                )
                            }),
                        },
                    };
                    self.deliver(&instance_id, kind);
                }
            }
        }
        Ok(())
    }
}
