//! Keys of the faults view: select, add (the form), switch and remove a rule.

use super::moved;
use crate::command::Command;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay};
use ratatui::crossterm::event::KeyEvent;

pub(super) fn key(
    model: &mut Model,
    action: KeyAction,
    key: KeyEvent,
    out: &mut Vec<Command>,
    page_rows: usize,
) -> bool {
    let faults = &mut model.faults;
    if action == KeyAction::Move
        && let Some(next) = moved(key.code, faults.selected, faults.rules.len(), page_rows)
    {
        faults.selected = next;
        return true;
    }
    match action {
        KeyAction::AddFaultRule => {
            model.overlay = Some(Overlay::Fault(Box::default()));
        }
        KeyAction::ToggleFaultRule => {
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
        KeyAction::RemoveFaultRule => {
            let Some(rule) = faults.selected_rule() else {
                model.status = Some(("no rule to remove".into(), true));
                return true;
            };
            model.overlay = Some(Overlay::Confirm {
                prompt: format!(
                    "Remove fault rule #{} \"{}\" ({}, {})?",
                    rule.id,
                    rule.label(),
                    crate::view::target_text(&rule.rule),
                    rule.rule.effect
                ),
                command: Command::RemoveFault(rule.id),
            });
        }
        _ => return false,
    }
    true
}
