//! Times a history cannot hold: a timer past year 9999 fails the orchestration with
//! `TimerOutOfRange` (non-retriable, naming the time) instead of being recorded, even when it is
//! raced in `when_any`, where a failed timer task would otherwise look like one that fired.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::chrono::TimeDelta;
use durable_sdk::protocol::ActionKind;
use durable_sdk::{
    FailureDetails, OrchestrationContext, Registry, RuntimeStatus, TIMER_OUT_OF_RANGE, when_any,
};
use support::replay;

/// Waits for `Approval` or a timer `hours` from now (#0), whichever comes first.
async fn approval(ctx: OrchestrationContext, hours: i64) -> Result<String, FailureDetails> {
    let answer = ctx.wait_for_external_event::<bool>("Approval");
    let fire_at = ctx.current_utc_date_time() + TimeDelta::hours(hours);
    let timeout = ctx.create_timer(fire_at);
    let first = when_any([answer.handle(), timeout.handle()]).await;
    Ok(if first == 0 { "answered" } else { "timed out" }.to_string())
}

fn registry() -> Registry {
    Registry::new().orchestrator("Approval", approval)
}

#[test]
fn a_timer_past_year_9999_fails_the_orchestration_instead_of_winning_the_race() {
    let response = replay(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted Approval 100000000",
    );
    assert_eq!(response.actions.len(), 1, "{:?}", response.actions);
    match &response.actions[0].kind {
        ActionKind::CompleteOrchestration {
            status: RuntimeStatus::Failed,
            failure: Some(failure),
            ..
        } => {
            assert_eq!(failure.error_type, TIMER_OUT_OF_RANGE);
            assert!(failure.is_non_retriable);
            assert!(
                failure.error_message.contains("create_timer")
                    && failure.error_message.contains("years 1 to 9999"),
                "{}",
                failure.error_message
            );
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn a_timer_within_the_calendar_is_scheduled() {
    let response = replay(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted Approval 24",
    );
    assert!(
        matches!(
            response.actions.as_slice(),
            [action] if matches!(action.kind, ActionKind::CreateTimer { .. })
        ),
        "{:?}",
        response.actions
    );
}
