//! Error handling and compensation (a saga): `OrderSaga` takes payment, reserves stock and ships
//! an order, and undoes what it already did when a later step fails.
//!
//! Input `{"order_id": "...", "amount": X}`, optionally with `"fail_at"` set to `"ChargeCard"`,
//! `"ReserveInventory"` or `"ShipOrder"` to make that activity fail (so the failure paths run
//! without fault injection). Steps: the sub-orchestration `ProcessPayment` (activity `ChargeCard`
//! with a retry policy, see [`crate::process_payment`]), then the activities `ReserveInventory`
//! and `ShipOrder`. Output `{"order_id": "...", "status": "Shipped"}`.
//!
//! When a step fails, the steps already done are compensated newest first (`ReleaseInventory`,
//! then `RefundPayment`) and the orchestration fails with the original failure unchanged, so its
//! chain still reads activity -> (sub-orchestration ->) orchestration:
//! - `fail_at: ChargeCard`: three attempts with backoff timers between them inside
//!   `ProcessPayment`, which fails; nothing to compensate; the failure chain is
//!   `TaskFailed` (ProcessPayment) -> `TaskFailed` (ChargeCard) -> `PaymentGatewayUnavailable`.
//! - `fail_at: ReserveInventory`: `RefundPayment` runs; chain `TaskFailed` -> `OutOfStock`.
//! - `fail_at: ShipOrder`: `ReleaseInventory` then `RefundPayment` run; chain `TaskFailed` ->
//!   `CarrierUnavailable`.
//!
//! What it demonstrates: matching on a failed durable call (`Err(TaskError)`) instead of letting
//! `?` propagate it, a stack of compensations, and a failure chain that survives compensation.
//!
//! What to look at: in the failure paths, the `TaskFailed` event, the compensation activities
//! scheduled after it, and the instance's failure details (the error-propagation view draws the
//! chain). The custom status names the step in progress and, at the end, what was compensated.
//!
//! Choices the issue left open, made the way a Durable Functions user would expect:
//! - `order_id` defaults to the instance id and `amount` to 100, so `{"fail_at": "ShipOrder"}`
//!   alone is a complete input. An amount that is not positive fails `ChargeCard` with a
//!   non-retriable `InvalidAmount` (no retries: retrying cannot fix it). An unknown `fail_at`
//!   does not decode (`SerializationError`).
//! - Compensations are retried (3 attempts, 5 s apart). One that still fails is logged and listed
//!   in the custom status, and the instance still fails with the original failure: that is what
//!   needs attention first. (A real system would also alert someone.)
//! - Amounts are JSON numbers (`f64`) to keep the sample short; real money wants integer minor
//!   units or a decimal type.

use crate::process_payment::Payment;
use durable_sdk::serde_json::Value;
use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, DurableTask, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry,
    RetryPolicy, TaskError,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The amount of an order whose input gives none.
pub const DEFAULT_AMOUNT: f64 = 100.0;

/// An order, as `OrderSaga` receives it and passes it to its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    /// The order's id; empty means "use the instance id".
    #[serde(default)]
    pub order_id: String,
    /// The amount to charge.
    #[serde(default = "default_amount")]
    pub amount: f64,
    /// Makes this step's activity fail, to run a failure path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_at: Option<FailingStep>,
}

fn default_amount() -> f64 {
    DEFAULT_AMOUNT
}

/// The activities an order can be told to fail at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailingStep {
    /// `ChargeCard` fails on every attempt (retriable, so the retries show).
    ChargeCard,
    /// `ReserveInventory` fails.
    ReserveInventory,
    /// `ShipOrder` fails.
    ShipOrder,
}

impl Order {
    /// Whether this order is told to fail at `step`.
    pub fn fails_at(&self, step: FailingStep) -> bool {
        self.fail_at == Some(step)
    }
}

/// An order's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Paid, reserved and handed to the carrier.
    Shipped,
}

/// `OrderSaga`'s output: `{"order_id": "...", "status": "Shipped"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderOutcome {
    /// The order.
    pub order_id: String,
    /// Its final state.
    pub status: OrderStatus,
}

/// `ReserveInventory`'s output: what `ReleaseInventory` undoes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The reservation's id.
    pub reservation_id: String,
    /// The order it holds stock for.
    pub order_id: String,
}

/// `ShipOrder`'s output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shipment {
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// The custom status: the step in progress, or how the saga ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SagaStatus {
    /// The step running now; at the end `Shipped`, `Compensated`, or `Failed` (nothing to undo).
    pub step: String,
    /// After a failure: the step that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    /// After a failure: the compensations that ran, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensated: Vec<String>,
    /// After a failure: compensations that failed even after retries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compensation_failures: Vec<String>,
}

impl SagaStatus {
    fn at(step: &str) -> Self {
        Self {
            step: step.into(),
            failed_at: None,
            compensated: Vec::new(),
            compensation_failures: Vec::new(),
        }
    }
}

/// What undoes a completed step: the compensating activity and what it needs.
#[derive(Debug, Clone, PartialEq)]
enum Compensation {
    RefundPayment(Payment),
    ReleaseInventory(Reservation),
}

impl Compensation {
    fn activity(&self) -> &'static str {
        match self {
            Compensation::RefundPayment(_) => "RefundPayment",
            Compensation::ReleaseInventory(_) => "ReleaseInventory",
        }
    }

    /// Schedules the compensating activity. Retried: an undo that gives up at the first
    /// hiccup leaves the order half done.
    fn schedule(&self, ctx: &OrchestrationContext) -> DurableTask<Value> {
        let retry = RetryPolicy::new(3, Duration::from_secs(5));
        match self {
            Compensation::RefundPayment(payment) => {
                ctx.call_activity_with_retry(self.activity(), payment, retry)
            }
            Compensation::ReleaseInventory(reservation) => {
                ctx.call_activity_with_retry(self.activity(), reservation, retry)
            }
        }
    }
}

/// Orchestrator `OrderSaga`: see the module docs.
pub async fn order_saga(
    ctx: OrchestrationContext,
    mut order: Order,
) -> Result<OrderOutcome, FailureDetails> {
    if order.order_id.is_empty() {
        order.order_id = ctx.instance_id();
    }
    // What to undo if a later step fails, pushed as each step completes and run newest first.
    let mut undo: Vec<Compensation> = Vec::new();

    ctx.set_custom_status(SagaStatus::at("ProcessPayment"));
    let payment: Payment = match ctx.call_sub_orchestrator("ProcessPayment", &order).await {
        Ok(payment) => payment,
        Err(failure) => return Err(compensate(&ctx, undo, failure).await),
    };
    undo.push(Compensation::RefundPayment(payment));

    ctx.set_custom_status(SagaStatus::at("ReserveInventory"));
    let reservation: Reservation = match ctx.call_activity("ReserveInventory", &order).await {
        Ok(reservation) => reservation,
        Err(failure) => return Err(compensate(&ctx, undo, failure).await),
    };
    undo.push(Compensation::ReleaseInventory(reservation));

    ctx.set_custom_status(SagaStatus::at("ShipOrder"));
    let shipment: Shipment = match ctx.call_activity("ShipOrder", &order).await {
        Ok(shipment) => shipment,
        Err(failure) => return Err(compensate(&ctx, undo, failure).await),
    };
    ctx.log_info(format!(
        "order {} shipped: tracking number {}",
        order.order_id, shipment.tracking_number
    ));
    ctx.set_custom_status(SagaStatus::at("Shipped"));
    Ok(OrderOutcome {
        order_id: order.order_id,
        status: OrderStatus::Shipped,
    })
}

/// Runs the compensations newest first, records them in the custom status, and returns the
/// original failure unchanged (`TaskFailed` wrapping the step's own failure).
async fn compensate(
    ctx: &OrchestrationContext,
    mut undo: Vec<Compensation>,
    failure: TaskError,
) -> FailureDetails {
    ctx.log_warn(format!("{failure}; compensating"));
    let mut status = SagaStatus {
        failed_at: Some(failure.name.clone()),
        ..SagaStatus::at("Compensating")
    };
    ctx.set_custom_status(&status);
    while let Some(compensation) = undo.pop() {
        match compensation.schedule(ctx).await {
            Ok(_) => status.compensated.push(compensation.activity().to_string()),
            Err(error) => {
                ctx.log_warn(format!("compensation failed: {error}"));
                status.compensation_failures.push(error.to_string());
            }
        }
    }
    let nothing_to_undo = status.compensated.is_empty() && status.compensation_failures.is_empty();
    status.step = if nothing_to_undo {
        "Failed"
    } else {
        "Compensated"
    }
    .into();
    ctx.set_custom_status(&status);
    failure.into()
}

/// Activity `ReserveInventory`: holds stock for the order (fails with `OutOfStock` when told to).
pub async fn reserve_inventory(
    _ctx: ActivityContext,
    order: Order,
) -> Result<Reservation, FailureDetails> {
    if order.fails_at(FailingStep::ReserveInventory) {
        return Err(FailureDetails::new(
            "OutOfStock",
            format!("no stock left for order {}", order.order_id),
        ));
    }
    Ok(Reservation {
        reservation_id: format!("res-{}", order.order_id),
        order_id: order.order_id,
    })
}

/// Activity `ReleaseInventory`: the compensation of `ReserveInventory`; returns the reservation
/// released.
pub async fn release_inventory(
    _ctx: ActivityContext,
    reservation: Reservation,
) -> Result<Reservation, FailureDetails> {
    Ok(reservation)
}

/// Activity `ShipOrder`: hands the order to the carrier (fails with `CarrierUnavailable` when
/// told to).
pub async fn ship_order(_ctx: ActivityContext, order: Order) -> Result<Shipment, FailureDetails> {
    if order.fails_at(FailingStep::ShipOrder) {
        return Err(FailureDetails::new(
            "CarrierUnavailable",
            format!("no carrier would take order {}", order.order_id),
        ));
    }
    Ok(Shipment {
        tracking_number: format!("trk-{}", order.order_id),
    })
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "OrderSaga",
            order_saga,
            OrchestratorInfo::new("Pays (via ProcessPayment), reserves and ships an order, undoing done steps on a failure (saga); \"fail_at\" picks a failing step")
                .example(json!({"order_id":"o-1","amount":49.5})),
        )
        .activity("ReserveInventory", reserve_inventory)
        .activity("ReleaseInventory", release_inventory)
        .activity("ShipOrder", ship_order)
}
