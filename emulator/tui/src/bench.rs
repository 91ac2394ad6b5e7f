//! `durable-emu bench ui`: how long one frame takes with 10,000 instances and a 100,000-event
//! history selected (the budget is 10 ms). A synthetic model is drawn on
//! ratatui's `TestBackend` (the terminal's own write is not included: it depends on the terminal
//! emulator, and ratatui sends only the cells that changed), and a frame is timed as the user
//! pays for it: `update` for the key, the tick, and `render` of the view.

use crate::model::{Model, View};
use crate::msg::{Msg, Outcome};
use crate::theme::Theme;
use crate::{update, view};
use chrono::{DateTime, Utc};
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::ExecutionHistory;
use durable_emu_engine::{ExecutionRecord, InstanceRecord};
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
            awaited_events: Vec::new(),
            version: None,
            tags: Default::default(),
            scheduled_start: None,
        })
        .collect();
    update(&mut model, Msg::Done(Outcome::Instances(Ok(records))));
    update(&mut model, Msg::Tick);
    let selected = "instance-000000".to_string();
    model.instances.selected_id = Some(selected.clone());
    update(&mut model, Msg::Tick);
    let history = fan_out_history(&selected, events, start);
    model.history = Some(crate::model::HistoryState::loading(selected.clone()));
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

/// What the UI thread paid while a real fan-out ran (`bench ui --live-fanout N`).
#[derive(Debug, Clone)]
pub struct LiveTimes {
    /// Keys fed (one per frame).
    pub keys: usize,
    /// Engine events applied to the model.
    pub events: usize,
    /// Wall time of the fan-out, start to completion as the model saw it.
    pub fan_out: Duration,
    /// A key message to its handled model state (`update` of the key): p99 and max.
    pub key_p99: Duration,
    /// See `key_p99`.
    pub key_max: Duration,
    /// A frame (key, tick, render): p99 and max.
    pub frame_p99: Duration,
    /// See `frame_p99`.
    pub frame_max: Duration,
    /// The slowest batch of engine events and answers applied between two frames.
    pub batch_max: Duration,
}

/// Runs a real `BenchFanOut` of `activities` activities on the built-in samples (in-memory
/// engine, virtual clock, auto-skip) with the UI's own executor, and, until it completes, feeds
/// the model a key per frame (Down/Up in the instances view) and every engine event and answer,
/// as the event loop does. Times are measured on this (the UI) thread.
pub fn live_fanout(activities: u64, width: u16, height: u16) -> anyhow::Result<LiveTimes> {
    use crate::command::Executor;
    use durable_emu_engine::engine::{Engine, EngineConfig};
    use durable_emu_engine::plugin::LoadedPlugin;

    let plugin = LoadedPlugin::builtin()?;
    let mut config = EngineConfig::in_memory(plugin.clone());
    config.auto_skip = true;
    let (engine, mut events) = Engine::start_subscribed(config)?;
    let handle = engine.handle();
    let (answers_tx, answers) = crossbeam_channel::unbounded();
    let executor = Executor::start(handle.clone(), Some(plugin.clone()), answers_tx);
    let mut model = Model::new(
        Rect::new(0, 0, width, height),
        ClockKind::Virtual,
        true,
        plugin.manifest.orchestrators.clone(),
    );
    let mut terminal = Terminal::new(TestBackend::new(width, height))?;
    let theme = Theme::default_colors();
    let id = handle.start_orchestration("BenchFanOut", json!(activities), None)?;
    let started = Instant::now();
    let (mut keys, mut frames, mut batches) = (Vec::new(), Vec::new(), Vec::new());
    let mut applied = 0;
    let deadline = started + Duration::from_secs(600);
    let mut finished = None;
    while finished.is_none() && Instant::now() < deadline {
        let batch = Instant::now();
        let mut msgs = Vec::new();
        loop {
            match events.try_recv() {
                Ok(event) => msgs.push(Msg::Engine(event)),
                Err(tokio::sync::broadcast::error::TryRecvError::Lagged(count)) => {
                    msgs.push(Msg::EventsLost(count));
                }
                Err(_) => break,
            }
        }
        msgs.extend(answers.try_iter());
        for msg in msgs {
            applied += usize::from(matches!(msg, Msg::Engine(_)));
            for command in update(&mut model, msg) {
                executor.submit(command);
            }
        }
        batches.push(batch.elapsed());
        let code = if keys.len() % 2 == 0 {
            KeyCode::Down
        } else {
            KeyCode::Up
        };
        let frame = Instant::now();
        let commands = update(
            &mut model,
            Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)),
        );
        keys.push(frame.elapsed());
        let mut commands = commands;
        commands.extend(update(&mut model, Msg::Tick));
        terminal.draw(|f| view::render(f, &model, &theme))?;
        frames.push(frame.elapsed());
        for command in commands {
            executor.submit(command);
        }
        if model
            .instances
            .rows
            .get(&id)
            .is_some_and(|row| row.status.is_terminal())
        {
            finished = Some(started.elapsed());
        }
        // About a frame at 60 Hz: a user types far slower than this.
        std::thread::sleep(Duration::from_millis(2));
    }
    let fan_out = finished.ok_or_else(|| anyhow::anyhow!("the fan-out did not finish"))?;
    engine.shutdown();
    let quantiles = |mut times: Vec<Duration>| {
        times.sort_unstable();
        let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
        (p99, times[times.len() - 1])
    };
    let count = keys.len();
    let (key_p99, key_max) = quantiles(keys);
    let (frame_p99, frame_max) = quantiles(frames);
    let (_, batch_max) = quantiles(batches);
    Ok(LiveTimes {
        keys: count,
        events: applied,
        fan_out,
        key_p99,
        key_max,
        frame_p99,
        frame_max,
        batch_max,
    })
}
