//! Durable tasks: the futures an orchestrator awaits, and the combinators over them
//! (docs/semantics.md#combinators).
//!
//! A durable task is a slot the executor fills when history says the work finished; awaiting it
//! never does I/O. Owns [`DurableTask`], [`TaskHandle`], [`when_all`] and [`when_any`]. Knows
//! nothing of history: the executor resolves slots, the context creates them.

use crate::failure::{FailureDetails, SERIALIZATION, TaskError, TaskKind};
use futures::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// What a slot is waiting for; used to name the task in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TaskLabel {
    pub kind: TaskKind,
    pub name: String,
    pub id: i32,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub label: TaskLabel,
    outcome: Option<Result<Value, TaskError>>,
    /// Order in which slots were resolved, for `when_any` ties and `when_all`'s first failure.
    arrival: u64,
    consumed: bool,
    wakers: Vec<Waker>,
}

pub(crate) type SlotRef = Rc<RefCell<Slot>>;

pub(crate) fn new_slot(label: TaskLabel) -> SlotRef {
    Rc::new(RefCell::new(Slot {
        label,
        outcome: None,
        arrival: 0,
        consumed: false,
        wakers: Vec::new(),
    }))
}

/// Fills a slot and wakes whoever polled it. A slot is resolved at most once; later calls are
/// ignored (a duplicate completion in history must not change what the code already saw).
pub(crate) fn resolve(slot: &SlotRef, outcome: Result<Value, FailureDetails>, arrival: u64) {
    let wakers = {
        let mut slot = slot.borrow_mut();
        if slot.outcome.is_some() || slot.consumed {
            return;
        }
        let label = slot.label.clone();
        slot.outcome = Some(outcome.map_err(|failure| TaskError {
            kind: label.kind,
            name: label.name,
            task_id: label.id,
            failure,
        }));
        slot.arrival = arrival;
        std::mem::take(&mut slot.wakers)
    };
    for waker in wakers {
        waker.wake();
    }
}

/// Resolves a slot with an already-built task error (used when a composite task forwards the
/// error of its last attempt unchanged).
pub(crate) fn resolve_with(slot: &SlotRef, outcome: Result<Value, TaskError>, arrival: u64) {
    let wakers = {
        let mut slot = slot.borrow_mut();
        if slot.outcome.is_some() || slot.consumed {
            return;
        }
        slot.outcome = Some(outcome);
        slot.arrival = arrival;
        std::mem::take(&mut slot.wakers)
    };
    for waker in wakers {
        waker.wake();
    }
}

fn register_waker(slot: &mut Slot, waker: &Waker) {
    if !slot.wakers.iter().any(|known| known.will_wake(waker)) {
        slot.wakers.push(waker.clone());
    }
}

/// Polls a slot for its raw outcome, taking it.
pub(crate) fn poll_raw(slot: &SlotRef, cx: &mut Context<'_>) -> Poll<Result<Value, TaskError>> {
    let mut slot = slot.borrow_mut();
    match slot.outcome.take() {
        Some(outcome) => {
            slot.consumed = true;
            Poll::Ready(outcome)
        }
        None => {
            register_waker(&mut slot, cx.waker());
            Poll::Pending
        }
    }
}

/// A durable call in flight: an activity, timer, sub-orchestration or external-event wait.
///
/// The work is scheduled when the call is made, not when the task is awaited, so
/// `let a = ctx.call_activity(..); let b = ctx.call_activity(..);` runs `a` and `b` in parallel
/// and gives them sequence ids in call order. Awaiting yields the decoded result or a
/// [`TaskError`] naming the task.
#[must_use = "a durable task does nothing visible unless awaited (the work is already scheduled)"]
pub struct DurableTask<T> {
    slot: SlotRef,
    _result: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for DurableTask<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.slot.borrow();
        f.debug_struct("DurableTask")
            .field("kind", &slot.label.kind)
            .field("name", &slot.label.name)
            .field("id", &slot.label.id)
            .field("completed", &slot.outcome.is_some())
            .finish()
    }
}

impl<T> DurableTask<T> {
    pub(crate) fn from_slot(slot: SlotRef) -> Self {
        Self {
            slot,
            _result: PhantomData,
        }
    }

    pub(crate) fn slot(&self) -> &SlotRef {
        &self.slot
    }

    /// A type-erased handle for [`when_any`].
    pub fn handle(&self) -> TaskHandle {
        TaskHandle {
            slot: Rc::clone(&self.slot),
        }
    }

    /// Whether the task has finished (successfully or not) and has not been awaited yet.
    pub fn is_completed(&self) -> bool {
        self.slot.borrow().outcome.is_some()
    }

    /// The sequence id of the durable call (-1 for external-event waits, which take none).
    pub fn task_id(&self) -> i32 {
        self.slot.borrow().label.id
    }
}

impl<T: DeserializeOwned> Future for DurableTask<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        poll_raw(&self.slot, cx).map(|outcome| {
            outcome.and_then(|value| {
                serde_json::from_value(value).map_err(|error| {
                    let label = self.slot.borrow().label.clone();
                    TaskError {
                        kind: label.kind,
                        name: label.name,
                        task_id: label.id,
                        failure: FailureDetails::new(
                            SERIALIZATION,
                            format!(
                                "the result does not decode as {}: {error}",
                                std::any::type_name::<T>()
                            ),
                        ),
                    }
                })
            })
        })
    }
}

/// A type-erased reference to a [`DurableTask`], so tasks of different result types can race in
/// [`when_any`].
#[derive(Clone)]
pub struct TaskHandle {
    slot: SlotRef,
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slot = self.slot.borrow();
        f.debug_struct("TaskHandle")
            .field("kind", &slot.label.kind)
            .field("id", &slot.label.id)
            .finish()
    }
}

/// Waits for every task; see [`when_all`].
#[must_use = "futures do nothing unless awaited"]
pub struct WhenAll<T> {
    pending: FuturesUnordered<IndexedTask<T>>,
    results: Vec<Option<T>>,
    /// The failure that arrived first so far, with its arrival number.
    first_failure: Option<(u64, TaskError)>,
}

/// Tags a task's result with its position in the `when_all` input and its arrival number.
type IndexTag<T> = Box<dyn FnOnce(Result<T, TaskError>) -> (usize, u64, Result<T, TaskError>)>;
type IndexedTask<T> = futures::future::Map<DurableTask<T>, IndexTag<T>>;

// Nothing in a WhenAll is pinned structurally: results sit in a Vec and the tasks are Unpin.
impl<T> Unpin for WhenAll<T> {}

impl<T> std::fmt::Debug for WhenAll<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhenAll")
            .field("pending", &self.pending.len())
            .field("total", &self.results.len())
            .finish()
    }
}

/// Fan-in: waits for all tasks and returns their results in input order. If any failed, it fails
/// with the first failure to arrive, but only after every task has finished
/// (docs/semantics.md#combinators, the .NET behaviour).
pub fn when_all<T: DeserializeOwned + 'static>(
    tasks: impl IntoIterator<Item = DurableTask<T>>,
) -> WhenAll<T> {
    let pending: FuturesUnordered<IndexedTask<T>> = tasks
        .into_iter()
        .enumerate()
        .map(|(index, task)| {
            let slot = Rc::clone(&task.slot);
            let tag: IndexTag<T> = Box::new(move |result| (index, slot.borrow().arrival, result));
            task.map(tag)
        })
        .collect();
    let total = pending.len();
    WhenAll {
        pending,
        results: std::iter::repeat_with(|| None).take(total).collect(),
        first_failure: None,
    }
}

impl<T: DeserializeOwned> Future for WhenAll<T> {
    type Output = Result<Vec<T>, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // Tasks that finished before the first poll come out in input order, not arrival order:
        // compare arrival numbers to find the first failure (docs/semantics.md#combinators).
        while let Poll::Ready(Some((index, arrival, result))) = this.pending.poll_next_unpin(cx) {
            match result {
                Ok(value) => this.results[index] = Some(value),
                Err(error) => {
                    if this
                        .first_failure
                        .as_ref()
                        .is_none_or(|(first, _)| arrival < *first)
                    {
                        this.first_failure = Some((arrival, error));
                    }
                }
            }
        }
        if !this.pending.is_empty() {
            return Poll::Pending;
        }
        if let Some((_, error)) = this.first_failure.take() {
            return Poll::Ready(Err(error));
        }
        let results = std::mem::take(&mut this.results);
        Poll::Ready(Ok(results.into_iter().flatten().collect()))
    }
}

/// Waits for the first task to finish; see [`when_any`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct WhenAny {
    handles: Vec<TaskHandle>,
}

/// Race: completes with the index of the first task to finish (success or failure). The others
/// keep running; await the winner to get its result, and ignore the rest
/// (docs/semantics.md#combinators). Typical use: an external event against a timeout.
///
/// ```ignore
/// let approval = ctx.wait_for_external_event::<bool>("Approval");
/// let timeout = ctx.create_timer_after(Duration::from_secs(3600));
/// if when_any([approval.handle(), timeout.handle()]).await == 0 {
///     let approved = approval.await?;
/// }
/// ```
pub fn when_any(handles: impl IntoIterator<Item = TaskHandle>) -> WhenAny {
    WhenAny {
        handles: handles.into_iter().collect(),
    }
}

impl Future for WhenAny {
    type Output = usize;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<usize> {
        let winner = self
            .handles
            .iter()
            .enumerate()
            .filter_map(|(index, handle)| {
                let slot = handle.slot.borrow();
                (slot.outcome.is_some() || slot.consumed).then_some((slot.arrival, index))
            })
            .min();
        if let Some((_, index)) = winner {
            return Poll::Ready(index);
        }
        for handle in &self.handles {
            register_waker(&mut handle.slot.borrow_mut(), cx.waker());
        }
        Poll::Pending
    }
}
