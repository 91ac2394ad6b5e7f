//! Durable HTTP calls in the UI: the History view (rows and an event's whole exchange), the
//! Timeline (a bar per request and poll), the Errors view (a failing request and its retry) and
//! the replay stepper, driven through the pure `update` with a fabricated history (no engine, no
//! server: the history is what the SDK's polling loop and the host record) and drawn on ratatui's
//! `TestBackend` for insta snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, Utc};
use durable_emu_engine::ExecutionRecord;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{EngineEvent, ExecutionHistory};
use durable_emu_engine::inspect::replay::StepResult;
use durable_emu_tui::command::Command;
use durable_emu_tui::model::{Model, Overlay};
use durable_emu_tui::msg::{Msg, Outcome};
use durable_emu_tui::theme::Theme;
use durable_emu_tui::{update, view};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use durable_sdk::protocol::{Action, ActionKind, OrchestratorResponse};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use serde_json::json;

/// `HttpJobWorkflow`: POST a job (202 + Location), poll its status URL twice after the
/// `Retry-After` second (202, then 200 with the result), then notify a second API, whose first
/// attempt an injected fault refused and whose retry (5 s later) answered 204.
const JOB_HISTORY: &str = r#"
    OrchestratorStarted @0
    ExecutionStarted HttpJobWorkflow {"steps":3}
    TaskScheduled #0 BuiltIn::HttpActivity {"method":"POST","uri":"http://127.0.0.1:8088/jobs","headers":{"Content-Type":"application/json"},"content":"{\"steps\":3}","timeoutMs":100000,"poll":0}
    OrchestratorCompleted
    OrchestratorStarted @0:01
    TaskCompleted #0 {"statusCode":202,"headers":{"location":"http://127.0.0.1:8088/jobs/1","retry-after":"1"},"content":"{\"id\":1,\"state\":\"running\"}"}
    TimerCreated #1 @0:02
    OrchestratorCompleted
    OrchestratorStarted @0:02
    TimerFired #1 @0:02
    TaskScheduled #2 BuiltIn::HttpActivity {"method":"GET","uri":"http://127.0.0.1:8088/jobs/1","timeoutMs":100000,"poll":1}
    OrchestratorCompleted
    OrchestratorStarted @0:03
    TaskCompleted #2 {"statusCode":202,"headers":{"location":"http://127.0.0.1:8088/jobs/1","retry-after":"1"},"content":"{\"id\":1,\"state\":\"running\"}"}
    TimerCreated #3 @0:04
    OrchestratorCompleted
    OrchestratorStarted @0:04
    TimerFired #3 @0:04
    TaskScheduled #4 BuiltIn::HttpActivity {"method":"GET","uri":"http://127.0.0.1:8088/jobs/1","timeoutMs":100000,"poll":2}
    OrchestratorCompleted
    OrchestratorStarted @0:05
    TaskCompleted #4 {"statusCode":200,"headers":{"content-type":"application/json"},"content":"{\"id\":1,\"state\":\"done\",\"result\":42}"}
    TaskScheduled #5 BuiltIn::HttpActivity {"method":"POST","uri":"http://127.0.0.1:8089/notify","content":"job 1 done","timeoutMs":100000,"poll":0}
    OrchestratorCompleted
    OrchestratorStarted @0:06
    FaultInjected rule 1: refuse
    TaskFailed #5 HttpConnectionFailed: connection refused (injected)
    TimerCreated #6 @0:11
    OrchestratorCompleted
    OrchestratorStarted @0:11
    TimerFired #6 @0:11
    TaskScheduled #7 BuiltIn::HttpActivity {"method":"POST","uri":"http://127.0.0.1:8089/notify","content":"job 1 done","timeoutMs":100000,"poll":0}
    OrchestratorCompleted
    OrchestratorStarted @0:12
    TaskCompleted #7 {"statusCode":204,"headers":{},"content":""}
    ExecutionCompleted #8 Completed 42
    OrchestratorCompleted
"#;

/// The job's history, with the fault marker naming the request it refused (as the host writes it).
fn job_events() -> Vec<HistoryEvent> {
    let mut events = durable_emu_testing::history::events(JOB_HISTORY);
    for event in &mut events {
        if let EventKind::FaultInjected {
            target,
            task_scheduled_id,
            ..
        } = &mut event.kind
        {
            *target = "http POST http://127.0.0.1:8089/notify (poll 0)".into();
            *task_scheduled_id = Some(5);
        }
    }
    events
}

fn at(seconds: i64) -> DateTime<Utc> {
    durable_emu_testing::history::base_time() + chrono::Duration::seconds(seconds)
}

/// A UI with the job instance selected and its history loaded.
struct Ui {
    model: Model,
    commands: Vec<Command>,
}

impl Ui {
    fn new(width: u16, height: u16, view_key: char) -> Self {
        Self::with(
            width,
            height,
            view_key,
            RuntimeStatus::Completed,
            job_events(),
        )
    }

    /// The job instance in `status` with `events` as its history, in the view of `view_key`.
    fn with(
        width: u16,
        height: u16,
        view_key: char,
        status: RuntimeStatus,
        events: Vec<HistoryEvent>,
    ) -> Self {
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
            now: at(60),
            playing: false,
        }));
        ui.send(Msg::Engine(EngineEvent::InstanceCreated {
            instance_id: "job-1".into(),
            name: "HttpJobWorkflow".into(),
            parent_instance_id: None,
        }));
        ui.send(Msg::Engine(EngineEvent::InstanceChanged {
            instance_id: "job-1".into(),
            status,
            custom_status: None,
        }));
        ui.send(Msg::Tick);
        assert_eq!(ui.model.selected_id(), Some("job-1"));
        ui.press(KeyCode::Char(view_key));
        let asked = std::mem::take(&mut ui.commands);
        assert!(
            asked.contains(&Command::LoadHistory {
                instance_id: "job-1".into(),
                child: false
            }),
            "{asked:?}"
        );
        ui.send(Msg::Done(Outcome::History {
            instance_id: "job-1".into(),
            result: Ok(vec![ExecutionHistory {
                execution: ExecutionRecord {
                    execution_id: "e1".into(),
                    ordinal: 0,
                    input: json!({"steps": 3}),
                    started_at: at(0),
                },
                builds: vec![None; events.len()],
                events,
            }]),
            child: false,
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

#[test]
fn the_history_view_reads_requests_and_answers_as_http() {
    let ui = Ui::new(160, 40, '2');
    let screen = ui.screen();
    for expected in [
        "HTTP POST /jobs  HTTP POST http://127.0.0.1:8088/jobs {\"steps\":3}",
        "HTTP POST /jobs  HTTP 202 Accepted <- POST /jobs {\"id\":1,\"state\":\"running\"}",
        "HTTP GET /jobs/1 HTTP GET http://127.0.0.1:8088/jobs/1 (poll 1)",
        "HTTP GET /jobs/1 HTTP 200 OK <- poll 2 GET /jobs/1",
        "HttpConnectionFailed: connection refused (injected) <- POST /notify",
        "HTTP 204 No Content <- POST /notify",
    ] {
        assert!(screen.contains(expected), "{expected}\n{screen}");
    }
    assert!(!screen.contains("BuiltIn::HttpActivity"), "{screen}");
    insta::assert_snapshot!("history_http", screen);
}

#[test]
fn enter_on_an_http_event_shows_the_request_and_the_response_in_full() {
    let mut ui = Ui::new(100, 40, '2');
    // The answer to the first poll (event 13).
    ui.press(KeyCode::Char('g'));
    for _ in 0..13 {
        ui.press(KeyCode::Char('j'));
    }
    ui.press(KeyCode::Enter);
    let Some(Overlay::Text { lines, .. }) = &ui.model.overlay else {
        panic!("a text overlay: {:?}", ui.model.overlay);
    };
    let head: Vec<&str> = lines.iter().take(16).map(String::as_str).collect();
    assert_eq!(
        head,
        [
            "HTTP request #2 (poll 1) at +00:00:02",
            "GET http://127.0.0.1:8088/jobs/1",
            "time limit: 100000 ms",
            "headers: none",
            "body: empty",
            "",
            "response: 202 Accepted at +00:00:03",
            "headers:",
            "  location: http://127.0.0.1:8088/jobs/1",
            "  retry-after: 1",
            "body:",
            "  {",
            "    \"id\": 1,",
            "    \"state\": \"running\"",
            "  }",
            "",
        ]
    );
    assert_eq!(lines[16], "event JSON:");
    insta::assert_snapshot!("history_http_exchange", ui.screen());
}

#[test]
fn the_timeline_draws_each_request_and_poll_with_the_polling_timers_between() {
    let ui = Ui::new(100, 30, '3');
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
            "POST /jobs #0",
            "timer #1",
            "poll 1 GET /jobs/1 #2",
            "timer #3",
            "poll 2 GET /jobs/1 #4",
            "POST /notify #5 (attempt 1)",
            "timer #6",
            "POST /notify #7 (attempt 2)",
        ]
    );
    let screen = ui.screen();
    assert!(screen.contains("▆ http"), "{screen}");
    insta::assert_snapshot!("timeline_http", screen);
}

#[test]
fn the_errors_view_names_the_failed_request_its_fault_and_its_retry() {
    let ui = Ui::new(100, 30, '5');
    let rows: Vec<&str> = ui
        .model
        .derived
        .errors
        .iter()
        .map(|row| row.text.as_str())
        .collect();
    assert_eq!(
        rows[1..],
        [
            "✗ HTTP POST http://127.0.0.1:8089/notify #5 attempt 1: HttpConnectionFailed: connection refused (injected)",
            "injected ⚡ rule 1: refuse (http POST http://127.0.0.1:8089/notify (poll 0))",
            "→ retried after 5s",
        ]
    );
    insta::assert_snapshot!("errors_http", ui.screen());
}

#[test]
fn the_replay_stepper_names_the_http_request_of_each_step() {
    let mut ui = Ui::new(120, 36, '6');
    let stepper = ui.model.stepper.as_ref().expect("the stepper opened");
    let calls: Vec<&str> = stepper
        .all_calls
        .iter()
        .map(|call| call.call.as_str())
        .collect();
    assert_eq!(
        calls,
        [
            "call_http POST http://127.0.0.1:8088/jobs",
            "create_timer",
            "call_http GET http://127.0.0.1:8088/jobs/1 (poll 1)",
            "create_timer",
            "call_http GET http://127.0.0.1:8088/jobs/1 (poll 2)",
            "call_http POST http://127.0.0.1:8089/notify",
            "create_timer",
            "call_http POST http://127.0.0.1:8089/notify",
        ]
    );
    // Step to just after the first poll was answered (event 13).
    ui.press(KeyCode::Char('g'));
    for _ in 0..14 {
        ui.press(KeyCode::Char('l'));
    }
    let stepper = ui.model.stepper.as_ref().unwrap();
    assert_eq!(stepper.step, 14);
    let Some(Command::Step { token, step, .. }) = ui
        .commands
        .iter()
        .rev()
        .find(|command| matches!(command, Command::Step { .. }))
        .cloned()
    else {
        panic!("a step was asked for: {:?}", ui.commands);
    };
    assert_eq!(step, 14);
    // The code, having read the 202, waits on its polling timer: what a plugin would answer.
    let response = OrchestratorResponse {
        actions: vec![Action {
            id: 3,
            kind: ActionKind::CreateTimer { fire_at: at(4) },
        }],
        ..OrchestratorResponse::default()
    };
    ui.send(Msg::Done(Outcome::Stepped {
        token,
        result: Ok(Box::new(StepResult { step, response })),
    }));
    ui.send(Msg::Tick);
    let screen = ui.screen();
    assert!(
        screen.contains("step 14/37 after TaskCompleted: HTTP 202 Accepted <- poll 1 GET /jobs/1"),
        "{screen}"
    );
    insta::assert_snapshot!("replay_http", screen);
}

#[test]
fn the_stepper_names_an_http_request_the_code_emits_next() {
    let mut ui = Ui::new(120, 36, '6');
    ui.press(KeyCode::Char('g'));
    for _ in 0..10 {
        ui.press(KeyCode::Char('l'));
    }
    let Some(Command::Step { token, step, .. }) = ui
        .commands
        .iter()
        .rev()
        .find(|command| matches!(command, Command::Step { .. }))
        .cloned()
    else {
        panic!("a step was asked for");
    };
    let poll = json!({
        "method": "GET",
        "uri": "http://127.0.0.1:8088/jobs/1",
        "timeoutMs": 100000,
        "poll": 1
    });
    let response = OrchestratorResponse {
        actions: vec![Action {
            id: 2,
            kind: ActionKind::ScheduleTask {
                name: durable_sdk::http::HTTP_ACTIVITY.into(),
                input: poll,
            },
        }],
        ..OrchestratorResponse::default()
    };
    ui.send(Msg::Done(Outcome::Stepped {
        token,
        result: Ok(Box::new(StepResult { step, response })),
    }));
    ui.send(Msg::Tick);
    let screen = ui.screen();
    assert!(
        screen.contains("#2 call_http GET http://127.0.0.1:8088/jobs/1 (poll 1)"),
        "{screen}"
    );
}

#[test]
fn the_history_header_says_which_request_the_instance_waits_for() {
    // Cut after the first poll was sent (event 10): it is in flight.
    let mut events = job_events();
    events.truncate(12);
    let mut ui = Ui::with(100, 30, '2', RuntimeStatus::Running, events.clone());
    // The instance list follows live events, as the engine sends them.
    ui.send(Msg::Engine(EngineEvent::HistoryAppended {
        instance_id: "job-1".into(),
        execution_id: "e1".into(),
        first_seq: 0,
        events,
    }));
    ui.send(Msg::Tick);
    let screen = ui.screen();
    assert!(
        screen.contains("waits for: HTTP GET /jobs/1 in flight"),
        "{screen}"
    );
}
