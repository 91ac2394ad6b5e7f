//! Episodes on the core: preparing one for an instance, executing it, recording it, and carrying
//! out its actions (work, timers, children, events, completion), plus the episodes the host
//! records alone (terminations without functions, failures injected at start).

use super::{Core, ExecutionStarted, InFlight, Message, faults, new_id, payload, work_key};
use crate::engine::{EngineError, EngineEvent};
use crate::store::{ExecutionRecord, TimerRow, WorkRow};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::{EventKind, HistoryEvent, ParentInstance, RuntimeStatus};
use durable_sdk::protocol::{
    Action, ActionKind, LogLevel, LogLine, OrchestratorRequest, OrchestratorResponse,
};
use serde_json::Value;
use std::sync::Arc;

/// An episode ready to run: the request the executor answers, and what recording it needs.
pub(super) struct PreparedEpisode {
    /// What the orchestrator code gets (history in).
    pub(super) request: OrchestratorRequest,
    /// For remote workers, the history before it (`request.past_events` stays empty: shared,
    /// it goes to the hub and the sidecar without a copy); empty in process.
    pub(super) past: Arc<Vec<HistoryEvent>>,
    /// The build that runs it, and its functions; `None`: remote workers run it.
    runner: Option<(u32, PluginHandle)>,
    /// The messages this episode delivers (their inbox rows go once it is recorded).
    pub(super) delivered: Vec<Message>,
    pub(super) now: DateTime<Utc>,
}

/// An episode recorded in history, whose actions are still to be carried out.
pub(super) struct RecordedEpisode {
    instance_id: String,
    execution_id: String,
    /// The orchestration's name (children record it as their parent's).
    name: String,
    actions: Vec<Action>,
    /// Actions refused for their size, with what to deliver instead of carrying them out.
    refused: Vec<payload::Refused>,
}

impl Core {
    /// One episode of an instance, in three steps with a seam between each: prepare the request
    /// (history in), execute it (the orchestrator code: actions out), record what it did (one
    /// history append, the instance row, events for front ends), then apply its actions (work,
    /// timers, children, messages, completion). Execution is the only step that runs user code,
    /// and the only one a remote executor would replace.
    pub(super) fn run_episode(&mut self, instance_id: &str) -> Result<(), EngineError> {
        if self.remote.enabled && self.runs_remotely(instance_id) {
            return self.send_remote_episode(instance_id);
        }
        let Some(mut episode) = self.prepare_episode(instance_id)? else {
            return Ok(());
        };
        let response = self.execute_episode(&mut episode)?;
        let Some(recorded) = self.record_episode(episode, response)? else {
            return Ok(());
        };
        self.apply_episode(recorded)
    }

    /// The request for an instance's next episode, taking its deliverable messages; none if it
    /// has nothing to deliver (or no functions can run it: then a terminate is done by the host).
    fn prepare_episode(
        &mut self,
        instance_id: &str,
    ) -> Result<Option<PreparedEpisode>, EngineError> {
        let Some(live) = self.mirror.live.get(instance_id) else {
            self.mirror.pending.remove(instance_id);
            return Ok(None);
        };
        // A diverged instance whose build is gone has no code that replays it: the active build
        // would fail it with a nondeterminism. It waits, as with no functions at all.
        let runnable = if self.diverged_from_missing_build(instance_id) {
            None
        } else {
            self.plugin_for(live.record.build)
        };
        let Some(runner) = runnable else {
            self.terminate_without_plugin(instance_id)?;
            return Ok(None);
        };
        self.episode_request(instance_id, Some(runner))
    }

    /// The request for an instance's next episode on `runner` (`None`: remote workers, which
    /// always get the full history), taking its deliverable messages; none if it has none.
    pub(super) fn episode_request(
        &mut self,
        instance_id: &str,
        runner: Option<(u32, PluginHandle)>,
    ) -> Result<Option<PreparedEpisode>, EngineError> {
        self.prepare_call_counts(instance_id)?;
        let Some(live) = self.mirror.live.get(instance_id) else {
            return Ok(None);
        };
        let suspended = live.record.status == RuntimeStatus::Suspended;
        let execution_id = live.record.execution_id.clone();
        let history_len = live.record.history_len;
        let has_session = live.has_session && runner.is_some();
        // Read before the messages are taken: a history that does not decode leaves them queued.
        let (past_events, past) = if runner.is_none() {
            let past = self.remote_past(instance_id, &execution_id, history_len)?;
            (Vec::new(), past)
        } else if !has_session && history_len > 0 {
            (
                self.store.history(instance_id, &execution_id)?,
                Arc::default(),
            )
        } else {
            (Vec::new(), Arc::default())
        };
        let delivered = self.take_deliverable(instance_id, suspended);
        if delivered.is_empty() {
            return Ok(None);
        }
        let now = self.clock.now();
        let mut new_events = Vec::with_capacity(delivered.len() + 1);
        new_events.push(HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind: EventKind::OrchestratorStarted,
        });
        new_events.extend(delivered.iter().map(|message| message.event.clone()));
        Ok(Some(PreparedEpisode {
            request: OrchestratorRequest {
                instance_id: instance_id.to_string(),
                execution_id,
                history_len,
                past_events,
                new_events,
                include_replay_logs: false,
                max_actions: Some(self.limits.max_actions_per_episode),
            },
            past,
            runner,
            delivered,
            now,
        }))
    }

    /// Runs the orchestrator code on the episode's build; a plugin that no longer holds the
    /// instance's session gets the whole history and is asked again.
    fn execute_episode(
        &mut self,
        episode: &mut PreparedEpisode,
    ) -> Result<OrchestratorResponse, EngineError> {
        let Some((_, plugin)) = episode.runner else {
            // Remote episodes are answered by `Core::accept_remote_episode`, never executed here.
            return Err(EngineError::InvalidArgument(format!(
                "the episode of instance '{}' runs on remote workers, not in this process",
                episode.request.instance_id
            )));
        };
        let response = self.call_orchestrator(plugin, &episode.request);
        if !response.needs_history {
            return Ok(response);
        }
        let request = &mut episode.request;
        request.past_events = self
            .store
            .history(&request.instance_id, &request.execution_id)?;
        Ok(self.call_orchestrator(plugin, &episode.request))
    }

    /// Appends the episode to history (its new events, an event per action, then
    /// `OrchestratorCompleted`), takes its messages out of the inbox, updates the instance row
    /// and tells front ends; none if the instance is no longer live.
    pub(super) fn record_episode(
        &mut self,
        episode: PreparedEpisode,
        mut response: OrchestratorResponse,
    ) -> Result<Option<RecordedEpisode>, EngineError> {
        let PreparedEpisode {
            request,
            past,
            runner,
            delivered,
            now,
        } = episode;
        // The core's kept copy is extended below; a second owner would make that a copy.
        drop(past);
        let in_process = runner.is_some();
        // The isolated worker runs the active build (it is restarted on each new one).
        let build = runner.map(|(build, _)| build).or(if self.remote.isolated {
            self.builds.active
        } else {
            None
        });
        let OrchestratorRequest {
            instance_id,
            execution_id,
            history_len,
            new_events,
            ..
        } = request;
        let refused = self.refuse_oversized(
            &instance_id,
            &mut response.actions,
            &mut response.custom_status,
        );
        let mut appended = new_events;
        appended.extend(response.actions.iter().map(|action| HistoryEvent {
            event_id: action.id,
            timestamp: now,
            kind: action.kind.to_event_kind(),
        }));
        appended.push(HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind: EventKind::OrchestratorCompleted,
        });
        self.store
            .append_history(&instance_id, &execution_id, history_len, &appended, build)?;
        if !in_process {
            self.remember_remote_history(&instance_id, &execution_id, history_len, &appended);
        }
        for message in &delivered {
            if let Some(inbox_id) = message.inbox_id {
                self.store.remove_inbox(inbox_id)?;
            }
        }

        let Some(live) = self.mirror.live.get_mut(&instance_id) else {
            return Ok(None);
        };
        live.has_session = in_process;
        if build.is_some() {
            live.record.build = build;
        }
        live.record.history_len = history_len + appended.len();
        live.record.updated_at = now;
        if response.custom_status.is_some() {
            live.record.custom_status = response.custom_status.clone();
        }
        let awaits_changed = live.record.awaited_events != response.awaited_events;
        if awaits_changed {
            live.record.awaited_events = response.awaited_events.clone();
        }
        for message in &delivered {
            match message.event.kind {
                EventKind::ExecutionSuspended { .. } => {
                    live.record.status = RuntimeStatus::Suspended;
                }
                EventKind::ExecutionResumed { .. } | EventKind::ExecutionStarted { .. } => {
                    live.record.status = RuntimeStatus::Running;
                }
                _ => {}
            }
        }
        if live.record.status == RuntimeStatus::Pending {
            live.record.status = RuntimeStatus::Running;
        }
        let name = live.record.name.clone();
        self.store.put_instance(&live.record)?;
        let status = live.record.status;
        let custom_status = live.record.custom_status.clone();
        if self.wants_history_events() {
            self.batch.outbox.push(EngineEvent::HistoryAppended {
                instance_id: instance_id.clone(),
                execution_id: execution_id.clone(),
                first_seq: history_len,
                events: appended,
            });
        }
        self.batch.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.clone(),
            status,
            custom_status,
        });
        if awaits_changed {
            self.batch.outbox.push(EngineEvent::InstanceAwaits {
                instance_id: instance_id.clone(),
                events: response.awaited_events,
            });
        }
        if let Some(diff) = response.nondeterminism {
            self.batch.outbox.push(EngineEvent::NonDeterminism {
                instance_id: instance_id.clone(),
                diff,
            });
        }
        for warning in response.warnings {
            self.warn(Some(&instance_id), warning);
        }
        for line in &response.logs {
            log_orchestrator_line(&instance_id, &name, line);
        }
        Ok(Some(RecordedEpisode {
            instance_id,
            execution_id,
            name,
            actions: response.actions,
            refused,
        }))
    }

    /// Carries out a recorded episode's actions (or, for one refused for its size, delivers
    /// what stands in for it).
    pub(super) fn apply_episode(&mut self, recorded: RecordedEpisode) -> Result<(), EngineError> {
        let RecordedEpisode {
            instance_id,
            execution_id,
            name,
            actions,
            refused,
        } = recorded;
        for action in actions {
            if let Some(refused) = refused
                .iter()
                .find(|refused| refused.action_id == action.id)
            {
                if let Some(instead) = refused.instead.clone() {
                    self.deliver(&instance_id, instead);
                }
                continue;
            }
            self.carry_out(&instance_id, &execution_id, &name, action.id, action.kind)?;
        }
        // Messages that arrived while suspended become deliverable after a resume.
        self.mark_runnable(&instance_id);
        Ok(())
    }

    /// With no functions loaded (or none that can replay the instance), a terminate request is
    /// carried out by the host alone (the code would only have confirmed it); every other
    /// message waits for the functions.
    pub(super) fn terminate_without_plugin(
        &mut self,
        instance_id: &str,
    ) -> Result<(), EngineError> {
        let Some(messages) = self.mirror.pending.get_mut(instance_id) else {
            return Ok(());
        };
        let Some(position) = messages.iter().position(|message| {
            matches!(message.event.kind, EventKind::ExecutionTerminated { .. })
        }) else {
            return Ok(());
        };
        let Some(message) = messages.remove(position) else {
            return Ok(());
        };
        let EventKind::ExecutionTerminated { reason, .. } = message.event.kind.clone() else {
            return Ok(());
        };
        let completed = EventKind::ExecutionCompleted {
            status: RuntimeStatus::Terminated,
            result: reason.clone(),
            failure: None,
        };
        self.record_host_episode(instance_id, vec![message], vec![completed])?;
        self.finish_instance(instance_id, RuntimeStatus::Terminated, reason, None)
    }

    /// Records an episode the host writes alone, without running code: `OrchestratorStarted`,
    /// the delivered messages, `extra`, `OrchestratorCompleted`. Any plugin session of the
    /// instance no longer matches its history afterwards.
    pub(super) fn record_host_episode(
        &mut self,
        instance_id: &str,
        delivered: Vec<Message>,
        extra: Vec<EventKind>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let at = |kind| HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind,
        };
        let mut appended = vec![at(EventKind::OrchestratorStarted)];
        appended.extend(delivered.iter().map(|message| message.event.clone()));
        appended.extend(extra.into_iter().map(at));
        appended.push(at(EventKind::OrchestratorCompleted));
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        let first_seq = live.record.history_len;
        self.store.append_history(
            instance_id,
            &live.record.execution_id,
            first_seq,
            &appended,
            None,
        )?;
        for message in &delivered {
            if let Some(inbox_id) = message.inbox_id {
                self.store.remove_inbox(inbox_id)?;
            }
        }
        live.record.history_len += appended.len();
        live.record.updated_at = now;
        live.has_session = false;
        let execution_id = live.record.execution_id.clone();
        if self.wants_history_events() {
            self.batch.outbox.push(EngineEvent::HistoryAppended {
                instance_id: instance_id.to_string(),
                execution_id,
                first_seq,
                events: appended,
            });
        }
        Ok(())
    }

    /// Does the work an action asks for (its history event is already recorded).
    pub(super) fn carry_out(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        name: &str,
        action_id: i32,
        action: ActionKind,
    ) -> Result<(), EngineError> {
        match action {
            entity @ (ActionKind::SignalEntity { .. }
            | ActionKind::CallEntity { .. }
            | ActionKind::LockEntities { .. }
            | ActionKind::UnlockEntity { .. }) => {
                self.carry_out_entity_action(instance_id, execution_id, action_id, entity)?;
            }
            ActionKind::ScheduleTask { name, input } => {
                let work = WorkRow {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    task_id: action_id,
                    name,
                    input,
                };
                match self.plan_activity(&work) {
                    faults::ActivityPlan::Dispatch { twice, lose_result } => {
                        self.store.add_work(&work)?;
                        let key = work_key(&work);
                        if lose_result {
                            self.mirror.lose_result.insert(key.clone());
                        }
                        let out = InFlight { work, delivery: 1 };
                        self.mirror.in_flight.insert(key, out.clone());
                        if twice {
                            self.batch.to_dispatch.push(out.clone());
                        }
                        self.batch.to_dispatch.push(out);
                    }
                    // Outstanding (so a restart redelivers it) but not running yet, or ever.
                    faults::ActivityPlan::Withhold => self.store.add_work(&work)?,
                    faults::ActivityPlan::Handled => {}
                    faults::ActivityPlan::FailWith(failure) => self.deliver(
                        instance_id,
                        EventKind::TaskFailed {
                            task_scheduled_id: action_id,
                            failure,
                        },
                    ),
                }
            }
            ActionKind::CreateTimer { fire_at } => {
                let timer = TimerRow {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    timer_id: action_id,
                    fire_at,
                };
                self.store.add_timer(&timer)?;
                self.mirror.timers.insert(timer.into());
                self.batch.outbox.push(EngineEvent::TimerScheduled {
                    instance_id: instance_id.to_string(),
                    timer_id: action_id,
                    fire_at,
                });
            }
            ActionKind::CreateSubOrchestration {
                name: child_name,
                instance_id: child_id,
                input,
            } => {
                let parent = ParentInstance {
                    instance_id: instance_id.to_string(),
                    execution_id: execution_id.to_string(),
                    name: name.to_string(),
                    task_scheduled_id: action_id,
                };
                let occurrence = if self
                    .faults
                    .targets(crate::faults::TargetKind::SubOrchestration)
                {
                    self.next_call_attempt(instance_id, "sub-orchestration", &child_name, &input)
                } else {
                    crate::faults::Occurrence::FIRST
                };
                if let Err(error) = self.start_instance(
                    &child_name,
                    input,
                    Some(child_id),
                    Some(parent),
                    occurrence,
                ) {
                    self.deliver(
                        instance_id,
                        EventKind::SubOrchestrationInstanceFailed {
                            task_scheduled_id: action_id,
                            failure: FailureDetails::new(
                                "SubOrchestrationNotStarted",
                                error.to_string(),
                            )
                            .non_retriable(),
                        },
                    );
                }
            }
            ActionKind::SendEvent {
                instance_id: target,
                name: event_name,
                input,
            } => {
                if self.mirror.live.contains_key(&target) {
                    self.deliver_event(&target, &event_name, input)?;
                } else {
                    self.warn(
                        Some(instance_id),
                        format!("event '{event_name}' was sent to '{target}', which is not running; it was dropped"),
                    );
                }
            }
            ActionKind::CompleteOrchestration {
                status: RuntimeStatus::ContinuedAsNew,
                result,
                carryover_events,
                ..
            } => self.continue_as_new(instance_id, result, carryover_events)?,
            ActionKind::CompleteOrchestration {
                status,
                result,
                failure,
                ..
            } => self.finish_instance(instance_id, status, result, failure)?,
        }
        Ok(())
    }

    pub(super) fn continue_as_new(
        &mut self,
        instance_id: &str,
        input: Value,
        carryover: Vec<HistoryEvent>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let ordinal = self.store.executions(instance_id)?.len() as i64;
        let execution_id = new_id();
        self.drop_outstanding(instance_id)?;
        self.store.add_execution(
            instance_id,
            &ExecutionRecord {
                execution_id: execution_id.clone(),
                ordinal,
                input: input.clone(),
                started_at: now,
            },
        )?;
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        live.record.execution_id = execution_id.clone();
        live.record.input = input.clone();
        live.record.history_len = 0;
        live.record.status = RuntimeStatus::Running;
        live.record.updated_at = now;
        live.has_session = false;
        live.calls = None;
        let started = ExecutionStarted {
            name: live.record.name.clone(),
            input,
            instance_id: instance_id.to_string(),
            execution_id,
            parent: live.record.parent.clone(),
        };
        self.store.put_instance(&live.record)?;
        let mut first = vec![Message {
            event: HistoryEvent {
                event_id: -1,
                timestamp: now,
                kind: started.into_event(),
            },
            inbox_id: None,
        }];
        first.extend(carryover.into_iter().map(|event| Message {
            event,
            inbox_id: None,
        }));
        let queue = self
            .mirror
            .pending
            .entry(instance_id.to_string())
            .or_default();
        for message in first.into_iter().rev() {
            queue.push_front(message);
        }
        self.mark_runnable(instance_id);
        Ok(())
    }

    /// Ends an instance without running its code: what is queued for it, then its completion,
    /// as one host-recorded episode.
    pub(super) fn finish_by_host(
        &mut self,
        instance_id: &str,
        status: RuntimeStatus,
        output: Value,
        failure: Option<FailureDetails>,
    ) -> Result<(), EngineError> {
        let queued: Vec<Message> = self
            .mirror
            .pending
            .remove(instance_id)
            .map(Vec::from)
            .unwrap_or_default();
        let completed = EventKind::ExecutionCompleted {
            status,
            result: output.clone(),
            failure: failure.clone(),
        };
        self.record_host_episode(instance_id, queued, vec![completed])?;
        self.finish_instance(instance_id, status, output, failure)
    }

    pub(super) fn finish_instance(
        &mut self,
        instance_id: &str,
        status: RuntimeStatus,
        output: Value,
        failure: Option<FailureDetails>,
    ) -> Result<(), EngineError> {
        let Some(mut live) = self.mirror.live.remove(instance_id) else {
            return Ok(());
        };
        self.mirror.remote_pasts.remove(instance_id);
        // The copy of an old build it kept may be needed by no one now.
        self.builds.sweep_due |= live.record.build != self.builds.active;
        self.drop_outstanding(instance_id)?;
        self.store.clear_pending(instance_id)?;
        self.mirror.pending.remove(instance_id);
        live.record.status = status;
        live.record.output = output.clone();
        live.record.failure = failure.clone();
        live.record.updated_at = self.clock.now();
        // An ended instance waits for nothing, whatever its last episode said.
        let awaited = std::mem::take(&mut live.record.awaited_events);
        self.store.put_instance(&live.record)?;
        self.batch.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.to_string(),
            status,
            custom_status: live.record.custom_status.clone(),
        });
        if !awaited.is_empty() {
            self.batch.outbox.push(EngineEvent::InstanceAwaits {
                instance_id: instance_id.to_string(),
                events: Vec::new(),
            });
        }
        self.batch.finished.push(live.record.clone());
        if let Some(parent) = &live.record.parent {
            let kind = match status {
                RuntimeStatus::Completed => EventKind::SubOrchestrationInstanceCompleted {
                    task_scheduled_id: parent.task_scheduled_id,
                    result: output,
                },
                _ => EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id: parent.task_scheduled_id,
                    failure: failure.unwrap_or_else(|| {
                        FailureDetails::new(
                            status.as_str(),
                            format!("sub-orchestration '{instance_id}' was {status}: {output}"),
                        )
                    }),
                },
            };
            if self.mirror.live.contains_key(&parent.instance_id) {
                self.deliver(&parent.instance_id.clone(), kind);
            }
        }
        Ok(())
    }

    /// Forgets an instance's outstanding activities and timers and releases its entity locks
    /// (its execution ended).
    pub(super) fn drop_outstanding(&mut self, instance_id: &str) -> Result<(), EngineError> {
        self.mirror
            .in_flight
            .retain(|key, _| key.instance_id != instance_id);
        self.mirror
            .lose_result
            .retain(|key| key.instance_id != instance_id);
        if self.remote.enabled {
            self.mirror
                .remote_work
                .retain(|key| key.instance_id != instance_id);
            self.mirror.remote_episodes.remove(instance_id);
            self.batch.to_submit.retain(|id| id != instance_id);
            self.remote.hub.withdraw_instance(instance_id);
        }
        self.mirror.deferred.retain(|_, deferred| match deferred {
            faults::Deferred::Dispatch(work) => work.instance_id != instance_id,
            faults::Deferred::Deliver(id, _) => id != instance_id,
            // Entity messages outlive their sender (a delayed signal is still delivered).
            faults::Deferred::EntityMessage { .. } | faults::Deferred::EntityWake { .. } => true,
        });
        // Its execution ended: the entities it locked are free (docs/semantics.md#entities).
        self.release_entity_locks(instance_id)?;
        self.batch
            .to_dispatch
            .retain(|out| out.work.instance_id != instance_id);
        self.mirror
            .timers
            .retain(|timer| timer.instance_id != instance_id);
        self.store.clear_work_and_timers(instance_id)?;
        Ok(())
    }
}

/// An orchestrator's replay-safe log line (`ctx.log_*`), recorded episode by episode, goes to the
/// process's log (the UI's log view and rolling file; stderr from `warn` up for `run` and
/// `serve`) under the target `durable_emu::orchestration`, with its instance and orchestration.
fn log_orchestrator_line(instance_id: &str, name: &str, line: &LogLine) {
    let message = &line.message;
    match line.level {
        LogLevel::Debug => tracing::debug!(
            target: "durable_emu::orchestration",
            instance = instance_id, orchestration = name, "{message}"
        ),
        LogLevel::Info => tracing::info!(
            target: "durable_emu::orchestration",
            instance = instance_id, orchestration = name, "{message}"
        ),
        LogLevel::Warn => tracing::warn!(
            target: "durable_emu::orchestration",
            instance = instance_id, orchestration = name, "{message}"
        ),
        LogLevel::Error => tracing::error!(
            target: "durable_emu::orchestration",
            instance = instance_id, orchestration = name, "{message}"
        ),
    }
}
