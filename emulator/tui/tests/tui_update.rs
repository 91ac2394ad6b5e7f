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

/// An approval waiting for its answer: selected, with the engine's word on what it waits for.
fn waiting_approval() -> Harness {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "leave", "timeout_hours": 24}),
        "approval",
    );
    ui.wait_until("the approval to wait for its answer", |model| {
        model
            .instances
            .rows
            .get("approval")
            .is_some_and(|row| row.awaited_events == ["Approval"])
    });
    ui.select("approval");
    ui
}

fn raise_form(ui: &Harness) -> &durable_emu_tui::model::RaiseForm {
    match &ui.model.overlay {
        Some(Overlay::Raise(form)) => form,
        other => panic!("the raise form is open, not {other:?}"),
    }
}

#[test]
fn r_opens_a_form_listing_the_events_the_instance_waits_for_and_raises_the_picked_one() {
    let mut ui = waiting_approval();
    ui.press(KeyCode::Char('r'));
    let form = raise_form(&ui);
    assert_eq!(form.awaited, ["Approval"]);
    assert_eq!(
        form.name.text(),
        "Approval",
        "the first awaited event is picked"
    );
    // Enter on the list goes to the payload; a payload that is not JSON keeps the form open.
    ui.press(KeyCode::Enter);
    ui.type_text("yes");
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_some());
    assert!(
        ui.model
            .status
            .as_ref()
            .is_some_and(|(text, error)| *error && text.contains("not JSON"))
    );
    clear_input(&mut ui);
    ui.type_text("true");
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
    ui.wait_until("the approval to complete", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Completed
    });
    let record = ui.handle.instance("approval").unwrap().unwrap();
    assert_eq!(record.output, json!("Approved"));
    assert!(
        ui.model
            .status
            .as_ref()
            .is_some_and(|(text, error)| !error && text.ends_with("event raised")),
        "{:?}",
        ui.model.status
    );
}

#[test]
fn raising_a_name_nothing_waits_for_still_raises_but_warns_what_the_instance_waits_for() {
    let mut ui = waiting_approval();
    let before = ui.model.instances.rows["approval"].history_len;
    ui.press(KeyCode::Char('r'));
    ui.press(KeyCode::Tab);
    clear_input(&mut ui);
    ui.type_text("Aproval");
    ui.press(KeyCode::Enter);
    assert!(ui.model.overlay.is_none());
    let warning = "buffered; the instance waits for 'Approval'";
    assert!(
        ui.model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.ends_with(warning)),
        "{:?}",
        ui.model.status
    );
    ui.wait_until("the misspelt event's episode", |model| {
        model.instances.rows["approval"].history_len > before
    });
    // The engine's answer kept the warning, and the event was raised (buffered).
    assert!(
        ui.model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.ends_with(warning)),
        "{:?}",
        ui.model.status
    );
    let raised = ui
        .handle
        .history("approval")
        .unwrap()
        .last()
        .unwrap()
        .events
        .iter()
        .any(
            |event| matches!(&event.kind, EventKind::EventRaised { name, .. } if name == "Aproval"),
        );
    assert!(raised, "the event was raised all the same");
    // A name that differs only in case is what the orchestration waits for: no warning.
    ui.command("raise approval true");
    assert!(
        !ui.model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.contains("buffered")),
        "{:?}",
        ui.model.status
    );
}

#[test]
fn raising_on_an_instance_that_waits_for_no_event_says_so() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.wait_until("hello to run", |model| {
        model.instances.rows.contains_key("hello")
    });
    ui.select("hello");
    ui.press(KeyCode::Char('r'));
    let form = raise_form(&ui);
    assert!(form.awaited.is_empty());
    assert_eq!(form.field, durable_emu_tui::model::RaiseField::Name);
    ui.press(KeyCode::Esc);
    // The same rule on the command line, for an instance still running.
    let row = ui.model.instances.rows["hello"].clone();
    let mut running = row.clone();
    running.status = RuntimeStatus::Running;
    running.awaited_events.clear();
    assert_eq!(
        durable_emu_tui::model::raise_warning(&running, "Go").as_deref(),
        Some("buffered; the instance waits for no event")
    );
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
    // Purging a running instance is refused before any confirmation, with its reason.
    ui.select("approval");
    ui.command("purge");
    assert!(ui.model.overlay.is_none(), "no confirmation to say yes to");
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(error && message.contains("terminate it first"), "{message}");
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

#[test]
fn a_followed_history_that_moves_to_a_shorter_execution_fills_the_page_from_the_top() {
    let mut ui = Harness::new(100, 10);
    ui.command(r#"start PeriodicCleanup {"iterations":1,"interval_hours":1}"#);
    ui.wait_until("the cleanup to wait on its timer", |model| {
        model
            .selected()
            .is_some_and(|row| row.name == "PeriodicCleanup")
    });
    ui.press(KeyCode::Enter);
    ui.wait_until("the first execution's timer in the history", |model| {
        model.history.as_ref().is_some_and(|history| {
            history
                .events()
                .iter()
                .any(|event| matches!(event.kind, EventKind::TimerCreated { .. }))
        })
    });
    ui.settle();
    let first = ui.model.history.as_ref().unwrap();
    assert!(
        first.offset > 0,
        "the long first execution ({} events) scrolled to follow",
        first.events().len()
    );
    ui.command("advance 1h");
    ui.wait_until("the last execution shown", |model| {
        model.history.as_ref().is_some_and(|history| {
            history.execution == 1
                && history
                    .events()
                    .iter()
                    .any(|event| matches!(event.kind, EventKind::ExecutionCompleted { .. }))
        })
    });
    let last = ui.model.history.as_ref().unwrap();
    assert_eq!(
        last.offset,
        0,
        "{} events fit the page; none may hide above it",
        last.events().len()
    );
}

// ----- point 14: the smaller things -------------------------------------------------------------

fn status_text(ui: &Harness) -> String {
    ui.model
        .status
        .as_ref()
        .map(|(text, _)| text.clone())
        .unwrap_or_default()
}

fn visible_ids(ui: &Harness) -> Vec<String> {
    ui.model
        .instances
        .visible
        .iter()
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn slash_opens_an_empty_filter_esc_puts_the_old_one_back_and_enter_applies_the_new() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.command("filter approv");
    assert_eq!(visible_ids(&ui), ["approval"]);
    ui.press(KeyCode::Char('/'));
    match &ui.model.overlay {
        Some(Overlay::Filter(input)) => assert_eq!(input.text(), "", "starts empty"),
        other => panic!("the filter line is open, not {other:?}"),
    }
    ui.type_text("hello");
    assert_eq!(visible_ids(&ui), ["hello"], "applied as typed");
    ui.press(KeyCode::Esc);
    assert_eq!(ui.model.instances.filter, "approv");
    assert_eq!(
        visible_ids(&ui),
        ["approval"],
        "Esc restores the old filter"
    );
    ui.press(KeyCode::Char('/'));
    ui.type_text("hello");
    ui.press(KeyCode::Enter);
    assert_eq!(ui.model.instances.filter, "hello");
    assert_eq!(visible_ids(&ui), ["hello"]);
    // Esc on a later filter line goes back to this one, not to the first.
    ui.press(KeyCode::Char('/'));
    ui.press(KeyCode::Esc);
    assert_eq!(ui.model.instances.filter, "hello");
}

#[test]
fn instance_actions_refuse_when_the_filter_hides_every_row_instead_of_acting_on_a_hidden_one() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.select("approval");
    // Filter and act before any tick rebuilds the list: the old selection is hidden by then.
    for key in "/nothing-matches"
        .chars()
        .map(KeyCode::Char)
        .chain([KeyCode::Enter])
    {
        ui.send(Msg::Key(KeyEvent::new(key, KeyModifiers::NONE)));
    }
    let before = ui.commands.len();
    for key in ['t', 'p', 'u', 'R', 'D', 'r', 'F'] {
        ui.send(Msg::Key(KeyEvent::new(
            KeyCode::Char(key),
            KeyModifiers::NONE,
        )));
        assert!(
            ui.model.overlay.is_none(),
            "{key} opened {:?}",
            ui.model.overlay
        );
        let (message, error) = ui.model.status.clone().unwrap();
        assert!(
            error && message.contains("hides every instance"),
            "{key}: {message}"
        );
        assert_eq!(ui.model.view, View::Instances, "{key} switched views");
    }
    ui.command("suspend");
    assert!(status_text(&ui).contains("hides every instance"));
    assert!(
        !ui.commands[before..].iter().any(|command| matches!(
            command,
            Command::Terminate { .. }
                | Command::Suspend(_)
                | Command::Resume(_)
                | Command::Restart(_)
                | Command::Purge(_)
                | Command::Raise { .. }
        )),
        "nothing was sent to the engine: {:?}",
        &ui.commands[before..]
    );
    assert_eq!(ui.status_of("approval"), Some(RuntimeStatus::Running));
    // A named instance is still reachable from the command line.
    ui.command("suspend approval");
    ui.wait_until("suspended", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Suspended
    });
}

#[test]
fn the_confirm_dialog_names_its_keys_even_when_the_question_wraps() {
    let mut ui = Harness::new(80, 24);
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval-with-a-long-id-0123456789",
    );
    ui.select("approval-with-a-long-id-0123456789");
    ui.press(KeyCode::Char('t'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Confirm { .. })));
    let screen = ui.screen();
    assert!(
        screen.contains("y / Enter confirm · n / Esc cancel"),
        "{screen}"
    );
    ui.press(KeyCode::Esc);
    assert_eq!(status_text(&ui), "cancelled");
}

#[test]
fn purge_of_a_running_suspended_or_pending_instance_is_refused_before_asking() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    ui.select("approval");
    ui.press(KeyCode::Char('D'));
    assert!(ui.model.overlay.is_none());
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(error, "{message}");
    assert!(
        message.contains("Running") && message.contains("terminate it first"),
        "{message}"
    );
    ui.press(KeyCode::Char('p'));
    ui.wait_until("suspended", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Suspended
    });
    ui.press(KeyCode::Char('D'));
    assert!(ui.model.overlay.is_none());
    assert!(status_text(&ui).contains("Suspended"));
    assert!(
        !ui.commands.iter().any(|c| matches!(c, Command::Purge(_))),
        "the engine was never asked"
    );
    // Ended, it asks first.
    ui.command("terminate");
    ui.press(KeyCode::Char('y'));
    ui.wait_until("terminated", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Terminated
    });
    ui.press(KeyCode::Char('D'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Confirm { .. })));
}

#[test]
fn sub_orchestrations_hang_under_their_parent_with_tee_and_corner_glyphs() {
    let mut ui = harness();
    ui.handle.set_auto_skip(true).unwrap();
    ui.start("BatchOrders", json!(3), "batch");
    ui.wait_until("three children listed", |model| {
        model
            .instances
            .visible
            .iter()
            .filter(|(_, depth)| *depth == 1)
            .count()
            == 3
    });
    let at = ui
        .model
        .instances
        .visible
        .iter()
        .position(|(id, _)| id == "batch")
        .unwrap();
    ui.wait_until("every grandchild listed", |model| {
        model.instances.visible.len() == 7
    });
    // batch, then three OrderSagas, each with its ProcessPayment under it.
    let branches = &ui.model.instances.branches[at..at + 7];
    assert_eq!(
        branches,
        ["", "├ ", "│ └ ", "├ ", "│ └ ", "└ ", "  └ "],
        "the last child is a corner and nothing continues below it"
    );
    let screen = ui.screen();
    assert!(
        screen.contains("├ OrderSaga") && screen.contains("└ OrderSaga"),
        "{screen}"
    );
}

#[test]
fn the_errors_view_draws_its_tree_with_branch_glyphs() {
    let mut ui = harness();
    ui.handle.set_auto_skip(true).unwrap();
    ui.start("OrderSaga", json!({"fail_at": "ShipOrder"}), "saga");
    ui.wait_until("the saga to fail", |model| {
        model
            .instances
            .rows
            .get("saga")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    ui.select("saga");
    ui.press(KeyCode::Char('5'));
    ui.wait_until("the tree", |model| model.derived.errors.len() > 2);
    let screen = ui.screen();
    assert!(screen.contains("└ ✗ ShipOrder #2"), "{screen}");
    assert!(screen.contains("  └ → compensated"), "{screen}");
}

#[test]
fn the_fan_out_view_says_when_the_execution_has_no_fan_out_and_what_shows_one() {
    let mut ui = harness();
    ui.start("HelloSequence", json!(null), "hello");
    ui.wait_until("hello to complete", |model| {
        model
            .instances
            .rows
            .get("hello")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    ui.select("hello");
    ui.press(KeyCode::Char('4'));
    ui.wait_until("the history", |model| {
        model
            .history
            .as_ref()
            .is_some_and(|history| !history.loading)
    });
    ui.settle();
    assert!(ui.model.derived.fanout.is_empty());
    let screen = ui.screen();
    assert!(screen.contains("no fan-out in this execution"), "{screen}");
    assert!(screen.contains(":start FanOutFanIn"), "{screen}");
}

/// The screen drawn with `theme`, one line per row.
fn screen_with(ui: &Harness, theme: &durable_emu_tui::theme::Theme) -> ratatui::buffer::Buffer {
    let area = ui.model.area;
    let mut terminal =
        ratatui::Terminal::new(ratatui::backend::TestBackend::new(area.width, area.height))
            .unwrap();
    terminal
        .draw(|frame| durable_emu_tui::view::render(frame, &ui.model, theme))
        .unwrap();
    terminal.backend().buffer().clone()
}

#[test]
fn the_timeline_has_a_legend_and_marks_failures_without_colour_under_no_color() {
    use durable_emu_tui::theme::{DEFAULT_THEME, Theme};
    let mut ui = Harness::new(80, 24);
    ui.handle.set_auto_skip(true).unwrap();
    ui.start(
        "OrderSaga",
        json!({"order_id": "o2", "fail_at": "ChargeCard"}),
        "saga",
    );
    ui.wait_until("the saga to fail", |model| {
        model
            .instances
            .rows
            .get("saga")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    ui.select("saga:0");
    ui.press(KeyCode::Char('3'));
    ui.wait_until("the bars", |model| !model.derived.timeline.bars.is_empty());
    let plain = Theme::parse(DEFAULT_THEME, true).unwrap();
    let buffer = screen_with(&ui, &plain);
    let failed = ui
        .model
        .derived
        .timeline
        .bars
        .iter()
        .filter(|bar| bar.failed)
        .count();
    assert_eq!(failed, 3, "three failed attempts");
    let mut marks = 0;
    for y in 3..22 {
        for x in 0..80 {
            let cell = &buffer[(x, y)];
            if cell.symbol() == "✗" {
                marks += 1;
                assert_eq!(cell.fg, ratatui::style::Color::Reset, "no colour");
                assert!(
                    cell.modifier.contains(ratatui::style::Modifier::BOLD),
                    "bold instead"
                );
            }
        }
    }
    assert_eq!(marks, failed, "one mark per failed bar");
    let legend: String = (0..80).map(|x| buffer[(x, 22)].symbol()).collect();
    for what in [
        "activity",
        "timer",
        "sub-orchestration",
        "still open",
        "✗ failed",
    ] {
        assert!(legend.contains(what), "{legend}");
    }
}

#[test]
fn help_is_always_in_the_footer_whatever_the_width_and_the_message() {
    let mut ui = Harness::new(80, 24);
    for view in View::ALL {
        ui.press(KeyCode::Char(view.digit()));
        let footer = ui.screen().lines().nth(23).unwrap().to_string();
        assert!(footer.contains("? help"), "{view:?}: {footer}");
    }
    ui.model.status = Some(("x".repeat(200), true));
    let footer = ui.screen().lines().nth(23).unwrap().to_string();
    assert!(footer.contains("? help"), "{footer}");
    let mut narrow = Harness::new(40, 12);
    narrow.settle();
    let footer = narrow.screen().lines().nth(11).unwrap().to_string();
    assert!(footer.contains("? help"), "{footer}");
}

#[test]
fn n_opens_the_start_form_in_every_view_but_clock_where_it_is_the_next_timer() {
    let mut ui = harness();
    for view in View::ALL {
        ui.press(KeyCode::Char(view.digit()));
        assert_eq!(ui.model.view, view);
        ui.press(KeyCode::Char('n'));
        if view == View::Clock {
            assert!(ui.model.overlay.is_none(), "Clock: n is the next timer");
            assert!(ui.commands.contains(&Command::NextTimer));
        } else {
            assert!(
                matches!(ui.model.overlay, Some(Overlay::Start(_))),
                "{view:?}: {:?}",
                ui.model.overlay
            );
            ui.press(KeyCode::Esc);
        }
    }
}

#[test]
fn tab_completes_commands_and_names_on_the_command_line_and_up_down_walk_its_history() {
    let mut ui = harness();
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "x", "timeout_hours": 5}),
        "approval",
    );
    let line = |ui: &Harness| match &ui.model.overlay {
        Some(Overlay::Command(input)) => input.text().to_string(),
        other => panic!("the command line is open, not {other:?}"),
    };
    ui.press(KeyCode::Char(':'));
    ui.type_text("sta");
    ui.press(KeyCode::Tab);
    assert_eq!(line(&ui), "start ");
    ui.type_text("Hello");
    ui.press(KeyCode::Tab);
    assert_eq!(line(&ui), "start HelloSequence ");
    ui.press(KeyCode::Enter);
    assert!(ui.commands.contains(&Command::Start {
        name: "HelloSequence".into(),
        input: json!(null)
    }));
    // Several matches: the word grows as far as they agree and the status line lists them.
    ui.press(KeyCode::Char(':'));
    ui.type_text("start bench");
    ui.press(KeyCode::Tab);
    assert_eq!(line(&ui), "start Bench");
    assert_eq!(status_text(&ui), "BenchChain · BenchFanOut");
    clear_input(&mut ui);
    ui.type_text("suspend appr");
    ui.press(KeyCode::Tab);
    assert_eq!(line(&ui), "suspend approval ");
    ui.press(KeyCode::Enter);
    ui.wait_until("suspended", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Suspended
    });
    // History: Up brings back the last command, then the one before; Down walks back to the
    // line being typed.
    ui.press(KeyCode::Char(':'));
    ui.type_text("res");
    ui.press(KeyCode::Up);
    assert_eq!(line(&ui), "suspend approval");
    ui.press(KeyCode::Up);
    assert_eq!(line(&ui), "start HelloSequence");
    ui.press(KeyCode::Down);
    ui.press(KeyCode::Down);
    assert_eq!(line(&ui), "res");
    ui.press(KeyCode::Tab);
    assert_eq!(line(&ui), "res", "resume and restart agree on no more");
    assert!(status_text(&ui).contains("restart · resume"));
}

/// Starts an approval (it waits for its event or its 72 h timer) and waits until it waits.
fn approval_waiting_in(ui: &mut Harness) {
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "r", "timeout_hours": 72}),
        "approval",
    );
    ui.wait_until("the approval to wait", |model| {
        model
            .instances
            .rows
            .get("approval")
            .is_some_and(|row| row.custom_status.is_some())
    });
}

/// Loads a build without `ApprovalWorkflow` (a real reload: the engine checks every running
/// instance against it, and a running approval cannot replay there).
fn reload_without_approval(ui: &mut Harness) -> u32 {
    let mut changed = durable_emu_engine::plugin::LoadedPlugin::builtin().unwrap();
    changed.content_hash = format!("{}-without-approval", changed.content_hash);
    changed
        .manifest
        .orchestrators
        .retain(|name| name != "ApprovalWorkflow");
    let number = ui.handle.load_build(changed).unwrap();
    ui.wait_until("the approval to diverge", |model| {
        model.instances.rows["approval"].is_diverged()
    });
    number
}

fn diverged_dialog(ui: &Harness) -> &durable_emu_tui::model::DivergedChoice {
    match &ui.model.overlay {
        Some(Overlay::Diverged(choice)) => choice,
        other => panic!("expected the Diverged dialog, got {other:?}"),
    }
}

#[test]
fn a_reload_an_instance_does_not_replay_on_shows_it_diverged_and_u_in_its_dialog_resumes_it_pinned()
{
    let mut ui = harness();
    approval_waiting_in(&mut ui);
    let new_build = reload_without_approval(&mut ui);
    let row = &ui.model.instances.rows["approval"];
    // The wire status stays Suspended; the UI shows what the engine knows.
    assert_eq!(row.status, RuntimeStatus::Suspended);
    assert_eq!(row.status_label(), "Diverged");
    let status = ui.model.status.clone().unwrap().0;
    assert!(
        status.contains(&format!("build #{new_build} loaded"))
            && status.contains("1 instance diverged"),
        "{status}"
    );
    let screen = ui.screen();
    assert!(
        screen.contains("Diverged") && screen.contains("⚲#1"),
        "{screen}"
    );

    ui.select("approval");
    ui.press(KeyCode::Enter);
    let choice = diverged_dialog(&ui);
    assert_eq!(
        (choice.pinned_build, choice.new_build),
        (Some(1), new_build)
    );
    let screen = ui.screen();
    assert!(
        screen.contains("u     resume pinned on #1")
            && screen.contains(&format!("R     restart on the new build #{new_build}"))
            && screen.contains("t     terminate"),
        "{screen}"
    );
    ui.press(KeyCode::Char('u'));
    assert!(ui.model.overlay.is_none());
    assert!(ui.commands.contains(&Command::Resume("approval".into())));
    ui.wait_until("the approval to run pinned", |model| {
        let row = &model.instances.rows["approval"];
        row.status == RuntimeStatus::Running && row.pinned && !row.is_diverged()
    });
    assert!(ui.handle.instance("approval").unwrap().unwrap().pinned);
    assert!(
        ui.screen().contains("⚲#1"),
        "still marked: it runs its old code"
    );
}

#[test]
fn the_diverged_dialog_offers_restart_and_terminate_and_a_refused_resume_says_why() {
    let mut ui = harness();
    approval_waiting_in(&mut ui);
    reload_without_approval(&mut ui);
    ui.select("approval");
    ui.press(KeyCode::Enter);
    ui.press(KeyCode::Esc);
    assert!(ui.model.overlay.is_none(), "Esc closes without acting");
    ui.press(KeyCode::Enter);
    ui.press(KeyCode::Char('R'));
    assert!(ui.commands.contains(&Command::Restart("approval".into())));
    // The new build has no ApprovalWorkflow: the engine refuses and the status line says why.
    ui.wait_until("the restart's answer", |model| {
        model
            .status
            .as_ref()
            .is_some_and(|(text, error)| *error && text.contains("restart approval failed"))
    });
    // A resume the engine refuses (its pinned build was not kept across a restart) shows the
    // engine's reason, which names the way out.
    let refusal = durable_emu_engine::engine::EngineError::BuildNotLoaded {
        instance_id: "approval".into(),
        build: 1,
    }
    .to_string();
    ui.send(Msg::Done(durable_emu_tui::msg::Outcome::Action {
        label: "resume approval".into(),
        result: Err(refusal),
    }));
    let (text, error) = ui.model.status.clone().unwrap();
    assert!(
        error && text.contains("#1 is not loaded") && text.contains("terminate"),
        "{text}"
    );

    ui.press(KeyCode::Enter);
    ui.press(KeyCode::Char('t'));
    assert!(matches!(ui.model.overlay, Some(Overlay::Confirm { .. })));
    ui.press(KeyCode::Char('y'));
    ui.wait_until("the approval to be terminated", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Terminated
    });
    assert_eq!(
        ui.model.instances.rows["approval"].status_label(),
        "Terminated"
    );
}

#[test]
fn build_events_are_noticed_in_the_status_line() {
    use durable_emu_engine::engine::EngineEvent;
    let mut ui = harness();
    ui.send(Msg::Engine(EngineEvent::BuildStarted {
        target: "/home/me/functions".into(),
    }));
    assert_eq!(
        ui.model.status,
        Some(("building functions …".to_string(), false))
    );
    ui.send(Msg::Engine(EngineEvent::BuildLoaded {
        number: 4,
        build_id: "b".into(),
        origin: "/home/me/functions".into(),
        orchestrators: vec!["HelloSequence".into()],
        activities: vec![],
    }));
    assert_eq!(
        ui.model.status,
        Some(("build #4 loaded".to_string(), false))
    );
    for (count, id) in ["a", "b"].into_iter().enumerate() {
        ui.send(Msg::Engine(EngineEvent::InstanceDiverged {
            instance_id: id.into(),
            build: 4,
            pinned_build: Some(3),
            reason: "build #4 has no orchestration 'X'".into(),
            diff: None,
        }));
        let text = ui.model.status.clone().unwrap().0;
        let instances = if count == 0 { "instance" } else { "instances" };
        assert!(
            text.contains(&format!("{} {instances} diverged", count + 1)),
            "{text}"
        );
    }
}

#[test]
fn f_reloads_the_stepper_on_the_same_instance_and_says_when_its_history_grew() {
    let mut ui = harness();
    approval_waiting_in(&mut ui);
    ui.select("approval");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper", |model| model.stepper.is_some());
    let opened_with = ui.model.stepper.as_ref().unwrap().events.len();
    assert!(!ui.model.stepper.as_ref().unwrap().grown);
    ui.handle
        .raise_event("approval", "Approval", json!(true))
        .unwrap();
    ui.wait_until("the stepper to notice", |model| {
        model.stepper.as_ref().is_some_and(|stepper| stepper.grown)
    });
    assert_eq!(ui.model.stepper.as_ref().unwrap().events.len(), opened_with);
    assert!(
        ui.screen().contains("history has grown: F to reload"),
        "{}",
        ui.screen()
    );
    ui.wait_until("the approval to complete", |model| {
        model.instances.rows["approval"].status == RuntimeStatus::Completed
    });
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the stepper to reopen on the whole history", |model| {
        model
            .stepper
            .as_ref()
            .is_some_and(|stepper| stepper.events.len() > opened_with && !stepper.grown)
    });
    assert_eq!(ui.model.view, View::Replay);
    assert!(!ui.screen().contains("history has grown"));
}

#[test]
fn the_stepper_of_a_diverged_instance_also_replays_on_the_active_build() {
    let mut ui = harness();
    approval_waiting_in(&mut ui);
    reload_without_approval(&mut ui);
    ui.select("approval");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the replay on the active build", |model| {
        model
            .stepper
            .as_ref()
            .and_then(|stepper| stepper.on_active.as_ref())
            .is_some_and(|on_active| on_active.result.is_some())
    });
    let stepper = ui.model.stepper.as_ref().unwrap();
    assert_eq!(stepper.build, Some(1), "steps on its own build");
    assert!(ui.commands.iter().any(
        |c| matches!(c, Command::ReplayOnActive { instance_id, .. } if instance_id == "approval")
    ));
    assert!(
        ui.screen().contains("Stepping on build #1 (pinned)"),
        "{}",
        ui.screen()
    );
}

#[test]
fn the_dot_key_pauses_and_plays_virtual_time_in_every_view() {
    let mut ui = harness();
    assert!(!ui.model.clock.playing, "tests start paused");
    ui.press(KeyCode::Char('.'));
    assert!(ui.model.clock.playing);
    assert!(ui.commands.contains(&Command::SetPlaying(true)));
    assert!(ui.handle.clock().unwrap().playing);
    assert!(ui.screen().contains(" playing"), "{}", ui.screen());
    // The faults view binds Space, not `.`; the instances view binds `n`, not `.`.
    for view in ['9', '1', '7'] {
        ui.press(KeyCode::Char(view));
        let before = ui.model.clock.playing;
        ui.press(KeyCode::Char('.'));
        assert_eq!(ui.model.clock.playing, !before, "in view {view}");
        assert_eq!(
            ui.handle.clock().unwrap().playing,
            !before,
            "in view {view}"
        );
    }
    assert!(!ui.model.clock.playing);
    assert!(ui.screen().contains(" paused"), "{}", ui.screen());
}

#[test]
fn pause_and_play_commands_stop_and_run_virtual_time() {
    let mut ui = harness();
    ui.command("play");
    assert!(ui.model.clock.playing);
    assert!(ui.handle.clock().unwrap().playing);
    ui.command("pause");
    assert!(!ui.model.clock.playing);
    let paused = ui.handle.clock().unwrap();
    assert!(!paused.playing);
    ui.settle();
    assert_eq!(
        ui.model.clock.now,
        Some(paused.now),
        "paused, the UI shows the engine's time"
    );

    ui.command("pause now");
    let (message, error) = ui.model.status.clone().unwrap();
    assert!(
        error && message.contains("pause takes nothing"),
        "{message}"
    );
    assert!(
        !ui.handle.clock().unwrap().playing,
        "a bad command changes nothing"
    );
}

#[test]
fn a_playing_clock_moves_the_ui_now_between_engine_events_and_a_paused_one_does_not() {
    use durable_emu_engine::clock::ClockKind;
    use durable_emu_engine::engine::EngineEvent;
    use durable_emu_tui::model::Model;
    use durable_emu_tui::update;
    use std::time::{Duration, Instant};

    let mut model = Model::new(
        ratatui::layout::Rect::new(0, 0, 80, 24),
        ClockKind::Virtual,
        false,
        vec![],
    );
    let start = chrono::DateTime::UNIX_EPOCH;
    let real = Instant::now();
    update(
        &mut model,
        Msg::Engine(EngineEvent::ClockMoved {
            now: start,
            playing: true,
        }),
    );
    update(&mut model, Msg::RealTime(real));
    update(&mut model, Msg::RealTime(real + Duration::from_secs(90)));
    assert_eq!(model.clock.now, Some(start + chrono::Duration::seconds(90)));

    // The engine says it paused a little later: exactly that, and it stays there.
    let paused = start + chrono::Duration::seconds(100);
    update(
        &mut model,
        Msg::Engine(EngineEvent::ClockMoved {
            now: paused,
            playing: false,
        }),
    );
    update(&mut model, Msg::RealTime(real + Duration::from_secs(200)));
    assert_eq!(model.clock.now, Some(paused));
    assert!(!model.clock.playing);
}

#[test]
fn instances_created_at_the_same_time_sort_by_start_order_live_and_after_a_reload() {
    let mut ui = harness();
    // Paused virtual time: all three are created at the same time.
    for id in ["zeta", "alpha", "mid"] {
        ui.start("HelloSequence", json!(null), id);
    }
    ui.wait_until("all three", |model| model.instances.rows.len() == 3);
    let created: Vec<_> = ["zeta", "alpha", "mid"]
        .iter()
        .map(|id| ui.model.instances.rows[*id].created_at)
        .collect();
    assert!(
        created.windows(2).all(|pair| pair[0] == pair[1]),
        "{created:?}"
    );
    let order = |ui: &Harness| -> Vec<String> {
        ui.model
            .instances
            .visible
            .iter()
            .map(|(id, _)| id.clone())
            .collect()
    };
    assert_eq!(ui.model.instances.sort_key(), SortKey::Created);
    assert_eq!(order(&ui), ["mid", "alpha", "zeta"], "newest start first");

    // Everything reloaded from the store (as after a restart) keeps that order.
    ui.send(Msg::EventsLost(1));
    ui.settle();
    ui.wait_until("the reload", |model| !model.instances.dirty);
    assert_eq!(order(&ui), ["mid", "alpha", "zeta"]);
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
    // Beside `? help` (always shown), the clock gives way to a message but keeps the time of day
    // while it fits ...
    let message = "the build failed; see the Builds view (8) for its output";
    ui.model.status = Some((message.into(), true));
    let screen = ui.screen();
    let status = screen.lines().last().unwrap();
    assert!(status.starts_with(message), "{status}");
    assert!(status.contains("? help"), "{status}");
    assert!(
        regex_time(status.trim_start_matches(message)),
        "the time of day is still shown: {status}"
    );
    // ... and steps aside altogether before the message is cut.
    let message = "the build failed; see the Builds view (8) for the compiler output";
    ui.model.status = Some((message.into(), true));
    let screen = ui.screen();
    let status = screen.lines().last().unwrap();
    assert!(status.starts_with(message), "{status}");
    assert!(status.contains("? help"), "{status}");
}

fn regex_time(text: &str) -> bool {
    text.split_whitespace()
        .any(|word| word.len() == 8 && word.chars().filter(|c| *c == ':').count() == 2)
}

/// The replay stepper of an instance a remote worker runs (an orchestration the loaded build does
/// not have) asks that worker: it is sent a probe with the history cut at the step, and the view
/// shows the actions the worker answers; nothing of the probe is recorded.
#[test]
fn the_stepper_of_a_remote_instance_shows_what_the_worker_answers_and_records_nothing() {
    use durable_emu_engine::remote::{RemoteWorkItem, WorkerInfo};
    use durable_sdk::protocol::{Action, ActionKind, ActivityOutcome, OrchestratorResponse};

    let mut ui = Harness::with_config(100, 30, |config| config.remote_workers = true);
    let hub = ui.handle.remote_hub();
    let mut connection = hub.connect(WorkerInfo {
        peer: "test worker".into(),
        ..WorkerInfo::default()
    });
    let probes_seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = std::sync::Arc::clone(&probes_seen);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let worker_hub = hub.clone();
    // A worker for `RemoteGreeter`: one activity, then completes with its result. A probe at a
    // step gets the same logic over the cut history, so its answer is the code's next call.
    let worker = std::thread::spawn(move || {
        let answer = |past: &[durable_sdk::history::HistoryEvent],
                      new: &[durable_sdk::history::HistoryEvent]| {
            let events: Vec<_> = past.iter().chain(new).collect();
            let scheduled = events
                .iter()
                .any(|event| matches!(event.kind, EventKind::TaskScheduled { .. }));
            let result = events.iter().find_map(|event| match &event.kind {
                EventKind::TaskCompleted { result, .. } => Some(result.clone()),
                _ => None,
            });
            let kind = match (scheduled, result) {
                (_, Some(result)) => ActionKind::CompleteOrchestration {
                    status: RuntimeStatus::Completed,
                    result,
                    failure: None,
                    carryover_events: Vec::new(),
                },
                (false, None) => ActionKind::ScheduleTask {
                    name: "RemoteGreet".into(),
                    input: json!("Tokyo"),
                },
                (true, None) => return OrchestratorResponse::default(),
            };
            let id = if scheduled { 1 } else { 0 };
            OrchestratorResponse {
                actions: vec![Action { id, kind }],
                ..OrchestratorResponse::default()
            }
        };
        while !stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let Ok(item) = connection.items.try_recv() else {
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            };
            match item.with_past_in_request() {
                RemoteWorkItem::Orchestrator {
                    token,
                    request,
                    probe,
                    ..
                } => {
                    if probe {
                        seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    let response = answer(&request.past_events, &request.new_events);
                    let _ = futures::executor::block_on(worker_hub.complete_orchestrator(
                        &token,
                        &request.instance_id,
                        response,
                    ));
                }
                RemoteWorkItem::Activity {
                    token,
                    instance_id,
                    task_id,
                    input,
                    ..
                } => {
                    let _ = futures::executor::block_on(worker_hub.complete_activity(
                        &token,
                        &instance_id,
                        task_id,
                        ActivityOutcome::Completed {
                            result: json!(format!("Hello, {}!", input.as_str().unwrap_or(""))),
                        },
                    ));
                }
                RemoteWorkItem::Entity { .. } => {}
            }
        }
    });
    ui.start("RemoteGreeter", json!(null), "remote");
    ui.wait_until("the remote instance to complete", |model| {
        model
            .instances
            .rows
            .get("remote")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    let history_before = ui.handle.history("remote").unwrap();
    ui.select("remote");
    ui.press(KeyCode::Char('F'));
    assert_eq!(ui.model.view, View::Replay);
    ui.press(KeyCode::Char('g'));
    // Step to just after ExecutionStarted's episode began: the code's next call is the activity.
    let started = ui
        .model
        .stepper
        .as_ref()
        .unwrap()
        .events
        .iter()
        .position(|event| matches!(event.kind, EventKind::ExecutionStarted { .. }))
        .unwrap();
    for _ in 0..=started {
        ui.press(KeyCode::Char('l'));
    }
    ui.wait_until("the worker's answer at the step", |model| {
        let stepper = model.stepper.as_ref().unwrap();
        matches!(&stepper.result, Some(Ok(result)) if result.step == stepper.step)
    });
    let stepper = ui.model.stepper.as_ref().unwrap();
    let response = &stepper.result.as_ref().unwrap().as_ref().unwrap().response;
    assert!(
        matches!(
            &response.actions[..],
            [Action { kind: ActionKind::ScheduleTask { name, .. }, .. }] if name == "RemoteGreet"
        ),
        "the worker's next call at the step: {:?}",
        response.actions
    );
    assert!(probes_seen.load(std::sync::atomic::Ordering::SeqCst) > 0);
    assert_eq!(
        ui.handle.history("remote").unwrap(),
        history_before,
        "a probe records nothing"
    );
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    worker.join().unwrap();
}

fn counter_state(model: &durable_emu_tui::model::Model) -> Option<(serde_json::Value, usize)> {
    let detail = model.entities.selected_detail()?;
    let state = detail.metadata.as_ref()?.state.clone()?;
    Some((state, detail.operations.len()))
}

#[test]
fn a_signal_from_the_command_line_runs_on_the_counter_and_the_entities_view_follows_it() {
    let mut ui = harness();
    ui.command("signal @counter@a add 5");
    ui.press(KeyCode::Char('0'));
    assert_eq!(ui.model.view, View::Entities);
    ui.wait_until("the counter at 5", |model| {
        counter_state(model) == Some((json!(5), 1))
    });
    // Another signal: EntityUpdated reloads the list and the entity shown.
    ui.command("signal @counter@a add 2");
    ui.wait_until("the counter at 7", |model| {
        counter_state(model) == Some((json!(7), 2))
    });
    let screen = ui.screen();
    assert!(screen.contains("@counter@a"), "{screen}");
    assert!(screen.contains("add 2 → 7"), "{screen}");
}

#[test]
fn the_transfer_sample_failing_halfway_reads_through_the_errors_view_into_the_account_log() {
    let mut ui = Harness::with_config(100, 30, |config| {
        config.faults = durable_emu_engine::faults::parse_scenario(include_str!(
            "../../../assets/scenarios/transfer-fails-halfway.toml"
        ))
        .unwrap();
    });
    ui.start(
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
        "transfer",
    );
    ui.wait_until("the transfer to fail", |model| {
        model
            .instances
            .rows
            .get("transfer")
            .is_some_and(|row| row.status == RuntimeStatus::Failed)
    });
    ui.select("transfer");
    ui.press(KeyCode::Char('5'));
    ui.wait_until("the failed deposit followed into bob's log", |model| {
        model
            .derived
            .errors
            .iter()
            .any(|row| row.text.starts_with("↳ @account@bob's operation log #"))
    });
    let text: Vec<String> = ui
        .model
        .derived
        .errors
        .iter()
        .map(|row| row.text.clone())
        .collect();
    assert!(
        text.iter()
            .any(|line| line.starts_with("✗ entity @account@bob deposit #")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|line| line == "→ compensated (@account@alice refund), then rethrew"),
        "{text:#?}"
    );
}

#[test]
fn the_replay_stepper_steps_through_a_transfer_pairing_entity_calls_with_their_answers() {
    let mut ui = harness();
    ui.start(
        "Transfer",
        json!({"from": "alice", "to": "bob", "amount": 30}),
        "transfer",
    );
    ui.wait_until("the transfer to complete", |model| {
        model
            .instances
            .rows
            .get("transfer")
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    ui.select("transfer");
    ui.press(KeyCode::Char('F'));
    ui.wait_until("the last step replayed", |model| {
        model.stepper.as_ref().is_some_and(
            |stepper| matches!(&stepper.result, Some(Ok(result)) if result.step == stepper.step),
        )
    });
    let stepper = ui.model.stepper.as_ref().unwrap();
    assert_eq!(stepper.step, stepper.events.len());
    let response = &stepper.result.as_ref().unwrap().as_ref().unwrap().response;
    assert!(response.nondeterminism.is_none(), "{response:?}");
    let calls: Vec<(&str, bool)> = stepper
        .calls
        .iter()
        .map(|call| (call.call.as_str(), call.completed_at.is_some()))
        .collect();
    assert_eq!(
        calls,
        [
            ("lock_entities @account@alice, @account@bob", true),
            ("call_entity @account@alice withdraw", true),
            ("call_entity @account@bob deposit", true),
            ("unlock (end of the critical section) @account@alice", false),
            ("unlock (end of the critical section) @account@bob", false),
        ]
    );
    // One step back and forth replays with entity answers in the prefix.
    ui.press(KeyCode::Char('h'));
    ui.press(KeyCode::Char('l'));
    ui.wait_until("the step's answer", |model| {
        let stepper = model.stepper.as_ref().unwrap();
        matches!(&stepper.result, Some(Ok(result)) if result.step == stepper.step)
    });
}
