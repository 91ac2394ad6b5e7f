//! Keys of the clock view: move through timers, next timer, auto-skip, advance.

use super::{moved, perform};
use crate::tui::cmdline::Action;
use crate::tui::command::Command;
use crate::tui::input::TextInput;
use crate::tui::keymap::KeyAction;
use crate::tui::model::{Model, Overlay};
use ratatui::crossterm::event::KeyEvent;

/// A key in the clock view; false if it means nothing here.
pub(super) fn key(
    model: &mut Model,
    action: KeyAction,
    key: KeyEvent,
    out: &mut Vec<Command>,
    page_rows: usize,
) -> bool {
    let clock = &mut model.clock;
    if action == KeyAction::Move
        && let Some(next) = moved(key.code, clock.selected, clock.timers.len(), page_rows)
    {
        clock.selected = next;
        return true;
    }
    match action {
        KeyAction::NextTimer => out.push(Command::NextTimer),
        KeyAction::ToggleAutoSkip => perform(model, Action::AutoSkip(None), out),
        KeyAction::Advance => {
            model.overlay = Some(Overlay::Command(TextInput::new("advance ")));
        }
        _ => return false,
    }
    true
}
