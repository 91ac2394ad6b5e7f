//! Who waits for which instance to end: the core's list of terminal waiters, answered after the
//! commit that made the instance terminal.
//!
//! A waiter belongs to a caller that may stop waiting (a deadline passed, an async task was
//! dropped). Such a waiter is *abandoned*: its answer would go nowhere, so it is dropped rather
//! than kept until the instance ends, which for an instance that waits on an event may be never.
//! Abandoned waiters go when their caller tells the core it left (see `prune`) and whenever a new
//! waiter is added for the same instance. Knows nothing of how callers wait (threads or tasks).

use crate::store::InstanceRecord;
use crossbeam_channel::Sender;
use std::collections::HashMap;
use std::sync::Weak;
use tokio::sync::oneshot;

/// One caller waiting for an instance to end.
#[derive(Debug)]
pub(crate) enum TerminalWaiter {
    /// A thread in `EngineHandle::wait_until_terminal`: it holds the strong end of `caller`
    /// while it waits, since a crossbeam receiver cannot be asked whether it is still there.
    Blocking {
        reply: Sender<InstanceRecord>,
        caller: Weak<()>,
    },
    /// A task awaiting `AsyncEngineHandle::wait_until_terminal`.
    Async(oneshot::Sender<InstanceRecord>),
}

impl TerminalWaiter {
    /// Sends the terminal record; a caller that left is not an error.
    pub(crate) fn answer(self, record: InstanceRecord) {
        match self {
            TerminalWaiter::Blocking { reply, .. } => {
                let _ = reply.send(record);
            }
            TerminalWaiter::Async(reply) => {
                let _ = reply.send(record);
            }
        }
    }

    /// Whether the caller has stopped waiting.
    fn is_abandoned(&self) -> bool {
        match self {
            TerminalWaiter::Blocking { caller, .. } => caller.strong_count() == 0,
            TerminalWaiter::Async(reply) => reply.is_closed(),
        }
    }
}

/// The waiters, by instance id.
#[derive(Debug, Default)]
pub(crate) struct TerminalWaiters {
    by_instance: HashMap<String, Vec<TerminalWaiter>>,
}

impl TerminalWaiters {
    /// Adds a waiter for `instance_id`, dropping the abandoned ones already there.
    pub(crate) fn add(&mut self, instance_id: &str, waiter: TerminalWaiter) {
        let waiters = self.by_instance.entry(instance_id.to_string()).or_default();
        waiters.retain(|waiter| !waiter.is_abandoned());
        waiters.push(waiter);
    }

    /// Every waiter for `instance_id`, to be answered or let go.
    pub(crate) fn take(&mut self, instance_id: &str) -> Vec<TerminalWaiter> {
        self.by_instance.remove(instance_id).unwrap_or_default()
    }

    /// The instances someone waits for.
    pub(crate) fn instance_ids(&self) -> Vec<String> {
        self.by_instance.keys().cloned().collect()
    }

    /// Drops the abandoned waiters of `instance_id` (a caller that left says which instance it
    /// waited for, so this costs the waiters of one instance, not of all).
    pub(crate) fn prune(&mut self, instance_id: &str) {
        if let Some(waiters) = self.by_instance.get_mut(instance_id) {
            waiters.retain(|waiter| !waiter.is_abandoned());
            if waiters.is_empty() {
                self.by_instance.remove(instance_id);
            }
        }
    }

    /// How many waiters are held (abandoned ones not yet pruned included).
    pub(crate) fn len(&self) -> usize {
        self.by_instance.values().map(Vec::len).sum()
    }
}
