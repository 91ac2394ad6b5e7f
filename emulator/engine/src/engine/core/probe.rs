//! Replay probes of remote workers' code: the nondeterminism check when a worker connects (what
//! a reload check is for a plugin build), and the request the replay stepper sends for a remote
//! instance (`EngineHandle::probe_remote`).
//!
//! When a worker connects, every non-terminal instance remote workers run, whose orchestration
//! that worker takes and which has no episode out, is probed on that worker: its whole current
//! history in `past_events` and one new `OrchestratorStarted`. Probes are awaited on a
//! background thread (never on the core thread); each answer comes back as a core command. While
//! an instance's probe is out its next episode waits, so a probe never races a real episode, and
//! an answer is judged only if history is still the one probed. A worker that connects while
//! another worker's probe of an instance is out is probed on it once that probe is over. A replay that disagrees with
//! history marks the instance diverged exactly as a reload check does (a [`Divergence`] with
//! build [`REMOTE_CODE`], `InstanceDiverged`, suspended by the host); a clean replay clears an
//! earlier remote divergence. Nothing a probe answers is ever recorded in history.
//!
//! Knows the hub's probe calls and the failure types the official SDKs give a nondeterminism;
//! knows nothing of gRPC.

use super::Core;
use crate::engine::{EngineError, EngineEvent};
use crate::inspect::replay::step_request;
use crate::remote::{PROBE_DEADLINE, REMOTE_CODE, RemoteError, WorkerId};
use crate::store::Divergence;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{
    ActionKind, NonDeterminism, OrchestratorRequest, OrchestratorResponse,
};
use futures::StreamExt as _;

/// Probes awaited at once after a connect: enough to keep a worker busy, few enough that a
/// worker with thousands of instances is not flooded.
const PROBES_AT_ONCE: usize = 16;

/// The failure types the official SDKs complete an orchestration with when its replay disagrees
/// with history (matched on the last segment of the qualified name): durabletask-python
/// (`durabletask.task.NonDeterminismError`) and durabletask-js (`NonDeterminismError`),
/// DurableTask.Core under durabletask-dotnet (`NonDeterministicOrchestrationException`),
/// durabletask-java (`NonDeterministicOrchestratorException`), and this project's SDK
/// (`durable_sdk::NON_DETERMINISM`).
const NONDETERMINISM_TYPES: &[&str] = &[
    "NonDeterminismError",
    "NonDeterministicOrchestrationException",
    "NonDeterministicOrchestratorException",
    durable_sdk::NON_DETERMINISM,
];

/// A reconnect probe out: which probe, and the point of history it asked about.
pub(crate) struct Probing {
    number: u64,
    execution_id: String,
    history_len: usize,
}

/// One probe to send after a connect.
struct ProbeJob {
    number: u64,
    instance_id: String,
    name: String,
    request: OrchestratorRequest,
}

impl Core {
    /// Worker `worker` connected: probe every instance it can check (see the module doc).
    pub(super) fn probe_connected_worker(&mut self, worker: WorkerId, peer: &str) {
        if !self.remote.enabled {
            return;
        }
        let mut ids: Vec<String> = self.mirror.live.keys().cloned().collect();
        ids.sort();
        self.probe_instances(worker, peer, ids);
    }

    /// Probes `ids` (in that order) against worker `worker`'s code, those it can check. One
    /// whose probe for another worker is still out is probed for this one when that is over.
    fn probe_instances(&mut self, worker: WorkerId, peer: &str, ids: Vec<String>) {
        let mut jobs = Vec::new();
        for instance_id in ids {
            if self.remote.probing.contains_key(&instance_id) {
                self.remote
                    .probe_after
                    .entry(instance_id)
                    .or_default()
                    .push((worker, peer.to_string()));
                continue;
            }
            match self.reconnect_probe_job(worker, &instance_id) {
                Ok(Some(job)) => jobs.push(job),
                Ok(None) => {}
                Err(error) => self.warn(
                    Some(&instance_id),
                    format!(
                        "instance {instance_id} is not checked against the code of worker {worker} ({peer}): {error}"
                    ),
                ),
            }
        }
        if jobs.is_empty() {
            return;
        }
        let hub = self.remote.hub.clone();
        let numbers: Vec<(String, u64)> = jobs
            .iter()
            .map(|job| (job.instance_id.clone(), job.number))
            .collect();
        let peer_name = peer.to_string();
        let spawned = std::thread::Builder::new()
            .name("durable-emu-reconnect-probes".into())
            .spawn(move || {
                futures::executor::block_on(futures::stream::iter(jobs).for_each_concurrent(
                    PROBES_AT_ONCE,
                    |job| {
                        let hub = hub.clone();
                        let peer = peer_name.clone();
                        async move {
                            let answer = hub
                                .probe_worker(worker, &job.name, job.request, PROBE_DEADLINE)
                                .await;
                            hub.on_core(move |core| {
                                core.reconnect_probe_answered(
                                    worker,
                                    &peer,
                                    &job.instance_id,
                                    job.number,
                                    answer,
                                );
                            });
                        }
                    },
                ));
            });
        if let Err(error) = spawned {
            for (instance_id, number) in numbers {
                self.end_probe(&instance_id, number);
            }
            self.warn(
                None,
                format!(
                    "running instances are not checked against the code of worker {worker} ({peer}): no thread for the probes ({error})"
                ),
            );
        }
    }

    /// The probe of one instance for a worker that connected, if it is one to check.
    fn reconnect_probe_job(
        &mut self,
        worker: WorkerId,
        instance_id: &str,
    ) -> Result<Option<ProbeJob>, EngineError> {
        let Some(live) = self.mirror.live.get(instance_id) else {
            return Ok(None);
        };
        // Nothing recorded yet: there is nothing to disagree with.
        let checkable = live.record.history_len > 0
            && !self.mirror.remote_episodes.contains_key(instance_id)
            && !self.remote.probing.contains_key(instance_id)
            && self.runs_remotely(instance_id)
            && !self.isolated_on_loaded_build(instance_id)
            && self.remote.hub.worker_runs(worker, &live.record.name);
        if !checkable {
            return Ok(None);
        }
        let name = live.record.name.clone();
        let execution_id = live.record.execution_id.clone();
        let history_len = live.record.history_len;
        let history = self.store.history(instance_id, &execution_id)?;
        let request = self.probe_request(instance_id, &execution_id, &history, history.len());
        self.remote.next_probe += 1;
        let number = self.remote.next_probe;
        self.remote.probing.insert(
            instance_id.to_string(),
            Probing {
                number,
                execution_id,
                history_len,
            },
        );
        Ok(Some(ProbeJob {
            number,
            instance_id: instance_id.to_string(),
            name,
            request,
        }))
    }

    /// A replay probe's request: the first `step` events of history as `past_events` and one new
    /// `OrchestratorStarted` at the engine clock's now (what a real episode starts with).
    fn probe_request(
        &self,
        instance_id: &str,
        execution_id: &str,
        history: &[HistoryEvent],
        step: usize,
    ) -> OrchestratorRequest {
        let mut request = step_request(instance_id, execution_id, history, step);
        request.new_events.push(HistoryEvent {
            event_id: -1,
            timestamp: self.clock.now(),
            kind: EventKind::OrchestratorStarted,
        });
        request
    }

    /// The probe `number` of an instance is over: it stops holding the instance's episodes back.
    fn end_probe(&mut self, instance_id: &str, number: u64) -> Option<Probing> {
        if self
            .remote
            .probing
            .get(instance_id)
            .is_none_or(|probing| probing.number != number)
        {
            return None;
        }
        let probing = self.remote.probing.remove(instance_id);
        self.mark_runnable(instance_id);
        if let Some(waiting) = self.remote.probe_after.remove(instance_id) {
            // A worker gone meanwhile is skipped by the job's own check.
            for (worker, peer) in waiting {
                self.probe_instances(worker, &peer, vec![instance_id.to_string()]);
            }
        }
        probing
    }

    /// A reconnect probe came back (or failed): judge it against the history it was asked about.
    fn reconnect_probe_answered(
        &mut self,
        worker: WorkerId,
        peer: &str,
        instance_id: &str,
        number: u64,
        answer: Result<OrchestratorResponse, RemoteError>,
    ) {
        let Some(probing) = self.end_probe(instance_id, number) else {
            return;
        };
        let response = match answer {
            Ok(response) => response,
            Err(error) => {
                self.warn(
                    Some(instance_id),
                    format!(
                        "instance {instance_id} was not checked against the code of worker {worker} ({peer}): {error}"
                    ),
                );
                return;
            }
        };
        // History moved on (the host recorded something meanwhile): the answer is about a past
        // state and says nothing about the current one.
        let current = self.mirror.live.get(instance_id).is_some_and(|live| {
            live.record.execution_id == probing.execution_id
                && live.record.history_len == probing.history_len
        }) && !self.mirror.remote_episodes.contains_key(instance_id);
        if !current {
            return;
        }
        let judged = match judge(&response) {
            Some((reason, diff)) => {
                self.mark_remote_divergence(worker, peer, instance_id, reason, diff)
            }
            None => self.clear_remote_divergence(instance_id),
        };
        if let Err(error) = judged {
            self.warn(
                Some(instance_id),
                format!(
                    "the check of instance {instance_id} against the code of worker {worker} ({peer}) was not recorded: {error}"
                ),
            );
        }
    }

    /// As a reload check marks an instance a new build does not replay: the divergence on the
    /// record, the events, and a suspension by the host (the new code would fail it otherwise).
    fn mark_remote_divergence(
        &mut self,
        worker: WorkerId,
        peer: &str,
        instance_id: &str,
        reason: String,
        diff: Option<NonDeterminism>,
    ) -> Result<(), EngineError> {
        if !self.mirror.live.contains_key(instance_id) {
            return Ok(());
        }
        let divergence = Divergence {
            build: REMOTE_CODE,
            reason: format!("the code of worker {worker} ({peer}) does not replay it: {reason}"),
            diff,
        };
        self.record_divergence(instance_id, &divergence, None)?;
        self.suspend_by_host(instance_id, divergence.reason)
    }

    /// A clean replay: a divergence an earlier probe found is stale (the code that connected
    /// replays it). As after a reload check that passes, the instance stays suspended until
    /// resumed.
    fn clear_remote_divergence(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        let remote = live
            .record
            .divergence
            .as_ref()
            .is_some_and(|divergence| divergence.build == REMOTE_CODE);
        if remote {
            live.record.divergence = None;
            self.store.put_instance(&live.record)?;
            self.batch.outbox.push(EngineEvent::DivergenceCleared {
                instance_id: instance_id.to_string(),
            });
        }
        Ok(())
    }

    /// Whether a reconnect probe found that the connected code does not replay the instance
    /// (then a terminate is done by the host: that code would fail it instead).
    pub(super) fn remote_diverged(&self, instance_id: &str) -> bool {
        self.mirror.live.get(instance_id).is_some_and(|live| {
            live.record
                .divergence
                .as_ref()
                .is_some_and(|divergence| divergence.build == REMOTE_CODE)
        })
    }

    /// Whether a reconnect probe of the instance is out (its next episode waits for it).
    pub(super) fn probe_out(&self, instance_id: &str) -> bool {
        self.remote.probing.contains_key(instance_id)
    }

    /// The orchestration of an instance and the probe request for its current execution's history
    /// cut after `step` events (all of it: `None`), for `EngineHandle::probe_remote`.
    pub(crate) fn remote_probe_request(
        &self,
        instance_id: &str,
        step: Option<usize>,
    ) -> Result<(String, OrchestratorRequest), EngineError> {
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        let history = self.store.history(instance_id, &record.execution_id)?;
        let step = match step {
            None => history.len(),
            Some(step) if step <= history.len() => step,
            Some(step) => {
                return Err(EngineError::InvalidArgument(format!(
                    "step {step} is past the end of the history of instance '{instance_id}', which has {} events; give a step from 0 to {}",
                    history.len(),
                    history.len()
                )));
            }
        };
        let request = self.probe_request(instance_id, &record.execution_id, &history, step);
        Ok((record.name, request))
    }
}

/// Why a probe's answer disagrees with the history it replayed, if it does: the worker reports a
/// nondeterminism (this project's SDK says so in `nondeterminism`; the official SDKs fail the
/// orchestration with their nondeterminism error type), or the code fails or completes the
/// orchestration. Replaying the history of a running instance with nothing new, the code that
/// recorded it does neither (it did not when it ran), so either means the code changed.
fn judge(response: &OrchestratorResponse) -> Option<(String, Option<NonDeterminism>)> {
    if let Some(diff) = &response.nondeterminism {
        return Some((diff.to_string(), Some(diff.clone())));
    }
    response.actions.iter().find_map(|action| {
        let ActionKind::CompleteOrchestration {
            status, failure, ..
        } = &action.kind
        else {
            return None;
        };
        Some(match (status, failure) {
            (RuntimeStatus::Failed, Some(failure)) if is_nondeterminism(&failure.error_type) => (
                format!(
                    "nondeterminism ({}): {}",
                    failure.error_type, failure.error_message
                ),
                None,
            ),
            (RuntimeStatus::Failed, Some(failure)) => (
                format!(
                    "the code fails replaying this history ({}): {}",
                    failure.error_type, failure.error_message
                ),
                None,
            ),
            (status, _) => (
                format!(
                    "replaying this history the code ends the orchestration ({}), which history has not",
                    status.as_str()
                ),
                None,
            ),
        })
    })
}

/// Whether a failure type is one the SDKs give a nondeterminism (qualified or not).
fn is_nondeterminism(error_type: &str) -> bool {
    let last = error_type
        .rsplit(['.', ':', '+', '$'])
        .next()
        .unwrap_or(error_type);
    NONDETERMINISM_TYPES.contains(&last)
}

impl Core {
    /// For a failed instance that remote workers run (its orchestration is in no loaded build
    /// and a connected worker takes it): the rewind episode to send one of them, as the proto
    /// has it: the failed history, then `OrchestratorStarted` and `ExecutionRewound` as new
    /// events. The worker answers with the history rewritten (`rewound_history`). `None`: the
    /// host rewrites it itself ([`Core::rewind`]). Refusals are the rewind's own.
    pub(crate) fn remote_rewind_request(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<Option<(String, OrchestratorRequest)>, EngineError> {
        let record = self.failed_record(instance_id)?;
        let remote = self.remote.enabled
            && (self.remote.isolated || self.plugin_running(record.build, &record.name).is_none())
            && self.remote.hub.runs_orchestration(&record.name);
        if !remote {
            return Ok(None);
        }
        let past_events = self.store.history(instance_id, &record.execution_id)?;
        let now = self.clock.now();
        let at = |kind| HistoryEvent {
            event_id: -1,
            timestamp: now,
            kind,
        };
        let request = OrchestratorRequest {
            instance_id: instance_id.to_string(),
            execution_id: record.execution_id.clone(),
            history_len: past_events.len(),
            past_events,
            new_events: vec![
                at(EventKind::OrchestratorStarted),
                at(EventKind::ExecutionRewound { reason }),
            ],
            include_replay_logs: false,
            max_actions: None,
        };
        Ok(Some((record.name, request)))
    }

    /// Runs a failed instance on in the history a remote worker rewrote for its rewind: that
    /// history (with the execution id the worker gave its `ExecutionStarted`) becomes the new
    /// execution, re-armed as a host rewrite is ([`Core::install_rewound_execution`]).
    pub(crate) fn install_worker_rewind(
        &mut self,
        instance_id: &str,
        reason: Option<String>,
        history: Vec<HistoryEvent>,
    ) -> Result<(), EngineError> {
        let record = self.failed_record(instance_id)?;
        let execution_id = history
            .iter()
            .find_map(|event| match &event.kind {
                EventKind::ExecutionStarted { execution_id, .. } => Some(execution_id.clone()),
                _ => None,
            })
            .filter(|id| !id.is_empty() && *id != record.execution_id)
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!(
                    "the worker's rewound history of instance '{instance_id}' has no ExecutionStarted with a new execution id"
                ))
            })?;
        let rewound = crate::engine::rewind::analyze(history);
        self.install_rewound_execution(record, execution_id, rewound, None, reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable_sdk::FailureDetails;
    use durable_sdk::protocol::Action;
    use serde_json::Value;

    fn failed_with(error_type: &str) -> OrchestratorResponse {
        OrchestratorResponse {
            needs_history: false,
            actions: vec![Action {
                id: 3,
                kind: ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::Failed,
                    result: Value::Null,
                    failure: Some(FailureDetails::new(error_type, "history mismatch")),
                    carryover_events: Vec::new(),
                },
            }],
            custom_status: None,
            logs: Vec::new(),
            nondeterminism: None,
            warnings: Vec::new(),
            awaited_events: Vec::new(),
            rewound_history: None,
        }
    }

    #[test]
    fn every_official_sdks_nondeterminism_type_is_recognised_qualified_or_not() {
        for error_type in [
            "durabletask.task.NonDeterminismError",
            "NonDeterminismError",
            "DurableTask.Core.Exceptions.NonDeterministicOrchestrationException",
            "com.microsoft.durabletask.NonDeterministicOrchestratorException",
            durable_sdk::NON_DETERMINISM,
        ] {
            let (reason, _) = judge(&failed_with(error_type)).unwrap();
            assert!(
                reason.starts_with("nondeterminism ("),
                "{error_type}: {reason}"
            );
        }
    }

    #[test]
    fn another_failure_replaying_history_is_a_divergence_too_but_not_called_nondeterminism() {
        let (reason, diff) = judge(&failed_with("builtins.ValueError")).unwrap();
        assert!(reason.starts_with("the code fails replaying"), "{reason}");
        assert!(diff.is_none());
    }

    #[test]
    fn an_answer_with_no_completion_replays_cleanly() {
        let mut response = failed_with("x");
        response.actions[0].kind = ActionKind::CreateTimer {
            fire_at: chrono::Utc::now(),
        };
        assert!(judge(&response).is_none());
        response.actions.clear();
        assert!(judge(&response).is_none());
    }
}
