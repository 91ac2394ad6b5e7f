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
        self.plan_start(
            &instance_id,
            name,
            is_sub_orchestration,
            occurrence,
            started.into_event(),
        )?;
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
        self.deliver_event(instance_id, name, input)
    }

    pub(crate) fn terminate(
        &mut self,
        instance_id: &str,
        reason: Value,
        recursive: bool,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be terminated")?;
        self.deliver(
            instance_id,
            EventKind::ExecutionTerminated {
                reason: reason.clone(),
                recurse: recursive,
            },
        );
        if recursive {
            let children: Vec<String> = self
                .mirror
                .live
                .values()
                .filter(|live| {
                    live.record
                        .parent
                        .as_ref()
                        .is_some_and(|parent| parent.instance_id == instance_id)
                })
                .map(|live| live.record.instance_id.clone())
                .collect();
            for child in children {
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
        Ok(())
    }

    pub(crate) fn resume(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        self.live_or_error(instance_id, "be resumed")?;
        self.pin_if_diverged(instance_id)?;
        self.deliver(instance_id, EventKind::ExecutionResumed { reason });
        Ok(())
    }

    pub(crate) fn purge(&mut self, instance_id: &str) -> Result<bool, EngineError> {
        if self.mirror.live.contains_key(instance_id) {
            return Err(EngineError::InstanceRunning(instance_id.to_string()));
        }
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
            let build = self.builds.active.unwrap_or_default();
            self.terminate(
                instance_id,
                Value::String(format!("restarted on build #{build} as {restarted}")),
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
        let Some(fire_at) = self
            .mirror
            .timers
            .iter()
            .map(|timer| timer.fire_at)
            .find(|fire_at| after.is_none_or(|after| *fire_at > after))
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
