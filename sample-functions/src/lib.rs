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
//!
//! Every activity that simulates work is deterministic from its input, so every run of a sample
//! gives the same results. `README.md` beside this crate shows how to run each one headless.
//! [`registry`] names everything; `export_plugin!` makes the crate a plugin. Knows nothing of the
//! emulator: it depends on `durable-sdk` (and serde, futures) only.

pub mod approval_workflow;
pub mod batch_orders;
pub mod bench;
mod durations;
pub mod fan_out_fan_in;
pub mod hello_sequence;
pub mod monitor_job;
pub mod order_saga;
pub mod periodic_cleanup;
pub mod process_payment;

use durable_sdk::Registry;

/// Every orchestrator and activity of the samples, by name.
pub fn registry() -> Registry {
    let samples: [fn(Registry) -> Registry; 9] = [
        hello_sequence::register,
        fan_out_fan_in::register,
        monitor_job::register,
        approval_workflow::register,
        order_saga::register,
        process_payment::register,
        periodic_cleanup::register,
        batch_orders::register,
        bench::register,
    ];
    samples
        .into_iter()
        .fold(Registry::new(), |registry, register| register(registry))
}

durable_sdk::export_plugin!(registry);
