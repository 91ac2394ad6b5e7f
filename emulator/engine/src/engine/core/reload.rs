//! Builds on the core: which build runs an instance, adopting a new build, and the check that
//! every running instance still replays on it (the nondeterminism check on every change).
//!
//! An instance runs on the build its last episode ran on until a newer build replays its whole
//! current history cleanly; then it moves. One that does not replay is suspended (by the host,
//! without running either build's code) with a [`Divergence`] carrying the structured diff; the
//! user then resumes it pinned to its old build, restarts it on the new one, or terminates it.

use super::Core;
use crate::engine::{EngineError, EngineEvent};
use crate::plugin::LoadedPlugin;
use crate::store::Divergence;
use durable_sdk::PANIC;
use durable_sdk::ffi::PluginHandle;
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::protocol::{ActionKind, OrchestratorRequest};

impl Core {
    /// The build to run code of an instance on: its own if still loaded, else the active one.
    pub(super) fn plugin_for(&self, build: Option<u32>) -> Option<(u32, PluginHandle)> {
        build
            .filter(|number| self.builds.loaded.contains_key(number))
            .or(self.builds.active)
            .and_then(|number| {
                self.builds
                    .loaded
                    .get(&number)
                    .map(|plugin| (number, plugin.handle))
            })
    }

    /// A loaded build by number, or the active build.
    pub(crate) fn plugin(&self, build: Option<u32>) -> Option<LoadedPlugin> {
        build
            .or(self.builds.active)
            .and_then(|number| self.builds.loaded.get(&number).cloned())
    }

    /// Records a new build (or finds the recorded build with the same content hash: the same
    /// code keeps its number, e.g. across restarts), makes it active, and checks every running
    /// instance against it.
    pub(crate) fn adopt_build(&mut self, plugin: LoadedPlugin) -> Result<u32, EngineError> {
        let now = self.clock.now();
        let number = match self.store.build_with_hash(&plugin.content_hash)? {
            Some(number) => number,
            None => self.store.add_build(
                &plugin.manifest,
                &plugin.content_hash,
                &plugin.origin.to_string(),
                now,
            )?,
        };
        // Any instance may diverge from the active build on the next reload, and by then its
        // library file will have been rebuilt: the copy is taken now.
        let kept = self.builds.kept.as_ref().map(|kept| kept.keep(&plugin));
        if let Some(Err(error)) = kept {
            {
                self.warn(
                    None,
                    format!(
                        "build #{number} from {} is not kept beside the database ({error}); instances pinned to it cannot resume after a restart",
                        plugin.origin
                    ),
                );
            }
        }
        self.builds.sweep_due = true;
        self.batch.outbox.push(EngineEvent::BuildLoaded {
            number,
            build_id: plugin.manifest.build_id.clone(),
            origin: plugin.origin.to_string(),
            orchestrators: plugin.manifest.orchestrators.clone(),
            activities: plugin.manifest.activities.clone(),
        });
        self.builds.loaded.insert(number, plugin);
        self.builds.active = Some(number);
        let mut ids: Vec<String> = self.mirror.live.keys().cloned().collect();
        ids.sort();
        for id in ids {
            self.check_instance_on(&id, number)?;
        }
        Ok(number)
    }

    fn check_instance_on(&mut self, instance_id: &str, number: u32) -> Result<(), EngineError> {
        // Remote workers run it: the new build is not its code (a reconnecting worker's probe
        // is its check). Except the isolated worker: it runs the build loaded here, and is
        // restarted on this one once the check is done.
        if self.remote.enabled
            && self.runs_remotely(instance_id)
            && !self.isolated_on_loaded_build(instance_id)
        {
            return Ok(());
        }
        let Some(live) = self.mirror.live.get(instance_id) else {
            return Ok(());
        };
        let current = live.record.build;
        if current == Some(number) {
            return Ok(());
        }
        let pinned_and_loaded = live.record.pinned
            && current.is_some_and(|build| self.builds.loaded.contains_key(&build));
        if pinned_and_loaded {
            return Ok(());
        }
        let divergence = if live.record.history_len == 0 {
            None
        } else {
            self.replay_on(instance_id, number)?
        };
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        match divergence {
            None => {
                live.record.build = Some(number);
                live.record.pinned = false;
                live.record.divergence = None;
                live.has_session = false;
                self.store.put_instance(&live.record)?;
            }
            Some(divergence) => {
                self.record_divergence(instance_id, &divergence, current)?;
                self.suspend_by_host(
                    instance_id,
                    format!(
                        "build #{number} does not replay this instance: {}",
                        divergence.reason
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// Stores what a replay check found on the instance and tells front ends (the divergence,
    /// and its diff when there is one); the caller suspends the instance.
    pub(super) fn record_divergence(
        &mut self,
        instance_id: &str,
        divergence: &Divergence,
        pinned_build: Option<u32>,
    ) -> Result<(), EngineError> {
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        live.record.divergence = Some(divergence.clone());
        self.store.put_instance(&live.record)?;
        self.batch.outbox.push(EngineEvent::InstanceDiverged {
            instance_id: instance_id.to_string(),
            build: divergence.build,
            pinned_build,
            reason: divergence.reason.clone(),
            diff: divergence.diff.clone(),
        });
        if let Some(diff) = &divergence.diff {
            self.batch.outbox.push(EngineEvent::NonDeterminism {
                instance_id: instance_id.to_string(),
                diff: diff.clone(),
            });
        }
        Ok(())
    }

    /// Replays the instance's current execution on build `number`; `Some` if it diverges.
    fn replay_on(
        &mut self,
        instance_id: &str,
        number: u32,
    ) -> Result<Option<Divergence>, EngineError> {
        let Some(live) = self.mirror.live.get(instance_id) else {
            return Ok(None);
        };
        let Some(plugin) = self.builds.loaded.get(&number) else {
            return Ok(None);
        };
        if !plugin.manifest.orchestrators.contains(&live.record.name) {
            return Ok(Some(Divergence {
                build: number,
                reason: format!(
                    "build #{number} has no orchestration '{}'",
                    live.record.name
                ),
                diff: None,
            }));
        }
        let history = self.store.history(instance_id, &live.record.execution_id)?;
        let request = OrchestratorRequest {
            instance_id: instance_id.to_string(),
            execution_id: live.record.execution_id.clone(),
            history_len: history.len(),
            past_events: history,
            new_events: Vec::new(),
            include_replay_logs: false,
            max_actions: None,
        };
        let response = match self.orchestrate_journaled(plugin.handle, &request) {
            Ok(response) => response,
            Err(error) => {
                return Ok(Some(Divergence {
                    build: number,
                    reason: error.to_string(),
                    diff: None,
                }));
            }
        };
        if let Some(diff) = response.nondeterminism {
            return Ok(Some(Divergence {
                build: number,
                reason: diff.to_string(),
                diff: Some(diff),
            }));
        }
        let panicked = response
            .actions
            .iter()
            .find_map(|action| match &action.kind {
                ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::Failed,
                    failure: Some(failure),
                    ..
                } if failure.error_type == PANIC => Some(failure.clone()),
                _ => None,
            });
        Ok(panicked.map(|failure| Divergence {
            build: number,
            reason: format!(
                "the code panics replaying this history: {}",
                failure.error_message
            ),
            diff: None,
        }))
    }

    /// Suspends an instance without running any code: history gets the suspension as its own
    /// episode, exactly as if the code had processed it (suspension produces no actions).
    pub(super) fn suspend_by_host(
        &mut self,
        instance_id: &str,
        reason: String,
    ) -> Result<(), EngineError> {
        let suspended = self
            .mirror
            .live
            .get(instance_id)
            .is_none_or(|live| live.record.status == RuntimeStatus::Suspended);
        if suspended {
            return Ok(());
        }
        let suspension = EventKind::ExecutionSuspended {
            reason: Some(reason),
        };
        self.record_host_episode(instance_id, Vec::new(), vec![suspension])?;
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        live.record.status = RuntimeStatus::Suspended;
        self.store.put_instance(&live.record)?;
        let custom_status = live.record.custom_status.clone();
        self.batch.outbox.push(EngineEvent::InstanceChanged {
            instance_id: instance_id.to_string(),
            status: RuntimeStatus::Suspended,
            custom_status,
        });
        Ok(())
    }

    /// Resuming an instance a reload check suspended keeps it on its old build (pinned). That
    /// build must be loaded: running it on another would fail it with a nondeterminism, so the
    /// resume is refused instead and changes nothing. Remote workers' code has no build to pin
    /// to: resuming an instance a reconnect probe suspended lets whichever worker connects run
    /// it (the user's call: connect code that replays it first, or let it fail). Under
    /// `--isolate` there is no old build to pin to (the worker runs the active one): refused.
    pub(super) fn pin_if_diverged(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let Some(live) = self.mirror.live.get_mut(instance_id) else {
            return Ok(());
        };
        let Some(divergence) = &live.record.divergence else {
            return Ok(());
        };
        if divergence.build == crate::remote::REMOTE_CODE {
            live.record.divergence = None;
            self.store.put_instance(&live.record)?;
            return Ok(());
        }
        // The isolated worker runs only the active build: pinned to its old one, the instance
        // would be run on the new code and fail with a nondeterminism.
        if self.remote.isolated {
            return Err(EngineError::InvalidArgument(format!(
                "instance '{instance_id}' cannot resume: it is suspended because build #{} does not replay it, and under --isolate the worker runs only the active build; restart it on the active build or terminate it",
                divergence.build
            )));
        }
        if let Some(build) = live
            .record
            .build
            .filter(|build| !self.builds.loaded.contains_key(build))
        {
            return Err(EngineError::BuildNotLoaded {
                instance_id: instance_id.to_string(),
                build,
            });
        }
        if live.record.divergence.take().is_some() {
            live.record.pinned = true;
            self.store.put_instance(&live.record)?;
        }
        Ok(())
    }

    /// Whether the instance diverged from the active build and its own build is not loaded, so
    /// no loaded code can run it.
    pub(super) fn diverged_from_missing_build(&self, instance_id: &str) -> bool {
        self.mirror.live.get(instance_id).is_some_and(|live| {
            live.record.divergence.is_some()
                && live
                    .record
                    .build
                    .is_some_and(|build| !self.builds.loaded.contains_key(&build))
        })
    }

    /// Whether a reload check found the instance not replaying on a newer build.
    pub(super) fn is_diverged(&self, instance_id: &str) -> bool {
        self.mirror
            .live
            .get(instance_id)
            .is_some_and(|live| live.record.divergence.is_some())
    }

    /// On start, before the new build is adopted: loads the kept copy of every build a live
    /// instance is on (other than the code being started, `starting_hash`), under its recorded
    /// number, so that pinned instances run on it and diverged ones can still be pinned to it.
    pub(super) fn load_kept_builds(&mut self, starting_hash: &str) -> Result<(), EngineError> {
        let Some(kept) = &self.builds.kept else {
            return Ok(());
        };
        let wanted: std::collections::BTreeSet<u32> = self
            .mirror
            .live
            .values()
            .filter_map(|live| live.record.build)
            .filter(|build| !self.builds.loaded.contains_key(build))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let mut warnings = Vec::new();
        for record in self.store.builds()? {
            if !wanted.contains(&record.number) || record.content_hash == starting_hash {
                continue;
            }
            match kept.load(&record.content_hash) {
                Some(Ok(plugin)) => {
                    self.builds.loaded.insert(record.number, plugin);
                }
                Some(Err(error)) => warnings.push(format!(
                    "build #{} cannot be loaded again: {error}; instances pinned to it cannot resume",
                    record.number
                )),
                // Built in, or its copy was never made or was removed: instances on it are
                // checked against the new build like any other.
                None => {}
            }
        }
        for warning in warnings {
            self.warn(None, warning);
        }
        Ok(())
    }

    /// Removes kept library copies no live instance is on and that are not the active build.
    pub(super) fn sweep_kept_builds(&mut self) {
        let Some(kept) = &self.builds.kept else {
            return;
        };
        let mut numbers: std::collections::HashSet<u32> = self
            .mirror
            .live
            .values()
            .filter_map(|live| live.record.build)
            .collect();
        numbers.extend(self.builds.active);
        let needed = match self.store.builds() {
            Ok(records) => records
                .into_iter()
                .filter(|record| numbers.contains(&record.number))
                .map(|record| record.content_hash)
                .collect(),
            // Without knowing which copies are needed, none is removed.
            Err(_) => return,
        };
        let swept = kept.sweep(&needed);
        if let Err(error) = swept {
            self.warn(
                None,
                format!("cannot remove library copies no instance needs: {error}"),
            );
        }
    }
}
