//! The replay stepper: history on the left with the cursor at the current step (events not yet
//! replayed dimmed), and on the right what the orchestrator code did after replaying that far:
//! its durable calls in order with the events that scheduled and satisfied them, the actions it
//! emits next, its custom status and its replay-safe log lines (replayed ones dimmed). A
//! nondeterminism is shown first, history and code side by side.

use super::{fit, placeholder, tone};
use crate::layout::{list_area, replay_split};
use crate::model::{Model, Stepper, Tone, View};
use crate::theme::Theme;
use durable_emu_engine::inspect::http;
use durable_emu_engine::inspect::replay::step_description;
use durable_emu_engine::inspect::rows::{compact_json, event_row, history_start, truncate};
use durable_sdk::protocol::{ActionKind, DurableCall, NonDeterminism};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let Some(stepper) = &model.stepper else {
        let text = if model
            .history
            .as_ref()
            .is_some_and(|history| history.loading)
        {
            "loading history ..."
        } else {
            "select an instance (1) and press F to step through its replay"
        };
        placeholder(frame, theme, body, text);
        return;
    };
    let width = usize::from(body.width);
    let events = &stepper.events;
    let name = model
        .instances
        .rows
        .get(&stepper.instance_id)
        .map_or("", |row| row.name.as_str());
    let at = step_description(events, stepper.step, &stepper.names);
    let heading = Line::from(vec![
        Span::styled(format!("Replay of {name} "), theme.accent()),
        Span::styled(format!("{} · ", stepper.instance_id), theme.dim()),
        Span::styled(
            format!("step {}/{} ", stepper.step, events.len()),
            theme.accent(),
        ),
        Span::styled(at, theme.text()),
    ]);

    frame.render_widget(Paragraph::new(heading), Rect { height: 1, ..body });
    let (left, right) = replay_split(body);
    if body.height > 1 {
        frame.render_widget(
            Paragraph::new(Span::styled(
                fit("SEQ  EVENT                 NAME", usize::from(left.width)),
                theme.accent(),
            )),
            Rect {
                y: body.y + 1,
                height: 1,
                ..left
            },
        );
    }
    let list = list_area(View::Replay, body);
    let start = history_start(events).unwrap_or_default();
    let names = &stepper.names;
    // Where the history stops replaying on the active build (a diverged instance).
    let diverges_at = active_diff(stepper).and_then(|diff| {
        stepper
            .all_calls
            .iter()
            .find(|call| call.sequence_id == diff.sequence_id)
            .map(|call| call.scheduled_at)
    });
    let last = (stepper.offset + usize::from(list.height)).min(events.len());
    let left_width = usize::from(left.width).saturating_sub(1);
    let lines: Vec<Line<'_>> = (stepper.offset..last)
        .map(|index| {
            let row = event_row(&events[index], start, names);
            let mark = if diverges_at == Some(index) {
                "≠"
            } else {
                " "
            };
            let text = fit(
                &format!("{:<4}{mark}{:<21} {} {}", index, row.kind, row.id, row.name),
                left_width,
            );
            let style = if diverges_at == Some(index) && index + 1 != stepper.step {
                theme.diverged()
            } else if index + 1 == stepper.step {
                tone(theme, row.tone).patch(theme.selected())
            } else if index >= stepper.step {
                theme.dim()
            } else {
                tone(theme, row.tone)
            };
            Line::from(Span::styled(text, style))
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
    let right_block = Block::default()
        .borders(Borders::LEFT)
        .border_style(theme.border());
    let inner = right_block.inner(Rect {
        y: body.y + 1,
        height: body.height.saturating_sub(1),
        ..right
    });
    frame.render_widget(
        right_block,
        Rect {
            y: body.y + 1,
            height: body.height.saturating_sub(1),
            ..right
        },
    );
    frame.render_widget(
        Paragraph::new(code_panel(model, theme, usize::from(inner.width))),
        inner,
    );
    let _ = width;
}

fn code_panel<'a>(model: &'a Model, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    let Some(stepper) = &model.stepper else {
        return lines;
    };
    let section = |text: &str| Line::from(Span::styled(text.to_string(), theme.accent()));
    // First in the panel, where it is never cut: the heading is as wide as the instance id.
    if stepper.grown {
        lines.push(Line::from(Span::styled(
            truncate("history has grown: F to reload", width),
            theme.warn().add_modifier(ratatui::style::Modifier::BOLD),
        )));
    }
    active_lines(stepper, theme, width, &mut lines);
    let result = match &stepper.result {
        None => {
            lines.push(Line::from(Span::styled("replaying ...", theme.dim())));
            None
        }
        Some(Err(error)) => {
            lines.push(Line::from(Span::styled(
                truncate(&format!("the plugin could not replay: {error}"), width),
                theme.error(),
            )));
            None
        }
        Some(Ok(result)) if result.step != stepper.step => {
            lines.push(Line::from(Span::styled("replaying ...", theme.dim())));
            None
        }
        Some(Ok(result)) => Some(&result.response),
    };
    if let Some(diff) = result.and_then(|response| response.nondeterminism.as_ref()) {
        let half = width.saturating_sub(3) / 2;
        let side = |call: &Option<durable_sdk::protocol::DurableCall>| {
            call.as_ref()
                .map_or_else(|| "(nothing)".to_string(), ToString::to_string)
        };
        lines.push(Line::from(Span::styled(
            format!("NONDETERMINISM at call #{}", diff.sequence_id),
            theme.error(),
        )));
        lines.push(Line::from(vec![
            Span::styled(fit("history has", half), theme.accent()),
            Span::styled(" │ ", theme.border()),
            Span::styled(fit("the code now makes", half), theme.accent()),
        ]));
        lines.push(Line::from(vec![
            Span::styled(fit(&side(&diff.expected), half), theme.ok()),
            Span::styled(" │ ", theme.border()),
            Span::styled(fit(&side(&diff.actual), half), theme.error()),
        ]));
        lines.push(Line::from(""));
    }
    lines.push(section(&format!("Durable calls ({})", stepper.calls.len())));
    let shown_calls = stepper.calls.len().saturating_sub(8);
    if shown_calls > 0 {
        lines.push(Line::from(Span::styled(
            format!("  … {shown_calls} earlier"),
            theme.dim(),
        )));
    }
    for call in &stepper.calls[shown_calls..] {
        let (state, style) = match call.completed_at {
            Some(at) if call.failed => (format!("✗ failed @{at}"), theme.error()),
            Some(at) => (format!("✓ @{at}"), theme.ok()),
            None => ("… waiting".to_string(), theme.warn()),
        };
        let text = format!(
            "  #{:<3} {} @{} ",
            call.sequence_id, call.call, call.scheduled_at
        );
        let room = width.saturating_sub(state.chars().count());
        lines.push(Line::from(vec![
            Span::styled(fit(&text, room), theme.text()),
            Span::styled(state, style),
        ]));
    }
    let Some(response) = result else {
        return lines;
    };
    lines.push(section("Emits next"));
    if response.actions.is_empty() {
        lines.push(Line::from(Span::styled(
            "  nothing: it waits for history",
            theme.dim(),
        )));
    }
    for action in &response.actions {
        let text = match &action.kind {
            ActionKind::ScheduleTask { name, input } => match http::request(name, input) {
                Some(wire) => format!("  #{} {}", action.id, http::call_text(&wire)),
                None => format!(
                    "  #{} call_activity {name} {}",
                    action.id,
                    compact_json(input, 30)
                ),
            },
            ActionKind::CreateTimer { fire_at } => {
                format!(
                    "  #{} create_timer until {}",
                    action.id,
                    fire_at.format("%m-%d %H:%M:%S")
                )
            }
            ActionKind::CreateSubOrchestration { name, .. } => {
                format!("  #{} call_sub_orchestrator {name}", action.id)
            }
            ActionKind::SendEvent {
                name, instance_id, ..
            } => {
                format!("  #{} send_event {name} to {instance_id}", action.id)
            }
            ActionKind::CallEntity {
                target_instance_id,
                operation,
                input,
                ..
            } => format!(
                "  #{} call_entity {target_instance_id} {operation} {}",
                action.id,
                compact_json(input, 30)
            ),
            ActionKind::SignalEntity {
                target_instance_id,
                operation,
                input,
                ..
            } => format!(
                "  #{} signal_entity {target_instance_id} {operation} {}",
                action.id,
                compact_json(input, 30)
            ),
            ActionKind::LockEntities { lock_set, .. } => {
                format!("  #{} lock_entities {}", action.id, lock_set.join(", "))
            }
            ActionKind::UnlockEntity {
                target_instance_id, ..
            } => format!("  #{} unlock {target_instance_id}", action.id),
            ActionKind::CompleteOrchestration {
                status,
                result,
                failure,
                ..
            } => match failure {
                Some(failure) => format!("  complete {status}: {failure}"),
                None => format!("  complete {status} {}", compact_json(result, 30)),
            },
        };
        lines.push(Line::from(Span::styled(
            truncate(&text, width),
            theme.text(),
        )));
    }
    lines.push(Line::from(vec![
        Span::styled("Custom status ", theme.accent()),
        Span::styled(
            response.custom_status.as_ref().map_or_else(
                || "none".to_string(),
                |status| compact_json(status, width.saturating_sub(14)),
            ),
            theme.text(),
        ),
    ]));
    lines.push(section(&format!("Log ({})", response.logs.len())));
    let skipped = response.logs.len().saturating_sub(6);
    for log in &response.logs[skipped..] {
        let style = if log.replaying {
            theme.dim()
        } else {
            tone(theme, Tone::Info)
        };
        let text = format!(
            "  {}{:?} {}",
            if log.replaying { "(replayed) " } else { "" },
            log.level,
            log.message
        );
        lines.push(Line::from(Span::styled(truncate(&text, width), style)));
    }
    for warning in &response.warnings {
        lines.push(Line::from(Span::styled(
            truncate(&format!("  warning: {warning}"), width),
            theme.warn(),
        )));
    }
    lines
}

/// The nondeterminism the active build finds in a diverged instance's history, once known.
fn active_diff(stepper: &Stepper) -> Option<&NonDeterminism> {
    match &stepper.on_active.as_ref()?.result {
        Some(Ok(Some(diff))) => Some(diff),
        _ => None,
    }
}

/// A diverged instance steps on its own build, where its history replays cleanly; these lines
/// say what the active build makes of the same history.
fn active_lines(stepper: &Stepper, theme: &Theme, width: usize, lines: &mut Vec<Line<'_>>) {
    let Some(on_active) = &stepper.on_active else {
        return;
    };
    let build = on_active.build.map_or_else(
        || "the active build".to_string(),
        |build| format!("build #{build}"),
    );
    let own = stepper.build.map_or_else(
        || "its own build".to_string(),
        |build| format!("build #{build}"),
    );
    lines.push(Line::from(Span::styled(
        truncate(&format!("Stepping on {own} (pinned); on {build}:"), width),
        theme.diverged(),
    )));
    match &on_active.result {
        None => lines.push(Line::from(Span::styled(
            format!("  replaying on {build} ..."),
            theme.dim(),
        ))),
        Some(Err(error)) => lines.push(Line::from(Span::styled(
            truncate(&format!("  could not replay: {error}"), width),
            theme.error(),
        ))),
        Some(Ok(None)) => lines.push(Line::from(Span::styled(
            "  the whole history replays cleanly now",
            theme.ok(),
        ))),
        Some(Ok(Some(diff))) => {
            let side = |call: &Option<DurableCall>, none: &str| {
                call.as_ref()
                    .map_or_else(|| none.to_string(), ToString::to_string)
            };
            let at = stepper
                .all_calls
                .iter()
                .find(|call| call.sequence_id == diff.sequence_id)
                .map(|call| format!(" (event {}, ≠ on the left)", call.scheduled_at))
                .unwrap_or_default();
            lines.push(Line::from(Span::styled(
                truncate(
                    &format!("  DIVERGES at call #{}{at}", diff.sequence_id),
                    width,
                ),
                theme.error(),
            )));
            lines.push(Line::from(Span::styled(
                truncate(
                    &format!("  history: {}", side(&diff.expected, "no such call")),
                    width,
                ),
                theme.ok(),
            )));
            lines.push(Line::from(Span::styled(
                truncate(
                    &format!("  {build}: {}", side(&diff.actual, "never makes it")),
                    width,
                ),
                theme.error(),
            )));
        }
    }
    lines.push(Line::from(""));
}
