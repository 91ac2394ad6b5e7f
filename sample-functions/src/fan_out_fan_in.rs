//! Fan-out/fan-in: `FanOutFanIn`, input N, runs `Square(i)` for i = 1..=N in parallel and sums
//! the results (N = 100 -> 338350). The custom status counts up as results arrive:
//! `{"done":k,"total":N}`.
//!
//! What it demonstrates: a durable call is scheduled when it is made, not when it is awaited, so
//! creating all N tasks before awaiting any runs them all at once. Results are taken in the order
//! they arrive (a `FuturesUnordered` over the durable tasks), which is what lets the progress
//! count up. When no progress is needed, `when_all(tasks).await` is the one-line fan-in (see
//! `bench::bench_fan_out`).
//!
//! What to look at: the first episode records N `TaskScheduled` events; the `TaskCompleted`
//! events then arrive in batches, one episode per batch, and the custom status grows with each.
//!
//! Choices the issue left open, made the way a Durable Functions user would expect:
//! - N = 0 completes at once with 0.
//! - A negative or fractional N does not decode as an unsigned integer, so the instance fails with
//!   `SerializationError` before any activity runs.
//! - The first failed `Square` fails the orchestration at once (the other results are ignored),
//!   where `when_all` would wait for every task first; a sum that does not fit in 64 bits fails
//!   with `Overflow` instead of wrapping.

use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, DurableTask, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};

/// The custom status: how many of the `total` squares have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Results received so far.
    pub done: u64,
    /// Results expected.
    pub total: u64,
}

/// Orchestrator `FanOutFanIn`: input N; output the sum of `Square(i)` for i = 1..=N.
pub async fn fan_out_fan_in(ctx: OrchestrationContext, n: u64) -> Result<u64, FailureDetails> {
    ctx.set_custom_status(Progress { done: 0, total: n });
    // Fan out: every call is scheduled here, before anything is awaited.
    let mut squares: FuturesUnordered<DurableTask<u64>> =
        (1..=n).map(|i| ctx.call_activity("Square", i)).collect();
    // Fan in, in arrival order, so the progress is true at the end of every episode.
    let mut sum: u64 = 0;
    let mut done: u64 = 0;
    while let Some(square) = squares.next().await {
        sum = sum.checked_add(square?).ok_or_else(|| {
            FailureDetails::new(
                "Overflow",
                format!("the sum of 1..={n} squared overflows u64"),
            )
            .non_retriable()
        })?;
        done += 1;
        ctx.set_custom_status(Progress { done, total: n });
    }
    ctx.log_info(format!("{n} squares summed to {sum}"));
    Ok(sum)
}

/// Activity `Square`: `i` -> `i * i` (fails with `Overflow` past 2^32).
pub async fn square(_ctx: ActivityContext, i: u64) -> Result<u64, FailureDetails> {
    i.checked_mul(i).ok_or_else(|| {
        FailureDetails::new("Overflow", format!("{i} squared overflows u64")).non_retriable()
    })
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "FanOutFanIn",
            fan_out_fan_in,
            OrchestratorInfo::new(
                "Squares 1..=N in parallel and sums them (fan-out/fan-in, with progress); input N",
            )
            .example(json!(100)),
        )
        .activity("Square", square)
}
