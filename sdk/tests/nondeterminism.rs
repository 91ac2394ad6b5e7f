//! Nondeterminism (docs/semantics.md#nondeterminism): when replayed code disagrees with history,
//! the orchestration fails with a `NonDeterminism` failure whose message says what differs, and the
//! response carries the structured diff {sequence id, expected, actual} (**Ours**).
//!
//! Every case replays the same history, recorded by `checkout_v1`, against a changed version of
//! the code registered under the same name.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::protocol::{CallKind, DurableCall, NonDeterminism};
use durable_sdk::{FailureDetails, NON_DETERMINISM, OrchestrationContext, Registry, when_all};
use serde_json::Value;
use std::time::Duration;
use support::{lines, render_actions, replay, replay_table};

/// Reserve, price and notify in parallel (#0..#2), then charge the price (#3).
async fn prepare(ctx: &OrchestrationContext, order: u32) -> Result<Value, FailureDetails> {
    let calls = ["Reserve", "Price", "Notify"].map(|name| ctx.call_activity::<Value>(name, order));
    let [_reserved, price, _notified]: [Value; 3] = when_all(calls).await?.try_into().unwrap();
    Ok(price)
}

/// The version that recorded [`HISTORY`].
async fn checkout_v1(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    Ok(ctx.call_activity("Charge", price).await?)
}

/// Now waits a minute where it used to charge.
async fn checkout_timer(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    ctx.create_timer_after(Duration::from_secs(60)).await?;
    Ok(ctx.call_activity("Charge", price).await?)
}

/// Now refunds where it used to charge.
async fn checkout_refund(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    Ok(ctx.call_activity("Refund", price).await?)
}

/// Now waits for a person where it used to charge: call #3 is never made.
async fn checkout_manual(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let _price = prepare(&ctx, order).await?;
    Ok(ctx.wait_for_external_event("Charged").await?)
}

/// Now also audits, in the same episode as the charge: call #4 history never had.
async fn checkout_audit(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    let charge = ctx.call_activity::<String>("Charge", &price);
    let audit = ctx.call_activity::<Value>("Audit", &price);
    audit.await?;
    Ok(charge.await?)
}

/// Now ships after charging: a call after everything history recorded is new work, not a change.
async fn checkout_ship(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    let receipt: String = ctx.call_activity("Charge", price).await?;
    ctx.call_activity::<Value>("Ship", order).await?;
    Ok(receipt)
}

fn registry_with<F, Fut>(checkout: F) -> Registry
where
    F: Fn(OrchestrationContext, u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<String, FailureDetails>> + 'static,
{
    Registry::new().orchestrator("Checkout", checkout)
}

const HISTORY: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted Checkout 42
    TaskScheduled #0 Reserve 42
    TaskScheduled #1 Price 42
    TaskScheduled #2 Notify 42
    OrchestratorCompleted
    OrchestratorStarted @1
    TaskCompleted #1 100
    TaskCompleted #0 true
    TaskCompleted #2 null
    TaskScheduled #3 Charge 100
    OrchestratorCompleted
    ---
    OrchestratorStarted @2
    TaskCompleted #3 "receipt-1"
"#;

fn call(kind: CallKind, name: &str) -> Option<DurableCall> {
    Some(DurableCall::new(kind, name))
}

/// Replays [`HISTORY`] with `registry` and checks the diff and the failing completion.
fn assert_nondeterminism(registry: Registry, diff: NonDeterminism, actions: &str) {
    let response = replay(&registry, HISTORY);
    assert_eq!(response.nondeterminism.as_ref(), Some(&diff));
    let actual = render_actions(&response.actions);
    let expected = lines(actions);
    assert!(
        actual == expected,
        "actions differ\n--- expected\n{expected}\n--- actual\n{actual}"
    );
    assert_eq!(
        response
            .actions
            .last()
            .unwrap()
            .kind
            .to_event_kind()
            .failure(),
        Some(&FailureDetails::new(NON_DETERMINISM, diff.to_string()).non_retriable())
    );
}

#[test]
fn the_recorded_code_replays_without_nondeterminism() {
    support::assert_actions(
        &registry_with(checkout_v1),
        HISTORY,
        r#"Complete #4 Completed "receipt-1""#,
    );
}

#[test]
fn a_timer_where_history_has_an_activity_is_nondeterminism() {
    assert_nondeterminism(
        registry_with(checkout_timer),
        NonDeterminism {
            sequence_id: 3,
            expected: call(CallKind::Activity, "Charge"),
            actual: call(CallKind::Timer, ""),
        },
        r#"
        Complete #4 Failed NonDeterminism: history has call_activity "Charge" (TaskScheduled) as \
        call #3, but the code now makes create_timer (TimerCreated) as call #3 [non-retriable]
        "#,
    );
}

#[test]
fn a_different_activity_name_is_nondeterminism() {
    assert_nondeterminism(
        registry_with(checkout_refund),
        NonDeterminism {
            sequence_id: 3,
            expected: call(CallKind::Activity, "Charge"),
            actual: call(CallKind::Activity, "Refund"),
        },
        r#"
        Complete #4 Failed NonDeterminism: history has call_activity "Charge" (TaskScheduled) as \
        call #3, but the code now makes call_activity "Refund" (TaskScheduled) as call #3 \
        [non-retriable]
        "#,
    );
}

#[test]
fn a_call_in_history_that_the_code_never_makes_is_nondeterminism() {
    assert_nondeterminism(
        registry_with(checkout_manual),
        NonDeterminism {
            sequence_id: 3,
            expected: call(CallKind::Activity, "Charge"),
            actual: None,
        },
        r#"
        Complete #3 Failed NonDeterminism: history has call_activity "Charge" (TaskScheduled) as \
        call #3, but the code never makes call #3 [non-retriable]
        "#,
    );
}

#[test]
fn a_call_the_code_makes_that_history_does_not_have_is_nondeterminism() {
    assert_nondeterminism(
        registry_with(checkout_audit),
        NonDeterminism {
            sequence_id: 4,
            expected: None,
            actual: call(CallKind::Activity, "Audit"),
        },
        r#"
        Complete #5 Failed NonDeterminism: the code makes call_activity "Audit" (TaskScheduled) \
        as call #4, but history has no call #4 at this point [non-retriable]
        "#,
    );
}

replay_table! { ship_registry;
    a_call_made_after_everything_history_recorded_is_new_work: HISTORY => "
        ScheduleTask #4 Ship 42
    ";
}

fn ship_registry() -> Registry {
    registry_with(checkout_ship)
}

/// Inputs are not compared: only the kind and name of each call (as in the Durable Task SDKs).
#[test]
fn a_different_input_is_not_nondeterminism() {
    async fn checkout_cheaper(
        ctx: OrchestrationContext,
        order: u32,
    ) -> Result<String, FailureDetails> {
        let _price = prepare(&ctx, order).await?;
        Ok(ctx.call_activity("Charge", 90).await?)
    }
    let response = replay(&registry_with(checkout_cheaper), HISTORY);
    assert_eq!(response.nondeterminism, None);
    assert_eq!(
        render_actions(&response.actions),
        r#"Complete #4 Completed "receipt-1""#
    );
}

/// The recorded version, whose execution ended by continuing as new.
async fn renew(ctx: OrchestrationContext, round: u32) -> Result<u32, FailureDetails> {
    ctx.call_activity::<Value>("Work", round).await?;
    ctx.continue_as_new(round + 1);
    Ok(round)
}

/// Now completes where it used to continue as new.
async fn finish_instead(ctx: OrchestrationContext, round: u32) -> Result<u32, FailureDetails> {
    ctx.call_activity::<Value>("Work", round).await?;
    Ok(round)
}

const RENEWED: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted Renew 1
    TaskScheduled #0 Work 1
    OrchestratorCompleted
    OrchestratorStarted @1
    TaskCompleted #0 null
    ContinueAsNew #1 2
    OrchestratorCompleted
"#;

#[test]
fn completing_where_history_continued_as_new_is_nondeterminism() {
    let response = replay(&Registry::new().orchestrator("Renew", renew), RENEWED);
    assert_eq!(response.nondeterminism, None);
    let response = replay(
        &Registry::new().orchestrator("Renew", finish_instead),
        RENEWED,
    );
    assert_eq!(
        response.nondeterminism,
        Some(NonDeterminism {
            sequence_id: 1,
            expected: call(CallKind::Complete, "ContinuedAsNew"),
            actual: call(CallKind::Complete, "Completed"),
        })
    );
}

#[test]
fn a_failure_the_host_injected_at_start_replays_without_nondeterminism() {
    // The host failed the instance before its code ran (a fault rule on the orchestration): the
    // code's own first call was never recorded, and that is not a divergence.
    let history = r#"
        OrchestratorStarted @0
        ExecutionStarted Checkout 42
        FaultInjected rule 1: fail Boom: injected
        ExecutionCompleted #0 Failed Boom: injected
        OrchestratorCompleted
    "#;
    let response = replay(&registry_with(checkout_v1), history);
    assert_eq!(response.nondeterminism, None);
    assert!(response.actions.is_empty(), "{:?}", response.actions);
}
