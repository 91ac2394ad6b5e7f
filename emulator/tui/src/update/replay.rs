//! The replay stepper: opening it on the selected execution, stepping (one request per step,
//! answered by the replay lane), its keys, and forking (as is, or with an edited completion).
//!
//! The stepper holds the history as it was when it opened: live events only mark it as grown
//! (the view says so), and `F` reloads it from the store. A diverged instance steps on its own
//! build, where it replays cleanly; its whole history is also replayed once on the active build,
//! which is where the divergence shows.

use super::json_overlay;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::layout::page;
use crate::model::{ActiveReplay, ForkForm, Model, Overlay, Part, Stepper, View};
use durable_emu_engine::inspect::replay::{CompletionEdit, calls_at, next_completion};
use durable_sdk::history::{EventKind, HistoryEvent};
use durable_sdk::protocol::NonDeterminism;
use ratatui::crossterm::event::{KeyCode, KeyEvent};
use serde_json::Value;
use std::sync::Arc;

pub(super) fn ensure_stepper(model: &mut Model, out: &mut Vec<Command>) {
    let Some(history) = &model.history else {
        return;
    };
    if history.loading || model.selected_id() != Some(history.instance_id.as_str()) {
        return;
    }
    let Some(execution) = history.current() else {
        return;
    };
    let current = model.stepper.as_ref().is_some_and(|stepper| {
        stepper.instance_id == history.instance_id
            && stepper.execution_id == execution.execution.execution_id
    });
    if current {
        return;
    }
    let events = Arc::new(execution.events.clone());
    let step = events.len();
    let all_calls = calls_at(&events, step);
    let names = crate::model::call_names(&events);
    let row = model.instances.rows.get(&history.instance_id);
    let build = row.and_then(|row| row.build);
    let diverged = row.is_some_and(crate::model::InstanceRow::is_diverged);
    // Live events that arrived while the history loaded are in it already; any later ones
    // mark the stepper as grown.
    let on_active = diverged.then(|| {
        let token = model.next_token;
        model.next_token += 1;
        out.push(Command::ReplayOnActive {
            token,
            instance_id: history.instance_id.clone(),
            execution_id: execution.execution.execution_id.clone(),
            events: Arc::clone(&events),
        });
        ActiveReplay {
            build: model.builds.active,
            token,
            result: None,
        }
    });
    model.stepper = Some(Stepper {
        instance_id: history.instance_id.clone(),
        execution_id: execution.execution.execution_id.clone(),
        events,
        step,
        token: 0,
        result: None,
        calls: Vec::new(),
        all_calls,
        names,
        offset: 0,
        build,
        grown: false,
        on_active,
    });
    step_to(model, step, out);
}

/// `F`: the stepper is opened afresh on the history as the store has it now (also on the same
/// instance, whose history may have grown since it opened).
pub(super) fn reload(model: &mut Model) {
    let Some(stepper) = model.stepper.take() else {
        return;
    };
    let held = model
        .history
        .as_ref()
        .is_some_and(|history| history.instance_id == stepper.instance_id);
    if held && model.selected_id() == Some(stepper.instance_id.as_str()) {
        model.stale.mark(Part::History);
        if stepper.grown {
            model.status = Some(("reloading the history ...".into(), false));
        }
    }
}

/// Live events of an instance: a stepper open on it no longer shows its whole history.
pub(super) fn history_grew(
    model: &mut Model,
    instance_id: &str,
    execution_id: &str,
    first_seq: usize,
    events: &[HistoryEvent],
) {
    let Some(stepper) = &mut model.stepper else {
        return;
    };
    if stepper.instance_id == instance_id
        && (stepper.execution_id != execution_id || first_seq + events.len() > stepper.events.len())
    {
        stepper.grown = true;
    }
}

/// The answer of [`Command::ReplayOnActive`].
pub(super) fn replayed_on_active(
    model: &mut Model,
    token: u64,
    result: Result<Option<NonDeterminism>, String>,
) {
    let on_active = model
        .stepper
        .as_mut()
        .and_then(|stepper| stepper.on_active.as_mut())
        .filter(|on_active| on_active.token == token);
    if let Some(on_active) = on_active {
        on_active.result = Some(result);
    }
}

pub(super) fn step_to(model: &mut Model, step: usize, out: &mut Vec<Command>) {
    let token = model.next_token;
    let Some(stepper) = &mut model.stepper else {
        return;
    };
    model.next_token += 1;
    stepper.step = step.min(stepper.events.len());
    let step = stepper.step;
    // The prefix's calls: those scheduled before the step, completed only if that was too.
    stepper.calls = stepper
        .all_calls
        .iter()
        .take_while(|call| call.scheduled_at < step)
        .map(|call| {
            let mut call = call.clone();
            if call.completed_at.is_some_and(|at| at >= step) {
                call.completed_at = None;
                call.failed = false;
            }
            call
        })
        .collect();
    stepper.token = token;
    out.push(Command::Step {
        token,
        instance_id: stepper.instance_id.clone(),
        execution_id: stepper.execution_id.clone(),
        events: Arc::clone(&stepper.events),
        step: stepper.step,
        build: stepper.build,
    });
}

pub(super) fn key(
    model: &mut Model,
    action: KeyAction,
    key: KeyEvent,
    out: &mut Vec<Command>,
) -> bool {
    let Some(stepper) = &model.stepper else {
        return false;
    };
    let (step, len) = (stepper.step, stepper.events.len());
    let stepping = matches!(
        action,
        KeyAction::Move
            | KeyAction::StepForward
            | KeyAction::StepBack
            | KeyAction::FirstStep
            | KeyAction::LastStep
    );
    // Which way a step goes is the key's (j and l both step forward).
    let next = match key.code {
        KeyCode::Right | KeyCode::Char('l') | KeyCode::Char('j') | KeyCode::Down => {
            Some((step + 1).min(len))
        }
        KeyCode::Left | KeyCode::Char('h') | KeyCode::Char('k') | KeyCode::Up => {
            Some(step.saturating_sub(1))
        }
        KeyCode::Home | KeyCode::Char('g') => Some(0),
        KeyCode::End | KeyCode::Char('G') => Some(len),
        KeyCode::PageDown => Some((step + page(View::Replay, model.area)).min(len)),
        KeyCode::PageUp => Some(step.saturating_sub(page(View::Replay, model.area))),
        _ => None,
    };
    if stepping && let Some(next) = next {
        if next != step {
            step_to(model, next, out);
        }
        return true;
    }
    match action {
        KeyAction::Fork => fork_here(model, None, out),
        KeyAction::ForkEdited => open_fork_form(model),
        KeyAction::EventJson => {
            if let Some(event) = step.checked_sub(1).and_then(|at| stepper.events.get(at)) {
                model.overlay = Some(json_overlay(
                    format!("event {} (step {step})", step - 1),
                    &serde_json::to_value(event).unwrap_or(Value::Null),
                ));
            }
        }
        _ => return false,
    }
    true
}

pub(super) fn open_fork_form(model: &mut Model) {
    let Some(stepper) = &model.stepper else {
        return;
    };
    let Some(target) = next_completion(&stepper.events, stepper.step) else {
        model.status = Some((
            "nothing completes after this step, so there is nothing to edit".into(),
            true,
        ));
        return;
    };
    let event = &stepper.events[target];
    let can_fail = !matches!(event.kind, EventKind::EventRaised { .. });
    let (result, failure) = match &event.kind {
        EventKind::TaskCompleted { result, .. }
        | EventKind::SubOrchestrationInstanceCompleted { result, .. }
        | EventKind::EntityOperationCompleted { output: result, .. } => (result.to_string(), None),
        EventKind::EventRaised { input, .. } => (input.to_string(), None),
        EventKind::TaskFailed { failure, .. }
        | EventKind::SubOrchestrationInstanceFailed { failure, .. }
        | EventKind::EntityOperationFailed { failure, .. } => {
            ("null".to_string(), Some(failure.clone()))
        }
        other => {
            model.status = Some((
                format!(
                    "the next completion is a {}, which cannot be edited; press f to fork as is",
                    other.type_name()
                ),
                true,
            ));
            return;
        }
    };
    let name = durable_emu_engine::inspect::rows::answers(&event.kind)
        .and_then(|answers| {
            crate::model::call_names(&stepper.events[..target])
                .get(answers)
                .map(|call| call.name.clone())
        })
        .or_else(|| event.kind.name().map(str::to_string))
        .unwrap_or_default();
    model.overlay = Some(Overlay::Fork(ForkForm {
        target,
        target_text: format!("{} {name} (event {target})", event.kind.type_name()),
        fail: failure.is_some(),
        can_fail,
        result: TextInput::new(result),
        error_type: TextInput::new(
            failure
                .as_ref()
                .map_or("EditedFailure".to_string(), |failure| {
                    failure.error_type.clone()
                }),
        ),
        message: TextInput::new(
            failure
                .as_ref()
                .map_or("failed in a fork".to_string(), |failure| {
                    failure.error_message.clone()
                }),
        ),
        // On the toggle, so Space toggles as the form says; an event has no toggle.
        field: if can_fail { 0 } else { 1 },
    }));
}

pub(super) fn fork_here(model: &mut Model, edit: Option<&CompletionEdit>, out: &mut Vec<Command>) {
    let Some(stepper) = &model.stepper else {
        return;
    };
    // The engine plans, runs and imports the fork (and names its id); refusals come back as the
    // fork's failure on the status line.
    model.status = Some((format!("forking at step {} ...", stepper.step), false));
    out.push(Command::Fork {
        instance_id: stepper.instance_id.clone(),
        step: stepper.step,
        edit: edit.cloned(),
    });
}
