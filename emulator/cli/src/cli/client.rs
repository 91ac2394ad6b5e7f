//! A blocking client of a running emulator's HTTP API, for the commands that act on a database
//! another `durable-emu` holds open. It speaks two sets of routes:
//!
//! - Azure's Durable Functions management API (under `/runtime/webhooks/durabletask/`) for
//!   what changes an instance: start, raise, terminate (with durable-emu's `recursive=true`
//!   extension), suspend, resume, rewind, restart, purge (one instance or by filter).
//! - durable-emu's private routes (under `/durable-emu/v1/`, [`PRIVATE_BASE`]) for what the
//!   command line prints: an instance's status with every execution's history, the list, export
//!   and import, and entities (list, get, signal). They answer in the engine's own shapes
//!   (`InstanceStatus`, `InstanceExport`, the entity records), which Azure's do not carry
//!   (execution ids, parents, exact times, every execution), so a command prints the same bytes
//!   through the emulator as from the database.
//!
//! Owns the requests (paths, query parameters, the key header) and turns each answer's status
//! into a result or an error a user can act on, with the server's message. Knows nothing of
//! the command line or of how the URL was found (`endpoint.rs`); of the engine it knows only
//! the JSON shapes the private routes answer with.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use durable_emu_engine::export::{InstanceExport, InstanceStatus};
use durable_emu_http::PRIVATE_BASE;
use serde_json::Value;
use std::time::Duration;

/// Azure's management routes, under the emulator's base URL.
const BASE_PATH: &str = "/runtime/webhooks/durabletask";
/// The header that carries an access key (`--http-key` on the emulator).
const KEY_HEADER: &str = "x-functions-key";
/// A loopback call that takes longer than this is a hung emulator, not a slow one.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// An instance command that takes only a reason (`POST instances/{id}/{action}?reason=`);
/// terminate has its own call ([`Client::terminate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
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
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::Rewind => "rewind",
        }
    }
}

/// Which ended instances a filtered purge deletes (Azure's `DELETE instances?...`).
#[derive(Debug, Clone, Default)]
pub struct PurgeWhere {
    /// Only these runtime statuses (empty: every ended one).
    pub statuses: Vec<String>,
    /// Only instances created at or after this time.
    pub created_from: Option<DateTime<Utc>>,
    /// Only instances created before this time.
    pub created_to: Option<DateTime<Utc>>,
}

/// When a signal is to be delivered: now, at a time, or after a duration on the emulator's
/// clock.
#[derive(Debug, Clone, Default)]
pub struct SignalWhen {
    pub at: Option<DateTime<Utc>>,
    /// A duration as the user wrote it (`90m`); the emulator adds it to its own now.
    pub after: Option<String>,
}

/// What the emulator answered a signal with.
#[derive(Debug, Clone)]
pub struct Signalled {
    pub request_id: String,
    /// When it is delivered, for a delayed signal.
    pub scheduled: Option<DateTime<Utc>>,
}

/// A connection to one running emulator.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    url: String,
    key: Option<String>,
}

/// One answer: its status and its body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The body as one of the engine's shapes, read with `parse` (`serde_json::from_str`, its
    /// type inferred from the caller's).
    fn decode<T>(&self, parse: impl FnOnce(&str) -> serde_json::Result<T>) -> anyhow::Result<T> {
        parse(&self.body).with_context(|| {
            format!(
                "the emulator answered with a body this build cannot read (another version of \
                 durable-emu?): {}",
                self.body
            )
        })
    }

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

    /// An instance's status in the engine's shape (with every execution's history when
    /// `history`); `None` when the emulator has no such instance.
    pub fn status(
        &self,
        instance_id: &str,
        history: bool,
    ) -> anyhow::Result<Option<InstanceStatus>> {
        let query = if history {
            vec![("history", "true".to_owned())]
        } else {
            Vec::new()
        };
        let path = private(&format!("instances/{}", segment(instance_id)));
        let answer = self.call("GET", &path, &query, None)?;
        match answer.status {
            404 => Ok(None),
            200 => answer.decode(|text| serde_json::from_str(text)).map(Some),
            _ => Err(self.failure(&answer, &format!("reading {instance_id}"))),
        }
    }

    /// Every instance (of `runtime_status` when given), newest first, in the engine's shape.
    pub fn list(&self, runtime_status: Option<&str>) -> anyhow::Result<Vec<InstanceStatus>> {
        let query: Vec<_> = runtime_status
            .map(|status| ("runtimeStatus", status.to_owned()))
            .into_iter()
            .collect();
        let answer = self.call("GET", &private("instances"), &query, None)?;
        self.expect(&answer, 200, "listing the instances")?;
        answer.decode(|text| serde_json::from_str(text))
    }

    /// An instance's export, as `durable-emu export` writes it; `None` when there is none.
    pub fn export(&self, instance_id: &str) -> anyhow::Result<Option<InstanceExport>> {
        let path = private(&format!("instances/{}/export", segment(instance_id)));
        let answer = self.call("GET", &path, &[], None)?;
        match answer.status {
            404 => Ok(None),
            200 => answer.decode(|text| serde_json::from_str(text)).map(Some),
            _ => Err(self.failure(&answer, &format!("exporting {instance_id}"))),
        }
    }

    /// Imports an export (its text, as `export` writes it); returns the instance id.
    pub fn import(&self, export: String) -> anyhow::Result<String> {
        let answer = self.call("POST", &private("import"), &[], Some(export))?;
        self.expect(&answer, 201, "importing")?;
        answer
            .json()?
            .get("instanceId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("the emulator's answer to the import has no instance id")
    }

    /// Every entity (whose id starts with `prefix`), ordered by id, with state when `state`.
    pub fn entities(&self, prefix: Option<&str>, state: bool) -> anyhow::Result<Vec<Value>> {
        let mut query = vec![("state", state.to_string())];
        if let Some(prefix) = prefix {
            query.push(("prefix", prefix.to_owned()));
        }
        let answer = self.call("GET", &private("entities"), &query, None)?;
        self.expect(&answer, 200, "listing the entities")?;
        match answer.json()? {
            Value::Array(entities) => Ok(entities),
            other => bail!("the emulator answered the entity listing with {other}, not an array"),
        }
    }

    /// An entity with its state, and the last `operations` entries of its log; `None` when it
    /// does not exist.
    pub fn entity(
        &self,
        entity_id: &str,
        operations: usize,
    ) -> anyhow::Result<Option<(Value, Vec<Value>)>> {
        let path = private(&format!("entities/{}", segment(entity_id)));
        let query = vec![("operations", operations.to_string())];
        let answer = self.call("GET", &path, &query, None)?;
        match answer.status {
            404 => Ok(None),
            200 => {
                let mut body = answer.json()?;
                let entity = body["entity"].take();
                match body["operations"].take() {
                    Value::Array(log) => Ok(Some((entity, log))),
                    other => bail!("the emulator answered an operation log that is {other}"),
                }
            }
            _ => Err(self.failure(&answer, &format!("reading {entity_id}"))),
        }
    }

    /// Sends a one-way operation to an entity.
    pub fn signal(
        &self,
        entity_id: &str,
        operation: &str,
        input: &Value,
        when: &SignalWhen,
    ) -> anyhow::Result<Signalled> {
        let path = private(&format!("entities/{}/signal", segment(entity_id)));
        let mut query = vec![("op", operation.to_owned())];
        if let Some(at) = when.at {
            query.push(("at", at.to_rfc3339()));
        }
        if let Some(after) = &when.after {
            query.push(("after", after.clone()));
        }
        let body = serde_json::to_string(input).context("serializing the operation's input")?;
        let answer = self.call("POST", &path, &query, Some(body))?;
        self.expect(&answer, 202, &format!("signalling {entity_id} {operation}"))?;
        let body = answer.json()?;
        let request_id = body
            .get("requestId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .context("the emulator's answer to the signal has no request id")?;
        let scheduled = match body.get("scheduledTime") {
            None | Some(Value::Null) => None,
            Some(time) => Some(
                serde_json::from_value(time.clone())
                    .context("the emulator's scheduled time is not a time")?,
            ),
        };
        Ok(Signalled {
            request_id,
            scheduled,
        })
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

    /// Terminates an instance (with `recursive`, its running sub-orchestrations too: durable-emu's
    /// extension of Azure's route).
    pub fn terminate(
        &self,
        instance_id: &str,
        reason: &str,
        recursive: bool,
    ) -> anyhow::Result<()> {
        let mut query = vec![("reason", reason.to_owned())];
        if recursive {
            query.push(("recursive", "true".to_owned()));
        }
        let path = format!("instances/{}/terminate", segment(instance_id));
        let answer = self.send("POST", &path, &query, None)?;
        self.expect(&answer, 202, &format!("terminate {instance_id}"))
    }

    /// Suspends, resumes or rewinds an instance.
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

    /// Deletes every ended instance `filter` matches; returns how many.
    pub fn purge_where(&self, filter: &PurgeWhere) -> anyhow::Result<u64> {
        let mut query = Vec::new();
        if !filter.statuses.is_empty() {
            query.push(("runtimeStatus", filter.statuses.join(",")));
        }
        if let Some(from) = filter.created_from {
            query.push(("createdTimeFrom", from.to_rfc3339()));
        }
        if let Some(to) = filter.created_to {
            query.push(("createdTimeTo", to.to_rfc3339()));
        }
        let answer = self.send("DELETE", "instances", &query, None)?;
        match answer.status {
            // Azure's answer when nothing matched.
            404 => Ok(0),
            200 => Ok(answer
                .json()?
                .get("instancesDeleted")
                .and_then(Value::as_u64)
                .unwrap_or(0)),
            _ => Err(self.failure(&answer, "purging the matching instances")),
        }
    }

    /// A call to one of Azure's routes (`path` relative to its base), with a JSON body.
    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> anyhow::Result<Answer> {
        let body = body
            .map(serde_json::to_string)
            .transpose()
            .context("serializing the request body")?;
        self.call(method, &format!("{BASE_PATH}/{path}"), query, body)
    }

    /// A call to `path` (from the server's root) with a JSON `body` already written.
    fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<String>,
    ) -> anyhow::Result<Answer> {
        let mut url = format!("{}{path}", self.url);
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
        let text = match body {
            Some(text) => {
                request = request.header("content-type", "application/json");
                text
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
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .read_to_string()
            .with_context(|| format!("reading the emulator's answer to {method} {url}"))?;
        Ok(Answer { status, body })
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

/// A private route's path from the server's root.
fn private(path: &str) -> String {
    format!("{PRIVATE_BASE}/{path}")
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
            body: r#"{"Message":"instance x is Completed","ExceptionMessage":"x"}"#.into(),
        };
        assert_eq!(answer.message(), "instance x is Completed");
        let plain = Answer {
            status: 500,
            body: "boom\n".into(),
        };
        assert_eq!(plain.message(), "boom");
    }
}
