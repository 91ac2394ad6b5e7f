//! Eternal orchestration: `PeriodicCleanup` runs `Cleanup`, waits, and continues as new, so it can
//! run forever with a history that never grows.
//!
//! Input `{"iterations": K, "interval_hours": H}`. Each execution with K > 0 runs `Cleanup`,
//! waits H hours on a durable timer and continues as new with K - 1; the execution that starts
//! with K = 0 completes with `{"runs": <cleanups over all executions>}`, which is the original K.
//! So K = 3 makes four executions: three cleanups and a final one that reports `{"runs": 3}`.
//!
//! What it demonstrates: continue-as-new as the loop of a long-lived orchestration (a truly
//! eternal one would simply never stop), and carrying state across it in the input: the count of
//! runs so far travels in the optional field `runs_so_far` (default 0), because each execution
//! starts from a fresh history and remembers nothing else.
//!
//! What to look at: the chain of executions, each with one `TaskScheduled(Cleanup)`, a
//! `TimerCreated` H hours ahead, `TimerFired` and `ContinueAsNew` whose input has `iterations`
//! one lower and `runs_so_far` one higher. The custom status shows the runs so far and the next
//! run's time.
//!
//! Choice the issue left open: K = 0 completes at once with `{"runs": 0}`; H = 0 runs the
//! cleanups back to back.

use crate::durations;
use durable_sdk::chrono::{DateTime, Utc};
use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
};
use serde::{Deserialize, Serialize};

/// How many stale records the simulated system gathers per hour, for `Cleanup` to remove.
pub const STALE_RECORDS_PER_HOUR: u64 = 12;

/// `PeriodicCleanup`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupSchedule {
    /// Cleanups still to run.
    pub iterations: u32,
    /// Hours to wait after each cleanup.
    pub interval_hours: u64,
    /// Cleanups run by earlier executions (carried across continue-as-new; callers leave it out).
    #[serde(default)]
    pub runs_so_far: u32,
}

/// `PeriodicCleanup`'s output: `{"runs": K}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupSummary {
    /// Cleanups run over all executions.
    pub runs: u32,
}

/// `Cleanup`'s input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupRun {
    /// Which run this is (1-based).
    pub run: u32,
    /// Hours since the previous run (the stale records gathered in that time are removed).
    pub interval_hours: u64,
}

/// `Cleanup`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// Which run this was.
    pub run: u32,
    /// Records removed.
    pub removed: u64,
}

/// The custom status between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupProgress {
    /// Cleanups run so far.
    pub runs: u32,
    /// Cleanups still to run.
    pub remaining: u32,
    /// When the next execution starts.
    pub next_run: DateTime<Utc>,
}

/// Orchestrator `PeriodicCleanup`: see the module docs. Returns `None` only from an execution
/// that continued as new (the host ignores that value; the last execution's output is the
/// instance's).
pub async fn periodic_cleanup(
    ctx: OrchestrationContext,
    schedule: CleanupSchedule,
) -> Result<Option<CleanupSummary>, FailureDetails> {
    if schedule.iterations == 0 {
        let summary = CleanupSummary {
            runs: schedule.runs_so_far,
        };
        ctx.set_custom_status(summary);
        return Ok(Some(summary));
    }
    let run = schedule.runs_so_far.saturating_add(1);
    let report: CleanupReport = ctx
        .call_activity(
            "Cleanup",
            CleanupRun {
                run,
                interval_hours: schedule.interval_hours,
            },
        )
        .await?;
    ctx.log_info(format!("cleanup {run} removed {} records", report.removed));

    let next_run = durations::after(
        ctx.current_utc_date_time(),
        durations::hours(schedule.interval_hours),
    );
    let remaining = schedule.iterations - 1;
    ctx.set_custom_status(CleanupProgress {
        runs: run,
        remaining,
        next_run,
    });
    ctx.create_timer(next_run).await?;
    ctx.continue_as_new(CleanupSchedule {
        iterations: remaining,
        interval_hours: schedule.interval_hours,
        runs_so_far: run,
    });
    Ok(None)
}

/// Activity `Cleanup`: pretends to delete the records that went stale since the previous run
/// ([`STALE_RECORDS_PER_HOUR`] an hour); reports how many.
pub async fn cleanup(
    _ctx: ActivityContext,
    run: CleanupRun,
) -> Result<CleanupReport, FailureDetails> {
    Ok(CleanupReport {
        run: run.run,
        removed: run.interval_hours.saturating_mul(STALE_RECORDS_PER_HOUR),
    })
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "PeriodicCleanup",
            periodic_cleanup,
            OrchestratorInfo::new("Runs a cleanup every interval, continuing as new each time (eternal orchestration)")
                .example(json!({"iterations":3,"interval_hours":6})),
        )
        .activity("Cleanup", cleanup)
}
