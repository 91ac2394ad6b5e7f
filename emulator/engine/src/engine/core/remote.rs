//! The core's side of the remote executor: which names the loaded plugin lacks (those go to the
//! hub), handing episodes and activities to the hub after the batch that made them committed,
//! and recording the completions remote workers send back through the same record/apply path
//! as the plugin's. One episode per instance is out at a time; its messages keep their inbox
//! rows until its completion is recorded, so a restart delivers them again.
//!
//! Knows the hub only through its crate-private methods; knows nothing of gRPC.

use super::{ActivityDone, ActivityJob, Core, InFlight, Job, Message, payload, work_key};
use crate::engine::{EngineError, EngineEvent};
use crate::remote::{RemoteError, Work, parked_event};
use durable_sdk::FailureDetails;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{ActionKind, ActivityOutcome, OrchestratorResponse};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// An instance's history as its last remote episode saw it.
pub(super) struct RemotePast {
    execution_id: String,
    events: Arc<Vec<HistoryEvent>>,
}

/// The failure type of an instance whose remote worker answered with something that breaks its
/// history (docs/architecture.md#executors).
pub(crate) const INVALID_WORKER_RESPONSE: &str = "InvalidWorkerResponse";

impl Core {
    /// The plugin build that runs orchestration `name` for an instance on `build`; with remote
    /// workers on, only one whose manifest has the name.
    pub(super) fn plugin_running(
        &self,
        build: Option<u32>,
        name: &str,
    ) -> Option<(u32, PluginHandle)> {
        let (number, handle) = self.plugin_for(build)?;
        let has = self
            .builds
            .loaded
            .get(&number)
            .is_some_and(|plugin| plugin.manifest.orchestrators.iter().any(|n| n == name));
        has.then_some((number, handle))
    }

    /// Under `--isolate`, whether the build loaded in this process is the code the isolated
    /// worker runs the instance with (the build has its orchestration): then the reload check
    /// judges it in process, as without isolation, and a worker's connect does not probe it.
    pub(super) fn isolated_on_loaded_build(&self, instance_id: &str) -> bool {
        self.remote.isolated
            && self.mirror.live.get(instance_id).is_some_and(|live| {
                self.plugin_running(live.record.build, &live.record.name)
                    .is_some()
            })
    }

    /// Whether remote workers run this instance (the plugin lacks its orchestration).
    pub(super) fn runs_remotely(&self, instance_id: &str) -> bool {
        self.remote.enabled
            && self.mirror.live.get(instance_id).is_some_and(|live| {
                self.remote.isolated
                    || (!self.diverged_from_missing_build(instance_id)
                        && self
                            .plugin_running(live.record.build, &live.record.name)
                            .is_none())
            })
    }

    /// A start of `name` is accepted if the active build has it, or (remote workers on) at all:
    /// then it waits for a worker that takes it.
    pub(super) fn check_orchestration_known(&self, name: &str) -> Result<(), EngineError> {
        if name.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "an orchestration name cannot be empty".into(),
            ));
        }
        let active = self
            .builds
            .active
            .and_then(|number| self.builds.loaded.get(&number));
        match active {
            Some(plugin) if plugin.manifest.orchestrators.iter().any(|n| n == name) => Ok(()),
            _ if self.remote.enabled => Ok(()),
            Some(plugin) => Err(EngineError::UnknownOrchestration {
                name: name.to_string(),
                known: plugin.manifest.orchestrators.join(", "),
            }),
            None => Err(EngineError::NoPlugin),
        }
    }

    /// Prepares an instance's next episode for remote workers (handed out after the commit).
    /// While one is out, messages wait for the next; a terminate for an instance no connected
    /// worker runs is done by the host, as without functions.
    pub(super) fn send_remote_episode(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let Some(live) = self.mirror.live.get(instance_id) else {
            self.mirror.pending.remove(instance_id);
            return Ok(());
        };
        // A reconnect probe is out: the episode waits for its answer (a real episode must not
        // race it), and runs when the probe ends.
        if self.probe_out(instance_id) {
            return Ok(());
        }
        let name = live.record.name.clone();
        // Code that does not replay the instance would fail it instead of terminating it.
        let nobody_runs_it =
            !self.remote.hub.runs_orchestration(&name) || self.remote_diverged(instance_id);
        if self.mirror.remote_episodes.contains_key(instance_id) {
            let terminate_waits = self.mirror.pending.get(instance_id).is_some_and(|queue| {
                queue.iter().any(|message| {
                    matches!(message.event.kind, EventKind::ExecutionTerminated { .. })
                })
            });
            if terminate_waits
                && nobody_runs_it
                && self.remote.hub.withdraw_queued_episode(instance_id)
            {
                if let Some(episode) = self.mirror.remote_episodes.remove(instance_id) {
                    self.put_back(instance_id, episode.delivered);
                }
                self.terminate_without_plugin(instance_id)?;
            }
            return Ok(());
        }
        if nobody_runs_it {
            self.terminate_without_plugin(instance_id)?;
            if !self.mirror.live.contains_key(instance_id) {
                return Ok(());
            }
        }
        let Some(episode) = self.episode_request(instance_id, None)? else {
            return Ok(());
        };
        self.mirror
            .remote_episodes
            .insert(instance_id.to_string(), episode);
        self.batch.to_submit.push(instance_id.to_string());
        Ok(())
    }

    /// The history before an instance's next remote episode: what its last one saw, plus what
    /// was recorded since, read from the store. A remote episode needs all of it (to send, and
    /// to check the answer against), and reading the whole history back for every episode of a
    /// long fan-in was most of its cost. What is kept lives in the mirror, so a batch that
    /// rolls back (or an injected crash) drops it with everything else in memory.
    pub(super) fn remote_past(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        history_len: usize,
    ) -> Result<Arc<Vec<HistoryEvent>>, EngineError> {
        let kept =
            self.mirror.remote_pasts.remove(instance_id).filter(|kept| {
                kept.execution_id == execution_id && kept.events.len() <= history_len
            });
        let mut events = kept.map_or_else(Arc::default, |kept| kept.events);
        if events.len() < history_len {
            let recorded_since =
                self.store
                    .history_from(instance_id, execution_id, events.len())?;
            // The hub or the sidecar may still hold the last episode's copy: then this one is new.
            Arc::make_mut(&mut events).extend(recorded_since);
        }
        self.mirror.remote_pasts.insert(
            instance_id.to_string(),
            RemotePast {
                execution_id: execution_id.to_string(),
                events: Arc::clone(&events),
            },
        );
        Ok(events)
    }

    /// What a remote episode just appended to history at `first_seq`, added to the kept copy if
    /// that copy ends there (so the next episode reads nothing back from the store).
    pub(super) fn remember_remote_history(
        &mut self,
        instance_id: &str,
        execution_id: &str,
        first_seq: usize,
        appended: &[HistoryEvent],
    ) {
        if let Some(kept) = self.mirror.remote_pasts.get_mut(instance_id) {
            if kept.execution_id == execution_id && kept.events.len() == first_seq {
                Arc::make_mut(&mut kept.events).extend_from_slice(appended);
            }
        }
    }

    /// Messages of an episode that was not recorded go back to the front of the queue.
    fn put_back(&mut self, instance_id: &str, delivered: Vec<Message>) {
        let queue = self
            .mirror
            .pending
            .entry(instance_id.to_string())
            .or_default();
        for message in delivered.into_iter().rev() {
            queue.push_front(message);
        }
        self.mark_runnable(instance_id);
    }

    /// After a commit, with remote workers on: each activity to the plugin if its build has the
    /// name, else to the hub; prepared episodes to the hub. A Durable HTTP request is the host's
    /// to perform, never a worker's.
    pub(super) fn dispatch_mixed(&mut self) {
        for out in std::mem::take(&mut self.batch.to_dispatch) {
            if out.work.name == durable_sdk::http::HTTP_ACTIVITY {
                self.dispatch_http(out.work);
                continue;
            }
            let build = self
                .mirror
                .live
                .get(&out.work.instance_id)
                .and_then(|live| live.record.build);
            let local =
                self.plugin_for(build).filter(|(number, _)| {
                    !self.remote.isolated
                        && self.builds.loaded.get(number).is_some_and(|plugin| {
                            plugin.manifest.activities.contains(&out.work.name)
                        })
                });
            match (local, &self.workers.jobs) {
                (Some((_, plugin)), Some(jobs)) => {
                    let _ = jobs.send(Job::Activity(ActivityJob {
                        work: out.work,
                        delivery: out.delivery,
                        plugin,
                        max_payload: self.limits.max_payload_bytes,
                    }));
                }
                (Some(_), None) => {}
                (None, _) => self.submit_activity(out),
            }
        }
        for instance_id in std::mem::take(&mut self.batch.to_submit) {
            let Some(episode) = self.mirror.remote_episodes.get(&instance_id) else {
                continue;
            };
            let Some(name) = self
                .mirror
                .live
                .get(&instance_id)
                .map(|live| live.record.name.clone())
            else {
                continue;
            };
            let parked = self.remote.hub.submit(Work::Episode {
                name,
                request: episode.request.clone(),
                past: Arc::clone(&episode.past),
            });
            if let Some(parked) = parked {
                self.publish_now(parked_event(parked));
            }
        }
    }

    fn submit_activity(&mut self, out: InFlight) {
        let InFlight { work, delivery } = out;
        self.mirror.remote_work.insert(work_key(&work));
        let started = EngineEvent::ActivityStarted {
            instance_id: work.instance_id.clone(),
            task_id: work.task_id,
            name: work.name.clone(),
        };
        let parked = self.remote.hub.submit(Work::Activity {
            name: work.name,
            input: work.input,
            instance_id: work.instance_id,
            execution_id: work.execution_id,
            task_id: work.task_id,
            attempt: delivery,
        });
        match parked {
            Some(parked) => self.publish_now(parked_event(parked)),
            None => self.publish_now(started),
        }
    }

    /// The hub's news (workers came or went, work was parked), published after this batch. A
    /// worker that connected has its code checked against the instances it can run.
    pub(crate) fn remote_changed(&mut self, events: Vec<EngineEvent>) {
        for event in &events {
            if let EngineEvent::WorkerConnected { id, peer } = event {
                self.probe_connected_worker(*id, peer);
            }
        }
        self.batch.outbox.extend(events);
    }

    /// Records a remote episode's answer. Refused, changing nothing: a token that names no
    /// episode out (stale, or never sent). An answer that breaks history is refused too, and the
    /// instance fails with `InvalidWorkerResponse` instead (a worker that answers so would
    /// answer so again: redelivering it would loop).
    pub(crate) fn accept_remote_episode(
        &mut self,
        token: &str,
        instance_id: &str,
        response: OrchestratorResponse,
    ) -> Result<(), RemoteError> {
        let unknown = || RemoteError::UnknownWork {
            token: token.to_string(),
            instance_id: instance_id.to_string(),
            task_id: None,
        };
        self.remote.hub.take_episode(token, instance_id)?;
        let Some(episode) = self.mirror.remote_episodes.remove(instance_id) else {
            return Err(unknown());
        };
        let current = self.mirror.live.get(instance_id).is_some_and(|live| {
            live.record.execution_id == episode.request.execution_id
                && live.record.history_len == episode.request.history_len
        });
        if !current {
            // History moved on without it (the host recorded something): ask again.
            self.put_back(instance_id, episode.delivered);
            return Err(unknown());
        }
        if let Err(reason) = check_completion(&episode.past, &episode.request.new_events, &response)
        {
            let failure = FailureDetails::new(
                INVALID_WORKER_RESPONSE,
                format!("the worker's answer to an episode breaks history: {reason}"),
            )
            .non_retriable();
            let completed = EventKind::ExecutionCompleted {
                status: RuntimeStatus::Failed,
                result: Value::Null,
                failure: Some(failure.clone()),
            };
            let failed = self
                .record_host_episode(instance_id, episode.delivered, vec![completed])
                .and_then(|()| {
                    self.finish_instance(
                        instance_id,
                        RuntimeStatus::Failed,
                        Value::Null,
                        Some(failure),
                    )
                });
            if let Err(error) = failed {
                self.episode_not_recorded(instance_id, error);
            }
            return Err(RemoteError::InvalidCompletion(reason));
        }
        let response = super::call_outcome(Ok(response));
        let recorded = match self.record_episode(episode, response) {
            Ok(Some(recorded)) => recorded,
            Ok(None) => return Ok(()),
            Err(error) => {
                self.episode_not_recorded(instance_id, error);
                return Ok(());
            }
        };
        if let Err(error) = self.apply_episode(recorded) {
            self.episode_not_recorded(instance_id, error);
        }
        Ok(())
    }

    /// Records a remote activity's outcome, as a worker thread's is recorded.
    pub(crate) fn accept_remote_activity(
        &mut self,
        token: &str,
        instance_id: &str,
        task_id: i32,
        outcome: ActivityOutcome,
    ) -> Result<(), RemoteError> {
        let taken = self.remote.hub.take_activity(token, instance_id, task_id)?;
        let outcome = match outcome {
            ActivityOutcome::Completed { result } => {
                let what = format!("the result of activity '{}' (#{task_id})", taken.name);
                match payload::over_limit(&what, &result, self.limits.max_payload_bytes) {
                    Some(reason) => ActivityOutcome::Failed {
                        failure: FailureDetails::new(payload::PAYLOAD_TOO_LARGE, reason)
                            .non_retriable(),
                    },
                    None => ActivityOutcome::Completed { result },
                }
            }
            failed => failed,
        };
        self.accept_activity_result(ActivityDone {
            instance_id: instance_id.to_string(),
            execution_id: taken.execution_id,
            task_id,
            name: taken.name,
            outcome,
        });
        Ok(())
    }
}

/// What makes an episode's answer break history: an action id used twice in it, or already used
/// by an action in history (except a retry: the official SDKs schedule a retried activity or
/// sub-orchestration again under the id of the attempt that failed); more than one completion of
/// the orchestration.
fn check_completion(
    past: &[durable_sdk::history::HistoryEvent],
    new: &[durable_sdk::history::HistoryEvent],
    response: &OrchestratorResponse,
) -> Result<(), String> {
    use durable_sdk::history::EventKind;
    let history: Vec<&durable_sdk::history::HistoryEvent> = past.iter().chain(new).collect();
    let used: HashSet<i32> = history
        .iter()
        .filter(|event| event.event_id >= 0)
        .map(|event| event.event_id)
        .collect();
    // A call whose last attempt failed may be scheduled again under its id, same kind and name.
    let retriable = |id: i32, kind: &ActionKind| {
        let last_use = history.iter().rposition(|event| event.event_id == id);
        let Some(last_use) = last_use else {
            return false;
        };
        let same_call = match (&history[last_use].kind, kind) {
            (
                EventKind::TaskScheduled { name, .. },
                ActionKind::ScheduleTask { name: again, .. },
            ) => name == again,
            (
                EventKind::SubOrchestrationInstanceCreated { name, .. },
                ActionKind::CreateSubOrchestration { name: again, .. },
            ) => name == again,
            _ => false,
        };
        same_call
            && history[last_use..].iter().any(|event| match &event.kind {
                EventKind::TaskFailed {
                    task_scheduled_id, ..
                }
                | EventKind::SubOrchestrationInstanceFailed {
                    task_scheduled_id, ..
                } => *task_scheduled_id == id,
                _ => false,
            })
    };
    let mut fresh = HashSet::new();
    let mut completions = 0;
    for action in &response.actions {
        if used.contains(&action.id) && !retriable(action.id, &action.kind) {
            return Err(format!(
                "action id {} is already used in history (each action needs the next unused id: a replayed action must not be sent again)",
                action.id
            ));
        }
        if !fresh.insert(action.id) {
            return Err(format!(
                "action id {} appears twice in one answer",
                action.id
            ));
        }
        if matches!(action.kind, ActionKind::CompleteOrchestration { .. }) {
            completions += 1;
        }
    }
    if completions > 1 {
        return Err(format!(
            "the answer completes the orchestration {completions} times; at most once"
        ));
    }
    Ok(())
}
