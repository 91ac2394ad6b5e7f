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

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::retry::RetryPolicy;

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

/// Makes the call: the first request now, then polls and retries as the request says.
pub(crate) fn call(
    ctx: &crate::OrchestrationContext,
    request: DurableHttpRequest,
) -> crate::DurableTask<DurableHttpResponse> {
    // CONTRACT PLACEHOLDER: the SDK helper writes the request/poll/retry loop.
    let _ = &request.body_error;
    ctx.call_activity(
        HTTP_ACTIVITY,
        HttpRequestWire {
            method: request.method,
            uri: request.uri,
            headers: request.headers,
            content: request.content,
            timeout_ms: DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
            poll: 0,
        },
    )
}
