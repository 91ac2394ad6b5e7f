//! The async door: the engine's commands for front ends that run on an async runtime (a gRPC or
//! HTTP server), which must never block a runtime thread.
//!
//! [`EngineHandle::asynchronous`] gives an [`AsyncEngineHandle`], a view with the same method
//! names as the handle (no `_async` suffixes), each an `async fn`. Each sends the same
//! `CoreMessage::Call` the blocking call sends (built by the same `core_call`, so a command is
//! answered after its batch commits, and with `StoreFailed` if the batch did not), but the
//! answer comes on a `tokio::sync::oneshot` that the task awaits. Nothing here blocks: the
//! command channel is unbounded (a send never waits), and no crossbeam receive or lock is taken.
//! The library needs only tokio's `sync` feature, so the futures run on any executor.
//!
//! Deadlines belong to the caller. Dropping one of these futures abandons the answer (the
//! command, once queued, is still carried out, as with the blocking `*_within` calls), so
//! `tokio::time::timeout` around a call is its deadline; [`EngineHandle::running_episode`] says
//! what keeps the core busy. [`AsyncEngineHandle::wait_until_terminal`] takes the deadline as
//! a future (`tokio::time::sleep_until(at)` on tokio) and answers `Ok(None)` when it passes, like
//! the blocking wait. A wait that ends without an answer (deadline, or the task dropped) tells the
//! core, which drops every abandoned waiter of that instance, so waits on an instance that never
//! ends do not pile up in the core.
//!
//! Events: [`AsyncEngineHandle::events`] is the engine's broadcast behind [`EventStream`]. Each
//! client has its own bounded ring; the core's send never waits for a client, and a client that
//! falls behind is told to reload ([`Delivery::Reload`]) instead of slowing anything down. The
//! lossless sink (`Engine::start_with_sink`) is for one trusted local reader and is not offered
//! here, nor is `announce`, which sends into that sink and may block.
//!
//! Knows nothing of HTTP or gRPC; `wire.rs` says how errors map to their statuses.

use super::core::TerminalWaiter;
use super::{
    CoreMessage, EngineError, EngineEvent, EngineHandle, ExecutionHistory, RunningEpisode,
    core_call,
};
use crate::faults::{FaultRule, Occurrence, RuleState};
use crate::plugin::LoadedPlugin;
use crate::store::{BuildRecord, InstanceRecord, TimerRow};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;
use tokio::sync::{broadcast, oneshot};

impl EngineHandle {
    /// The same engine, with commands that are awaited instead of blocking.
    pub fn asynchronous(&self) -> AsyncEngineHandle {
        AsyncEngineHandle {
            handle: self.clone(),
        }
    }

    /// Tells the core that a wait for `instance_id` was given up, so it drops the waiters whose
    /// callers are gone. Never blocks (the command channel is unbounded); a stopped core holds
    /// no waiters, so a failed send needs nothing.
    pub(super) fn abandon_terminal_wait(&self, instance_id: &str) {
        let instance_id = instance_id.to_string();
        let prune = core_call(
            move |core| {
                core.prune_terminal_waiters(&instance_id);
                Ok(())
            },
            |_: Result<(), EngineError>| {},
        );
        let _ = self.commands.send(CoreMessage::Call(prune));
    }
}

/// The engine's commands as `async fn`s (see the module doc). Cheap to clone; its futures are
/// `Send`, so they can be spawned.
#[derive(Debug, Clone)]
pub struct AsyncEngineHandle {
    handle: EngineHandle,
}

/// What an [`EventStream`] hands out.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// The next event.
    Event(EngineEvent),
    /// This client fell behind and `missed` events were dropped for it; what it shows is stale
    /// and must be read again from the engine. Later events follow.
    Reload {
        /// How many events were dropped.
        missed: u64,
    },
}

/// A client's subscription to engine events: bounded, and never able to hold the engine back.
#[derive(Debug)]
pub struct EventStream {
    events: broadcast::Receiver<EngineEvent>,
}

impl EventStream {
    /// The next event, or a request to reload; `None` once the engine has stopped and every
    /// event before that was handed out.
    pub async fn next(&mut self) -> Option<Delivery> {
        match self.events.recv().await {
            Ok(event) => Some(Delivery::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Delivery::Reload { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

/// Sends the abandonment notice when a terminal wait ends without its answer, after dropping
/// the receiver (so the core, whenever it reads the notice, sees the waiter as abandoned).
struct PendingWait<'a> {
    handle: &'a EngineHandle,
    instance_id: &'a str,
    done: Option<oneshot::Receiver<InstanceRecord>>,
    answered: bool,
}

impl Drop for PendingWait<'_> {
    fn drop(&mut self) {
        drop(self.done.take());
        if !self.answered {
            self.handle.abandon_terminal_wait(self.instance_id);
        }
    }
}

impl AsyncEngineHandle {
    /// Where remote workers connect (the same hub as [`EngineHandle::remote_hub`]).
    pub fn remote_hub(&self) -> crate::remote::RemoteHub {
        self.handle.remote_hub()
    }
}

impl AsyncEngineHandle {
    /// Runs `f` on the core thread; resolves once its batch has committed.
    async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut super::core::Core) -> Result<R, EngineError> + Send + 'static,
    ) -> Result<R, EngineError> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let call = core_call(f, move |answer| {
            // The caller may have dropped its future: the answer then goes nowhere.
            let _ = reply_tx.send(answer);
        });
        self.handle
            .commands
            .send(CoreMessage::Call(call))
            .map_err(|_| self.handle.stopped())?;
        reply_rx.await.map_err(|_| self.handle.stopped())?
    }

    /// The blocking handle this view belongs to.
    pub fn blocking(&self) -> &EngineHandle {
        &self.handle
    }

    /// The orchestration episode the core is inside right now, if any (answered without the
    /// core, so it works while an episode that never yields holds it).
    pub fn running_episode(&self) -> Option<RunningEpisode> {
        self.handle.running_episode()
    }

    /// Subscribes to engine events from now on.
    pub fn events(&self) -> EventStream {
        EventStream {
            events: self.handle.subscribe(),
        }
    }

    /// Starts an instance of orchestration `name`; returns its instance id.
    pub async fn start_orchestration(
        &self,
        name: &str,
        input: Value,
        instance_id: Option<String>,
    ) -> Result<String, EngineError> {
        let name = name.to_string();
        self.call(move |core| {
            core.start_instance(&name, input, instance_id, None, Occurrence::FIRST)
        })
        .await
    }

    /// Raises an external event on an instance.
    pub async fn raise_event(
        &self,
        instance_id: &str,
        name: &str,
        data: Value,
    ) -> Result<(), EngineError> {
        let (instance_id, name) = (instance_id.to_string(), name.to_string());
        self.call(move |core| core.raise_event(&instance_id, &name, data))
            .await
    }

    /// Terminates an instance (and, with `recursive`, its running sub-orchestrations).
    pub async fn terminate(
        &self,
        instance_id: &str,
        reason: Value,
        recursive: bool,
    ) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.terminate(&instance_id, reason, recursive))
            .await
    }

    /// Suspends an instance: only resume and terminate are processed until it resumes.
    pub async fn suspend(
        &self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.suspend(&instance_id, reason))
            .await
    }

    /// Resumes a suspended instance.
    pub async fn resume(
        &self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.resume(&instance_id, reason))
            .await
    }

    /// Deletes a terminal instance and all its history; returns whether it existed.
    pub async fn purge(&self, instance_id: &str) -> Result<bool, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.purge(&instance_id)).await
    }

    /// Starts a new instance of the same orchestration with the same input; returns its id.
    pub async fn restart(&self, instance_id: &str) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.restart(&instance_id)).await
    }

    /// Moves virtual time forward as if it passed, stepping through the timers on the way
    /// ([`EngineHandle::advance_clock`]); returns the time the advance ends at.
    pub async fn advance_clock(&self, by: Duration) -> Result<DateTime<Utc>, EngineError> {
        self.call(move |core| core.advance_clock(by)).await
    }

    /// Moves virtual time to the next pending timer ([`EngineHandle::advance_to_next_timer`]);
    /// returns that time, or None if no timer is pending.
    pub async fn advance_to_next_timer(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.call(|core| core.advance_to_next_timer()).await
    }

    /// Where an advance under way is taking virtual time, or None once it got there.
    pub async fn advancing_to(&self) -> Result<Option<DateTime<Utc>>, EngineError> {
        self.call(|core| Ok(core.advancing_to())).await
    }

    /// Turns auto-skip on or off.
    pub async fn set_auto_skip(&self, on: bool) -> Result<(), EngineError> {
        self.call(move |core| {
            core.set_auto_skip(on);
            Ok(())
        })
        .await
    }

    /// The clock's now.
    pub async fn now(&self) -> Result<DateTime<Utc>, EngineError> {
        self.call(|core| Ok(core.now())).await
    }

    /// Pending timers, soonest first.
    pub async fn pending_timers(&self) -> Result<Vec<TimerRow>, EngineError> {
        self.call(|core| Ok(core.pending_timers())).await
    }

    /// One instance.
    pub async fn instance(&self, instance_id: &str) -> Result<Option<InstanceRecord>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.instance(&instance_id)).await
    }

    /// Every instance, newest first.
    pub async fn instances(&self) -> Result<Vec<InstanceRecord>, EngineError> {
        self.call(|core| core.instances()).await
    }

    /// Every execution's history of an instance, oldest execution first.
    pub async fn history(&self, instance_id: &str) -> Result<Vec<ExecutionHistory>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.history(&instance_id)).await
    }

    /// Resolves with the instance's record once it is terminal (at once if it already is), or
    /// `Ok(None)` when `deadline` completes first. The deadline is any future, so the library
    /// needs no timer of its own: on tokio, `tokio::time::sleep_until(at)`. The deadline covers
    /// reaching the core too, so a core stuck in a plugin call cannot hold the caller past it.
    pub async fn wait_until_terminal(
        &self,
        instance_id: &str,
        deadline: impl Future<Output = ()>,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        let (done_tx, done_rx) = oneshot::channel();
        let mut pending = PendingWait {
            handle: &self.handle,
            instance_id,
            done: Some(done_rx),
            answered: false,
        };
        let id = instance_id.to_string();
        let mut registration =
            pin!(self.call(move |core| {
                core.notify_when_terminal(&id, TerminalWaiter::Async(done_tx))
            }));
        let mut registered = false;
        let mut deadline = pin!(deadline);
        poll_fn(|cx| {
            // The answer is looked at before the deadline, so one that is ready wins.
            if !registered {
                match registration.as_mut().poll(cx) {
                    Poll::Ready(Ok(())) => registered = true,
                    Poll::Ready(Err(error)) => {
                        // No waiter was registered: nothing for the core to drop.
                        pending.answered = true;
                        return Poll::Ready(Err(error));
                    }
                    Poll::Pending => {}
                }
            }
            if let (true, Some(done)) = (registered, pending.done.as_mut()) {
                match Pin::new(done).poll(cx) {
                    Poll::Ready(Ok(record)) => {
                        pending.answered = true;
                        return Poll::Ready(Ok(Some(record)));
                    }
                    Poll::Ready(Err(_)) => {
                        // The core let the waiter go unanswered: it stopped, or (after a store
                        // failure) the instance's start was rolled back.
                        pending.answered = true;
                        return Poll::Ready(Err(self.handle.stopped()));
                    }
                    Poll::Pending => {}
                }
            }
            deadline.as_mut().poll(cx).map(|()| Ok(None))
        })
        .await
    }

    /// Makes `plugin` the active build and checks every running instance against it; returns
    /// its number.
    pub async fn load_build(&self, plugin: LoadedPlugin) -> Result<u32, EngineError> {
        self.call(move |core| core.adopt_build(plugin)).await
    }

    /// Every build recorded in the database, oldest first.
    pub async fn builds(&self) -> Result<Vec<BuildRecord>, EngineError> {
        self.call(|core| core.builds()).await
    }

    /// The number of the active build, if any.
    pub async fn active_build(&self) -> Result<Option<u32>, EngineError> {
        self.call(|core| Ok(core.active_build())).await
    }

    /// Adds a fault rule (enabled); returns its id.
    pub async fn add_fault(&self, rule: FaultRule) -> Result<u32, EngineError> {
        self.call(move |core| Ok(core.add_fault(rule))).await
    }

    /// Every fault rule with its switch and counters.
    pub async fn faults(&self) -> Result<Vec<RuleState>, EngineError> {
        self.call(|core| Ok(core.faults())).await
    }

    /// Turns a fault rule on or off.
    pub async fn set_fault_enabled(&self, id: u32, enabled: bool) -> Result<(), EngineError> {
        self.call(move |core| core.set_fault_enabled(id, enabled))
            .await
    }

    /// Removes a fault rule.
    pub async fn remove_fault(&self, id: u32) -> Result<(), EngineError> {
        self.call(move |core| core.remove_fault(id)).await
    }

    /// Forks an instance at a step of its current execution, optionally editing the next
    /// completion; returns the fork's id (see [`EngineHandle::fork`]).
    pub async fn fork(
        &self,
        instance_id: &str,
        step: usize,
        edit: Option<crate::inspect::replay::CompletionEdit>,
    ) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.fork(&instance_id, step, edit.as_ref()))
            .await
    }

    /// Re-creates an instance from an export (its histories and state); returns its id.
    pub async fn import(
        &self,
        export: crate::export::InstanceExport,
    ) -> Result<String, EngineError> {
        self.call(move |core| core.import(export)).await
    }

    /// How many terminal waiters the core holds, for tests that check abandoned waits are let
    /// go. Not part of the engine's interface.
    #[doc(hidden)]
    pub async fn terminal_waiters_held(&self) -> Result<usize, EngineError> {
        self.call(|core| Ok(core.terminal_waiter_count())).await
    }
}

// ----- client features (appended; docs/semantics.md#clients) -----------------------------------

/// `future`'s output, or None if `deadline` completes first (the output is looked at first, so
/// one that is ready wins).
async fn before<F: Future, D: Future<Output = ()>>(
    future: F,
    mut deadline: Pin<&mut D>,
) -> Option<F::Output> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

impl AsyncEngineHandle {
    /// Starts an instance with a client's options ([`EngineHandle::start_with`]); returns its id.
    pub async fn start_with(
        &self,
        name: &str,
        input: Value,
        options: super::StartOptions,
    ) -> Result<String, EngineError> {
        let name = name.to_string();
        self.call(move |core| core.start_with(&name, input, options))
            .await
    }

    /// Resolves with the instance's record once it has started (its status is no longer
    /// Pending; at once if it already is), or `Ok(None)` when `deadline` completes first. An
    /// unknown id is [`EngineError::InstanceNotFound`]. Nothing is registered in the core: the
    /// wait reads the instance again whenever an event says it changed.
    pub async fn wait_until_started(
        &self,
        instance_id: &str,
        deadline: impl Future<Output = ()>,
    ) -> Result<Option<InstanceRecord>, EngineError> {
        // Subscribed before the first read, so a start between the two is not missed.
        let mut events = self.handle.subscribe();
        let mut deadline = pin!(deadline);
        loop {
            let Some(record) = before(self.instance(instance_id), deadline.as_mut()).await else {
                return Ok(None);
            };
            match record? {
                None => return Err(EngineError::InstanceNotFound(instance_id.to_string())),
                Some(record) if record.status != durable_sdk::history::RuntimeStatus::Pending => {
                    return Ok(Some(record));
                }
                Some(_) => {}
            }
            loop {
                let Some(received) = before(events.recv(), deadline.as_mut()).await else {
                    return Ok(None);
                };
                match received {
                    Ok(EngineEvent::InstanceChanged {
                        instance_id: id, ..
                    }) if id == instance_id => {
                        break;
                    }
                    Ok(_) => {}
                    // Events were missed: one of them may have been this start.
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => return Err(self.handle.stopped()),
                }
            }
        }
    }

    /// One page of the instances `query` matches, and the next page's token
    /// ([`EngineHandle::query`]).
    pub async fn query(
        &self,
        query: super::InstanceQuery,
    ) -> Result<(Vec<InstanceRecord>, Option<String>), EngineError> {
        self.call(move |core| core.query(&query)).await
    }

    /// One page of ended instances' ids and the next page's key
    /// ([`EngineHandle::list_instance_ids`]).
    pub async fn list_instance_ids(
        &self,
        query: super::InstanceIdsQuery,
    ) -> Result<(Vec<String>, Option<String>), EngineError> {
        self.call(move |core| core.list_instance_ids(&query)).await
    }

    /// Deletes an ended instance (with `recursive`, its ended sub-orchestrations too); returns
    /// how many were deleted ([`EngineHandle::purge_recursive`]).
    pub async fn purge_recursive(
        &self,
        instance_id: &str,
        recursive: bool,
    ) -> Result<usize, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.purge_tree(&instance_id, recursive))
            .await
    }

    /// Deletes every ended instance `filter` matches; returns how many were deleted
    /// ([`EngineHandle::purge_where`]).
    pub async fn purge_where(
        &self,
        filter: super::PurgeFilter,
        recursive: bool,
    ) -> Result<usize, EngineError> {
        self.call(move |core| core.purge_where(&filter, recursive))
            .await
    }

    /// Starts the instance's orchestration again under a new id or its own
    /// ([`EngineHandle::restart_as`]); returns the id.
    pub async fn restart_as(
        &self,
        instance_id: &str,
        new_instance_id: bool,
    ) -> Result<String, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.restart_as(&instance_id, new_instance_id))
            .await
    }

    /// Rewinds a failed instance ([`EngineHandle::rewind`]).
    pub async fn rewind(
        &self,
        instance_id: &str,
        reason: Option<String>,
    ) -> Result<(), EngineError> {
        let id = instance_id.to_string();
        let asked = reason.clone();
        let remote = self
            .call(move |core| core.remote_rewind_request(&id, asked))
            .await?;
        if let Some((name, request)) = remote {
            let hub = self.handle.remote_hub();
            // A worker that does not rewrite (an SDK without rewind) leaves it to the host.
            if let Ok(answer) = hub
                .probe(&name, request, crate::remote::PROBE_DEADLINE)
                .await
            {
                if let Some(history) = answer.rewound_history {
                    let id = instance_id.to_string();
                    return self
                        .call(move |core| core.install_worker_rewind(&id, reason, history))
                        .await;
                }
            }
        }
        let instance_id = instance_id.to_string();
        self.call(move |core| core.rewind(&instance_id, reason))
            .await
    }

    /// The replay stepper for an instance remote workers run ([`EngineHandle::probe_remote`]):
    /// the worker's answer to the history cut after `step` events; nothing is recorded.
    pub async fn probe_remote(
        &self,
        instance_id: &str,
        step: Option<usize>,
    ) -> Result<durable_sdk::protocol::OrchestratorResponse, crate::remote::RemoteError> {
        let id = instance_id.to_string();
        let (name, request) = self
            .call(move |core| core.remote_probe_request(&id, step))
            .await?;
        self.handle
            .remote_hub()
            .probe(&name, request, crate::remote::PROBE_DEADLINE)
            .await
    }

    /// Sends a one-way operation to an entity (at `scheduled_time` when set); returns the request
    /// id ([`EngineHandle::signal_entity`]).
    pub async fn signal_entity(
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
        .await
    }

    /// One entity ([`EngineHandle::entity`]).
    pub async fn entity(
        &self,
        instance_id: &str,
        include_state: bool,
    ) -> Result<Option<super::EntityMetadata>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.entity_metadata(&instance_id, include_state))
            .await
    }

    /// One page of entities and the next page's token ([`EngineHandle::entities`]).
    pub async fn entities(
        &self,
        query: super::EntityQuery,
    ) -> Result<(Vec<super::EntityMetadata>, Option<String>), EngineError> {
        self.call(move |core| core.query_entities(&query)).await
    }

    /// An entity's operation log ([`EngineHandle::entity_operations`]).
    pub async fn entity_operations(
        &self,
        instance_id: &str,
        limit: usize,
    ) -> Result<Vec<super::EntityOperationRecord>, EngineError> {
        let instance_id = instance_id.to_string();
        self.call(move |core| core.entity_operations(&instance_id, limit))
            .await
    }

    /// Removes empty entities and/or releases orphaned locks ([`EngineHandle::clean_entity_storage`]).
    pub async fn clean_entity_storage(
        &self,
        remove_empty_entities: bool,
        release_orphaned_locks: bool,
    ) -> Result<super::CleanedEntities, EngineError> {
        self.call(move |core| {
            core.clean_entity_storage(remove_empty_entities, release_orphaned_locks)
        })
        .await
    }
}
