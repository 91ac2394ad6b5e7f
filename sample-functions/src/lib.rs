//! The sample functions: each Durable Functions pattern as a runnable orchestration, written the
//! way we want users to write theirs. Built as a cdylib (load it with `durable-emu`) and as an
//! rlib (durable-emu links it in as its built-in library, called through the same plugin entry
//! points).
//!
//! One module per orchestration, each opening with what it demonstrates and what to look at:
//!
//! | orchestration | pattern | module |
//! | --- | --- | --- |
//! | `HelloSequence` | function chaining | [`hello_sequence`] |
//! | `FanOutFanIn` | fan-out/fan-in with progress | [`fan_out_fan_in`] |
//! | `MonitorJob` | monitor (polling with timers, continue-as-new) | [`monitor_job`] |
//! | `ApprovalWorkflow` | human interaction (event raced against a timer) | [`approval_workflow`] |
//! | `OrderSaga` | error handling and compensation | [`order_saga`] |
//! | `ProcessPayment` | sub-orchestration with a retry policy | [`process_payment`] |
//! | `PeriodicCleanup` | eternal orchestration | [`periodic_cleanup`] |
//! | `BatchOrders` | fan-out over sub-orchestrations | [`batch_orders`] |
//! | `BenchFanOut`, `BenchChain` | benchmark workloads | [`mod@bench`] |
//! | `CounterDemo` + entity `Counter` | durable entities (signals and calls) | [`counter`] |
//! | `Transfer` + entity `Account` | critical section over two entities, compensation | [`transfer`] |
//! | `HttpJobWorkflow` | Durable HTTP: a job started on an HTTP API, 202 polling | [`http_job_workflow`] |
//! | `WatchOrchestration` | Durable HTTP against the emulator's own HTTP API | [`watch_orchestration`] |
//!
//! Every activity that simulates work is deterministic from its input, so every run of a sample
//! gives the same results. `README.md` beside this crate shows how to run each one headless.
//! [`registry`] names everything (orchestrators, activities, entities); `export_plugin!` makes the crate a plugin. Knows nothing of the
//! emulator: it depends on `durable-sdk` (and serde, futures) only.

pub mod approval_workflow;
pub mod batch_orders;
pub mod bench;
pub mod counter;
mod durations;
pub mod fan_out_fan_in;
pub mod hello_sequence;
pub mod http_job_workflow;
pub mod monitor_job;
pub mod order_saga;
pub mod periodic_cleanup;
pub mod process_payment;
pub mod transfer;
pub mod watch_orchestration;

use durable_sdk::Registry;

/// Every orchestrator, activity and entity of the samples, by name.
pub fn registry() -> Registry {
    let samples: [fn(Registry) -> Registry; 13] = [
        hello_sequence::register,
        fan_out_fan_in::register,
        monitor_job::register,
        approval_workflow::register,
        order_saga::register,
        process_payment::register,
        periodic_cleanup::register,
        batch_orders::register,
        bench::register,
        counter::register,
        transfer::register,
        http_job_workflow::register,
        watch_orchestration::register,
    ];
    samples
        .into_iter()
        .fold(Registry::new(), |registry, register| register(registry))
}

durable_sdk::export_plugin!(registry);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use durable_sdk::protocol::{ActivityOutcome, ActivityRequest};
    use serde_json::{Value, json};

    /// Runs activity `name` through this crate's own plugin entry points.
    fn run_activity(name: &str, input: &Value, instance_id: &str, attempt: u32) -> ActivityOutcome {
        let request = ActivityRequest {
            name: name.into(),
            input: input.clone(),
            instance_id: instance_id.into(),
            task_id: attempt as i32,
            attempt,
        };
        super::durable_plugin_handle()
            .run_activity(&request)
            .unwrap()
    }

    /// The UI's start form pre-fills a sample's example and shows its description, so every
    /// sample has both.
    #[test]
    fn every_sample_orchestration_declares_a_description_and_an_example_input() {
        let manifest = super::registry().manifest("sample-functions", "0", "test");
        for name in &manifest.orchestrators {
            let info = manifest.orchestrator_info.get(name);
            assert!(
                info.is_some_and(|info| info.description.is_some() && info.example.is_some()),
                "{name} declares no description or no example: {info:?}"
            );
        }
    }

    /// Reproducible samples: what a simulated activity returns depends on its input alone, not on
    /// which instance called it or how often it was delivered.
    #[test]
    fn every_simulated_activity_answers_from_its_input_alone() {
        let order = json!({"order_id": "o-1", "amount": 20.0});
        let failing = |step: &str| json!({"order_id": "o-1", "amount": 20.0, "fail_at": step});
        let cases = [
            ("SayHello", json!("Oslo")),
            ("Square", json!(12)),
            (
                "CheckJobStatus",
                json!({"job_id": "j", "polls_needed": 3, "check": 2}),
            ),
            (
                "CheckJobStatus",
                json!({"job_id": "j", "polls_needed": 3, "check": 3}),
            ),
            (
                "RequestApproval",
                json!({"request": "r", "instance_id": "i", "respond_by": "2026-01-01T00:00:00Z"}),
            ),
            (
                "Escalate",
                json!({"request": "r", "instance_id": "i", "respond_by": "2026-01-01T00:00:00Z"}),
            ),
            ("ChargeCard", order.clone()),
            ("ChargeCard", failing("ChargeCard")),
            ("ReserveInventory", order.clone()),
            ("ReserveInventory", failing("ReserveInventory")),
            ("ShipOrder", order.clone()),
            ("ShipOrder", failing("ShipOrder")),
            (
                "RefundPayment",
                json!({"payment_id": "pay-o-1", "order_id": "o-1", "amount": 20.0}),
            ),
            (
                "ReleaseInventory",
                json!({"reservation_id": "res-o-1", "order_id": "o-1"}),
            ),
            ("Cleanup", json!({"run": 2, "interval_hours": 6})),
        ];
        for (name, input) in &cases {
            let first = run_activity(name, input, "instance-a", 1);
            let again = run_activity(name, input, "instance-b", 3);
            assert_eq!(first, again, "{name}({input})");
        }
        assert_eq!(
            run_activity("Square", &json!(12), "i", 1),
            ActivityOutcome::Completed { result: json!(144) }
        );
        assert_eq!(
            run_activity("Cleanup", &json!({"run": 2, "interval_hours": 6}), "i", 1),
            ActivityOutcome::Completed {
                result: json!({"run": 2, "removed": 72})
            }
        );
        let ActivityOutcome::Failed { failure } =
            run_activity("ShipOrder", &failing("ShipOrder"), "i", 1)
        else {
            panic!("ShipOrder was told to fail");
        };
        assert_eq!(failure.error_type, "CarrierUnavailable");
    }
    /// The names are the contract the README, the tests and users' scripts rely on.
    #[test]
    fn the_registry_names_every_sample_orchestration_and_activity() {
        let registry = super::registry();
        assert_eq!(
            registry.orchestrator_names(),
            [
                "ApprovalWorkflow",
                "BatchOrders",
                "BenchChain",
                "BenchFanOut",
                "CounterDemo",
                "FanOutFanIn",
                "HelloSequence",
                "HttpJobWorkflow",
                "MonitorJob",
                "OrderSaga",
                "PeriodicCleanup",
                "ProcessPayment",
                "Transfer",
                "WatchOrchestration",
            ]
        );
        assert_eq!(
            registry.activity_names(),
            [
                "ChargeCard",
                "CheckJobStatus",
                "Cleanup",
                "Echo",
                "Escalate",
                "RefundPayment",
                "ReleaseInventory",
                "RequestApproval",
                "ReserveInventory",
                "SayHello",
                "ShipOrder",
                "Square",
            ]
        );
        assert_eq!(registry.entity_names(), ["account", "counter"]);
    }
}
