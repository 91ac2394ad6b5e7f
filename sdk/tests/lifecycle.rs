//! The end of an execution other than returning (docs/semantics.md#continue-as-new,
//! #suspend-and-resume, #terminate): continue-as-new (with and without carrying over events nobody
//! took), suspend (only resume and terminate are processed; other events wait) and terminate
//! (completes as Terminated with the reason as output).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::{FailureDetails, OrchestrationContext, Registry};
use serde_json::Value;
use support::replay_table;

/// Adds up `Add` events, one per execution, until the total reaches 10.
async fn counter(ctx: OrchestrationContext, total: i64) -> Result<i64, FailureDetails> {
    let total = total + ctx.wait_for_external_event::<i64>("Add").await?;
    if total < 10 {
        ctx.continue_as_new(total);
    }
    Ok(total)
}

/// [`counter`], keeping the events it did not take for the next execution.
async fn counter_keeping_events(
    ctx: OrchestrationContext,
    total: i64,
) -> Result<i64, FailureDetails> {
    let total = total + ctx.wait_for_external_event::<i64>("Add").await?;
    if total < 10 {
        ctx.continue_as_new_keeping_events(total);
    }
    Ok(total)
}

/// Processes one batch (#0) per execution, keeping events for the next.
async fn batcher(ctx: OrchestrationContext, batch: u32) -> Result<(), FailureDetails> {
    ctx.call_activity::<Value>("Process", batch).await?;
    ctx.continue_as_new_keeping_events(batch + 1);
    Ok(())
}

/// Prepares (#0), then waits for approval.
async fn approval(ctx: OrchestrationContext, _input: ()) -> Result<bool, FailureDetails> {
    ctx.call_activity::<Value>("Prepare", ()).await?;
    Ok(ctx.wait_for_external_event("Approval").await?)
}

/// Two steps (#0, #1).
async fn two_steps(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    ctx.call_activity::<Value>("First", ()).await?;
    ctx.call_activity::<Value>("Second", ()).await?;
    Ok(())
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Counter", counter)
        .orchestrator("CounterKeepingEvents", counter_keeping_events)
        .orchestrator("Batcher", batcher)
        .orchestrator("Approval", approval)
        .orchestrator("TwoSteps", two_steps)
}

replay_table! { registry;
    continue_as_new_ends_the_execution_with_the_new_input: "
        ---
        OrchestratorStarted @0
        ExecutionStarted Counter 1
        EventRaised Add 2
    " => "
        Complete #0 ContinuedAsNew 3
    ";

    continue_as_new_drops_events_nobody_took: r#"
        OrchestratorStarted @0
        ExecutionStarted Counter 1
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Add 2
        EventRaised Add 5
        EventRaised Other "x"
    "# => "
        Complete #0 ContinuedAsNew 3
    ";

    continue_as_new_keeping_events_carries_buffered_events_over: r#"
        OrchestratorStarted @0
        ExecutionStarted Batcher 1
        TaskScheduled #0 Process 1
        OrchestratorCompleted
        OrchestratorStarted @1
        EventRaised Add 5
        EventRaised Other "x"
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        TaskCompleted #0 null
    "# => r#"
        Complete #1 ContinuedAsNew 2
        carry EventRaised Add 5
        carry EventRaised Other "x"
    "#;

    /// DurableTask.Core does the same (TaskOrchestrationExecutor: an EventRaised after
    /// ContinueAsNew goes to the next iteration).
    events_arriving_after_continue_as_new_in_the_same_episode_are_carried_over: r#"
        ---
        OrchestratorStarted @0
        ExecutionStarted CounterKeepingEvents 1
        EventRaised Add 2
        EventRaised Add 5
        EventRaised Other "x"
    "# => r#"
        Complete #0 ContinuedAsNew 3
        carry EventRaised Add 5
        carry EventRaised Other "x"
    "#;

    /// The host starts the next execution with ExecutionStarted(new input) and the carried-over
    /// events.
    the_next_execution_takes_the_carried_over_events: "
        ---
        OrchestratorStarted @3
        ExecutionStarted CounterKeepingEvents 8
        EventRaised Add 5
    " => "
        Complete #0 Completed 13
    ";

    replaying_an_execution_that_continued_as_new_makes_no_actions: "
        OrchestratorStarted @0
        ExecutionStarted Counter 1
        EventRaised Add 2
        ContinueAsNew #0 3
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EventRaised Add 1
    " => "";

    events_wait_while_suspended: "
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        ExecutionSuspended for review
        TaskCompleted #0 null
        EventRaised Approval true
    " => "";

    resume_delivers_the_held_events_in_order: "
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        ExecutionSuspended for review
        TaskCompleted #0 null
        EventRaised Approval true
        OrchestratorCompleted
        OrchestratorStarted @2
        EventRaised Approval false
        OrchestratorCompleted
        ---
        OrchestratorStarted @3
        ExecutionResumed
    " => "
        Complete #1 Completed true
    ";

    events_after_resume_are_processed_at_once: "
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        ExecutionSuspended
        ExecutionResumed
        TaskCompleted #0 null
        EventRaised Approval true
    " => "
        Complete #1 Completed true
    ";

    terminate_completes_as_terminated_with_the_reason: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        ExecutionTerminated "cancelled by the customer"
    "# => r#"
        Complete #1 Terminated "cancelled by the customer"
    "#;

    terminate_is_processed_while_suspended: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        ExecutionSuspended
        TaskCompleted #0 null
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        ExecutionTerminated "stuck in review"
    "# => r#"
        Complete #1 Terminated "stuck in review"
    "#;

    events_after_terminate_are_ignored: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        ExecutionTerminated "stop"
        TaskCompleted #0 null
        EventRaised Approval true
        ExecutionTerminated "stop again"
    "# => r#"
        Complete #1 Terminated "stop"
    "#;

    /// The code already scheduled #1 in this episode; terminating drops it unsent.
    terminate_drops_the_actions_of_its_episode: r#"
        OrchestratorStarted @0
        ExecutionStarted TwoSteps null
        TaskScheduled #0 First null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #0 null
        ExecutionTerminated "stop"
    "# => r#"
        Complete #2 Terminated "stop"
    "#;

    replaying_a_terminated_history_makes_no_actions: r#"
        OrchestratorStarted @0
        ExecutionStarted Approval null
        TaskScheduled #0 Prepare null
        OrchestratorCompleted
        OrchestratorStarted @1
        ExecutionTerminated "stop"
        ExecutionCompleted #1 Terminated "stop"
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        TaskCompleted #0 null
    "# => "";
}
