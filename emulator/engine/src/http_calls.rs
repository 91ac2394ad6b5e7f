//! Durable HTTP on the host: performs one request of the built-in activity
//! [`durable_sdk::http::HTTP_ACTIVITY`] (docs/architecture.md#durable-http).
//!
//! Owns the HTTP client (ureq, blocking, one agent whose connections every call shares) and the
//! translation between the wire form and the network: [`HttpRequestWire`] in, a
//! [`DurableHttpResponse`] (any status is a response) or an [`HttpCallError`] out. The request
//! goes exactly where the orchestration said: no redirect is followed (a 3xx is a response), no
//! proxy from the environment is used, and nothing is sent that the wire does not hold.
//!
//! Knows nothing of the engine: which thread calls it, how results reach history, polling (the
//! SDK's), fault rules (decided before a request gets here).

use durable_sdk::FailureDetails;
use durable_sdk::http::{
    DurableHttpResponse, HTTP_CONNECTION_FAILED, HTTP_INVALID_REQUEST, HTTP_TIMEOUT,
    HttpRequestWire,
};
use serde::Deserialize as _;
use std::collections::BTreeMap;
use std::time::Duration;
use ureq::http::{HeaderName, HeaderValue, Method, Request, Uri};

/// Methods a request may use; anything else is refused as invalid before it is sent.
const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE",
];

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HttpCallError {
    /// The request cannot be sent at all (bad input, URI, method, scheme or header).
    #[error("{0}")]
    Invalid(String),
    /// No complete response within the request's timeout.
    #[error("{0}")]
    Timeout(String),
    /// No server was reached, or the connection broke.
    #[error("{0}")]
    ConnectionFailed(String),
    /// The response body is larger than the engine stores.
    #[error("the body of the response to {request} is over {limit} bytes (--max-payload)")]
    BodyTooLarge {
        /// `GET http://...`.
        request: String,
        /// The limit, in bytes.
        limit: usize,
    },
}

impl HttpCallError {
    /// The failure an orchestration sees; `None` for [`HttpCallError::BodyTooLarge`], which the
    /// engine reports as its own payload failure.
    pub(crate) fn failure(&self) -> Option<FailureDetails> {
        let message = self.to_string();
        match self {
            HttpCallError::Invalid(_) => {
                Some(FailureDetails::new(HTTP_INVALID_REQUEST, message).non_retriable())
            }
            HttpCallError::Timeout(_) => Some(FailureDetails::new(HTTP_TIMEOUT, message)),
            HttpCallError::ConnectionFailed(_) => {
                Some(FailureDetails::new(HTTP_CONNECTION_FAILED, message))
            }
            HttpCallError::BodyTooLarge { .. } => None,
        }
    }
}

/// Decodes an activity input as a request; what does not decode is an invalid request.
pub(crate) fn parse_wire(input: &serde_json::Value) -> Result<HttpRequestWire, HttpCallError> {
    HttpRequestWire::deserialize(input).map_err(|error| {
        HttpCallError::Invalid(format!(
            "the input of {} is not an HTTP request (method, uri, headers, content, timeoutMs, poll): {error}",
            durable_sdk::http::HTTP_ACTIVITY
        ))
    })
}

/// The client every HTTP call of an engine goes through (cheap to clone: clones share the
/// connection pool).
#[derive(Debug, Clone)]
pub(crate) struct HttpClient {
    agent: ureq::Agent,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client that follows no redirect, treats every status as a response and ignores proxy
    /// settings in the environment (requests go only where the orchestration says).
    pub(crate) fn new() -> Self {
        let config = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .user_agent(concat!("durable-emu/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            agent: config.into(),
        }
    }

    /// Sends one request and reads its whole response, within `wire.timeout_ms` of wall time;
    /// a body over `max_body` bytes is not read past the limit.
    pub(crate) fn perform(
        &self,
        wire: &HttpRequestWire,
        max_body: usize,
    ) -> Result<DurableHttpResponse, HttpCallError> {
        let method = wire.method.trim().to_ascii_uppercase();
        let what = format!("{method} {}", wire.uri);
        if !METHODS.contains(&method.as_str()) {
            return Err(HttpCallError::Invalid(format!(
                "{what}: unknown method '{}'; accepted: {}",
                wire.method,
                METHODS.join(", ")
            )));
        }
        let uri = check_uri(&wire.uri)?;
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).map_err(|error| {
                HttpCallError::Invalid(format!("{what}: invalid method: {error}"))
            })?)
            .uri(uri);
        for (name, value) in &wire.headers {
            let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
                HttpCallError::Invalid(format!("{what}: '{name}' is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                HttpCallError::Invalid(format!(
                    "{what}: the value of header '{name}' is not valid (control characters or non-ASCII)"
                ))
            })?;
            builder = builder.header(name, value);
        }
        // At least a millisecond: a zero timeout would mean "none" to some layers.
        let timeout = Duration::from_millis(wire.timeout_ms.max(1));
        let sent = match &wire.content {
            Some(content) => {
                let request = builder
                    .body(content.clone().into_bytes())
                    .map_err(|error| {
                        HttpCallError::Invalid(format!("{what}: cannot build the request: {error}"))
                    })?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_global(Some(timeout))
                    .build();
                self.agent.run(request)
            }
            None => {
                let request = builder.body(()).map_err(|error| {
                    HttpCallError::Invalid(format!("{what}: cannot build the request: {error}"))
                })?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_global(Some(timeout))
                    .build();
                self.agent.run(request)
            }
        };
        let mut response = sent.map_err(|error| classify(&what, timeout, error))?;
        let status_code = response.status().as_u16();
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in response.headers() {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_ascii_lowercase())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert(value);
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::try_from(max_body).unwrap_or(u64::MAX))
            .read_to_vec()
            .map_err(|error| match error {
                ureq::Error::BodyExceedsLimit(_) => HttpCallError::BodyTooLarge {
                    request: what.clone(),
                    limit: max_body,
                },
                other => classify(&what, timeout, other),
            })?;
        Ok(DurableHttpResponse {
            status_code,
            headers,
            content: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

/// An absolute `http` or `https` URI with a host.
fn check_uri(text: &str) -> Result<Uri, HttpCallError> {
    let uri: Uri = text
        .trim()
        .parse()
        .map_err(|error| HttpCallError::Invalid(format!("'{text}' is not a valid URI: {error}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(HttpCallError::Invalid(format!(
                "'{text}': scheme '{other}' is not supported; use http or https"
            )));
        }
        None => {
            return Err(HttpCallError::Invalid(format!(
                "'{text}' is not an absolute URI (it needs http:// or https:// and a host)"
            )));
        }
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(HttpCallError::Invalid(format!("'{text}' has no host")));
    }
    Ok(uri)
}

/// Sorts a client error into the three ways a request can fail.
fn classify(what: &str, timeout: Duration, error: ureq::Error) -> HttpCallError {
    let within = humantime::format_duration(timeout);
    match error {
        ureq::Error::Timeout(_) => {
            HttpCallError::Timeout(format!("{what}: no response within {within}"))
        }
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            HttpCallError::Timeout(format!("{what}: no response within {within} ({io})"))
        }
        ureq::Error::BadUri(reason) => {
            HttpCallError::Invalid(format!("{what}: invalid URI: {reason}"))
        }
        ureq::Error::Http(error) => HttpCallError::Invalid(format!("{what}: {error}")),
        ureq::Error::RequireHttpsOnly(reason) => {
            HttpCallError::Invalid(format!("{what}: {reason}"))
        }
        ureq::Error::HostNotFound => {
            HttpCallError::ConnectionFailed(format!("{what}: the host name does not resolve"))
        }
        other => HttpCallError::ConnectionFailed(format!("{what}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};

    /// A one-connection-per-request server on a free loopback port: `answer` gets the request
    /// line, the headers (lower-case names) and the body, and returns the raw response bytes
    /// (or `None` to hold the connection open without answering).
    fn serve(
        answer: impl Fn(&str, &BTreeMap<String, String>, &str) -> Option<Vec<u8>> + Send + 'static,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                handle(stream, &answer);
            }
        });
        format!("http://{address}")
    }

    fn handle(
        stream: TcpStream,
        answer: &impl Fn(&str, &BTreeMap<String, String>, &str) -> Option<Vec<u8>>,
    ) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut headers = BTreeMap::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        let length: usize = headers
            .get("content-length")
            .map_or(0, |length| length.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        match answer(line.trim_end(), &headers, &String::from_utf8(body).unwrap()) {
            Some(bytes) => {
                let mut stream = stream;
                let _ = stream.write_all(&bytes);
            }
            // Holds the connection until the client gives up.
            None => {
                let mut rest = Vec::new();
                let _ = reader.read_to_end(&mut rest);
            }
        }
    }

    fn response(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
        let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
        for header in headers {
            text.push_str(header);
            text.push_str("\r\n");
        }
        text.push_str("Connection: close\r\n\r\n");
        text.push_str(body);
        text.into_bytes()
    }

    fn wire(method: &str, uri: String) -> HttpRequestWire {
        HttpRequestWire {
            method: method.into(),
            uri,
            headers: BTreeMap::new(),
            content: None,
            timeout_ms: 10_000,
            poll: 0,
        }
    }

    #[test]
    fn a_request_carries_method_headers_and_body_and_any_status_is_a_response() {
        let base = serve(|line, headers, body| {
            let echoed = format!("{line}|{}|{body}", headers["x-order"]);
            Some(response(
                "500 Internal Server Error",
                &["X-Trace: a", "X-Trace: b", "Content-Type: text/plain"],
                &echoed,
            ))
        });
        let mut request = wire("post", format!("{base}/orders?id=7"));
        request.headers.insert("X-Order".into(), "7".into());
        request.content = Some("{\"qty\":2}".into());
        let answer = HttpClient::new().perform(&request, 1 << 20).unwrap();
        assert_eq!(answer.status_code, 500);
        assert_eq!(answer.content, "POST /orders?id=7 HTTP/1.1|7|{\"qty\":2}");
        assert_eq!(answer.headers["x-trace"], "a, b");
        assert_eq!(answer.headers["content-type"], "text/plain");
    }

    #[test]
    fn a_redirect_is_a_response_not_followed() {
        let base = serve(|line, _, _| {
            assert!(line.starts_with("GET /old "), "followed to {line}");
            Some(response("302 Found", &["Location: /new"], ""))
        });
        let answer = HttpClient::new()
            .perform(&wire("GET", format!("{base}/old")), 1024)
            .unwrap();
        assert_eq!(answer.status_code, 302);
        assert_eq!(answer.header("Location"), Some("/new"));
    }

    #[test]
    fn a_body_that_is_not_utf8_is_kept_lossily() {
        let base = serve(|_, _, _| {
            let mut bytes = response("200 OK", &[], "ab");
            let last = bytes.len() - 1;
            bytes[last] = 0xff;
            Some(bytes)
        });
        let answer = HttpClient::new().perform(&wire("GET", base), 1024).unwrap();
        assert_eq!(answer.content, "a\u{fffd}");
    }

    #[test]
    fn a_body_over_the_limit_is_refused() {
        let base = serve(|_, _, _| Some(response("200 OK", &[], &"x".repeat(5000))));
        let error = HttpClient::new()
            .perform(&wire("GET", base), 1000)
            .unwrap_err();
        assert!(
            matches!(error, HttpCallError::BodyTooLarge { limit: 1000, .. }),
            "{error}"
        );
        assert!(error.failure().is_none());
    }

    #[test]
    fn no_answer_in_time_is_a_timeout() {
        let base = serve(|_, _, _| None);
        let mut request = wire("GET", base);
        request.timeout_ms = 300;
        let error = HttpClient::new().perform(&request, 1024).unwrap_err();
        let failure = error.failure().unwrap();
        assert_eq!(failure.error_type, HTTP_TIMEOUT, "{error}");
        assert!(!failure.is_non_retriable);
    }

    #[test]
    fn a_closed_port_is_a_connection_failure() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = HttpClient::new()
            .perform(&wire("GET", format!("http://127.0.0.1:{port}/")), 1024)
            .unwrap_err();
        assert_eq!(
            error.failure().unwrap().error_type,
            HTTP_CONNECTION_FAILED,
            "{error}"
        );
    }

    #[test]
    fn https_is_spoken_and_a_failed_handshake_is_a_connection_failure() {
        // A server that answers plain HTTP to a TLS handshake.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let _ = stream.write_all(&response("200 OK", &[], "not tls"));
                // Until the client hangs up.
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            }
        });
        let error = HttpClient::new()
            .perform(&wire("GET", format!("https://{address}/")), 1024)
            .unwrap_err();
        assert_eq!(
            error.failure().unwrap().error_type,
            HTTP_CONNECTION_FAILED,
            "{error}"
        );
        // rustls read the answer as a TLS record: https is really spoken.
        assert!(error.to_string().contains("corrupt message"), "{error}");
    }

    #[test]
    fn bad_requests_are_invalid_and_non_retriable_before_anything_is_sent() {
        let cases = [
            (wire("GET", "ftp://example.com/file".into()), "scheme 'ftp'"),
            (wire("GET", "/relative".into()), "not an absolute URI"),
            (
                wire("GET", "http://exa mple.com/".into()),
                "not a valid URI",
            ),
            (
                wire("FETCH", "http://127.0.0.1:9/".into()),
                "unknown method 'FETCH'",
            ),
            (
                HttpRequestWire {
                    headers: BTreeMap::from([("Bad Name".to_string(), "x".to_string())]),
                    ..wire("GET", "http://127.0.0.1:9/".into())
                },
                "not a valid header name",
            ),
            (
                HttpRequestWire {
                    headers: BTreeMap::from([("X-A".to_string(), "a\nb".to_string())]),
                    ..wire("GET", "http://127.0.0.1:9/".into())
                },
                "is not valid",
            ),
        ];
        let client = HttpClient::new();
        for (request, expected) in cases {
            let error = client.perform(&request, 1024).unwrap_err();
            let failure = error.failure().unwrap();
            assert_eq!(failure.error_type, HTTP_INVALID_REQUEST, "{error}");
            assert!(failure.is_non_retriable);
            assert!(
                failure.error_message.contains(expected),
                "{expected}: {error}"
            );
        }
        let error = parse_wire(&serde_json::json!({"uri": 3})).unwrap_err();
        assert!(matches!(error, HttpCallError::Invalid(_)), "{error}");
    }
}
