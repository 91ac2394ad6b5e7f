//! Actions on the selected instance (keys in every instance view) and [`perform`], which carries
//! out an action from a key or the command line.

use super::{fork_here, switch_view};
use crate::cmdline::Action;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay, RaiseForm, StartForm, View, raise_warning, short_id};

pub(super) fn instance_key(model: &mut Model, action: KeyAction, out: &mut Vec<Command>) {
    if action == KeyAction::Start {
        open_start_form(model);
        return;
    }
    if visible_selection(model).is_none() {
        return;
    }
    let action = match action {
        KeyAction::Raise => {
            open_raise_form(model);
            return;
        }
        KeyAction::OpenReplay => {
            super::replay::reload(model);
            switch_view(model, View::Replay, out);
            return;
        }
        KeyAction::Terminate => Action::Terminate {
            instance: None,
            reason: "terminated from the UI".into(),
        },
        KeyAction::Suspend => Action::Suspend(None),
        KeyAction::Resume => Action::Resume(None),
        KeyAction::Restart => Action::Restart(None),
        KeyAction::Purge => Action::Purge(None),
        _ => return,
    };
    perform(model, action, out);
}

/// The raise form for the selected instance (the command line when none is selected, so an id
/// can be given).
fn open_raise_form(model: &mut Model) {
    let row = model
        .selected_id()
        .and_then(|id| model.instances.rows.get(id));
    model.overlay = Some(match row {
        Some(row) => Overlay::Raise(RaiseForm::new(row)),
        None => Overlay::Command(TextInput::new("raise ")),
    });
}

pub(super) fn open_start_form(model: &mut Model) {
    if model.orchestrators.is_empty() {
        model.status = Some(("no functions are loaded, so nothing can start".into(), true));
        return;
    }
    model.overlay = Some(Overlay::Start(StartForm::new(
        &model.orchestrators,
        &model.orchestrator_info,
        &model.last_inputs,
    )));
}

// ----- actions ----------------------------------------------------------------------------------

/// Carries out an action from a key or the command line (destructive ones ask first).
pub fn perform(model: &mut Model, action: Action, out: &mut Vec<Command>) {
    let target = |model: &mut Model, instance: Option<String>| -> Option<String> {
        match instance {
            Some(id) => Some(id),
            None => visible_selection(model),
        }
    };
    match action {
        Action::Start { name, input } => out.push(Command::Start { name, input }),
        Action::Raise {
            instance,
            name,
            data,
        } => {
            if let Some(instance_id) = target(model, instance) {
                let warning = model
                    .instances
                    .rows
                    .get(&instance_id)
                    .and_then(|row| raise_warning(row, &name));
                if let Some(warning) = &warning {
                    // At once, before the engine answers: the answer repeats it.
                    model.status = Some((
                        format!("raise {name} on {}: {warning}", short_id(&instance_id)),
                        false,
                    ));
                }
                out.push(Command::Raise {
                    instance_id,
                    name,
                    data,
                    warning,
                });
            }
        }
        Action::Terminate { instance, reason } => {
            if let Some(instance_id) = target(model, instance) {
                model.overlay = Some(Overlay::Confirm {
                    prompt: format!(
                        "Terminate {}? It cannot be undone.",
                        describe(model, &instance_id)
                    ),
                    command: Command::Terminate {
                        instance_id,
                        reason,
                    },
                });
            }
        }
        Action::Purge(instance) => {
            if let Some(instance_id) = target(model, instance) {
                // Refused before asking: the engine would refuse it after the user said yes.
                if let Some(row) = model.instances.rows.get(&instance_id)
                    && !row.status.is_terminal()
                {
                    model.status = Some((
                        format!(
                            "cannot purge {}: purge removes only ended instances; terminate it first (t)",
                            describe(model, &instance_id)
                        ),
                        true,
                    ));
                    return;
                }
                model.overlay = Some(Overlay::Confirm {
                    prompt: format!(
                        "Purge {} and all its history? It cannot be undone.",
                        describe(model, &instance_id)
                    ),
                    command: Command::Purge(instance_id),
                });
            }
        }
        Action::Suspend(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Suspend(id));
            }
        }
        Action::Resume(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Resume(id));
            }
        }
        Action::Restart(instance) => {
            if let Some(id) = target(model, instance) {
                out.push(Command::Restart(id));
            }
        }
        Action::Advance(by) => out.push(Command::Advance(by)),
        Action::NextTimer => out.push(Command::NextTimer),
        Action::AutoSkip(on) => {
            let on = on.unwrap_or(!model.clock.auto_skip);
            model.clock.auto_skip = on;
            out.push(Command::SetAutoSkip(on));
        }
        Action::Play(playing) => super::clock::set_playing(model, playing, out),
        Action::Fork => {
            if model.stepper.is_none() {
                model.status = Some(("open the replay stepper (F) to fork".into(), true));
            } else {
                fork_here(model, None, out);
            }
        }
        Action::Fault { spec, rule } => out.push(Command::AddFault { spec, rule }),
        Action::Signal {
            entity,
            operation,
            input,
        } => out.push(Command::SignalEntity {
            instance_id: entity,
            operation,
            input,
        }),
        Action::View(view) => switch_view(model, view, out),
        Action::Filter(text) => {
            model.instances.filter = text;
            model.instances.dirty = true;
            switch_view(model, View::Instances, out);
        }
        Action::Sort(key) => {
            model.instances.sort = Some(key);
            model.instances.dirty = true;
        }
        Action::Help => model.overlay = Some(Overlay::Help { scroll: 0 }),
        Action::Quit => model.quit = true,
    }
}

/// The selected instance if it is a row the list shows, else `None` with the reason on the status
/// line: an action must never reach an instance the filter hides, which the user cannot see.
pub(super) fn visible_selection(model: &mut Model) -> Option<String> {
    if model.instances.dirty {
        model.instances.rebuild();
    }
    let instances = &model.instances;
    if let Some(id) = instances
        .selected_id
        .as_ref()
        .filter(|id| instances.visible.iter().any(|(shown, _)| shown == *id))
    {
        return Some(id.clone());
    }
    let why = if instances.rows.is_empty() {
        "no instances yet: n starts one".to_string()
    } else if instances.visible.is_empty() {
        format!(
            "the filter '{}' hides every instance: / changes it, c (Instances view) clears it",
            instances.filter
        )
    } else {
        "no instance is selected: select a row in the Instances view (1)".to_string()
    };
    model.status = Some((why, true));
    None
}

pub(super) fn describe(model: &Model, id: &str) -> String {
    match model.instances.rows.get(id) {
        Some(row) => format!("{} {} ({})", row.name, short_id(id), row.status),
        None => id.to_string(),
    }
}
