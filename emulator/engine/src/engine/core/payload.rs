//! Payloads the store will not hold: inputs, results, outputs, event data and custom status larger
//! than `--max-payload` are refused where they enter, so an episode is never half-written by a
//! value SQLite rejects (its own ceiling is 1 GB per value) and memory is not spent on it.
//!
//! Each refusal is a failure of the one call that carried the value, non-retriable (the same
//! value would be refused again), with the size and the limit: a command is answered with an
//! error; an activity result becomes a failed task; an activity or sub-orchestration input
//! recorded by an episode becomes a placeholder in history and a failed task; an output fails the
//! orchestration; event data is dropped with a warning; a custom status is left unchanged.
//!
//! Knows nothing of plugins or the store; the core calls it.

use super::Core;
use crate::engine::EngineError;
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::protocol::{Action, ActionKind};
use serde::Serialize;
use serde_json::Value;

/// The `error_type` of a value refused for its size.
pub(crate) const PAYLOAD_TOO_LARGE: &str = "PayloadTooLarge";

/// Bytes `value` takes as JSON, without building the text.
pub(crate) fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Serializing a Value into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Why `value` is refused, if it is over `limit` bytes.
pub(crate) fn over_limit(what: &str, value: &impl Serialize, limit: usize) -> Option<String> {
    let size = json_len(value);
    (size > limit).then(|| {
        format!("{what} is {size} bytes of JSON; the limit is {limit} bytes (--max-payload)")
    })
}

/// What replaces a refused value in history, so the record says what happened to it.
fn placeholder(reason: &str) -> Value {
    Value::String(format!("<not stored: {reason}>"))
}

/// An action whose payload was refused: what the host delivers instead of carrying it out.
pub(super) struct Refused {
    pub action_id: i32,
    /// The completion to deliver to the instance (none for a dropped event).
    pub instead: Option<EventKind>,
}

impl Core {
    /// Refuses a command's value over the limit.
    pub(super) fn check_payload(&self, what: &str, value: &Value) -> Result<(), EngineError> {
        match over_limit(what, value, self.limits.max_payload_bytes) {
            Some(reason) => Err(EngineError::PayloadTooLarge(reason)),
            None => Ok(()),
        }
    }

    /// Rewrites an episode's actions and custom status so that nothing over the limit is
    /// recorded; returns the actions not to carry out and what to deliver instead.
    pub(super) fn refuse_oversized(
        &mut self,
        instance_id: &str,
        actions: &mut [Action],
        custom_status: &mut Option<Value>,
    ) -> Vec<Refused> {
        let limit = self.limits.max_payload_bytes;
        if let Some(status) = custom_status.as_ref() {
            if let Some(reason) = over_limit("the custom status", status, limit) {
                self.warn(Some(instance_id), format!("{reason}; it was not changed"));
                *custom_status = None;
            }
        }
        let mut refused = Vec::new();
        for action in actions.iter_mut() {
            let id = action.id;
            match &mut action.kind {
                ActionKind::CallEntity {
                    request_id,
                    target_instance_id,
                    operation,
                    input,
                    ..
                } => {
                    let what = format!(
                        "the input of operation '{operation}' of {target_instance_id} (#{id})"
                    );
                    if let Some(reason) = over_limit(&what, input, limit) {
                        *input = placeholder(&reason);
                        refused.push(Refused {
                            action_id: id,
                            instead: Some(EventKind::EntityOperationFailed {
                                request_id: request_id.clone(),
                                failure: too_large(reason),
                            }),
                        });
                    }
                }
                ActionKind::SignalEntity {
                    target_instance_id,
                    operation,
                    input,
                    ..
                } => {
                    let what = format!(
                        "the input of operation '{operation}' of {target_instance_id} (#{id})"
                    );
                    if let Some(reason) = over_limit(&what, input, limit) {
                        self.warn(Some(instance_id), format!("{reason}; it was not sent"));
                        *input = placeholder(&reason);
                        refused.push(Refused {
                            action_id: id,
                            instead: None,
                        });
                    }
                }
                // Lock requests and releases carry no payload.
                ActionKind::LockEntities { .. } | ActionKind::UnlockEntity { .. } => {}
                ActionKind::ScheduleTask { name, input } => {
                    let what = format!("the input of activity '{name}' (#{id})");
                    if let Some(reason) = over_limit(&what, input, limit) {
                        *input = placeholder(&reason);
                        refused.push(Refused {
                            action_id: id,
                            instead: Some(EventKind::TaskFailed {
                                task_scheduled_id: id,
                                failure: too_large(reason),
                            }),
                        });
                    }
                }
                ActionKind::CreateSubOrchestration { name, input, .. } => {
                    let what = format!("the input of sub-orchestration '{name}' (#{id})");
                    if let Some(reason) = over_limit(&what, input, limit) {
                        *input = placeholder(&reason);
                        refused.push(Refused {
                            action_id: id,
                            instead: Some(EventKind::SubOrchestrationInstanceFailed {
                                task_scheduled_id: id,
                                failure: too_large(reason),
                            }),
                        });
                    }
                }
                ActionKind::SendEvent { name, input, .. } => {
                    let what = format!("the data of event '{name}' (#{id})");
                    if let Some(reason) = over_limit(&what, input, limit) {
                        self.warn(Some(instance_id), format!("{reason}; it was not sent"));
                        *input = placeholder(&reason);
                        refused.push(Refused {
                            action_id: id,
                            instead: None,
                        });
                    }
                }
                ActionKind::CompleteOrchestration {
                    status,
                    result,
                    failure,
                    ..
                } => {
                    if let Some(reason) = over_limit("the orchestration's output", result, limit) {
                        *status = RuntimeStatus::Failed;
                        *result = Value::Null;
                        *failure = Some(too_large(reason));
                    }
                }
                ActionKind::CreateTimer { .. } => {}
            }
        }
        refused
    }
}

fn too_large(reason: String) -> FailureDetails {
    FailureDetails::new(PAYLOAD_TOO_LARGE, reason).non_retriable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_counts_the_bytes_serde_writes() {
        let value = serde_json::json!({"a": [1, 2, "three"], "b": null});
        assert_eq!(json_len(&value), value.to_string().len());
    }

    #[test]
    fn a_value_over_the_limit_is_named_with_its_size_and_the_limit() {
        let value = Value::String("x".repeat(100));
        assert_eq!(over_limit("it", &value, 102), None);
        let reason = over_limit("the input", &value, 50).unwrap();
        assert_eq!(
            reason,
            "the input is 102 bytes of JSON; the limit is 50 bytes (--max-payload)"
        );
    }
}
