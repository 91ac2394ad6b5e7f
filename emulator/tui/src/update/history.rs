//! Keys of the history view: move, an event's JSON (for an HTTP request's event, the whole
//! exchange above it), walk the continue-as-new chain, follow.

use super::{json_overlay, moved, text_overlay};
use crate::keymap::KeyAction;
use crate::model::{Model, short_id};
use durable_emu_engine::inspect::http;
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
                let title = format!(
                    "event {} of {}",
                    history.selected,
                    short_id(&history.instance_id)
                );
                let json = serde_json::to_value(event).unwrap_or(Value::Null);
                model.overlay = Some(match http::exchange(history.events(), history.selected) {
                    // An HTTP request's event: the exchange first (what a reader wants),
                    // then the event as recorded.
                    Some(mut lines) => {
                        lines.push(String::new());
                        lines.push("event JSON:".to_string());
                        lines.push(serde_json::to_string_pretty(&json).unwrap_or_default());
                        text_overlay(title, &lines.join("\n"))
                    }
                    None => json_overlay(title, &json),
                });
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
