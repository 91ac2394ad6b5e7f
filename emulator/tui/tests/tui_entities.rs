//! The Entities view, `:signal` and the errors tree through an entity call, driven through the pure
//! `update` with fabricated answers (no engine: the entity records, operation logs and histories
//! are written here), and drawn on ratatui's `TestBackend` for insta snapshots at 80x24 and wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use durable_emu_engine::ExecutionRecord;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{
    EngineEvent, EntityMetadata, EntityOperationOutcome, EntityOperationRecord, EntityRequester,
    ExecutionHistory,
};
use durable_emu_tui::cmdline::{self, Candidates, Completion};
use durable_emu_tui::command::Command;
use durable_emu_tui::model::{Model, Overlay, View};
use durable_emu_tui::msg::{Msg, Outcome};
use durable_emu_tui::theme::Theme;
use durable_emu_tui::{update, view};
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use serde_json::{Value, json};

fn at(seconds: i64) -> DateTime<Utc> {
    "2026-11-30T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(seconds)
}

/// A UI with the clock at `at(600)`, and what `update` asked for so far.
struct Ui {
    model: Model,
    commands: Vec<Command>,
}

impl Ui {
    fn new(width: u16, height: u16) -> Self {
        let mut ui = Self {
            model: Model::new(
                Rect::new(0, 0, width, height),
                ClockKind::Virtual,
                false,
                vec![],
            ),
            commands: Vec::new(),
        };
        ui.send(Msg::Engine(EngineEvent::ClockMoved {
            now: at(600),
            playing: false,
        }));
        ui.send(Msg::Tick);
        ui
    }

    fn send(&mut self, msg: Msg) {
        self.commands.extend(update(&mut self.model, msg));
    }

    fn press(&mut self, code: KeyCode) {
        self.send(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.send(Msg::Tick);
    }

    fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.send(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
    }

    /// Takes the commands asked for since the last call.
    fn asked(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.commands)
    }

    fn screen(&self) -> String {
        let area = self.model.area;
        let mut terminal = Terminal::new(TestBackend::new(area.width, area.height)).unwrap();
        let theme = Theme::default_colors();
        terminal
            .draw(|frame| view::render(frame, &self.model, &theme))
            .unwrap();
        let buffer = terminal.backend().buffer();
        let mut text = String::new();
        for y in 0..area.height {
            let mut line = String::new();
            for x in 0..area.width {
                line.push_str(buffer[(x, y)].symbol());
            }
            text.push_str(line.trim_end());
            text.push('\n');
        }
        text
    }
}

fn entity(id: &str, state: Value, seconds: i64) -> EntityMetadata {
    let (name, key) = id[1..].split_once('@').unwrap();
    EntityMetadata {
        instance_id: id.into(),
        name: name.into(),
        key: key.into(),
        state: Some(state),
        has_state: true,
        last_modified: at(seconds),
        backlog: 0,
        locked_by: None,
        critical_section: None,
        lock_waiters: Vec::new(),
    }
}

/// Two accounts (the first locked by a transfer, another transfer waiting for it) and a counter.
fn entities() -> Vec<EntityMetadata> {
    let mut a = entity("@account@a", json!({"balance": 50, "owner": "ada"}), 300);
    a.locked_by = Some("transfer-2".into());
    a.critical_section = Some("cs-2".into());
    a.lock_waiters = vec!["transfer-3".into()];
    a.backlog = 1;
    vec![
        a,
        entity("@account@b", json!({"balance": 150, "owner": "bob"}), 240),
        entity("@counter@a", json!(5), 120),
    ]
}

fn record(
    seq: i64,
    operation: &str,
    input: Value,
    requester: EntityRequester,
    outcome: EntityOperationOutcome,
    state: Value,
) -> EntityOperationRecord {
    EntityOperationRecord {
        seq,
        request_id: format!("r-{seq}"),
        operation: operation.into(),
        input,
        awaits_answer: !matches!(requester, EntityRequester::Client),
        requester,
        outcome,
        state_after: Some(state),
        state_known: true,
        at: at(seq * 60),
        fault: None,
    }
}

fn from_transfer(id: &str) -> EntityRequester {
    EntityRequester::Orchestration {
        instance_id: id.into(),
        execution_id: "e1".into(),
    }
}

/// `@account@a`'s log: a deposit from a client, a transfer's withdrawal, and a withdrawal an
/// injected fault failed (the state rolled back).
fn account_a_log() -> Vec<EntityOperationRecord> {
    let mut refused = record(
        3,
        "withdraw",
        json!(500),
        from_transfer("transfer-2"),
        EntityOperationOutcome::Failed {
            failure: FailureDetails::new("Overdrawn", "balance 50 is less than 500"),
        },
        json!({"balance": 50, "owner": "ada"}),
    );
    refused.fault = Some("rule 1: error Overdrawn".into());
    vec![
        record(
            1,
            "deposit",
            json!(100),
            EntityRequester::Client,
            EntityOperationOutcome::Completed {
                result: json!(null),
            },
            json!({"balance": 100, "owner": "ada"}),
        ),
        record(
            2,
            "withdraw",
            json!(50),
            from_transfer("transfer-1"),
            EntityOperationOutcome::Completed { result: json!(50) },
            json!({"balance": 50, "owner": "ada"}),
        ),
        refused,
    ]
}

/// The Entities view opened with `0`, the list and the first entity answered.
fn entities_view(width: u16, height: u16) -> Ui {
    let mut ui = Ui::new(width, height);
    // Loaded once at start, for the command line's completion of entity ids.
    assert!(ui.asked().contains(&Command::LoadEntities));
    ui.press(KeyCode::Char('0'));
    assert_eq!(ui.model.view, View::Entities);
    ui.send(Msg::Done(Outcome::Entities(Ok(entities()))));
    ui.send(Msg::Tick);
    // Opening the view asked for a fresh list (after the one under way) and the first entity.
    assert_eq!(
        ui.asked(),
        [
            Command::LoadEntities,
            Command::LoadEntity {
                instance_id: "@account@a".into(),
                for_errors: false
            }
        ]
    );
    ui.send(Msg::Done(Outcome::Entities(Ok(entities()))));
    ui.send(Msg::Done(Outcome::Entity {
        instance_id: "@account@a".into(),
        result: Ok((Some(entities()[0].clone()), account_a_log())),
        for_errors: false,
    }));
    ui.send(Msg::Tick);
    ui
}

#[test]
fn zero_opens_the_entities_view_which_lists_every_entity_and_shows_the_selected_one() {
    let ui = entities_view(80, 24);
    insta::assert_snapshot!("entities_80x24", ui.screen());
}

#[test]
fn a_wide_entities_view_shows_whole_states_and_the_whole_log() {
    let ui = entities_view(200, 50);
    insta::assert_snapshot!("entities_200x50", ui.screen());
}

#[test]
fn an_empty_entity_list_says_how_to_create_one() {
    let mut ui = Ui::new(80, 24);
    ui.press(KeyCode::Char('0'));
    ui.send(Msg::Done(Outcome::Entities(Ok(vec![]))));
    ui.send(Msg::Tick);
    let screen = ui.screen();
    assert!(
        screen.contains(":signal @counter@a add 5 creates one"),
        "{screen}"
    );
}

#[test]
fn moving_the_selection_loads_that_entity_and_an_update_reloads_the_list_and_the_shown_entity() {
    let mut ui = entities_view(80, 24);
    ui.press(KeyCode::Char('j'));
    assert_eq!(ui.model.entities.selected_id(), Some("@account@b"));
    assert_eq!(
        ui.asked(),
        [Command::LoadEntity {
            instance_id: "@account@b".into(),
            for_errors: false
        }]
    );
    ui.send(Msg::Done(Outcome::Entity {
        instance_id: "@account@b".into(),
        result: Ok((Some(entities()[1].clone()), vec![])),
        for_errors: false,
    }));
    // Another entity changed: the list reloads, the shown one does not.
    ui.send(Msg::Engine(EngineEvent::EntityUpdated {
        instance_id: "@counter@a".into(),
    }));
    ui.send(Msg::Tick);
    assert_eq!(ui.asked(), [Command::LoadEntities]);
    // The shown one changed, many times: one load of each.
    for _ in 0..5 {
        ui.send(Msg::Engine(EngineEvent::EntityUpdated {
            instance_id: "@account@b".into(),
        }));
    }
    ui.send(Msg::Done(Outcome::Entities(Ok(entities()))));
    ui.send(Msg::Tick);
    assert_eq!(
        ui.asked(),
        [
            Command::LoadEntities,
            Command::LoadEntity {
                instance_id: "@account@b".into(),
                for_errors: false
            }
        ]
    );
    // A reloaded list keeps the selected entity selected by id, wherever it moved.
    let mut list = entities();
    list.insert(0, entity("@account@0", json!({"balance": 1}), 10));
    ui.send(Msg::Done(Outcome::Entities(Ok(list))));
    assert_eq!(ui.model.entities.selected_id(), Some("@account@b"));
}

#[test]
fn entity_updates_away_from_the_view_load_nothing_until_it_shows() {
    let mut ui = Ui::new(80, 24);
    ui.send(Msg::Done(Outcome::Entities(Ok(entities()))));
    ui.asked();
    ui.send(Msg::Engine(EngineEvent::EntityUpdated {
        instance_id: "@counter@a".into(),
    }));
    ui.send(Msg::Tick);
    assert!(!ui.asked().contains(&Command::LoadEntities));
    ui.press(KeyCode::Char('0'));
    assert!(ui.asked().contains(&Command::LoadEntities));
}

#[test]
fn enter_opens_the_entity_in_full_with_its_state_and_every_operation() {
    let mut ui = entities_view(80, 24);
    ui.press(KeyCode::Enter);
    let Some(Overlay::Text { title, lines, .. }) = &ui.model.overlay else {
        panic!(
            "the entity opens in the text box, not {:?}",
            ui.model.overlay
        );
    };
    assert_eq!(title, "@account@a");
    let text = lines.join("\n");
    assert!(
        text.contains("locked by transfer-2 · waiting: transfer-3"),
        "{text}"
    );
    assert!(text.contains("  \"balance\": 50,"), "{text}");
    assert!(
        text.contains("✗ Overdrawn: balance 50 is less than 500 (state rolled back)"),
        "{text}"
    );
    assert!(text.contains("⚡ rule 1: error Overdrawn"), "{text}");
    assert!(text.contains("signal deposit 100 from client"), "{text}");
}

fn command_line(ui: &mut Ui, text: &str) {
    ui.press(KeyCode::Char(':'));
    ui.type_text(text);
    ui.press(KeyCode::Enter);
}

#[test]
fn signal_on_the_command_line_sends_json_input_else_text() {
    let mut ui = Ui::new(80, 24);
    ui.asked();
    command_line(&mut ui, "signal @counter@a add 5");
    command_line(&mut ui, "signal @Counter@a greet hello world");
    command_line(&mut ui, r#"signal @account@a deposit {"amount": 5}"#);
    command_line(&mut ui, "signal @counter@a reset");
    let signals: Vec<Command> = ui
        .asked()
        .into_iter()
        .filter(|command| matches!(command, Command::SignalEntity { .. }))
        .collect();
    let signal = |id: &str, operation: &str, input: Value| Command::SignalEntity {
        instance_id: id.into(),
        operation: operation.into(),
        input,
    };
    assert_eq!(
        signals,
        [
            signal("@counter@a", "add", json!(5)),
            signal("@Counter@a", "greet", json!("hello world")),
            signal("@account@a", "deposit", json!({"amount": 5})),
            signal("@counter@a", "reset", Value::Null),
        ]
    );
    // The answer is said on the status line.
    ui.send(Msg::Done(Outcome::Action {
        label: "signal @counter@a add".into(),
        result: Ok("sent (request 1a2b3c4d)".into()),
    }));
    assert_eq!(
        ui.model.status,
        Some((
            "signal @counter@a add: sent (request 1a2b3c4d)".into(),
            false
        ))
    );
}

#[test]
fn signal_refuses_a_bad_entity_id_or_a_missing_operation_and_keeps_the_line_open() {
    let mut ui = Ui::new(80, 24);
    ui.asked();
    command_line(&mut ui, "signal counter add 5");
    let (status, error) = ui.model.status.clone().unwrap();
    assert!(
        error && status.contains("'counter' is not an entity id"),
        "{status}"
    );
    assert!(matches!(ui.model.overlay, Some(Overlay::Command(_))));
    ui.press(KeyCode::Esc);
    command_line(&mut ui, "signal @counter@a");
    let (status, _) = ui.model.status.clone().unwrap();
    assert!(
        status.contains("signal needs an entity and an operation"),
        "{status}"
    );
    assert!(
        !ui.asked()
            .iter()
            .any(|command| matches!(command, Command::SignalEntity { .. }))
    );
}

#[test]
fn s_in_the_entities_view_prefills_the_command_line_with_the_selected_entity() {
    let mut ui = entities_view(80, 24);
    ui.press(KeyCode::Char('s'));
    match &ui.model.overlay {
        Some(Overlay::Command(input)) => assert_eq!(input.text(), "signal @account@a "),
        other => panic!("the command line opens, not {other:?}"),
    }
    ui.type_text("deposit 25");
    ui.press(KeyCode::Enter);
    assert!(ui.asked().contains(&Command::SignalEntity {
        instance_id: "@account@a".into(),
        operation: "deposit".into(),
        input: json!(25),
    }));
}

#[test]
fn tab_completes_entity_ids_after_signal() {
    let candidates = Candidates {
        entities: entities()
            .into_iter()
            .map(|entity| entity.instance_id)
            .collect(),
        ..Candidates::default()
    };
    assert_eq!(
        cmdline::complete("signal @acc", &candidates),
        Completion::Many {
            text: "signal @account@".into(),
            options: vec!["@account@a".into(), "@account@b".into()],
        }
    );
    assert_eq!(
        cmdline::complete("signal @co", &candidates),
        Completion::One("signal @counter@a ".into())
    );
    // Through the keys, with the list the UI loaded at start.
    let mut ui = Ui::new(80, 24);
    ui.send(Msg::Done(Outcome::Entities(Ok(entities()))));
    ui.press(KeyCode::Char(':'));
    ui.type_text("signal @co");
    ui.press(KeyCode::Tab);
    match &ui.model.overlay {
        Some(Overlay::Command(input)) => assert_eq!(input.text(), "signal @counter@a "),
        other => panic!("the command line stays open, not {other:?}"),
    }
}

// ----- the errors tree and the history through an entity call -----------------------------------

fn event(seconds: i64, event_id: i32, kind: EventKind) -> HistoryEvent {
    HistoryEvent {
        event_id,
        timestamp: at(seconds),
        kind,
    }
}

fn call(seconds: i64, id: i32, request: &str, entity: &str, operation: &str) -> HistoryEvent {
    event(
        seconds,
        id,
        EventKind::EntityOperationCalled {
            request_id: request.into(),
            operation: operation.into(),
            input: json!(50),
            target_instance_id: entity.into(),
            scheduled_time: None,
            parent_instance_id: "transfer-1".into(),
            parent_execution_id: "e1".into(),
        },
    )
}

/// A transfer of 50 from `@account@a` to `@account@b` inside a critical section: the deposit
/// fails (an injected fault), the withdrawal is undone, the locks released, the transfer fails.
fn failed_transfer() -> Vec<HistoryEvent> {
    let refused = FailureDetails::new("Injected", "deposit refused by rule 1");
    let wrapped = FailureDetails::new(
        "EntityOperationFailed",
        "operation 'deposit' on @account@b failed: deposit refused by rule 1",
    )
    .with_inner(refused.clone());
    vec![
        event(0, -1, EventKind::OrchestratorStarted),
        event(
            0,
            -1,
            EventKind::ExecutionStarted {
                name: "Transfer".into(),
                version: None,
                input: json!({"from": "a", "to": "b", "amount": 50}),
                instance_id: "transfer-1".into(),
                execution_id: "e1".into(),
                parent: None,
                scheduled_start: None,
            },
        ),
        event(
            0,
            0,
            EventKind::EntityLockRequested {
                critical_section_id: "cs-1".into(),
                lock_set: vec!["@account@a".into(), "@account@b".into()],
                position: 0,
                parent_instance_id: "transfer-1".into(),
            },
        ),
        event(0, -1, EventKind::OrchestratorCompleted),
        event(1, -1, EventKind::OrchestratorStarted),
        event(
            1,
            -1,
            EventKind::EntityLockGranted {
                critical_section_id: "cs-1".into(),
            },
        ),
        call(1, 1, "r-1", "@account@a", "withdraw"),
        event(1, -1, EventKind::OrchestratorCompleted),
        event(2, -1, EventKind::OrchestratorStarted),
        event(
            2,
            -1,
            EventKind::EntityOperationCompleted {
                request_id: "r-1".into(),
                output: json!(50),
            },
        ),
        call(2, 2, "r-2", "@account@b", "deposit"),
        event(2, -1, EventKind::OrchestratorCompleted),
        event(3, -1, EventKind::OrchestratorStarted),
        event(
            3,
            -1,
            EventKind::EntityOperationFailed {
                request_id: "r-2".into(),
                failure: refused,
            },
        ),
        call(3, 3, "r-3", "@account@a", "deposit"),
        event(3, -1, EventKind::OrchestratorCompleted),
        event(4, -1, EventKind::OrchestratorStarted),
        event(
            4,
            -1,
            EventKind::EntityOperationCompleted {
                request_id: "r-3".into(),
                output: json!(100),
            },
        ),
        event(
            4,
            4,
            EventKind::EntityUnlockSent {
                critical_section_id: "cs-1".into(),
                parent_instance_id: "transfer-1".into(),
                target_instance_id: "@account@a".into(),
            },
        ),
        event(
            4,
            5,
            EventKind::EntityUnlockSent {
                critical_section_id: "cs-1".into(),
                parent_instance_id: "transfer-1".into(),
                target_instance_id: "@account@b".into(),
            },
        ),
        event(
            4,
            6,
            EventKind::ExecutionCompleted {
                status: RuntimeStatus::Failed,
                result: json!(null),
                failure: Some(wrapped),
            },
        ),
        event(4, -1, EventKind::OrchestratorCompleted),
    ]
}

/// The failed transfer selected, its history answered.
fn transfer_ui(width: u16, height: u16) -> Ui {
    let mut ui = Ui::new(width, height);
    ui.send(Msg::Engine(EngineEvent::InstanceCreated {
        instance_id: "transfer-1".into(),
        name: "Transfer".into(),
        parent_instance_id: None,
    }));
    ui.send(Msg::Engine(EngineEvent::InstanceChanged {
        instance_id: "transfer-1".into(),
        status: RuntimeStatus::Failed,
        custom_status: None,
    }));
    ui.send(Msg::Tick);
    assert_eq!(ui.model.selected_id(), Some("transfer-1"));
    ui.asked();
    ui
}

fn answer_history(ui: &mut Ui) {
    assert!(ui.asked().contains(&Command::LoadHistory {
        instance_id: "transfer-1".into(),
        child: false
    }));
    ui.send(Msg::Done(Outcome::History {
        instance_id: "transfer-1".into(),
        result: Ok(vec![ExecutionHistory {
            execution: ExecutionRecord {
                execution_id: "e1".into(),
                ordinal: 0,
                input: json!(null),
                started_at: at(0),
            },
            builds: vec![None; failed_transfer().len()],
            events: failed_transfer(),
        }]),
        child: false,
    }));
    ui.send(Msg::Tick);
}

#[test]
fn the_errors_view_follows_a_failure_through_an_entity_call_into_its_operation_log() {
    let mut ui = transfer_ui(80, 24);
    ui.press(KeyCode::Char('5'));
    assert_eq!(ui.model.view, View::Errors);
    answer_history(&mut ui);
    // The failed call's entity log is asked for once.
    assert_eq!(
        ui.asked(),
        [Command::LoadEntity {
            instance_id: "@account@b".into(),
            for_errors: true
        }]
    );
    let before: Vec<String> = ui
        .model
        .derived
        .errors
        .iter()
        .map(|row| row.text.clone())
        .collect();
    assert!(
        before.contains(&"↳ @account@b's operation log: the Entities view".to_string()),
        "{before:?}"
    );
    let mut failed = record(
        7,
        "deposit",
        json!(50),
        from_transfer("transfer-1"),
        EntityOperationOutcome::Failed {
            failure: FailureDetails::new("Injected", "deposit refused by rule 1"),
        },
        json!({"balance": 150, "owner": "bob"}),
    );
    failed.request_id = "r-2".into();
    failed.fault = Some("rule 1: error Injected: deposit refused by rule 1".into());
    ui.send(Msg::Done(Outcome::Entity {
        instance_id: "@account@b".into(),
        result: Ok((Some(entities()[1].clone()), vec![failed])),
        for_errors: true,
    }));
    ui.send(Msg::Tick);
    assert!(ui.asked().is_empty(), "asked once");
    insta::assert_snapshot!("errors_entity_call", ui.screen());
}

#[test]
fn the_history_view_reads_entity_events_as_calls_and_answers() {
    let mut ui = transfer_ui(100, 30);
    ui.press(KeyCode::Char('2'));
    answer_history(&mut ui);
    insta::assert_snapshot!("history_entity_events", ui.screen());
}

#[test]
fn the_timeline_draws_entity_calls_and_lock_requests_as_bars() {
    let mut ui = transfer_ui(100, 30);
    ui.press(KeyCode::Char('3'));
    answer_history(&mut ui);
    let labels: Vec<&str> = ui
        .model
        .derived
        .timeline
        .bars
        .iter()
        .map(|bar| bar.label.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "lock @account@a, @account@b #0",
            "@account@a withdraw #1",
            "@account@b deposit #2",
            "@account@a deposit #3"
        ]
    );
    let screen = ui.screen();
    assert!(screen.contains("▒ entity"), "{screen}");
}

#[test]
fn the_entities_view_draws_in_any_terminal_size_without_panicking() {
    for (width, height) in [(20, 3), (20, 5), (40, 12), (80, 8), (300, 80)] {
        let ui = entities_view(width, height);
        let screen = ui.screen();
        assert_eq!(
            screen.lines().count(),
            usize::from(height),
            "{width}x{height}"
        );
    }
}
