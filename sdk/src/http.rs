//! Durable HTTP: an orchestration calls an HTTP API as a durable call (`ctx.call_http`), the
//! way Azure Durable Functions' `CallHttpAsync` does.
//!
//! Owns the request and response types, their wire form (the input and result of the built-in
//! activity [`HTTP_ACTIVITY`], camelCase JSON close to Durable Functions' `DurableHttpRequest`
//! and `DurableHttpResponse`), the failure types a call can end with, and the polling loop of the
//! asynchronous pattern (202 Accepted with `Location`): each request is one `HTTP_ACTIVITY` call
//! and each wait between polls one durable timer, so history shows every request and every wait
//! and replay never calls again.
//!
//! The host performs each request (a plugin never touches the network for it); this module knows
//! nothing of how: it only schedules calls and reads their results.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use crate::context::{OrchestrationContext, add_duration, failed_without_call};
use crate::failure::{FailureDetails, SERIALIZATION, TaskError, TaskKind};
use crate::retry::RetryPolicy;
use crate::task::{DurableTask, SlotRef, new_slot, poll_raw, resolve_with};

/// The name of the built-in activity that performs one HTTP request. The host runs it itself,
/// whatever functions are loaded; its input is a [`HttpRequestWire`] and its result a
/// [`DurableHttpResponse`]. The name is Durable Functions' own, so histories read the same.
pub const HTTP_ACTIVITY: &str = "BuiltIn::HttpActivity";

/// `error_type` of a request that did not get an answer in time (the request's own timeout, or
/// the whole call's, polling included).
pub const HTTP_TIMEOUT: &str = "HttpTimeout";
/// `error_type` of a request that reached no server: refused, reset, a name that does not
/// resolve, a TLS failure.
pub const HTTP_CONNECTION_FAILED: &str = "HttpConnectionFailed";
/// `error_type` of a request that cannot be sent at all (a malformed URI, an unknown method, a
/// scheme other than http/https, a header that is not valid); non-retriable.
pub const HTTP_INVALID_REQUEST: &str = "HttpInvalidRequest";

/// How long one request may take when the call sets no timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(100);
/// The wait between polls when a 202 answer has no (valid) `Retry-After`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// An HTTP request an orchestration makes through [`crate::OrchestrationContext::call_http`].
///
/// ```ignore
/// let response = ctx
///     .call_http(DurableHttpRequest::post("http://127.0.0.1:8088/jobs").json(&job))
///     .await?;
/// ```
#[derive(Debug, Clone)]
pub struct DurableHttpRequest {
    /// `GET`, `POST`, ... (upper case).
    pub method: String,
    /// An absolute `http://` or `https://` URI.
    pub uri: String,
    /// Request headers (a name appears once; names compare case-insensitively on the wire).
    pub headers: BTreeMap<String, String>,
    /// The request body, if any.
    pub content: Option<String>,
    /// The whole call's limit, polling included, on the orchestration clock; also each request's
    /// own limit. `None`: each request may take [`DEFAULT_REQUEST_TIMEOUT`] and polling has no
    /// limit.
    pub timeout: Option<Duration>,
    /// Follow 202 Accepted + `Location` by polling it (default true). Off, a 202 is the result.
    pub asynchronous_polling: bool,
    /// Retry a request that failed (timeout, connection failure) as this policy says; each
    /// attempt and each delay shows in history.
    pub retry: Option<RetryPolicy>,
    /// Why [`DurableHttpRequest::json`] could not set the body; the call fails with it.
    pub(crate) body_error: Option<String>,
}

impl DurableHttpRequest {
    /// A request with `method` to `uri`, no headers, no body, polling on.
    pub fn new(method: impl Into<String>, uri: impl Into<String>) -> Self {
        Self {
            method: method.into().to_ascii_uppercase(),
            uri: uri.into(),
            headers: BTreeMap::new(),
            content: None,
            timeout: None,
            asynchronous_polling: true,
            retry: None,
            body_error: None,
        }
    }

    /// `GET uri`.
    pub fn get(uri: impl Into<String>) -> Self {
        Self::new("GET", uri)
    }

    /// `POST uri`.
    pub fn post(uri: impl Into<String>) -> Self {
        Self::new("POST", uri)
    }

    /// `PUT uri`.
    pub fn put(uri: impl Into<String>) -> Self {
        Self::new("PUT", uri)
    }

    /// `DELETE uri`.
    pub fn delete(uri: impl Into<String>) -> Self {
        Self::new("DELETE", uri)
    }

    /// Adds (or replaces) a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// Sets the body as it is.
    pub fn body(mut self, content: impl Into<String>) -> Self {
        self.content = Some(content.into());
        self
    }

    /// Sets the body to `value` as JSON, with `Content-Type: application/json`. A value that
    /// does not serialize leaves the body empty and the call fails with `SerializationError`.
    pub fn json(self, value: &impl Serialize) -> Self {
        match serde_json::to_string(value) {
            Ok(text) => self.header("Content-Type", "application/json").body(text),
            Err(error) => Self {
                body_error: Some(error.to_string()),
                ..self
            },
        }
    }

    /// Sets the whole call's limit (see [`DurableHttpRequest::timeout`]).
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Turns 202 polling on or off.
    pub fn asynchronous_polling(mut self, on: bool) -> Self {
        self.asynchronous_polling = on;
        self
    }

    /// Retries failed requests as `policy` says.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
}

/// What an HTTP call answered: any status is a result (the orchestration decides what a 500
/// means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DurableHttpResponse {
    /// The HTTP status, e.g. 200 or 202.
    pub status_code: u16,
    /// Response headers, names in lower case (a repeated header's values joined with ", ").
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as text (bytes that are not UTF-8 are replaced).
    #[serde(default)]
    pub content: String,
}

impl DurableHttpResponse {
    /// A header's value, by name in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body decoded as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.content)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// The input of one [`HTTP_ACTIVITY`] call: exactly one request, as the host sends it. Polling
/// is the SDK's (each poll is its own call); the host neither follows redirects nor polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRequestWire {
    /// `GET`, `POST`, ... (upper case).
    pub method: String,
    /// The absolute URI this request goes to.
    pub uri: String,
    /// Request headers, as the orchestration gave them.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request body, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// How long this request may take, in milliseconds of wall time (the host's limit on the
    /// socket). Always set by the SDK.
    pub timeout_ms: u64,
    /// Which request of the call this is: 0 the first, then 1, 2, ... for each poll of its
    /// `Location` (for views and fault rules; the host sends the same request either way).
    #[serde(default)]
    pub poll: u32,
}

/// Makes the call: the first request now (so its sequence id follows call order, like any other
/// durable call), then, in a loop spawned beside the code, the durable wait and the poll each 202
/// Accepted with `Location` asks for, until another answer. Everything the loop decides comes from
/// recorded results and the orchestration clock, so a replay schedules exactly the same calls.
pub(crate) fn call(
    ctx: &OrchestrationContext,
    request: DurableHttpRequest,
) -> DurableTask<DurableHttpResponse> {
    if let Some(error) = &request.body_error {
        let failure = FailureDetails::new(
            SERIALIZATION,
            format!("the request body did not serialize as JSON: {error}"),
        )
        .non_retriable();
        return DurableTask::from_slot(failed_without_call(
            TaskKind::Activity,
            HTTP_ACTIVITY,
            failure,
        ));
    }
    let started_at = ctx.current_utc_date_time();
    let call = HttpCall {
        deadline: request
            .timeout
            .map(|timeout| add_duration(started_at, timeout)),
        request,
    };
    let first_wire = call.wire(
        0,
        call.request.uri.clone(),
        call.request.headers.clone(),
        call.request.content.clone(),
        started_at,
    );
    let first = call.schedule(ctx, first_wire);
    if !call.request.asynchronous_polling {
        return DurableTask::from_slot(first);
    }
    let result = new_slot(first.borrow().label.clone());
    let result_slot = Rc::clone(&result);
    let context = ctx.clone();
    let polling_loop = async move {
        let outcome = call.follow(&context, first).await;
        let arrival = context.state().borrow_mut().next_arrival();
        resolve_with(&result_slot, outcome, arrival);
    };
    ctx.state()
        .borrow_mut()
        .spawn_queue
        .push(Box::pin(polling_loop));
    DurableTask::from_slot(result)
}

/// One `call_http` in progress: the request as the orchestration gave it and when the whole call
/// must be over.
struct HttpCall {
    request: DurableHttpRequest,
    /// `started_at + timeout` on the orchestration clock; `None`: polling has no limit.
    deadline: Option<DateTime<Utc>>,
}

impl HttpCall {
    /// The wire form of request `poll` of this call, made at `now`: its own limit is the call's
    /// timeout (or the default) cut to what is left of the call's budget.
    fn wire(
        &self,
        poll: u32,
        uri: String,
        headers: BTreeMap<String, String>,
        content: Option<String>,
        now: DateTime<Utc>,
    ) -> HttpRequestWire {
        let own_limit = self.request.timeout.unwrap_or(DEFAULT_REQUEST_TIMEOUT);
        let limit = match self.remaining(now) {
            Some(remaining) => own_limit.min(remaining),
            None => own_limit,
        };
        HttpRequestWire {
            method: if poll == 0 {
                self.request.method.clone()
            } else {
                "GET".to_string()
            },
            uri,
            headers,
            content,
            // A request always gets at least a millisecond: a zero limit would mean "no limit"
            // to some clients. (The loop never starts a request at or past the deadline.)
            timeout_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1),
            poll,
        }
    }

    /// What is left of the call's budget at `now` (`None`: the call has no timeout).
    fn remaining(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.deadline
            .map(|deadline| (deadline - now).to_std().unwrap_or_default())
    }

    /// Schedules one request, retried as the request's policy says. The policy's own limits
    /// stand, and the call's deadline is one more: no attempt starts at or after it. Every
    /// attempt sends the same wire (fault rules count attempts of the same input).
    fn schedule(&self, ctx: &OrchestrationContext, wire: HttpRequestWire) -> SlotRef {
        match &self.request.retry {
            None => ctx.schedule_call(TaskKind::Activity, HTTP_ACTIVITY, &wire, None),
            Some(policy) => ctx.retrying_call(
                TaskKind::Activity,
                HTTP_ACTIVITY,
                &wire,
                None,
                policy.clone(),
                self.deadline,
            ),
        }
    }

    /// Waits for `current` (request 0) and polls as its answers say; the call's outcome.
    async fn follow(
        &self,
        ctx: &OrchestrationContext,
        mut current: SlotRef,
    ) -> Result<Value, TaskError> {
        let mut uri = self.request.uri.clone();
        let mut poll = 0u32;
        loop {
            let value = std::future::poll_fn(|cx| poll_raw(&current, cx)).await?;
            let response: DurableHttpResponse =
                serde_json::from_value(value.clone()).map_err(|error| {
                    task_error(
                        &current,
                        FailureDetails::new(
                            SERIALIZATION,
                            format!("the HTTP response does not decode: {error}"),
                        )
                        .non_retriable(),
                    )
                })?;
            let location = match response.header("location") {
                Some(location) if response.status_code == 202 => location,
                _ => return Ok(value),
            };
            let next_uri = resolve_reference(&uri, location);
            let now = ctx.current_utc_date_time();
            let poll_at = retry_after(&response, now)
                .filter(|at| crate::history::check_time(*at).is_ok())
                .unwrap_or_else(|| add_duration(now, DEFAULT_POLL_INTERVAL));
            if let Some(deadline) = self.deadline.filter(|deadline| poll_at >= *deadline) {
                return Err(self.timed_out(&current, poll, &response, poll_at, deadline));
            }
            // A timer fails only if the host says so; the poll is due either way.
            let _ = ctx.create_timer(poll_at).await;
            poll += 1;
            let headers = if same_origin(&self.request.uri, &next_uri) {
                self.request.headers.clone()
            } else {
                BTreeMap::new()
            };
            let wire = self.wire(
                poll,
                next_uri.clone(),
                headers,
                None,
                ctx.current_utc_date_time(),
            );
            uri = next_uri;
            current = self.schedule(ctx, wire);
        }
    }

    /// The call's own timeout: the next poll would start at `poll_at`, at or past `deadline`.
    fn timed_out(
        &self,
        last: &SlotRef,
        polls: u32,
        response: &DurableHttpResponse,
        poll_at: DateTime<Utc>,
        deadline: DateTime<Utc>,
    ) -> TaskError {
        let timeout = self.request.timeout.unwrap_or_default();
        let wait = (poll_at - deadline).to_std().unwrap_or_default();
        task_error(
            last,
            FailureDetails::new(
                HTTP_TIMEOUT,
                format!(
                    "{} {} did not finish within its timeout of {}: {polls} poll{} made, the last \
                     answer {} Accepted; the next poll would start {} past the deadline",
                    self.request.method,
                    self.request.uri,
                    humanize(timeout),
                    if polls == 1 { "" } else { "s" },
                    response.status_code,
                    humanize(wait),
                ),
            ),
        )
    }
}

/// A failure of the task in `slot` (the request that answered last), named as that task.
fn task_error(slot: &SlotRef, failure: FailureDetails) -> TaskError {
    let label = slot.borrow().label.clone();
    TaskError {
        kind: label.kind,
        name: label.name,
        task_id: label.id,
        failure,
    }
}

/// `90s`, `2m`, `1500ms`: a duration as a person reads it in an error message.
fn humanize(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 60_000 == 0 && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

/// When the next poll is due by the answer's `Retry-After`: delta-seconds after `now`, or an
/// HTTP-date (a date already past means now). `None` when the header is absent or invalid.
fn retry_after(response: &DurableHttpResponse, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let value = response.header("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(add_duration(now, Duration::from_secs(seconds)));
    }
    let date = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some(date.max(now))
}

/// The parts of an absolute URI this module needs (RFC 3986, without the fragment).
#[derive(Debug, PartialEq, Eq)]
struct UriParts<'a> {
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_uri(uri: &str) -> Option<UriParts<'_>> {
    let (scheme, rest) = uri.split_once("://")?;
    if !is_scheme(scheme) {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, rest) = rest.split_at(authority_end);
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    Some(UriParts {
        scheme,
        authority,
        path,
        query,
    })
}

fn is_scheme(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `reference` (a `Location` header) resolved against `base` (the URI that answered), as RFC 3986
/// section 5.2 says. A base that is not an absolute URI leaves the reference as it is (the host
/// then refuses it as an invalid request).
pub(crate) fn resolve_reference(base: &str, reference: &str) -> String {
    let reference = reference.trim();
    let has_scheme = reference
        .split_once(':')
        .is_some_and(|(scheme, _)| is_scheme(scheme));
    let Some(base) = split_uri(base) else {
        return reference.to_string();
    };
    if has_scheme {
        return reference.to_string();
    }
    let reference = reference.split('#').next().unwrap_or_default();
    if reference.starts_with("//") {
        return format!("{}:{reference}", base.scheme);
    }
    let origin = format!("{}://{}", base.scheme, base.authority);
    let (path, query) = match reference.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (reference, None),
    };
    let (path, query) = if path.is_empty() {
        (base.path.to_string(), query.or(base.query))
    } else if path.starts_with('/') {
        (remove_dot_segments(path), query)
    } else {
        let directory = match base.path.rfind('/') {
            Some(end) => &base.path[..=end],
            None => "/",
        };
        (remove_dot_segments(&format!("{directory}{path}")), query)
    };
    match query {
        Some(query) => format!("{origin}{path}?{query}"),
        None => format!("{origin}{path}"),
    }
}

/// `/a/b/../c/./d` -> `/a/c/d` (RFC 3986 section 5.2.4, for a path that starts with `/`).
fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').collect();
    let mut output: Vec<&str> = Vec::with_capacity(segments.len());
    for (index, segment) in segments.iter().enumerate() {
        let last = index + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                // The first segment is the empty one before the leading '/': never popped.
                if output.len() > 1 {
                    output.pop();
                }
            }
            segment => {
                output.push(segment);
                continue;
            }
        }
        if last {
            // `/a/b/..` names the directory `/a/`: keep the trailing slash.
            output.push("");
        }
    }
    if output.len() == 1 {
        return "/".to_string();
    }
    output.join("/")
}

/// Whether two absolute URIs have the same scheme, host and port (the port a scheme implies when
/// none is written). Headers the orchestration gave for one go to the other only then: a
/// `Location` elsewhere must not receive its credentials.
pub(crate) fn same_origin(left: &str, right: &str) -> bool {
    match (origin(left), origin(right)) {
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

fn origin(uri: &str) -> Option<(String, String, Option<u16>)> {
    let parts = split_uri(uri)?;
    let scheme = parts.scheme.to_ascii_lowercase();
    let host_port = parts
        .authority
        .rsplit_once('@')
        .map_or(parts.authority, |(_, host_port)| host_port);
    // An IPv6 literal's colons are inside the brackets; a port follows the closing one.
    let port_start = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|colon| bracket + colon),
        None => host_port.rfind(':'),
    };
    let (host, port) = match port_start {
        Some(colon) => (&host_port[..colon], &host_port[colon + 1..]),
        None => (host_port, ""),
    };
    let port = if port.is_empty() {
        match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        }
    } else {
        Some(port.parse().ok()?)
    };
    Some((scheme, host.to_ascii_lowercase(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_resolves_against_the_uri_that_answered() {
        let base = "http://127.0.0.1:8088/api/jobs?x=1";
        let cases = [
            ("/jobs/7", "http://127.0.0.1:8088/jobs/7"),
            ("7/status", "http://127.0.0.1:8088/api/7/status"),
            ("../status/7", "http://127.0.0.1:8088/status/7"),
            ("./7", "http://127.0.0.1:8088/api/7"),
            ("?page=2", "http://127.0.0.1:8088/api/jobs?page=2"),
            ("", "http://127.0.0.1:8088/api/jobs?x=1"),
            ("//other:9000/s", "http://other:9000/s"),
            ("https://elsewhere/s#frag", "https://elsewhere/s#frag"),
            ("/a/b/../../..", "http://127.0.0.1:8088/"),
            ("/a/b/..", "http://127.0.0.1:8088/a/"),
        ];
        for (reference, expected) in cases {
            assert_eq!(resolve_reference(base, reference), expected, "{reference}");
        }
        assert_eq!(
            resolve_reference("http://host", "status"),
            "http://host/status"
        );
        assert_eq!(resolve_reference("not a uri", "/x"), "/x");
    }

    #[test]
    fn origins_compare_scheme_host_and_port_with_default_ports() {
        assert!(same_origin("http://Host/a", "HTTP://host:80/b?c"));
        assert!(same_origin("https://u:p@host/a", "https://host:443/"));
        assert!(same_origin("http://[::1]:7071/a", "http://[::1]:7071/b"));
        assert!(!same_origin("http://[::1]:7071/a", "http://[::1]:7072/a"));
        assert!(!same_origin("http://host/a", "https://host/a"));
        assert!(!same_origin("http://host:8088/a", "http://host:8089/a"));
        assert!(!same_origin("http://host/a", "http://other/a"));
        assert!(!same_origin(
            "http://host:notaport/a",
            "http://host:notaport/a"
        ));
    }

    fn answer(retry_after: Option<&str>) -> DurableHttpResponse {
        DurableHttpResponse {
            status_code: 202,
            headers: retry_after
                .map(|value| ("retry-after".to_string(), value.to_string()))
                .into_iter()
                .collect(),
            content: String::new(),
        }
    }

    #[test]
    fn retry_after_takes_delta_seconds_or_an_http_date() {
        use chrono::TimeZone;
        let Some(now) = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single() else {
            panic!("2024-01-01T00:00:00Z is one instant");
        };
        let seconds = |answer: &DurableHttpResponse| {
            retry_after(answer, now).map(|at| (at - now).num_seconds())
        };
        assert_eq!(seconds(&answer(Some("5"))), Some(5));
        assert_eq!(seconds(&answer(Some(" 0 "))), Some(0));
        assert_eq!(
            seconds(&answer(Some("Mon, 01 Jan 2024 00:02:00 GMT"))),
            Some(120)
        );
        // A date already past: poll now.
        assert_eq!(
            seconds(&answer(Some("Sun, 31 Dec 2023 23:00:00 GMT"))),
            Some(0)
        );
        assert_eq!(seconds(&answer(Some("soon"))), None);
        assert_eq!(seconds(&answer(Some("-3"))), None);
        assert_eq!(seconds(&answer(None)), None);
    }

    #[test]
    fn durations_read_as_a_person_writes_them() {
        assert_eq!(humanize(Duration::from_secs(120)), "2m");
        assert_eq!(humanize(Duration::from_secs(90)), "90s");
        assert_eq!(humanize(Duration::from_millis(1500)), "1500ms");
        assert_eq!(humanize(Duration::ZERO), "0s");
    }
}
