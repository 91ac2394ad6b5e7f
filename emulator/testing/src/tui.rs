//! The UI harness for the terminal UI's tests: the real engine (in memory, virtual clock, auto-skip off as the UI
//! starts it) with the built-in samples, the model, and `update` fed by scripted keys. Commands
//! run synchronously through the executor's own `execute`, and engine events are fed back as
//! messages, so a test reads like a user session and asserts on the model (and on the screen, for
//! snapshots) without a terminal. Knows the UI's public update/execute/view and the engine's
//! handle; not what any view should show.

use crossbeam_channel::{Receiver, Sender};
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{Engine, EngineConfig, EngineEvent, EngineHandle};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_tui::command::{Command, Plugins, execute};
use durable_emu_tui::model::Model;
use durable_emu_tui::msg::Msg;
use durable_emu_tui::theme::Theme;
use durable_emu_tui::{update, view};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use std::fmt;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

pub struct Harness {
    pub engine: Option<Engine>,
    pub handle: EngineHandle,
    events: broadcast::Receiver<EngineEvent>,
    pub plugin: LoadedPlugin,
    /// The builds steps and forks replay with (asked of the engine, as the executor does).
    pub plugins: Plugins,
    pub model: Model,
    answers_tx: Sender<Msg>,
    answers: Receiver<Msg>,
    /// Every command `update` asked for, in order.
    pub commands: Vec<Command>,
}

impl Harness {
    pub fn new(width: u16, height: u16) -> Self {
        Self::with_config(width, height, |_| {})
    }

    /// [`Harness::new`] with the engine's configuration changed by `tweak` first.
    pub fn with_config(width: u16, height: u16, tweak: impl FnOnce(&mut EngineConfig)) -> Self {
        let plugin = LoadedPlugin::builtin().unwrap();
        let mut config = EngineConfig::in_memory(plugin.clone());
        config.auto_skip = false;
        config.workers = 2;
        tweak(&mut config);
        let (engine, events) = Engine::start_subscribed(config).unwrap();
        let handle = engine.handle();
        let (answers_tx, answers) = crossbeam_channel::unbounded();
        let model = Model::new(
            Rect::new(0, 0, width, height),
            ClockKind::Virtual,
            false,
            plugin.manifest.orchestrators.clone(),
        )
        .with_orchestrator_info(plugin.manifest.orchestrator_info.clone());
        let mut harness = Self {
            engine: Some(engine),
            handle,
            events,
            plugins: Plugins::new(Some(plugin.clone())),
            plugin,
            model,
            answers_tx,
            answers,
            commands: Vec::new(),
        };
        harness.settle();
        harness
    }

    /// Applies one message and runs the commands it produced.
    pub fn send(&mut self, msg: Msg) {
        for command in update(&mut self.model, msg) {
            self.commands.push(command.clone());
            execute(&self.handle, &mut self.plugins, command, &self.answers_tx);
        }
    }

    pub fn press(&mut self, code: KeyCode) {
        self.send(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
        self.settle();
    }

    pub fn type_text(&mut self, text: &str) {
        for c in text.chars() {
            self.send(Msg::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )));
        }
        self.settle();
    }

    /// Types `text` on the command line and runs it.
    pub fn command(&mut self, text: &str) {
        self.press(KeyCode::Char(':'));
        self.type_text(text);
        self.press(KeyCode::Enter);
    }

    pub fn click(&mut self, column: u16, row: u16) {
        self.send(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::Down(MouseButton::Left),
            column,
            row,
            modifiers: KeyModifiers::NONE,
        }));
        self.settle();
    }

    pub fn scroll_down(&mut self) {
        self.send(Msg::Mouse(MouseEvent {
            kind: MouseEventKind::ScrollDown,
            column: 10,
            row: 5,
            modifiers: KeyModifiers::NONE,
        }));
        self.settle();
    }

    /// Feeds engine events and answers until nothing new arrives for a moment, then ticks.
    pub fn settle(&mut self) {
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < Duration::from_millis(60) {
            let mut any = false;
            while let Ok(event) = self.events.try_recv() {
                self.send(Msg::Engine(event));
                any = true;
            }
            while let Ok(msg) = self.answers.try_recv() {
                self.send(msg);
                any = true;
            }
            self.send(Msg::Tick);
            if any {
                quiet_since = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// Settles until `ready` holds (30 s at most: CI machines are slow).
    pub fn wait_until(&mut self, what: &str, ready: impl Fn(&Model) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready(&self.model) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; status: {:?}",
                self.model.status
            );
            self.settle();
        }
    }

    /// Starts an instance with a fixed id (for stable snapshots), through the engine.
    pub fn start(&mut self, name: &str, input: serde_json::Value, id: &str) {
        self.handle
            .start_orchestration(name, input, Some(id.to_string()))
            .unwrap();
        self.settle();
    }

    /// Selects the instance `id` in the list.
    pub fn select(&mut self, id: &str) {
        self.settle();
        let position = self
            .model
            .instances
            .visible
            .iter()
            .position(|(visible, _)| visible == id)
            .unwrap_or_else(|| panic!("{id} is not listed"));
        self.model.instances.selected = position;
        self.model.instances.selected_id = Some(id.to_string());
        self.settle();
    }

    pub fn status_of(&self, id: &str) -> Option<durable_sdk::history::RuntimeStatus> {
        self.model.instances.rows.get(id).map(|row| row.status)
    }

    /// The screen as text, one line per row.
    pub fn screen(&self) -> String {
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

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("view", &self.model.view)
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown();
        }
    }
}
