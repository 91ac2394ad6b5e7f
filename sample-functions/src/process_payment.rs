//! The payment step of [`crate::order_saga`] as a sub-orchestration: `ProcessPayment` charges the
//! card through the activity `ChargeCard` with a retry policy of 3 attempts and exponential
//! backoff (5 s, then 10 s). `RefundPayment`, the compensation `OrderSaga` runs when a later step
//! fails, lives here too: the payment's do and undo side by side.
//!
//! What it demonstrates: retry policies (every attempt and every delay is a durable event) and a
//! sub-orchestration as a unit of work with its own history, whose failure reaches the parent with
//! its whole chain.
//!
//! What to look at: with `fail_at: ChargeCard`, the child instance `<parent>:0` holds
//! `TaskScheduled(ChargeCard)`, `TaskFailed`, `TimerCreated` (+5 s), `TimerFired`, the second
//! attempt, a +10 s timer, the third attempt and no timer after it, then fails; the parent records
//! `SubOrchestrationInstanceFailed`. An amount that is not positive fails with a non-retriable
//! `InvalidAmount`, and history shows a single attempt.

use crate::order_saga::{FailingStep, Order};
use durable_sdk::serde_json::json;
use durable_sdk::{
    ActivityContext, FailureDetails, OrchestrationContext, OrchestratorInfo, Registry, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `ChargeCard`'s output (and `ProcessPayment`'s): what `RefundPayment` undoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// The payment's id.
    pub payment_id: String,
    /// The order paid for.
    pub order_id: String,
    /// The amount charged.
    pub amount: f64,
}

/// How `ChargeCard` is retried: 3 attempts, 5 s before the second, doubling after each failure.
pub fn charge_retry_policy() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_secs(5)).with_backoff(2.0)
}

/// Orchestrator `ProcessPayment`: input an [`Order`]; output the [`Payment`].
pub async fn process_payment(
    ctx: OrchestrationContext,
    order: Order,
) -> Result<Payment, FailureDetails> {
    let payment = ctx
        .call_activity_with_retry("ChargeCard", &order, charge_retry_policy())
        .await?;
    Ok(payment)
}

/// Activity `ChargeCard`: charges the order's amount. Fails with a non-retriable `InvalidAmount`
/// for an amount that is not positive, and with a retriable `PaymentGatewayUnavailable` on every
/// attempt when the order is told to fail here.
pub async fn charge_card(_ctx: ActivityContext, order: Order) -> Result<Payment, FailureDetails> {
    if !(order.amount.is_finite() && order.amount > 0.0) {
        return Err(FailureDetails::new(
            "InvalidAmount",
            format!(
                "order {} has amount {}; it must be positive",
                order.order_id, order.amount
            ),
        )
        .non_retriable());
    }
    if order.fails_at(FailingStep::ChargeCard) {
        return Err(FailureDetails::new(
            "PaymentGatewayUnavailable",
            format!(
                "the payment gateway did not answer for order {}",
                order.order_id
            ),
        ));
    }
    Ok(Payment {
        payment_id: format!("pay-{}", order.order_id),
        order_id: order.order_id,
        amount: order.amount,
    })
}

/// Activity `RefundPayment`: the compensation of `ChargeCard`; returns the payment refunded.
pub async fn refund_payment(
    _ctx: ActivityContext,
    payment: Payment,
) -> Result<Payment, FailureDetails> {
    Ok(payment)
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "ProcessPayment",
            process_payment,
            OrchestratorInfo::new("The payment step of OrderSaga, run by it as a sub-orchestration (ChargeCard with retries); input an order")
                .example(json!({"order_id":"o-1","amount":49.5})),
        )
        .activity("ChargeCard", charge_card)
        .activity("RefundPayment", refund_payment)
}
