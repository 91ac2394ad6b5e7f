//! Monitor (the async HTTP API pattern's polling side): `MonitorJob` watches a long-running
//! external job until it is done or a deadline passes.
//!
//! Input `{"job_id": "...", "polls_needed": K, "interval_minutes": M, "deadline_hours": H}`.
//! The orchestration calls `CheckJobStatus` (a simulated external job that reports done on its
//! K-th check), waits M minutes on a durable timer between checks, and continues as new every 5
//! checks so its history stays short however long the job runs. Output
//! `{"job_id": "...", "status": "Completed", "polls": K}`, or `{"status": "TimedOut"}` when the
//! deadline passes first.
//!
//! What it demonstrates: durable timers instead of sleeping; a deadline taken from the
//! orchestration clock (`current_utc_date_time`, never the wall clock) and computed once, as an
//! absolute time, then carried across continue-as-new with the number of checks done; and
//! continue-as-new as the way to keep a long loop's history bounded.
//!
//! What to look at: each execution holds at most 5 `TaskScheduled(CheckJobStatus)` with a
//! `TimerCreated` / `TimerFired` pair after each; the execution ends with `ContinueAsNew`, whose
//! input carries `polls_done` and `deadline`. The custom status shows the checks so far and when
//! the next one is due.
//!
//! Choices the issue left open, made the way a Durable Functions user would expect:
//! - Like the Durable Functions monitor sample, the loop checks the deadline before every poll;
//!   the wait before a poll never runs past the deadline, so a job that is not done by then times
//!   out exactly at the deadline. `deadline_hours: 0` times out without polling.
//! - `polls_needed` and `interval_minutes` must be at least 1 (a zero interval would poll in a
//!   tight loop); otherwise the instance fails with a non-retriable `InvalidInput`.

use crate::durations;
use durable_sdk::chrono::{DateTime, Utc};
use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
};
use serde::{Deserialize, Serialize};

/// Checks per execution before continuing as new.
pub const POLLS_PER_EXECUTION: u32 = 5;

/// `MonitorJob`'s input. The last two fields are the state carried across continue-as-new; a
/// caller leaves them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorRequest {
    /// The job to watch.
    pub job_id: String,
    /// The simulated job reports done on this check (1-based).
    pub polls_needed: u32,
    /// Minutes between checks.
    pub interval_minutes: u64,
    /// Give up this many hours after the monitor started.
    pub deadline_hours: u64,
    /// Checks made by earlier executions of this instance.
    #[serde(default)]
    pub polls_done: u32,
    /// The absolute deadline, fixed by the first execution (so continuing as new never extends it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
}

/// `MonitorJob`'s output: `{"status": "Completed", "job_id": ..., "polls": K}` or
/// `{"status": "TimedOut"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum MonitorOutcome {
    /// The job reported done.
    Completed {
        /// The job watched.
        job_id: String,
        /// Checks it took, over all executions.
        polls: u32,
    },
    /// The deadline passed before the job was done.
    TimedOut,
}

/// The custom status while the job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorProgress {
    /// Checks made so far, over all executions.
    pub polls: u32,
    /// When the next check is due.
    pub next_check: DateTime<Utc>,
    /// When the monitor gives up.
    pub deadline: DateTime<Utc>,
}

/// `CheckJobStatus`'s input: which check of which simulated job this is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCheck {
    /// The job.
    pub job_id: String,
    /// The check on which the simulated job reports done.
    pub polls_needed: u32,
    /// This check's number (1-based).
    pub check: u32,
}

/// What the external job reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Still working.
    Running,
    /// Done.
    Completed,
}

/// `CheckJobStatus`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// The job.
    pub job_id: String,
    /// Its state at this check.
    pub state: JobState,
}

/// Orchestrator `MonitorJob`: see the module docs. Returns `None` only from an execution that
/// continued as new (the host ignores that value; the last execution's output is the instance's).
pub async fn monitor_job(
    ctx: OrchestrationContext,
    mut request: MonitorRequest,
) -> Result<Option<MonitorOutcome>, FailureDetails> {
    validate(&request)?;
    let deadline = *request.deadline.get_or_insert_with(|| {
        durations::after(
            ctx.current_utc_date_time(),
            durations::hours(request.deadline_hours),
        )
    });
    let interval = durations::minutes(request.interval_minutes);

    while ctx.current_utc_date_time() < deadline {
        let check = JobCheck {
            job_id: request.job_id.clone(),
            polls_needed: request.polls_needed,
            check: request.polls_done + 1,
        };
        let status: JobStatus = ctx.call_activity("CheckJobStatus", &check).await?;
        request.polls_done = check.check;
        if status.state == JobState::Completed {
            let outcome = MonitorOutcome::Completed {
                job_id: request.job_id,
                polls: request.polls_done,
            };
            ctx.set_custom_status(&outcome);
            return Ok(Some(outcome));
        }

        let next_check = durations::after(ctx.current_utc_date_time(), interval).min(deadline);
        ctx.set_custom_status(MonitorProgress {
            polls: request.polls_done,
            next_check,
            deadline,
        });
        ctx.create_timer(next_check).await?;

        // Keep each execution's history short: a monitor may poll for weeks.
        if request.polls_done % POLLS_PER_EXECUTION == 0 && ctx.current_utc_date_time() < deadline {
            ctx.continue_as_new(&request);
            return Ok(None);
        }
    }
    ctx.log_warn(format!(
        "job {} not done after {} checks; deadline {deadline} passed",
        request.job_id, request.polls_done
    ));
    ctx.set_custom_status(MonitorOutcome::TimedOut);
    Ok(Some(MonitorOutcome::TimedOut))
}

fn validate(request: &MonitorRequest) -> Result<(), FailureDetails> {
    let problem = if request.polls_needed == 0 {
        "polls_needed must be at least 1"
    } else if request.interval_minutes == 0 {
        "interval_minutes must be at least 1"
    } else {
        return Ok(());
    };
    Err(FailureDetails::new("InvalidInput", problem).non_retriable())
}

/// Activity `CheckJobStatus`: the simulated external job, `Completed` from check `polls_needed`
/// on and `Running` before.
pub async fn check_job_status(
    _ctx: ActivityContext,
    check: JobCheck,
) -> Result<JobStatus, FailureDetails> {
    let state = if check.check >= check.polls_needed {
        JobState::Completed
    } else {
        JobState::Running
    };
    Ok(JobStatus {
        job_id: check.job_id,
        state,
    })
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "MonitorJob",
            monitor_job,
            OrchestratorInfo::new("Polls a job on a timer until it completes or the deadline passes (monitor, continue-as-new)")
                .example(json!({"job_id":"job-7","polls_needed":12,"interval_minutes":10,"deadline_hours":24})),
        )
        .activity("CheckJobStatus", check_job_status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_have_the_documented_shape() {
        let completed = MonitorOutcome::Completed {
            job_id: "j".into(),
            polls: 3,
        };
        assert_eq!(
            serde_json::to_value(completed).ok(),
            Some(serde_json::json!({"job_id": "j", "status": "Completed", "polls": 3}))
        );
        assert_eq!(
            serde_json::to_value(MonitorOutcome::TimedOut).ok(),
            Some(serde_json::json!({"status": "TimedOut"}))
        );
    }
}
