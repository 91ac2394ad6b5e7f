//! The choice dialog of a `Diverged` instance (one a reload check suspended because the active
//! build does not replay its history): resume it pinned on its own build, restart it on the new
//! build, or terminate it; each choice names its key, which is also the instance key that does
//! the same anywhere. Knows the three actions and the views the dialog leads to, nothing of how
//! the engine carries them out (a refusal, such as a pinned build that is no longer loaded,
//! comes back as the action's failure on the status line).

use super::{perform, switch_view};
use crate::cmdline::Action;
use crate::command::Command;
use crate::model::{DivergedChoice, InstanceRow, Model, Overlay, View};
use ratatui::crossterm::event::{KeyCode, KeyEvent};

/// The dialog for `row`, if it is `Diverged`.
pub(super) fn choice(row: &InstanceRow) -> Option<DivergedChoice> {
    let divergence = row.divergence.as_ref().filter(|_| row.is_diverged())?;
    Some(DivergedChoice {
        instance_id: row.id.clone(),
        name: row.name.clone(),
        pinned_build: row.build,
        new_build: divergence.build,
        reason: divergence.reason.clone(),
    })
}

/// A key in the dialog; returns the overlay that stays open (the dialog, a confirmation, none).
pub(super) fn key(
    model: &mut Model,
    choice: DivergedChoice,
    key: KeyEvent,
    out: &mut Vec<Command>,
) -> Option<Overlay> {
    let id = choice.instance_id.clone();
    match key.code {
        KeyCode::Char('u') => {
            let on = choice
                .pinned_build
                .map_or_else(|| "its own build".to_string(), |build| format!("#{build}"));
            model.status = Some((format!("resuming pinned on {on} ..."), false));
            out.push(Command::Resume(id));
            None
        }
        KeyCode::Char('R') => {
            model.status = Some((
                format!(
                    "restarting on {} ...",
                    crate::model::code_label(choice.new_build)
                ),
                false,
            ));
            out.push(Command::Restart(id));
            None
        }
        KeyCode::Char('t') => {
            perform(
                model,
                Action::Terminate {
                    instance: Some(id),
                    reason: format!(
                        "terminated from the UI after diverging from {}",
                        crate::model::code_label(choice.new_build)
                    ),
                },
                out,
            );
            model.overlay.take()
        }
        KeyCode::Char('e') => {
            switch_view(model, View::Errors, out);
            None
        }
        KeyCode::Enter | KeyCode::Char('l') => {
            switch_view(model, View::History, out);
            None
        }
        KeyCode::Esc | KeyCode::Char('q') => None,
        _ => Some(Overlay::Diverged(choice)),
    }
}
