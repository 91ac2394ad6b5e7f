//! Property: replay is a pure function of history. For generated orchestrations, run live by the
//! simulated host (support/host.rs) through one session cache in a generated order, replaying
//! ANY prefix of the recorded history at an episode boundary gives the actions, custom status and
//! log lines of the live run, with full replay and with a fresh session cache
//! (docs/semantics.md#episodes; executor.rs: "continuing a cached session ... gives the same
//! actions as replaying the whole history").
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use durable_sdk::{
    ActivityContext, EntityContext, EntityId, FailureDetails, OrchestrationContext, Registry,
    RetryPolicy, RuntimeStatus, SubOrchestrationOptions, when_all, when_any,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;
use support::host::{Host, Scripted, check_every_prefix_replays_like_the_live_run};

/// A retry policy in generator-friendly units.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Retry {
    attempts: u32,
    first_minutes: u64,
    backoff_tenths: u32,
    max_minutes: Option<u64>,
    timeout_minutes: Option<u64>,
}

impl Retry {
    fn policy(&self) -> RetryPolicy {
        let mut policy = RetryPolicy::new(self.attempts, minutes(self.first_minutes))
            .with_backoff(f64::from(self.backoff_tenths) / 10.0);
        if let Some(max) = self.max_minutes {
            policy = policy.with_max_retry_interval(minutes(max));
        }
        if let Some(timeout) = self.timeout_minutes {
            policy = policy.with_retry_timeout(minutes(timeout));
        }
        policy
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

/// One step of a generated orchestration.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Step {
    /// `call_activity("Work")`; with `propagate`, a failure ends the orchestration (`?`).
    Call {
        input: u32,
        propagate: bool,
    },
    /// `call_activity_with_retry("Flaky")`.
    CallWithRetry {
        input: u32,
        retry: Retry,
    },
    /// `create_timer_after`.
    Timer {
        minutes: u64,
    },
    /// `when_all` over activity calls (with or without retries).
    FanOut {
        inputs: Vec<u32>,
        retry: Option<Retry>,
    },
    /// `when_any` of an external event against a timer.
    Race {
        event: String,
        minutes: u64,
    },
    /// `wait_for_external_event`.
    Wait {
        event: String,
    },
    /// `call_sub_orchestrator_with` running a nested program.
    Child {
        steps: Vec<Step>,
        retry: Option<Retry>,
    },
    /// `send_event` to this very instance.
    SendToSelf {
        event: String,
        value: u32,
    },
    /// `continue_as_new` (or `continue_as_new_keeping_events`) with the rest of the program.
    ContinueAsNew {
        keep_events: bool,
    },
    Status(u32),
    Log(u32),
    Guid,
    Now,
    Panic,
    /// `call_entity` `add` on `@tally@<key>` (a multiple of 7 fails and rolls back).
    EntityCall {
        key: u8,
        amount: u32,
    },
    /// `signal_entity` `add`, or `signal_entity_at` `delay` minutes later.
    EntitySignal {
        key: u8,
        amount: u32,
        delay: Option<u64>,
    },
    /// A critical section over `keys`: `add` to every locked tally at once, then `end` it.
    Locked {
        keys: Vec<u8>,
        amount: u32,
        end: SectionEnd,
    },
}

/// How a generated critical section ends.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum SectionEnd {
    /// `release()`.
    Release,
    /// The guard goes out of scope.
    Drop,
    /// The guard is leaked: the section lasts until the execution ends (and later entity steps
    /// break the locking rules).
    Leak,
    /// The code panics inside the section: the execution fails and releases the locks.
    Panic,
}

fn tally(key: u8) -> EntityId {
    EntityId::new("Tally", &key.to_string())
}

/// The input of the `Program` orchestrator: steps, and where to start (after a continue-as-new).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Program {
    steps: Vec<Step>,
    start: usize,
}

/// Runs a program, recording what every step saw in the output.
async fn interpret(
    ctx: OrchestrationContext,
    program: Program,
) -> Result<Vec<Value>, FailureDetails> {
    let mut trace = Vec::new();
    for (index, step) in program.steps.iter().enumerate().skip(program.start) {
        ctx.log_info(format!("step {index}: {step:?}"));
        match step {
            Step::Call { input, propagate } => {
                match ctx.call_activity::<u32>("Work", input).await {
                    Ok(value) => trace.push(json!(value)),
                    Err(error) if *propagate => return Err(error.into()),
                    Err(error) => trace.push(json!(error.to_string())),
                }
            }
            Step::CallWithRetry { input, retry } => {
                let result = ctx
                    .call_activity_with_retry::<u32>("Flaky", input, retry.policy())
                    .await;
                trace.push(outcome(result));
            }
            Step::Timer { minutes: delay } => {
                ctx.create_timer_after(minutes(*delay)).await?;
                trace.push(json!(ctx.current_utc_date_time()));
            }
            Step::FanOut { inputs, retry } => {
                let calls: Vec<_> = inputs
                    .iter()
                    .map(|input| match retry {
                        Some(retry) => {
                            ctx.call_activity_with_retry::<u32>("Flaky", input, retry.policy())
                        }
                        None => ctx.call_activity::<u32>("Work", input),
                    })
                    .collect();
                trace.push(outcome(when_all(calls).await));
            }
            Step::Race {
                event,
                minutes: delay,
            } => {
                let raised = ctx.wait_for_external_event::<Value>(event);
                let timeout = ctx.create_timer_after(minutes(*delay));
                match when_any([raised.handle(), timeout.handle()]).await {
                    0 => trace.push(json!({ "event": outcome(raised.await) })),
                    _ => trace.push(json!("timed out")),
                }
            }
            Step::Wait { event } => {
                trace.push(outcome(ctx.wait_for_external_event::<Value>(event).await));
            }
            Step::Child { steps, retry } => {
                let child = Program {
                    steps: steps.clone(),
                    start: 0,
                };
                let options = SubOrchestrationOptions {
                    instance_id: None,
                    retry: retry.as_ref().map(Retry::policy),
                };
                let result = ctx
                    .call_sub_orchestrator_with::<Value>("Program", child, options)
                    .await;
                trace.push(outcome(result));
            }
            Step::SendToSelf { event, value } => {
                ctx.send_event(&ctx.instance_id(), event, value);
            }
            Step::ContinueAsNew { keep_events } => {
                let next = Program {
                    steps: program.steps.clone(),
                    start: index + 1,
                };
                if *keep_events {
                    ctx.continue_as_new_keeping_events(next);
                } else {
                    ctx.continue_as_new(next);
                }
                return Ok(trace);
            }
            Step::Status(status) => ctx.set_custom_status(json!({ "step": index, "n": status })),
            Step::Log(n) => ctx.log_warn(format!("log {n} at {}", ctx.current_utc_date_time())),
            Step::Guid => trace.push(json!(ctx.new_guid().to_string())),
            Step::Now => trace.push(json!(ctx.current_utc_date_time())),
            Step::Panic => panic!("step {index} panics"),
            Step::EntityCall { key, amount } => {
                let result = ctx.call_entity::<i64>(&tally(*key), "add", amount).await;
                trace.push(outcome(result));
            }
            Step::EntitySignal { key, amount, delay } => match delay {
                Some(delay) => {
                    let at = ctx.current_utc_date_time()
                        + chrono::Duration::minutes(i64::try_from(*delay).unwrap());
                    ctx.signal_entity_at(&tally(*key), "add", amount, at);
                }
                None => ctx.signal_entity(&tally(*key), "add", amount),
            },
            Step::Locked { keys, amount, end } => {
                let section = match ctx.lock_entities(keys.iter().copied().map(tally)).await {
                    Ok(section) => section,
                    Err(error) => {
                        trace.push(json!({ "lock": error.to_string() }));
                        continue;
                    }
                };
                let calls: Vec<_> = section
                    .entities()
                    .iter()
                    .map(|entity| ctx.call_entity::<i64>(entity, "add", amount))
                    .collect();
                trace.push(outcome(when_all(calls).await));
                match end {
                    SectionEnd::Release => section.release(),
                    SectionEnd::Drop => drop(section),
                    SectionEnd::Leak => std::mem::forget(section),
                    SectionEnd::Panic => panic!("step {index} panics holding {section:?}"),
                }
            }
        }
    }
    Ok(trace)
}

fn outcome<T: Serialize, E: std::fmt::Display>(result: Result<T, E>) -> Value {
    match result {
        Ok(value) => json!({ "ok": value }),
        Err(error) => json!({ "error": error.to_string() }),
    }
}

/// Fails deterministically by input: multiples of 7 fail for good, multiples of 5 fail.
async fn work(_ctx: ActivityContext, input: u32) -> Result<u32, FailureDetails> {
    if input % 7 == 0 {
        return Err(
            FailureDetails::new("Fatal", format!("input {input} is fatal")).non_retriable(),
        );
    }
    if input % 5 == 0 {
        return Err(FailureDetails::new(
            "WorkFailed",
            format!("input {input} failed"),
        ));
    }
    Ok(input * 2)
}

/// Fails deterministically by input and task id, so a retry (a new task id) may succeed.
async fn flaky(ctx: ActivityContext, input: u32) -> Result<u32, FailureDetails> {
    if input % 7 == 0 {
        return Err(
            FailureDetails::new("Fatal", format!("input {input} is fatal")).non_retriable(),
        );
    }
    if (input + ctx.task_id.unsigned_abs()) % 3 != 0 {
        return Err(FailureDetails::new(
            "Flaky",
            format!("input {input} failed as task #{}", ctx.task_id),
        ));
    }
    Ok(input)
}

/// Entity `Tally`: `add` returns the new total; an amount that is a multiple of 7 fails after
/// changing the state (which rolls back).
async fn tally_entity(ctx: EntityContext) -> Result<i64, FailureDetails> {
    let total: i64 = ctx.state_or_default()?;
    let amount: u32 = ctx.input()?;
    ctx.set_state(total + i64::from(amount));
    if amount % 7 == 0 {
        return Err(FailureDetails::new("Unlucky", format!("{amount} is unlucky")).non_retriable());
    }
    Ok(total + i64::from(amount))
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("Program", interpret)
        .activity("Work", work)
        .activity("Flaky", flaky)
        .entity("Tally", tally_entity)
}

fn section_end() -> impl Strategy<Value = SectionEnd> {
    prop_oneof![
        4 => Just(SectionEnd::Release),
        4 => Just(SectionEnd::Drop),
        1 => Just(SectionEnd::Leak),
        1 => Just(SectionEnd::Panic),
    ]
}

fn retry() -> impl Strategy<Value = Retry> {
    (
        1u32..=4,
        1u64..=10,
        10u32..=30,
        proptest::option::of(1u64..=15),
        proptest::option::of(1u64..=40),
    )
        .prop_map(
            |(attempts, first_minutes, backoff_tenths, max_minutes, timeout_minutes)| Retry {
                attempts,
                first_minutes,
                backoff_tenths,
                max_minutes,
                timeout_minutes,
            },
        )
}

/// Names differ in case on purpose: event names compare case-insensitively.
fn event_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("Approval"),
        Just("approval"),
        Just("APPROVAL"),
        Just("Payment"),
        Just("payment"),
    ]
    .prop_map(str::to_string)
}

/// Steps a sub-orchestration may take: anything but waiting for events only the root receives
/// and nesting further.
fn child_step() -> BoxedStrategy<Step> {
    prop_oneof![
        12 => (0u32..40, prop::bool::weighted(0.2))
            .prop_map(|(input, propagate)| Step::Call { input, propagate }),
        8 => (0u32..40, retry()).prop_map(|(input, retry)| Step::CallWithRetry { input, retry }),
        6 => (1u64..120).prop_map(|minutes| Step::Timer { minutes }),
        8 => (prop::collection::vec(0u32..40, 0..4), proptest::option::of(retry()))
            .prop_map(|(inputs, retry)| Step::FanOut { inputs, retry }),
        4 => (event_name(), 1u64..120).prop_map(|(event, minutes)| Step::Race { event, minutes }),
        3 => (event_name(), 0u32..10).prop_map(|(event, value)| Step::SendToSelf { event, value }),
        3 => any::<bool>().prop_map(|keep_events| Step::ContinueAsNew { keep_events }),
        2 => (0u32..10).prop_map(Step::Status),
        2 => (0u32..10).prop_map(Step::Log),
        2 => Just(Step::Guid),
        2 => Just(Step::Now),
        1 => Just(Step::Panic),
        5 => (0u8..3, 0u32..30).prop_map(|(key, amount)| Step::EntityCall { key, amount }),
        4 => (0u8..3, 0u32..30, proptest::option::of(1u64..120))
            .prop_map(|(key, amount, delay)| Step::EntitySignal { key, amount, delay }),
        4 => (prop::collection::vec(0u8..3, 0..4), 0u32..30, section_end())
            .prop_map(|(keys, amount, end)| Step::Locked { keys, amount, end }),
    ]
    .boxed()
}

fn step() -> BoxedStrategy<Step> {
    prop_oneof![
        50 => child_step(),
        6 => event_name().prop_map(|event| Step::Wait { event }),
        5 => (prop::collection::vec(child_step(), 1..5), proptest::option::of(retry()))
            .prop_map(|(steps, retry)| Step::Child { steps, retry }),
    ]
    .boxed()
}

#[derive(Debug, Clone)]
enum ScriptItem {
    Raise(String, u32),
    Suspend,
    Resume,
}

/// A script of outside input: raised events, and suspensions that are always resumed later.
fn script() -> impl Strategy<Value = Vec<Scripted>> {
    let item = prop_oneof![
        8 => (event_name(), 0u32..100).prop_map(|(name, value)| ScriptItem::Raise(name, value)),
        1 => Just(ScriptItem::Suspend),
        1 => Just(ScriptItem::Resume),
    ];
    (
        prop::collection::vec(item, 0..10),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(items, terminate)| {
            let mut suspended = false;
            let mut script = Vec::new();
            for item in items {
                match item {
                    ScriptItem::Raise(name, value) => script.push(Scripted::Raise {
                        name,
                        input: json!(value),
                    }),
                    ScriptItem::Suspend if !suspended => {
                        suspended = true;
                        script.push(Scripted::Suspend);
                    }
                    ScriptItem::Resume if suspended => {
                        suspended = false;
                        script.push(Scripted::Resume);
                    }
                    ScriptItem::Suspend | ScriptItem::Resume => {}
                }
            }
            if suspended {
                script.push(Scripted::Resume);
            }
            if terminate {
                script.push(Scripted::Terminate);
            }
            script
        })
}

fn run(steps: Vec<Step>, script: Vec<Scripted>, choices: &[u8], cache_capacity: usize) {
    let registry = registry();
    let program = serde_json::to_value(Program { steps, start: 0 }).unwrap();
    let mut host = Host::new(
        &registry,
        cache_capacity,
        "root",
        "Program",
        program,
        script,
    );
    host.run(choices, 5_000);
    assert!(host.episodes_run > 0);
    if host.all_instances().count() == 1 {
        // One instance never loses its session: the live run continued it from the cache.
        assert_eq!(host.history_resends, 0);
    }
    for instance in host.all_instances() {
        check_every_prefix_replays_like_the_live_run(&registry, instance);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 256 cases by default; PROPTEST_CASES=5000 for a longer search.
        // Integration tests have no lib.rs for proptest to find: keep regressions beside this file.
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("proptest-regressions"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn replaying_any_prefix_gives_the_live_actions(
        steps in prop::collection::vec(step(), 1..14),
        script in script(),
        choices in prop::collection::vec(any::<u8>(), 0..400),
        cache_capacity in 1usize..4,
    ) {
        run(steps, script, &choices, cache_capacity);
    }
}

/// The simulated host is not vacuous: a program using every kind of step runs to completion,
/// across a continue-as-new, with a child that retries.
#[test]
fn the_simulated_host_runs_a_program_through_every_kind_of_step() {
    let retry = Retry {
        attempts: 4,
        first_minutes: 2,
        backoff_tenths: 20,
        max_minutes: Some(5),
        timeout_minutes: None,
    };
    let steps = vec![
        Step::Call {
            input: 1,
            propagate: true,
        },
        Step::CallWithRetry {
            input: 1,
            retry: retry.clone(),
        },
        Step::Timer { minutes: 30 },
        Step::FanOut {
            inputs: vec![2, 4, 5],
            retry: None,
        },
        Step::Race {
            event: "Approval".to_string(),
            minutes: 600,
        },
        Step::Status(3),
        Step::ContinueAsNew { keep_events: true },
        Step::Wait {
            event: "payment".to_string(),
        },
        Step::SendToSelf {
            event: "Approval".to_string(),
            value: 9,
        },
        Step::Wait {
            event: "APPROVAL".to_string(),
        },
        Step::Child {
            steps: vec![Step::CallWithRetry { input: 4, retry }, Step::Guid],
            retry: None,
        },
        Step::Log(1),
        Step::Now,
        Step::EntitySignal {
            key: 0,
            amount: 3,
            delay: Some(10),
        },
        Step::Locked {
            keys: vec![1, 0, 1],
            amount: 2,
            end: SectionEnd::Release,
        },
        Step::EntityCall { key: 0, amount: 1 },
    ];
    let script = vec![
        Scripted::Raise {
            name: "approval".to_string(),
            input: json!(true),
        },
        Scripted::Suspend,
        Scripted::Raise {
            name: "Payment".to_string(),
            input: json!(12),
        },
        Scripted::Resume,
    ];
    let registry = registry();
    let program = serde_json::to_value(Program { steps, start: 0 }).unwrap();
    let mut host = Host::new(&registry, 1, "root", "Program", program, script);
    host.run(&[], 5_000);
    let root = host.root();
    assert_eq!(root.status, RuntimeStatus::Completed, "{:#?}", root.output);
    assert_eq!(root.executions.len(), 2, "one continue-as-new");
    let output = root.output.as_array().unwrap();
    assert_eq!(output[0], json!({ "ok": 12 }), "the carried-over payment");
    assert_eq!(
        output[1],
        json!({ "ok": true }),
        "the older approval, not the one sent to itself"
    );
    assert!(
        host.history_resends > 0,
        "a one-session cache with a child must have resent full histories"
    );
    let totals: Vec<_> = host
        .entities
        .iter()
        .map(|(id, entity)| (id.as_str(), entity.state.clone()))
        .collect();
    assert_eq!(
        totals,
        [("@tally@0", Some(json!(6))), ("@tally@1", Some(json!(2)))]
    );
    assert!(
        host.entities
            .values()
            .all(|entity| entity.locked_by.is_none())
    );
    for instance in host.all_instances() {
        check_every_prefix_replays_like_the_live_run(&registry, instance);
    }
}

/// However a critical section ends (released, dropped, leaked, or the code panics in it), no
/// entity stays locked once the orchestration is over, and a leaked section makes later entity
/// steps break the locking rules instead of silently calling unlocked entities.
#[test]
fn no_critical_section_outlives_its_orchestration() {
    for end in [
        SectionEnd::Release,
        SectionEnd::Drop,
        SectionEnd::Leak,
        SectionEnd::Panic,
    ] {
        let steps = vec![
            Step::Locked {
                keys: vec![0, 1],
                amount: 7,
                end,
            },
            Step::EntityCall { key: 2, amount: 1 },
        ];
        let registry = registry();
        let program = serde_json::to_value(Program { steps, start: 0 }).unwrap();
        let mut host = Host::new(&registry, 2, "root", "Program", program, Vec::new());
        host.run(&[], 1_000);
        let root = host.root();
        assert!(
            host.entities
                .values()
                .all(|entity| entity.locked_by.is_none()),
            "{end:?}"
        );
        match end {
            SectionEnd::Panic => assert_eq!(root.status, RuntimeStatus::Failed),
            _ => assert_eq!(root.status, RuntimeStatus::Completed, "{end:?}"),
        }
        if let SectionEnd::Leak = end {
            let error = root.output[1]["error"].as_str().unwrap();
            assert!(
                error.contains(
                    "cannot call @tally@2 from a critical section that has not locked it"
                ),
                "{error}"
            );
        }
        // 7 is unlucky: both adds failed and rolled back, leaving no state behind.
        assert_eq!(host.entities["@tally@0"].state, None, "{end:?}");
        check_every_prefix_replays_like_the_live_run(&registry, root);
    }
}
