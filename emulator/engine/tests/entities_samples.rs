//! The entity samples on the engine (`sample-functions`: `CounterDemo` + `Counter`, `Transfer` +
//! `Account`), with the shipped scenario `assets/scenarios/transfer-fails-halfway.toml`: what a
//! user sees, checked below the binary (the CLI's own tests run them through it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{Engine, EngineConfig, EntityOperationOutcome};
use durable_emu_engine::faults::parse_scenario;
use durable_emu_testing::engine::{current_history, kinds, run, samples_config, samples_engine};
use durable_sdk::history::RuntimeStatus;
use durable_sdk::serde_json::json;

#[test]
fn counter_demo_sees_every_signal_sent_before_its_call() {
    let engine = samples_engine();
    let handle = engine.handle();
    let record = run(
        &handle,
        "CounterDemo",
        json!({"key": "demo", "increments": 5}),
        Some("demo"),
    );
    assert_eq!(record.status, RuntimeStatus::Completed);
    assert_eq!(record.output, json!(5));
    let log = handle.entity_operations("@counter@demo", 10).unwrap();
    assert_eq!(log.len(), 6);
    assert!(log[..5].iter().all(|record| !record.awaits_answer));
    assert!(log[5].awaits_answer);
}

#[test]
fn a_transfer_moves_the_money_under_both_locks_and_releases_them() {
    let engine = samples_engine();
    let handle = engine.handle();
    let record = run(
        &handle,
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
        Some("t"),
    );
    assert_eq!(record.status, RuntimeStatus::Completed, "{record:?}");
    assert_eq!(record.output, json!({"from": 70, "to": 130}));
    for id in ["@account@alice", "@account@bob"] {
        let entity = handle.entity(id, false).unwrap().unwrap();
        assert_eq!(entity.locked_by, None, "{id} is still locked");
    }
    let names = kinds(&current_history(&handle, "t"));
    assert_eq!(
        names
            .iter()
            .filter(|name| **name == "EntityUnlockSent")
            .count(),
        2
    );
}

#[test]
fn the_transfer_that_fails_halfway_puts_the_money_back() {
    let scenario = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/scenarios/transfer-fails-halfway.toml"
    ))
    .unwrap();
    let engine = Engine::start(EngineConfig {
        faults: parse_scenario(&scenario).unwrap(),
        ..samples_config()
    })
    .unwrap();
    let handle = engine.handle();
    let record = run(
        &handle,
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
        Some("t"),
    );
    assert_eq!(record.status, RuntimeStatus::Failed);
    assert_eq!(record.failure.unwrap().error_type, "TransferFailed");
    // Alice got her money back; bob's only operation was the failed deposit, so his account
    // never got state (a new account opens with 100).
    let alice = handle.entity("@account@alice", true).unwrap().unwrap();
    assert_eq!(alice.state, Some(json!({"balance": 100})));
    let bob = handle.entity("@account@bob", true).unwrap().unwrap();
    assert_eq!(bob.state, None);
    assert!(alice.locked_by.is_none() && bob.locked_by.is_none());
    let bob = handle.entity_operations("@account@bob", 10).unwrap();
    let deposit = bob
        .iter()
        .find(|record| record.operation == "deposit")
        .unwrap();
    assert!(matches!(
        deposit.outcome,
        EntityOperationOutcome::Failed { .. }
    ));
    assert!(
        deposit
            .fault
            .as_deref()
            .unwrap()
            .starts_with("bank offline")
    );
    let names = kinds(&current_history(&handle, "t"));
    assert!(names.contains(&"FaultInjected"), "{names:?}");
}
