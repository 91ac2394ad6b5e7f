//! Durable HTTP (`ctx.call_http`, docs/semantics.md#durable-http): each request is one
//! `BuiltIn::HttpActivity` call whose input is the request's wire form; a 202 Accepted with
//! `Location` is followed by a durable timer of `Retry-After` (default 1 s) and a GET of the
//! Location (`poll` 1, 2, ...); any other answer, whatever its status, is the result; the call's
//! timeout bounds the whole call on the orchestration clock; failed requests are retried as the
//! request's policy says; replay answers from history and schedules nothing again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::http::{DurableHttpRequest, DurableHttpResponse, HTTP_ACTIVITY};
use durable_sdk::{FailureDetails, OrchestrationContext, Registry, RetryPolicy, when_all};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use support::assert_actions;

const JOBS: &str = "http://jobs.test:8088/jobs";

/// The job submission every orchestration here makes: a POST with a credential and a JSON body.
fn submit() -> DurableHttpRequest {
    DurableHttpRequest::post(JOBS)
        .header("Authorization", "Bearer s3cret")
        .json(&json!({"n": 1}))
}

async fn submit_job(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    Ok(ctx.call_http(submit()).await?)
}

async fn submit_within(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    Ok(ctx
        .call_http(submit().timeout(Duration::from_secs(10)))
        .await?)
}

async fn submit_once(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    Ok(ctx.call_http(submit().asynchronous_polling(false)).await?)
}

async fn check_health(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    let request = DurableHttpRequest::get("http://jobs.test:8088/health")
        .retry(RetryPolicy::new(3, Duration::from_secs(5)));
    Ok(ctx.call_http(request).await?)
}

/// Retried every 4 s, but the whole call may take 10 s.
async fn check_health_within(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    let request = DurableHttpRequest::get("http://jobs.test:8088/health")
        .timeout(Duration::from_secs(10))
        .retry(RetryPolicy::new(5, Duration::from_secs(4)));
    Ok(ctx.call_http(request).await?)
}

/// A body serde_json refuses (a map whose keys are not strings).
async fn submit_bad_body(
    ctx: OrchestrationContext,
    _: Value,
) -> Result<DurableHttpResponse, FailureDetails> {
    let body: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
    Ok(ctx
        .call_http(DurableHttpRequest::post(JOBS).json(&body))
        .await?)
}

/// Catches a failed call and reports what failed, as an orchestration deciding for itself would.
async fn submit_or_report(ctx: OrchestrationContext, _: Value) -> Result<String, FailureDetails> {
    match ctx.call_http(submit()).await {
        Ok(response) => Ok(format!("answered {}", response.status_code)),
        Err(error) => Ok(format!(
            "{} #{} {}",
            error.name,
            error.task_id,
            error.cause().error_type
        )),
    }
}

/// Two calls in flight at once, each polling on its own.
async fn submit_two(ctx: OrchestrationContext, _: Value) -> Result<Vec<u16>, FailureDetails> {
    let first = ctx.call_http(DurableHttpRequest::post("http://a.test/jobs"));
    let second = ctx.call_http(DurableHttpRequest::post("http://b.test/jobs"));
    let answers = when_all([first, second]).await?;
    Ok(answers.iter().map(|answer| answer.status_code).collect())
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("SubmitJob", submit_job)
        .orchestrator("SubmitWithin", submit_within)
        .orchestrator("SubmitOnce", submit_once)
        .orchestrator("CheckHealth", check_health)
        .orchestrator("CheckHealthWithin", check_health_within)
        .orchestrator("SubmitBadBody", submit_bad_body)
        .orchestrator("SubmitOrReport", submit_or_report)
        .orchestrator("SubmitTwo", submit_two)
}

/// The wire form of a request (keys sorted, as the text form renders JSON).
fn wire(method: &str, uri: &str, headers: Value, body: bool, timeout_ms: u64, poll: u32) -> Value {
    let mut wire = json!({
        "method": method,
        "uri": uri,
        "headers": headers,
        "timeoutMs": timeout_ms,
        "poll": poll,
    });
    if body {
        wire["content"] = json!(r#"{"n":1}"#);
    }
    wire
}

fn submission() -> Value {
    wire("POST", JOBS, submit_headers(), true, 100_000, 0)
}

fn submit_headers() -> Value {
    json!({"Authorization": "Bearer s3cret", "Content-Type": "application/json"})
}

fn poll_of(uri: &str, headers: Value, poll: u32) -> Value {
    wire("GET", uri, headers, false, 100_000, poll)
}

fn answer(status: u16, headers: Value, content: &str) -> Value {
    json!({"statusCode": status, "headers": headers, "content": content})
}

fn accepted(location: &str, retry_after: Option<&str>) -> Value {
    let mut headers = json!({"location": location});
    if let Some(retry_after) = retry_after {
        headers["retry-after"] = json!(retry_after);
    }
    answer(202, headers, "")
}

fn scheduled(id: i32, wire: &Value) -> String {
    format!("TaskScheduled #{id} {HTTP_ACTIVITY} {wire}")
}

fn schedule(id: i32, wire: &Value) -> String {
    format!("ScheduleTask #{id} {HTTP_ACTIVITY} {wire}")
}

fn completed(id: i32, answer: &Value) -> String {
    format!("TaskCompleted #{id} {answer}")
}

/// `SubmitJob`'s first episode: the submission scheduled.
fn submitted(orchestration: &str, submission: &Value) -> String {
    format!(
        "OrchestratorStarted @0\nExecutionStarted {orchestration} null\n{}\nOrchestratorCompleted\n",
        scheduled(0, submission)
    )
}

/// Past: submitted at @0, answered 202 (Location `location`, Retry-After 5) at @1, the timer to
/// @1:05 created.
fn waiting_to_poll(location: &str) -> String {
    format!(
        "{}OrchestratorStarted @1\n{}\nTimerCreated #1 @1:05\nOrchestratorCompleted\n",
        submitted("SubmitJob", &submission()),
        completed(0, &accepted(location, Some("5"))),
    )
}

/// The wire form is the contract with the host: pinned here as literal JSON.
#[test]
fn the_first_request_is_scheduled_at_once_in_its_wire_form() {
    assert_actions(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted SubmitJob null",
        r#"ScheduleTask #0 BuiltIn::HttpActivity {"content":"{\"n\":1}","headers":{"Authorization":"Bearer s3cret","Content-Type":"application/json"},"method":"POST","poll":0,"timeoutMs":100000,"uri":"http://jobs.test:8088/jobs"}"#,
    );
}

#[test]
fn a_202_with_location_waits_retry_after_on_a_durable_timer() {
    let history = format!(
        "{}---\nOrchestratorStarted @1\n{}",
        submitted("SubmitJob", &submission()),
        completed(0, &accepted("http://jobs.test:8088/jobs/7", Some("5")))
    );
    assert_actions(&registry(), &history, "CreateTimer #1 @1:05");
}

#[test]
fn when_the_timer_fires_the_location_is_polled_with_get_and_the_same_headers() {
    let history = format!(
        "{}---\nOrchestratorStarted @1:05\nTimerFired #1 @1:05",
        waiting_to_poll("http://jobs.test:8088/jobs/7")
    );
    let poll = poll_of("http://jobs.test:8088/jobs/7", submit_headers(), 1);
    assert_actions(&registry(), &history, &schedule(2, &poll));
}

#[test]
fn a_relative_location_is_resolved_against_the_uri_that_answered() {
    let history = format!(
        "{}---\nOrchestratorStarted @1:05\nTimerFired #1 @1:05",
        waiting_to_poll("/status/7?verbose=1")
    );
    let poll = poll_of(
        "http://jobs.test:8088/status/7?verbose=1",
        submit_headers(),
        1,
    );
    assert_actions(&registry(), &history, &schedule(2, &poll));
}

/// The orchestration's credential was for jobs.test:8088, not for wherever the Location points.
#[test]
fn a_location_on_another_origin_gets_no_headers() {
    for location in [
        "http://status.test:8088/jobs/7",
        "http://jobs.test:9000/jobs/7",
        "https://jobs.test:8088/jobs/7",
    ] {
        let history = format!(
            "{}---\nOrchestratorStarted @1:05\nTimerFired #1 @1:05",
            waiting_to_poll(location)
        );
        let poll = poll_of(location, json!({}), 1);
        assert_actions(&registry(), &history, &schedule(2, &poll));
    }
}

#[test]
fn without_a_valid_retry_after_the_poll_waits_one_second() {
    for retry_after in [None, Some("soon"), Some("-1"), Some("99999999999999999999")] {
        let history = format!(
            "{}---\nOrchestratorStarted @1\n{}",
            submitted("SubmitJob", &submission()),
            completed(0, &accepted("/jobs/7", retry_after))
        );
        assert_actions(&registry(), &history, "CreateTimer #1 @1:01");
    }
}

#[test]
fn a_retry_after_date_is_the_time_of_the_next_poll() {
    let history = format!(
        "{}---\nOrchestratorStarted @1\n{}",
        submitted("SubmitJob", &submission()),
        completed(
            0,
            &accepted("/jobs/7", Some("Mon, 01 Jan 2024 00:03:00 GMT"))
        )
    );
    assert_actions(&registry(), &history, "CreateTimer #1 @3");
}

#[test]
fn each_poll_follows_the_newest_location_with_the_next_poll_index() {
    let poll1 = poll_of("http://jobs.test:8088/jobs/7", submit_headers(), 1);
    let past = format!(
        "{}OrchestratorStarted @1:05\nTimerFired #1 @1:05\n{}\nOrchestratorCompleted\n",
        waiting_to_poll("/jobs/7"),
        scheduled(2, &poll1),
    );
    let answered = format!(
        "OrchestratorStarted @1:06\n{}",
        completed(2, &accepted("/jobs/7/step2", Some("30")))
    );
    assert_actions(
        &registry(),
        &format!("{past}---\n{answered}"),
        "CreateTimer #3 @1:36",
    );
    let history = format!(
        "{past}{answered}\nTimerCreated #3 @1:36\nOrchestratorCompleted\n\
         ---\nOrchestratorStarted @1:36\nTimerFired #3 @1:36"
    );
    let poll2 = poll_of("http://jobs.test:8088/jobs/7/step2", submit_headers(), 2);
    assert_actions(&registry(), &history, &schedule(4, &poll2));
}

/// The full history of a polled call: 202, wait, 202, wait, 200.
fn polled_to_the_end() -> String {
    let poll1 = poll_of("http://jobs.test:8088/jobs/7", submit_headers(), 1);
    let poll2 = poll_of("http://jobs.test:8088/jobs/7", submit_headers(), 2);
    format!(
        "{}OrchestratorStarted @1:05\nTimerFired #1 @1:05\n{}\nOrchestratorCompleted\n\
         OrchestratorStarted @1:06\n{}\nTimerCreated #3 @1:07\nOrchestratorCompleted\n\
         OrchestratorStarted @1:07\nTimerFired #3 @1:07\n{}\nOrchestratorCompleted\n",
        waiting_to_poll("/jobs/7"),
        scheduled(2, &poll1),
        completed(2, &accepted("/jobs/7", None)),
        scheduled(4, &poll2),
    )
}

#[test]
fn a_final_answer_after_polling_is_the_result() {
    let done = answer(
        200,
        json!({"content-type": "application/json"}),
        r#"{"sum":3}"#,
    );
    let history = format!(
        "{}---\nOrchestratorStarted @1:08\n{}",
        polled_to_the_end(),
        completed(4, &done)
    );
    assert_actions(
        &registry(),
        &history,
        &format!("Complete #5 Completed {done}"),
    );
}

/// Replay answers every request from history: nothing is scheduled again (the whole history is
/// checked episode by episode by `assert_actions`, and the finished execution makes no action).
#[test]
fn replaying_a_finished_polled_call_schedules_nothing() {
    let done = answer(200, json!({}), "done");
    let history = format!(
        "{}OrchestratorStarted @1:08\n{}\nExecutionCompleted #5 Completed {done}\n\
         OrchestratorCompleted\n---\nOrchestratorStarted @2\nEventRaised Late null",
        polled_to_the_end(),
        completed(4, &done)
    );
    assert_actions(&registry(), &history, "");
}

#[test]
fn any_status_is_a_result() {
    for status in [200, 404, 500, 302] {
        let response = answer(status, json!({"location": "/elsewhere"}), "body");
        let history = format!(
            "{}---\nOrchestratorStarted @1\n{}",
            submitted("SubmitJob", &submission()),
            completed(0, &response)
        );
        assert_actions(
            &registry(),
            &history,
            &format!("Complete #1 Completed {response}"),
        );
    }
}

#[test]
fn a_202_without_location_is_a_result() {
    let response = answer(202, json!({"retry-after": "5"}), "queued");
    let history = format!(
        "{}---\nOrchestratorStarted @1\n{}",
        submitted("SubmitJob", &submission()),
        completed(0, &response)
    );
    assert_actions(
        &registry(),
        &history,
        &format!("Complete #1 Completed {response}"),
    );
}

#[test]
fn with_polling_off_a_202_is_the_result() {
    let response = accepted("/jobs/7", Some("5"));
    let history = format!(
        "{}---\nOrchestratorStarted @1\n{}",
        submitted("SubmitOnce", &submission()),
        completed(0, &response)
    );
    assert_actions(
        &registry(),
        &history,
        &format!("Complete #1 Completed {response}"),
    );
}

#[test]
fn a_call_with_a_timeout_gives_each_request_what_is_left_of_it() {
    let first = wire("POST", JOBS, submit_headers(), true, 10_000, 0);
    assert_actions(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted SubmitWithin null",
        &schedule(0, &first),
    );
    // Answered at 0:03 with Retry-After 5: the poll starts at 0:08 with 2 s left.
    let history = format!(
        "{}OrchestratorStarted @0:03\n{}\nTimerCreated #1 @0:08\nOrchestratorCompleted\n\
         ---\nOrchestratorStarted @0:08\nTimerFired #1 @0:08",
        submitted("SubmitWithin", &first),
        completed(0, &accepted("/jobs/7", Some("5"))),
    );
    let poll = wire(
        "GET",
        "http://jobs.test:8088/jobs/7",
        submit_headers(),
        false,
        2_000,
        1,
    );
    assert_actions(&registry(), &history, &schedule(2, &poll));
}

#[test]
fn a_poll_that_would_start_past_the_timeout_fails_the_call_with_http_timeout() {
    let first = wire("POST", JOBS, submit_headers(), true, 10_000, 0);
    let poll = wire(
        "GET",
        "http://jobs.test:8088/jobs/7",
        submit_headers(),
        false,
        2_000,
        1,
    );
    let history = format!(
        "{}OrchestratorStarted @0:03\n{}\nTimerCreated #1 @0:08\nOrchestratorCompleted\n\
         OrchestratorStarted @0:08\nTimerFired #1 @0:08\n{}\nOrchestratorCompleted\n\
         ---\nOrchestratorStarted @0:09\n{}",
        submitted("SubmitWithin", &first),
        completed(0, &accepted("/jobs/7", Some("5"))),
        scheduled(2, &poll),
        completed(2, &accepted("/jobs/7", Some("5"))),
    );
    assert_actions(
        &registry(),
        &history,
        "Complete #3 Failed TaskFailed: Activity 'BuiltIn::HttpActivity' (#2) failed: \
         POST http://jobs.test:8088/jobs did not finish within its timeout of 10s: 1 poll made, \
         the last answer 202 Accepted; the next poll would start 4s past the deadline \
         > HttpTimeout: POST http://jobs.test:8088/jobs did not finish within its timeout of \
         10s: 1 poll made, the last answer 202 Accepted; the next poll would start 4s past the \
         deadline",
    );
}

#[test]
fn a_failed_request_fails_the_call_and_names_it() {
    let history = format!(
        "{}---\nOrchestratorStarted @1\nTaskFailed #0 HttpConnectionFailed: connection refused",
        submitted("SubmitOrReport", &submission()),
    );
    assert_actions(
        &registry(),
        &history,
        r#"Complete #1 Completed "BuiltIn::HttpActivity #0 HttpConnectionFailed""#,
    );
}

#[test]
fn a_failed_poll_fails_the_call_and_names_the_poll() {
    let poll1 = poll_of("http://jobs.test:8088/jobs/7", submit_headers(), 1);
    let history = format!(
        "{}OrchestratorStarted @1\n{}\nTimerCreated #1 @1:05\nOrchestratorCompleted\n\
         OrchestratorStarted @1:05\nTimerFired #1 @1:05\n{}\nOrchestratorCompleted\n\
         ---\nOrchestratorStarted @1:06\nTaskFailed #2 HttpTimeout: no answer in 100s",
        submitted("SubmitOrReport", &submission()),
        completed(0, &accepted("/jobs/7", Some("5"))),
        scheduled(2, &poll1),
    );
    assert_actions(
        &registry(),
        &history,
        r#"Complete #3 Completed "BuiltIn::HttpActivity #2 HttpTimeout""#,
    );
}

fn health() -> Value {
    wire(
        "GET",
        "http://jobs.test:8088/health",
        json!({}),
        false,
        100_000,
        0,
    )
}

#[test]
fn a_retry_policy_retries_a_connection_failure_with_the_same_request() {
    let history = format!(
        "{}---\nOrchestratorStarted @1\nTaskFailed #0 HttpConnectionFailed: connection refused",
        submitted("CheckHealth", &health()),
    );
    assert_actions(&registry(), &history, "CreateTimer #1 @1:05");
    let history = format!(
        "{}OrchestratorStarted @1\nTaskFailed #0 HttpConnectionFailed: connection refused\n\
         TimerCreated #1 @1:05\nOrchestratorCompleted\n---\nOrchestratorStarted @1:05\n\
         TimerFired #1 @1:05",
        submitted("CheckHealth", &health()),
    );
    assert_actions(&registry(), &history, &schedule(2, &health()));
}

#[test]
fn no_retry_starts_past_the_calls_timeout() {
    let health = wire(
        "GET",
        "http://jobs.test:8088/health",
        json!({}),
        false,
        10_000,
        0,
    );
    // Failed at 0:03: the retry at 0:07 is within the 10 s.
    let history = format!(
        "{}---\nOrchestratorStarted @0:03\nTaskFailed #0 HttpConnectionFailed: refused",
        submitted("CheckHealthWithin", &health),
    );
    assert_actions(&registry(), &history, "CreateTimer #1 @0:07");
    // Failed again at 0:08: a retry at 0:12 would start past the deadline; the failure stands.
    // (The retry sends the same wire: fault rules count attempts of the same input.)
    let history = format!(
        "{}OrchestratorStarted @0:03\nTaskFailed #0 HttpConnectionFailed: refused\n\
         TimerCreated #1 @0:07\nOrchestratorCompleted\nOrchestratorStarted @0:07\n\
         TimerFired #1 @0:07\n{}\nOrchestratorCompleted\n---\nOrchestratorStarted @0:08\n\
         TaskFailed #2 HttpConnectionFailed: refused",
        submitted("CheckHealthWithin", &health),
        scheduled(2, &health),
    );
    assert_actions(
        &registry(),
        &history,
        "Complete #3 Failed TaskFailed: Activity 'BuiltIn::HttpActivity' (#2) failed: refused \
         > HttpConnectionFailed: refused",
    );
}

#[test]
fn a_retry_policy_does_not_retry_an_invalid_request() {
    let history = format!(
        "{}---\nOrchestratorStarted @1\n\
         TaskFailed #0 HttpInvalidRequest: unknown scheme [non-retriable]",
        submitted("CheckHealth", &health()),
    );
    assert_actions(
        &registry(),
        &history,
        "Complete #1 Failed TaskFailed: Activity 'BuiltIn::HttpActivity' (#0) failed: unknown \
         scheme > HttpInvalidRequest: unknown scheme [non-retriable]",
    );
}

#[test]
fn a_body_that_does_not_serialize_fails_the_call_without_a_request() {
    assert_actions(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted SubmitBadBody null",
        "Complete #0 Failed TaskFailed: Activity 'BuiltIn::HttpActivity' (#-1) failed: the \
         request body did not serialize as JSON: key must be a string > SerializationError: the \
         request body did not serialize as JSON: key must be a string [non-retriable]",
    );
}

#[test]
fn calls_in_flight_together_poll_independently() {
    let first = wire("POST", "http://a.test/jobs", json!({}), false, 100_000, 0);
    let second = wire("POST", "http://b.test/jobs", json!({}), false, 100_000, 0);
    assert_actions(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted SubmitTwo null",
        &format!("{}\n{}", schedule(0, &first), schedule(1, &second)),
    );
    let history = format!(
        "OrchestratorStarted @0\nExecutionStarted SubmitTwo null\n{}\n{}\nOrchestratorCompleted\n\
         ---\nOrchestratorStarted @1\n{}\n{}",
        scheduled(0, &first),
        scheduled(1, &second),
        completed(1, &accepted("/jobs/b", Some("2"))),
        completed(0, &accepted("/jobs/a", Some("7"))),
    );
    assert_actions(
        &registry(),
        &history,
        "CreateTimer #2 @1:02\nCreateTimer #3 @1:07",
    );
}
