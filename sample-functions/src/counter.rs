//! Durable entities, the smallest one: the `Counter` entity and the `CounterDemo` orchestration
//! that signals and calls it.
//!
//! `Counter` (ids `@counter@<key>`) holds one integer. Operations (names compared ignoring case):
//! `add` (input: an integer; returns the new value), `subtract` (likewise), `reset` (to 0),
//! `get` (returns the value; a counter never touched is 0) and `delete` (forgets the state: the
//! entity is then empty and `durable-emu` may clean it up). Any other operation fails with a
//! non-retriable `UnknownOperation`; an input that is not an integer with a non-retriable
//! `SerializationError`, and the value stays as it was.
//!
//! `CounterDemo` (input `{"key": "demo", "increments": 5}`) signals `@counter@<key>` `add 1`
//! `increments` times, one-way, then calls `get` and returns the value. Because an entity runs
//! its messages one at a time in arrival order, the `get` sees every `add` sent before it: the
//! output is the value before the demo plus `increments`.
//!
//! What to look at: in the history, the `EntityOperationSignaled` events (nothing comes back)
//! and the `EntityOperationCalled` / `EntityOperationCompleted` pair of the `get`; in the Entities
//! view, `@counter@demo` with its state and the operation log (one row per signal, then the call
//! with the orchestration as its caller). Signal it yourself: `:signal @counter@demo add 5`.

use durable_sdk::serde_json::json;
use durable_sdk::{
    EntityContext, EntityId, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
};
use serde::{Deserialize, Serialize};

/// Entity `Counter`: see the module doc for its operations.
pub async fn counter(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let value: i64 = ctx.state_or_default()?;
    let operation = ctx.operation().to_lowercase();
    let next = match operation.as_str() {
        "add" => value.saturating_add(ctx.input::<i64>()?),
        "subtract" => value.saturating_sub(ctx.input::<i64>()?),
        "reset" => 0,
        "get" => return Ok(value),
        "delete" => {
            ctx.delete_state();
            return Ok(value);
        }
        _ => return Err(ctx.unknown_operation()),
    };
    ctx.set_state(next);
    Ok(next)
}

/// The input of `CounterDemo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterDemoInput {
    /// The counter's key: the demo uses `@counter@<key>`.
    #[serde(default = "default_key")]
    pub key: String,
    /// How many `add 1` signals to send.
    #[serde(default = "default_increments")]
    pub increments: u32,
}

fn default_key() -> String {
    "demo".to_string()
}

fn default_increments() -> u32 {
    5
}

/// Orchestrator `CounterDemo`: signals `add 1` `increments` times, then returns the counter's
/// value from a `get` call.
pub async fn counter_demo(
    ctx: OrchestrationContext,
    input: CounterDemoInput,
) -> Result<i64, FailureDetails> {
    let counter = EntityId::new("Counter", &input.key);
    for _ in 0..input.increments {
        ctx.signal_entity(&counter, "add", 1);
    }
    let value: i64 = ctx.call_entity(&counter, "get", ()).await?;
    ctx.log_info(format!("{counter} is at {value}"));
    Ok(value)
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "CounterDemo",
            counter_demo,
            OrchestratorInfo::new("Signals the Counter entity @counter@<key> 'add 1' n times, then calls 'get' (durable entities); returns the value")
                .example(json!({"key": "demo", "increments": 5})),
        )
        .entity("Counter", counter)
}
