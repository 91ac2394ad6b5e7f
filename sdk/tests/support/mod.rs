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

use durable_sdk::protocol::{Action, ActionKind, OrchestratorRequest, OrchestratorResponse};
use durable_sdk::{EventKind, HistoryEvent, Registry, SessionCache};
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
    // The text form names entity requests `#3`; the live code names them with guids. A live
    // host records the code's ids, so answers carry those: translate as that host would have.
    let mut request_ids = RequestIds::default();
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
        let new_events = new_events
            .into_iter()
            .map(|event| request_ids.to_code(event))
            .collect();
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
        let recorded: Vec<(i32, EventKind)> = recorded
            .into_iter()
            .map(|event| (event.event_id, event.kind))
            .collect();
        let made: Vec<(i32, EventKind)> = response
            .actions
            .iter()
            .map(|action| {
                let kind = action.kind.to_event_kind();
                let in_history = recorded.iter().find(|(id, _)| *id == action.id);
                (
                    action.id,
                    request_ids.learn_and_translate(kind, in_history.map(|(_, kind)| kind)),
                )
            })
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
    let new = new
        .into_iter()
        .map(|event| request_ids.to_code(event))
        .collect();
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
    // Full replay took history's request ids for the calls history recorded; so does a host.
    response.actions = request_ids.actions_to_history(response.actions);
    assert_eq!(
        comparable(&response),
        comparable(expected),
        "continuing a cached session answered differently from a full replay"
    );
}

/// Entity request ids as history recorded them (the text form's `#3`) and as the code made them
/// (guids), for driving a text-form history through a session cache.
#[derive(Default)]
struct RequestIds {
    /// History's id -> the code's id.
    to_code: std::collections::HashMap<String, String>,
}

impl RequestIds {
    /// The request id of an entity call event, mutable.
    fn id_of(kind: &mut EventKind) -> Option<&mut String> {
        match kind {
            EventKind::EntityOperationSignaled { request_id, .. }
            | EventKind::EntityOperationCalled { request_id, .. }
            | EventKind::EntityOperationCompleted { request_id, .. }
            | EventKind::EntityOperationFailed { request_id, .. } => Some(request_id),
            EventKind::EntityLockRequested {
                critical_section_id,
                ..
            }
            | EventKind::EntityLockGranted {
                critical_section_id,
            }
            | EventKind::EntityUnlockSent {
                critical_section_id,
                ..
            } => Some(critical_section_id),
            _ => None,
        }
    }

    /// An event the code made, with history's request id where history recorded the same call
    /// (learning the pair), so it compares equal to what history recorded.
    fn learn_and_translate(
        &mut self,
        mut made: EventKind,
        recorded: Option<&EventKind>,
    ) -> EventKind {
        let mut recorded = recorded.cloned();
        let recorded_id = recorded.as_mut().and_then(Self::id_of).cloned();
        if let (Some(made_id), Some(recorded_id)) = (Self::id_of(&mut made), recorded_id) {
            self.to_code.insert(recorded_id.clone(), made_id.clone());
            *made_id = recorded_id;
        }
        made
    }

    /// Actions with history's request ids where the code's are known under another id.
    fn actions_to_history(&self, actions: Vec<Action>) -> Vec<Action> {
        let to_history = |id: &mut String| {
            if let Some((history_id, _)) = self.to_code.iter().find(|(_, code)| *code == id) {
                *id = history_id.clone();
            }
        };
        actions
            .into_iter()
            .map(|mut action| {
                match &mut action.kind {
                    ActionKind::SignalEntity { request_id, .. }
                    | ActionKind::CallEntity { request_id, .. } => to_history(request_id),
                    ActionKind::LockEntities {
                        critical_section_id,
                        ..
                    }
                    | ActionKind::UnlockEntity {
                        critical_section_id,
                        ..
                    } => to_history(critical_section_id),
                    _ => {}
                }
                action
            })
            .collect()
    }

    /// An event history holds, with the code's request id (as a live host would have written it).
    fn to_code(&self, mut event: HistoryEvent) -> HistoryEvent {
        if let Some(id) = Self::id_of(&mut event.kind) {
            if let Some(code_id) = self.to_code.get(id.as_str()) {
                *id = code_id.clone();
            }
        }
        event
    }
}
