//! Test support for the durable-sdk suite: runners that replay a history every way a host can and
//! check that they agree.
//!
//! Each file in `sdk/tests/` is its own crate and uses a different part of this module, hence the
//! `dead_code` (and unused macro) allowance. The property test's simulated host is [`host`].
//!
//! The text form of histories and actions (parse, render) is `durable_sdk::testing`, behind the
//! SDK's `testing` feature (its module doc describes the form); it is re-exported here.

#![allow(dead_code, unused_macros)]

pub mod host;

pub use durable_sdk::testing::*;

use durable_sdk::protocol::{Action, OrchestratorRequest, OrchestratorResponse};
use durable_sdk::{EventKind, Registry, SessionCache};
use serde_json::Value;

/// A replay table: `replay_table! { registry_fn; name: "history" => "expected actions"; ... }`
/// makes one `#[test]` per row, each running [`assert_actions`].
macro_rules! replay_table {
    ($registry:path; $( $(#[$meta:meta])* $name:ident: $history:expr => $actions:expr; )*) => {
        $(
            $(#[$meta])*
            #[test]
            fn $name() {
                $crate::support::assert_actions(&$registry(), $history, $actions);
            }
        )*
    };
}
#[allow(unused_imports)] // Not every test crate has a replay table.
pub(crate) use replay_table;

/// Replays a text-form history with full replay and through a fresh session cache, asserts the
/// two agree, and returns the response.
pub fn replay(registry: &Registry, history: &str) -> OrchestratorResponse {
    let request = request(history);
    let uncached = registry.orchestrate_uncached(request.clone());
    let cached = registry.orchestrate(&mut SessionCache::default(), request);
    assert_eq!(
        cached, uncached,
        "a fresh session cache answered differently from a full replay of\n{history}"
    );
    uncached
}

/// Asserts that replaying `history` gives exactly `expected` actions (text form), deterministically
/// (no nondeterminism), and that a host driving the same history episode by episode through one
/// session cache gets the actions the history recorded and then the same answer.
pub fn assert_actions(registry: &Registry, history: &str, expected: &str) -> OrchestratorResponse {
    let response = replay(registry, history);
    assert_eq!(
        response.nondeterminism,
        None,
        "unexpected nondeterminism; actions:\n{}",
        render_actions(&response.actions)
    );
    let actual = render_actions(&response.actions);
    let expected = lines(expected);
    assert!(
        actual == expected,
        "actions differ\n--- expected\n{expected}\n--- actual\n{actual}\n--- history\n{}",
        lines(history)
    );
    assert_same_episode_by_episode(registry, history, &response);
    response
}

/// What two answers to the same episode must agree on. Warnings are left out: a full replay
/// reports again the warnings of past episodes.
pub fn comparable(
    response: &OrchestratorResponse,
) -> (
    bool,
    &[Action],
    &Option<Value>,
    &[durable_sdk::protocol::LogLine],
    &Option<durable_sdk::protocol::NonDeterminism>,
) {
    (
        response.needs_history,
        &response.actions,
        &response.custom_status,
        &response.logs,
        &response.nondeterminism,
    )
}

/// Drives the past of `history` through one session cache the way a live host does (first episode
/// with no past, later ones with only their new events), checking each episode's actions against
/// the events the history recorded for them; then the new events must give `expected`.
fn assert_same_episode_by_episode(
    registry: &Registry,
    history: &str,
    expected: &OrchestratorResponse,
) {
    let (past, new) = parse_history(history);
    let mut cache = SessionCache::new(4);
    let mut history_len = 0;
    for episode in past.split_inclusive(|event| event.kind == EventKind::OrchestratorCompleted) {
        assert_eq!(
            episode.last().map(|event| &event.kind),
            Some(&EventKind::OrchestratorCompleted),
            "every past episode must end with OrchestratorCompleted:\n{}",
            render_events(episode)
        );
        let (recorded, new_events): (Vec<_>, Vec<_>) = episode[..episode.len() - 1]
            .iter()
            .cloned()
            .partition(|event| records_an_action(&event.kind));
        let response = registry.orchestrate(
            &mut cache,
            OrchestratorRequest {
                instance_id: INSTANCE.to_string(),
                execution_id: EXECUTION.to_string(),
                history_len,
                past_events: Vec::new(),
                new_events,
                include_replay_logs: false,
                max_actions: None,
            },
        );
        assert!(!response.needs_history, "the session cache lost a session");
        let made: Vec<(i32, EventKind)> = response
            .actions
            .iter()
            .map(|action| (action.id, action.kind.to_event_kind()))
            .collect();
        let recorded: Vec<(i32, EventKind)> = recorded
            .into_iter()
            .map(|event| (event.event_id, event.kind))
            .collect();
        assert!(
            made == recorded,
            "driving the history episode by episode, this episode's actions differ from what \
             history recorded\n--- episode\n{}\n--- actions\n{}",
            render_events(episode),
            render_actions(&response.actions)
        );
        history_len += episode.len();
    }
    let mut request = OrchestratorRequest {
        instance_id: INSTANCE.to_string(),
        execution_id: EXECUTION.to_string(),
        history_len,
        past_events: Vec::new(),
        new_events: new,
        include_replay_logs: false,
        max_actions: None,
    };
    let mut response = registry.orchestrate(&mut cache, request.clone());
    let execution_ended = past.iter().any(|event| {
        matches!(
            event.kind,
            EventKind::ExecutionCompleted { .. } | EventKind::ContinueAsNew { .. }
        )
    });
    if execution_ended {
        // A finished execution is not cached: a host resends the full history.
        assert!(response.needs_history, "a finished execution stayed cached");
        request.past_events = past;
        response = registry.orchestrate(&mut cache, request);
    }
    assert_eq!(
        comparable(&response),
        comparable(expected),
        "continuing a cached session answered differently from a full replay"
    );
}
