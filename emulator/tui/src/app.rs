//! The imperative shell: the terminal, the panic hook, the threads that feed the event loop, and
//! the loop itself.
//!
//! Threads: one reads the terminal (keys, mouse, resizes) into the *input* channel; one forwards
//! the engine's broadcast events into the *data* channel (logging each, and turning a lag into
//! `EventsLost` so the model reloads instead of silently missing events); the executor's lanes and
//! the log layer also answer on the data channel. The loop handles input first, then data under a
//! time budget, so keys respond at once even while a 10,000-activity fan-out floods the engine;
//! one polls the handle for the episode the engine is running (a stuck orchestrator publishes no
//! event, so only polling can name it) and a SIGTERM/SIGINT handler asks the loop to quit. No
//! thread of the loop waits on the engine, so quitting works while an episode holds it;
//! it draws at most every [`FRAME_INTERVAL`] unless a key asks for an immediate redraw, and while
//! the clock runs (playing virtual time, or real time) at least every `RUNNING_CLOCK_FRAME`,
//! reading the real clock into the model first (`Msg::RealTime`: `update` reads no clock). The data
//! channel is bounded: when the UI cannot keep up, the forwarder blocks, the broadcast lags, and
//! the model reloads what it shows, so memory stays bounded.

use crate::command::{Command, Executor};
use crate::model::Model;
use crate::msg::{EpisodeRunning, Msg};
use crate::theme::Theme;
use crate::{logs, update, view};
use crossbeam_channel::{Receiver, Sender, select};
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{EngineEvent, EngineHandle};
use durable_emu_engine::plugin::LoadedPlugin;
use ratatui::Terminal;
use ratatui::backend::{Backend, CrosstermBackend};
use ratatui::crossterm::event::{self, DisableMouseCapture, EnableMouseCapture, Event};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::layout::Rect;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The shortest time between two frames drawn for data (keys draw at once).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(33);
/// How often a running clock (playing virtual time, or real time) redraws with nothing else new:
/// often enough that a seconds display never skips a second.
const RUNNING_CLOCK_FRAME: Duration = Duration::from_millis(250);
/// How long one pass may spend on data messages before drawing and reading keys again.
const DATA_BUDGET: Duration = Duration::from_millis(12);
/// Data messages waiting at most (then the engine's broadcast lags and the UI reloads).
const DATA_CAPACITY: usize = 65_536;
/// How often the running episode is polled.
const EPISODE_POLL: Duration = Duration::from_millis(500);

/// How the UI was started.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The engine's clock.
    pub clock: ClockKind,
    /// Whether the engine started with auto-skip.
    pub auto_skip: bool,
    /// Whether the engine started with virtual time playing.
    pub playing: bool,
    /// Where the rolling log file goes.
    pub log_dir: PathBuf,
    /// Where the front ends listen, or why they do not: the gRPC sidecar's line first, then one
    /// line per other front end (the HTTP API, isolation); empty: none started.
    pub sidecar: String,
}

/// How long quitting waits for the terminal reader to stop (it polls every 50 ms).
const READER_EXIT_WAIT: Duration = Duration::from_millis(300);

/// Runs the UI until the user quits. The engine keeps running; the caller shuts it down.
pub fn run(
    engine: EngineHandle,
    events: broadcast::Receiver<EngineEvent>,
    plugin: Option<LoadedPlugin>,
    options: AppOptions,
) -> anyhow::Result<()> {
    let theme = Theme::from_env().map_err(anyhow::Error::msg)?;
    let (input_tx, inputs) = crossbeam_channel::bounded::<Msg>(1_024);
    let (data_tx, data) = crossbeam_channel::bounded::<Msg>(DATA_CAPACITY);
    let _log_guard = match logs::init(&options.log_dir, data_tx.clone()) {
        Ok(guard) => Some(guard),
        Err(error) => {
            eprintln!("warning: logs stay off: {error}");
            None
        }
    };
    tracing::info!(
        "durable-emu UI started; logs in {}",
        options.log_dir.display()
    );

    let mut terminal = enter_terminal()?;
    let size = terminal.size()?;
    let orchestrators = plugin
        .as_ref()
        .map(|plugin| plugin.manifest.orchestrators.clone())
        .unwrap_or_default();
    let info = plugin
        .as_ref()
        .map(|plugin| plugin.manifest.orchestrator_info.clone())
        .unwrap_or_default();
    let mut model = Model::new(
        Rect::new(0, 0, size.width, size.height),
        options.clock,
        options.auto_skip,
        orchestrators,
    )
    .with_orchestrator_info(info)
    .with_playing(options.playing)
    .with_sidecar(options.sidecar.clone());
    let unavailable: Vec<&str> = options
        .sidecar
        .lines()
        .filter(|line| line.contains(" off: "))
        .collect();
    if !unavailable.is_empty() {
        // A default port was taken: say so where the user looks first.
        model.status = Some((unavailable.join(" · "), true));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let signals = input_tx.clone();
    if let Err(error) = ctrlc::set_handler(move || {
        let _ = signals.try_send(Msg::Quit);
    }) {
        tracing::warn!("SIGTERM/SIGINT will not quit the UI: {error}");
    }
    let reader = spawn_terminal_reader(input_tx, Arc::clone(&stop));
    spawn_event_forwarder(events, data_tx.clone());
    spawn_episode_poller(engine.clone(), data_tx.clone(), Arc::clone(&stop));
    let executor = Executor::start(engine, plugin, data_tx);
    let result = event_loop(
        &mut terminal,
        &mut model,
        &theme,
        &inputs,
        &data,
        |command| {
            executor.submit(command);
        },
    );
    stop.store(true, Ordering::Relaxed);
    leave_terminal();
    // The reader notices `stop` within one poll. When the terminal is gone (its window closed:
    // SIGHUP), crossterm's read loops on end-of-file inside the call and never returns: waiting
    // for it would keep the process (and the gRPC port) forever, so it is left behind then.
    let deadline = Instant::now() + READER_EXIT_WAIT;
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    tracing::info!("durable-emu UI stopped");
    result.map_err(Into::into)
}

/// The event loop: messages in, `update`, commands out through `submit`, frames drawn with
/// `view::render`. Returns when the model says quit or both channels are closed. Generic over the
/// backend and fed by any channels, so tests run it on a `TestBackend` with scripted messages.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    model: &mut Model,
    theme: &Theme,
    inputs: &Receiver<Msg>,
    data: &Receiver<Msg>,
    mut submit: impl FnMut(Command),
) -> std::io::Result<()> {
    let mut apply = |model: &mut Model, msg: Msg| {
        for command in update(model, msg) {
            submit(command);
        }
    };
    let never = crossbeam_channel::never();
    let mut last_draw: Option<Instant> = None;
    // Something changed since the last frame; `urgent`: a key, draw without waiting.
    let (mut dirty, mut urgent) = (true, true);
    let (mut inputs_open, mut data_open) = (true, true);
    loop {
        if model.quit {
            return Ok(());
        }
        let closed = !inputs_open && !data_open;
        let since = last_draw.map_or(FRAME_INTERVAL, |at| at.elapsed());
        // A running clock redraws by itself: ages and open timeline bars grow with it.
        let clock_due = model.clock.runs() && since >= RUNNING_CLOCK_FRAME;
        if urgent || closed || clock_due || (dirty && since >= FRAME_INTERVAL) {
            apply(model, Msg::RealTime(Instant::now()));
            apply(model, Msg::Tick);
            terminal.draw(|frame| view::render(frame, model, theme))?;
            last_draw = Some(Instant::now());
            (dirty, urgent) = (false, false);
            if closed || model.quit {
                return Ok(());
            }
        }
        let wait = if dirty {
            FRAME_INTERVAL.saturating_sub(last_draw.map_or(FRAME_INTERVAL, |at| at.elapsed()))
        } else {
            Duration::from_millis(250)
        };
        let input_rx = if inputs_open { inputs } else { &never };
        let data_rx = if data_open { data } else { &never };
        select! {
            recv(input_rx) -> msg => match msg {
                Ok(msg) => { apply(model, msg); urgent = true; }
                Err(_) => inputs_open = false,
            },
            recv(data_rx) -> msg => match msg {
                Ok(msg) => { apply(model, msg); dirty = true; }
                Err(_) => data_open = false,
            },
            default(wait) => {}
        }
        // Every key waiting first, then data until the budget is spent or a key arrives.
        while let Ok(msg) = inputs.try_recv() {
            apply(model, msg);
            urgent = true;
        }
        let started = Instant::now();
        while started.elapsed() < DATA_BUDGET && inputs.is_empty() {
            match data.try_recv() {
                Ok(msg) => {
                    apply(model, msg);
                    dirty = true;
                }
                Err(_) => break,
            }
        }
    }
}

type CrosstermTerminal = Terminal<CrosstermBackend<std::io::Stdout>>;

fn enter_terminal() -> anyhow::Result<CrosstermTerminal> {
    install_panic_hook();
    enable_raw_mode()?;
    execute!(std::io::stdout(), EnterAlternateScreen, EnableMouseCapture)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))?;
    terminal.clear()?;
    Ok(terminal)
}

/// Gives the terminal back: normal mode, main screen, no mouse capture, cursor shown.
/// Safe to call twice (the panic hook and the normal exit may both run it).
pub fn leave_terminal() {
    let _ = disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        DisableMouseCapture,
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

/// A panic restores the terminal before the message is printed, or the message would be lost
/// on the alternate screen and the shell left in raw mode.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        leave_terminal();
        previous(info);
    }));
}

fn spawn_terminal_reader(
    inputs: Sender<Msg>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(50)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(_) => break,
            }
            let msg = match event::read() {
                Ok(Event::Key(key)) => Msg::Key(key),
                Ok(Event::Mouse(mouse)) => Msg::Mouse(mouse),
                Ok(Event::Resize(width, height)) => Msg::Resize(width, height),
                Ok(_) => continue,
                Err(_) => break,
            };
            if inputs.send(msg).is_err() {
                break;
            }
        }
    })
}

/// Reports the running episode while there is one (and once more when it ends), so the status
/// line can name an orchestrator that does not yield.
fn spawn_episode_poller(engine: EngineHandle, data: Sender<Msg>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut reported = false;
        while !stop.load(Ordering::Relaxed) {
            let running = engine.running_episode().map(|episode| EpisodeRunning {
                elapsed: episode.since.elapsed(),
                instance_id: episode.instance_id,
                name: episode.name,
            });
            if running.is_some() || reported {
                reported = running.is_some();
                if data.send(Msg::Episode(running)).is_err() {
                    break;
                }
            }
            std::thread::sleep(EPISODE_POLL);
        }
    });
}

fn spawn_event_forwarder(mut events: broadcast::Receiver<EngineEvent>, data: Sender<Msg>) {
    std::thread::spawn(move || {
        loop {
            let msg = match events.blocking_recv() {
                Ok(event) => {
                    log_event(&event);
                    Msg::Engine(event)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!("the UI missed {missed} engine events; reloading");
                    Msg::EventsLost(missed)
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if data.send(msg).is_err() {
                break;
            }
        }
    });
}

/// Engine events go to the log too: the frequent ones at debug level.
fn log_event(event: &EngineEvent) {
    match event {
        EngineEvent::HistoryAppended {
            instance_id,
            events,
            ..
        } => {
            tracing::debug!(target: "durable_emu::engine", "{instance_id}: {} events appended", events.len());
        }
        EngineEvent::ActivityStarted { .. }
        | EngineEvent::ActivityFinished { .. }
        | EngineEvent::TimerScheduled { .. }
        | EngineEvent::TimerFired { .. }
        | EngineEvent::InstanceChanged { .. }
        | EngineEvent::ClockMoved { .. } => {
            tracing::debug!(target: "durable_emu::engine", "{}", serde_json::to_string(event).unwrap_or_default());
        }
        EngineEvent::BuildFailed { .. }
        | EngineEvent::InstanceDiverged { .. }
        | EngineEvent::NonDeterminism { .. } => {
            tracing::warn!(target: "durable_emu::engine", "{}", serde_json::to_string(event).unwrap_or_default());
        }
        _ => {
            tracing::info!(target: "durable_emu::engine", "{}", serde_json::to_string(event).unwrap_or_default());
        }
    }
}
