//! Which calls of an execution are attempts of one retried call, read from history alone.
//!
//! The SDK's retry loop (`sdk/src/context.rs`, `retrying_call`) records no marker: each attempt is
//! a new `TaskScheduled` / `SubOrchestrationInstanceCreated` with a new sequence id and the same
//! name and input, and between two attempts there is a back-off timer. Separate calls to the same
//! activity look the same by name and input, so the rule leans on when the loop acts:
//!
//! - the loop sees attempt `n` fail in the episode that delivers the failure, and creates the
//!   back-off timer in that same episode;
//! - it schedules attempt `n+1` in the episode that delivers that timer's `TimerFired`.
//!
//! So a call `S` is the next attempt of a failed call `P` when `P`'s failure was retriable, a timer
//! created in the episode of `P`'s failure fired in the episode that scheduled `S`, and `S` has
//! `P`'s kind, name and input. Each failed call is continued at most once. An HTTP request's input
//! is compared without its time limit (`timeoutMs`): under a whole-call timeout each attempt may
//! only take what remains of it, so the limit shrinks from attempt to attempt.
//!
//! Limits: an orchestrator that retries by hand (catch, sleep on a durable timer, call again with
//! the same input) is indistinguishable and shows as attempts too; two failed calls with the same
//! name and input whose timers were created in one episode may swap chains (their labels read the
//! same either way). Owns only this rule; knows nothing of how attempts are drawn.

use durable_sdk::history::{EventKind, HistoryEvent};
use serde_json::Value;
use std::collections::HashMap;

/// Where a call stands in its retry chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based attempt number.
    pub number: u32,
    /// The sequence id of the next attempt, if the call failed and was retried.
    pub retried_by: Option<i32>,
}

/// The attempts of every call that is part of a retry chain (a call retried at least once, or a
/// retry). Calls that are neither are absent: a plain call has no attempt number.
pub fn attempts(events: &[HistoryEvent]) -> HashMap<i32, Attempt> {
    struct Call<'a> {
        sub: bool,
        name: &'a str,
        input: &'a Value,
    }
    let mut calls: HashMap<i32, Call<'_>> = HashMap::new();
    // Failed calls (retriable) by the episode their failure was delivered in.
    let mut failed_in: Vec<(i32, usize)> = Vec::new();
    let mut timer_episode: HashMap<i32, usize> = HashMap::new();
    // Failed calls whose back-off may have fired in the current episode.
    let mut eligible: Vec<i32> = Vec::new();
    let mut previous: HashMap<i32, i32> = HashMap::new();
    let mut episode = 0usize;
    for event in events {
        match &event.kind {
            EventKind::OrchestratorStarted => {
                episode += 1;
                eligible.clear();
            }
            EventKind::TaskScheduled { name, input }
            | EventKind::SubOrchestrationInstanceCreated { name, input, .. } => {
                let sub = matches!(
                    event.kind,
                    EventKind::SubOrchestrationInstanceCreated { .. }
                );
                let found = eligible.iter().position(|id| {
                    calls.get(id).is_some_and(|call| {
                        call.sub == sub && call.name == name && same_input(name, call.input, input)
                    })
                });
                if let Some(position) = found {
                    let retried = eligible.remove(position);
                    failed_in.retain(|(id, _)| *id != retried);
                    previous.insert(event.event_id, retried);
                }
                calls.insert(event.event_id, Call { sub, name, input });
            }
            EventKind::TaskFailed {
                task_scheduled_id,
                failure,
            }
            | EventKind::SubOrchestrationInstanceFailed {
                task_scheduled_id,
                failure,
            } if !failure.is_non_retriable => failed_in.push((*task_scheduled_id, episode)),
            EventKind::TimerCreated { .. } => {
                timer_episode.insert(event.event_id, episode);
            }
            EventKind::TimerFired { timer_id, .. } => {
                if let Some(created) = timer_episode.get(timer_id) {
                    for (id, failed) in &failed_in {
                        if failed == created && !eligible.contains(id) {
                            eligible.push(*id);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut result = HashMap::new();
    for (&retry, &first_back) in &previous {
        // Walk back to the chain's first call to number this one.
        let mut number = 2;
        let mut back = first_back;
        while let Some(&earlier) = previous.get(&back) {
            number += 1;
            back = earlier;
        }
        result
            .entry(retry)
            .or_insert(Attempt {
                number,
                retried_by: None,
            })
            .number = number;
        result
            .entry(first_back)
            .or_insert(Attempt {
                number: number - 1,
                retried_by: None,
            })
            .retried_by = Some(retry);
    }
    result
}

/// Whether two calls of `name` have the same input: an HTTP request's time limit aside.
fn same_input(name: &str, first: &Value, second: &Value) -> bool {
    if !super::http::is_http(name) {
        return first == second;
    }
    let without_limit = |input: &Value| {
        let mut input = input.clone();
        if let Some(fields) = input.as_object_mut() {
            fields.remove("timeoutMs");
        }
        input
    };
    without_limit(first) == without_limit(second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable_emu_testing::history::events;

    fn numbers(text: &str) -> Vec<(i32, u32)> {
        let mut list: Vec<(i32, u32)> = attempts(&events(text))
            .into_iter()
            .map(|(id, attempt)| (id, attempt.number))
            .collect();
        list.sort_unstable();
        list
    }

    #[test]
    fn separate_calls_to_the_same_activity_are_not_attempts() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted HelloSequence null
            TaskScheduled #0 SayHello \"Tokyo\"
            OrchestratorStarted @1
            TaskCompleted #0 \"Hello Tokyo!\"
            TaskScheduled #1 SayHello \"Tokyo\"
            OrchestratorStarted @2
            TaskCompleted #1 \"Hello Tokyo!\"
            TaskScheduled #2 SayHello \"Tokyo\"
        ";
        assert_eq!(numbers(text), []);
    }

    #[test]
    fn a_failed_call_followed_by_another_without_a_backoff_is_not_a_retry() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Saga null
            TaskScheduled #0 Ship 1
            OrchestratorStarted @1
            TaskFailed #0 Down: no carrier
            TaskScheduled #1 Ship 1
        ";
        assert_eq!(numbers(text), []);
    }

    #[test]
    fn a_retry_policy_chain_numbers_every_attempt() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Pay null
            TaskScheduled #0 ChargeCard 5
            OrchestratorStarted @1
            TaskFailed #0 Down: gateway down
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 ChargeCard 5
            OrchestratorStarted @3
            TaskFailed #2 Down: gateway down
            TimerCreated #3 @4
            OrchestratorStarted @4
            TimerFired #3 @4
            TaskScheduled #4 ChargeCard 5
        ";
        assert_eq!(numbers(text), [(0, 1), (2, 2), (4, 3)]);
        let chain = attempts(&events(text));
        assert_eq!(chain[&0].retried_by, Some(2));
        assert_eq!(chain[&4].retried_by, None);
    }

    #[test]
    fn a_non_retriable_failure_starts_no_chain() {
        let text = "
            OrchestratorStarted @0
            ExecutionStarted Pay null
            TaskScheduled #0 ChargeCard 5
            OrchestratorStarted @1
            TaskFailed #0 Declined: no [non-retriable]
            TimerCreated #1 @2
            OrchestratorStarted @2
            TimerFired #1 @2
            TaskScheduled #2 ChargeCard 5
        ";
        assert_eq!(numbers(text), []);
    }
}
