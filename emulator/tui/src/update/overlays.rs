//! Keys while an overlay is open: help, filter, command line, confirm, the text box (JSON,
//! failures, compiler output), and the start, fault and fork forms. The view underneath gets no
//! keys meanwhile.

use super::{fork_here, moved, perform};
use crate::cmdline::{self, Action, Candidates, Completion};
use crate::command::Command;
use crate::input::TextInput;
use crate::model::{Model, Overlay, RaiseField};
use crate::textbox;
use durable_emu_engine::inspect::replay::CompletionEdit;
use ratatui::crossterm::event::{KeyCode, KeyEvent};

// ----- overlays ---------------------------------------------------------------------------------

pub(super) fn on_overlay_key(model: &mut Model, key: KeyEvent, out: &mut Vec<Command>) {
    let Some(overlay) = model.overlay.take() else {
        return;
    };
    model.overlay = match overlay {
        Overlay::Help { scroll } => match key.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::Char('q') | KeyCode::Enter => None,
            code => Some(Overlay::Help {
                scroll: moved(code, scroll, 60, 10).unwrap_or(scroll),
            }),
        },
        Overlay::Filter(mut input) => match key.code {
            KeyCode::Enter => {
                model.instances.filter_before = None;
                None
            }
            KeyCode::Esc => {
                model.instances.filter = model.instances.filter_before.take().unwrap_or_default();
                model.instances.dirty = true;
                None
            }
            _ => {
                input.edit(key);
                model.instances.filter = input.text().to_string();
                model.instances.dirty = true;
                Some(Overlay::Filter(input))
            }
        },
        Overlay::Command(mut input) => match key.code {
            KeyCode::Esc => {
                model.command_history.reset();
                None
            }
            KeyCode::Tab => {
                complete_command(model, &mut input);
                Some(Overlay::Command(input))
            }
            KeyCode::Up => {
                if let Some(older) = model.command_history.older(input.text()) {
                    input = TextInput::new(older);
                }
                Some(Overlay::Command(input))
            }
            KeyCode::Down => {
                if let Some(newer) = model.command_history.newer() {
                    input = TextInput::new(newer);
                }
                Some(Overlay::Command(input))
            }
            KeyCode::Enter => {
                let text = input.text().to_string();
                let rows = &model.instances.rows;
                match cmdline::parse(&text, |word| rows.contains_key(word)) {
                    Ok(action) => {
                        model.status = None;
                        model.command_history.push(&text);
                        perform(model, action, out);
                        model.overlay.take()
                    }
                    Err(error) => {
                        model.status = Some((error, true));
                        Some(Overlay::Command(input))
                    }
                }
            }
            _ => {
                input.edit(key);
                Some(Overlay::Command(input))
            }
        },
        Overlay::Confirm { prompt, command } => match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') | KeyCode::Enter => {
                out.push(command);
                None
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc | KeyCode::Char('q') => {
                model.status = Some(("cancelled".into(), false));
                None
            }
            _ => Some(Overlay::Confirm { prompt, command }),
        },
        Overlay::Text {
            title,
            lines,
            scroll,
        } => match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => None,
            code => Some(Overlay::Text {
                scroll: scrolled(model, &lines, scroll, code),
                title,
                lines,
            }),
        },
        Overlay::Start(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::BackTab => {
                form.editing_input = !form.editing_input;
                Some(Overlay::Start(form))
            }
            KeyCode::Enter if !form.editing_input => {
                form.editing_input = true;
                Some(Overlay::Start(form))
            }
            KeyCode::Enter => match form.parsed_input() {
                Ok(input) => {
                    let name = form.names.get(form.selected).cloned().unwrap_or_default();
                    model
                        .last_inputs
                        .insert(name.clone(), form.input.text().to_string());
                    out.push(Command::Start { name, input });
                    None
                }
                Err(_) => Some(Overlay::Start(form)),
            },
            code if !form.editing_input => {
                if let Some(next) = moved(code, form.selected, form.names.len(), 10)
                    && next != form.selected
                {
                    form.select(next);
                }
                Some(Overlay::Start(form))
            }
            _ => {
                form.input.edit(key);
                Some(Overlay::Start(form))
            }
        },
        Overlay::Fault(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::Down => {
                form.focus_next(true);
                Some(Overlay::Fault(form))
            }
            KeyCode::BackTab | KeyCode::Up => {
                form.focus_next(false);
                Some(Overlay::Fault(form))
            }
            KeyCode::Enter => match form.rule() {
                Ok(rule) => {
                    out.push(Command::AddFault {
                        spec: form.compact(),
                        rule: Box::new(rule),
                    });
                    None
                }
                Err(error) => {
                    model.status = Some((error, true));
                    Some(Overlay::Fault(form))
                }
            },
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right if form.field.is_choice() => {
                form.cycle(key.code != KeyCode::Left);
                Some(Overlay::Fault(form))
            }
            _ => {
                if let Some(input) = form.focused_input() {
                    input.edit(key);
                }
                Some(Overlay::Fault(form))
            }
        },
        Overlay::Diverged(choice) => super::diverged::key(model, choice, key, out),
        Overlay::Raise(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab => {
                form.focus_next(true);
                Some(Overlay::Raise(form))
            }
            KeyCode::BackTab => {
                form.focus_next(false);
                Some(Overlay::Raise(form))
            }
            KeyCode::Enter if form.field == RaiseField::Waiting => {
                form.field = RaiseField::Payload;
                Some(Overlay::Raise(form))
            }
            KeyCode::Enter => {
                let name = form.name.text().trim().to_string();
                match form.parsed_payload() {
                    _ if name.is_empty() => {
                        model.status = Some(("the event needs a name".into(), true));
                        Some(Overlay::Raise(form))
                    }
                    Ok(data) => {
                        model.status = None;
                        perform(
                            model,
                            Action::Raise {
                                instance: Some(form.instance_id),
                                name,
                                data,
                            },
                            out,
                        );
                        None
                    }
                    Err(error) => {
                        model.status = Some((error, true));
                        Some(Overlay::Raise(form))
                    }
                }
            }
            code if form.field == RaiseField::Waiting => {
                if let Some(next) = moved(code, form.selected, form.awaited.len(), 5) {
                    form.pick(next);
                }
                Some(Overlay::Raise(form))
            }
            _ => {
                match form.field {
                    RaiseField::Name => form.name.edit(key),
                    _ => form.payload.edit(key),
                };
                Some(Overlay::Raise(form))
            }
        },
        Overlay::Fork(mut form) => match key.code {
            KeyCode::Esc => None,
            KeyCode::Tab | KeyCode::Down => {
                form.focus_next(true);
                Some(Overlay::Fork(form))
            }
            KeyCode::BackTab | KeyCode::Up => {
                form.focus_next(false);
                Some(Overlay::Fork(form))
            }
            KeyCode::Char(' ') | KeyCode::Left | KeyCode::Right
                if form.field == 0 && form.can_fail =>
            {
                form.fail = !form.fail;
                Some(Overlay::Fork(form))
            }
            KeyCode::Enter => {
                let edit = if form.fail {
                    Ok(CompletionEdit::Failure {
                        error_type: form.error_type.text().trim().to_string(),
                        message: form.message.text().to_string(),
                    })
                } else {
                    serde_json::from_str(form.result.text())
                        .map(CompletionEdit::Result)
                        .map_err(|error| format!("the result is not JSON: {error}"))
                };
                match edit {
                    Ok(CompletionEdit::Failure { error_type, .. }) if error_type.is_empty() => {
                        model.status = Some(("a failure needs an error type".into(), true));
                        Some(Overlay::Fork(form))
                    }
                    Ok(edit) => {
                        fork_here(model, Some(&edit), out);
                        None
                    }
                    Err(error) => {
                        model.status = Some((error, true));
                        Some(Overlay::Fork(form))
                    }
                }
            }
            _ => {
                match (form.fail, form.field) {
                    (false, 1) => form.result.edit(key),
                    (true, 1) => form.error_type.edit(key),
                    (true, 2) => form.message.edit(key),
                    _ => false,
                };
                Some(Overlay::Fork(form))
            }
        },
    };
}

/// How many matches the status line names after a Tab with several.
const LISTED_MATCHES: usize = 8;

/// Tab on the command line: completes the word at the end from what the UI knows, or says on the
/// status line what matched (or why nothing did).
fn complete_command(model: &mut Model, input: &mut TextInput) {
    let mut instances: Vec<String> = model.instances.rows.keys().cloned().collect();
    instances.sort();
    let candidates = Candidates {
        orchestrations: model.orchestrators.clone(),
        instances,
        entities: model
            .entities
            .list
            .iter()
            .map(|entity| entity.instance_id.clone())
            .collect(),
    };
    match cmdline::complete(input.text(), &candidates) {
        Completion::One(text) => {
            *input = TextInput::new(text);
            model.status = None;
        }
        Completion::Many { text, options } => {
            *input = TextInput::new(text);
            let mut listed = options
                .iter()
                .take(LISTED_MATCHES)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" · ");
            if options.len() > LISTED_MATCHES {
                listed.push_str(&format!(" · … {} more", options.len() - LISTED_MATCHES));
            }
            model.status = Some((listed, false));
        }
        Completion::Nothing(why) => model.status = Some((why, true)),
    }
}

/// The text box's first visible row after `code`, in rows wrapped at the box's width; the last
/// row stops at the bottom of the box.
fn scrolled(model: &Model, lines: &[String], scroll: usize, code: KeyCode) -> usize {
    let (width, height) = textbox::inner_size(model.area);
    let rows = textbox::wrap(lines, width).len();
    let last = textbox::max_scroll(rows, height);
    // One page keeps a row of the previous one in sight.
    let page = height.saturating_sub(1).max(1);
    moved(code, scroll, last + 1, page)
        .unwrap_or(scroll)
        .min(last)
}
