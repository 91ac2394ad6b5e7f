//! What an activity knows about the call it serves. Activities are ordinary async functions:
//! they may do I/O, read the clock and fail; the host runs them at least once per scheduled task.
//!
//! Owns [`ActivityContext`]. Knows nothing of orchestrations or history.

use crate::protocol::ActivityRequest;

/// The call an activity is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityContext {
    /// The activity's registered name.
    pub name: String,
    /// The orchestration instance that scheduled it.
    pub instance_id: String,
    /// The sequence id of its `TaskScheduled` event (unique within the execution).
    pub task_id: i32,
    /// Which delivery this is: 1 for the first; higher when the host redelivers the same task
    /// (activities are at-least-once, so make side effects idempotent on `instance_id` + `task_id`).
    pub attempt: u32,
}

impl ActivityContext {
    pub(crate) fn from_request(request: &ActivityRequest) -> Self {
        Self {
            name: request.name.clone(),
            instance_id: request.instance_id.clone(),
            task_id: request.task_id,
            attempt: request.attempt,
        }
    }
}
