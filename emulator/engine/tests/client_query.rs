//! Client queries, purges and restarts: pages in a stable order with continuation tokens,
//! filters, the ended-instance id listing, purge of one instance with its children or by filter,
//! restart under the same or a new id, and the host semantics clients rely on (recursive
//! terminate reaches running children).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::engine::{
    Engine, EngineError, EngineHandle, InstanceIdsQuery, InstanceQuery, PurgeFilter, StartOptions,
};
use durable_emu_engine::faults::parse_compact;
use durable_emu_testing::engine::{current_history, samples_config, wait};
use durable_sdk::history::{EventKind, RuntimeStatus};
use durable_sdk::serde_json::json;
use std::collections::BTreeMap;

fn engine(auto_skip: bool) -> Engine {
    let mut config = samples_config();
    config.auto_skip = auto_skip;
    config.workers = 2;
    Engine::start(config).unwrap()
}

fn hello(handle: &EngineHandle, id: &str) {
    handle
        .start_orchestration("HelloSequence", json!(null), Some(id.into()))
        .unwrap();
    wait(handle, id);
}

fn ids(page: &[durable_emu_engine::InstanceRecord]) -> Vec<String> {
    page.iter()
        .map(|record| record.instance_id.clone())
        .collect()
}

#[test]
fn query_pages_hand_out_every_instance_once_in_created_order() {
    let engine = engine(true);
    let handle = &engine.handle();
    for i in 0..7 {
        hello(handle, &format!("q{i}"));
    }
    let mut seen = Vec::new();
    let mut continuation = None;
    let mut pages = 0;
    loop {
        let (page, next) = handle
            .query(InstanceQuery {
                page_size: 3,
                continuation,
                ..InstanceQuery::default()
            })
            .unwrap();
        pages += 1;
        seen.extend(ids(&page));
        match next {
            Some(token) => continuation = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("q{i}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn an_instance_created_between_pages_neither_repeats_nor_shifts_the_listing() {
    let engine = engine(true);
    let handle = &engine.handle();
    for i in 0..4 {
        hello(handle, &format!("s{i}"));
    }
    let first = InstanceQuery {
        page_size: 2,
        ..InstanceQuery::default()
    };
    let (page, next) = handle.query(first.clone()).unwrap();
    assert_eq!(ids(&page), ["s0", "s1"]);
    hello(handle, "s4");
    assert!(handle.purge("s0").unwrap());
    let (page, next) = handle
        .query(InstanceQuery {
            continuation: next,
            ..first.clone()
        })
        .unwrap();
    assert_eq!(ids(&page), ["s2", "s3"]);
    let (page, next) = handle
        .query(InstanceQuery {
            continuation: next,
            ..first
        })
        .unwrap();
    assert_eq!(ids(&page), ["s4"]);
    assert_eq!(next, None);
}

#[test]
fn query_filters_by_status_id_prefix_and_created_range() {
    let engine = engine(false);
    let handle = &engine.handle();
    let t0 = handle.now().unwrap();
    for id in ["order-1", "order-2", "other"] {
        handle
            .start_orchestration(
                "ApprovalWorkflow",
                json!({"request": "x", "timeout_hours": 1}),
                Some(id.into()),
            )
            .unwrap();
    }
    handle.terminate("order-2", json!("stop"), false).unwrap();
    wait(handle, "order-2");
    let query = |query: InstanceQuery| ids(&handle.query(query).unwrap().0);
    assert_eq!(
        query(InstanceQuery {
            instance_id_prefix: Some("order-".into()),
            ..InstanceQuery::default()
        }),
        ["order-1", "order-2"]
    );
    assert_eq!(
        query(InstanceQuery {
            statuses: vec![RuntimeStatus::Terminated],
            ..InstanceQuery::default()
        }),
        ["order-2"]
    );
    assert!(
        query(InstanceQuery {
            created_to: Some(t0),
            ..InstanceQuery::default()
        })
        .is_empty()
    );
    assert_eq!(
        query(InstanceQuery {
            created_from: Some(t0),
            ..InstanceQuery::default()
        })
        .len(),
        3
    );
}

#[test]
fn a_token_this_listing_did_not_issue_and_a_reversed_range_are_refused() {
    let engine = engine(true);
    let handle = &engine.handle();
    let error = handle
        .query(InstanceQuery {
            continuation: Some("page-2".into()),
            ..InstanceQuery::default()
        })
        .unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
    assert!(error.to_string().contains("previous page"), "{error}");
    let now = handle.now().unwrap();
    let error = handle
        .query(InstanceQuery {
            created_from: Some(now),
            created_to: Some(now - chrono::Duration::hours(1)),
            ..InstanceQuery::default()
        })
        .unwrap_err();
    assert!(matches!(error, EngineError::InvalidArgument(_)), "{error}");
}

#[test]
fn list_instance_ids_pages_only_ended_instances_by_completion() {
    let engine = engine(false);
    let handle = &engine.handle();
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "x", "timeout_hours": 1}),
            Some("still-running".into()),
        )
        .unwrap();
    for i in 0..3 {
        hello(handle, &format!("ended-{i}"));
    }
    let (page, key) = handle
        .list_instance_ids(InstanceIdsQuery {
            page_size: 2,
            ..InstanceIdsQuery::default()
        })
        .unwrap();
    assert_eq!(page, ["ended-0", "ended-1"]);
    let (page, key) = handle
        .list_instance_ids(InstanceIdsQuery {
            page_size: 2,
            last_instance_key: key,
            ..InstanceIdsQuery::default()
        })
        .unwrap();
    assert_eq!(page, ["ended-2"]);
    assert_eq!(key, None);
}

/// BatchOrders of 2: two OrderSaga children, each with a ProcessPayment child.
fn batch(handle: &EngineHandle, id: &str) -> usize {
    handle
        .start_orchestration("BatchOrders", json!(2), Some(id.into()))
        .unwrap();
    wait(handle, id);
    handle.instances().unwrap().len()
}

#[test]
fn a_recursive_purge_deletes_the_instance_and_every_ended_descendant() {
    let engine = engine(true);
    let handle = &engine.handle();
    let total = batch(handle, "batch");
    assert!(total >= 3, "the batch has children");
    hello(handle, "bystander");
    assert_eq!(handle.purge_recursive("batch", true).unwrap(), total);
    assert_eq!(ids(&handle.instances().unwrap()), ["bystander"]);
}

#[test]
fn a_purge_without_recursive_leaves_the_children() {
    let engine = engine(true);
    let handle = &engine.handle();
    let total = batch(handle, "batch");
    assert_eq!(handle.purge_recursive("batch", false).unwrap(), 1);
    assert_eq!(handle.instances().unwrap().len(), total - 1);
    assert_eq!(handle.purge_recursive("batch", false).unwrap(), 0);
}

#[test]
fn purging_a_running_instance_is_refused() {
    let engine = engine(false);
    let handle = &engine.handle();
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "x", "timeout_hours": 1}),
            Some("busy".into()),
        )
        .unwrap();
    let error = handle.purge_recursive("busy", true).unwrap_err();
    assert!(matches!(error, EngineError::InstanceRunning(_)), "{error}");
    assert!(handle.instance("busy").unwrap().is_some());
}

#[test]
fn a_purge_by_filter_deletes_only_ended_instances_that_match() {
    let engine = engine(false);
    let handle = &engine.handle();
    hello(handle, "done-1");
    hello(handle, "done-2");
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "x", "timeout_hours": 1}),
            Some("running".into()),
        )
        .unwrap();
    handle
        .start_orchestration(
            "ApprovalWorkflow",
            json!({"request": "x", "timeout_hours": 1}),
            Some("stopped".into()),
        )
        .unwrap();
    handle.terminate("stopped", json!("bye"), false).unwrap();
    wait(handle, "stopped");
    let completed_only = PurgeFilter {
        statuses: vec![RuntimeStatus::Completed, RuntimeStatus::Running],
        ..PurgeFilter::default()
    };
    assert_eq!(handle.purge_where(completed_only, false).unwrap(), 2);
    let mut left = ids(&handle.instances().unwrap());
    left.sort();
    assert_eq!(left, ["running", "stopped"]);
    let future = PurgeFilter {
        created_from: Some(handle.now().unwrap() + chrono::Duration::hours(1)),
        ..PurgeFilter::default()
    };
    assert_eq!(handle.purge_where(future, false).unwrap(), 0);
}

#[test]
fn restart_with_the_same_id_needs_the_instance_ended_and_keeps_version_and_tags() {
    let engine = engine(false);
    let handle = &engine.handle();
    let tags = BTreeMap::from([("k".to_string(), "v".to_string())]);
    handle
        .start_with(
            "ApprovalWorkflow",
            json!({"request": "x", "timeout_hours": 1}),
            StartOptions {
                instance_id: Some("again".into()),
                version: Some("2".into()),
                tags: tags.clone(),
                ..StartOptions::default()
            },
        )
        .unwrap();
    let error = handle.restart_as("again", false).unwrap_err();
    assert!(matches!(error, EngineError::NotEnded { .. }), "{error}");
    handle
        .raise_event("again", "Approval", json!(true))
        .unwrap();
    let first = wait(handle, "again");
    assert_eq!(handle.restart_as("again", false).unwrap(), "again");
    let restarted = handle.instance("again").unwrap().unwrap();
    assert_ne!(restarted.execution_id, first.execution_id);
    assert!(!restarted.status.is_terminal());
    assert_eq!(restarted.version.as_deref(), Some("2"));
    assert_eq!(restarted.tags, tags);
    assert_eq!(restarted.input, json!({"request": "x", "timeout_hours": 1}));
}

#[test]
fn restart_with_a_new_id_leaves_the_old_instance_and_an_unknown_id_is_not_found() {
    let engine = engine(true);
    let handle = &engine.handle();
    hello(handle, "orig");
    let new_id = handle.restart_as("orig", true).unwrap();
    assert_ne!(new_id, "orig");
    assert_eq!(wait(handle, &new_id).status, RuntimeStatus::Completed);
    assert!(handle.instance("orig").unwrap().is_some());
    let error = handle.restart_as("nobody", true).unwrap_err();
    assert!(matches!(error, EngineError::InstanceNotFound(_)), "{error}");
}

#[test]
fn a_recursive_terminate_reaches_running_children() {
    let engine = engine(false);
    let handle = &engine.handle();
    // The payment child's charge is held back an hour of virtual time that never passes.
    handle
        .add_fault(parse_compact("activity=ChargeCard,delay=1h", 0).unwrap())
        .unwrap();
    handle
        .start_orchestration(
            "OrderSaga",
            json!({"order_id": "o", "amount": 5.0}),
            Some("saga".into()),
        )
        .unwrap();
    let mut child = None;
    durable_emu_testing::engine::eventually("the payment child starts", || {
        child = current_history(handle, "saga")
            .into_iter()
            .find_map(|event| match event.kind {
                EventKind::SubOrchestrationInstanceCreated { instance_id, .. } => Some(instance_id),
                _ => None,
            });
        child.is_some()
    });
    let child = child.unwrap();
    assert_eq!(
        handle.instance(&child).unwrap().unwrap().status,
        RuntimeStatus::Running
    );
    handle.terminate("saga", json!("stop"), true).unwrap();
    assert_eq!(wait(handle, "saga").status, RuntimeStatus::Terminated);
    assert_eq!(wait(handle, &child).status, RuntimeStatus::Terminated);
}
