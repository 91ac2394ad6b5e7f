//! Every sample, run headless through the real binary on the built sample cdylib
//! (`durable-emu run <cdylib> --orchestration ... --clock virtual --history`): the success path
//! and at least one failure path each, asserting the output and the history events that show the
//! pattern (the compensations ran, the retry timers are there, continue-as-new made new
//! executions, ...). The outputs are the contract `sample-functions/README.md` documents.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_tests::binary::{ScratchDir, Serving, durable_emu};
use durable_emu_tests::built_cdylib;
use durable_emu_tests::printed_status::{
    Library, PrintedStatus, instance_status, run_sample, run_sample_with,
};
use durable_sdk::chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};
use std::time::Duration;

fn time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap_or_else(|error| panic!("{value} is not a timestamp: {error}"))
}

/// For each `TimerCreated`, how far ahead of its recording it was set to fire, in seconds.
fn timer_delays(run: &PrintedStatus) -> Vec<i64> {
    run.events_of("TimerCreated")
        .into_iter()
        .map(|timer| (time(&timer["fireAt"]) - time(&timer["timestamp"])).num_seconds())
        .collect()
}

fn assert_completed(run: &PrintedStatus) {
    assert_eq!(run.exit_code, Some(0), "{}", run.explain());
    assert_eq!(run.runtime_status(), "Completed", "{}", run.explain());
}

fn assert_failed(run: &PrintedStatus) {
    assert_eq!(run.exit_code, Some(1), "{}", run.explain());
    assert_eq!(run.runtime_status(), "Failed", "{}", run.explain());
}

/// The instance failed before its code scheduled anything, because its input did not decode.
fn assert_rejected_input(run: &PrintedStatus) {
    assert_failed(run);
    assert_eq!(
        run.failure_chain(),
        ["SerializationError"],
        "{}",
        run.explain()
    );
    assert_eq!(run.story(), ["ExecutionStarted", "ExecutionCompleted"]);
}

// ----- every sample is there ------------------------------------------------------------------

const SAMPLE_ORCHESTRATIONS: [&str; 8] = [
    "HelloSequence",
    "FanOutFanIn",
    "MonitorJob",
    "ApprovalWorkflow",
    "OrderSaga",
    "ProcessPayment",
    "PeriodicCleanup",
    "BatchOrders",
];

#[test]
fn an_unknown_orchestration_exits_2_and_names_every_sample() {
    let run = run_sample("HelloSequences", "unknown", &Value::Null);
    assert_eq!(run.exit_code, Some(2), "{}", run.explain());
    assert!(
        run.stderr
            .contains("no orchestration named 'HelloSequences'"),
        "{}",
        run.stderr
    );
    for name in SAMPLE_ORCHESTRATIONS {
        assert!(run.stderr.contains(name), "{name} missing: {}", run.stderr);
    }
}

#[test]
fn the_built_in_library_runs_the_same_samples_with_the_same_results() {
    let cases = [
        ("HelloSequence", Value::Null),
        ("FanOutFanIn", json!(10)),
        ("OrderSaga", json!({"order_id": "o-1", "amount": 5})),
        ("BatchOrders", json!(4)),
        (
            "PeriodicCleanup",
            json!({"iterations": 2, "interval_hours": 1}),
        ),
    ];
    for (orchestration, input) in cases {
        let from_cdylib = run_sample(orchestration, "same", &input);
        let built_in = run_sample_with(Library::BuiltIn, ":memory:", orchestration, "same", &input);
        assert_completed(&built_in);
        assert_eq!(built_in.output(), from_cdylib.output(), "{orchestration}");
        // The same events; children and parallel activities may finish in another order.
        let (mut built_in_events, mut cdylib_events) = (built_in.story(), from_cdylib.story());
        built_in_events.sort_unstable();
        cdylib_events.sort_unstable();
        assert_eq!(built_in_events, cdylib_events, "{orchestration}");
    }
}

// ----- HelloSequence: chaining ------------------------------------------------------------------

#[test]
fn hello_sequence_greets_tokyo_seattle_and_london_one_after_another() {
    let run = run_sample("HelloSequence", "hello", &Value::Null);
    assert_completed(&run);
    assert_eq!(
        run.output(),
        &json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    let inputs: Vec<&Value> = run
        .events_of("TaskScheduled")
        .into_iter()
        .map(|event| &event["input"])
        .collect();
    assert_eq!(
        inputs,
        [&json!("Tokyo"), &json!("Seattle"), &json!("London")]
    );
    // Chaining: each call is scheduled only after the previous one completed.
    assert_eq!(
        run.story(),
        [
            "ExecutionStarted",
            "TaskScheduled",
            "TaskCompleted",
            "TaskScheduled",
            "TaskCompleted",
            "TaskScheduled",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
}

#[test]
fn hello_sequence_ignores_its_input_so_any_json_still_greets() {
    // HelloSequence has no input to get wrong; its failure path is the unknown name above.
    let run = run_sample("HelloSequence", "hello-any", &json!({"anything": [1, 2]}));
    assert_completed(&run);
    assert_eq!(run.output().as_array().unwrap().len(), 3);
}

// ----- FanOutFanIn ------------------------------------------------------------------------------

#[test]
fn fan_out_fan_in_of_100_squares_sums_to_338350_and_reports_progress() {
    let run = run_sample("FanOutFanIn", "fan", &json!(100));
    assert_completed(&run);
    assert_eq!(run.output(), &json!(338_350));
    assert_eq!(run.custom_status(), &json!({"done": 100, "total": 100}));
    assert_eq!(run.scheduled_activities(), ["Square"; 100]);
    assert_eq!(run.count("TaskCompleted"), 100);
    // Fan-out: all 100 calls are scheduled before the first result comes back.
    let story = run.story();
    let first_result = story
        .iter()
        .position(|kind| *kind == "TaskCompleted")
        .unwrap();
    let last_call = story
        .iter()
        .rposition(|kind| *kind == "TaskScheduled")
        .unwrap();
    assert!(last_call < first_result, "{story:?}");
}

#[test]
fn fan_out_fan_in_of_zero_is_zero_at_once() {
    let run = run_sample("FanOutFanIn", "fan-0", &json!(0));
    assert_completed(&run);
    assert_eq!(run.output(), &json!(0));
    assert_eq!(run.custom_status(), &json!({"done": 0, "total": 0}));
    assert_eq!(run.count("TaskScheduled"), 0);
}

#[test]
fn fan_out_fan_in_of_a_negative_count_fails_before_fanning_out() {
    let run = run_sample("FanOutFanIn", "fan-neg", &json!(-5));
    assert_rejected_input(&run);
}

// ----- MonitorJob -------------------------------------------------------------------------------

#[test]
fn monitor_job_polls_until_done_and_continues_as_new_every_5_polls() {
    let input = json!({"job_id": "job-7", "polls_needed": 12, "interval_minutes": 10, "deadline_hours": 24});
    let run = run_sample("MonitorJob", "monitor", &input);
    assert_completed(&run);
    assert_eq!(
        run.output(),
        &json!({"job_id": "job-7", "status": "Completed", "polls": 12})
    );
    assert_eq!(run.scheduled_activities(), ["CheckJobStatus"; 12]);
    let checks: Vec<u64> = run
        .events_of("TaskScheduled")
        .into_iter()
        .map(|event| event["input"]["check"].as_u64().unwrap())
        .collect();
    assert_eq!(checks, (1..=12).collect::<Vec<u64>>());
    // A 10-minute durable timer between checks, none after the last.
    assert_eq!(timer_delays(&run), [600; 11]);
    assert_eq!(run.count("TimerFired"), 11);

    // Polls 1-5, 6-10 and 11-12: three executions joined by two ContinueAsNew.
    assert_eq!(run.count("ExecutionStarted"), 3);
    let continued = run.events_of("ContinueAsNew");
    assert_eq!(continued.len(), 2);
    let first_start = time(&run.events_of("ExecutionStarted")[0]["timestamp"]);
    let deadline = first_start + durable_sdk::chrono::TimeDelta::hours(24);
    for (event, polls_done) in continued.iter().zip([5, 10]) {
        assert_eq!(event["input"]["polls_done"], polls_done);
        assert_eq!(event["input"]["job_id"], "job-7");
        // The deadline is fixed once, by the first execution, and carried unchanged.
        assert_eq!(time(&event["input"]["deadline"]), deadline);
    }
    assert_eq!(run.custom_status(), run.output());
}

#[test]
fn monitor_job_times_out_at_the_deadline_when_the_job_is_too_slow() {
    // Checks at 0, 30, 60 and 90 minutes; the wait after the fourth ends at the 2-hour deadline.
    let input =
        json!({"job_id": "slow", "polls_needed": 12, "interval_minutes": 30, "deadline_hours": 2});
    let run = run_sample("MonitorJob", "monitor-late", &input);
    assert_completed(&run);
    assert_eq!(run.output(), &json!({"status": "TimedOut"}));
    assert_eq!(run.scheduled_activities(), ["CheckJobStatus"; 4]);
    assert_eq!(timer_delays(&run), [1800; 4]);
    assert_eq!(run.count("ExecutionStarted"), 1);
    let started = time(&run.events_of("ExecutionStarted")[0]["timestamp"]);
    let last_timer = run.events_of("TimerCreated").pop().unwrap();
    assert_eq!(
        time(&last_timer["fireAt"]) - started,
        durable_sdk::chrono::TimeDelta::hours(2)
    );
}

#[test]
fn monitor_job_rejects_a_job_that_needs_no_polls() {
    let input =
        json!({"job_id": "x", "polls_needed": 0, "interval_minutes": 10, "deadline_hours": 1});
    let run = run_sample("MonitorJob", "monitor-bad", &input);
    assert_failed(&run);
    assert_eq!(run.failure_chain(), ["InvalidInput"]);
    assert_eq!(run.root_failure()["isNonRetriable"], true);
    assert_eq!(run.count("TaskScheduled"), 0);
}

#[test]
fn monitor_job_without_a_job_id_fails_as_undecodable_input() {
    let input = json!({"polls_needed": 3, "interval_minutes": 10, "deadline_hours": 1});
    assert_rejected_input(&run_sample("MonitorJob", "monitor-no-id", &input));
}

// ----- ApprovalWorkflow -------------------------------------------------------------------------
// samples_through_the_engine.rs covers Approved and Rejected through the engine library too.

#[test]
fn approval_workflow_without_an_answer_escalates_when_the_timer_fires() {
    let input = json!({"request": "Buy a bigger server", "timeout_hours": 72});
    let run = run_sample("ApprovalWorkflow", "approval", &input);
    assert_completed(&run);
    assert_eq!(run.output(), &json!("Escalated"));
    assert_eq!(run.scheduled_activities(), ["RequestApproval", "Escalate"]);
    assert_eq!(
        run.story(),
        [
            "ExecutionStarted",
            "TaskScheduled",
            "TaskCompleted",
            "TimerCreated",
            "TimerFired",
            "TaskScheduled",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(timer_delays(&run), [72 * 3600]);
    let request = &run.events_of("TaskScheduled")[0]["input"];
    assert_eq!(request["request"], "Buy a bigger server");
    assert_eq!(request["instance_id"], "approval");
}

#[test]
fn approval_workflow_answered_with_raise_is_decided_when_serve_runs_it() {
    // What the README shows: start it on the real clock (the 72-hour timer cannot fire), raise the
    // answer into the database, and let `serve` deliver it.
    let scratch = ScratchDir::new("approval-raise");
    let db = scratch.file("state.db");
    let cdylib = built_cdylib("sample-functions");
    let cdylib = cdylib.to_str().unwrap();
    let input = json!({"request": "Buy a bigger server", "timeout_hours": 72}).to_string();
    let started = durable_emu(
        &[
            "run",
            cdylib,
            "-o",
            "ApprovalWorkflow",
            "--instance-id",
            "ask",
            "--input",
            &input,
            "--clock",
            "real",
            "--timeout",
            "1s",
            "--db",
            &db,
        ],
        scratch.path(),
    );
    assert_eq!(
        started.status.code(),
        Some(1),
        "still waiting for the answer"
    );
    let waiting = instance_status(&db, "ask");
    assert_eq!(waiting.runtime_status(), "Running", "{}", waiting.explain());
    assert_eq!(waiting.custom_status()["waiting_for"], "Approval");

    let raised = durable_emu(
        &["raise", "ask", "Approval", "false", "--db", &db],
        scratch.path(),
    );
    assert_eq!(raised.status.code(), Some(0));

    let serving = Serving::start(&[cdylib, "--clock", "real", "--db", &db], scratch.path());
    let finished = serving.wait_for(Duration::from_secs(60), |event| {
        event["event"] == "instanceChanged"
            && event["instanceId"] == "ask"
            && event["status"] == "Completed"
    });
    serving.stop();
    assert!(finished.is_some(), "serve never completed the instance");
    let decided = instance_status(&db, "ask");
    assert_eq!(
        decided.output(),
        &json!("Rejected"),
        "{}",
        decided.explain()
    );
    assert_eq!(decided.scheduled_activities(), ["RequestApproval"]);
    assert_eq!(decided.names_of("EventRaised"), ["Approval"]);
    assert_eq!(decided.count("TimerFired"), 0);
}

#[test]
fn approval_workflow_without_a_request_fails_as_undecodable_input() {
    let run = run_sample(
        "ApprovalWorkflow",
        "approval-bad",
        &json!({"timeout_hours": 1}),
    );
    assert_rejected_input(&run);
}

// ----- OrderSaga and ProcessPayment -------------------------------------------------------------

#[test]
fn order_saga_pays_reserves_and_ships() {
    let run = run_sample(
        "OrderSaga",
        "order",
        &json!({"order_id": "o-1", "amount": 49.5}),
    );
    assert_completed(&run);
    assert_eq!(
        run.output(),
        &json!({"order_id": "o-1", "status": "Shipped"})
    );
    assert_eq!(
        run.names_of("SubOrchestrationInstanceCreated"),
        ["ProcessPayment"]
    );
    assert_eq!(
        run.events_of("SubOrchestrationInstanceCreated")[0]["instanceId"],
        "order:0"
    );
    assert_eq!(run.count("SubOrchestrationInstanceCompleted"), 1);
    assert_eq!(
        run.scheduled_activities(),
        ["ReserveInventory", "ShipOrder"]
    );
    assert_eq!(run.custom_status(), &json!({"step": "Shipped"}));
}

#[test]
fn order_saga_failing_at_ship_order_releases_inventory_then_refunds_and_keeps_the_failure() {
    // `fail_at` alone is a complete input: the order id defaults to the instance id.
    let run = run_sample("OrderSaga", "order-ship", &json!({"fail_at": "ShipOrder"}));
    assert_failed(&run);
    assert_eq!(run.failure_chain(), ["TaskFailed", "CarrierUnavailable"]);
    assert_eq!(
        run.json["failureDetails"]["errorMessage"],
        "Activity 'ShipOrder' (#2) failed: no carrier would take order order-ship"
    );
    assert_eq!(
        run.scheduled_activities(),
        [
            "ReserveInventory",
            "ShipOrder",
            "ReleaseInventory",
            "RefundPayment"
        ]
    );
    // The compensations run after the failure, newest step first, and both succeed.
    let story = run.story();
    let failed = story.iter().position(|kind| *kind == "TaskFailed").unwrap();
    assert_eq!(
        story[failed + 1..],
        [
            "TaskScheduled",
            "TaskCompleted",
            "TaskScheduled",
            "TaskCompleted",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(
        run.custom_status(),
        &json!({
            "step": "Compensated",
            "failed_at": "ShipOrder",
            "compensated": ["ReleaseInventory", "RefundPayment"]
        })
    );
    // The refund undoes exactly the payment taken.
    let refund = run.events_of("TaskScheduled")[3]["input"].clone();
    assert_eq!(
        refund,
        json!({"payment_id": "pay-order-ship", "order_id": "order-ship", "amount": 100.0})
    );
}

#[test]
fn order_saga_failing_at_reserve_inventory_only_refunds() {
    let input = json!({"order_id": "o-2", "amount": 10, "fail_at": "ReserveInventory"});
    let run = run_sample("OrderSaga", "order-stock", &input);
    assert_failed(&run);
    assert_eq!(run.failure_chain(), ["TaskFailed", "OutOfStock"]);
    assert_eq!(
        run.scheduled_activities(),
        ["ReserveInventory", "RefundPayment"]
    );
    assert_eq!(run.custom_status()["compensated"], json!(["RefundPayment"]));
}

#[test]
fn order_saga_failing_at_charge_card_retries_in_the_child_and_keeps_the_three_level_chain() {
    let scratch = ScratchDir::new("order-charge");
    let db = scratch.file("state.db");
    let input = json!({"order_id": "o-3", "amount": 25, "fail_at": "ChargeCard"});
    let run = run_sample_with(Library::Cdylib, &db, "OrderSaga", "order-charge", &input);
    assert_failed(&run);
    // activity -> sub-orchestration -> orchestration, read back from the parent's failure.
    assert_eq!(
        run.failure_chain(),
        ["TaskFailed", "TaskFailed", "PaymentGatewayUnavailable"]
    );
    assert!(
        run.json["failureDetails"]["errorMessage"]
            .as_str()
            .unwrap()
            .starts_with("SubOrchestration 'ProcessPayment' (#0) failed: Activity 'ChargeCard'"),
        "{}",
        run.explain()
    );
    assert_eq!(
        run.story(),
        [
            "ExecutionStarted",
            "SubOrchestrationInstanceCreated",
            "SubOrchestrationInstanceFailed",
            "ExecutionCompleted"
        ]
    );
    // Nothing was done, so nothing is compensated.
    assert_eq!(run.count("TaskScheduled"), 0);
    assert_eq!(
        run.custom_status(),
        &json!({"step": "Failed", "failed_at": "ProcessPayment"})
    );

    // The child shows every attempt and the backoff between them: 5 s, then 10 s, no timer
    // after the third failure.
    let child = instance_status(&db, "order-charge:0");
    assert_eq!(child.exit_code, Some(0), "{}", child.explain());
    assert_eq!(child.runtime_status(), "Failed");
    assert_eq!(child.json["name"], "ProcessPayment");
    assert_eq!(child.scheduled_activities(), ["ChargeCard"; 3]);
    assert_eq!(child.count("TaskFailed"), 3);
    assert_eq!(timer_delays(&child), [5, 10]);
    assert_eq!(
        child.story(),
        [
            "ExecutionStarted",
            "TaskScheduled",
            "TaskFailed",
            "TimerCreated",
            "TimerFired",
            "TaskScheduled",
            "TaskFailed",
            "TimerCreated",
            "TimerFired",
            "TaskScheduled",
            "TaskFailed",
            "ExecutionCompleted"
        ]
    );
    assert_eq!(
        child.failure_chain(),
        ["TaskFailed", "PaymentGatewayUnavailable"]
    );
}

#[test]
fn order_saga_with_a_non_positive_amount_is_not_retried() {
    let scratch = ScratchDir::new("order-amount");
    let db = scratch.file("state.db");
    let input = json!({"order_id": "o-4", "amount": 0});
    let run = run_sample_with(Library::Cdylib, &db, "OrderSaga", "order-amount", &input);
    assert_failed(&run);
    assert_eq!(
        run.failure_chain(),
        ["TaskFailed", "TaskFailed", "InvalidAmount"]
    );
    assert_eq!(run.root_failure()["isNonRetriable"], true);
    let child = instance_status(&db, "order-amount:0");
    assert_eq!(child.scheduled_activities(), ["ChargeCard"]);
    assert_eq!(child.count("TimerCreated"), 0);
}

#[test]
fn order_saga_with_an_unknown_failing_step_fails_as_undecodable_input() {
    let input = json!({"order_id": "o-5", "amount": 5, "fail_at": "Checkout"});
    let run = run_sample("OrderSaga", "order-typo", &input);
    assert_rejected_input(&run);
    assert!(
        run.root_failure()["errorMessage"]
            .as_str()
            .unwrap()
            .contains("ShipOrder"),
        "the message names the valid steps: {}",
        run.explain()
    );
}

// ----- PeriodicCleanup --------------------------------------------------------------------------

#[test]
fn periodic_cleanup_runs_k_times_across_continue_as_new_and_counts_every_run() {
    let run = run_sample(
        "PeriodicCleanup",
        "cleanup",
        &json!({"iterations": 3, "interval_hours": 6}),
    );
    assert_completed(&run);
    assert_eq!(run.output(), &json!({"runs": 3}));
    assert_eq!(run.scheduled_activities(), ["Cleanup"; 3]);
    assert_eq!(timer_delays(&run), [6 * 3600; 3]);
    // Three executions that clean up and continue as new, and a last one that reports.
    assert_eq!(run.count("ExecutionStarted"), 4);
    let carried: Vec<&Value> = run
        .events_of("ContinueAsNew")
        .into_iter()
        .map(|event| &event["input"])
        .collect();
    assert_eq!(
        carried,
        [
            &json!({"iterations": 2, "interval_hours": 6, "runs_so_far": 1}),
            &json!({"iterations": 1, "interval_hours": 6, "runs_so_far": 2}),
            &json!({"iterations": 0, "interval_hours": 6, "runs_so_far": 3}),
        ]
    );
    let removed: Vec<&Value> = run
        .events_of("TaskCompleted")
        .into_iter()
        .map(|event| &event["result"]["removed"])
        .collect();
    assert_eq!(removed, [&json!(72); 3]);
}

#[test]
fn periodic_cleanup_with_no_iterations_reports_zero_runs_at_once() {
    let run = run_sample(
        "PeriodicCleanup",
        "cleanup-0",
        &json!({"iterations": 0, "interval_hours": 6}),
    );
    assert_completed(&run);
    assert_eq!(run.output(), &json!({"runs": 0}));
    assert_eq!(run.count("ExecutionStarted"), 1);
}

#[test]
fn periodic_cleanup_with_a_negative_interval_fails_as_undecodable_input() {
    let input = json!({"iterations": 2, "interval_hours": -1});
    assert_rejected_input(&run_sample("PeriodicCleanup", "cleanup-bad", &input));
}

// ----- BatchOrders ------------------------------------------------------------------------------

#[test]
fn batch_orders_runs_sagas_in_parallel_and_counts_shipped_and_failed() {
    let scratch = ScratchDir::new("batch");
    let db = scratch.file("state.db");
    let run = run_sample_with(Library::Cdylib, &db, "BatchOrders", "batch", &json!(10));
    assert_completed(&run);
    // Orders 2, 5 and 8 (i % 3 == 2) fail at ShipOrder.
    assert_eq!(run.output(), &json!({"shipped": 7, "failed": 3}));
    assert_eq!(
        run.custom_status(),
        &json!({"done": 10, "total": 10, "failed_orders": ["order-2", "order-5", "order-8"]})
    );
    let children: Vec<&str> = run
        .events_of("SubOrchestrationInstanceCreated")
        .into_iter()
        .map(|event| event["instanceId"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=10).map(|i| format!("batch:order-{i}")).collect();
    assert_eq!(children, expected);
    assert_eq!(
        run.names_of("SubOrchestrationInstanceCreated"),
        ["OrderSaga"; 10]
    );
    assert_eq!(run.count("SubOrchestrationInstanceCompleted"), 7);
    assert_eq!(run.count("SubOrchestrationInstanceFailed"), 3);
    // Fan-out: every saga starts before the first one ends.
    let story = run.story();
    let first_end = story
        .iter()
        .position(|kind| {
            kind.starts_with("SubOrchestrationInstance")
                && *kind != "SubOrchestrationInstanceCreated"
        })
        .unwrap();
    let last_start = story
        .iter()
        .rposition(|kind| *kind == "SubOrchestrationInstanceCreated")
        .unwrap();
    assert!(last_start < first_end, "{story:?}");

    // A failed child is a saga that compensated; a shipped one is not.
    let failed = instance_status(&db, "batch:order-5");
    assert_eq!(failed.runtime_status(), "Failed", "{}", failed.explain());
    assert_eq!(failed.json["parent"]["instanceId"], "batch");
    assert_eq!(
        failed.scheduled_activities(),
        [
            "ReserveInventory",
            "ShipOrder",
            "ReleaseInventory",
            "RefundPayment"
        ]
    );
    assert_eq!(failed.failure_chain(), ["TaskFailed", "CarrierUnavailable"]);
    let shipped = instance_status(&db, "batch:order-6");
    assert_eq!(
        shipped.output(),
        &json!({"order_id": "order-6", "status": "Shipped"})
    );
}

#[test]
fn batch_orders_of_a_word_fails_as_undecodable_input() {
    let run = run_sample("BatchOrders", "batch-bad", &json!("ten"));
    assert_rejected_input(&run);
    assert_eq!(run.count("SubOrchestrationInstanceCreated"), 0);
}
