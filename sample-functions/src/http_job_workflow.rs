//! Durable HTTP (the async HTTP API pattern from the caller's side): `HttpJobWorkflow` starts a
//! long-running job on an HTTP API, waits for it by polling, then calls a second API with the
//! result.
//!
//! Input `{"base_url": "http://127.0.0.1:8088", "job": {...}}` (`job` defaults to `{}`,
//! `timeout_seconds` to 300). The orchestration
//! 1. `POST {base_url}/jobs` with the job as JSON. The API answers `202 Accepted` with a
//!    `Location` (the job's status URL) and `Retry-After`; `ctx.call_http` polls that Location
//!    with GETs, waiting `Retry-After` on a durable timer before each, until the answer is not
//!    202. The job's final answer (200 and the job's result) is the call's result.
//! 2. `POST {base_url}/notify` with `{"job_id": ..., "result": ...}`.
//! 3. Returns `{"job_id": ..., "result": <the job's final answer>, "notified": true}`.
//!
//! `cargo run -p sample-functions --bin job-server` serves exactly this API on 127.0.0.1:8088
//! (see `src/bin/job_server.rs`).
//!
//! What it demonstrates: an HTTP call is a durable call like an activity: scheduled, recorded and
//! replayed from history without calling the API again; any status is a result (the code decides
//! that a 500 means the job failed); a connection failure is a failure, retried here as the
//! request's [`RetryPolicy`] says; the whole call, polling included, is bounded by a timeout on
//! the orchestration clock.
//!
//! What to look at: `TaskScheduled(BuiltIn::HttpActivity)` for the POST (`poll` 0), then for
//! each 202 a `TimerCreated` / `TimerFired` pair 1 s apart and a GET of `/jobs/{id}` (`poll` 1,
//! 2, ...), then the POST to `/notify`. The custom status names the phase.

use durable_sdk::http::{DurableHttpRequest, DurableHttpResponse};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{FailureDetails, OrchestrationContext, OrchestratorInfo, Registry, RetryPolicy};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `HttpJobWorkflow`'s input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// The jobs API, e.g. `http://127.0.0.1:8088` (no trailing slash needed).
    pub base_url: String,
    /// The job, sent as the body of `POST /jobs`.
    #[serde(default = "empty_job")]
    pub job: Value,
    /// How long the job may take, polling included (orchestration clock).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

fn empty_job() -> Value {
    json!({})
}

fn default_timeout_seconds() -> u64 {
    300
}

/// `HttpJobWorkflow`'s output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// The job's id, as the API's final answer named it (`id`).
    pub job_id: Value,
    /// The API's final answer about the job (its body, as JSON).
    pub result: Value,
    /// `POST /notify` was answered with a 2xx.
    pub notified: bool,
}

/// How a request that reaches no server is retried: 3 attempts, 2 s apart.
pub fn connection_retry_policy() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_secs(2))
}

/// Orchestrator `HttpJobWorkflow`: see the module docs.
pub async fn http_job_workflow(
    ctx: OrchestrationContext,
    request: JobRequest,
) -> Result<JobSummary, FailureDetails> {
    let base = base_url(&request.base_url)?;

    ctx.set_custom_status("submitting the job; then polling it");
    let submit = DurableHttpRequest::post(format!("{base}/jobs"))
        .json(&request.job)
        .timeout(Duration::from_secs(request.timeout_seconds))
        .retry(connection_retry_policy());
    let finished = ctx.call_http(submit).await?;
    if finished.status_code != 200 {
        return Err(unexpected("JobFailed", "the job", &finished));
    }
    let result: Value = finished.json().map_err(|error| {
        FailureDetails::new(
            "JobFailed",
            format!(
                "the job's final answer is not JSON ({error}): {}",
                finished.content
            ),
        )
        .non_retriable()
    })?;
    let job_id = result.get("id").cloned().unwrap_or(Value::Null);

    ctx.set_custom_status("notifying");
    let notify = DurableHttpRequest::post(format!("{base}/notify"))
        .json(&json!({"job_id": job_id, "result": result}))
        .retry(connection_retry_policy());
    let notified = ctx.call_http(notify).await?;
    if !notified.is_success() {
        return Err(unexpected("NotifyFailed", "the notification", &notified));
    }
    ctx.set_custom_status("done");
    Ok(JobSummary {
        job_id,
        result,
        notified: true,
    })
}

/// The base URL without its trailing slashes; anything but an absolute http(s) URL is refused
/// before a request is made.
fn base_url(text: &str) -> Result<&str, FailureDetails> {
    let base = text.trim().trim_end_matches('/');
    let host = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"));
    if host.is_none_or(str::is_empty) {
        return Err(FailureDetails::new(
            "InvalidInput",
            format!("base_url must be an absolute http:// or https:// URL, not '{text}'"),
        )
        .non_retriable());
    }
    Ok(base)
}

/// A non-retriable failure for an answer the workflow cannot go on with.
fn unexpected(error_type: &str, what: &str, answer: &DurableHttpResponse) -> FailureDetails {
    FailureDetails::new(
        error_type,
        format!(
            "{what} ended with HTTP {}: {}",
            answer.status_code, answer.content
        ),
    )
    .non_retriable()
}

/// Adds this sample's orchestration to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry.orchestrator_with(
        "HttpJobWorkflow",
        http_job_workflow,
        OrchestratorInfo::new(
            "Starts a job on an HTTP API, waits for it by 202 polling, then notifies a second API (Durable HTTP; run `cargo run -p sample-functions --bin job-server` first)",
        )
        .example(json!({"base_url": "http://127.0.0.1:8088", "job": {"report": "sales-2026-11", "rows": 1200}})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_url_must_be_absolute_http() {
        assert_eq!(
            base_url("http://127.0.0.1:8088/").ok(),
            Some("http://127.0.0.1:8088")
        );
        assert_eq!(
            base_url(" https://api.test ").ok(),
            Some("https://api.test")
        );
        for bad in ["127.0.0.1:8088", "ftp://host", "http://", ""] {
            let error = base_url(bad).err();
            assert_eq!(
                error.map(|failure| failure.error_type),
                Some("InvalidInput".to_string()),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_request_names_only_the_base_url_and_takes_defaults() {
        let request: JobRequest = serde_json::from_value(json!({"base_url": "http://h"}))
            .unwrap_or_else(|error| {
                panic!("a request with only base_url decodes: {error}");
            });
        assert_eq!(request.job, json!({}));
        assert_eq!(request.timeout_seconds, 300);
    }
}
