//! Keys of the builds view: scroll the log ring back and forward; open the compiler output of
//! the last failed build.

use crate::keymap::KeyAction;
use crate::model::{Model, Overlay};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

/// A key in the builds view; false if it means nothing here.
pub(super) fn key(model: &mut Model, action: KeyAction, key: KeyEvent, page_rows: usize) -> bool {
    if action == KeyAction::CompilerOutput {
        if model.builds.compiler_output.is_empty() {
            model.status = Some((
                "no compiler output: the last build did not fail to compile".into(),
                false,
            ));
        } else {
            model.overlay = Some(Overlay::Text {
                title: "compiler output of the last failed build".into(),
                lines: model.builds.compiler_output.clone(),
                scroll: 0,
            });
        }
        return true;
    }
    if action != KeyAction::Move {
        return false;
    }
    let logs = &mut model.builds;
    match key.code {
        KeyCode::Up | KeyCode::Char('k') => {
            logs.logs_back = (logs.logs_back + 1).min(logs.logs.len().saturating_sub(1));
        }
        KeyCode::Down | KeyCode::Char('j') => logs.logs_back = logs.logs_back.saturating_sub(1),
        KeyCode::PageUp => {
            logs.logs_back = (logs.logs_back + page_rows).min(logs.logs.len().saturating_sub(1));
        }
        KeyCode::PageDown => logs.logs_back = logs.logs_back.saturating_sub(page_rows),
        KeyCode::Char('G') | KeyCode::End => logs.logs_back = 0,
        _ => return false,
    }
    true
}
