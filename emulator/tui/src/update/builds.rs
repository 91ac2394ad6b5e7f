//! Keys of the builds view (scroll the log ring back and forward; open the compiler output of
//! the last failed build), and what build events change where the user is: the status line's
//! notices (building, build #N loaded, N instances diverged) and the rows of instances a reload
//! check suspended or the user pinned.

use crate::keymap::KeyAction;
use crate::model::{InstanceRow, Model, Overlay};
use durable_emu_engine::Divergence;
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::NonDeterminism;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

/// A build of `target` started: said on the status line, wherever the user is.
pub(super) fn build_started(model: &mut Model, target: &str) {
    let name = std::path::Path::new(target).file_name().map_or_else(
        || target.to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    model.status = Some((format!("building {name} …"), false));
}

/// Build `number` is active: said on the status line; divergences are counted from here.
pub(super) fn build_loaded(model: &mut Model, number: u32) {
    model.diverged_since_load = 0;
    model.status = Some((format!("build #{number} loaded"), false));
}

/// A reload check suspended an instance: its row becomes `Diverged` at once (the list reload
/// confirms it), and the status line counts the instances the new build left behind.
pub(super) fn instance_diverged(
    model: &mut Model,
    instance_id: &str,
    build: u32,
    pinned_build: Option<u32>,
    reason: String,
    diff: Option<NonDeterminism>,
) {
    if let Some(row) = model.instances.rows.get_mut(instance_id) {
        row.build = pinned_build.or(row.build);
        row.pinned = false;
        row.divergence = Some(Divergence {
            build,
            reason,
            diff,
        });
        model.instances.dirty = true;
    }
    model.diverged_since_load += 1;
    let count = model.diverged_since_load;
    let instances = if count == 1 { "instance" } else { "instances" };
    let cause = if build == durable_emu_engine::REMOTE_CODE {
        "a worker connected".to_string()
    } else {
        format!("build #{build} loaded")
    };
    model.status = Some((
        format!("{cause} · {count} {instances} diverged (Enter on a Diverged one to choose)"),
        true,
    ));
}

/// An instance's status changes to `status`: once a diverged one runs again it was resumed on
/// its own build (the engine pins it), and once it ended the divergence no longer matters.
pub(crate) fn left_divergence(row: &mut InstanceRow, status: RuntimeStatus) {
    if row.divergence.is_none() || status == RuntimeStatus::Suspended {
        return;
    }
    if !status.is_terminal() {
        row.pinned = true;
    }
    row.divergence = None;
}

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
