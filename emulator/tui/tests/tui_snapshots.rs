//! Every view of the terminal UI at 80x24 (the smallest supported terminal), drawn on ratatui's
//! `TestBackend` and compared with insta snapshots (docs/architecture.md#tests-in-layers). The
//! instances have fixed ids; wall-clock dates, build ids and generated ids are filtered out.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_engine::remote::{NameFilter, WorkFilters, WorkerInfo};
use durable_emu_testing::tui::Harness;
use durable_emu_tui::model::View;
use durable_emu_tui::msg::Msg;
use durable_sdk::history::RuntimeStatus;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde_json::json;

fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z?( UTC)?",
            "[date]",
        ),
        (r"\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[date]"),
        (r"[0-9a-f]{32}", "[hex]"),
        (r"build [0-9a-f-]{8,}", "build [id]"),
        // A whole build id (wide terminals): it changes with every compilation.
        (r"\b[0-9a-f]{16}-[0-9a-f]{0,4}", "[build id]"),
        // A build id shortened in a column: it changes with every compilation.
        (r"\b[0-9a-f]{8,}…", "[build id]…"),
        // ... and the last visible character of one that a box covers.
        (r"┐[0-9a-f]…", "┐#…"),
        // The time left on a timer moves with virtual time.
        (r"timer \d+[dhms]\d*[dhms]?", "timer [left]"),
        // How completions batch into episodes depends on worker timing.
        (r"completions/episode .*", "completions/episode [sparkline]"),
        // An event's timestamp in its JSON has the seconds' fraction.
        (r"\[date\]\.\d+Z", "[date]Z"),
    ]
}

macro_rules! snapshot {
    ($name:expr, $screen:expr) => {
        insta::with_settings!({ filters => filters(), prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!($name, $screen);
        });
    };
}

/// The samples every snapshot starts from: a completed chain, a saga that failed and
/// compensated, an approval waiting on its timer, and a finished fan-out.
fn samples() -> Harness {
    samples_at(80, 24)
}

/// [`samples`] in a terminal of `width` x `height`.
fn samples_at(width: u16, height: u16) -> Harness {
    let mut ui = Harness::new(width, height);
    ui.start("HelloSequence", json!(null), "hello");
    ui.start(
        "OrderSaga",
        json!({"order_id": "o1", "amount": 5, "fail_at": "ShipOrder"}),
        "saga",
    );
    ui.start("FanOutFanIn", json!(8), "fan");
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "leave", "timeout_hours": 72}),
        "approval",
    );
    ui.wait_until("the samples to settle", |model| {
        let status = |id: &str| model.instances.rows.get(id).map(|row| row.status);
        status("hello") == Some(RuntimeStatus::Completed)
            && status("saga") == Some(RuntimeStatus::Failed)
            && status("fan") == Some(RuntimeStatus::Completed)
            && model
                .instances
                .rows
                .get("approval")
                .is_some_and(|row| row.history_len >= 8)
    });
    ui.command("sort name");
    ui
}

fn open(ui: &mut Harness, id: &str, view: View) {
    ui.select(id);
    ui.press(KeyCode::Char(view.digit()));
    ui.wait_until("the history", |model| {
        model
            .history
            .as_ref()
            .is_some_and(|history| !history.loading)
    });
    ui.settle();
}

#[test]
fn instances_view() {
    let mut ui = samples();
    ui.select("saga");
    snapshot!("instances", ui.screen());
}

const SAGA: &str = "saga-7c1e4b5d4c7e8f90";
const HELLO: &str = "hello-4b5d4c7e8f90a1b2";
const APPROVAL: &str = "approval-9e8f7a6b5c4d";

/// Ids as long as generated ones: a saga whose child is `<id>:0`, a fork `<id>-fork1` of a
/// finished chain, and an approval waiting for its answer and its timer (selected).
fn family_and_waits(width: u16, height: u16) -> Harness {
    let mut ui = Harness::new(width, height);
    ui.start(
        "OrderSaga",
        json!({"order_id": "o1", "amount": 5, "fail_at": "ShipOrder"}),
        SAGA,
    );
    ui.start("HelloSequence", json!(null), HELLO);
    ui.start(
        "ApprovalWorkflow",
        json!({"request": "leave", "timeout_hours": 72}),
        APPROVAL,
    );
    ui.wait_until("the samples to settle", |model| {
        let row = |id: &str| model.instances.rows.get(id);
        row(HELLO).is_some_and(|row| row.status == RuntimeStatus::Completed)
            && row(SAGA).is_some_and(|row| row.status == RuntimeStatus::Failed)
            && row(APPROVAL)
                .is_some_and(|row| row.awaited_events == ["Approval"] && row.history_len >= 8)
    });
    let fork = ui.handle.fork(HELLO, 4, None).unwrap();
    ui.wait_until("the fork to finish", |model| {
        model
            .instances
            .rows
            .get(&fork)
            .is_some_and(|row| row.status == RuntimeStatus::Completed)
    });
    ui.command("sort name");
    ui.select(APPROVAL);
    ui
}

#[test]
fn instances_at_80x24_keep_child_and_fork_ids_apart_from_their_parents() {
    let ui = family_and_waits(80, 24);
    let screen = ui.screen();
    assert!(screen.contains("saga-7c1:0"), "{screen}");
    assert!(screen.contains("hello-4b-fork1"), "{screen}");
    snapshot!("instances_80x24_ids", screen);
}

#[test]
fn instances_at_200x50_show_what_each_waits_for_its_custom_status_and_created() {
    let ui = family_and_waits(200, 50);
    let screen = ui.screen();
    assert!(screen.contains("WAITING"), "{screen}");
    assert!(screen.contains("Approval, timer"), "{screen}");
    snapshot!("instances_200x50_waiting", screen);
}

#[test]
fn the_history_header_says_what_the_instance_waits_for() {
    let mut ui = family_and_waits(80, 24);
    open(&mut ui, APPROVAL, View::History);
    let screen = ui.screen();
    assert!(
        screen.contains("waits for: event 'Approval' · timer due"),
        "{screen}"
    );
    snapshot!("history_waits_for", screen);
}

#[test]
fn history_view() {
    let mut ui = samples();
    open(&mut ui, "saga", View::History);
    snapshot!("history", ui.screen());
}

#[test]
fn timeline_view() {
    snapshot!("timeline", failed_payment_timeline(80, 24).screen());
}

#[test]
fn timeline_view_at_200x50() {
    snapshot!("timeline_200x50", failed_payment_timeline(200, 50).screen());
}

/// The timeline of a payment whose card is declined three times (retries with backoff).
fn failed_payment_timeline(width: u16, height: u16) -> Harness {
    let mut ui = Harness::new(width, height);
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
    open(&mut ui, "saga:0", View::Timeline);
    ui
}

#[test]
fn fanout_view() {
    let mut ui = samples();
    open(&mut ui, "fan", View::FanOut);
    snapshot!("fanout", ui.screen());
}

#[test]
fn errors_view() {
    let mut ui = samples();
    open(&mut ui, "saga", View::Errors);
    snapshot!("errors", ui.screen());
}

#[test]
fn replay_view() {
    let mut ui = samples();
    open(&mut ui, "hello", View::Replay);
    ui.press(KeyCode::Char('g'));
    for _ in 0..10 {
        ui.press(KeyCode::Char('l'));
    }
    ui.wait_until("the step's answer", |model| {
        let stepper = model.stepper.as_ref().unwrap();
        matches!(&stepper.result, Some(Ok(result)) if result.step == stepper.step)
    });
    snapshot!("replay", ui.screen());
}

/// The views whose layout changed for wide terminals, at 200x50: the history's header and
/// detail, the errors tree, the fan-out gauge, the clock.
#[test]
fn views_at_200x50() {
    let mut ui = samples_at(200, 50);
    open(&mut ui, "approval", View::History);
    snapshot!("history_200x50", ui.screen());
    open(&mut ui, "saga", View::Errors);
    snapshot!("errors_200x50", ui.screen());
    open(&mut ui, "fan", View::FanOut);
    snapshot!("fanout_200x50", ui.screen());
    ui.press(KeyCode::Char('7'));
    ui.wait_until("the timers", |model| !model.clock.timers.is_empty());
    snapshot!("clock_200x50", ui.screen());
}

#[test]
fn clock_view() {
    let mut ui = samples();
    ui.press(KeyCode::Char('7'));
    ui.wait_until("the timers", |model| !model.clock.timers.is_empty());
    snapshot!("clock", ui.screen());
}

/// Remote workers: an SDK worker connected through the sidecar is listed with who it says it
/// is, and an orchestration no executor runs waits, saying for what, in the list and here.
#[test]
fn builds_view_lists_remote_workers_and_work_waiting_for_one() {
    let mut ui = Harness::with_config(100, 24, |config| config.remote_workers = true);
    // One line per front end: the sidecar's heads the list, the HTTP API's follows.
    ui.model.workers.sidecar = "Durable Task gRPC sidecar on 127.0.0.1:4001 and [::1]:4001\n\
        Durable Functions HTTP API on http://127.0.0.1:7071 (/runtime/webhooks/durabletask/)"
        .to_string();
    let hub = ui.handle.remote_hub();
    let _worker = hub.connect(WorkerInfo {
        peer: "127.0.0.1:50412".to_string(),
        metadata: vec![
            (
                "x-user-agent".to_string(),
                "durabletask-python/1.12.0".to_string(),
            ),
            ("workerid".to_string(), "laptop-1".to_string()),
        ],
        filters: Some(WorkFilters {
            orchestrations: vec![NameFilter {
                name: "PyChain".to_string(),
                versions: Vec::new(),
            }],
            activities: Vec::new(),
            entities: Vec::new(),
        }),
        history_streaming: false,
    });
    ui.start("PyReport", json!(null), "report");
    ui.wait_until("the parked episode", |model| {
        model.workers.parked_for("report").is_some() && !model.workers.workers.is_empty()
    });
    snapshot!("instances_waiting_for_a_worker", ui.screen());
    ui.press(KeyCode::Char('8'));
    ui.wait_until("the builds", |model| !model.builds.builds.is_empty());
    snapshot!("builds_with_workers", ui.screen());
}

#[test]
fn builds_view() {
    let mut ui = samples();
    ui.press(KeyCode::Char('8'));
    ui.wait_until("the builds", |model| !model.builds.builds.is_empty());
    snapshot!("builds", ui.screen());
}

#[test]
fn help_overlay() {
    let mut ui = samples();
    ui.press(KeyCode::Char('?'));
    snapshot!("help", ui.screen());
}

#[test]
fn start_form_with_invalid_json() {
    let mut ui = samples();
    ui.press(KeyCode::Char('n'));
    ui.press(KeyCode::Tab);
    // Replace the prefilled example.
    ui.send(Msg::Key(KeyEvent::new(
        KeyCode::Char('u'),
        KeyModifiers::CONTROL,
    )));
    ui.type_text("{\"order_id\": ");
    snapshot!("start_form", ui.screen());
}

#[test]
fn terminate_confirmation() {
    let mut ui = samples();
    ui.select("approval");
    ui.press(KeyCode::Char('t'));
    snapshot!("confirm_terminate", ui.screen());
}

#[test]
fn faults_view() {
    let mut ui = Harness::new(80, 24);
    ui.handle.set_auto_skip(true).unwrap();
    ui.command(
        "fault activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds,name=flaky card",
    );
    ui.command("fault event=Approval,instance=approval-*,drop,limit=1");
    ui.start("OrderSaga", json!({"order_id": "o1", "amount": 5}), "saga");
    ui.press(KeyCode::Char('9'));
    ui.wait_until("both rules, the first fired twice", |model| {
        model.faults.rules.len() == 2 && model.faults.rules[0].fired == 2
    });
    ui.press(KeyCode::Char('j'));
    ui.press(KeyCode::Char('t'));
    ui.wait_until("the second rule off", |model| {
        model
            .status
            .as_ref()
            .is_some_and(|(text, _)| text.contains("disabled"))
    });
    ui.press(KeyCode::Char('k'));
    snapshot!("faults", ui.screen());
}

#[test]
fn fault_form_with_an_invalid_rule() {
    let mut ui = Harness::new(80, 24);
    ui.press(KeyCode::Char('9'));
    ui.press(KeyCode::Char('a'));
    ui.type_text("ChargeCard");
    ui.press(KeyCode::Tab);
    ui.press(KeyCode::Tab);
    ui.press(KeyCode::Char(' '));
    ui.press(KeyCode::Tab);
    ui.type_text("3-1");
    snapshot!("fault_form", ui.screen());
}

/// The samples after a reload without `ApprovalWorkflow`: the waiting approval diverges from
/// the new build (#2) and stays on #1.
fn diverged_samples() -> Harness {
    let mut ui = samples();
    let mut changed = durable_emu_engine::plugin::LoadedPlugin::builtin().unwrap();
    changed.content_hash = format!("{}-without-approval", changed.content_hash);
    changed
        .manifest
        .orchestrators
        .retain(|name| name != "ApprovalWorkflow");
    ui.handle.load_build(changed).unwrap();
    ui.wait_until("the approval to diverge", |model| {
        model.instances.rows["approval"].is_diverged()
    });
    ui
}

#[test]
fn diverged_dialog() {
    let mut ui = diverged_samples();
    ui.select("approval");
    ui.press(KeyCode::Enter);
    snapshot!("diverged_dialog", ui.screen());
}

#[test]
fn errors_view_of_a_diverged_instance_shows_the_diff_wrapped() {
    use durable_sdk::protocol::{CallKind, DurableCall, NonDeterminism};
    let mut ui = diverged_samples();
    open(&mut ui, "approval", View::Errors);
    // The built-in samples cannot be edited, so the diff an edited build would produce (a timer
    // before the first call) is put on the row the engine reported diverged.
    let diff = NonDeterminism {
        sequence_id: 0,
        expected: Some(DurableCall {
            kind: CallKind::Activity,
            name: "RequestApproval".into(),
        }),
        actual: Some(DurableCall {
            kind: CallKind::Timer,
            name: String::new(),
        }),
    };
    let row = ui.model.instances.rows.get_mut("approval").unwrap();
    let divergence = row.divergence.as_mut().unwrap();
    divergence.reason = diff.to_string();
    divergence.diff = Some(diff);
    snapshot!("errors_diverged", ui.screen());
}

#[test]
fn event_json_with_a_long_value_wraps() {
    let mut ui = Harness::new(80, 24);
    ui.start(
        "ApprovalWorkflow",
        json!({
            "request": "a leave request that explains itself at length ".repeat(6),
            "timeout_hours": 72
        }),
        "approval",
    );
    open(&mut ui, "approval", View::History);
    // The start event, with the input.
    ui.press(KeyCode::Char('g'));
    ui.press(KeyCode::Char('j'));
    ui.press(KeyCode::Enter);
    snapshot!("event_json_long_value", ui.screen());
}

#[test]
fn an_errors_row_opens_its_failure_in_full() {
    let mut ui = samples();
    open(&mut ui, "saga", View::Errors);
    ui.press(KeyCode::Enter);
    snapshot!("failure_in_full", ui.screen());
}

/// A compile failure as the watcher reports it (recorded from rustc, two errors).
fn compile_failure() -> durable_emu_engine::engine::EngineEvent {
    durable_emu_engine::engine::EngineEvent::BuildFailed {
        target: "functions".into(),
        reason: "cargo build failed in functions with 2 errors".into(),
        errors: vec![
            "error[E0308]: mismatched types\n --> src/lib.rs:1:21\n  |\n1 | pub fn f() -> u32 { \"x\" }\n  |               ---   ^^^ expected `u32`, found `&str`\n  |               |\n  |               expected `u32` because of return type".into(),
            "error[E0425]: cannot find value `total` in this scope\n --> src/lib.rs:7:5\n  |\n7 |     total\n  |     ^^^^^ not found in this scope".into(),
        ],
        first_error: Some("src/lib.rs:1:21: error[E0308]: mismatched types".into()),
    }
}

#[test]
fn builds_view_with_a_compile_error() {
    let mut ui = samples();
    ui.press(KeyCode::Char('8'));
    ui.wait_until("the builds", |model| !model.builds.builds.is_empty());
    ui.send(Msg::Engine(compile_failure()));
    ui.settle();
    snapshot!("builds_compile_error", ui.screen());
    ui.press(KeyCode::Enter);
    snapshot!("compiler_output", ui.screen());
}
