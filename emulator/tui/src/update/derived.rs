//! The views derived from the selected history (timeline, fan-out, errors): recomputing the one
//! shown when its source changed, scrolling it, and opening an Errors row's failure in full. The
//! derivations themselves live in `tui::timeline`, `tui::fanout` and `tui::errors`; this knows
//! only when to run them.

use super::moved;
use crate::command::Command;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay, View};
use durable_emu_engine::inspect::errors::{
    Loaded, error_tree, failed_children, failed_entities, failure_text,
};
use durable_emu_engine::inspect::fanout::fanout_groups;
use durable_emu_engine::inspect::timeline::timeline;
use durable_sdk::history::RuntimeStatus;
use ratatui::crossterm::event::KeyEvent;

pub(super) fn derive(model: &mut Model, out: &mut Vec<Command>) {
    let Some(history) = &model.history else {
        return;
    };
    if history.loading {
        return;
    }
    let source = (
        model.view,
        history.instance_id.clone(),
        history.execution,
        history.revision,
        model.children_revision,
    );
    if model.derived.source.as_ref() == Some(&source) {
        return;
    }
    let events = history.events();
    for child in failed_children(events) {
        if !model.children.contains_key(&child) {
            model.children.insert(child.clone(), Vec::new());
            out.push(Command::LoadHistory {
                instance_id: child,
                child: true,
            });
        }
    }
    if model.view == View::Errors {
        // A failed entity call is followed into the entity's operation log.
        for entity in failed_entities(events) {
            if model.entity_logs_asked.insert(entity.clone()) {
                out.push(Command::LoadEntity {
                    instance_id: entity,
                    for_errors: true,
                });
            }
        }
    }
    let (name, status) = model
        .instances
        .rows
        .get(&history.instance_id)
        .map_or(("?".to_string(), RuntimeStatus::Running.as_str()), |row| {
            (row.name.clone(), row.status_label())
        });
    // Only the view shown: each derivation reads the whole history.
    match model.view {
        View::Timeline => model.derived.timeline = timeline(events, model.clock.now),
        View::FanOut => model.derived.fanout = fanout_groups(events),
        _ => {
            let loaded = Loaded {
                children: &model.children,
                entity_logs: &model.entity_logs,
            };
            model.derived.errors = error_tree(&name, status, events, loaded);
        }
    }
    model.derived.source = Some((
        model.view,
        history.instance_id.clone(),
        history.execution,
        history.revision,
        model.children_revision,
    ));
}

/// A key in the timeline, fan-out or errors view; false if it means nothing here.
pub(super) fn key(model: &mut Model, action: KeyAction, key: KeyEvent, page_rows: usize) -> bool {
    if action == KeyAction::FailureDetails {
        open_failure(model);
        return true;
    }
    if action != KeyAction::Move {
        return false;
    }
    let len = match model.view {
        View::Timeline => model.derived.timeline.bars.len(),
        View::FanOut => model.derived.fanout.len(),
        _ => model.derived.errors.len(),
    };
    match moved(key.code, model.derived_offset, len, page_rows) {
        Some(next) => {
            model.derived_offset = next;
            true
        }
        None => false,
    }
}

/// Enter on an Errors row: the row's failure in full in the text box (the row itself first, as
/// the list may have cut it); a row about no failure shows its whole text.
fn open_failure(model: &mut Model) {
    let Some(row) = model.derived.errors.get(model.derived_offset) else {
        return;
    };
    let mut lines = vec![row.text.clone()];
    let title = match &row.failure {
        Some(failure) => {
            lines.push(String::new());
            lines.extend(failure_text(failure));
            format!("failure: {}", failure.error_type)
        }
        None => "errors row".to_string(),
    };
    model.overlay = Some(Overlay::Text {
        title,
        lines,
        scroll: 0,
    });
}
