//! A blocking client of a running emulator's Durable Functions HTTP management API (the routes
//! under `/runtime/webhooks/durabletask/`), for the commands that act on a database another
//! `durable-emu` holds open.
//!
//! Owns the requests (paths, query parameters, the key header) and turns each answer's status
//! into a result or an error a user can act on, with the server's message. Knows nothing of
//! the command line, of how the URL was found (`endpoint.rs`), or of the engine: it speaks
//! Azure's documented API and nothing private to durable-emu.

use anyhow::{Context, bail};
use serde_json::Value;
use std::time::Duration;

/// Azure's management routes, under the emulator's base URL.
const BASE_PATH: &str = "/runtime/webhooks/durabletask";
/// The request header asking for, and the response header giving, a listing's next page.
const CONTINUATION_HEADER: &str = "x-ms-continuation-token";
/// The header that carries an access key (`--http-key` on the emulator).
const KEY_HEADER: &str = "x-functions-key";
/// A loopback call that takes longer than this is a hung emulator, not a slow one.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An instance command that takes only a reason (`POST instances/{id}/{action}?reason=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Terminate,
    Suspend,
    Resume,
    Rewind,
}

impl Action {
    /// The command's name, as the route spells it.
    pub fn name(self) -> &'static str {
        self.path()
    }

    fn path(self) -> &'static str {
        match self {
            Action::Terminate => "terminate",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Rewind => "rewind",
        }
    }
}

/// An instance's status as the API answers it, and whether it has ended (200) or still runs
/// (202).
#[derive(Debug, Clone)]
pub struct Status {
    pub body: Value,
    pub ended: bool,
}

/// A connection to one running emulator.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    url: String,
    key: Option<String>,
}

/// One answer: its status, its continuation header and its body.
struct Answer {
    status: u16,
    continuation: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| {
            format!(
                "the emulator answered with a body that is not JSON: {}",
                self.body
            )
        })
    }

    /// The server's message from an error body (`Message`, as Azure writes it), else the body.
    fn message(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|body| {
                ["Message", "message", "error"]
                    .iter()
                    .find_map(|field| body.get(field)?.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| self.body.trim().to_owned())
    }
}

impl Client {
    /// A client of the emulator at `url` (e.g. `http://127.0.0.1:7071`), sending `key` with
    /// every call when the emulator requires one.
    pub fn new(url: &str, key: Option<String>) -> Self {
        let config = ureq::Agent::config_builder()
            // Every status is an answer to read here: 404 and 410 carry the reason.
            .http_status_as_error(false)
            .timeout_global(Some(CALL_TIMEOUT))
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            url: url.trim_end_matches('/').to_owned(),
            key,
        }
    }

    /// The base URL, for messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts orchestration `name` (under `instance_id` when given); returns the instance id.
    pub fn start(
        &self,
        name: &str,
        instance_id: Option<&str>,
        input: &Value,
    ) -> anyhow::Result<String> {
        let mut path = format!("orchestrators/{}", segment(name));
        if let Some(id) = instance_id {
            path = format!("{path}/{}", segment(id));
        }
        let answer = self.send("POST", &path, &[], Some(input))?;
        self.expect(&answer, 202, &format!("starting {name}"))?;
        management_id(&answer)
    }

    /// An instance's status (with every execution's history when `history`); `None` when the
    /// emulator has no such instance.
    pub fn status(&self, instance_id: &str, history: bool) -> anyhow::Result<Option<Status>> {
        let mut query = vec![("showInput", "true".to_owned())];
        if history {
            query.push(("showHistory", "true".to_owned()));
            query.push(("showHistoryOutput", "true".to_owned()));
        }
        let answer = self.send(
            "GET",
            &format!("instances/{}", segment(instance_id)),
            &query,
            None,
        )?;
        match answer.status {
            404 => Ok(None),
            200 | 202 | 500 => Ok(Some(Status {
                body: answer.json()?,
                ended: answer.status != 202,
            })),
            _ => Err(self.failure(&answer, &format!("reading {instance_id}"))),
        }
    }

    /// Every instance (of `runtime_status` when given), every page.
    pub fn list(&self, runtime_status: Option<&str>) -> anyhow::Result<Vec<Value>> {
        let mut query = vec![("showInput", "true".to_owned())];
        if let Some(status) = runtime_status {
            query.push(("runtimeStatus", status.to_owned()));
        }
        let mut all = Vec::new();
        let mut continuation: Option<String> = None;
        loop {
            let answer = self.send_paged("GET", "instances", &query, continuation.as_deref())?;
            self.expect(&answer, 200, "listing the instances")?;
            match answer.json()? {
                Value::Array(page) => all.extend(page),
                other => bail!("the emulator answered the listing with {other}, not an array"),
            }
            match answer.continuation {
                Some(next) if !next.is_empty() => continuation = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// Raises event `event` with `data` on an instance.
    pub fn raise(&self, instance_id: &str, event: &str, data: &Value) -> anyhow::Result<()> {
        let path = format!(
            "instances/{}/raiseEvent/{}",
            segment(instance_id),
            segment(event)
        );
        let answer = self.send("POST", &path, &[], Some(data))?;
        self.expect(&answer, 202, &format!("raising {event} on {instance_id}"))
    }

    /// Terminates, suspends, resumes or rewinds an instance.
    pub fn act(
        &self,
        instance_id: &str,
        action: Action,
        reason: Option<&str>,
    ) -> anyhow::Result<()> {
        let query: Vec<_> = reason
            .map(|r| ("reason", r.to_owned()))
            .into_iter()
            .collect();
        let path = format!("instances/{}/{}", segment(instance_id), action.path());
        let answer = self.send("POST", &path, &query, None)?;
        self.expect(&answer, 202, &format!("{} {instance_id}", action.path()))
    }

    /// Restarts an instance, under a new id or (`new_instance_id` false) its own; returns the id.
    pub fn restart(&self, instance_id: &str, new_instance_id: bool) -> anyhow::Result<String> {
        let query = vec![("restartWithNewInstanceId", new_instance_id.to_string())];
        let path = format!("instances/{}/restart", segment(instance_id));
        let answer = self.send("POST", &path, &query, None)?;
        self.expect(&answer, 202, &format!("restarting {instance_id}"))?;
        management_id(&answer)
    }

    /// Deletes an ended instance and its history; false when there was none.
    pub fn purge(&self, instance_id: &str) -> anyhow::Result<bool> {
        let answer = self.send(
            "DELETE",
            &format!("instances/{}", segment(instance_id)),
            &[],
            None,
        )?;
        match answer.status {
            404 => Ok(false),
            200 => Ok(answer
                .json()?
                .get("instancesDeleted")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                > 0),
            _ => Err(self.failure(&answer, &format!("purging {instance_id}"))),
        }
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        self.call(method, path, query, body, None)
    }

    fn send_paged(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        continuation: Option<&str>,
    ) -> anyhow::Result<Answer> {
        self.call(method, path, query, None, continuation)
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        continuation: Option<&str>,
    ) -> anyhow::Result<Answer> {
        let mut url = format!("{}{BASE_PATH}/{path}", self.url);
        for (index, (name, value)) in query.iter().enumerate() {
            let separator = if index == 0 { '?' } else { '&' };
            url.push(separator);
            url.push_str(name);
            url.push('=');
            url.push_str(&segment(value));
        }
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = &self.key {
            request = request.header(KEY_HEADER, key);
        }
        if let Some(token) = continuation {
            request = request.header(CONTINUATION_HEADER, token);
        }
        let text = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                serde_json::to_string(value).context("serializing the request body")?
            }
            None => String::new(),
        };
        let request = request
            .body(text)
            .with_context(|| format!("building the request {method} {url}"))?;
        let mut response = self
            .agent
            .run(request)
            .with_context(|| format!("calling the emulator at {} ({method} {url})", self.url))?;
        let continuation = response
            .headers()
            .get(CONTINUATION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the emulator's answer to {method} {url}"))?;
        Ok(Answer {
            status,
            continuation,
            body,
        })
    }

    fn expect(&self, answer: &Answer, wanted: u16, what: &str) -> anyhow::Result<()> {
        if answer.status == wanted {
            Ok(())
        } else {
            Err(self.failure(answer, what))
        }
    }

    /// The error for an answer that is not the one wanted, in the user's words.
    fn failure(&self, answer: &Answer, what: &str) -> anyhow::Error {
        let message = answer.message();
        match answer.status {
            401 => anyhow::anyhow!(
                "{what}: the emulator at {} requires its key (--key or DURABLE_EMU_HTTP_KEY)",
                self.url
            ),
            404 => anyhow::anyhow!("{what}: {message}"),
            410 => anyhow::anyhow!("{what}: not in a state that allows it: {message}"),
            status => anyhow::anyhow!(
                "{what}: the emulator at {} answered {status}: {message}",
                self.url
            ),
        }
    }
}

/// The instance id of a 202's management payload.
fn management_id(answer: &Answer) -> anyhow::Result<String> {
    answer
        .json()?
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .context("the emulator's 202 answer has no instance id")
}

/// Percent-encodes one path segment or query value (everything but RFC 3986's unreserved).
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_escape_everything_but_unreserved_characters() {
        assert_eq!(segment("order-1_a.b~c"), "order-1_a.b~c");
        assert_eq!(segment("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
        assert_eq!(segment("@counter@a"), "%40counter%40a");
    }

    #[test]
    fn an_error_body_gives_its_message() {
        let answer = Answer {
            status: 410,
            continuation: None,
            body: r#"{"Message":"instance x is Completed","ExceptionMessage":"x"}"#.into(),
        };
        assert_eq!(answer.message(), "instance x is Completed");
        let plain = Answer {
            status: 500,
            continuation: None,
            body: "boom\n".into(),
        };
        assert_eq!(plain.message(), "boom");
    }
}
