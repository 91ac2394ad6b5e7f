//! History in, actions out: every event of docs/semantics.md#history driving the code, the episode
//! protocol of section 2 (confirmed actions are not sent again, unmatched completions are ignored),
//! the orchestrator's clock, deterministic GUIDs, replay-safe logs and custom status.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::Duration;
use durable_sdk::protocol::LogLine;
use durable_sdk::{
    EventKind, FailureDetails, LogLevel, OrchestrationContext, ParentInstance, Registry,
};
use serde_json::{Value, json};
use support::{
    at, lines, parse_history, render_events, render_time, replay, replay_table, request,
};

/// Chaining: the first sample of every Durable Functions tutorial.
async fn hello_sequence(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<Vec<String>, FailureDetails> {
    let mut greetings = Vec::new();
    for city in ["Tokyo", "Seattle", "London"] {
        greetings.push(ctx.call_activity::<String>("SayHello", city).await?);
    }
    Ok(greetings)
}

/// Every kind of durable call, one after the other.
async fn tour(ctx: OrchestrationContext, _input: ()) -> Result<Value, FailureDetails> {
    let greeting: String = ctx.call_activity("SayHello", "Tokyo").await?;
    let child: String = ctx.call_sub_orchestrator("Child", &greeting).await?;
    ctx.create_timer_after(std::time::Duration::from_secs(3600))
        .await?;
    let approved: bool = ctx.wait_for_external_event("Approval").await?;
    ctx.send_event("auditor", "Approved", approved);
    Ok(json!([greeting, child, approved]))
}

async fn child(_ctx: OrchestrationContext, greeting: String) -> Result<String, FailureDetails> {
    Ok(format!("child got {greeting}"))
}

/// Reports the orchestrator's "now" at each point it woke up.
async fn clock(ctx: OrchestrationContext, _input: ()) -> Result<Vec<String>, FailureDetails> {
    let started = ctx.current_utc_date_time();
    ctx.create_timer(started + Duration::minutes(60)).await?;
    let woke = ctx.current_utc_date_time();
    ctx.create_timer(woke + Duration::minutes(30)).await?;
    let done = ctx.current_utc_date_time();
    Ok([started, woke, done].iter().map(render_time).collect())
}

/// One GUID before a timer (shown as custom status), one after.
async fn guids(ctx: OrchestrationContext, _input: ()) -> Result<Vec<String>, FailureDetails> {
    let first = ctx.new_guid().to_string();
    ctx.set_custom_status(&first);
    ctx.create_timer_after(std::time::Duration::from_secs(60))
        .await?;
    let second = ctx.new_guid().to_string();
    Ok(vec![first, second])
}

/// Logs, custom status and `is_replaying` at each step.
async fn diary(ctx: OrchestrationContext, _input: ()) -> Result<(), FailureDetails> {
    ctx.log_info(format!("starting, replaying={}", ctx.is_replaying()));
    ctx.set_custom_status("writing page 1");
    let first: String = ctx.call_activity("Write", 1).await?;
    ctx.log_warn(format!("wrote {first}, replaying={}", ctx.is_replaying()));
    ctx.set_custom_status(json!({ "pages": 1 }));
    let _second: String = ctx.call_activity("Write", 2).await?;
    ctx.log(LogLevel::Debug, "done");
    Ok(())
}

/// Returns what it knows of its parent.
async fn who_is_my_parent(
    ctx: OrchestrationContext,
    _input: (),
) -> Result<Option<ParentInstance>, FailureDetails> {
    Ok(ctx.parent())
}

fn registry() -> Registry {
    Registry::new()
        .orchestrator("HelloSequence", hello_sequence)
        .orchestrator("Tour", tour)
        .orchestrator("Child", child)
        .orchestrator("Clock", clock)
        .orchestrator("Guids", guids)
        .orchestrator("Diary", diary)
        .orchestrator("WhoIsMyParent", who_is_my_parent)
}

fn hello_only() -> Registry {
    Registry::new().orchestrator("HelloSequence", hello_sequence)
}

replay_table! { registry;
    execution_started_runs_the_code_up_to_its_first_durable_call: "
        ---
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
    " => r#"
        ScheduleTask #0 SayHello "Tokyo"
    "#;

    task_completed_hands_the_result_to_the_code: r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
    "# => r#"
        ScheduleTask #1 SayHello "Seattle"
    "#;

    the_last_result_completes_the_orchestration_with_its_output: r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
        TaskScheduled #1 SayHello "Seattle"
        OrchestratorCompleted
        OrchestratorStarted @2
        TaskCompleted #1 "Hello Seattle!"
        TaskScheduled #2 SayHello "London"
        OrchestratorCompleted
        ---
        OrchestratorStarted @3
        TaskCompleted #2 "Hello London!"
    "# => r#"
        Complete #3 Completed ["Hello Tokyo!","Hello Seattle!","Hello London!"]
    "#;

    an_action_history_confirmed_is_not_sent_again: r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
    "# => "";

    sub_orchestration_instance_created_gets_the_default_child_id: r#"
        OrchestratorStarted @0
        ExecutionStarted Tour null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
    "# => r#"
        CreateSubOrchestration #1 Child inst:1 "Hello Tokyo!"
    "#;

    sub_orchestration_instance_completed_hands_the_child_output_to_the_code: r#"
        OrchestratorStarted @0
        ExecutionStarted Tour null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
        SubOrchestrationInstanceCreated #1 Child inst:1 "Hello Tokyo!"
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        SubOrchestrationInstanceCompleted #1 "child got Hello Tokyo!"
    "# => "
        // An hour after this episode's OrchestratorStarted.
        CreateTimer #2 @62
    ";

    timer_fired_wakes_the_code: r#"
        OrchestratorStarted @0
        ExecutionStarted Tour null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
        SubOrchestrationInstanceCreated #1 Child inst:1 "Hello Tokyo!"
        OrchestratorCompleted
        OrchestratorStarted @2
        SubOrchestrationInstanceCompleted #1 "child got Hello Tokyo!"
        TimerCreated #2 @62
        OrchestratorCompleted
        ---
        OrchestratorStarted @62
        TimerFired #2 @62
        EventRaised Approval true
    "# => r#"
        SendEvent #3 auditor Approved true
        Complete #4 Completed ["Hello Tokyo!","child got Hello Tokyo!",true]
    "#;

    /// The whole tour: every past episode is checked against the actions the code makes (see
    /// `assert_actions`), including EventSent and ExecutionCompleted.
    replaying_a_completed_history_makes_no_actions: r#"
        OrchestratorStarted @0
        ExecutionStarted Tour null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
        SubOrchestrationInstanceCreated #1 Child inst:1 "Hello Tokyo!"
        OrchestratorCompleted
        OrchestratorStarted @2
        SubOrchestrationInstanceCompleted #1 "child got Hello Tokyo!"
        TimerCreated #2 @62
        OrchestratorCompleted
        OrchestratorStarted @62
        TimerFired #2 @62
        OrchestratorCompleted
        OrchestratorStarted @70
        EventRaised Approval true
        EventSent #3 auditor Approved true
        ExecutionCompleted #4 Completed ["Hello Tokyo!","child got Hello Tokyo!",true]
        OrchestratorCompleted
        ---
        OrchestratorStarted @80
        EventRaised Approval false
    "# => "";

    current_utc_date_time_is_the_latest_orchestrator_started: "
        OrchestratorStarted @0
        ExecutionStarted Clock null
        TimerCreated #0 @60
        OrchestratorCompleted
        // The host ran this episode late: the code sees @75, not the timer's @60.
        OrchestratorStarted @75
        TimerFired #0 @60
        TimerCreated #1 @105
        OrchestratorCompleted
        ---
        OrchestratorStarted @106
        TimerFired #1 @105
    " => r#"
        Complete #2 Completed ["@0","@75","@106"]
    "#;

    a_completion_that_matches_no_task_is_ignored: r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #7 "stray"
        TimerFired #8 @1
    "# => "";

    a_second_completion_of_the_same_task_is_ignored: r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #0 "Hello Tokyo!"
        TaskCompleted #0 "Hello again!"
    "# => r#"
        ScheduleTask #1 SayHello "Seattle"
    "#;
}

replay_table! { hello_only;
    an_unknown_orchestrator_fails_the_execution: "
        ---
        OrchestratorStarted @0
        ExecutionStarted Missing null
    " => "
        Complete #0 Failed OrchestratorNotFound: no orchestrator named 'Missing' is registered \
        (known: HelloSequence) [non-retriable]
    ";
}

#[test]
fn unmatched_completions_are_reported_as_warnings() {
    let response = replay(
        &registry(),
        r#"
        OrchestratorStarted @0
        ExecutionStarted HelloSequence null
        TaskScheduled #0 SayHello "Tokyo"
        OrchestratorCompleted
        ---
        OrchestratorStarted @1
        TaskCompleted #7 "stray"
        TimerFired #8 @1
        "#,
    );
    assert_eq!(
        response.warnings,
        [
            "a completion for task #7 matched no pending task of the code and was ignored",
            "a TimerFired for task #8 matched no pending task of the code and was ignored",
        ]
    );
}

#[test]
fn execution_started_tells_a_sub_orchestration_its_parent() {
    let mut request = request(
        "
        ---
        OrchestratorStarted @0
        ExecutionStarted WhoIsMyParent null
        ",
    );
    let parent = ParentInstance {
        instance_id: "order-7".to_string(),
        execution_id: "order-7-e1".to_string(),
        name: "Checkout".to_string(),
        task_scheduled_id: 4,
    };
    if let EventKind::ExecutionStarted { parent: slot, .. } = &mut request.new_events[1].kind {
        *slot = Some(parent.clone());
    }
    let response = registry().orchestrate_uncached(request);
    let [action] = &response.actions[..] else {
        panic!("expected one action, got {:?}", response.actions);
    };
    assert_eq!(
        action.kind,
        durable_sdk::protocol::ActionKind::CompleteOrchestration {
            status: durable_sdk::RuntimeStatus::Completed,
            result: serde_json::to_value(&parent).unwrap(),
            failure: None,
            carryover_events: Vec::new(),
        }
    );
}

const GUIDS_FIRST_EPISODE: &str = "
    OrchestratorStarted @0
    ExecutionStarted Guids null
    TimerCreated #0 @1
    OrchestratorCompleted
";

#[test]
fn new_guid_is_the_same_on_every_replay_and_new_for_every_call() {
    let registry = registry();
    let live = replay(&registry, &format!("---\n{GUIDS_FIRST_EPISODE}"));
    let first_live = live.custom_status.unwrap();
    let finished = replay(
        &registry,
        &format!("{GUIDS_FIRST_EPISODE}\n---\nOrchestratorStarted @1\nTimerFired #0 @1"),
    );
    let durable_sdk::protocol::ActionKind::CompleteOrchestration { result, .. } =
        &finished.actions[0].kind
    else {
        panic!("expected a completion");
    };
    let guids: Vec<String> = serde_json::from_value(result.clone()).unwrap();
    assert_eq!(
        json!(guids[0]),
        first_live,
        "replay recomputes the same GUID"
    );
    assert_ne!(guids[0], guids[1], "each call gets a new GUID");
    for guid in &guids {
        assert_eq!(&guid[14..15], "5", "a UUIDv5: {guid}");
    }
}

#[test]
fn new_guid_depends_on_the_instance() {
    let registry = registry();
    let history = format!("---\n{GUIDS_FIRST_EPISODE}");
    let mut elsewhere = request(&history);
    elsewhere.instance_id = "another-instance".to_string();
    assert_ne!(
        registry
            .orchestrate_uncached(request(&history))
            .custom_status,
        registry.orchestrate_uncached(elsewhere).custom_status
    );
}

const DIARY_TWO_EPISODES: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted Diary null
    TaskScheduled #0 Write 1
    OrchestratorCompleted
    ---
    OrchestratorStarted @1
    TaskCompleted #0 "page 1"
"#;

fn log_line(level: LogLevel, message: &str, replaying: bool, minutes: i64) -> LogLine {
    LogLine {
        level,
        message: message.to_string(),
        replaying,
        timestamp: at(minutes),
    }
}

#[test]
fn log_lines_written_while_replaying_are_not_reported() {
    let response = replay(&registry(), DIARY_TWO_EPISODES);
    assert_eq!(
        response.logs,
        [log_line(
            LogLevel::Warn,
            "wrote page 1, replaying=false",
            false,
            1
        )]
    );
}

#[test]
fn include_replay_logs_also_reports_replayed_lines_marked_as_replaying() {
    let mut request = request(DIARY_TWO_EPISODES);
    request.include_replay_logs = true;
    let response = registry().orchestrate_uncached(request);
    assert_eq!(
        response.logs,
        [
            log_line(LogLevel::Info, "starting, replaying=true", true, 0),
            log_line(LogLevel::Warn, "wrote page 1, replaying=false", false, 1),
        ]
    );
}

#[test]
fn custom_status_is_the_latest_value_the_code_set() {
    let registry = registry();
    let first = replay(
        &registry,
        "---\nOrchestratorStarted @0\nExecutionStarted Diary null",
    );
    assert_eq!(first.custom_status, Some(json!("writing page 1")));
    let second = replay(&registry, DIARY_TWO_EPISODES);
    assert_eq!(second.custom_status, Some(json!({ "pages": 1 })));
    let third = replay(
        &registry,
        r#"
        OrchestratorStarted @0
        ExecutionStarted Diary null
        TaskScheduled #0 Write 1
        OrchestratorCompleted
        OrchestratorStarted @1
        TaskCompleted #0 "page 1"
        TaskScheduled #1 Write 2
        OrchestratorCompleted
        ---
        OrchestratorStarted @2
        "#,
    );
    assert_eq!(
        third.custom_status,
        Some(json!({ "pages": 1 })),
        "kept while the code sets nothing new"
    );
}

/// The text form the tables use means what it says: rendering a parsed history gives it back.
#[test]
fn the_text_form_of_a_history_round_trips() {
    let text = r#"
        OrchestratorStarted @0
        ExecutionStarted Tour null
        TaskScheduled #0 SayHello "Tokyo"
        TaskCompleted #0 "Hello Tokyo!"
        TaskFailed #1 TaskFailed: Activity 'Charge' (#3) failed: no > CardDeclined: no [non-retriable]
        SubOrchestrationInstanceCreated #2 Child inst:2 {"a":1}
        SubOrchestrationInstanceCompleted #2 [1,2]
        SubOrchestrationInstanceFailed #2 Panic: boom
        TimerCreated #3 @1:30
        TimerFired #3 @1:30
        EventRaised Approval true
        EventSent #4 other Approval null
        ExecutionSuspended for review
        ExecutionResumed
        ExecutionTerminated "enough"
        ContinueAsNew #5 5
        ExecutionCompleted #6 Completed "done"
        ExecutionCompleted #6 Failed Boom: it broke
        OrchestratorCompleted
    "#;
    let (past, new) = parse_history(text);
    assert!(new.is_empty());
    assert_eq!(render_events(&past), lines(text));
}
