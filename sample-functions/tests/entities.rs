//! The entity samples through the plugin's own entry points: `Counter` and `Account` batches,
//! and `CounterDemo` and `Transfer` driven by a minimal host loop (episodes with the full history,
//! entity calls answered by running batches, locks granted at once since nothing competes),
//! including the transfer whose deposit fails and is compensated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_sdk::chrono::{DateTime, Utc};
use durable_sdk::protocol::{
    ActionKind, EntityBatchRequest, EntityOperationRequest, EntityOperationResult,
    OrchestratorRequest,
};
use durable_sdk::serde_json::{Value, json};
use durable_sdk::{EventKind, FailureDetails, HistoryEvent, RuntimeStatus};
use sample_functions::durable_plugin_handle;
use std::collections::BTreeMap;

fn batch(
    entity: &str,
    state: Option<Value>,
    operations: &[(&str, Value)],
) -> (Vec<Value>, Option<Value>) {
    let request = EntityBatchRequest {
        instance_id: entity.to_string(),
        state,
        operations: operations
            .iter()
            .enumerate()
            .map(|(index, (operation, input))| EntityOperationRequest {
                request_id: format!("r{index}"),
                operation: (*operation).to_string(),
                input: input.clone(),
                caller: None,
            })
            .collect(),
    };
    let result = durable_plugin_handle().run_entity_batch(&request).unwrap();
    let outcomes = result
        .results
        .into_iter()
        .map(|outcome| match outcome {
            EntityOperationResult::Completed { result } => result,
            EntityOperationResult::Failed { failure } => {
                json!({"failed": failure.error_type, "nonRetriable": failure.is_non_retriable})
            }
        })
        .collect();
    (outcomes, result.state)
}

#[test]
fn the_counter_adds_subtracts_resets_and_deletes_in_order() {
    let (outcomes, state) = batch(
        "@counter@c",
        None,
        &[
            ("get", Value::Null),
            ("add", json!(5)),
            ("Subtract", json!(2)),
            ("add", json!("x")),
            ("multiply", json!(2)),
            ("get", Value::Null),
        ],
    );
    assert_eq!(
        outcomes,
        [
            json!(0),
            json!(5),
            json!(3),
            json!({"failed": "SerializationError", "nonRetriable": true}),
            json!({"failed": "UnknownOperation", "nonRetriable": true}),
            json!(3),
        ]
    );
    assert_eq!(state, Some(json!(3)));
    let (_, reset) = batch("@counter@c", state.clone(), &[("reset", Value::Null)]);
    assert_eq!(reset, Some(json!(0)));
    let (deleted_value, deleted) = batch("@counter@c", state, &[("delete", Value::Null)]);
    assert_eq!((deleted_value, deleted), (vec![json!(3)], None));
}

#[test]
fn an_account_opens_with_100_and_refuses_to_go_below_zero() {
    let (outcomes, state) = batch(
        "@account@a",
        None,
        &[
            ("withdraw", json!(30)),
            ("withdraw", json!(80)),
            ("deposit", json!(-5)),
            ("refund", json!(10)),
            ("balance", Value::Null),
        ],
    );
    assert_eq!(
        outcomes,
        [
            json!(70),
            json!({"failed": "InsufficientFunds", "nonRetriable": false}),
            json!({"failed": "InvalidAmount", "nonRetriable": true}),
            json!(80),
            json!(80),
        ]
    );
    assert_eq!(state, Some(json!({"balance": 80})));
}

/// A minimal host: one orchestration, entities in a map, every call answered right away.
struct MiniHost {
    entities: BTreeMap<String, Option<Value>>,
    /// Makes every operation of this name fail, as a fault rule would (without running it).
    failing_operation: Option<&'static str>,
    history: Vec<HistoryEvent>,
    operations_run: Vec<String>,
}

impl MiniHost {
    fn new(failing_operation: Option<&'static str>) -> Self {
        Self {
            entities: BTreeMap::new(),
            failing_operation,
            history: Vec::new(),
            operations_run: Vec::new(),
        }
    }

    fn event(kind: EventKind, event_id: i32) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::<Utc>::UNIX_EPOCH,
            kind,
        }
    }

    fn run_operation(&mut self, entity: &str, operation: &str, input: Value) -> EventKind {
        self.operations_run.push(format!("{entity} {operation}"));
        let outcome = if self.failing_operation == Some(operation) {
            EntityOperationResult::Failed {
                failure: FailureDetails::new("InjectedFault", "the bank is closed"),
            }
        } else {
            let state = self.entities.get(entity).cloned().flatten();
            let result = durable_plugin_handle()
                .run_entity_batch(&EntityBatchRequest {
                    instance_id: entity.to_string(),
                    state,
                    operations: vec![EntityOperationRequest {
                        request_id: "r".into(),
                        operation: operation.to_string(),
                        input,
                        caller: None,
                    }],
                })
                .unwrap();
            self.entities.insert(entity.to_string(), result.state);
            result.results[0].clone()
        };
        match outcome {
            EntityOperationResult::Completed { result } => EventKind::EntityOperationCompleted {
                request_id: String::new(),
                output: result,
            },
            EntityOperationResult::Failed { failure } => EventKind::EntityOperationFailed {
                request_id: String::new(),
                failure,
            },
        }
    }

    /// Runs `name(input)` to its end; returns (status, output or failure).
    fn run(&mut self, name: &str, input: Value) -> (RuntimeStatus, Value) {
        let mut inbox = vec![Self::event(
            EventKind::ExecutionStarted {
                name: name.to_string(),
                version: None,
                input,
                instance_id: "i".into(),
                execution_id: "i-e1".into(),
                parent: None,
                scheduled_start: None,
            },
            -1,
        )];
        for _ in 0..50 {
            let mut new_events = vec![Self::event(EventKind::OrchestratorStarted, -1)];
            new_events.append(&mut inbox);
            let request = OrchestratorRequest {
                instance_id: "i".into(),
                execution_id: "i-e1".into(),
                history_len: self.history.len(),
                past_events: self.history.clone(),
                new_events: new_events.clone(),
                include_replay_logs: false,
                max_actions: None,
            };
            let response = durable_plugin_handle().orchestrate(&request).unwrap();
            assert_eq!(response.nondeterminism, None);
            self.history.extend(new_events);
            for action in response.actions {
                self.history
                    .push(Self::event(action.kind.to_event_kind(), action.id));
                match action.kind {
                    ActionKind::CallEntity {
                        request_id,
                        target_instance_id,
                        operation,
                        input,
                        ..
                    } => {
                        let mut answer = self.run_operation(&target_instance_id, &operation, input);
                        match &mut answer {
                            EventKind::EntityOperationCompleted { request_id: id, .. }
                            | EventKind::EntityOperationFailed { request_id: id, .. } => {
                                *id = request_id;
                            }
                            _ => unreachable!(),
                        }
                        inbox.push(Self::event(answer, -1));
                    }
                    ActionKind::SignalEntity {
                        target_instance_id,
                        operation,
                        input,
                        ..
                    } => {
                        self.run_operation(&target_instance_id, &operation, input);
                    }
                    ActionKind::LockEntities {
                        critical_section_id,
                        ..
                    } => inbox.push(Self::event(
                        EventKind::EntityLockGranted {
                            critical_section_id,
                        },
                        -1,
                    )),
                    ActionKind::UnlockEntity {
                        target_instance_id, ..
                    } => self
                        .operations_run
                        .push(format!("{target_instance_id} unlock")),
                    ActionKind::CompleteOrchestration {
                        status,
                        result,
                        failure,
                        ..
                    } => {
                        let output = match failure {
                            Some(failure) => serde_json::to_value(failure).unwrap(),
                            None => result,
                        };
                        return (status, output);
                    }
                    other => panic!("the entity samples make no {other:?}"),
                }
            }
            self.history
                .push(Self::event(EventKind::OrchestratorCompleted, -1));
        }
        panic!("{name} did not finish in 50 episodes");
    }

    fn balance(&self, account: &str) -> Value {
        self.entities[account].clone().unwrap()["balance"].clone()
    }
}

#[test]
fn counter_demo_sees_every_signal_sent_before_its_get() {
    let mut host = MiniHost::new(None);
    let (status, output) = host.run("CounterDemo", json!({"key": "demo", "increments": 3}));
    assert_eq!((status, output), (RuntimeStatus::Completed, json!(3)));
    assert_eq!(host.entities["@counter@demo"], Some(json!(3)));
}

#[test]
fn transfer_moves_the_amount_under_a_lock_on_both_accounts() {
    let mut host = MiniHost::new(None);
    let (status, output) = host.run(
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
    );
    assert_eq!(status, RuntimeStatus::Completed);
    assert_eq!(output, json!({"from": 70, "to": 130}));
    assert_eq!(
        host.operations_run,
        [
            "@account@alice withdraw",
            "@account@bob deposit",
            "@account@alice unlock",
            "@account@bob unlock",
        ]
    );
}

#[test]
fn transfer_whose_deposit_fails_puts_the_money_back_and_fails_clearly() {
    let mut host = MiniHost::new(Some("deposit"));
    let (status, output) = host.run(
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
    );
    assert_eq!(status, RuntimeStatus::Failed);
    let failure: FailureDetails = serde_json::from_value(output).unwrap();
    assert_eq!(failure.error_type, "TransferFailed");
    assert_eq!(
        failure.error_message,
        "the deposit of 30 to @account@bob failed (InjectedFault: the bank is closed); the 30 \
         withdrawn from @account@alice were put back"
    );
    assert_eq!(failure.root_cause().error_type, "InjectedFault");
    assert_eq!(host.balance("@account@alice"), json!(100));
    assert_eq!(
        host.operations_run,
        [
            "@account@alice withdraw",
            "@account@bob deposit",
            "@account@alice refund",
            "@account@alice unlock",
            "@account@bob unlock",
        ]
    );
}

#[test]
fn transfer_of_more_than_the_balance_fails_with_nothing_to_undo() {
    let mut host = MiniHost::new(None);
    let (status, output) = host.run(
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 500}),
    );
    assert_eq!(status, RuntimeStatus::Failed);
    let failure: FailureDetails = serde_json::from_value(output).unwrap();
    assert_eq!(failure.error_type, "TransferFailed");
    assert_eq!(failure.root_cause().error_type, "InsufficientFunds");
    assert!(
        failure
            .error_message
            .starts_with("could not withdraw 500 from @account@alice"),
        "{}",
        failure.error_message
    );
    assert_eq!(
        host.operations_run,
        [
            "@account@alice withdraw",
            "@account@alice unlock",
            "@account@bob unlock",
        ]
    );
}

#[test]
fn transfer_to_the_same_account_is_refused() {
    let mut host = MiniHost::new(None);
    let (status, output) = host.run("Transfer", json!({"from": "a", "to": "a", "amount": 5}));
    assert_eq!(status, RuntimeStatus::Failed);
    assert_eq!(output["errorType"], json!("InvalidTransfer"));
    assert!(host.operations_run.is_empty());
}
