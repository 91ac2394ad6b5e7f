//! The session cache (executor.rs; docs/semantics.md#episodes): a request with no past events
//! continues the cached session of (instance, execution) if its `history_len` is the one the
//! session expects; otherwise the plugin answers `needs_history`, and the host resends the full
//! history, which gives exactly the actions the cached session would have given.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::protocol::{OrchestratorRequest, OrchestratorResponse};
use durable_sdk::{FailureDetails, OrchestrationContext, Registry, SessionCache};
use support::{INSTANCE, events, lines, render_actions, request};

async fn hello_sequence(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<Vec<String>, FailureDetails> {
    let mut greetings = Vec::new();
    for city in ["Tokyo", "Seattle", "London"] {
        greetings.push(ctx.call_activity::<String>("SayHello", city).await?);
    }
    Ok(greetings)
}

fn registry() -> Registry {
    Registry::new().orchestrator("HelloSequence", hello_sequence)
}

const FIRST_EPISODE: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted HelloSequence null
    TaskScheduled #0 SayHello "Tokyo"
    OrchestratorCompleted
"#;

const FIRST_EPISODE_NEW_EVENTS: &str = "
    ---
    OrchestratorStarted @0
    ExecutionStarted HelloSequence null
";

const SECOND_EPISODE_NEW_EVENTS: &str = r#"
    OrchestratorStarted @1
    TaskCompleted #0 "Hello Tokyo!"
"#;

/// The second episode as a live host sends it: only the new events.
fn continuing(history_len: usize) -> OrchestratorRequest {
    OrchestratorRequest {
        history_len,
        past_events: Vec::new(),
        ..request(&format!("---\n{SECOND_EPISODE_NEW_EVENTS}"))
    }
}

/// The second episode with its full history.
fn with_full_history() -> OrchestratorRequest {
    request(&format!(
        "{FIRST_EPISODE}\n---\n{SECOND_EPISODE_NEW_EVENTS}"
    ))
}

/// Runs the first episode live through `cache`; the host then records [`FIRST_EPISODE`].
fn start(registry: &Registry, cache: &mut SessionCache) -> OrchestratorResponse {
    let response = registry.orchestrate(cache, request(FIRST_EPISODE_NEW_EVENTS));
    assert_eq!(
        render_actions(&response.actions),
        lines(r#"ScheduleTask #0 SayHello "Tokyo""#)
    );
    response
}

fn needs_history(response: &OrchestratorResponse) -> bool {
    response.needs_history && response.actions.is_empty()
}

#[test]
fn a_cached_session_continues_with_only_the_new_events() {
    let registry = registry();
    let mut cache = SessionCache::default();
    start(&registry, &mut cache);
    assert_eq!(cache.len(), 1);
    let response = registry.orchestrate(&mut cache, continuing(events(FIRST_EPISODE).len()));
    assert!(!response.needs_history);
    assert_eq!(
        render_actions(&response.actions),
        lines(r#"ScheduleTask #1 SayHello "Seattle""#)
    );
    assert_eq!(response, registry.orchestrate_uncached(with_full_history()));
}

#[test]
fn a_request_without_past_events_for_an_unknown_session_needs_history() {
    let response = registry().orchestrate(&mut SessionCache::default(), continuing(4));
    assert!(needs_history(&response), "{response:?}");
}

#[test]
fn orchestrate_uncached_without_past_events_needs_history() {
    assert!(needs_history(
        &registry().orchestrate_uncached(continuing(4))
    ));
}

#[test]
fn a_request_with_the_wrong_history_len_needs_history() {
    let registry = registry();
    for wrong in [3, 5, 40] {
        let mut cache = SessionCache::default();
        start(&registry, &mut cache);
        let response = registry.orchestrate(&mut cache, continuing(wrong));
        assert!(
            needs_history(&response),
            "history_len {wrong}: {response:?}"
        );
    }
}

#[test]
fn a_request_for_another_execution_needs_history() {
    let registry = registry();
    let mut cache = SessionCache::default();
    start(&registry, &mut cache);
    let mut request = continuing(events(FIRST_EPISODE).len());
    request.execution_id = "inst-e2".to_string();
    assert!(needs_history(&registry.orchestrate(&mut cache, request)));
}

#[test]
fn resending_with_the_full_history_gives_identical_actions() {
    let registry = registry();
    let mut cache = SessionCache::default();
    start(&registry, &mut cache);
    let missed = registry.orchestrate(&mut cache, continuing(7));
    assert!(needs_history(&missed));
    let resent = registry.orchestrate(&mut cache, with_full_history());

    let mut fresh_cache = SessionCache::default();
    start(&registry, &mut fresh_cache);
    let continued = registry.orchestrate(&mut fresh_cache, continuing(events(FIRST_EPISODE).len()));
    assert_eq!(resent, continued);
    assert_eq!(resent, registry.orchestrate_uncached(with_full_history()));
}

#[test]
fn after_a_resend_the_session_is_cached_again() {
    let registry = registry();
    let mut cache = SessionCache::default();
    let resent = registry.orchestrate(&mut cache, with_full_history());
    assert_eq!(resent.actions.len(), 1);
    // The host recorded the new events, one event per action and OrchestratorCompleted.
    let history_len = events(FIRST_EPISODE).len() + 2 + resent.actions.len() + 1;
    let third = OrchestratorRequest {
        history_len,
        past_events: Vec::new(),
        ..request(
            r#"
            ---
            OrchestratorStarted @2
            TaskCompleted #1 "Hello Seattle!"
            "#,
        )
    };
    let response = registry.orchestrate(&mut cache, third);
    assert_eq!(
        render_actions(&response.actions),
        lines(r#"ScheduleTask #2 SayHello "London""#)
    );
}

#[test]
fn an_evicted_session_needs_history() {
    let registry = registry();
    let mut cache = SessionCache::new(1);
    start(&registry, &mut cache);
    let mut other = request(FIRST_EPISODE_NEW_EVENTS);
    other.instance_id = format!("{INSTANCE}-other");
    registry.orchestrate(&mut cache, other);
    assert_eq!(cache.len(), 1);
    let response = registry.orchestrate(&mut cache, continuing(events(FIRST_EPISODE).len()));
    assert!(needs_history(&response));
}

#[test]
fn a_finished_execution_is_not_kept() {
    let registry = registry();
    let mut cache = SessionCache::default();
    let response = registry.orchestrate(
        &mut cache,
        request(
            r#"
            OrchestratorStarted @0
            ExecutionStarted HelloSequence null
            TaskScheduled #0 SayHello "Tokyo"
            OrchestratorCompleted
            OrchestratorStarted @1
            TaskCompleted #0 "Hello Tokyo!"
            TaskScheduled #1 SayHello "Seattle"
            OrchestratorCompleted
            OrchestratorStarted @2
            TaskCompleted #1 "Hello Seattle!"
            TaskScheduled #2 SayHello "London"
            OrchestratorCompleted
            ---
            OrchestratorStarted @3
            TaskCompleted #2 "Hello London!"
            "#,
        ),
    );
    assert_eq!(
        render_actions(&response.actions),
        lines(r#"Complete #3 Completed ["Hello Tokyo!","Hello Seattle!","Hello London!"]"#)
    );
    assert!(cache.is_empty());
}
