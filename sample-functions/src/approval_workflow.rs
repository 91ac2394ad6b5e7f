//! Human interaction: `ApprovalWorkflow` asks a person to approve a request and waits for the
//! answer, escalating if none comes in time.
//!
//! Input `{"request": "...", "timeout_hours": T}`. The orchestration sends the request
//! (`RequestApproval`), then races the external event `Approval` (payload `true` or `false`)
//! against a T-hour durable timer. Output `"Approved"`, `"Rejected"`, or `"Escalated"` (the timer
//! won, then `Escalate` ran). With no event and the virtual clock the timer fires at once, so a
//! headless run finishes as `"Escalated"`.
//!
//! What it demonstrates: `wait_for_external_event` raced against `create_timer` with `when_any`;
//! the loser is simply dropped (a timer that fires after the answer is ignored). Raise the event
//! from outside with `durable-emu raise <instance> Approval true` (names compare
//! case-insensitively).
//!
//! What to look at: `TaskScheduled(RequestApproval)`, then `TimerCreated` and either
//! `EventRaised(Approval)` or `TimerFired` followed by `TaskScheduled(Escalate)`. While waiting,
//! the custom status says what it waits for and until when.
//!
//! Choices the issue left open: an `Approval` payload that is not a boolean fails the instance
//! (`SerializationError`, naming the event) rather than being guessed at; `timeout_hours: 0`
//! escalates at once.

use crate::durations;
use durable_sdk::chrono::{DateTime, Utc};
use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry, when_any,
};
use serde::{Deserialize, Serialize};

/// The external event that carries the answer.
pub const APPROVAL_EVENT: &str = "Approval";

/// `ApprovalWorkflow`'s input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// What is to be approved.
    pub request: String,
    /// Hours to wait for an answer before escalating.
    pub timeout_hours: u64,
}

/// `ApprovalWorkflow`'s output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApprovalOutcome {
    /// The event arrived with `true`.
    Approved,
    /// The event arrived with `false`.
    Rejected,
    /// No event arrived in time; `Escalate` ran.
    Escalated,
}

/// What `RequestApproval` sends to the approver: enough to answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalNotice {
    /// What is to be approved.
    pub request: String,
    /// The instance to raise `Approval` on.
    pub instance_id: String,
    /// When the request escalates.
    pub respond_by: DateTime<Utc>,
}

/// The custom status while waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitingApproval {
    /// The event waited for.
    pub waiting_for: String,
    /// When the wait ends in escalation.
    pub until: DateTime<Utc>,
}

/// Orchestrator `ApprovalWorkflow`: see the module docs.
pub async fn approval_workflow(
    ctx: OrchestrationContext,
    input: ApprovalRequest,
) -> Result<ApprovalOutcome, FailureDetails> {
    let respond_by = durations::after(
        ctx.current_utc_date_time(),
        durations::hours(input.timeout_hours),
    );
    let notice = ApprovalNotice {
        request: input.request.clone(),
        instance_id: ctx.instance_id(),
        respond_by,
    };
    ctx.call_activity::<String>("RequestApproval", &notice)
        .await?;
    ctx.set_custom_status(AwaitingApproval {
        waiting_for: APPROVAL_EVENT.into(),
        until: respond_by,
    });

    let answer = ctx.wait_for_external_event::<bool>(APPROVAL_EVENT);
    let timeout = ctx.create_timer(respond_by);
    let answered = when_any([answer.handle(), timeout.handle()]).await == 0;
    if answered {
        let outcome = if answer.await? {
            ApprovalOutcome::Approved
        } else {
            ApprovalOutcome::Rejected
        };
        ctx.set_custom_status(outcome);
        return Ok(outcome);
    }
    ctx.log_warn(format!(
        "no answer to '{}' by {respond_by}; escalating",
        input.request
    ));
    ctx.call_activity::<String>("Escalate", &notice).await?;
    ctx.set_custom_status(ApprovalOutcome::Escalated);
    Ok(ApprovalOutcome::Escalated)
}

/// Activity `RequestApproval`: pretends to send the request to the approver; returns the message
/// sent.
pub async fn request_approval(
    _ctx: ActivityContext,
    notice: ApprovalNotice,
) -> Result<String, FailureDetails> {
    Ok(format!(
        "Please approve '{}': raise '{APPROVAL_EVENT}' (true or false) on instance {} by {}",
        notice.request, notice.instance_id, notice.respond_by
    ))
}

/// Activity `Escalate`: pretends to hand the unanswered request to a manager; returns the message
/// sent.
pub async fn escalate(
    _ctx: ActivityContext,
    notice: ApprovalNotice,
) -> Result<String, FailureDetails> {
    Ok(format!(
        "'{}' (instance {}) was not answered by {}; escalated to a manager",
        notice.request, notice.instance_id, notice.respond_by
    ))
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "ApprovalWorkflow",
            approval_workflow,
            OrchestratorInfo::new("Waits for an \"Approval\" event (raise true/false) raced against a timeout, then escalates (human interaction)")
                .example(json!({"request":"Buy a bigger server","timeout_hours":72})),
        )
        .activity("RequestApproval", request_approval)
        .activity("Escalate", escalate)
}
