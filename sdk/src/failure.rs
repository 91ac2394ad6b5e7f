//! Failure details: the one error shape that crosses every boundary (activity -> orchestration ->
//! parent orchestration -> host), as docs/semantics.md#failures describes it.
//!
//! Owns [`FailureDetails`] and [`TaskError`] (what an awaited durable call returns when the task it
//! waited for failed). Knows nothing of history or the executor.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why something failed, with the chain of causes below it.
///
/// This is both the error type activities and orchestrators return and the payload of
/// `TaskFailed`, `SubOrchestrationInstanceFailed` and a failed `ExecutionCompleted` in history.
/// Each level of propagation wraps the failure below as its `inner_failure`, so the whole path an
/// error took (orchestration -> sub-orchestration -> activity) can be read back from history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureDetails {
    /// A short, stable name for the kind of failure, e.g. `CardDeclined` or `TaskFailed`.
    pub error_type: String,
    /// The human-readable message.
    pub error_message: String,
    /// Where it happened (a panic location or a backtrace), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
    /// The failure that caused this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inner_failure: Option<Box<FailureDetails>>,
    /// When true, retry policies give up at once instead of trying again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_non_retriable: bool,
}

/// `error_type` of the failure an awaited durable call produces when its task failed.
pub const TASK_FAILED: &str = "TaskFailed";
/// `error_type` of a panic caught at a plugin entry point or while polling an orchestrator.
pub const PANIC: &str = "Panic";

/// The `error_type` of an orchestration stopped for making more durable calls in one episode
/// than the host allows.
pub const ACTION_LIMIT: &str = "ActionLimitExceeded";

/// The panic payload that stops orchestrator code at the host's action limit (turned into an
/// [`ACTION_LIMIT`] failure, not reported as a panic).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ActionLimitExceeded {
    pub limit: u32,
}

impl ActionLimitExceeded {
    pub(crate) fn to_failure(self) -> FailureDetails {
        FailureDetails::new(
            ACTION_LIMIT,
            format!(
                "the orchestration made more than {} durable calls in one episode without awaiting any; the host's limit is {} (durable-emu: --max-actions-per-episode)",
                self.limit, self.limit
            ),
        )
        .non_retriable()
    }
}
/// `error_type` of a replay that disagreed with history (docs/semantics.md#nondeterminism).
pub const NON_DETERMINISM: &str = "NonDeterminism";
/// `error_type` of an input or output that could not be (de)serialized.
pub const SERIALIZATION: &str = "SerializationError";
/// `error_type` of an orchestration that asked for a timer no history can hold (past year 9999).
pub const TIMER_OUT_OF_RANGE: &str = "TimerOutOfRange";

impl FailureDetails {
    /// A failure of the given type with the given message and no cause.
    pub fn new(error_type: impl Into<String>, error_message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.into(),
            error_message: error_message.into(),
            stack_trace: None,
            inner_failure: None,
            is_non_retriable: false,
        }
    }

    /// Marks this failure as one that retry policies must not retry.
    #[must_use]
    pub fn non_retriable(mut self) -> Self {
        self.is_non_retriable = true;
        self
    }

    /// Attaches the failure that caused this one.
    #[must_use]
    pub fn with_inner(mut self, inner: FailureDetails) -> Self {
        self.inner_failure = Some(Box::new(inner));
        self
    }

    /// Attaches a location or backtrace.
    #[must_use]
    pub fn with_stack_trace(mut self, stack_trace: impl Into<String>) -> Self {
        self.stack_trace = Some(stack_trace.into());
        self
    }

    /// Builds a failure from any error, keeping its `source()` chain as inner failures.
    /// The error type is the last path segment of the error's Rust type name.
    pub fn from_error<E: std::error::Error + ?Sized>(error: &E) -> Self {
        let mut failure = Self::new(short_type_name::<E>(), error.to_string());
        if let Some(source) = error.source() {
            failure.inner_failure = Some(Box::new(Self::from_dyn_error(source)));
        }
        failure
    }

    fn from_dyn_error(error: &(dyn std::error::Error + 'static)) -> Self {
        let mut failure = Self::new("Error", error.to_string());
        if let Some(source) = error.source() {
            failure.inner_failure = Some(Box::new(Self::from_dyn_error(source)));
        }
        failure
    }

    /// This failure followed by every inner failure, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &FailureDetails> {
        std::iter::successors(Some(self), |failure| failure.inner_failure.as_deref())
    }

    /// The innermost failure: where the error started.
    pub fn root_cause(&self) -> &FailureDetails {
        self.chain().last().unwrap_or(self)
    }
}

fn short_type_name<E: ?Sized>() -> String {
    let full = std::any::type_name::<E>();
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics
        .rsplit("::")
        .next()
        .unwrap_or(without_generics)
        .to_string()
}

impl fmt::Display for FailureDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type, self.error_message)
    }
}

impl std::error::Error for FailureDetails {}

impl From<String> for FailureDetails {
    fn from(message: String) -> Self {
        Self::new("Error", message)
    }
}

impl From<&str> for FailureDetails {
    fn from(message: &str) -> Self {
        Self::new("Error", message)
    }
}

impl From<serde_json::Error> for FailureDetails {
    fn from(error: serde_json::Error) -> Self {
        Self::new(SERIALIZATION, error.to_string())
    }
}

impl From<std::io::Error> for FailureDetails {
    fn from(error: std::io::Error) -> Self {
        Self::new(format!("IoError({:?})", error.kind()), error.to_string())
    }
}

/// What kind of durable task an awaited call was waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// An activity call.
    Activity,
    /// A sub-orchestration call.
    SubOrchestration,
    /// A durable timer.
    Timer,
    /// A wait for an external event.
    ExternalEvent,
    /// An entity call (named `<entity id> <operation>`) or lock request (`lock <entity ids>`).
    Entity,
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskKind::Activity => "Activity",
            TaskKind::SubOrchestration => "SubOrchestration",
            TaskKind::Timer => "Timer",
            TaskKind::ExternalEvent => "ExternalEvent",
            TaskKind::Entity => "Entity",
        })
    }
}

/// The error an awaited durable call returns: which task failed (kind, name, sequence id) and why.
///
/// Match on it to handle a failure (`err.name == "ChargeCard"`, `err.cause().error_type`), or let
/// `?` turn it into a [`FailureDetails`] whose inner failure is the task's own, so an unhandled
/// failure keeps the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskError {
    /// What kind of task failed.
    pub kind: TaskKind,
    /// The activity or orchestration name (or the event name; for an entity call, the entity id
    /// and the operation: `@account@bob withdraw`).
    pub name: String,
    /// The sequence id of the durable call (its `task_scheduled_id` in history).
    pub task_id: i32,
    /// The failure the task reported.
    pub failure: FailureDetails,
}

impl TaskError {
    /// The failure the task itself reported.
    pub fn cause(&self) -> &FailureDetails {
        &self.failure
    }

    /// The failure this error becomes when propagated: `TaskFailed` wrapping the task's failure.
    pub fn to_failure_details(&self) -> FailureDetails {
        FailureDetails {
            error_type: TASK_FAILED.to_string(),
            error_message: self.to_string(),
            stack_trace: None,
            inner_failure: Some(Box::new(self.failure.clone())),
            is_non_retriable: false,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} '{}' (#{}) failed: {}",
            self.kind, self.name, self.task_id, self.failure.error_message
        )
    }
}

impl std::error::Error for TaskError {}

impl From<TaskError> for FailureDetails {
    fn from(error: TaskError) -> Self {
        error.to_failure_details()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_error_names_the_task_and_keeps_the_cause_as_inner_failure() {
        let error = TaskError {
            kind: TaskKind::Activity,
            name: "Charge".into(),
            task_id: 3,
            failure: FailureDetails::new("CardDeclined", "insufficient funds"),
        };
        assert_eq!(
            error.to_string(),
            "Activity 'Charge' (#3) failed: insufficient funds"
        );
        let details: FailureDetails = error.into();
        assert_eq!(details.error_type, TASK_FAILED);
        assert_eq!(details.root_cause().error_type, "CardDeclined");
        assert_eq!(details.chain().count(), 2);
    }

    #[test]
    fn from_error_keeps_the_source_chain() {
        let io = std::io::Error::other("disk full");
        let failure = FailureDetails::from_error(&io);
        assert_eq!(failure.error_type, "Error");
        assert_eq!(failure.error_message, "disk full");
    }
}
