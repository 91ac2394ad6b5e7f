//! Entity functions: durable entities' side of the SDK (docs/semantics.md#entities). An entity
//! is a small piece of named state (`@counter@a`) that runs operations one at a time; the host
//! hands the plugin a batch of operations with the state before them, and gets back one result
//! per operation, the state after, and what the operations asked for (signals, orchestration
//! starts).
//!
//! Owns [`EntityContext`] (what an operation sees and changes), the [`Entity`] trait for
//! struct-based entities, and [`run_batch`], the batch runner with per-operation rollback: an
//! operation that fails or panics leaves the state as it was before it and its actions are
//! dropped (semantics rule 3). Knows nothing of orchestrations, history or how the host queues
//! entity messages; the registry maps names to entity functions and calls [`run_batch`].

use crate::entity_id::EntityId;
use crate::failure::{FailureDetails, SERIALIZATION};
use crate::panic::catch_panic;
use crate::protocol::{
    EntityAction, EntityBatchRequest, EntityBatchResult, EntityOperationRequest,
    EntityOperationResult,
};
use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::cell::RefCell;
use std::rc::Rc;
use uuid::Uuid;

/// `error_type` of an operation sent to an entity name no worker registered.
pub const ENTITY_NOT_FOUND: &str = "EntityNotFound";
/// `error_type` of an operation name an entity does not know ([`EntityContext::unknown_operation`]).
pub const UNKNOWN_OPERATION: &str = "UnknownOperation";

/// Namespace of the deterministic ids of orchestrations an entity starts.
const START_NAMESPACE: Uuid = Uuid::from_u128(0x3c1f_8a0e_92d4_4b6e_a7c5_64e0_b1d2_7f93);

pub(crate) type EntityFn = Box<
    dyn Fn(EntityContext) -> LocalBoxFuture<'static, Result<Value, FailureDetails>> + Send + Sync,
>;

/// What one operation of one batch sees and changes. Shared by every clone of its context.
struct OperationState {
    entity_id: EntityId,
    request_id: String,
    operation: String,
    input: Value,
    /// The entity's state as the operation changed it so far (`None`: no state).
    state: Option<Value>,
    /// What the operation asked for so far; kept only if it succeeds.
    actions: Vec<EntityAction>,
    /// The first value the operation could not serialize (state, a signal's input, a start's
    /// input): the operation fails with it even if the function returns `Ok`, because the
    /// change it wanted cannot be made.
    serialization_failure: Option<FailureDetails>,
}

/// The operation an entity function is running, and the entity's state.
///
/// A cheap handle (clones share the same operation). Changes to the state and the actions an
/// operation asks for ([`signal_entity`](Self::signal_entity),
/// [`start_orchestration`](Self::start_orchestration)) take effect only if the operation
/// succeeds: an error or a panic restores the state as it was before the operation and drops
/// its actions.
///
/// ```
/// use durable_sdk::{EntityContext, FailureDetails, Registry};
///
/// async fn counter(ctx: EntityContext) -> Result<i64, FailureDetails> {
///     let mut value: i64 = ctx.state_or_default()?;
///     match ctx.operation().to_lowercase().as_str() {
///         "add" => value += ctx.input::<i64>()?,
///         "reset" => value = 0,
///         "get" => {}
///         _ => return Err(ctx.unknown_operation()),
///     }
///     ctx.set_state(value);
///     Ok(value)
/// }
///
/// let registry = Registry::new().entity("Counter", counter);
/// assert_eq!(registry.entity_names(), ["counter"]);
/// ```
#[derive(Clone)]
pub struct EntityContext {
    inner: Rc<RefCell<OperationState>>,
}

impl std::fmt::Debug for EntityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("EntityContext")
            .field("entity_id", &inner.entity_id.to_string())
            .field("operation", &inner.operation)
            .field("request_id", &inner.request_id)
            .finish()
    }
}

impl EntityContext {
    fn new(entity_id: EntityId, request: &EntityOperationRequest, state: Option<Value>) -> Self {
        Self {
            inner: Rc::new(RefCell::new(OperationState {
                entity_id,
                request_id: request.request_id.clone(),
                operation: request.operation.clone(),
                input: request.input.clone(),
                state,
                actions: Vec::new(),
                serialization_failure: None,
            })),
        }
    }

    /// The entity this operation runs on.
    pub fn entity_id(&self) -> EntityId {
        self.inner.borrow().entity_id.clone()
    }

    /// The entity's key (the part after the name: `a` in `@counter@a`).
    pub fn key(&self) -> String {
        self.inner.borrow().entity_id.key().to_string()
    }

    /// The operation's name, as the caller spelled it. Compare it case-insensitively
    /// ([`is_operation`](Self::is_operation)): operation names are, as in every Durable Task SDK.
    pub fn operation(&self) -> String {
        self.inner.borrow().operation.clone()
    }

    /// Whether the operation is `name`, ignoring case.
    pub fn is_operation(&self, name: &str) -> bool {
        self.inner.borrow().operation.eq_ignore_ascii_case(name)
    }

    /// The id of this request (unique per signal or call).
    pub fn request_id(&self) -> String {
        self.inner.borrow().request_id.clone()
    }

    /// The operation's input as JSON (null when none).
    pub fn raw_input(&self) -> Value {
        self.inner.borrow().input.clone()
    }

    /// The operation's input decoded as `T`. A input that does not decode is a non-retriable
    /// `SerializationError` (return it with `?`: retrying cannot fix it).
    pub fn input<T: DeserializeOwned>(&self) -> Result<T, FailureDetails> {
        let inner = self.inner.borrow();
        serde_json::from_value(inner.input.clone()).map_err(|error| {
            FailureDetails::new(
                SERIALIZATION,
                format!(
                    "the input of operation '{}' on {} does not decode as {}: {error}",
                    inner.operation,
                    inner.entity_id,
                    std::any::type_name::<T>()
                ),
            )
            .non_retriable()
        })
    }

    /// Whether the entity has state (it has none before its first `set_state` and after
    /// [`delete_state`](Self::delete_state)).
    pub fn has_state(&self) -> bool {
        self.inner.borrow().state.is_some()
    }

    /// The entity's state as JSON, `None` when it has none.
    pub fn raw_state(&self) -> Option<Value> {
        self.inner.borrow().state.clone()
    }

    /// The entity's state decoded as `T`, `None` when it has none. A state that does not decode
    /// as `T` is a non-retriable `SerializationError` (the entity's code and its stored state
    /// disagree), never a silent `None` that would overwrite the state.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>, FailureDetails> {
        let inner = self.inner.borrow();
        let Some(state) = inner.state.clone() else {
            return Ok(None);
        };
        serde_json::from_value(state).map(Some).map_err(|error| {
            FailureDetails::new(
                SERIALIZATION,
                format!(
                    "the state of {} does not decode as {}: {error}",
                    inner.entity_id,
                    std::any::type_name::<T>()
                ),
            )
            .non_retriable()
        })
    }

    /// The entity's state decoded as `T`, or `T::default()` when it has none.
    pub fn state_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, FailureDetails> {
        Ok(self.state()?.unwrap_or_default())
    }

    /// Replaces the entity's state. Kept only if the operation succeeds. A value that does not
    /// serialize fails the operation (when it returns) with a `SerializationError`.
    pub fn set_state(&self, state: impl Serialize) {
        if let Some(value) = self.serialize("the new state", state) {
            self.inner.borrow_mut().state = Some(value);
        }
    }

    /// Removes the entity's state: afterwards it has none (and, with no queued messages and no
    /// lock, the host may forget the entity).
    pub fn delete_state(&self) {
        self.inner.borrow_mut().state = None;
    }

    /// Signals an entity (possibly this one): a one-way operation, sent when this operation
    /// succeeds.
    pub fn signal_entity(&self, entity: &EntityId, operation: &str, input: impl Serialize) {
        self.push_signal(entity, operation, input, None);
    }

    /// Signals an entity, delivered no earlier than `at` (on the host's clock).
    pub fn signal_entity_at(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
        at: DateTime<Utc>,
    ) {
        self.push_signal(entity, operation, input, Some(at));
    }

    fn push_signal(
        &self,
        entity: &EntityId,
        operation: &str,
        input: impl Serialize,
        scheduled_time: Option<DateTime<Utc>>,
    ) {
        let what = format!("the input of signal '{operation}' to {entity}");
        if let Some(input) = self.serialize(&what, input) {
            self.inner
                .borrow_mut()
                .actions
                .push(EntityAction::SignalEntity {
                    instance_id: entity.to_string(),
                    operation: operation.to_string(),
                    input,
                    scheduled_time,
                });
        }
    }

    /// Starts an orchestration when this operation succeeds, and returns its instance id. The id
    /// is derived from the entity, the request and how many starts the operation made before, so
    /// running the same operation again (entities run at least once) asks for the same instance.
    pub fn start_orchestration(&self, name: &str, input: impl Serialize) -> String {
        let instance_id = {
            let inner = self.inner.borrow();
            let seed = format!(
                "{}\n{}\n{}",
                inner.entity_id,
                inner.request_id,
                inner.actions.len()
            );
            Uuid::new_v5(&START_NAMESPACE, seed.as_bytes())
                .simple()
                .to_string()
        };
        self.start_orchestration_with_id(name, &instance_id, input);
        instance_id
    }

    /// Starts an orchestration with the given instance id when this operation succeeds.
    pub fn start_orchestration_with_id(
        &self,
        name: &str,
        instance_id: &str,
        input: impl Serialize,
    ) {
        let what = format!("the input of orchestration '{name}'");
        if let Some(input) = self.serialize(&what, input) {
            self.inner
                .borrow_mut()
                .actions
                .push(EntityAction::StartOrchestration {
                    name: name.to_string(),
                    instance_id: Some(instance_id.to_string()),
                    input,
                    scheduled_time: None,
                });
        }
    }

    /// The failure to return for an operation name the entity does not handle (non-retriable:
    /// the same name will not be known next time either).
    pub fn unknown_operation(&self) -> FailureDetails {
        let inner = self.inner.borrow();
        FailureDetails::new(
            UNKNOWN_OPERATION,
            format!(
                "entity {} has no operation '{}'",
                inner.entity_id, inner.operation
            ),
        )
        .non_retriable()
    }

    /// Serializes `value`, or records the first failure (which fails the operation) and returns
    /// `None`.
    fn serialize(&self, what: &str, value: impl Serialize) -> Option<Value> {
        match serde_json::to_value(value) {
            Ok(value) => Some(value),
            Err(error) => {
                let mut inner = self.inner.borrow_mut();
                if inner.serialization_failure.is_none() {
                    inner.serialization_failure = Some(
                        FailureDetails::new(
                            SERIALIZATION,
                            format!("{what} did not serialize: {error}"),
                        )
                        .non_retriable(),
                    );
                }
                None
            }
        }
    }

    /// The operation's end: its state and actions, or its failure.
    fn finish(self) -> Result<(Option<Value>, Vec<EntityAction>), FailureDetails> {
        let mut inner = self.inner.borrow_mut();
        if let Some(failure) = inner.serialization_failure.take() {
            return Err(failure);
        }
        Ok((inner.state.take(), std::mem::take(&mut inner.actions)))
    }
}

/// A struct-based entity: its state is the struct itself (decoded before each operation, or
/// `Default` when the entity has none; saved after each successful operation), and
/// [`dispatch`](Entity::dispatch) picks the method by operation name. Register it with
/// [`Registry::entity_type`](crate::Registry::entity_type).
///
/// ```
/// use durable_sdk::{Entity, EntityContext, FailureDetails, Registry};
/// use durable_sdk::serde_json::{Value, json};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Counter {
///     value: i64,
/// }
///
/// impl Entity for Counter {
///     fn dispatch(&mut self, ctx: &EntityContext) -> Result<Value, FailureDetails> {
///         match ctx.operation().to_lowercase().as_str() {
///             "add" => self.value += ctx.input::<i64>()?,
///             "get" => {}
///             _ => return Err(ctx.unknown_operation()),
///         }
///         Ok(json!(self.value))
///     }
/// }
///
/// let registry = Registry::new().entity_type::<Counter>("Counter");
/// assert_eq!(registry.entity_names(), ["counter"]);
/// ```
pub trait Entity: Default + Serialize + DeserializeOwned + 'static {
    /// Runs the operation `ctx` names on `self`; returns its result. Changes to `self` are saved
    /// only if it returns `Ok`.
    fn dispatch(&mut self, ctx: &EntityContext) -> Result<Value, FailureDetails>;

    /// Whether the entity deletes its state after this operation (e.g. a `delete` operation):
    /// then `self` is not saved. Default: never.
    fn deleted(&self, _ctx: &EntityContext) -> bool {
        false
    }
}

/// Runs one operation of a struct-based entity: decode, dispatch, save.
pub(crate) async fn run_entity_type<T: Entity>(
    ctx: EntityContext,
) -> Result<Value, FailureDetails> {
    let mut entity: T = ctx.state_or_default()?;
    let result = entity.dispatch(&ctx)?;
    if entity.deleted(&ctx) {
        ctx.delete_state();
    } else {
        ctx.set_state(&entity);
    }
    Ok(result)
}

/// Runs a batch with `entity` (`None`: no entity of that name is registered). Operations run one
/// at a time, in order; each starts from the state the previous successful one left.
pub(crate) fn run_batch(
    entity: Option<&EntityFn>,
    request: EntityBatchRequest,
) -> EntityBatchResult {
    let entity_id = EntityId::parse(&request.instance_id);
    let (entity, entity_id) = match (entity, entity_id) {
        (Some(entity), Ok(entity_id)) => (entity, entity_id),
        (_, entity_id) => {
            let why = match entity_id {
                Ok(id) => format!("no entity named '{}' is registered", id.name()),
                Err(invalid) => invalid.to_string(),
            };
            let failure = FailureDetails::new(
                ENTITY_NOT_FOUND,
                format!("cannot run operations on '{}': {why}", request.instance_id),
            )
            .non_retriable();
            return EntityBatchResult {
                results: request
                    .operations
                    .iter()
                    .map(|_| EntityOperationResult::Failed {
                        failure: failure.clone(),
                    })
                    .collect(),
                actions: Vec::new(),
                state: request.state,
                failure: None,
            };
        }
    };
    let mut state = request.state;
    let mut actions = Vec::new();
    let mut results = Vec::with_capacity(request.operations.len());
    for operation in &request.operations {
        let context = EntityContext::new(entity_id.clone(), operation, state.clone());
        let running = context.clone();
        let outcome = catch_panic(|| futures::executor::block_on(entity(running)))
            .and_then(|result| result)
            .and_then(|result| context.finish().map(|changes| (result, changes)));
        match outcome {
            Ok((result, (new_state, new_actions))) => {
                state = new_state;
                actions.extend(new_actions);
                results.push(EntityOperationResult::Completed { result });
            }
            // The state before the operation is still in `state`: nothing to undo.
            Err(failure) => results.push(EntityOperationResult::Failed { failure }),
        }
    }
    EntityBatchResult {
        results,
        actions,
        state,
        failure: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::Registry;
    use crate::entity::EntityContext;
    use crate::failure::FailureDetails;
    use crate::protocol::{
        EntityAction, EntityBatchRequest, EntityBatchResult, EntityOperationRequest,
        EntityOperationResult,
    };
    use crate::{EntityId, SERIALIZATION};
    use serde_json::{Value, json};

    /// A counter that also signals and starts orchestrations, to see which actions survive.
    async fn counter(ctx: EntityContext) -> Result<Value, FailureDetails> {
        let value: i64 = ctx.state_or_default()?;
        match ctx.operation().to_lowercase().as_str() {
            "add" => {
                let next = value + ctx.input::<i64>()?;
                ctx.set_state(next);
                ctx.signal_entity(&EntityId::new("log", "x"), "added", next);
                Ok(json!(next))
            }
            "addthenfail" => {
                ctx.set_state(value + 100);
                ctx.signal_entity(&EntityId::new("log", "x"), "added", value + 100);
                ctx.start_orchestration("Audit", json!(value));
                Err(FailureDetails::new(
                    "Nope",
                    "failed after changing the state",
                ))
            }
            "addthenpanic" => {
                ctx.set_state(value + 1000);
                panic!("counter broke")
            }
            "start" => Ok(json!(ctx.start_orchestration("Audit", value))),
            "get" => Ok(json!(value)),
            "delete" => {
                ctx.delete_state();
                Ok(Value::Null)
            }
            _ => Err(ctx.unknown_operation()),
        }
    }

    fn batch(state: Option<Value>, operations: &[(&str, Value)]) -> EntityBatchRequest {
        EntityBatchRequest {
            instance_id: "@counter@a".into(),
            state,
            operations: operations
                .iter()
                .enumerate()
                .map(|(i, (operation, input))| EntityOperationRequest {
                    request_id: format!("r{i}"),
                    operation: (*operation).to_string(),
                    input: input.clone(),
                    caller: None,
                })
                .collect(),
        }
    }

    fn run(state: Option<Value>, operations: &[(&str, Value)]) -> EntityBatchResult {
        Registry::new()
            .entity("Counter", counter)
            .run_entity_batch(batch(state, operations))
    }

    fn completed(result: Value) -> EntityOperationResult {
        EntityOperationResult::Completed { result }
    }

    fn failure_type(result: &EntityOperationResult) -> &str {
        match result {
            EntityOperationResult::Failed { failure } => &failure.error_type,
            EntityOperationResult::Completed { .. } => "completed",
        }
    }

    fn signal(operation: &str, input: Value) -> EntityAction {
        EntityAction::SignalEntity {
            instance_id: "@log@x".into(),
            operation: operation.into(),
            input,
            scheduled_time: None,
        }
    }

    #[test]
    fn operations_run_in_order_each_from_the_state_the_previous_left() {
        let result = run(
            Some(json!(1)),
            &[("add", json!(2)), ("ADD", json!(3)), ("get", Value::Null)],
        );
        assert_eq!(
            result.results,
            [
                completed(json!(3)),
                completed(json!(6)),
                completed(json!(6))
            ]
        );
        assert_eq!(result.state, Some(json!(6)));
        assert_eq!(
            result.actions,
            [signal("added", json!(3)), signal("added", json!(6))]
        );
        assert_eq!(result.failure, None);
    }

    #[test]
    fn a_failed_operation_rolls_back_its_state_and_drops_its_actions_and_later_ones_still_run() {
        let result = run(
            Some(json!(5)),
            &[
                ("add", json!(1)),
                ("addThenFail", Value::Null),
                ("add", json!(1)),
            ],
        );
        assert_eq!(result.results[0], completed(json!(6)));
        assert_eq!(failure_type(&result.results[1]), "Nope");
        // The third starts from 6, not from the failed operation's 106.
        assert_eq!(result.results[2], completed(json!(7)));
        assert_eq!(result.state, Some(json!(7)));
        assert_eq!(
            result.actions,
            [signal("added", json!(6)), signal("added", json!(7))]
        );
    }

    #[test]
    fn a_panicking_operation_fails_with_the_panic_and_rolls_back() {
        let result = run(
            Some(json!(5)),
            &[("addThenPanic", Value::Null), ("get", Value::Null)],
        );
        let EntityOperationResult::Failed { failure } = &result.results[0] else {
            panic!("expected a failure: {:?}", result.results[0]);
        };
        assert_eq!(failure.error_type, crate::PANIC);
        assert_eq!(failure.error_message, "counter broke");
        assert_eq!(result.results[1], completed(json!(5)));
        assert_eq!(result.state, Some(json!(5)));
    }

    #[test]
    fn delete_state_leaves_the_entity_without_state_and_a_later_operation_starts_from_default() {
        let deleted = run(Some(json!(5)), &[("delete", Value::Null)]);
        assert_eq!(deleted.state, None);
        let again = run(
            Some(json!(5)),
            &[("delete", Value::Null), ("add", json!(2))],
        );
        assert_eq!(again.results[1], completed(json!(2)));
        assert_eq!(again.state, Some(json!(2)));
    }

    #[test]
    fn an_unknown_entity_name_fails_every_operation_non_retriably_and_keeps_the_state() {
        let result =
            Registry::new()
                .entity("Counter", counter)
                .run_entity_batch(EntityBatchRequest {
                    instance_id: "@ghost@a".into(),
                    ..batch(Some(json!(3)), &[("add", json!(1)), ("get", Value::Null)])
                });
        assert_eq!(result.results.len(), 2);
        for outcome in &result.results {
            let EntityOperationResult::Failed { failure } = outcome else {
                panic!("expected a failure: {outcome:?}");
            };
            assert_eq!(failure.error_type, crate::ENTITY_NOT_FOUND);
            assert!(failure.is_non_retriable);
            assert!(failure.error_message.contains("ghost"), "{failure}");
        }
        assert_eq!(result.state, Some(json!(3)));
        assert!(result.actions.is_empty());
    }

    #[test]
    fn entity_names_are_case_insensitive_and_listed_lower_cased_in_the_manifest() {
        let registry = Registry::new().entity("Counter", counter);
        let result = registry.run_entity_batch(EntityBatchRequest {
            instance_id: "@COUNTER@a".into(),
            ..batch(None, &[("add", json!(4))])
        });
        assert_eq!(result.results, [completed(json!(4))]);
        assert_eq!(registry.manifest("c", "0.1.0", "b").entities, ["counter"]);
    }

    #[test]
    fn an_input_that_does_not_decode_is_a_non_retriable_serialization_failure() {
        let result = run(Some(json!(1)), &[("add", json!("three"))]);
        let EntityOperationResult::Failed { failure } = &result.results[0] else {
            panic!("expected a failure");
        };
        assert_eq!(failure.error_type, SERIALIZATION);
        assert!(failure.is_non_retriable);
        assert_eq!(result.state, Some(json!(1)));
    }

    #[test]
    fn an_unknown_operation_fails_non_retriably() {
        let result = run(None, &[("multiply", json!(2))]);
        assert_eq!(failure_type(&result.results[0]), crate::UNKNOWN_OPERATION);
    }

    #[test]
    fn a_started_orchestration_gets_an_id_that_is_the_same_when_the_operation_runs_again() {
        let first = run(Some(json!(1)), &[("start", Value::Null)]);
        let second = run(Some(json!(1)), &[("start", Value::Null)]);
        assert_eq!(first, second);
        let EntityOperationResult::Completed { result } = &first.results[0] else {
            panic!("expected a result");
        };
        assert_eq!(
            first.actions,
            [EntityAction::StartOrchestration {
                name: "Audit".into(),
                instance_id: Some(result.as_str().unwrap().to_string()),
                input: json!(1),
                scheduled_time: None,
            }]
        );
    }

    #[derive(Default, serde::Serialize, serde::Deserialize)]
    struct Account {
        balance: i64,
    }

    impl crate::Entity for Account {
        fn dispatch(&mut self, ctx: &EntityContext) -> Result<Value, FailureDetails> {
            if ctx.is_operation("deposit") {
                self.balance += ctx.input::<i64>()?;
            } else if ctx.is_operation("withdraw") {
                let amount = ctx.input::<i64>()?;
                if amount > self.balance {
                    return Err(FailureDetails::new("InsufficientFunds", "too little"));
                }
                self.balance -= amount;
            } else if !ctx.is_operation("delete") {
                return Err(ctx.unknown_operation());
            }
            Ok(json!(self.balance))
        }

        fn deleted(&self, ctx: &EntityContext) -> bool {
            ctx.is_operation("delete")
        }
    }

    #[test]
    fn a_struct_entity_saves_itself_after_each_successful_operation() {
        let registry = Registry::new().entity_type::<Account>("Account");
        let result = registry.run_entity_batch(EntityBatchRequest {
            instance_id: "@account@bob".into(),
            ..batch(
                None,
                &[
                    ("Deposit", json!(10)),
                    ("withdraw", json!(25)),
                    ("withdraw", json!(4)),
                ],
            )
        });
        assert_eq!(result.results[0], completed(json!(10)));
        assert_eq!(failure_type(&result.results[1]), "InsufficientFunds");
        assert_eq!(result.results[2], completed(json!(6)));
        assert_eq!(result.state, Some(json!({"balance": 6})));
        let deleted = registry.run_entity_batch(EntityBatchRequest {
            instance_id: "@account@bob".into(),
            ..batch(result.state, &[("delete", Value::Null)])
        });
        assert_eq!(deleted.state, None);
    }
}
