//! Sub-orchestration fan-out: `BatchOrders`, input N, starts N `OrderSaga` sub-orchestrations in
//! parallel and reports how many shipped and how many failed: `{"shipped": s, "failed": f}`.
//!
//! Order i (1..=N) has id `order-<i>` and amount `10 * i`; every order with `i % 3 == 2`
//! (order-2, order-5, order-8, ...) is told to fail at `ShipOrder`, so it is compensated and
//! fails. N = 10 gives `{"shipped": 7, "failed": 3}`.
//!
//! What it demonstrates: fanning out over sub-orchestrations, each with an instance id of our
//! choosing (`<batch id>:order-<i>`); and fan-in that tolerates failures. `when_all` would fail
//! the batch on the first failed order, so the tasks, already all scheduled, are awaited one by
//! one and each outcome is counted.
//!
//! What to look at: N `SubOrchestrationInstanceCreated` events in the first episode, then
//! `SubOrchestrationInstanceCompleted` / `SubOrchestrationInstanceFailed` as the children end;
//! each child is an instance of its own, with its own `ProcessPayment` grandchild, and the failed
//! ones carry their compensation. The custom status counts finished orders and names the failed
//! ones.
//!
//! Choices the issue left open: a negative or fractional N does not decode
//! (`SerializationError`); N = 0 reports zeros at once.

use crate::order_saga::{FailingStep, Order, OrderOutcome};
use durable_sdk::serde_json::json;
use durable_sdk::{
    FailureDetails, OrchestrationContext, OrchestratorInfo, Registry, SubOrchestrationOptions,
};
use serde::{Deserialize, Serialize};

/// `BatchOrders`'s output.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReport {
    /// Orders that shipped.
    pub shipped: u32,
    /// Orders that failed (and were compensated).
    pub failed: u32,
}

/// The custom status while the batch runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchProgress {
    /// Orders finished so far.
    pub done: u32,
    /// Orders in the batch.
    pub total: u32,
    /// Ids of the orders that failed so far.
    pub failed_orders: Vec<String>,
}

/// Order `i` (1-based) of a batch: see the module docs for which ones fail.
pub fn batch_order(i: u32) -> Order {
    Order {
        order_id: format!("order-{i}"),
        amount: 10.0 * f64::from(i),
        fail_at: (i % 3 == 2).then_some(FailingStep::ShipOrder),
    }
}

/// Orchestrator `BatchOrders`: see the module docs.
pub async fn batch_orders(
    ctx: OrchestrationContext,
    count: u32,
) -> Result<BatchReport, FailureDetails> {
    let orders: Vec<Order> = (1..=count).map(batch_order).collect();
    // Fan out: every saga starts here; awaiting them in order below does not serialize them.
    let sagas: Vec<_> = orders
        .iter()
        .map(|order| {
            let options = SubOrchestrationOptions {
                instance_id: Some(format!("{}:{}", ctx.instance_id(), order.order_id)),
                retry: None,
            };
            ctx.call_sub_orchestrator_with::<OrderOutcome>("OrderSaga", order, options)
        })
        .collect();

    let mut report = BatchReport::default();
    let mut progress = BatchProgress {
        total: count,
        ..BatchProgress::default()
    };
    ctx.set_custom_status(&progress);
    for (order, saga) in orders.iter().zip(sagas) {
        match saga.await {
            Ok(_) => report.shipped += 1,
            Err(error) => {
                ctx.log_warn(format!("{error}"));
                report.failed += 1;
                progress.failed_orders.push(order.order_id.clone());
            }
        }
        progress.done += 1;
        ctx.set_custom_status(&progress);
    }
    Ok(report)
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry.orchestrator_with(
            "BatchOrders",
            batch_orders,
            OrchestratorInfo::new("Runs N OrderSaga sub-orchestrations at once and counts shipped and failed (every third fails); input N")
                .example(json!(10)),
        )
}
