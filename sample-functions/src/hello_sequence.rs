//! Function chaining: `HelloSequence` calls `SayHello` for three cities, one after the other, and
//! returns `["Hello Tokyo!","Hello Seattle!","Hello London!"]`.
//!
//! What to look at: each call is scheduled only after the previous one completed, so history
//! alternates TaskScheduled / TaskCompleted and every episode replays the earlier calls.

use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
};
use serde::de::IgnoredAny;

/// The cities greeted, in order.
pub const CITIES: [&str; 3] = ["Tokyo", "Seattle", "London"];

/// Orchestrator `HelloSequence`: input ignored; output the three greetings in order.
pub async fn hello_sequence(
    ctx: OrchestrationContext,
    _input: IgnoredAny,
) -> Result<Vec<String>, FailureDetails> {
    let mut greetings = Vec::with_capacity(CITIES.len());
    for city in CITIES {
        let greeting: String = ctx.call_activity("SayHello", city).await?;
        ctx.log_info(format!("{city} greeted"));
        greetings.push(greeting);
    }
    Ok(greetings)
}

/// Activity `SayHello`: `"Tokyo"` -> `"Hello Tokyo!"`.
pub async fn say_hello(_ctx: ActivityContext, city: String) -> Result<String, FailureDetails> {
    if city.trim().is_empty() {
        return Err(FailureDetails::new("InvalidCity", "a city name is required").non_retriable());
    }
    Ok(format!("Hello {city}!"))
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "HelloSequence",
            hello_sequence,
            OrchestratorInfo::new("Calls SayHello for Tokyo, Seattle and London in turn (function chaining); the input is ignored")
                .example(json!(null)),
        )
        .activity("SayHello", say_hello)
}
