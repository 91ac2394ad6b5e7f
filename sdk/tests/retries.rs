//! Retries (docs/semantics.md#retries, **Ours**: DurableTask.Core): retries run in the
//! orchestrator, so history shows every attempt: TaskScheduled(n), TaskFailed(n),
//! TimerCreated(n+1), TimerFired(n+1), TaskScheduled(n+2), ... Each attempt has a new id; the delay
//! is min(first * coefficient^(attempt-1), max); there is no timer after the last failure;
//! retry_timeout runs on the orchestration clock; non-retriable failures are not retried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::{
    FailureDetails, OrchestrationContext, Registry, RetryPolicy, SubOrchestrationOptions,
};
use serde_json::Value;
use std::time::Duration;
use support::replay_table;

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// 4 attempts; delays 5, 10, then 15 (20 capped at the 15-minute maximum).
fn backoff() -> RetryPolicy {
    RetryPolicy::new(4, minutes(5))
        .with_backoff(2.0)
        .with_max_retry_interval(minutes(15))
}

async fn pay(ctx: OrchestrationContext, amount: u32) -> Result<String, FailureDetails> {
    Ok(ctx
        .call_activity_with_retry("Charge", amount, backoff())
        .await?)
}

/// Up to 10 attempts 5 minutes apart, but only within 10 minutes of the first.
async fn pay_within(ctx: OrchestrationContext, amount: u32) -> Result<String, FailureDetails> {
    let policy = RetryPolicy::new(10, minutes(5)).with_retry_timeout(minutes(10));
    Ok(ctx
        .call_activity_with_retry("Charge", amount, policy)
        .await?)
}

/// Retries anything but fraud.
async fn pay_unless_fraud(
    ctx: OrchestrationContext,
    amount: u32,
) -> Result<String, FailureDetails> {
    let policy =
        RetryPolicy::new(3, minutes(5)).with_handle(|failure| failure.error_type != "Fraud");
    Ok(ctx
        .call_activity_with_retry("Charge", amount, policy)
        .await?)
}

/// Charges through a sub-orchestration, retried like an activity.
async fn pay_via_child(ctx: OrchestrationContext, amount: u32) -> Result<String, FailureDetails> {
    let options = SubOrchestrationOptions {
        instance_id: None,
        retry: Some(RetryPolicy::new(2, minutes(5))),
    };
    Ok(ctx
        .call_sub_orchestrator_with("Charger", amount, options)
        .await?)
}

/// Starts a retried charge, then waits for approval before looking at the charge.
async fn pay_after_approval(
    ctx: OrchestrationContext,
    amount: u32,
) -> Result<String, FailureDetails> {
    let charge = ctx.call_activity_with_retry::<String>("Charge", amount, backoff());
    let _approved: Value = ctx.wait_for_external_event("Approval").await?;
    Ok(charge.await?)
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Pay", pay)
        .orchestrator("PayWithin", pay_within)
        .orchestrator("PayUnlessFraud", pay_unless_fraud)
        .orchestrator("PayViaChild", pay_via_child)
        .orchestrator("PayAfterApproval", pay_after_approval)
}

replay_table! { registry;
    a_failed_attempt_is_followed_by_a_timer_of_the_first_retry_interval: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
    " => "
        // Five minutes after the episode that saw the failure.
        CreateTimer #1 @6
    ";

    the_next_attempt_gets_a_new_id_when_the_retry_timer_fires: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        ---
        OrchestratorStarted @6
        TimerFired #1 @6
    " => "
        ScheduleTask #2 Charge 42
    ";

    the_delay_grows_by_the_backoff_coefficient: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        OrchestratorStarted @6
        TimerFired #1 @6
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @7
        TaskFailed #2 CardDeclined: insufficient funds
    " => "
        // 5 * 2^1 = 10 minutes.
        CreateTimer #3 @17
    ";

    the_delay_is_capped_by_the_max_retry_interval: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        OrchestratorStarted @6
        TimerFired #1 @6
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @7
        TaskFailed #2 CardDeclined: insufficient funds
        TimerCreated #3 @17
        OrchestratorCompleted
        OrchestratorStarted @17
        TimerFired #3 @17
        TaskScheduled #4 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @18
        TaskFailed #4 CardDeclined: insufficient funds
    " => "
        // 5 * 2^2 = 20 minutes, capped at 15.
        CreateTimer #5 @33
    ";

    no_timer_follows_the_last_failed_attempt: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        OrchestratorStarted @6
        TimerFired #1 @6
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @7
        TaskFailed #2 CardDeclined: insufficient funds
        TimerCreated #3 @17
        OrchestratorCompleted
        OrchestratorStarted @17
        TimerFired #3 @17
        TaskScheduled #4 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @18
        TaskFailed #4 CardDeclined: insufficient funds
        TimerCreated #5 @33
        OrchestratorCompleted
        OrchestratorStarted @33
        TimerFired #5 @33
        TaskScheduled #6 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @34
        TaskFailed #6 CardDeclined: insufficient funds
    " => "
        // The error names the last attempt and keeps its failure as the inner one.
        Complete #7 Failed TaskFailed: Activity 'Charge' (#6) failed: insufficient funds \\
            > CardDeclined: insufficient funds
    ";

    a_retry_that_succeeds_returns_its_result: r#"
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        OrchestratorStarted @6
        TimerFired #1 @6
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @7
        TaskCompleted #2 "receipt-1"
    "# => r#"
        Complete #3 Completed "receipt-1"
    "#;

    a_non_retriable_failure_is_not_retried: "
        OrchestratorStarted @0
        ExecutionStarted Pay 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #0 CardExpired: card expired [non-retriable]
    " => "
        Complete #1 Failed TaskFailed: Activity 'Charge' (#0) failed: card expired \\
            > CardExpired: card expired [non-retriable]
    ";

    /// Measured from @0 on the orchestration clock: 9 minutes. (On the wall clock the history is
    /// years old and nothing would be retried.)
    a_failure_within_the_retry_timeout_is_retried: "
        OrchestratorStarted @0
        ExecutionStarted PayWithin 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @2
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @7
        OrchestratorCompleted
        OrchestratorStarted @7
        TimerFired #1 @7
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @9
        TaskFailed #2 CardDeclined: insufficient funds
    " => "
        CreateTimer #3 @14
    ";

    a_failure_after_the_retry_timeout_is_not_retried: "
        OrchestratorStarted @0
        ExecutionStarted PayWithin 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        OrchestratorStarted @2
        TaskFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @7
        OrchestratorCompleted
        OrchestratorStarted @7
        TimerFired #1 @7
        TaskScheduled #2 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @12
        TaskFailed #2 CardDeclined: insufficient funds
    " => "
        Complete #3 Failed TaskFailed: Activity 'Charge' (#2) failed: insufficient funds \\
            > CardDeclined: insufficient funds
    ";

    the_handle_predicate_retries_the_failures_it_accepts: "
        OrchestratorStarted @0
        ExecutionStarted PayUnlessFraud 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
    " => "
        CreateTimer #1 @6
    ";

    the_handle_predicate_stops_the_failures_it_rejects: "
        OrchestratorStarted @0
        ExecutionStarted PayUnlessFraud 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #0 Fraud: stolen card
    " => "
        Complete #1 Failed TaskFailed: Activity 'Charge' (#0) failed: stolen card > Fraud: stolen card
    ";

    a_failed_sub_orchestration_is_retried_as_a_new_child: "
        OrchestratorStarted @0
        ExecutionStarted PayViaChild 42
        SubOrchestrationInstanceCreated #0 Charger inst:0 42
        OrchestratorCompleted
        OrchestratorStarted @1
        SubOrchestrationInstanceFailed #0 CardDeclined: insufficient funds
        TimerCreated #1 @6
        OrchestratorCompleted
        ---
        OrchestratorStarted @6
        TimerFired #1 @6
    " => "
        CreateSubOrchestration #2 Charger inst:2 42
    ";

    /// The retry loop runs beside the code, not inside its await: the timer is created while the
    /// code waits for something else.
    retries_progress_while_the_code_waits_for_something_else: "
        OrchestratorStarted @0
        ExecutionStarted PayAfterApproval 42
        TaskScheduled #0 Charge 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #0 CardDeclined: insufficient funds
    " => "
        CreateTimer #1 @6
    ";
}
