//! Durable entities in a critical section: `Transfer` moves money between two `Account`
//! entities while holding a lock on both, and puts the money back when the deposit fails.
//!
//! `Account` (ids `@account@<name>`) is a struct-based entity (`durable_sdk::Entity`): its state
//! is `{"balance": N}`, whole units. A new account opens with [`OPENING_BALANCE`] (so the sample
//! needs no setup). Operations (names compared ignoring case), each taking a positive integer
//! amount and returning the new balance: `deposit`, `withdraw` (fails with `InsufficientFunds`
//! when the balance is lower than the amount; the balance is unchanged) and `refund` (puts back
//! what a transfer withdrew; a separate name so the operation log tells a refund from a
//! deposit); `balance` returns the balance. An amount that is not positive fails with a
//! non-retriable `InvalidAmount`.
//!
//! `Transfer` (input `{"from": "alice", "to": "bob", "amount": 30}`):
//! 1. locks `@account@alice` and `@account@bob` (one `EntityLockRequested`; no other operation
//!    runs on either until the transfer releases them, and two transfers never deadlock: locks
//!    are taken in sorted order);
//! 2. calls `withdraw` on `from`; a failure (e.g. `InsufficientFunds`) fails the transfer with
//!    nothing to undo;
//! 3. calls `deposit` on `to`; if that fails, calls `refund` on `from` (compensation, still
//!    inside the critical section so nobody sees the money missing) and fails with
//!    `TransferFailed`: "the deposit of 30 to @account@bob failed (...); the 30 withdrawn from
//!    @account@alice were put back";
//! 4. releases the locks (`EntityUnlockSent`, one per account) and returns
//!    `{"from": 70, "to": 130}`, the two balances.
//!
//! What to look at: run it with `assets/scenarios/transfer-fails-halfway.toml` (a fault that
//! fails every `deposit` on `@account@*`): the history shows the lock, the withdrawal, the failed
//! deposit, the refund and the unlocks; the Entities view shows both accounts back at their
//! balance before the transfer, with the failed deposit in `@account@bob`'s operation log; the
//! Errors view follows the failure from the orchestration into the entity call. The custom
//! status names the step in progress.

use durable_sdk::serde_json::{Value, json};
use durable_sdk::{
    Entity, EntityContext, EntityId, FailureDetails, OrchestrationContext, OrchestratorInfo,
    Registry, TaskError,
};
use serde::{Deserialize, Serialize};

/// What a new account holds.
pub const OPENING_BALANCE: i64 = 100;

/// Entity `Account`: a balance in whole units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The balance.
    pub balance: i64,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            balance: OPENING_BALANCE,
        }
    }
}

impl Account {
    fn amount(ctx: &EntityContext) -> Result<i64, FailureDetails> {
        let amount: i64 = ctx.input()?;
        if amount <= 0 {
            return Err(FailureDetails::new(
                "InvalidAmount",
                format!("{} needs a positive amount, got {amount}", ctx.operation()),
            )
            .non_retriable());
        }
        Ok(amount)
    }
}

impl Entity for Account {
    fn dispatch(&mut self, ctx: &EntityContext) -> Result<Value, FailureDetails> {
        let operation = ctx.operation().to_lowercase();
        match operation.as_str() {
            "deposit" | "refund" => {
                self.balance = self.balance.saturating_add(Self::amount(ctx)?);
            }
            "withdraw" => {
                let amount = Self::amount(ctx)?;
                if amount > self.balance {
                    return Err(FailureDetails::new(
                        "InsufficientFunds",
                        format!(
                            "{} holds {}, less than the {amount} asked for",
                            ctx.entity_id(),
                            self.balance
                        ),
                    ));
                }
                self.balance -= amount;
            }
            "balance" => {}
            _ => return Err(ctx.unknown_operation()),
        }
        Ok(json!(self.balance))
    }
}

/// The input of `Transfer`: account names (keys of `@account@<name>`) and a positive amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInput {
    /// The account the money leaves.
    pub from: String,
    /// The account it goes to.
    pub to: String,
    /// How much, in whole units.
    pub amount: i64,
}

/// The two balances after a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balances {
    /// The balance of `from`.
    pub from: i64,
    /// The balance of `to`.
    pub to: i64,
}

/// The `error_type` a transfer fails with when it could not move the money.
pub const TRANSFER_FAILED: &str = "TransferFailed";

/// Orchestrator `Transfer`: see the module doc.
pub async fn transfer(
    ctx: OrchestrationContext,
    input: TransferInput,
) -> Result<Balances, FailureDetails> {
    let amount = input.amount;
    if amount <= 0 || input.from == input.to {
        return Err(FailureDetails::new(
            "InvalidTransfer",
            format!(
                "a transfer needs two different accounts and a positive amount (got {amount} from '{}' to '{}')",
                input.from, input.to
            ),
        )
        .non_retriable());
    }
    let (from, to) = (
        EntityId::new("Account", &input.from),
        EntityId::new("Account", &input.to),
    );
    ctx.set_custom_status("locking both accounts");
    let section = ctx.lock_entities([from.clone(), to.clone()]).await?;

    ctx.set_custom_status(format!("withdrawing {amount} from {from}"));
    let from_balance: i64 = ctx
        .call_entity(&from, "withdraw", amount)
        .await
        .map_err(|error| {
            transfer_failed(
                format!("could not withdraw {amount} from {from}: {}", cause(&error)),
                error,
            )
        })?;

    ctx.set_custom_status(format!("depositing {amount} to {to}"));
    let to_balance = match ctx.call_entity::<i64>(&to, "deposit", amount).await {
        Ok(balance) => balance,
        Err(deposit_error) => {
            ctx.set_custom_status(format!("putting {amount} back into {from}"));
            let refund = ctx.call_entity::<i64>(&from, "refund", amount).await;
            let message = match &refund {
                Ok(_) => format!(
                    "the deposit of {amount} to {to} failed ({}); the {amount} withdrawn from {from} were put back",
                    cause(&deposit_error)
                ),
                Err(refund_error) => format!(
                    "the deposit of {amount} to {to} failed ({}) and putting the {amount} back into {from} failed too ({}): the money needs attention",
                    cause(&deposit_error),
                    cause(refund_error)
                ),
            };
            ctx.log_warn(&message);
            ctx.set_custom_status(message.clone());
            return Err(transfer_failed(message, deposit_error));
        }
    };
    section.release();
    ctx.set_custom_status(format!("moved {amount} from {from} to {to}"));
    Ok(Balances {
        from: from_balance,
        to: to_balance,
    })
}

fn cause(error: &TaskError) -> String {
    error.cause().to_string()
}

/// `TransferFailed` with the failed entity call as its inner failure, so the chain reads
/// transfer -> entity call -> the entity's own error.
fn transfer_failed(message: String, error: TaskError) -> FailureDetails {
    let non_retriable = error.cause().is_non_retriable;
    let mut failure = FailureDetails::new(TRANSFER_FAILED, message).with_inner(error.into());
    failure.is_non_retriable = non_retriable;
    failure
}

/// Adds this sample's functions to `registry`.
pub fn register(registry: Registry) -> Registry {
    registry
        .orchestrator_with(
            "Transfer",
            transfer,
            OrchestratorInfo::new("Moves money between two Account entities under a lock on both (critical section), putting it back if the deposit fails; new accounts hold 100")
                .example(json!({"from": "alice", "to": "bob", "amount": 30})),
        )
        .entity_type::<Account>("Account")
}
