//! Entities from an orchestration (docs/semantics.md#entities): calls answered by request id,
//! one-way signals (now or scheduled), critical sections (locks granted, calls inside them,
//! released when the section ends and when the orchestration ends however it ends), the
//! locking rules, nondeterminism of entity calls, and suspension. Then the same orchestrations
//! end to end against real entities in the simulated host.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::{
    EntityContext, EntityId, FailureDetails, LOCKING_RULES_VIOLATION, OrchestrationContext,
    Registry, RuntimeStatus, TaskKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use support::host::{Host, check_every_prefix_replays_like_the_live_run};
use support::{lines, render_actions, replay, replay_table};

fn counter(key: &str) -> EntityId {
    EntityId::new("Counter", key)
}

fn account(key: &str) -> EntityId {
    EntityId::new("Account", key)
}

/// Calls `@counter@a add 5`, signals `@counter@b` now and `@counter@c` an hour later.
async fn count(ctx: OrchestrationContext, _input: ()) -> Result<i64, FailureDetails> {
    let total: i64 = ctx.call_entity(&counter("a"), "add", 5).await?;
    ctx.signal_entity(&counter("b"), "add", 1);
    let later = ctx.current_utc_date_time() + chrono::Duration::hours(1);
    ctx.signal_entity_at(&counter("c"), "reset", (), later);
    Ok(total)
}

/// Reports how an entity call failed instead of failing.
async fn report_failure(ctx: OrchestrationContext, _input: ()) -> Result<Value, FailureDetails> {
    match ctx.call_entity::<i64>(&account("a"), "withdraw", 50).await {
        Ok(balance) => Ok(json!({ "balance": balance })),
        Err(error) => Ok(json!({
            "kind": error.kind.to_string(),
            "name": error.name,
            "message": error.to_string(),
            "cause": error.cause().error_type,
        })),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Move {
    from: String,
    to: String,
    amount: i64,
}

/// A transfer in a critical section; a failed call ends the orchestration (`?`) with the locks
/// still held by the guard.
async fn transfer(ctx: OrchestrationContext, input: Move) -> Result<&'static str, FailureDetails> {
    let (from, to) = (account(&input.from), account(&input.to));
    // Unsorted and with a duplicate: the request is sorted and deduplicated.
    let section = ctx
        .lock_entities([to.clone(), from.clone(), to.clone()])
        .await?;
    ctx.call_entity::<i64>(&from, "withdraw", input.amount)
        .await?;
    ctx.call_entity::<i64>(&to, "deposit", input.amount).await?;
    section.release();
    ctx.call_activity::<()>("Audit", ()).await?;
    Ok("moved")
}

/// Holds a lock and forgets the guard: the execution releases it when it completes.
async fn leak_lock(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    let section = ctx.lock_entities([counter("a")]).await?;
    std::mem::forget(section);
    Ok(())
}

/// Continues as new while holding a lock.
async fn lock_and_continue(ctx: OrchestrationContext, round: u32) -> Result<(), FailureDetails> {
    let _section = ctx.lock_entities([counter("a")]).await?;
    if round == 0 {
        ctx.continue_as_new(round + 1);
    }
    Ok(())
}

/// Breaks one locking rule (named by the input) inside a critical section and reports the
/// failure, or fails (for a signal, which has no task to fail).
async fn break_a_rule(ctx: OrchestrationContext, rule: String) -> Result<Value, FailureDetails> {
    let pending = ctx.lock_entities([counter("a")]);
    if rule == "call-before-grant" {
        let error = ctx
            .call_entity::<i64>(&counter("a"), "get", ())
            .await
            .unwrap_err();
        return Ok(json!([
            error.failure.error_type,
            error.failure.error_message
        ]));
    }
    let section = pending.await?;
    let error = match rule.as_str() {
        "call-unlocked" => ctx
            .call_entity::<i64>(&counter("z"), "get", ())
            .await
            .unwrap_err(),
        "call-twice" => {
            let first = ctx.call_entity::<i64>(&counter("a"), "get", ());
            let second = ctx.call_entity::<i64>(&counter("a"), "get", ()).await;
            drop(first);
            second.unwrap_err()
        }
        "nested-lock" => ctx.lock_entities([counter("b")]).await.unwrap_err(),
        "sub-orchestration" => ctx
            .call_sub_orchestrator::<()>("Child", ())
            .await
            .unwrap_err(),
        "signal-locked" => {
            ctx.signal_entity(&counter("a"), "add", 1);
            return Ok(json!("unreachable: the orchestration fails"));
        }
        other => panic!("unknown rule {other}"),
    };
    drop(section);
    Ok(json!([
        error.failure.error_type,
        error.failure.is_non_retriable,
        error.failure.error_message
    ]))
}

/// Calls the one locked entity twice in a row: the second call waits for the first's answer.
async fn twice_in_section(ctx: OrchestrationContext, _input: ()) -> Result<i64, FailureDetails> {
    let _section = ctx.lock_entities([counter("a")]).await?;
    let first: i64 = ctx.call_entity(&counter("a"), "add", 1).await?;
    let second: i64 = ctx.call_entity(&counter("a"), "add", 1).await?;
    Ok(first + second)
}

/// Calls an entity the test changes between recording and replaying (see the nondeterminism row).
async fn call_b(ctx: OrchestrationContext, _input: ()) -> Result<i64, FailureDetails> {
    Ok(ctx.call_entity(&counter("b"), "add", 5).await?)
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Count", count)
        .orchestrator("ReportFailure", report_failure)
        .orchestrator("Transfer", transfer)
        .orchestrator("LeakLock", leak_lock)
        .orchestrator("LockAndContinue", lock_and_continue)
        .orchestrator("BreakARule", break_a_rule)
        .orchestrator("CallB", call_b)
        .orchestrator("TwiceInSection", twice_in_section)
}

replay_table! { registry;
    call_entity_sends_the_call_and_waits_for_its_answer: "
        ---
        OrchestratorStarted @0
        ExecutionStarted Count null
    " => "
        CallEntity #0 @counter@a add 5
    ";

    an_answer_matched_by_request_id_resumes_the_code_and_signals_follow_now_and_scheduled: "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationCalled #0 @counter@a add 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationCompleted #0 7
    " => "
        SignalEntity #1 @counter@b add 1
        SignalEntity #2 @counter@c reset @62 null
        Complete #3 Completed 7
    ";

    an_answer_for_another_request_is_ignored: "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationCalled #0 @counter@a add 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationCompleted #9 7
    " => "";

    a_failed_entity_call_is_a_task_error_naming_the_entity_and_the_operation: r#"
        OrchestratorStarted @0
        ExecutionStarted ReportFailure null
        EntityOperationCalled #0 @account@a withdraw 50
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityOperationFailed #0 InsufficientFunds: balance 10 is less than 50
    "# => r#"
        Complete #1 Completed {"cause":"InsufficientFunds","kind":"Entity","message":"Entity \
            '@account@a withdraw' (#0) failed: balance 10 is less than \
            50","name":"@account@a withdraw"}
    "#;

    lock_entities_sends_one_sorted_deduplicated_lock_request: r#"
        ---
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
    "# => "
        LockEntities #0 @account@a,@account@b
    ";

    a_granted_lock_lets_the_code_call_the_locked_entities: r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
        EntityLockRequested #0 @account@a,@account@b
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityLockGranted #0
    "# => "
        CallEntity #1 @account@b withdraw 5
    ";

    releasing_the_section_unlocks_each_entity_before_the_next_call: r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
        EntityLockRequested #0 @account@a,@account@b
        OrchestratorCompleted
        OrchestratorStarted @1
        EntityLockGranted #0
        EntityOperationCalled #1 @account@b withdraw 5
        OrchestratorCompleted
        OrchestratorStarted @2
        EntityOperationCompleted #1 5
        EntityOperationCalled #2 @account@a deposit 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @3
        EntityOperationCompleted #2 15
    "# => "
        UnlockEntity #3 @account@a
        UnlockEntity #4 @account@b
        ScheduleTask #5 Audit null
    ";

    a_failure_inside_the_section_releases_the_locks_before_the_orchestration_fails: r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
        EntityLockRequested #0 @account@a,@account@b
        OrchestratorCompleted
        OrchestratorStarted @1
        EntityLockGranted #0
        EntityOperationCalled #1 @account@b withdraw 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationFailed #1 InsufficientFunds: too little
    "# => "
        UnlockEntity #2 @account@a
        UnlockEntity #3 @account@b
        Complete #4 Failed TaskFailed: Entity '@account@b withdraw' (#1) failed: too little \
            > InsufficientFunds: too little
    ";

    a_leaked_guard_is_released_when_the_orchestration_completes: "
        OrchestratorStarted @0
        ExecutionStarted LeakLock null
        EntityLockRequested #0 @counter@a
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityLockGranted #0
    " => "
        UnlockEntity #1 @counter@a
        Complete #2 Completed null
    ";

    continue_as_new_releases_the_locks_first: "
        OrchestratorStarted @0
        ExecutionStarted LockAndContinue 0
        EntityLockRequested #0 @counter@a
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityLockGranted #0
    " => "
        UnlockEntity #1 @counter@a
        Complete #2 ContinuedAsNew 1
    ";

    a_released_section_replays_from_history_with_its_recorded_unlocks: r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
        EntityLockRequested #0 @account@a,@account@b
        OrchestratorCompleted
        OrchestratorStarted @1
        EntityLockGranted #0
        EntityOperationCalled #1 @account@b withdraw 5
        OrchestratorCompleted
        OrchestratorStarted @2
        EntityOperationCompleted #1 5
        EntityOperationCalled #2 @account@a deposit 5
        OrchestratorCompleted
        OrchestratorStarted @3
        EntityOperationCompleted #2 15
        EntityUnlockSent #3 @account@a #0
        EntityUnlockSent #4 @account@b #0
        TaskScheduled #5 Audit null
        OrchestratorCompleted
        ---
        OrchestratorStarted @4
        TaskCompleted #5 null
    "# => r#"
        Complete #6 Completed "moved"
    "#;

    an_answered_call_makes_its_locked_entity_callable_again: "
        OrchestratorStarted @0
        ExecutionStarted TwiceInSection null
        EntityLockRequested #0 @counter@a
        OrchestratorCompleted
        OrchestratorStarted @1
        EntityLockGranted #0
        EntityOperationCalled #1 @counter@a add 1
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationCompleted #1 1
    " => "
        CallEntity #2 @counter@a add 1
    ";

    entity_answers_wait_while_the_instance_is_suspended: "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationCalled #0 @counter@a add 5
        OrchestratorCompleted
        OrchestratorStarted @1
        ExecutionSuspended
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationCompleted #0 7
    " => "";

    a_held_entity_answer_is_delivered_on_resume: "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationCalled #0 @counter@a add 5
        OrchestratorCompleted
        OrchestratorStarted @1
        ExecutionSuspended
        OrchestratorCompleted
        OrchestratorStarted @2
        EntityOperationCompleted #0 7
        OrchestratorCompleted
        ---
        OrchestratorStarted @3
        ExecutionResumed
    " => "
        SignalEntity #1 @counter@b add 1
        SignalEntity #2 @counter@c reset @63 null
        Complete #3 Completed 7
    ";
}

/// The history of `BreakARule` up to its lock being granted, then the rule under test.
fn rule_history(rule: &str) -> String {
    format!(
        r#"
        OrchestratorStarted @0
        ExecutionStarted BreakARule "{rule}"
        EntityLockRequested #0 @counter@a
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityLockGranted #0
        "#
    )
}

replay_table! { registry;
    calling_an_entity_the_section_has_not_locked_is_a_locking_rules_violation:
        &rule_history("call-unlocked") => r#"
        UnlockEntity #1 @counter@a
        Complete #2 Completed ["LockingRulesViolation",true,"cannot call @counter@z from a \
            critical section that has not locked it (locked: @counter@a)"]
    "#;

    a_second_call_to_a_locked_entity_while_the_first_is_pending_is_a_violation:
        &rule_history("call-twice") => r#"
        CallEntity #1 @counter@a get null
        UnlockEntity #2 @counter@a
        Complete #3 Completed ["LockingRulesViolation",true,"cannot call @counter@a from a \
            critical section while a prior call to it is still pending"]
    "#;

    locking_again_inside_a_critical_section_is_a_violation:
        &rule_history("nested-lock") => r#"
        UnlockEntity #1 @counter@a
        Complete #2 Completed ["LockingRulesViolation",true,"cannot lock entities from within a \
            critical section"]
    "#;

    calling_a_sub_orchestration_inside_a_critical_section_is_a_violation:
        &rule_history("sub-orchestration") => r#"
        UnlockEntity #1 @counter@a
        Complete #2 Completed ["LockingRulesViolation",true,"cannot call sub-orchestration 'Child' \
            from a critical section (release the locks first)"]
    "#;

    signalling_a_locked_entity_fails_the_orchestration_and_releases_the_lock:
        &rule_history("signal-locked") => "
        UnlockEntity #1 @counter@a
        Complete #2 Failed LockingRulesViolation: cannot signal @counter@a from the critical section \
            that has locked it (call it instead) [non-retriable]
    ";

    calling_before_the_lock_is_granted_is_a_violation: r#"
        ---
        OrchestratorStarted @0
        ExecutionStarted BreakARule "call-before-grant"
    "# => r#"
        LockEntities #0 @counter@a
        UnlockEntity #1 @counter@a
        Complete #2 Completed ["LockingRulesViolation","cannot call @counter@a: await the lock \
            request (lock_entities) before calling an entity"]
    "#;
}

#[test]
fn an_entity_call_to_another_entity_than_history_recorded_is_nondeterminism() {
    let history = "
        OrchestratorStarted @0
        ExecutionStarted CallB null
        EntityOperationCalled #0 @counter@a add 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityOperationCompleted #0 5
    ";
    let response = replay(&registry(), history);
    let diff = response.nondeterminism.expect("a diff");
    assert_eq!(diff.sequence_id, 0);
    assert_eq!(
        diff.to_string(),
        "history has call_entity \"@counter@a add\" (EntityOperationCalled) as call #0, but the \
         code now makes call_entity \"@counter@b add\" (EntityOperationCalled) as call #0"
    );
    assert!(render_actions(&response.actions).starts_with("Complete #1 Failed NonDeterminism"));
}

#[test]
fn a_lock_set_that_changed_is_nondeterminism() {
    let history = r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer {"from":"b","to":"a","amount":5}
        EntityLockRequested #0 @account@a,@account@c
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        EntityLockGranted #0
    "#;
    let diff = replay(&registry(), history).nondeterminism.expect("a diff");
    assert_eq!(
        diff.to_string(),
        "history has lock_entities \"@account@a, @account@c\" (EntityLockRequested) as call #0, \
         but the code now makes lock_entities \"@account@a, @account@b\" (EntityLockRequested) as \
         call #0"
    );
}

#[test]
fn a_call_replayed_answers_to_the_request_id_history_recorded() {
    // Recorded by a host with its own ids: the code's guids differ, history's id wins.
    let history = "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationCalled #0 req=recorded-id @counter@a add 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        EntityOperationCompleted recorded-id 7
    ";
    let response = replay(&registry(), history);
    assert_eq!(
        render_actions(&response.actions),
        lines(
            "
            SignalEntity #1 @counter@b add 1
            SignalEntity #2 @counter@c reset @62 null
            Complete #3 Completed 7
            "
        )
    );
}

#[test]
fn request_ids_are_deterministic_guids_the_same_on_every_replay() {
    let first = replay(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted Count null",
    );
    let second = replay(
        &registry(),
        "---\nOrchestratorStarted @0\nExecutionStarted Count null",
    );
    assert_eq!(first.actions, second.actions);
    let durable_sdk::protocol::ActionKind::CallEntity {
        request_id,
        parent_instance_id,
        parent_execution_id,
        ..
    } = &first.actions[0].kind
    else {
        panic!("expected a call: {:?}", first.actions);
    };
    assert!(uuid_like(request_id), "{request_id}");
    assert_eq!(
        (parent_instance_id.as_str(), parent_execution_id.as_str()),
        (support::INSTANCE, support::EXECUTION)
    );
}

fn uuid_like(text: &str) -> bool {
    text.len() == 36 && text.chars().filter(|c| *c == '-').count() == 4
}

#[test]
fn the_entity_task_kind_is_named_entity() {
    assert_eq!(TaskKind::Entity.to_string(), "Entity");
    assert_eq!(LOCKING_RULES_VIOLATION, "LockingRulesViolation");
}

// End to end: the same orchestrations against real entities in the simulated host.

async fn counter_entity(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let mut value: i64 = ctx.state_or_default()?;
    if ctx.is_operation("add") {
        value += ctx.input::<i64>()?;
    } else if ctx.is_operation("reset") {
        value = 0;
    } else if !ctx.is_operation("get") {
        return Err(ctx.unknown_operation());
    }
    ctx.set_state(value);
    Ok(value)
}

async fn account_entity(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let mut balance: i64 = ctx.state_or_default()?;
    if ctx.is_operation("deposit") {
        balance += ctx.input::<i64>()?;
    } else if ctx.is_operation("withdraw") {
        let amount: i64 = ctx.input()?;
        if amount > balance {
            return Err(FailureDetails::new(
                "InsufficientFunds",
                format!("balance {balance} is less than {amount}"),
            ));
        }
        balance -= amount;
    } else if !ctx.is_operation("balance") {
        return Err(ctx.unknown_operation());
    }
    ctx.set_state(balance);
    Ok(balance)
}

async fn audit(_ctx: durable_sdk::ActivityContext, _input: ()) -> Result<(), FailureDetails> {
    Ok(())
}

fn live_registry() -> Registry {
    registry()
        .entity("Counter", counter_entity)
        .entity("Account", account_entity)
        .activity("Audit", audit)
}

fn state(host: &Host<'_>, entity: &str) -> Option<Value> {
    host.entities
        .get(entity)
        .and_then(|entity| entity.state.clone())
}

#[test]
fn end_to_end_a_call_gets_the_entitys_answer_and_signals_arrive_now_and_later() {
    let registry = live_registry();
    let mut host = Host::new(&registry, 4, "count", "Count", Value::Null, Vec::new());
    host.signal_entity("@counter@a", "add", json!(2));
    host.signal_entity("@counter@c", "add", json!(9));
    host.run(&[], 200);
    assert_eq!(host.root().status, RuntimeStatus::Completed);
    assert_eq!(host.root().output, json!(7));
    assert_eq!(state(&host, "@counter@a"), Some(json!(7)));
    assert_eq!(state(&host, "@counter@b"), Some(json!(1)));
    // The scheduled reset came an hour later and ran after the earlier signal.
    assert_eq!(state(&host, "@counter@c"), Some(json!(0)));
    check_every_prefix_replays_like_the_live_run(&registry, host.root());
}

#[test]
fn end_to_end_a_transfer_moves_money_under_locks_and_releases_them() {
    let registry = live_registry();
    let input = json!({"from": "a", "to": "b", "amount": 30});
    let mut host = Host::new(&registry, 4, "transfer", "Transfer", input, Vec::new());
    host.signal_entity("@account@a", "deposit", json!(100));
    host.run(&[], 200);
    assert_eq!(host.root().status, RuntimeStatus::Completed);
    assert_eq!(state(&host, "@account@a"), Some(json!(70)));
    assert_eq!(state(&host, "@account@b"), Some(json!(30)));
    assert!(
        host.entities
            .values()
            .all(|entity| entity.locked_by.is_none())
    );
    check_every_prefix_replays_like_the_live_run(&registry, host.root());
}

#[test]
fn end_to_end_a_failed_withdrawal_fails_the_transfer_and_leaves_no_lock_behind() {
    let registry = live_registry();
    let input = json!({"from": "a", "to": "b", "amount": 30});
    let mut host = Host::new(&registry, 4, "transfer", "Transfer", input, Vec::new());
    host.run(&[], 200);
    assert_eq!(host.root().status, RuntimeStatus::Failed);
    let failure: FailureDetails = serde_json::from_value(host.root().output.clone()).unwrap();
    assert_eq!(failure.root_cause().error_type, "InsufficientFunds");
    assert!(
        host.entities
            .values()
            .all(|entity| entity.locked_by.is_none())
    );
    // The failed withdrawal left the account as it was (no state: never deposited to).
    assert_eq!(state(&host, "@account@a"), None);
    check_every_prefix_replays_like_the_live_run(&registry, host.root());
}

#[test]
fn end_to_end_every_interleaving_of_a_transfer_with_client_signals_replays_like_the_live_run() {
    let registry = live_registry();
    for seed in 0u8..40 {
        let choices: Vec<u8> = (0..200u32)
            .map(|step| (u32::from(seed) * 31 + step * 17) as u8 % 7)
            .collect();
        let input = json!({"from": "a", "to": "b", "amount": 30});
        let mut host = Host::new(&registry, 2, "transfer", "Transfer", input, Vec::new());
        host.signal_entity("@account@a", "deposit", json!(100));
        host.signal_entity("@account@b", "withdraw", json!(1));
        host.run(&choices, 400);
        let root = host.root();
        assert!(root.status.is_terminal(), "seed {seed}: {:?}", root.status);
        // Money is conserved whatever the order: 100 in, 30 moved, maybe 1 withdrawn from b.
        let a = state(&host, "@account@a")
            .unwrap_or(json!(0))
            .as_i64()
            .unwrap();
        let b = state(&host, "@account@b")
            .unwrap_or(json!(0))
            .as_i64()
            .unwrap();
        assert!(a + b == 100 || a + b == 99, "seed {seed}: a={a} b={b}");
        assert!(
            host.entities
                .values()
                .all(|entity| entity.locked_by.is_none())
        );
        check_every_prefix_replays_like_the_live_run(&registry, root);
    }
}

#[test]
fn the_text_form_of_entity_events_reads_back_as_written() {
    let text = r#"
        OrchestratorStarted @0
        ExecutionStarted Transfer null
        EntityOperationSignaled #0 @counter@a add 1
        EntityOperationSignaled #1 req=r-1 @counter@a reset @90 null
        EntityOperationCalled #2 @counter@a get null
        EntityLockRequested #3 @account@a,@account@b
        OrchestratorCompleted
        OrchestratorStarted @1
        EntityOperationCompleted #2 {"n":1}
        EntityOperationFailed #2 TaskFailed: outer > InsufficientFunds: too little [non-retriable]
        EntityLockGranted #3
        EntityUnlockSent #4 @account@a #3
        OrchestratorCompleted
    "#;
    let events = support::events(text);
    assert_eq!(support::render_events(&events), lines(text));
    let durable_sdk::EventKind::EntityOperationSignaled {
        request_id,
        scheduled_time,
        ..
    } = &events[3].kind
    else {
        panic!("expected a signal: {:?}", events[3]);
    };
    assert_eq!(request_id, "r-1");
    assert_eq!(*scheduled_time, Some(support::at(90)));
}

#[test]
fn a_signal_where_history_recorded_a_call_is_nondeterminism() {
    let history = "
        OrchestratorStarted @0
        ExecutionStarted Count null
        EntityOperationSignaled #0 @counter@a add 5
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
    ";
    let diff = replay(&registry(), history).nondeterminism.expect("a diff");
    assert_eq!(
        diff.to_string(),
        "history has signal_entity \"@counter@a add\" (EntityOperationSignaled) as call #0, but \
         the code now makes call_entity \"@counter@a add\" (EntityOperationCalled) as call #0"
    );
}
