//! External events and races (docs/semantics.md#external-events): names compare case-insensitively;
//! a wait takes the oldest event of its name; events nobody waits for are buffered per name in
//! arrival order; `when_any` completes with the first task to finish and ignores the others.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Duration;
use durable_sdk::{FailureDetails, OrchestrationContext, Registry, when_any};
use serde_json::Value;
use support::{replay, replay_table};

/// Prepares (#0), then waits for approval.
async fn approval(ctx: OrchestrationContext, _input: ()) -> Result<bool, FailureDetails> {
    ctx.call_activity::<Value>("Prepare", ()).await?;
    Ok(ctx.wait_for_external_event("Approval").await?)
}

/// Collects three votes, in the order it takes them.
async fn ballot(ctx: OrchestrationContext, _input: ()) -> Result<Vec<u32>, FailureDetails> {
    let mut votes = Vec::new();
    for _ in 0..3 {
        votes.push(ctx.wait_for_external_event("Vote").await?);
    }
    Ok(votes)
}

/// Approval against a one-hour timer (#0), then records the outcome (#1).
async fn approval_or_timeout(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<String, FailureDetails> {
    let approval = ctx.wait_for_external_event::<bool>("Approval");
    let timeout = ctx.create_timer(ctx.current_utc_date_time() + Duration::minutes(60));
    let outcome = match when_any([approval.handle(), timeout.handle()]).await {
        0 => format!("approved={}", approval.await?),
        _ => "timed out".to_string(),
    };
    ctx.call_activity::<Value>("Record", &outcome).await?;
    Ok(outcome)
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Approval", approval)
        .orchestrator("Ballot", ballot)
        .orchestrator("ApprovalOrTimeout", approval_or_timeout)
}

replay_table! { registry;
    an_event_nobody_waits_for_yet_is_buffered: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Approval true
    "# => "";

    buffered_event_is_taken_by_a_later_wait: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        EventRaised Approval true
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        TaskCompleted #0 null
    "# => "
        Complete #1 Completed true
    ";

    an_event_arriving_after_the_wait_completes_it: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 null
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EventRaised Approval false
    "# => "
        Complete #1 Completed false
    ";

    an_event_of_another_name_does_not_complete_a_wait: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 null
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EventRaised Rejection true
    "# => "";

    events_of_other_names_keep_their_own_queue: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Rejection true
        EventRaised Approval false
        TaskCompleted #0 null
    "# => "
        Complete #1 Completed false
    ";

    buffered_events_of_one_name_are_taken_oldest_first: "
        ---
        OrchestratorStarted @0
        ExecutionStarted Ballot null
        EventRaised Vote 1
        EventRaised Vote 2
        EventRaised Vote 3
    " => "
        Complete #0 Completed [1,2,3]
    ";

    buffered_and_later_events_keep_arrival_order: "
        OrchestratorStarted @0
        ExecutionStarted Ballot null
        EventRaised Vote 1
        EventRaised Vote 2
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Vote 3
    " => "
        Complete #0 Completed [1,2,3]
    ";

    event_names_compare_case_insensitively: "
        ---
        OrchestratorStarted @0
        ExecutionStarted Ballot null
        EventRaised VOTE 1
        EventRaised vote 2
        EventRaised vOtE 3
    " => "
        Complete #0 Completed [1,2,3]
    ";

    when_any_completes_with_an_event_that_beats_the_timer: "
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        ---
        OrchestratorStarted @10
        EventRaised Approval true
    " => r#"
        ScheduleTask #1 Record "approved=true"
    "#;

    a_timer_that_lost_the_race_fires_into_nothing: r#"
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        OrchestratorStarted @10
        EventRaised Approval true
        TaskScheduled #1 Record "approved=true"
        OrchestratorCompleted
        ---
        OrchestratorStarted @60
        TimerFired #0 @60
    "# => "";

    when_any_completes_with_the_timer_when_no_event_arrives: "
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        ---
        OrchestratorStarted @60
        TimerFired #0 @60
    " => r#"
        ScheduleTask #1 Record "timed out"
    "#;

    an_event_after_the_timer_won_changes_nothing: r#"
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        OrchestratorStarted @60
        TimerFired #0 @60
        TaskScheduled #1 Record "timed out"
        OrchestratorCompleted
        ---
        OrchestratorStarted @61
        EventRaised Approval true
        TaskCompleted #1 null
    "# => r#"
        Complete #2 Completed "timed out"
    "#;

    when_any_takes_the_first_to_arrive_within_one_episode: "
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        ---
        OrchestratorStarted @60
        TimerFired #0 @60
        EventRaised Approval true
    " => r#"
        ScheduleTask #1 Record "timed out"
    "#;

    /// The race is decided within the episode, but the timer was created: both are recorded.
    a_race_decided_in_its_first_episode_still_records_the_timer: "
        ---
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        EventRaised approval false
    " => r#"
        CreateTimer #0 @60
        ScheduleTask #1 Record "approved=false"
    "#;
}

/// Per docs/semantics.md#timers the dropped timer's TimerFired is simply ignored: it still belongs
/// to a task of the code, so it is not reported as unmatched either.
#[test]
fn a_timer_that_lost_the_race_is_not_reported_as_unmatched() {
    let response = replay(
        &registry(),
        r#"
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        OrchestratorStarted @10
        EventRaised Approval true
        TaskScheduled #1 Record "approved=true"
        OrchestratorCompleted
        ---
        OrchestratorStarted @60
        TimerFired #0 @60
        "#,
    );
    assert_eq!(response.warnings, Vec::<String>::new());
}

/// A host cannot read a wait from history, so the response names the events the code waits for:
/// once each, as the code spelled them, and no longer once an event answered the wait.
#[test]
fn the_response_names_the_events_the_code_waits_for_until_one_arrives() {
    let waiting = replay(
        &registry(),
        "
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        ",
    );
    assert_eq!(waiting.awaited_events, ["Approval"]);
    let preparing = replay(
        &registry(),
        "
        OrchestratorStarted @0
        ExecutionStarted Approval null
        ",
    );
    assert_eq!(preparing.awaited_events, Vec::<String>::new());
    let answered = replay(
        &registry(),
        "
        OrchestratorStarted @0
        ExecutionStarted ApprovalOrTimeout null
        TimerCreated #0 @60
        OrchestratorCompleted
        ---
        OrchestratorStarted @10
        EventRaised approval true
        ",
    );
    assert_eq!(answered.awaited_events, Vec::<String>::new());
    let voting = replay(
        &registry(),
        "
        OrchestratorStarted @0
        ExecutionStarted Ballot null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Vote 1
        ",
    );
    assert_eq!(voting.awaited_events, ["Vote"]);
}
