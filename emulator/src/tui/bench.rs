//! `durable-emu bench ui`: how long one frame takes with 10,000 instances and a 100,000-event
//! history selected (issue 7, Performance: at most 10 ms). A synthetic model is drawn on
//! ratatui's `TestBackend` (the terminal's own write is not included: it depends on the terminal
//! emulator, and ratatui sends only the cells that changed), and a frame is timed as the user
//! pays for it: `update` for the key, the tick, and `render` of the view.

use crate::clock::ClockKind;
use crate::engine::ExecutionHistory;
use crate::store::{ExecutionRecord, InstanceRecord};
use crate::tui::model::{Model, View};
use crate::tui::msg::{Msg, Outcome};
use crate::tui::theme::Theme;
use crate::tui::{update, view};
use chrono::{DateTime, Utc};
use durable_sdk::history::{EventKind, HistoryEvent, RuntimeStatus};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use serde_json::json;
use std::time::{Duration, Instant};

/// Frame times of one view.
#[derive(Debug, Clone)]
pub struct ViewTimes {
    /// The view.
    pub view: View,
    /// Median frame.
    pub median: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest frame.
    pub max: Duration,
}

/// A model with `instances` instances and a selected one whose history has `events` events
/// (a fan-out: one episode schedules events/2 - 2 activities, later episodes complete them).
pub fn synthetic_model(instances: usize, events: usize, width: u16, height: u16) -> Model {
    let start: DateTime<Utc> = DateTime::UNIX_EPOCH + chrono::Duration::days(20_000);
    let mut model = Model::new(
        Rect::new(0, 0, width, height),
        ClockKind::Virtual,
        false,
        vec!["FanOutFanIn".into()],
    );
    let records: Vec<InstanceRecord> = (0..instances)
        .map(|i| InstanceRecord {
            instance_id: format!("instance-{i:06}"),
            name: [
                "FanOutFanIn",
                "HelloSequence",
                "OrderSaga",
                "ApprovalWorkflow",
            ][i % 4]
                .into(),
            execution_id: format!("execution-{i}"),
            status: [
                RuntimeStatus::Completed,
                RuntimeStatus::Running,
                RuntimeStatus::Failed,
            ][i % 3],
            input: json!(i),
            output: json!(null),
            failure: None,
            custom_status: Some(json!({"done": i % 100, "total": 100})),
            created_at: start + chrono::Duration::seconds(i as i64),
            updated_at: start + chrono::Duration::seconds(i as i64),
            parent: None,
            history_len: 10,
            build: Some(1),
            pinned: false,
            divergence: None,
        })
        .collect();
    update(&mut model, Msg::Done(Outcome::Instances(Ok(records))));
    update(&mut model, Msg::Tick);
    let selected = "instance-000000".to_string();
    model.instances.selected_id = Some(selected.clone());
    update(&mut model, Msg::Tick);
    let history = fan_out_history(&selected, events, start);
    model.history = Some(crate::tui::model::HistoryState::loading(selected.clone()));
    update(
        &mut model,
        Msg::Done(Outcome::History {
            instance_id: selected,
            result: Ok(vec![history]),
            child: false,
        }),
    );
    model.clock.now = Some(start + chrono::Duration::hours(1));
    model
}

fn fan_out_history(instance_id: &str, events: usize, start: DateTime<Utc>) -> ExecutionHistory {
    let calls = (events.saturating_sub(6) / 2).max(1);
    let at = |kind| HistoryEvent {
        event_id: -1,
        timestamp: start,
        kind,
    };
    let mut history = vec![
        at(EventKind::OrchestratorStarted),
        at(EventKind::ExecutionStarted {
            name: "FanOutFanIn".into(),
            version: None,
            input: json!(calls),
            instance_id: instance_id.into(),
            execution_id: "execution-0".into(),
            parent: None,
            scheduled_start: None,
        }),
    ];
    for id in 0..calls {
        history.push(HistoryEvent {
            event_id: id as i32,
            timestamp: start,
            kind: EventKind::TaskScheduled {
                name: "Square".into(),
                input: json!(id),
            },
        });
    }
    history.push(at(EventKind::OrchestratorCompleted));
    for (batch, ids) in (0..calls).collect::<Vec<_>>().chunks(500).enumerate() {
        let when = start + chrono::Duration::milliseconds(batch as i64 * 10);
        history.push(HistoryEvent {
            timestamp: when,
            ..at(EventKind::OrchestratorStarted)
        });
        for id in ids {
            history.push(HistoryEvent {
                event_id: -1,
                timestamp: when,
                kind: EventKind::TaskCompleted {
                    task_scheduled_id: *id as i32,
                    result: json!(id * id),
                },
            });
        }
        history.push(HistoryEvent {
            timestamp: when,
            ..at(EventKind::OrchestratorCompleted)
        });
    }
    ExecutionHistory {
        execution: ExecutionRecord {
            execution_id: "execution-0".into(),
            ordinal: 0,
            input: json!(calls),
            started_at: start,
        },
        builds: vec![None; history.len()],
        events: history,
    }
}

/// Times `frames` frames of each view of `model` (a key, a tick, a render).
pub fn frame_times(model: &mut Model, frames: usize) -> std::io::Result<Vec<ViewTimes>> {
    let area = model.area;
    let mut terminal = Terminal::new(TestBackend::new(area.width, area.height))?;
    let theme = Theme::default_colors();
    let mut results = Vec::new();
    let history = model.history.clone();
    let selected = model.instances.selected_id.clone();
    // The instances view last: moving its selection selects another instance.
    let mut views = View::ALL.to_vec();
    views.rotate_left(1);
    for view in views {
        model.view = view;
        model.history.clone_from(&history);
        model.instances.selected_id.clone_from(&selected);
        model.overlay = None;
        let mut times = Vec::with_capacity(frames);
        for frame in 0..frames {
            // Alternate down and up so the selection moves and the list scrolls.
            let code = if frame % 2 == 0 {
                KeyCode::Down
            } else {
                KeyCode::Up
            };
            let started = Instant::now();
            // Commands (e.g. the stepper's replay) would run on the executor; not timed here.
            let _ = update(model, Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
            let _ = update(model, Msg::Tick);
            terminal.draw(|f| view::render(f, model, &theme))?;
            times.push(started.elapsed());
        }
        times.sort_unstable();
        results.push(ViewTimes {
            view,
            median: times[times.len() / 2],
            p99: times[(times.len() * 99 / 100).min(times.len() - 1)],
            max: times[times.len() - 1],
        });
    }
    Ok(results)
}
