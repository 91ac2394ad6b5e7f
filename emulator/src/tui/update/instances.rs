//! Keys of the instances view: move, open the history, sort, clear the filter.
//! Knows nothing of the other views; the actions on the selected instance are in `actions`.

use super::{moved, switch_view};
use crate::tui::command::Command;
use crate::tui::model::{Model, View};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

/// A key in the instances view; false if it means nothing here.
pub(super) fn key(
    model: &mut Model,
    key: KeyEvent,
    out: &mut Vec<Command>,
    page_rows: usize,
) -> bool {
    let instances = &mut model.instances;
    if let Some(next) = moved(
        key.code,
        instances.selected,
        instances.visible.len(),
        page_rows,
    ) {
        select_instance(model, next);
        return true;
    }
    match key.code {
        KeyCode::Enter | KeyCode::Char('l') | KeyCode::Right => {
            if model.selected_id().is_some() {
                switch_view(model, View::History, out);
            }
        }
        KeyCode::Char('s') => {
            let next = model.instances.sort_key().next();
            model.instances.sort = Some(next);
            model.instances.dirty = true;
            model.status = Some((format!("sorted by {}", next.label()), false));
        }
        KeyCode::Char('c') => {
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
}
