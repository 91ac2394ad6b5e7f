//! The registry: the named orchestrators, activities and entities a plugin offers, and the
//! operations the host calls on them (run an episode, run an activity, run an entity batch).
//!
//! Owns [`Registry`] and the type erasure from typed user functions to JSON in / JSON out.
//! Episodes go through `executor`, entity batches through `entity`; the C ABI around these calls
//! is `ffi`'s business.

use crate::activity::ActivityContext;
use crate::context::OrchestrationContext;
use crate::entity::{self, Entity, EntityContext, EntityFn};
use crate::executor::{self, SessionCache};
use crate::failure::{FailureDetails, SERIALIZATION};
use crate::panic::catch_panic;
use crate::protocol::{
    ActivityOutcome, ActivityRequest, EntityBatchRequest, EntityBatchResult, Manifest,
    OrchestratorInfo, OrchestratorRequest, OrchestratorResponse,
};
use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;

pub(crate) type OrchestratorFn = Box<
    dyn Fn(OrchestrationContext, Value) -> LocalBoxFuture<'static, Result<Value, FailureDetails>>
        + Send
        + Sync,
>;

type ActivityFn = Box<
    dyn Fn(ActivityContext, Value) -> LocalBoxFuture<'static, Result<Value, FailureDetails>>
        + Send
        + Sync,
>;

/// The orchestrators and activities of one plugin, by name.
///
/// ```
/// use durable_sdk::{ActivityContext, FailureDetails, OrchestrationContext, Registry};
///
/// async fn greet(ctx: OrchestrationContext, name: String) -> Result<String, FailureDetails> {
///     Ok(ctx.call_activity::<String>("SayHello", name).await?)
/// }
/// async fn say_hello(_ctx: ActivityContext, name: String) -> Result<String, FailureDetails> {
///     Ok(format!("Hello {name}!"))
/// }
///
/// let registry = Registry::new()
///     .orchestrator("Greet", greet)
///     .activity("SayHello", say_hello);
/// assert_eq!(registry.orchestrator_names(), ["Greet"]);
/// ```
///
/// An orchestrator can say what it does and what to start it with
/// ([`Registry::orchestrator_with`]); the host shows both (the UI's start form pre-fills the
/// example):
///
/// ```
/// # use durable_sdk::{FailureDetails, OrchestrationContext, Registry};
/// use durable_sdk::OrchestratorInfo;
/// use serde_json::json;
/// # async fn greet(_ctx: OrchestrationContext, name: String) -> Result<String, FailureDetails> {
/// #     Ok(name)
/// # }
///
/// let registry = Registry::new().orchestrator_with(
///     "Greet",
///     greet,
///     OrchestratorInfo::new("Greets someone by name").example(json!("Tokyo")),
/// );
/// let manifest = registry.manifest("my-functions", "0.1.0", "build-1");
/// assert_eq!(manifest.orchestrator_info["Greet"].example, Some(json!("Tokyo")));
/// ```
#[derive(Default)]
pub struct Registry {
    orchestrators: BTreeMap<String, OrchestratorFn>,
    orchestrator_info: BTreeMap<String, OrchestratorInfo>,
    activities: BTreeMap<String, ActivityFn>,
    /// By lower-cased name: entity names are case-insensitive.
    entities: BTreeMap<String, EntityFn>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("orchestrators", &self.orchestrator_names())
            .field("activities", &self.activity_names())
            .field("entities", &self.entity_names())
            .finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an orchestrator: an async function of the context and a deserializable input,
    /// returning a serializable output or an error convertible to [`FailureDetails`].
    /// A later registration under the same name replaces the earlier one (and its info).
    #[must_use]
    pub fn orchestrator<F, Fut, I, O, E>(self, name: &str, orchestrator: F) -> Self
    where
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + 'static,
        I: DeserializeOwned,
        O: Serialize,
        E: Into<FailureDetails>,
    {
        self.orchestrator_with(name, orchestrator, OrchestratorInfo::default())
    }

    /// Registers an orchestrator as [`Registry::orchestrator`] does, with what it says about
    /// itself: a one-line description and an example input, carried in the [`Manifest`] for the
    /// host to show (the UI's start form pre-fills the example). The example is not checked
    /// against the input type here; a wrong one fails the started instance like any bad input.
    #[must_use]
    pub fn orchestrator_with<F, Fut, I, O, E>(
        mut self,
        name: &str,
        orchestrator: F,
        info: OrchestratorInfo,
    ) -> Self
    where
        F: Fn(OrchestrationContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + 'static,
        I: DeserializeOwned,
        O: Serialize,
        E: Into<FailureDetails>,
    {
        if info.is_empty() {
            self.orchestrator_info.remove(name);
        } else {
            self.orchestrator_info.insert(name.to_string(), info);
        }
        let label = name.to_string();
        let erased: OrchestratorFn = Box::new(move |context, input| {
            match decode_input::<I>("orchestrator", &label, input) {
                Ok(input) => {
                    let running = orchestrator(context, input);
                    Box::pin(async move { encode_output(running.await) })
                }
                Err(failure) => Box::pin(std::future::ready(Err(failure))),
            }
        });
        self.orchestrators.insert(name.to_string(), erased);
        self
    }

    /// Registers an activity: an async function of its [`ActivityContext`] and a deserializable
    /// input, returning a serializable output or an error convertible to [`FailureDetails`].
    #[must_use]
    pub fn activity<F, Fut, I, O, E>(mut self, name: &str, activity: F) -> Self
    where
        F: Fn(ActivityContext, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + 'static,
        I: DeserializeOwned,
        O: Serialize,
        E: Into<FailureDetails>,
    {
        let label = name.to_string();
        let erased: ActivityFn =
            Box::new(
                move |context, input| match decode_input::<I>("activity", &label, input) {
                    Ok(input) => {
                        let running = activity(context, input);
                        Box::pin(async move { encode_output(running.await) })
                    }
                    Err(failure) => Box::pin(std::future::ready(Err(failure))),
                },
            );
        self.activities.insert(name.to_string(), erased);
        self
    }

    /// Registers an entity: an async function of its [`EntityContext`] (the operation, its input,
    /// the state) returning a serializable result or an error convertible to
    /// [`FailureDetails`]. The function handles every operation of the entity (match on
    /// [`EntityContext::operation`]). Entity names are case-insensitive: `Counter` serves
    /// `@counter@a`; a later registration under the same name (in any case) replaces the earlier.
    #[must_use]
    pub fn entity<F, Fut, O, E>(mut self, name: &str, entity: F) -> Self
    where
        F: Fn(EntityContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + 'static,
        O: Serialize,
        E: Into<FailureDetails>,
    {
        let erased: EntityFn = Box::new(move |context| {
            let running = entity(context);
            Box::pin(async move { encode_output(running.await) })
        });
        self.entities.insert(name.to_lowercase(), erased);
        self
    }

    /// Registers a struct-based entity (see [`Entity`]): its state is a `T`, each operation is
    /// `T::dispatch`.
    #[must_use]
    pub fn entity_type<T: Entity>(self, name: &str) -> Self {
        self.entity(name, entity::run_entity_type::<T>)
    }

    /// Registered orchestrator names, sorted.
    pub fn orchestrator_names(&self) -> Vec<String> {
        self.orchestrators.keys().cloned().collect()
    }

    /// Registered activity names, sorted.
    pub fn activity_names(&self) -> Vec<String> {
        self.activities.keys().cloned().collect()
    }

    /// Registered entity names, lower-cased and sorted.
    pub fn entity_names(&self) -> Vec<String> {
        self.entities.keys().cloned().collect()
    }

    pub(crate) fn find_orchestrator(&self, name: &str) -> Option<&OrchestratorFn> {
        self.orchestrators.get(name)
    }

    /// The manifest of a plugin built from this registry.
    pub fn manifest(&self, crate_name: &str, crate_version: &str, build_id: &str) -> Manifest {
        Manifest {
            crate_name: crate_name.to_string(),
            crate_version: crate_version.to_string(),
            sdk_version: crate::SDK_VERSION.to_string(),
            build_id: build_id.to_string(),
            orchestrators: self.orchestrator_names(),
            activities: self.activity_names(),
            orchestrator_info: self.orchestrator_info.clone(),
            entities: self.entity_names(),
        }
    }

    /// Runs one episode, continuing a cached session when the request carries no past events.
    pub fn orchestrate(
        &self,
        cache: &mut SessionCache,
        request: OrchestratorRequest,
    ) -> OrchestratorResponse {
        executor::run_episode(self, Some(cache), request)
    }

    /// Runs one episode by replaying the full history, with no session cache.
    pub fn orchestrate_uncached(&self, request: OrchestratorRequest) -> OrchestratorResponse {
        executor::run_episode(self, None, request)
    }

    /// Runs one activity attempt to completion on the calling thread. An unknown name, an input
    /// that does not decode, an error and a panic all become `Failed` with details.
    pub fn run_activity(&self, request: ActivityRequest) -> ActivityOutcome {
        let Some(activity) = self.activities.get(&request.name) else {
            return ActivityOutcome::Failed {
                failure: FailureDetails::new(
                    "ActivityNotFound",
                    format!(
                        "no activity named '{}' is registered (known: {})",
                        request.name,
                        self.activity_names().join(", ")
                    ),
                )
                .non_retriable(),
            };
        };
        let context = ActivityContext::from_request(&request);
        let outcome = catch_panic(|| futures::executor::block_on(activity(context, request.input)));
        match outcome.and_then(|result| result) {
            Ok(result) => ActivityOutcome::Completed { result },
            Err(failure) => ActivityOutcome::Failed { failure },
        }
    }
}

impl Registry {
    /// Runs one entity batch on the calling thread (docs/semantics.md#entities): the operations
    /// one at a time, in order, each from the state the previous successful one left. An
    /// operation's error or panic becomes its `Failed` result, restores the state as it was
    /// before that operation and drops its actions; later operations still run. An entity name no
    /// registration knows fails every operation with a non-retriable `EntityNotFound`.
    pub fn run_entity_batch(&self, request: EntityBatchRequest) -> EntityBatchResult {
        let registered = crate::EntityId::parse(&request.instance_id)
            .ok()
            .and_then(|id| self.entities.get(id.name()));
        entity::run_batch(registered, request)
    }
}

fn decode_input<I: DeserializeOwned>(
    what: &str,
    name: &str,
    input: Value,
) -> Result<I, FailureDetails> {
    serde_json::from_value(input).map_err(|error| {
        FailureDetails::new(
            SERIALIZATION,
            format!(
                "the input of {what} '{name}' does not decode as {}: {error}",
                std::any::type_name::<I>()
            ),
        )
        .non_retriable()
    })
}

fn encode_output<O: Serialize, E: Into<FailureDetails>>(
    result: Result<O, E>,
) -> Result<Value, FailureDetails> {
    let output = result.map_err(Into::into)?;
    serde_json::to_value(output).map_err(|error| {
        FailureDetails::new(
            SERIALIZATION,
            format!("the output did not serialize: {error}"),
        )
        .non_retriable()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn echo(_ctx: OrchestrationContext, input: Value) -> Result<Value, FailureDetails> {
        Ok(input)
    }

    #[test]
    fn the_manifest_carries_each_orchestrators_description_and_example() {
        let registry = Registry::new()
            .orchestrator_with(
                "Described",
                echo,
                OrchestratorInfo::new("echoes its input").example(json!({"n": 3})),
            )
            .orchestrator_with(
                "NullExample",
                echo,
                OrchestratorInfo::default().example(Value::Null),
            )
            .orchestrator("Plain", echo);
        let manifest = registry.manifest("c", "0.1.0", "b");
        assert_eq!(
            manifest.orchestrators,
            ["Described", "NullExample", "Plain"]
        );
        assert_eq!(
            manifest.orchestrator_info["Described"],
            OrchestratorInfo {
                description: Some("echoes its input".into()),
                example: Some(json!({"n": 3})),
            }
        );
        // A null example is an example, and survives the JSON round trip as one.
        let decoded: Manifest =
            serde_json::from_str(&serde_json::to_string(&manifest).unwrap()).unwrap();
        assert_eq!(decoded, manifest);
        assert_eq!(
            decoded.orchestrator_info["NullExample"].example,
            Some(Value::Null)
        );
        assert!(!decoded.orchestrator_info.contains_key("Plain"));
    }

    #[test]
    fn a_later_registration_without_info_drops_the_earlier_info() {
        let registry = Registry::new()
            .orchestrator_with("Echo", echo, OrchestratorInfo::new("first"))
            .orchestrator("Echo", echo);
        assert!(
            registry
                .manifest("c", "0.1.0", "b")
                .orchestrator_info
                .is_empty()
        );
    }

    #[test]
    fn a_manifest_from_an_older_plugin_without_info_still_decodes() {
        let older = json!({
            "crateName": "old", "crateVersion": "0.1.0", "sdkVersion": "0.1.0",
            "buildId": "b", "orchestrators": ["A"], "activities": []
        });
        let manifest: Manifest = serde_json::from_value(older).unwrap();
        assert_eq!(manifest.orchestrators, ["A"]);
        assert!(manifest.orchestrator_info.is_empty());
        // And a manifest with no info writes none, so an older host reads the same fields.
        let written = serde_json::to_value(&manifest).unwrap();
        assert!(written.get("orchestratorInfo").is_none());
    }
}
