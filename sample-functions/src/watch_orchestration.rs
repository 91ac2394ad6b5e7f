//! Durable HTTP against the emulator's own HTTP API: `WatchOrchestration` starts another
//! orchestration through the Durable Functions management API and waits for it by polling its
//! status URL, the way an external client of the async HTTP API pattern would, but durably.
//!
//! Input `{"api": "http://127.0.0.1:7071", "orchestration": "HelloSequence", "input": null}`
//! (all optional, as is the input itself: these are the defaults; `key` adds the `x-functions-key` header for an API
//! started with `--http-key`, `timeout_seconds` bounds the wait, default 300). The orchestration
//! `POST`s `{api}/runtime/webhooks/durabletask/orchestrators/{orchestration}` with the input; the
//! API answers `202 Accepted` with `Location` = the new instance's status URL, which answers 202
//! with `Retry-After: 1` while the instance runs and 200 with its status once it ended.
//! `ctx.call_http` polls it; the output is that final status (`runtimeStatus`, `output`, ...).
//!
//! Run it where the API listens (`durable-emu serve`, or the UI), e.g.
//! `durable-emu start WatchOrchestration` while `durable-emu serve` runs.
//!
//! What it demonstrates: a 202 + `Location` answer polled to the end by the SDK, with durable
//! timers of the API's `Retry-After` between polls, and the request's headers sent to the
//! Location only because it is on the same origin.
//!
//! What to look at: the watcher's history holds the POST (`poll` 0), then `TimerCreated` /
//! `TimerFired` and a GET of `/instances/{id}` for each poll; the watched instance appears beside
//! it in the instance list.

use durable_sdk::http::DurableHttpRequest;
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{FailureDetails, OrchestrationContext, OrchestratorInfo, Registry};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The emulator's HTTP API when `serve` or the UI runs with its defaults.
pub const DEFAULT_API: &str = "http://127.0.0.1:7071";

/// `WatchOrchestration`'s input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// The emulator's HTTP API.
    #[serde(default = "default_api")]
    pub api: String,
    /// The orchestration to start and watch.
    #[serde(default = "default_orchestration")]
    pub orchestration: String,
    /// Its input.
    #[serde(default)]
    pub input: Value,
    /// The API's access key, when it was started with `--http-key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// How long the watched instance may take (orchestration clock).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for WatchRequest {
    fn default() -> Self {
        Self {
            api: default_api(),
            orchestration: default_orchestration(),
            input: Value::Null,
            key: None,
            timeout_seconds: default_timeout_seconds(),
        }
    }
}

fn default_api() -> String {
    DEFAULT_API.to_string()
}

fn default_orchestration() -> String {
    "HelloSequence".to_string()
}

fn default_timeout_seconds() -> u64 {
    300
}

/// Orchestrator `WatchOrchestration`: see the module docs (no input: the defaults). Returns the
/// watched instance's final status as the API reports it.
pub async fn watch_orchestration(
    ctx: OrchestrationContext,
    request: Option<WatchRequest>,
) -> Result<Value, FailureDetails> {
    let request = request.unwrap_or_default();
    validate(&request)?;
    let api = request.api.trim().trim_end_matches('/');
    let start_uri = format!(
        "{api}/runtime/webhooks/durabletask/orchestrators/{}",
        request.orchestration
    );
    let mut start = DurableHttpRequest::post(start_uri)
        .json(&request.input)
        .timeout(Duration::from_secs(request.timeout_seconds));
    if let Some(key) = &request.key {
        start = start.header("x-functions-key", key);
    }
    ctx.set_custom_status(json!({"watching": request.orchestration}));
    let ended = ctx.call_http(start).await?;
    if ended.status_code != 200 {
        return Err(FailureDetails::new(
            "WatchFailed",
            format!(
                "starting or watching {} ended with HTTP {}: {}",
                request.orchestration, ended.status_code, ended.content
            ),
        )
        .non_retriable());
    }
    ended.json().map_err(|error| {
        FailureDetails::new(
            "WatchFailed",
            format!("the final status is not JSON ({error}): {}", ended.content),
        )
        .non_retriable()
    })
}

/// The orchestration's name goes into a URL path as it is, and a watcher watching watchers
/// would never end: both are refused before any request.
fn validate(request: &WatchRequest) -> Result<(), FailureDetails> {
    let name = &request.orchestration;
    let problem = if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        format!("orchestration must be a name of letters, digits, '_', '-' or '.', not '{name}'")
    } else if name == "WatchOrchestration" {
        "WatchOrchestration cannot watch itself (each would start another)".to_string()
    } else {
        return Ok(());
    };
    Err(FailureDetails::new("InvalidInput", problem).non_retriable())
}

/// Adds this sample's orchestration to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry.orchestrator_with(
        "WatchOrchestration",
        watch_orchestration,
        OrchestratorInfo::new(
            "Starts another orchestration through the emulator's own HTTP API and polls its status URL until it ends (Durable HTTP)",
        )
        .example(json!({"api": DEFAULT_API, "orchestration": "HelloSequence", "input": null})),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watching(orchestration: &str) -> WatchRequest {
        WatchRequest {
            api: default_api(),
            orchestration: orchestration.to_string(),
            input: Value::Null,
            key: None,
            timeout_seconds: 1,
        }
    }

    #[test]
    fn only_a_plain_name_other_than_itself_is_watched() {
        assert!(validate(&watching("HelloSequence")).is_ok());
        for bad in ["", "a/b", "x?y=1", "WatchOrchestration", "Hello Sequence"] {
            assert_eq!(
                validate(&watching(bad))
                    .err()
                    .map(|failure| failure.error_type),
                Some("InvalidInput".to_string()),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_empty_input_watches_hello_sequence_on_the_default_api() {
        let request: WatchRequest = serde_json::from_value(json!({}))
            .unwrap_or_else(|error| panic!("an empty object decodes: {error}"));
        assert_eq!(request, WatchRequest::default());
        assert_eq!(request.orchestration, "HelloSequence");
        assert_eq!(request.api, DEFAULT_API);
    }
}
