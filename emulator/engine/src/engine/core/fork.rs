//! Forking on the core: a new instance whose history is a prefix of another instance's current
//! execution, optionally with the next completion edited, resumed from there by the engine.
//!
//! The plan and the fork's history are pure (`crate::inspect::replay`); this module supplies what
//! they need from the core (the source's record and history, the clock, a free id, the build that
//! recorded the source) and runs the cut episode through that build as an episode would run, then
//! imports the result. It knows nothing of who asked (a UI, a server).

use super::{Core, call_outcome};
use crate::engine::EngineError;
use crate::inspect::replay::{CompletionEdit, fork_export, plan_fork};

impl Core {
    /// Forks `instance_id`'s current execution after its first `step` events (editing the next
    /// completion if `edit` is given); returns the fork's id, `<instance_id>-fork<N>`.
    pub(crate) fn fork(
        &mut self,
        instance_id: &str,
        step: usize,
        edit: Option<&CompletionEdit>,
    ) -> Result<String, EngineError> {
        let record = self
            .store
            .instance(instance_id)?
            .ok_or_else(|| EngineError::InstanceNotFound(instance_id.to_string()))?;
        let histories = self.history(instance_id)?;
        let events = histories
            .iter()
            .find(|history| history.execution.execution_id == record.execution_id)
            .or(histories.last())
            .map(|history| history.events.as_slice())
            .unwrap_or_default();
        if step > events.len() {
            return Err(EngineError::InvalidArgument(format!(
                "step {step} is past the end of instance '{instance_id}': its current execution has {} events; fork at a step from 0 to {}",
                events.len(),
                events.len()
            )));
        }
        let fork_id = self.free_fork_id(instance_id)?;
        let now = self.clock.now();
        let plan = plan_fork(instance_id, events, step, edit, now, fork_id).map_err(|why| {
            EngineError::InvalidArgument(format!("cannot fork {instance_id} at step {step}: {why}"))
        })?;
        let response = match plan.episode() {
            None => None,
            Some(mut request) => {
                let (_, plugin) = self.plugin_for(record.build).ok_or(EngineError::NoPlugin)?;
                request.max_actions = Some(self.limits.max_actions_per_episode);
                // As in an episode, a failure at the boundary fails the fork's orchestration
                // visibly rather than refusing the fork.
                Some(call_outcome(self.while_running(
                    &plan.instance_id,
                    plan.name.clone(),
                    || plugin.orchestrate(&request),
                )))
            }
        };
        let export = fork_export(&plan, response.as_ref(), now).map_err(|why| {
            EngineError::InvalidArgument(format!("cannot fork {instance_id} at step {step}: {why}"))
        })?;
        self.import(export)
    }

    /// `<instance_id>-fork<N>`: N one more than the forks of it so far, or the next id free
    /// after that (a purged fork leaves a gap, a kept one is never reused).
    fn free_fork_id(&self, instance_id: &str) -> Result<String, EngineError> {
        let prefix = format!("{instance_id}-fork");
        let forks = self
            .store
            .instance_listing()?
            .instances
            .iter()
            .filter(|instance| instance.instance_id.starts_with(&prefix))
            .count();
        let mut number = forks + 1;
        loop {
            let candidate = format!("{prefix}{number}");
            if !self.mirror.live.contains_key(&candidate)
                && self.store.instance(&candidate)?.is_none()
            {
                return Ok(candidate);
            }
            number += 1;
        }
    }
}
