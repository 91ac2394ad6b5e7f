//! Keys of the history view: move, an event's JSON, walk the continue-as-new chain, follow.

use super::{json_overlay, moved};
use crate::keymap::KeyAction;
use crate::model::{Model, short_id};
use ratatui::crossterm::event::KeyEvent;
use serde_json::Value;

/// A key in the history view; false if it means nothing here.
pub(super) fn key(model: &mut Model, action: KeyAction, key: KeyEvent, page_rows: usize) -> bool {
    let Some(history) = &mut model.history else {
        return false;
    };
    let len = history.events().len();
    if action == KeyAction::Move
        && let Some(next) = moved(key.code, history.selected, len, page_rows)
    {
        history.selected = next;
        history.follow = next + 1 >= len;
        return true;
    }
    match action {
        KeyAction::EventJson => {
            if let Some(event) = history.events().get(history.selected) {
                model.overlay = Some(json_overlay(
                    format!(
                        "event {} of {}",
                        history.selected,
                        short_id(&history.instance_id)
                    ),
                    &serde_json::to_value(event).unwrap_or(Value::Null),
                ));
            }
        }
        KeyAction::PreviousExecution if history.execution > 0 => {
            history.execution -= 1;
            history.selected = 0;
            history.follow = false;
            history.revision += 1;
        }
        KeyAction::NextExecution if history.execution + 1 < history.executions.len() => {
            history.execution += 1;
            history.selected = 0;
            history.follow = history.execution + 1 == history.executions.len();
            history.revision += 1;
        }
        KeyAction::ToggleFollow => {
            history.follow = !history.follow;
            if history.follow {
                history.selected = len.saturating_sub(1);
            }
        }
        _ => return false,
    }
    true
}
