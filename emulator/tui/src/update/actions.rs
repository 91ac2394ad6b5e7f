//! Actions on the selected instance (keys in every instance view) and [`perform`], which carries
//! out an action from a key or the command line.

use super::{fork_here, switch_view};
use crate::cmdline::Action;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay, StartForm, View, short_id};

pub(super) fn instance_key(model: &mut Model, action: KeyAction, out: &mut Vec<Command>) {
    let action = match action {
        KeyAction::Start => {
            open_start_form(model);
            return;
        }
        KeyAction::Raise => {
            model.overlay = Some(Overlay::Command(TextInput::new("raise ")));
            return;
        }
        KeyAction::OpenReplay => {
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
        let id = instance.or_else(|| model.selected_id().map(str::to_string));
        if id.is_none() {
            model.status = Some(("select an instance first (or give its id)".into(), true));
        }
        id
    };
    match action {
        Action::Start { name, input } => out.push(Command::Start { name, input }),
        Action::Raise {
            instance,
            name,
            data,
        } => {
            if let Some(instance_id) = target(model, instance) {
                out.push(Command::Raise {
                    instance_id,
                    name,
                    data,
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

pub(super) fn describe(model: &Model, id: &str) -> String {
    match model.instances.rows.get(id) {
        Some(row) => format!("{} {} ({})", row.name, short_id(id), row.status),
        None => id.to_string(),
    }
}
