//! Keys of the clock view (move through timers, next timer, auto-skip, advance), and pausing or
//! playing virtual time, which every view's key and `:pause` / `:play` do.

use super::{moved, perform};
use crate::cmdline::Action;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay};
use durable_emu_engine::clock::ClockKind;
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

/// Plays or pauses virtual time: shown at once, the engine asked; the real clock cannot.
pub(super) fn set_playing(model: &mut Model, playing: bool, out: &mut Vec<Command>) {
    if model.clock.kind == ClockKind::Real {
        model.status = Some((
            "the clock is real and always runs; start with --clock virtual to pause or play time"
                .into(),
            true,
        ));
        return;
    }
    model.clock.set_playing(playing);
    out.push(Command::SetPlaying(playing));
}
