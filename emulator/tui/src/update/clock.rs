//! Keys of the clock view: move through timers, next timer, auto-skip, advance.

use super::{moved, perform};
use crate::cmdline::Action;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay};
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
