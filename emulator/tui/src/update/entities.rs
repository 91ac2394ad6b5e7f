//! Keys and loads of the Entities view: select an entity (its state and operation log load), open
//! it in full, signal it (the command line, prefilled). What an entity is lives in the engine;
//! this knows only when to ask for the list and for the selected entity.

use super::moved;
use crate::command::Command;
use crate::input::TextInput;
use crate::keymap::KeyAction;
use crate::model::{Model, Overlay, Part, View, entity_in_full};
use durable_emu_engine::engine::EntityMetadata;
use ratatui::crossterm::event::KeyEvent;

/// Loads what went stale: the list while the view shows (and once at start, for the command
/// line's completion of entity ids), then the selected entity (also when the selection moved to
/// another entity than the one loaded).
pub(super) fn on_tick(model: &mut Model, out: &mut Vec<Command>) {
    let shown = model.view == View::Entities;
    if model.stale.is_marked(Part::Entities)
        && !model.stale.is_loading(Part::Entities)
        && (shown || !model.entities.loaded)
    {
        model.stale.take(Part::Entities);
        model.stale.start_loading(Part::Entities);
        out.push(Command::LoadEntities);
    }
    if !shown {
        return;
    }
    let Some(selected) = model.entities.selected_id().map(str::to_string) else {
        return;
    };
    let other = model
        .entities
        .detail
        .as_ref()
        .is_none_or(|detail| detail.instance_id != selected);
    if (other || model.stale.is_marked(Part::EntityDetail))
        && !model.stale.is_loading(Part::EntityDetail)
    {
        model.stale.take(Part::EntityDetail);
        model.stale.start_loading(Part::EntityDetail);
        out.push(Command::LoadEntity {
            instance_id: selected,
            for_errors: false,
        });
    }
}

/// The list arrived: the selected entity stays selected (by id) if it is still there.
pub(super) fn listed(model: &mut Model, list: Vec<EntityMetadata>) {
    let entities = &mut model.entities;
    let selected = entities.selected_id().map(str::to_string);
    entities.list = list;
    entities.loaded = true;
    if let Some(at) = selected.and_then(|id| {
        entities
            .list
            .iter()
            .position(|entity| entity.instance_id == id)
    }) {
        entities.selected = at;
    }
    entities.selected = entities
        .selected
        .min(entities.list.len().saturating_sub(1));
}

/// Selects the entity at `position` (its detail loads at the next tick).
pub(super) fn select(model: &mut Model, position: usize) {
    if model.entities.selected != position {
        model.entities.selected = position;
        model.stale.mark(Part::EntityDetail);
    }
}

pub(super) fn key(model: &mut Model, action: KeyAction, key: KeyEvent, page_rows: usize) -> bool {
    match action {
        KeyAction::Move => {
            let entities = &model.entities;
            match moved(key.code, entities.selected, entities.list.len(), page_rows) {
                Some(next) => {
                    select(model, next);
                    true
                }
                None => false,
            }
        }
        KeyAction::SignalEntity => {
            let line = match model.entities.selected_id() {
                Some(id) => format!("signal {id} "),
                None => "signal ".to_string(),
            };
            model.overlay = Some(Overlay::Command(TextInput::new(line)));
            true
        }
        KeyAction::EntityInFull => {
            match model.entities.selected_detail() {
                Some(detail) => {
                    model.overlay = Some(Overlay::Text {
                        title: detail.instance_id.clone(),
                        lines: entity_in_full(detail),
                        scroll: 0,
                    });
                }
                None if model.entities.list.is_empty() => {
                    model.status = Some((
                        "no entities yet: :signal @counter@a add 5 creates one".into(),
                        true,
                    ));
                }
                None => model.status = Some(("the entity is still loading".into(), false)),
            }
            true
        }
        _ => false,
    }
}
