//! `update`: the only code that changes the model. A message in, the model changed, commands out
//! (engine calls and replays for the executor). Pure: no terminal, no threads, no clock reads;
//! tests drive it with scripted messages (`emulator/tui/tests/tui_update.rs`).
//!
//! This module holds the entry point, ticks, the keys every view shares and the mouse; each view's
//! keys live in a submodule of the same name (as `view/` draws them), overlays in [`overlays`],
//! engine events and background answers in [`events`], instance actions in [`actions`].

mod actions;
mod builds;
mod clock;
mod derived;
mod diverged;
mod entities;
mod events;
mod faults;
mod history;
mod instances;
mod overlays;
mod replay;

use actions::instance_key;
pub use actions::perform;
use derived::derive;
use events::{on_engine, on_outcome};
use instances::select_instance;
use overlays::on_overlay_key;
use replay::{ensure_stepper, fork_here, step_to};

use crate::cmdline::Action;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::{self, KeyAction};
use crate::layout::{self, areas, list_area, page, scroll_to, tab_positions};
use crate::logs::RING_CAPACITY;
use crate::model::{HistoryState, Model, Overlay, Part, View};
use crate::msg::Msg;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use serde_json::Value;

/// Applies `msg` to `model`; returns what to ask the engine or the plugin.
pub fn update(model: &mut Model, msg: Msg) -> Vec<Command> {
    let mut out = Vec::new();
    match msg {
        Msg::Key(key) => {
            if key.kind != KeyEventKind::Release {
                on_key(model, key, &mut out);
            }
        }
        Msg::Mouse(mouse) => on_mouse(model, mouse, &mut out),
        Msg::Resize(width, height) => model.area = Rect::new(0, 0, width, height),
        Msg::Engine(event) => on_engine(model, event),
        Msg::EventsLost(count) => {
            model.stale.mark(Part::Instances);
            if model.history.is_some() {
                model.stale.mark(Part::History);
            } else {
                model.stale.take(Part::History);
            }
            model.stale.mark(Part::Timers);
            model.status = Some((
                format!("the UI fell {count} events behind; reloading"),
                false,
            ));
        }
        Msg::Done(outcome) => on_outcome(model, outcome),
        Msg::Log(entry) => {
            if model.builds.logs.len() >= RING_CAPACITY {
                model.builds.logs.pop_front();
            }
            model.builds.logs.push_back(entry);
        }
        Msg::Tick => on_tick(model, &mut out),
        Msg::RealTime(at) => model.clock.real_time(at),
        Msg::Episode(running) => {
            model.long_episode =
                running.filter(|episode| episode.elapsed >= crate::model::LONG_EPISODE);
        }
        Msg::Quit => model.quit = true,
    }
    out
}

// ----- ticks: work that waits for a quiet moment ------------------------------------------------

/// Rows the list may show (from the first visible one) whose call counts are unknown are counted
/// from their stored histories, once: after a restart or an import the progress column would
/// otherwise stay blank or count only what it saw live. A page is never taller than this.
const COUNT_WINDOW: usize = 200;

fn request_counts(model: &mut Model, out: &mut Vec<Command>) {
    let instances = &mut model.instances;
    let start = instances.offset.min(instances.visible.len());
    let end = (start + COUNT_WINDOW).min(instances.visible.len());
    let wanted: Vec<String> = instances.visible[start..end]
        .iter()
        .map(|(id, _)| id)
        .filter(|id| {
            instances
                .rows
                .get(*id)
                .is_some_and(|row| row.calls.is_none())
                && !instances.counting.contains(*id)
        })
        .cloned()
        .collect();
    if !wanted.is_empty() {
        instances.counting.extend(wanted.iter().cloned());
        out.push(Command::LoadCounts(wanted));
    }
}

pub(super) fn on_tick(model: &mut Model, out: &mut Vec<Command>) {
    if model.instances.dirty {
        model.instances.rebuild();
    }
    if model.stale.take(Part::Instances) {
        out.push(Command::LoadInstances);
    }
    request_counts(model, out);
    if model.stale.take(Part::Builds) {
        out.push(Command::LoadBuilds);
    }
    if model.stale.is_marked(Part::Workers) && !model.stale.is_loading(Part::Workers) {
        model.stale.take(Part::Workers);
        model.stale.start_loading(Part::Workers);
        out.push(Command::LoadWorkers);
    }
    if model.stale.is_marked(Part::Timers)
        && !model.stale.is_loading(Part::Timers)
        && (model.view == View::Clock || model.clock.now.is_none())
    {
        model.stale.take(Part::Timers);
        model.stale.start_loading(Part::Timers);
        out.push(Command::LoadTimers);
    }
    if model.stale.is_marked(Part::Faults)
        && !model.stale.is_loading(Part::Faults)
        && model.view == View::Faults
    {
        model.stale.take(Part::Faults);
        model.stale.start_loading(Part::Faults);
        out.push(Command::LoadFaults);
    }
    entities::on_tick(model, out);
    if model.stale.take(Part::History) {
        if let Some(history) = &mut model.history {
            history.loading = true;
            out.push(Command::LoadHistory {
                instance_id: history.instance_id.clone(),
                child: false,
            });
        }
    }
    if needs_history(model.view) {
        ensure_history(model, out);
    }
    if model.view == View::Replay {
        ensure_stepper(model, out);
    }
    if matches!(model.view, View::Timeline | View::FanOut | View::Errors) {
        derive(model, out);
    }
    keep_in_view(model);
}

pub(super) fn needs_history(view: View) -> bool {
    matches!(
        view,
        View::History | View::Timeline | View::FanOut | View::Errors | View::Replay
    )
}

/// Loads the selected instance's history if the one held is another's.
pub(super) fn ensure_history(model: &mut Model, out: &mut Vec<Command>) {
    let Some(id) = model.selected_id().map(str::to_string) else {
        return;
    };
    if model
        .history
        .as_ref()
        .is_some_and(|history| history.instance_id == id)
    {
        return;
    }
    model.history = Some(HistoryState::loading(id.clone()));
    model.derived_offset = 0;
    out.push(Command::LoadHistory {
        instance_id: id,
        child: false,
    });
}

pub(super) fn keep_in_view(model: &mut Model) {
    let area = model.area;
    let instances = &mut model.instances;
    instances.offset = scroll_to(
        instances.selected,
        instances.offset,
        page(View::Instances, area),
    );
    instances.offset = instances.offset.min(filled_from(
        instances.visible.len(),
        page(View::Instances, area),
    ));
    if let Some(history) = &mut model.history {
        let height = page(View::History, area);
        history.offset = scroll_to(history.selected, history.offset, height)
            .min(filled_from(history.events().len(), height));
    }
    let clock = &mut model.clock;
    clock.selected = clock.selected.min(clock.timers.len().saturating_sub(1));
    clock.offset = scroll_to(clock.selected, clock.offset, page(View::Clock, area));
    let faults = &mut model.faults;
    faults.selected = faults.selected.min(faults.rules.len().saturating_sub(1));
    faults.offset = scroll_to(faults.selected, faults.offset, page(View::Faults, area));
    let entities = &mut model.entities;
    entities.selected = entities
        .selected
        .min(entities.list.len().saturating_sub(1));
    entities.offset = scroll_to(
        entities.selected,
        entities.offset,
        page(View::Entities, area),
    );
    if let Some(stepper) = &mut model.stepper {
        let cursor = stepper.step.saturating_sub(1);
        stepper.offset = scroll_to(cursor, stepper.offset, page(View::Replay, area));
    }
}

/// The largest offset that still fills a page of `height` rows from a list of `len`: a list that
/// shrank (a new execution after continue-as-new, a filter) must not leave its last row alone at
/// the top of an empty page.
fn filled_from(len: usize, height: usize) -> usize {
    len.saturating_sub(height.max(1))
}

// ----- keys -------------------------------------------------------------------------------------

pub(super) fn on_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) {
    // Not a binding of any view: Ctrl-C must quit whatever the keymap or an overlay says.
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        model.quit = true;
        return;
    }
    if model.overlay.is_some() {
        on_overlay_key(model, key, out);
        return;
    }
    model.status = None;
    let Some(action) = keymap::lookup(model.view, key.code) else {
        return;
    };
    match action {
        KeyAction::Quit => model.quit = true,
        KeyAction::Help => model.overlay = Some(Overlay::Help { scroll: 0 }),
        KeyAction::CommandLine => model.overlay = Some(Overlay::Command(TextInput::default())),
        KeyAction::FilterInstances => {
            // A new filter starts empty (typing replaces, not appends to, the old one); Esc
            // puts the old one back.
            let before = std::mem::take(&mut model.instances.filter);
            model.instances.dirty |= !before.is_empty();
            model.instances.filter_before = Some(before);
            model.overlay = Some(Overlay::Filter(TextInput::default()));
            if model.view != View::Instances {
                switch_view(model, View::Instances, out);
            }
        }
        KeyAction::NextView => {
            let next = View::ALL[(model.view.index() + 1) % View::ALL.len()];
            switch_view(model, next, out);
        }
        KeyAction::PreviousView => {
            let count = View::ALL.len();
            let previous = View::ALL[(model.view.index() + count - 1) % count];
            switch_view(model, previous, out);
        }
        KeyAction::JumpToView => {
            if let Some(view) = match key.code {
                KeyCode::Char(digit) => View::of_digit(digit),
                _ => None,
            } {
                switch_view(model, view, out);
            }
        }
        KeyAction::TogglePlaying => {
            let playing = !model.clock.playing;
            perform(model, Action::Play(playing), out);
        }
        KeyAction::Start
        | KeyAction::Raise
        | KeyAction::Terminate
        | KeyAction::Suspend
        | KeyAction::Resume
        | KeyAction::Restart
        | KeyAction::Purge
        | KeyAction::OpenReplay => instance_key(model, action, out),
        KeyAction::Move
        | KeyAction::OpenHistory
        | KeyAction::CycleSort
        | KeyAction::ClearFilter
        | KeyAction::EventJson
        | KeyAction::PreviousExecution
        | KeyAction::NextExecution
        | KeyAction::ToggleFollow
        | KeyAction::StepForward
        | KeyAction::StepBack
        | KeyAction::FirstStep
        | KeyAction::LastStep
        | KeyAction::Fork
        | KeyAction::ForkEdited
        | KeyAction::NextTimer
        | KeyAction::ToggleAutoSkip
        | KeyAction::Advance
        | KeyAction::AddFaultRule
        | KeyAction::ToggleFaultRule
        | KeyAction::RemoveFaultRule
        | KeyAction::FailureDetails
        | KeyAction::CompilerOutput
        | KeyAction::EntityInFull
        | KeyAction::SignalEntity => {
            view_key(model, action, key, out);
        }
    }
}

/// Switches to `view`, loading what it shows.
pub fn switch_view(model: &mut Model, view: View, out: &mut Vec<Command>) {
    model.view = view;
    model.derived_offset = 0;
    if view == View::Clock {
        model.stale.mark(Part::Timers);
    }
    if view == View::Faults {
        model.stale.mark(Part::Faults);
    }
    if view == View::Builds {
        // Workers' counts move with every item; they are refreshed only while shown.
        model.stale.mark(Part::Workers);
    }
    if view == View::Entities {
        model.stale.mark(Part::Entities);
        model.stale.mark(Part::EntityDetail);
    }
    if needs_history(view) {
        ensure_history(model, out);
    }
}

/// A new position after a movement key, for a list of `len` rows and pages of `page` rows.
pub(super) fn moved(key: KeyCode, selected: usize, len: usize, page: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    Some(match key {
        KeyCode::Down | KeyCode::Char('j') => (selected + 1).min(last),
        KeyCode::Up | KeyCode::Char('k') => selected.saturating_sub(1),
        KeyCode::PageDown => (selected + page).min(last),
        KeyCode::PageUp => selected.saturating_sub(page),
        KeyCode::Home | KeyCode::Char('g') => 0,
        KeyCode::End | KeyCode::Char('G') => last,
        _ => return None,
    })
}

/// Hands a view's action to the view shown; false if it means nothing there.
pub(super) fn view_key(
    model: &mut Model,
    action: KeyAction,
    key: KeyEvent,
    out: &mut Vec<Command>,
) -> bool {
    let page_rows = page(model.view, model.area);
    match model.view {
        View::Instances => instances::key(model, action, key, out, page_rows),
        View::History => history::key(model, action, key, page_rows),
        View::Timeline | View::FanOut | View::Errors => derived::key(model, action, key, page_rows),
        View::Replay => replay::key(model, action, key, out),
        View::Clock => clock::key(model, action, key, out, page_rows),
        View::Faults => faults::key(model, action, key, out, page_rows),
        View::Builds => builds::key(model, action, key, page_rows),
        View::Entities => entities::key(model, action, key, page_rows),
    }
}

pub(super) fn json_overlay(title: String, value: &Value) -> Overlay {
    text_overlay(
        title,
        &serde_json::to_string_pretty(value).unwrap_or_default(),
    )
}

/// The scrollable text overlay showing `text` from its first line.
pub fn text_overlay(title: impl Into<String>, text: &str) -> Overlay {
    Overlay::Text {
        title: title.into(),
        lines: text.lines().map(str::to_string).collect(),
        scroll: 0,
    }
}

// ----- mouse ------------------------------------------------------------------------------------

pub(super) fn on_mouse(model: &mut Model, mouse: MouseEvent, out: &mut Vec<Command>) {
    if model.overlay.is_some() {
        return;
    }
    let bands = areas(model.area);
    match mouse.kind {
        MouseEventKind::Down(MouseButton::Left) => {
            if mouse.row == bands.tabs.y {
                let tab = tab_positions(bands.tabs)
                    .into_iter()
                    .find(|(start, end, _)| (*start..*end).contains(&mouse.column));
                if let Some((_, _, view)) = tab {
                    switch_view(model, view, out);
                }
                return;
            }
            let list = list_area(model.view, bands.body);
            if !contains(list, mouse.column, mouse.row) {
                return;
            }
            let row = usize::from(mouse.row - list.y);
            match model.view {
                View::Instances => {
                    let position = model.instances.offset + row;
                    if position < model.instances.visible.len() {
                        select_instance(model, position);
                    }
                }
                View::History => {
                    if let Some(history) = &mut model.history {
                        let position = history.offset + row;
                        if position < history.events().len() {
                            history.selected = position;
                            history.follow = false;
                        }
                    }
                }
                View::Clock => {
                    let position = model.clock.offset + row;
                    if position < model.clock.timers.len() {
                        model.clock.selected = position;
                    }
                }
                View::Faults => {
                    let position = model.faults.offset + row;
                    if position < model.faults.rules.len() {
                        model.faults.selected = position;
                    }
                }
                View::Entities => {
                    let position = model.entities.offset + row;
                    if position < model.entities.list.len() {
                        entities::select(model, position);
                    }
                }
                View::Replay => {
                    if let Some(stepper) = &model.stepper {
                        let step = (stepper.offset + row + 1).min(stepper.events.len());
                        step_to(model, step, out);
                    }
                }
                _ => {}
            }
        }
        MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
            let code = if mouse.kind == MouseEventKind::ScrollDown {
                KeyCode::Down
            } else {
                KeyCode::Up
            };
            for _ in 0..3 {
                view_key(
                    model,
                    KeyAction::Move,
                    KeyEvent::new(code, KeyModifiers::NONE),
                    out,
                );
            }
        }
        _ => {}
    }
}

pub(super) fn contains(area: Rect, column: u16, row: u16) -> bool {
    column >= area.x && column < area.x + area.width && row >= area.y && row < area.y + area.height
}

/// The layout module is shared with the views; re-exported for tests that click.
pub use layout::list_area as clickable_list;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Outcome;
    use durable_emu_engine::clock::ClockKind;
    use durable_emu_engine::engine::EngineEvent;

    fn fault_fired() -> Msg {
        Msg::Engine(EngineEvent::FaultFired {
            instance_id: "i1".into(),
            rule: "rule 1".into(),
            effect: "error".into(),
            target: "activity A".into(),
        })
    }

    fn loads_of(commands: &[Command], wanted: &Command) -> usize {
        commands.iter().filter(|command| *command == wanted).count()
    }

    #[test]
    fn a_part_marked_many_times_is_loaded_once_and_not_again_while_its_load_runs() {
        let mut model = Model::new(Rect::new(0, 0, 80, 24), ClockKind::Virtual, false, vec![]);
        model.view = View::Faults;
        let first = update(&mut model, Msg::Tick);
        assert_eq!(loads_of(&first, &Command::LoadFaults), 1);
        assert_eq!(loads_of(&first, &Command::LoadInstances), 1);
        for _ in 0..5 {
            update(&mut model, fault_fired());
        }
        assert!(model.stale.is_marked(Part::Faults));
        // The first load has not answered: the marks wait for it.
        assert_eq!(
            loads_of(&update(&mut model, Msg::Tick), &Command::LoadFaults),
            0
        );
        update(&mut model, Msg::Done(Outcome::Faults(Ok(vec![]))));
        let after = update(&mut model, Msg::Tick);
        assert_eq!(loads_of(&after, &Command::LoadFaults), 1);
        assert_eq!(loads_of(&after, &Command::LoadInstances), 0);
        assert!(!model.stale.is_marked(Part::Faults));
        assert!(model.stale.is_loading(Part::Faults));
    }

    #[test]
    fn lost_events_mark_the_history_only_when_one_is_held() {
        let mut model = Model::new(Rect::new(0, 0, 80, 24), ClockKind::Virtual, false, vec![]);
        update(&mut model, Msg::EventsLost(3));
        assert!(model.stale.is_marked(Part::Instances) && model.stale.is_marked(Part::Timers));
        assert!(!model.stale.is_marked(Part::History));
        model.history = Some(HistoryState::loading("i1".into()));
        update(&mut model, Msg::EventsLost(3));
        assert!(model.stale.is_marked(Part::History));
    }
}
