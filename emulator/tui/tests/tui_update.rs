//! The terminal UI's update function (docs/architecture.md#tests-in-layers): keys and engine events
//! in, model out, with the real engine and the built-in samples behind the executor. One test per
//! action.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_testing::tui::Harness;
use durable_emu_tui::command::Command;
use durable_emu_tui::model::{Overlay, SortKey, View};
use durable_emu_tui::msg::Msg;
use durable_sdk::history::{EventKind, RuntimeStatus};
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

fn harness() -> Harness {
    Harness::new(100, 30)
}

#[test]
fn start_from_the_command_line_selects_the_instance_and_history_follows_it_live() {
    let mut ui = harness();
    ui.command("start HelloSequence");
    ui.wait_until("HelloSequence to complete", |model| {
        model.selected().is_some_and(|row| {
            row.name == "HelloSequence" && row.status == RuntimeStatus::Completed
        })
    });
    ui.press(KeyCode::Enter);
    assert_eq!(ui.model.view, View::History);
    ui.wait_until("the history to load", |model| {
        model
            .history
            .as_ref()
            .is_some_and(|history| !history.loading)
    });
    let history = ui.model.history.as_ref().unwrap();
    let last = history.events().last().unwrap();
    assert!(matches!(last.kind, EventKind::OrchestratorCompleted));
    assert_eq!(
        history.selected,
        history.events().len() - 1,
        "follows the end"
    );
    // Enter opens the event's JSON.
    ui.press(KeyCode::Up);
    ui.press(KeyCode::Enter);
    match &ui.model.overlay {
        Some(Overlay::Text { lines, .. }) => {
            assert!(lines.iter().any(|line| line.contains("ExecutionCompleted")));
        }
        other => panic!("expected the JSON overlay, got {other:?}"),
    }
    ui.press(KeyCode::Esc);
    assert!(ui.model.overlay.is_none());
}

fn clear_input(ui: &mut Harness) {
    ui.send(Msg::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    ui.settle();
}

fn start_form(ui: &Harness) -> &durable_emu_tui::model::StartForm {
    match &ui.model.overlay {
        Some(Overlay::Start(form)) => form,
        other => panic!("the start form is open, not {other:?}"),
    }
}

/// Moves the start form's selection to `name` (the list is sorted, the form opens on the first).
fn choose(ui: &mut Harness, name: &str) {
    let form = start_form(ui);
    let target = form.names.iter().position(|n| n == name).unwrap();
    let at = form.selected;
    for _ in at..target {
        ui.press(KeyCode::Char('j'));
    }
    for _ in target..at {
        ui.press(KeyCode::Char('k'));
    }
    assert_eq!(start_form(ui).names[start_form(ui).selected], name);
}

#[test]
fn the_start_form_prefills_the_registered_example_and_shows_the_description() {
    let mut ui = harness();
    ui.press(KeyCode::Char('n'));
    choose(&mut ui, "HelloSequence");
    let form = start_form(&ui);
    assert_eq!(form.input.text(), "null");
    assert!(form.description().unwrap().contains("Tokyo"));
    choose(&mut ui, "MonitorJob");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(start_form(&ui).input.text()).unwrap()["job_id"],
        json!("job-7")
    );
    choose(&mut ui, "ProcessPayment");
    assert!(start_form(&ui).description().unwrap().contains("OrderSaga"));
    choose(&mut ui, "BenchChain");
    assert!(start_form(&ui).description().unwrap().contains("Benchmark"));
    choose(&mut ui, "HelloSequence");
    ui.press(KeyCode::Enter); // to the input
    ui.press(KeyCode::Enter); // starts with the example as is
    assert!(ui.commands.contains(&Command::Start {
        name: "HelloSequence".into(),
        input: json!(null)
    }));
}

#[test]
fn the_start_form_remembers_the_last_input_started_per_orchestration() {
    let mut ui = harness();
    ui.press(KeyCode::Char('n'));
    choose(&mut ui, "FanOutFanIn");
    ui.press(KeyCode::Enter);
    clear_input(&mut ui);
    ui.type_text("7");
    ui.press(KeyCode::Enter);
    assert!(ui.commands.contains(&Command::Start {
        name: "FanOutFanIn".into(),
        input: json!(7)
    }));
    ui.press(KeyCode::Char('n'));
    choose(&mut ui, "FanOutFanIn");
    assert_eq!(
        start_form(&ui).input.text(),
        "7",
        "the last input, not the example"
    );
    choose(&mut ui, "BatchOrders");
    assert_eq!(
        start_form(&ui).input.text(),
        "10",
        "others keep their example"
    );
}

#[test]
fn the_fork_form_opens_on_the_toggle_with_the_original_result_and_space_toggles_only_there() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.select("hello");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper", |model| model.stepper.is_some());
    ui.press(KeyCode::Char('g'));
    ui.press(KeyCode::Char('e'));
    let fork = |ui: &Harness| match &ui.model.overlay {
        Some(Overlay::Fork(form)) => form.clone(),
        other => panic!("the fork form is open, not {other:?}"),
    };
    let form = fork(&ui);
    assert!(form.can_fail && !form.fail);
    assert_eq!(form.field, 0, "focus starts on the result/failure toggle");
    assert_eq!(form.result.text(), r#""Hello Tokyo!""#);
    ui.press(KeyCode::Char(' '));
    assert!(fork(&ui).fail, "Space on the toggle makes it a failure");
    ui.press(KeyCode::Tab); // to the error type
    let before = fork(&ui).error_type.text().to_string();
    ui.press(KeyCode::Char(' '));
    let form = fork(&ui);
    assert!(form.fail, "Space in a text field does not toggle");
    assert_eq!(form.error_type.text(), format!("{before} "));
}

#[test]
fn the_fork_form_offers_no_failure_for_an_event() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "r", "timeout_hours": 72}),
        "approval",
    );
    ui.wait_until("the approval to wait", |model| {
        model.instances.rows.contains_key("approval")
    });
    ui.handle
        .raise_event("approval", "Approval", json!(true))
        .unwrap();
    ui.select("approval");
    ui.wait_until("the approval to complete", |model| {
        model
            .selected()
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper", |model| model.stepper.is_some());
    ui.press(KeyCode::Char('g'));
    // Step past RequestApproval's completion to the event's.
    for _ in 0..30 {
        ui.press(KeyCode::Char('e'));
        match &ui.model.overlay {
            Some(Overlay::Fork(form)) if !form.target_text.contains("EventRaised") => {
                ui.press(KeyCode::Esc);
                ui.press(KeyCode::Char('l'));
            }
            _ => break,
        }
    }
    let Some(Overlay::Fork(form)) = &ui.model.overlay else {
        panic!("the fork form is open: {:?}", ui.model.status);
    };
    assert!(
        form.target_text.contains("EventRaised"),
        "{}",
        form.target_text
    );
    assert!(!form.can_fail && !form.fail);
    assert_eq!(form.field, 1, "the payload is the only field");
    assert_eq!(form.result.text(), "true", "the original payload");
    ui.press(KeyCode::Char(' '));
    ui.press(KeyCode::Tab);
    let Some(Overlay::Fork(form)) = &ui.model.overlay else {
        panic!("the fork form stays open");
    };
    assert!(!form.fail, "nothing makes an event a failure");
    assert_eq!(form.field, 1);
}

#[test]
fn the_start_form_validates_json_before_submitting() {
    let mut ui = harness();
    ui.press(KeyCode::Char('n'));
    let Some(Overlay::Start(form)) = &ui.model.overlay else {
        panic!("the start form is open");
    };
    let target = form
        .names
        .iter()
        .position(|name| name == "FanOutFanIn")
        .unwrap();
    for _ in 0..target {
        ui.press(KeyCode::Char('j'));
    }
    ui.press(KeyCode::Enter); // to the input
    clear_input(&mut ui); // drop the prefilled example
    ui.type_text("{oops");
    ui.press(KeyCode::Enter);
    assert!(
        matches!(ui.model.overlay, Some(Overlay::Start(_))),
        "invalid JSON is not submitted"
    );
    assert!(
        !ui.commands
            .iter()
            .any(|c| matches!(c, Command::Start { .. }))
    );
    for _ in 0..5 {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text("12");
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
    assert!(ui.commands.contains(&Command::Start {
        name: "FanOutFanIn".into(),
        input: json!(12)
    }));
    ui.wait_until("FanOutFanIn to complete", |model| {
        model
            .selected()
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    assert_eq!(ui.model.selected().unwrap().progress(), Some((12, 12)));
}

#[test]
fn raise_delivers_an_event_to_the_selected_instance() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "leave", "timeout_hours": 24}),
        "approval",
    );
    ui.select("approval");
    ui.command("raise Approval true");
    ui.wait_until("the approval to complete", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Completed
    });
    let record = ui.handle.instance("approval").unwrap().unwrap();
    assert_eq!(record.output, json!("Approved"));
}

#[test]
fn advance_fast_forwards_virtual_time_and_the_clock_view_shows_timers() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "leave", "timeout_hours": 72}),
        "approval",
    );
    ui.press(KeyCode::Char('7'));
    ui.wait_until("the timer to show", |model| model.clock.timers.len() == 1);
    let before = ui.model.clock.now.unwrap();
    ui.command("advance 3d");
    ui.wait_until("the escalation", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Completed
    });
    assert!(ui.model.clock.now.unwrap() - before >= chrono::Duration::days(3));
    assert_eq!(
        ui.handle.instance("approval").unwrap().unwrap().output,
        json!("Escalated")
    );
    ui.wait_until("no timers left", |model| model.clock.timers.is_empty());
}

#[test]
fn next_timer_and_auto_skip_keys_in_the_clock_view() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.press(KeyCode::Char('7'));
    ui.press(KeyCode::Char('n'));
    ui.wait_until("the timer to fire", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Completed
    });
    ui.press(KeyCode::Char('a'));
    assert!(ui.model.clock.auto_skip);
    assert!(ui.commands.contains(&Command::SetAutoSkip(true)));
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "y", "timeout_hours": 5}),
        "approval-2",
    );
    ui.wait_until("auto-skip to escalate", |model| {
        model
            .instances
            .rows
            .get("approval-2")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
}

#[test]
fn terminate_asks_first_and_can_be_cancelled() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.select("approval");
    ui.press(KeyCode::Char('t'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Confirm { .. })));
    ui.press(KeyCode::Char('n'));
    assert!(ui.model.overlay.is_none());
    assert!(
        !ui.commands
            .iter()
            .any(|c| matches!(c, Command::Terminate { .. }))
    );
    assert_eq!(ui.status_of("approval"), Some(RuntimeStatus::Running));
    ui.press(KeyCode::Char('t'));
    ui.press(KeyCode::Char('y'));
    ui.wait_until("the termination", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Terminated
    });
}

#[test]
fn suspend_resume_restart_and_purge() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.select("approval");
    ui.press(KeyCode::Char('p'));
    ui.wait_until("suspended", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Suspended
    });
    ui.press(KeyCode::Char('u'));
    ui.wait_until("resumed", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Running
    });
    ui.press(KeyCode::Char('R'));
    ui.wait_until("a restarted instance selected", |model| {
        model.selected_id().is_some_and(|id| id != "approval") && model.instances.rows.len() == 2
    });
    // Purging a running instance is refused by the engine, with its reason on the status line.
    ui.select("approval");
    ui.command("purge");
    ui.press(KeyCode::Char('y'));
    ui.wait_until("the refusal", |model| {
        model.status.as_ref().is_some_and(|(_, error)| *error)
    });
    ui.command("terminate approval no longer needed");
    ui.press(KeyCode::Char('y'));
    ui.wait_until("terminated", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Terminated
    });
    ui.press(KeyCode::Char('D'));
    ui.press(KeyCode::Char('y'));
    ui.wait_until("purged", |model| {
        !model.instances.rows.contains_key("approval")
    });
}

#[test]
fn filter_and_sort_the_instance_list() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.start("OrderSaga", json!({"fail_at": "ShipOrder"}), "saga");
    ui.press(KeyCode::Char('/'));
    ui.type_text("approv");
    let visible: Vec<&str> = ui
        .model
        .instances
        .visible
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(visible, ["approval"]);
    ui.press(KeyCode::Enter);
    ui.press(KeyCode::Char('c'));
    assert!(
        ui.model.instances.visible.len() >= 4,
        "the saga's child shows under it"
    );
    // A status filter, from the command line.
    ui.command("filter failed");
    let visible: Vec<&str> = ui
        .model
        .instances
        .visible
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(visible, ["saga"]);
    ui.command("filter");
    ui.press(KeyCode::Char('s'));
    assert_eq!(ui.model.instances.sort, Some(SortKey::Name));
    let names: Vec<&str> = ui
        .model
        .instances
        .visible
        .iter()
        .filter(|(_, depth)| *depth == 0)
        .map(|(id, _)| ui.model.instances.rows[id].name.as_str())
        .collect();
    assert_eq!(names, ["ApprovalWorkflow", "HelloSequence", "OrderSaga"]);
    // Sub-orchestrations are listed right under their parent.
    let saga = ui
        .model
        .instances
        .visible
        .iter()
        .position(|(id, _)| id == "saga")
        .unwrap();
    assert_eq!(ui.model.instances.visible[saga + 1].1, 1);
}

#[test]
fn the_replay_stepper_steps_both_ways_and_shows_what_the_code_did() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.select("hello");
    ui.press(KeyCode::Char('F'));
    assert_eq!(ui.model.view, View::Replay);
    ui.wait_until("the last step", |model| {
        model
            .stepper
            .as_ref()
            .is_some_and(|stepper| stepper.result.is_some())
    });
    let len = ui.model.stepper.as_ref().unwrap().events.len();
    assert_eq!(ui.model.stepper.as_ref().unwrap().step, len);
    ui.press(KeyCode::Char('g'));
    // Step to just after the first activity completed: the code then calls the second one.
    let first_completion = ui
        .model
        .stepper
        .as_ref()
        .unwrap()
        .events
        .iter()
        .position(|event| matches!(event.kind, EventKind::TaskCompleted { .. }))
        .unwrap();
    for _ in 0..=first_completion {
        ui.press(KeyCode::Char('l'));
    }
    ui.press(KeyCode::Char('h'));
    ui.press(KeyCode::Char('l'));
    ui.wait_until("the step's answer", |model| {
        let stepper = model.stepper.as_ref().unwrap();
        matches!(&stepper.result, Some(Ok(result)) if result.step == stepper.step)
    });
    let stepper = ui.model.stepper.as_ref().unwrap();
    assert_eq!(stepper.step, first_completion + 1);
    assert_eq!(stepper.calls.len(), 1);
    assert_eq!(stepper.calls[0].completed_at, Some(first_completion));
    let response = &stepper.result.as_ref().unwrap().as_ref().unwrap().response;
    assert!(response.nondeterminism.is_none());
    assert_eq!(response.actions.len(), 1, "emits the call for Seattle next");
    assert!(
        response
            .logs
            .iter()
            .any(|log| log.message == "Tokyo greeted")
    );
    // Older answers never overwrite the newest step's.
    let tokens: Vec<u64> = ui
        .commands
        .iter()
        .filter_map(|command| match command {
            Command::Step { token, .. } => Some(*token),
            _ => None,
        })
        .collect();
    assert!(tokens.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn a_fork_from_a_step_runs_live_and_an_edited_completion_changes_its_outcome() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.select("hello");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper", |model| model.stepper.is_some());
    // Fork after the first activity was scheduled: it runs the rest live.
    ui.press(KeyCode::Char('g'));
    for _ in 0..4 {
        ui.press(KeyCode::Char('l'));
    }
    ui.press(KeyCode::Char('f'));
    ui.wait_until("the fork", |model| {
        model
            .instances
            .rows
            .get("hello-fork1")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    assert_eq!(ui.model.view, View::History, "a fork is watched live");
    assert_eq!(
        ui.handle.instance("hello-fork1").unwrap().unwrap().output,
        json!(["Hello Tokyo!", "Hello Seattle!", "Hello London!"])
    );
    // Back on the source, fork with the next completion turned into a failure.
    ui.select("hello");
    ui.press(KeyCode::Char('6'));
    ui.wait_until("the stepper on hello", |model| {
        model
            .stepper
            .as_ref()
            .is_some_and(|stepper| stepper.instance_id == "hello")
    });
    ui.press(KeyCode::Char('g'));
    for _ in 0..4 {
        ui.press(KeyCode::Char('l'));
    }
    ui.press(KeyCode::Char('e'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Fork(_))));
    ui.press(KeyCode::Char(' ')); // the form opens on "becomes": a failure
    ui.press(KeyCode::Enter);
    ui.wait_until("the edited fork", |model| {
        model
            .instances
            .rows
            .get("hello-fork2")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    let failure = ui
        .handle
        .instance("hello-fork2")
        .unwrap()
        .unwrap()
        .failure
        .unwrap();
    assert_eq!(failure.root_cause().error_type, "EditedFailure");
}

#[test]
fn the_errors_view_draws_the_chain_with_retries_and_compensation() {
    let mut ui = harness();
    ui.handle.set_auto_skip(true).unwrap();
    ui.start("OrderSaga", json!({"fail_at": "ChargeCard"}), "saga");
    ui.wait_until("the saga to fail", |model| {
        model
            .instances
            .rows
            .get("saga")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    ui.select("saga");
    ui.press(KeyCode::Char('5'));
    ui.wait_until("the child's attempts", |model| {
        model
            .derived
            .errors
            .iter()
            .any(|row| row.text.contains("attempt 3"))
    });
    let text: Vec<&str> = ui
        .model
        .derived
        .errors
        .iter()
        .map(|row| row.text.as_str())
        .collect();
    assert!(text[0].starts_with("✗ OrderSaga Failed"), "{text:#?}");
    assert!(
        text.iter()
            .any(|row| row.contains("sub-orchestration ProcessPayment")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|row| row.contains("retried after 5s")),
        "{text:#?}"
    );
    assert!(text.contains(&"→ rethrew"), "{text:#?}");
}

#[test]
fn the_fan_out_view_counts_a_when_all_group() {
    let mut ui = harness();
    ui.start("FanOutFanIn", json!(30), "fan");
    ui.wait_until("the fan-out", |model| {
        model
            .instances
            .rows
            .get("fan")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    ui.select("fan");
    ui.press(KeyCode::Char('4'));
    ui.wait_until("the group", |model| !model.derived.fanout.is_empty());
    let group = &ui.model.derived.fanout[0];
    assert_eq!(
        (group.total, group.done, group.failed, group.running()),
        (30, 30, 0, 0)
    );
    assert_eq!(group.throughput.iter().sum::<u64>(), 30);
}

#[test]
fn mouse_clicks_select_rows_and_tabs_and_the_wheel_scrolls() {
    let mut ui = harness();
    for i in 0..40 {
        ui.handle
            .start_orchestration("HelloSequence", json!(null), Some(format!("h{i:02}")))
            .unwrap();
    }
    ui.settle();
    ui.wait_until("every instance listed", |model| {
        model.instances.visible.len() == 40
    });
    // Row 2 of the screen is the second instance (tabs, header, first row).
    ui.click(5, 3);
    assert_eq!(ui.model.instances.selected, 1);
    ui.scroll_down();
    assert_eq!(ui.model.instances.selected, 4);
    // The "7 Clock" tab.
    let (start, _, _) =
        durable_emu_tui::layout::tab_positions(ratatui::layout::Rect::new(0, 0, 100, 1))
            .into_iter()
            .find(|(_, _, view)| *view == View::Clock)
            .unwrap();
    ui.click(start + 1, 0);
    assert_eq!(ui.model.view, View::Clock);
}

#[test]
fn help_lists_the_keys_of_every_view_and_q_quits() {
    let mut ui = harness();
    for view in View::ALL {
        assert!(
            !durable_emu_tui::keys::view_keys(view).is_empty(),
            "{view:?}"
        );
    }
    ui.press(KeyCode::Char('?'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Help { .. })));
    assert!(ui.screen().contains("Keys · Instances view"));
    ui.press(KeyCode::Esc);
    ui.press(KeyCode::Tab);
    assert_eq!(ui.model.view, View::History);
    ui.press(KeyCode::BackTab);
    assert_eq!(ui.model.view, View::Instances);
    ui.press(KeyCode::Char('q'));
    assert!(ui.model.quit);
}

#[test]
fn a_bad_command_keeps_the_line_open_with_the_reason() {
    let mut ui = harness();
    ui.command("advance soon");
    assert!(matches!(ui.model.overlay, Some(Overlay::Command(_))));
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(error && message.contains("not a duration"), "{message}");
}

#[test]
fn lost_events_reload_what_is_shown() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.model.instances.rows.clear();
    ui.send(Msg::EventsLost(42));
    ui.settle();
    assert!(ui.model.instances.rows.contains_key("hello"));
}

// ----- faults view ------------------------------------------------------------------------------

const CARD_RULE: &str = "activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds";

fn with_a_rule() -> Harness {
    let mut ui = harness();
    ui.command(&format!("fault {CARD_RULE}"));
    ui.press(KeyCode::Char('9'));
    assert_eq!(ui.model.view, View::Faults);
    ui.wait_until("the rule listed", |model| model.faults.rules.len() == 1);
    ui
}

#[test]
fn the_fault_form_refuses_an_invalid_rule_naming_the_field_then_adds_a_valid_one() {
    let mut ui = harness();
    ui.press(KeyCode::Char('9'));
    ui.press(KeyCode::Char('a'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Fault(_))));
    ui.type_text("ChargeCard");
    ui.press(KeyCode::Tab); // instance glob
    ui.press(KeyCode::Tab); // trigger
    ui.press(KeyCode::Char(' ')); // every -> attempts
    ui.press(KeyCode::Tab); // its value
    ui.type_text("3-1");
    ui.press(KeyCode::Enter);
    assert!(
        matches!(ui.model.overlay, Some(Overlay::Fault(_))),
        "an invalid rule is not submitted"
    );
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(error && message.contains("`attempts`"), "{message}");
    assert!(
        !ui.commands
            .iter()
            .any(|c| matches!(c, Command::AddFault { .. }))
    );
    for _ in 0..3 {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text("1-2");
    ui.press(KeyCode::Tab); // limit
    ui.press(KeyCode::Tab); // effect: error
    ui.press(KeyCode::Tab); // error type
    for _ in 0.."InjectedFailure".len() {
        ui.press(KeyCode::Backspace);
    }
    ui.type_text("CardDeclined");
    ui.press(KeyCode::Tab); // message
    ui.type_text("insufficient funds");
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
    assert!(
        ui.commands
            .iter()
            .any(|c| matches!(c, Command::AddFault { spec, .. } if spec == CARD_RULE))
    );
    ui.wait_until("the rule listed", |model| model.faults.rules.len() == 1);
    let state = &ui.model.faults.rules[0];
    assert_eq!(state.rule.target.name, "ChargeCard");
    assert!(state.enabled);
    // A fired rule's counters are refreshed by the engine's faultFired events.
    ui.handle.set_auto_skip(true).unwrap();
    ui.start("OrderSaga", json!({"order_id": "o1", "amount": 5}), "saga");
    ui.wait_until("the rule to fire twice", |model| {
        model
            .faults
            .rules
            .first()
            .is_some_and(|rule| rule.fired == 2)
    });
}

#[test]
fn t_and_space_switch_the_selected_rule_off_and_on() {
    let mut ui = with_a_rule();
    let id = ui.model.faults.rules[0].id;
    ui.press(KeyCode::Char('t'));
    assert!(!ui.model.faults.rules[0].enabled, "shown at once");
    assert!(
        ui.commands
            .contains(&Command::SetFaultEnabled { id, enabled: false })
    );
    ui.wait_until("the engine to agree", |model| {
        model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.contains("disabled"))
    });
    assert!(!ui.handle.faults().unwrap()[0].enabled);
    assert!(!ui.model.faults.rules[0].enabled);
    ui.press(KeyCode::Char(' '));
    ui.wait_until("enabled again", |model| {
        model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.contains("enabled"))
    });
    assert!(ui.handle.faults().unwrap()[0].enabled);
}

#[test]
fn d_removes_the_selected_rule_after_asking() {
    let mut ui = with_a_rule();
    ui.press(KeyCode::Char('d'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Confirm { .. })));
    ui.press(KeyCode::Char('n'));
    assert!(ui.model.overlay.is_none());
    assert_eq!(ui.handle.faults().unwrap().len(), 1);
    ui.press(KeyCode::Char('d'));
    ui.press(KeyCode::Char('y'));
    ui.wait_until("the rule removed", |model| {
        model.faults.loaded && model.faults.rules.is_empty()
    });
    assert!(ui.handle.faults().unwrap().is_empty());
}

#[test]
fn fault_on_the_command_line_adds_a_rule_and_faults_shows_them() {
    let mut ui = harness();
    ui.command(&format!("fault {CARD_RULE}"));
    assert!(ui.model.overlay.is_none());
    let rules = ui.handle.faults().unwrap();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].rule.target.name, "ChargeCard");
    // An invalid rule keeps the line open with the reason, which names the field.
    ui.command("fault activity=A,attempts=3-1,timeout");
    assert!(matches!(ui.model.overlay, Some(Overlay::Command(_))));
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(error && message.contains("`attempts`"), "{message}");
    ui.press(KeyCode::Esc);
    ui.command("faults");
    assert_eq!(ui.model.view, View::Faults);
    ui.wait_until("the rule listed", |model| model.faults.rules.len() == 1);
}

#[test]
fn the_stepper_replays_with_the_build_that_recorded_the_instance() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.wait_until("hello to complete", |model| {
        model
            .instances
            .rows
            .get("hello")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    let recorded = ui.handle.instance("hello").unwrap().unwrap().build;
    assert!(recorded.is_some());
    // A hot reload makes another build active; the stepper still asks for the recorded one.
    // (Another content hash: a build with the same content keeps its number.)
    let mut changed = durable_emu_engine::plugin::LoadedPlugin::builtin().unwrap();
    changed.content_hash = format!("{}-changed", changed.content_hash);
    let reloaded = ui.handle.load_build(changed).unwrap();
    assert_ne!(Some(reloaded), recorded);
    ui.settle();
    ui.select("hello");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the step's answer", |model| {
        model
            .stepper
            .as_ref()
            .is_some_and(|stepper| matches!(stepper.result, Some(Ok(_))))
    });
    assert!(
        ui.commands
            .iter()
            .any(|c| matches!(c, Command::Step { build, .. } if *build == recorded))
    );
}

#[test]
fn the_status_line_names_an_episode_running_for_more_than_three_seconds() {
    use durable_emu_tui::msg::EpisodeRunning;
    use std::time::Duration;

    let mut ui = harness();
    let running = |secs| {
        Msg::Episode(Some(EpisodeRunning {
            instance_id: "spin-1".into(),
            name: "Spin".into(),
            elapsed: Duration::from_secs(secs),
        }))
    };
    let status_line = |ui: &Harness| ui.screen().lines().last().unwrap_or_default().to_string();

    ui.send(running(1));
    assert!(
        !status_line(&ui).contains("spin-1"),
        "a short episode is not news: {}",
        status_line(&ui)
    );
    ui.send(running(7));
    assert!(
        status_line(&ui).contains("episode of spin-1 (Spin) running for 7s"),
        "{}",
        status_line(&ui)
    );
    ui.send(Msg::Episode(None));
    assert!(!status_line(&ui).contains("spin-1"), "gone when it ends");
}

#[test]
fn a_termination_signal_quits_like_q() {
    let mut ui = harness();
    ui.send(Msg::Quit);
    assert!(ui.model.quit);
}

#[test]
fn a_store_failure_and_a_redelivery_are_said_where_the_user_looks() {
    use durable_emu_engine::engine::EngineEvent;
    let mut ui = harness();
    ui.send(Msg::Engine(EngineEvent::Redelivered {
        instance_id: "order-1".into(),
        what: "activity 'ChargeCard' (#4)".into(),
        delivery: 2,
        max_deliveries: 3,
    }));
    ui.send(Msg::Engine(EngineEvent::StoreFailed {
        message: "database error: disk I/O error".into(),
        retrying: true,
    }));
    let status_line = ui.screen().lines().last().unwrap_or_default().to_string();
    assert!(
        status_line.contains("the store refused a write"),
        "{status_line}"
    );
    let feed = format!("{:?}", ui.model.builds);
    assert!(
        feed.contains("redelivering activity 'ChargeCard' (#4) (delivery 2 of at most 3"),
        "{feed}"
    );
    assert!(feed.contains("disk I/O error"), "{feed}");
}

#[test]
fn progress_of_a_fork_counts_its_imported_history_and_never_exceeds_scheduled() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.select("hello");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper", |model| model.stepper.is_some());
    // Cut after the first activity was scheduled: its completion arrives live in the fork.
    ui.press(KeyCode::Char('g'));
    for _ in 0..4 {
        ui.press(KeyCode::Char('l'));
    }
    ui.press(KeyCode::Char('f'));
    ui.wait_until("the fork's progress counted from its history", |model| {
        model.instances.rows.get("hello-fork1").is_some_and(|row| {
            row.status == RuntimeStatus::Completed && row.progress() == Some((3, 3))
        })
    });
}

#[test]
fn progress_is_known_for_rows_read_from_the_store_as_after_a_restart() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.wait_until("hello to complete", |model| {
        model
            .instances
            .rows
            .get("hello")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    // What a restarted UI has: rows from the stored records, no live events seen.
    let records = ui.handle.instances().unwrap();
    ui.model.instances.rows.clear();
    ui.send(Msg::Done(durable_emu_tui::msg::Outcome::Instances(Ok(
        records,
    ))));
    assert_eq!(ui.model.instances.rows["hello"].progress(), None);
    ui.wait_until("the counts loaded from the history", |model| {
        model.instances.rows["hello"].progress() == Some((3, 3))
    });
}

#[test]
fn a_started_instance_is_selected_even_when_its_row_arrives_after_the_answer() {
    use durable_emu_tui::msg::Outcome;
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "first");
    ui.wait_until("the first row", |model| {
        model.instances.rows.contains_key("first")
    });
    // The start's answer overtakes the event that creates the row (they travel on different
    // threads): the engine has the instance, the model has no row for it yet.
    ui.handle
        .start_orchestration("HelloSequence", json!(null), Some("second".into()))
        .unwrap();
    ui.send(Msg::Done(Outcome::Started {
        label: "start".into(),
        result: Ok("second".into()),
    }));
    // A tick (and a redraw) before the event: the list is rebuilt without the new row.
    ui.send(Msg::Tick);
    ui.screen();
    ui.settle();
    ui.wait_until("the second row", |model| {
        model.instances.rows.contains_key("second")
    });
    assert_eq!(ui.model.selected_id(), Some("second"));
}

// ----- long text: the wrapping, scrolling text box ---------------------------------------------

fn text_box(ui: &Harness) -> (&str, &[String], usize) {
    match &ui.model.overlay {
        Some(Overlay::Text {
            title,
            lines,
            scroll,
        }) => (title, lines, *scroll),
        other => panic!("the text box is open, not {other:?}"),
    }
}

/// An approval waiting on its timer whose input holds a value far wider than the screen, its
/// history open at the start event (the second, after OrchestratorStarted), which has the input.
fn long_input_history(ui: &mut Harness) -> String {
    let request = "a leave request that explains itself at length ".repeat(12);
    ui.start(
        "ApprovalWorkflow",
        json!({"request": request, "timeout_hours": 72}),
        "long",
    );
    ui.select("long");
    ui.press(KeyCode::Char('2'));
    ui.wait_until("the history", |model| {
        model
            .history
            .as_ref()
            .is_some_and(|history| !history.loading)
    });
    ui.press(KeyCode::Char('g'));
    ui.press(KeyCode::Char('j'));
    request
}

#[test]
fn the_event_json_wraps_long_values_and_scrolls_to_its_last_row_and_no_further() {
    let mut ui = harness();
    let request = long_input_history(&mut ui);
    ui.press(KeyCode::Enter);
    let (title, lines, scroll) = text_box(&ui);
    assert!(title.starts_with("event 1 of long"), "{title}");
    assert_eq!(scroll, 0);
    let (width, height) = durable_emu_tui::textbox::inner_size(ui.model.area);
    let rows = durable_emu_tui::textbox::wrap(lines, width);
    assert!(
        rows.len() > lines.len(),
        "the {}-column value wraps",
        request.len()
    );
    assert!(rows.iter().all(|row| row.chars().count() <= width));
    // Nothing is lost to wrapping: the rows hold every word of the value.
    let joined: String = rows
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(joined.contains(request.trim_end()), "{joined}");
    let last = rows.len().saturating_sub(height);
    ui.press(KeyCode::Char('j'));
    assert_eq!(text_box(&ui).2, 1.min(last));
    ui.press(KeyCode::Char('G'));
    assert_eq!(text_box(&ui).2, last, "G shows the last row at the bottom");
    ui.press(KeyCode::PageDown);
    ui.press(KeyCode::Char('j'));
    assert_eq!(text_box(&ui).2, last, "no scrolling past the end");
    ui.press(KeyCode::Char('k'));
    assert_eq!(text_box(&ui).2, last.saturating_sub(1));
    ui.press(KeyCode::Char('g'));
    assert_eq!(text_box(&ui).2, 0);
    ui.press(KeyCode::Char('q'));
    assert!(ui.model.overlay.is_none(), "q closes it");
    assert_eq!(ui.model.view, View::History, "and the view is where it was");
}

#[test]
fn the_text_box_says_which_line_it_shows_and_how_to_close_it() {
    let mut ui = Harness::new(80, 24);
    long_input_history(&mut ui);
    ui.press(KeyCode::Enter);
    ui.press(KeyCode::Char('j'));
    ui.press(KeyCode::Char('j'));
    let screen = ui.screen();
    let (width, _) = durable_emu_tui::textbox::inner_size(ui.model.area);
    let rows = durable_emu_tui::textbox::wrap(text_box(&ui).1, width).len();
    assert!(screen.contains(&format!("line 3/{rows}")), "{screen}");
    assert!(screen.contains("Esc closes"), "{screen}");
}

/// The failed saga (ShipOrder fails, the orchestration compensates and rethrows) in the Errors
/// view.
fn failed_saga_errors(ui: &mut Harness) {
    ui.start(
        "OrderSaga",
        json!({"order_id": "o1", "amount": 5, "fail_at": "ShipOrder"}),
        "saga",
    );
    ui.wait_until("the saga to fail", |model| {
        model
            .instances
            .rows
            .get("saga")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    ui.select("saga");
    ui.press(KeyCode::Char('5'));
    ui.wait_until("the error tree", |model| model.derived.errors.len() > 2);
}

#[test]
fn enter_on_an_errors_row_opens_its_failure_in_full_with_the_chain_to_the_root() {
    let mut ui = harness();
    failed_saga_errors(&mut ui);
    // The head row: the orchestration's failure, which wraps the activity's.
    ui.press(KeyCode::Enter);
    let (title, lines, _) = text_box(&ui);
    assert_eq!(title, "failure: TaskFailed");
    assert!(lines[0].starts_with("✗ OrderSaga Failed"), "{lines:?}");
    for expected in [
        "type: TaskFailed",
        "type: CarrierUnavailable",
        "message: no carrier would take order o1",
        "chain: TaskFailed → CarrierUnavailable",
        "root cause: CarrierUnavailable: no carrier would take order o1",
    ] {
        assert!(
            lines.iter().any(|line| line == expected),
            "{expected} in {lines:?}"
        );
    }
    ui.press(KeyCode::Esc);
    assert!(ui.model.overlay.is_none());
    // The activity's row: its own failure, no chain above it.
    ui.press(KeyCode::Char('j'));
    ui.press(KeyCode::Enter);
    let (title, lines, _) = text_box(&ui);
    assert_eq!(title, "failure: CarrierUnavailable");
    assert!(
        lines.iter().all(|line| line != "type: TaskFailed"),
        "{lines:?}"
    );
}

fn compile_failure() -> durable_emu_engine::engine::EngineEvent {
    let rendered = "error[E0308]: mismatched types\n --> src/lib.rs:1:21\n  |\n1 | pub fn f() -> u32 { \"x\" }\n  |               ---   ^^^ expected `u32`, found `&str`\n  |               |\n  |               expected `u32` because of return type";
    durable_emu_engine::engine::EngineEvent::BuildFailed {
        target: "functions".into(),
        reason: "cargo build failed in functions with 2 errors".into(),
        errors: vec![
            rendered.into(),
            "error: cannot find value `y` in this scope\n --> src/lib.rs:7:5".into(),
        ],
        first_error: Some("src/lib.rs:1:21: error[E0308]: mismatched types".into()),
    }
}

#[test]
fn a_failed_build_puts_one_line_and_its_first_error_in_the_feed_and_enter_shows_the_output() {
    let mut ui = harness();
    ui.press(KeyCode::Char('8'));
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
    let (status, _) = ui.model.status.clone().unwrap();
    assert!(status.contains("no compiler output"), "{status}");

    ui.send(Msg::Engine(compile_failure()));
    ui.settle();
    let feed: Vec<&str> = ui
        .model
        .builds
        .feed
        .iter()
        .map(|line| line.text.as_str())
        .collect();
    let failed = feed
        .iter()
        .position(|line| line.starts_with("build of functions failed"))
        .unwrap();
    assert_eq!(
        &feed[failed + 1..],
        [
            "  src/lib.rs:1:21: error[E0308]: mismatched types",
            "  Enter shows the compiler output"
        ],
        "the rendered errors are not poured into the feed"
    );
    ui.press(KeyCode::Enter);
    let (_, lines, _) = text_box(&ui);
    assert_eq!(
        lines[0],
        "first error: src/lib.rs:1:21: error[E0308]: mismatched types"
    );
    assert!(lines.iter().any(|line| line == " --> src/lib.rs:1:21"));
    assert!(
        lines.iter().any(|line| line == " --> src/lib.rs:7:5"),
        "every error"
    );
    ui.press(KeyCode::Esc);

    // A new build makes the old output stale.
    ui.send(Msg::Engine(
        durable_emu_engine::engine::EngineEvent::BuildStarted {
            target: "functions".into(),
        },
    ));
    ui.settle();
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
}

#[test]
fn a_long_status_message_is_not_cut_by_the_clock_at_80_columns() {
    let mut ui = Harness::new(80, 24);
    ui.wait_until("the clock", |model| model.clock.now.is_some());
    let message = "the build failed; see the Builds view (8) for the compiler output";
    ui.model.status = Some((message.into(), true));
    let screen = ui.screen();
    let status = screen.lines().last().unwrap();
    assert!(status.starts_with(message), "{status}");
    // The clock gave way but kept the time of day.
    assert!(
        regex_time(status.trim_start_matches(message)),
        "the time of day is still shown: {status}"
    );
}

fn regex_time(text: &str) -> bool {
    text.split_whitespace()
        .any(|word| word.len() == 8 && word.chars().filter(|c| *c == ':').count() == 2)
}
