//! Keys of the faults view: select, add (the form), switch and remove a rule.

use super::moved;
use crate::tui::command::Command;
use crate::tui::model::{Model, Overlay};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

pub(super) fn key(
    model: &mut Model,
    key: KeyEvent,
    out: &mut Vec<Command>,
    page_rows: usize,
) -> bool {
    let faults = &mut model.faults;
    if let Some(next) = moved(key.code, faults.selected, faults.rules.len(), page_rows) {
        faults.selected = next;
        return true;
    }
    match key.code {
        KeyCode::Char('a') => {
            model.overlay = Some(Overlay::Fault(Box::default()));
        }
        KeyCode::Char('t') | KeyCode::Char(' ') => {
            let Some(rule) = faults.rules.get_mut(faults.selected) else {
                model.status = Some(("no rule to switch; a adds one".into(), true));
                return true;
            };
            // Shown at once; the reload after the engine's answer confirms it.
            rule.enabled = !rule.enabled;
            out.push(Command::SetFaultEnabled {
                id: rule.id,
                enabled: rule.enabled,
            });
        }
        KeyCode::Char('d') | KeyCode::Delete => {
            let Some(rule) = faults.selected_rule() else {
                model.status = Some(("no rule to remove".into(), true));
                return true;
            };
            model.overlay = Some(Overlay::Confirm {
                prompt: format!(
                    "Remove fault rule #{} \"{}\" ({}, {})?",
                    rule.id,
                    rule.label(),
                    crate::tui::view::target_text(&rule.rule),
                    rule.rule.effect
                ),
                command: Command::RemoveFault(rule.id),
            });
        }
        _ => return false,
    }
    true
}
