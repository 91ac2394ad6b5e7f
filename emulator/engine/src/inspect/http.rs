//! HTTP calls as the views name them. A durable HTTP call is a run of `BuiltIn::HttpActivity`
//! activity calls (the first request, then one per poll of a 202's `Location`, each retried as a
//! retry policy says) with polling timers between them; history records each request's wire form
//! (`HttpRequestWire`) as the call's input and the `DurableHttpResponse` as its result. This
//! module reads those and gives the small texts every view shares: `HTTP POST
//! http://127.0.0.1:8088/jobs` for a request, `POST /jobs` / `poll 1 GET /jobs/1` where room is
//! short, `HTTP 202 Accepted <- POST /jobs` for an answer, and the whole exchange (headers and
//! bodies of both sides) for a detail pane.
//!
//! Must not know: how the host performs a request or the SDK polls (only the wire forms), nor any
//! UI. An input that is not a valid wire form is not treated as HTTP: views then show the call as
//! the plain activity it is.

use super::rows::{Answers, format_offset, truncate};
use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent};
use durable_sdk::http::{DurableHttpResponse, HTTP_ACTIVITY, HttpRequestWire};
use serde::Deserialize as _;
use serde_json::Value;

/// Whether an activity named `name` is an HTTP request.
pub fn is_http(name: &str) -> bool {
    name == HTTP_ACTIVITY
}

/// The request an activity call named `name` with `input` makes, if it is an HTTP request.
pub fn request(name: &str, input: &Value) -> Option<HttpRequestWire> {
    if !is_http(name) {
        return None;
    }
    HttpRequestWire::deserialize(input).ok()
}

/// The request a `TaskScheduled` event records, if it is an HTTP request.
pub fn scheduled_request(kind: &EventKind) -> Option<HttpRequestWire> {
    match kind {
        EventKind::TaskScheduled { name, input } => request(name, input),
        _ => None,
    }
}

/// The response an HTTP request's result carries, if it is one.
pub fn response(result: &Value) -> Option<DurableHttpResponse> {
    DurableHttpResponse::deserialize(result).ok()
}

/// What a URI's request line names: its path and query (`/jobs/1?full=true`), `/` for none.
pub fn target(uri: &str) -> &str {
    let Some((_, rest)) = uri.split_once("://") else {
        return uri;
    };
    match rest.find(['/', '?']) {
        Some(at) if rest[at..].starts_with('/') => &rest[at..],
        Some(_) | None => "/",
    }
}

/// ` (poll n)` for a poll, nothing for the first request.
fn poll_suffix(wire: &HttpRequestWire) -> String {
    if wire.poll > 0 {
        format!(" (poll {})", wire.poll)
    } else {
        String::new()
    }
}

/// `POST http://127.0.0.1:8088/jobs`, with ` (poll n)` for a poll: the request in full.
pub fn request_line(wire: &HttpRequestWire) -> String {
    format!("{} {}{}", wire.method, wire.uri, poll_suffix(wire))
}

/// `POST /jobs`, or `poll 1 GET /jobs/1` for a poll: the request where room is short.
pub fn short_request(wire: &HttpRequestWire) -> String {
    let line = format!("{} {}", wire.method, target(&wire.uri));
    if wire.poll > 0 {
        format!("poll {} {line}", wire.poll)
    } else {
        line
    }
}

/// `call_http POST http://127.0.0.1:8088/jobs` (with ` (poll n)`): a request as the replay
/// stepper lists the durable calls the code made or makes next.
pub fn call_text(wire: &HttpRequestWire) -> String {
    format!("call_http {}", request_line(wire))
}

/// `HTTP POST /jobs`: the call's name in a name column (a poll names the same call: its number
/// is in the detail).
pub fn call_name(wire: &HttpRequestWire) -> String {
    format!("HTTP {} {}", wire.method, target(&wire.uri))
}

/// The standard reason phrase of an HTTP status (RFC 9110 and the common extensions).
pub fn reason_phrase(status: u16) -> Option<&'static str> {
    Some(match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        511 => "Network Authentication Required",
        _ => return None,
    })
}

/// `202 Accepted` (the bare number for a status without a standard phrase).
pub fn status_line(status: u16) -> String {
    match reason_phrase(status) {
        Some(reason) => format!("{status} {reason}"),
        None => status.to_string(),
    }
}

/// A body on one line (runs of whitespace, newlines included, become one space).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a history row says of a scheduled request: `HTTP POST http://127.0.0.1:8088/jobs` (with
/// ` (poll n)` for a poll), then the body on one line, cut to `max` characters.
pub fn request_detail(wire: &HttpRequestWire, max: usize) -> String {
    let mut text = format!("HTTP {}", request_line(wire));
    if let Some(body) = wire.content.as_deref().map(one_line) {
        if !body.is_empty() {
            text.push(' ');
            text.push_str(&body);
        }
    }
    truncate(&text, max)
}

/// What a history row says of an answered request: `HTTP 202 Accepted <- POST /jobs`, then the
/// body on one line, cut to `max` characters. `short` is the request's [`short_request`].
pub fn response_detail(response: &DurableHttpResponse, short: &str, max: usize) -> String {
    let mut text = format!("HTTP {} <- {short}", status_line(response.status_code));
    let body = one_line(&response.content);
    if !body.is_empty() {
        text.push(' ');
        text.push_str(&body);
    }
    truncate(&text, max)
}

/// Whether a status is worth a look (the orchestration gets it as a result, not a failure).
pub fn is_error_status(status: u16) -> bool {
    status >= 400
}

/// The answer of the request a call (sequence id `id`) made, in `events`.
fn answer_of(events: &[HistoryEvent], id: i32) -> Option<&HistoryEvent> {
    events
        .iter()
        .find(|event| super::rows::answers(&event.kind) == Some(Answers::Call(id)))
}

/// The whole exchange of the HTTP request event `index` of `events` scheduled or answered: the
/// request (method, URI, poll, time limit, headers, body) and what came back (status, headers,
/// body; or the failure; or nothing yet), for a detail pane. `None` when the event is not part of
/// an HTTP request.
pub fn exchange(events: &[HistoryEvent], index: usize) -> Option<Vec<String>> {
    let event = events.get(index)?;
    let id = match &event.kind {
        EventKind::TaskScheduled { .. } => event.event_id,
        EventKind::TaskCompleted {
            task_scheduled_id, ..
        }
        | EventKind::TaskFailed {
            task_scheduled_id, ..
        } => *task_scheduled_id,
        _ => return None,
    };
    let scheduled = events.iter().find(|event| {
        event.event_id == id && matches!(event.kind, EventKind::TaskScheduled { .. })
    })?;
    let wire = scheduled_request(&scheduled.kind)?;
    let start = super::rows::history_start(events).unwrap_or(scheduled.timestamp);
    let at = |time: DateTime<Utc>| format_offset(time - start);
    let mut lines = vec![
        format!(
            "HTTP request #{id}{} at {}",
            poll_suffix(&wire),
            at(scheduled.timestamp)
        ),
        format!("{} {}", wire.method, wire.uri),
        format!("time limit: {} ms", wire.timeout_ms),
    ];
    push_headers(&mut lines, &wire.headers);
    push_body(&mut lines, wire.content.as_deref().unwrap_or(""));
    lines.push(String::new());
    match answer_of(events, id).map(|answer| (answer, &answer.kind)) {
        Some((answer, EventKind::TaskCompleted { result, .. })) => match response(result) {
            Some(response) => {
                lines.push(format!(
                    "response: {} at {}",
                    status_line(response.status_code),
                    at(answer.timestamp)
                ));
                push_headers(&mut lines, &response.headers);
                push_body(&mut lines, &response.content);
            }
            None => lines.push(format!(
                "response (not an HTTP response) at {}: {result}",
                at(answer.timestamp)
            )),
        },
        Some((answer, EventKind::TaskFailed { failure, .. })) => lines.push(format!(
            "failed at {}: {}: {}",
            at(answer.timestamp),
            failure.error_type,
            failure.error_message
        )),
        _ => lines.push("response: none yet".to_string()),
    }
    Some(lines)
}

fn push_headers(lines: &mut Vec<String>, headers: &std::collections::BTreeMap<String, String>) {
    if headers.is_empty() {
        lines.push("headers: none".to_string());
        return;
    }
    lines.push("headers:".to_string());
    lines.extend(
        headers
            .iter()
            .map(|(name, value)| format!("  {name}: {value}")),
    );
}

/// A body as it is, or pretty-printed when it is JSON (what a JSON API answers).
fn push_body(lines: &mut Vec<String>, body: &str) {
    if body.is_empty() {
        lines.push("body: empty".to_string());
        return;
    }
    lines.push("body:".to_string());
    let pretty = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok());
    let text = pretty.as_deref().unwrap_or(body);
    lines.extend(text.lines().map(|line| format!("  {line}")));
}

/// A job started with a POST answered 202, the polling timer, a poll whose connection failed and
/// another poll a server answered 500 (a table for rows: the SDK's loop would stop at the failure).
#[cfg(test)]
pub(crate) const HTTP_JOB: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted HttpJobWorkflow null
    TaskScheduled #0 BuiltIn::HttpActivity {"method":"POST","uri":"http://127.0.0.1:8088/jobs","headers":{"Content-Type":"application/json"},"content":"{\"steps\":3}","timeoutMs":100000,"poll":0}
    OrchestratorStarted @1
    TaskCompleted #0 {"statusCode":202,"headers":{"location":"http://127.0.0.1:8088/jobs/1","retry-after":"1"},"content":""}
    TimerCreated #1 @2
    OrchestratorStarted @2
    TimerFired #1 @2
    TaskScheduled #2 BuiltIn::HttpActivity {"method":"GET","uri":"http://127.0.0.1:8088/jobs/1","timeoutMs":100000,"poll":1}
    OrchestratorStarted @3
    TaskFailed #2 HttpConnectionFailed: connection refused
    TaskScheduled #3 BuiltIn::HttpActivity {"method":"GET","uri":"http://127.0.0.1:8088/jobs/1","timeoutMs":100000,"poll":2}
    OrchestratorStarted @4
    TaskCompleted #3 {"statusCode":500,"headers":{},"content":"oops\n"}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(method: &str, uri: &str, poll: u32) -> HttpRequestWire {
        HttpRequestWire {
            method: method.into(),
            uri: uri.into(),
            headers: Default::default(),
            content: None,
            timeout_ms: 100_000,
            poll,
        }
    }

    #[test]
    fn a_request_reads_in_full_or_short() {
        let first = wire("POST", "http://127.0.0.1:8088/jobs", 0);
        assert_eq!(request_line(&first), "POST http://127.0.0.1:8088/jobs");
        assert_eq!(short_request(&first), "POST /jobs");
        assert_eq!(call_name(&first), "HTTP POST /jobs");
        let poll = wire("GET", "http://127.0.0.1:8088/jobs/1?full=1", 2);
        assert_eq!(
            request_line(&poll),
            "GET http://127.0.0.1:8088/jobs/1?full=1 (poll 2)"
        );
        assert_eq!(short_request(&poll), "poll 2 GET /jobs/1?full=1");
    }

    #[test]
    fn a_target_is_the_path_and_query() {
        assert_eq!(target("http://example.com"), "/");
        assert_eq!(target("https://example.com?x=1"), "/");
        assert_eq!(target("https://example.com:8443/a/b?x=1"), "/a/b?x=1");
        assert_eq!(target("not a uri"), "not a uri");
    }

    #[test]
    fn statuses_carry_their_reason_phrase() {
        assert_eq!(status_line(202), "202 Accepted");
        assert_eq!(status_line(503), "503 Service Unavailable");
        assert_eq!(status_line(299), "299");
        assert!(is_error_status(404) && !is_error_status(302));
    }

    #[test]
    fn only_a_valid_wire_form_of_the_built_in_activity_is_http() {
        let input = serde_json::to_value(wire("GET", "http://h/x", 0)).unwrap();
        assert!(request(HTTP_ACTIVITY, &input).is_some());
        assert!(request("SayHello", &input).is_none());
        assert!(request(HTTP_ACTIVITY, &json!({"uri": "http://h/x"})).is_none());
    }

    #[test]
    fn details_put_bodies_on_one_line_and_cut_them() {
        let mut post = wire("POST", "http://h/jobs", 0);
        post.content = Some("{\n  \"steps\": 3\n}".into());
        assert_eq!(
            request_detail(&post, 100),
            "HTTP POST http://h/jobs { \"steps\": 3 }"
        );
        let answer = DurableHttpResponse {
            status_code: 200,
            headers: Default::default(),
            content: "{\"state\":\"done\"}".into(),
        };
        assert_eq!(
            response_detail(&answer, "poll 1 GET /jobs/1", 100),
            "HTTP 200 OK <- poll 1 GET /jobs/1 {\"state\":\"done\"}"
        );
        assert_eq!(response_detail(&answer, "GET /", 12), "HTTP 200 OK…");
    }

    #[test]
    fn the_exchange_shows_both_sides_or_the_failure_or_that_nothing_came_yet() {
        let events = durable_emu_testing::history::events(
            r#"
            OrchestratorStarted @0
            ExecutionStarted Job null
            TaskScheduled #0 BuiltIn::HttpActivity {"method":"POST","uri":"http://h/jobs","headers":{"Content-Type":"application/json"},"content":"{\"steps\":3}","timeoutMs":5000,"poll":0}
            OrchestratorStarted @1
            TaskCompleted #0 {"statusCode":202,"headers":{"location":"http://h/jobs/1","retry-after":"1"},"content":""}
            TaskScheduled #1 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/jobs/1","timeoutMs":5000,"poll":1}
            OrchestratorStarted @2
            TaskFailed #1 HttpTimeout: no answer within 5000 ms
            TaskScheduled #2 BuiltIn::HttpActivity {"method":"GET","uri":"http://h/jobs/1","timeoutMs":5000,"poll":1}
            "#,
        );
        let whole = exchange(&events, 4).unwrap();
        assert_eq!(
            whole,
            [
                "HTTP request #0 at +00:00:00",
                "POST http://h/jobs",
                "time limit: 5000 ms",
                "headers:",
                "  Content-Type: application/json",
                "body:",
                "  {",
                "    \"steps\": 3",
                "  }",
                "",
                "response: 202 Accepted at +00:01:00",
                "headers:",
                "  location: http://h/jobs/1",
                "  retry-after: 1",
                "body: empty",
            ]
        );
        // The request's own row shows the same exchange.
        assert_eq!(exchange(&events, 2).unwrap(), whole);
        let failed = exchange(&events, 7).unwrap();
        assert_eq!(failed[0], "HTTP request #1 (poll 1) at +00:01:00");
        assert_eq!(
            failed.last().unwrap(),
            "failed at +00:02:00: HttpTimeout: no answer within 5000 ms"
        );
        assert_eq!(
            exchange(&events, 8).unwrap().last().unwrap(),
            "response: none yet"
        );
        assert_eq!(exchange(&events, 1), None, "not an HTTP event");
    }
}
