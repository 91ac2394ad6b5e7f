//! Keys of the instances view: move, open the history, sort, clear the filter.
//! Knows nothing of the other views; the actions on the selected instance are in `actions`.

use super::{moved, switch_view};
use crate::command::Command;
use crate::keymap::KeyAction;
use crate::model::{Model, View};
use ratatui::crossterm::event::KeyEvent;

/// A key in the instances view; false if it means nothing here.
pub(super) fn key(
    model: &mut Model,
    action: KeyAction,
    key: KeyEvent,
    out: &mut Vec<Command>,
    page_rows: usize,
) -> bool {
    let instances = &mut model.instances;
    if action == KeyAction::Move
        && let Some(next) = moved(
            key.code,
            instances.selected,
            instances.visible.len(),
            page_rows,
        )
    {
        select_instance(model, next);
        return true;
    }
    match action {
        KeyAction::OpenHistory => {
            // A Diverged instance waits for a choice: Enter offers it (the dialog leads on to
            // the history).
            if let Some(choice) = model.selected().and_then(super::diverged::choice) {
                model.overlay = Some(crate::model::Overlay::Diverged(choice));
            } else if model.selected_id().is_some() {
                switch_view(model, View::History, out);
            }
        }
        KeyAction::CycleSort => {
            let next = model.instances.sort_key().next();
            model.instances.sort = Some(next);
            model.instances.dirty = true;
            model.status = Some((format!("sorted by {}", next.label()), false));
        }
        KeyAction::ClearFilter => {
            model.instances.filter.clear();
            model.instances.dirty = true;
        }
        _ => return false,
    }
    true
}

pub(super) fn select_instance(model: &mut Model, position: usize) {
    let instances = &mut model.instances;
    instances.selected = position;
    instances.selected_id = instances.visible.get(position).map(|(id, _)| id.clone());
    // The user chose: an instance still waited for no longer takes the selection.
    instances.wanted = None;
}
