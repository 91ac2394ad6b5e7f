//! Failures (docs/semantics.md#failures): an activity failure reaches the code as a TaskError
//! naming the task; unhandled, it fails the orchestration keeping the chain; a sub-orchestration
//! failure wraps the child's; a panic fails with `Panic`; `when_all` returns results in input
//! order and fails with the first failure to arrive, after every task finished.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::protocol::ActionKind;
use durable_sdk::{FailureDetails, OrchestrationContext, PANIC, Registry, TASK_FAILED, when_all};
use serde_json::Value;
use support::{failure, replay, replay_table};

/// Reserve, price and notify in parallel (#0..#2); the price.
async fn prepare(ctx: &OrchestrationContext, order: u32) -> Result<Value, FailureDetails> {
    let calls = ["Reserve", "Price", "Notify"].map(|name| ctx.call_activity::<Value>(name, order));
    Ok(when_all(calls).await?.swap_remove(1))
}

/// Charges (#3) and lets a failure propagate.
async fn checkout(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    Ok(ctx.call_activity("Charge", price).await?)
}

/// Charges (#3) and reports a failure as its output.
async fn checkout_reporting(
    ctx: OrchestrationContext,
    order: u32,
) -> Result<String, FailureDetails> {
    let price = prepare(&ctx, order).await?;
    match ctx.call_activity::<String>("Charge", price).await {
        Ok(receipt) => Ok(receipt),
        Err(error) => Ok(format!(
            "{error} | name={} id={} cause={}",
            error.name,
            error.task_id,
            error.cause().error_type
        )),
    }
}

/// Runs `Checkout` as a sub-orchestration (#0).
async fn shop(ctx: OrchestrationContext, order: u32) -> Result<String, FailureDetails> {
    Ok(ctx.call_sub_orchestrator("Checkout", order).await?)
}

async fn out_of_stock(_ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    Err(FailureDetails::new("OutOfStock", "no more red shoes"))
}

async fn panics_at_once(_ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    panic!("the cart is empty")
}

async fn panics_later(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    let items: Vec<u32> = ctx.call_activity("LoadCart", ()).await?;
    assert!(!items.is_empty(), "no items in the cart");
    Ok(())
}

/// Squares 1, 2, 3 in parallel (#0..#2).
async fn fan_out(ctx: OrchestrationContext, _input: ()) -> Result<Vec<u32>, FailureDetails> {
    Ok(when_all((1..=3).map(|i| ctx.call_activity::<u32>("Square", i))).await?)
}

/// Starts B (#0) and C (#1), awaits A (#2), only then fans in B and C.
async fn late_fan_in(ctx: OrchestrationContext, _input: ()) -> Result<Vec<u32>, FailureDetails> {
    let b = ctx.call_activity::<u32>("B", ());
    let c = ctx.call_activity::<u32>("C", ());
    ctx.call_activity::<u32>("A", ()).await?;
    Ok(when_all([b, c]).await?)
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Checkout", checkout)
        .orchestrator("CheckoutReporting", checkout_reporting)
        .orchestrator("Shop", shop)
        .orchestrator("OutOfStock", out_of_stock)
        .orchestrator("PanicsAtOnce", panics_at_once)
        .orchestrator("PanicsLater", panics_later)
        .orchestrator("FanOut", fan_out)
        .orchestrator("LateFanIn", late_fan_in)
}

/// `Checkout` up to the charge (#3).
const CHECKOUT_UNTIL_CHARGE: &str = "
    OrchestratorStarted @0
    ExecutionStarted Checkout 42
    TaskScheduled #0 Reserve 42
    TaskScheduled #1 Price 42
    TaskScheduled #2 Notify 42
    OrchestratorCompleted
    OrchestratorStarted @1
    TaskCompleted #0 true
    TaskCompleted #1 100
    TaskCompleted #2 null
    TaskScheduled #3 Charge 100
    OrchestratorCompleted
";

replay_table! { registry;
    an_activity_failure_reaches_the_code_as_a_task_error_naming_the_task: r#"
        OrchestratorStarted @0
        ExecutionStarted CheckoutReporting 42
        TaskScheduled #0 Reserve 42
        TaskScheduled #1 Price 42
        TaskScheduled #2 Notify 42
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 true
        TaskCompleted #1 100
        TaskCompleted #2 null
        TaskScheduled #3 Charge 100
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        TaskFailed #3 CardDeclined: insufficient funds
    "# => r#"
        Complete #4 Completed "Activity 'Charge' (#3) failed: insufficient funds \
            | name=Charge id=3 cause=CardDeclined"
    "#;

    an_unhandled_activity_failure_fails_the_orchestration_keeping_the_chain:
        &format!("{CHECKOUT_UNTIL_CHARGE}
        ---
        OrchestratorStarted @2
        TaskFailed #3 CardDeclined: insufficient funds
        ") => "
        Complete #4 Failed TaskFailed: Activity 'Charge' (#3) failed: insufficient funds \\
            > CardDeclined: insufficient funds
    ";

    a_sub_orchestration_failure_wraps_the_child_failure: "
        OrchestratorStarted @0
        ExecutionStarted Shop 42
        SubOrchestrationInstanceCreated #0 Checkout inst:0 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @5
        SubOrchestrationInstanceFailed #0 TaskFailed: Activity 'Charge' (#3) failed: insufficient funds \\
            > CardDeclined: insufficient funds
    " => "
        Complete #1 Failed \\
            TaskFailed: SubOrchestration 'Checkout' (#0) failed: Activity 'Charge' (#3) failed: insufficient funds \\
            > TaskFailed: Activity 'Charge' (#3) failed: insufficient funds \\
            > CardDeclined: insufficient funds
    ";

    an_error_the_orchestrator_returns_fails_it_with_those_details: "
        ---
        OrchestratorStarted @0
        ExecutionStarted OutOfStock null
    " => "
        Complete #0 Failed OutOfStock: no more red shoes
    ";

    a_panicking_orchestrator_fails_with_error_type_panic: "
        ---
        OrchestratorStarted @0
        ExecutionStarted PanicsAtOnce null
    " => "
        Complete #0 Failed Panic: the cart is empty
    ";

    a_panic_after_a_completion_fails_the_orchestration: "
        OrchestratorStarted @0
        ExecutionStarted PanicsLater null
        TaskScheduled #0 LoadCart null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #0 []
    " => "
        Complete #1 Failed Panic: no items in the cart
    ";

    when_all_returns_results_in_input_order: "
        OrchestratorStarted @0
        ExecutionStarted FanOut null
        TaskScheduled #0 Square 1
        TaskScheduled #1 Square 2
        TaskScheduled #2 Square 3
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #2 9
        TaskCompleted #0 1
        TaskCompleted #1 4
    " => "
        Complete #3 Completed [1,4,9]
    ";

    when_all_waits_for_every_task_before_failing: "
        OrchestratorStarted @0
        ExecutionStarted FanOut null
        TaskScheduled #0 Square 1
        TaskScheduled #1 Square 2
        TaskScheduled #2 Square 3
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #1 Overflow: 2 is too big
        TaskCompleted #0 1
    " => "";

    when_all_fails_with_the_first_failure_to_arrive: "
        OrchestratorStarted @0
        ExecutionStarted FanOut null
        TaskScheduled #0 Square 1
        TaskScheduled #1 Square 2
        TaskScheduled #2 Square 3
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskFailed #2 Overflow: 3 is too big
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        TaskFailed #0 Overflow: 1 is too big
        TaskCompleted #1 4
    " => "
        Complete #3 Failed TaskFailed: Activity 'Square' (#2) failed: 3 is too big \\
            > Overflow: 3 is too big
    ";

    /// B and C both failed while the code awaited A; C's failure arrived first.
    when_all_fails_with_the_first_failure_to_arrive_even_before_it_was_awaited: "
        OrchestratorStarted @0
        ExecutionStarted LateFanIn null
        TaskScheduled #0 B null
        TaskScheduled #1 C null
        TaskScheduled #2 A null
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskFailed #1 CFailed: c broke
        TaskFailed #0 BFailed: b broke
        TaskCompleted #2 1
    " => "
        Complete #3 Failed TaskFailed: Activity 'C' (#1) failed: c broke > CFailed: c broke
    ";
}

#[test]
fn a_panic_failure_records_where_it_happened() {
    let response = replay(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted PanicsAtOnce null",
    );
    let failure = response.actions[0].kind.to_event_kind().failure().cloned();
    let failure = failure.unwrap();
    assert_eq!(failure.error_type, PANIC);
    assert!(
        failure
            .stack_trace
            .as_deref()
            .is_some_and(|trace| trace.contains("failures.rs")),
        "{failure:?}"
    );
}

/// The chain the error-propagation view draws: replay the child to its failure, hand that failure
/// to the parent, and read parent -> child -> activity back from the parent's completion.
#[test]
fn the_failure_chain_runs_from_the_parent_to_the_activity() {
    let registry = registry();
    let child = replay(
        &registry,
        &format!(
            "{CHECKOUT_UNTIL_CHARGE}\n---\nOrchestratorStarted @2\nTaskFailed #3 CardDeclined: insufficient funds"
        ),
    );
    let ActionKind::CompleteOrchestration {
        failure: Some(child_failure),
        ..
    } = &child.actions[0].kind
    else {
        panic!("the child must fail: {:?}", child.actions);
    };
    let mut parent = support::request(
        "
        OrchestratorStarted @0
        ExecutionStarted Shop 42
        SubOrchestrationInstanceCreated #0 Checkout inst:0 42
        OrchestratorCompleted
        ---
        OrchestratorStarted @5
        SubOrchestrationInstanceFailed #0 Placeholder
        ",
    );
    parent.new_events[1].kind = durable_sdk::EventKind::SubOrchestrationInstanceFailed {
        task_scheduled_id: 0,
        failure: child_failure.clone(),
    };
    let response = registry.orchestrate_uncached(parent);
    let parent_failure = response.actions[0].kind.to_event_kind().failure().cloned();
    let parent_failure = parent_failure.unwrap();
    let chain: Vec<(&str, &str)> = parent_failure
        .chain()
        .map(|failure| (failure.error_type.as_str(), failure.error_message.as_str()))
        .collect();
    assert_eq!(
        chain,
        [
            (
                TASK_FAILED,
                "SubOrchestration 'Checkout' (#0) failed: Activity 'Charge' (#3) failed: insufficient funds"
            ),
            (
                TASK_FAILED,
                "Activity 'Charge' (#3) failed: insufficient funds"
            ),
            ("CardDeclined", "insufficient funds"),
        ]
    );
    assert_eq!(
        parent_failure.root_cause(),
        &failure("CardDeclined: insufficient funds")
    );
}
