//! The Entities view: every durable entity (id, a preview of its state, its backlog, who holds its
//! lock, when it last changed), and below, the selected entity: its lock and who waits for it, its
//! state as pretty JSON, and its operation log (virtual time, caller, operation and input, the
//! result or the failure, an injected fault), newest at the bottom.

use super::{col, fit, placeholder};
use crate::layout::{entities_list_height, list_area};
use crate::model::{EntityDetail, Model, View, lock_text, requester_text, short_id};
use crate::theme::Theme;
use durable_emu_engine::engine::{EntityMetadata, EntityOperationOutcome, EntityOperationRecord};
use durable_emu_engine::inspect::rows::compact_json;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Widths of the ID, BACKLOG, LOCKED BY and MODIFIED columns; STATE takes the rest.
const WIDTHS: [usize; 4] = [20, 8, 17, 15];

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let entities = &model.entities;
    let width = usize::from(body.width);
    let state_width = width.saturating_sub(WIDTHS.iter().sum::<usize>());
    let header = format!(
        "{}{}{}{}{}",
        col("ENTITY", WIDTHS[0]),
        col("STATE", state_width),
        col("BACKLOG", WIDTHS[1]),
        col("LOCKED BY", WIDTHS[2]),
        "MODIFIED"
    );
    frame.render_widget(
        Paragraph::new(Span::styled(fit(&header, width), theme.accent())),
        Rect {
            height: body.height.min(1),
            ..body
        },
    );
    let list = list_area(View::Entities, body);
    if entities.list.is_empty() {
        let text = if entities.loaded {
            "no entities yet · :signal @counter@a add 5 creates one; orchestrations call them"
        } else {
            "loading the entities ..."
        };
        let rest = Rect {
            height: body.height.saturating_sub(1),
            ..list
        };
        placeholder(frame, theme, rest, text);
        return;
    }
    let end = (entities.offset + usize::from(list.height)).min(entities.list.len());
    let rows: Vec<Line<'_>> = (entities.offset..end)
        .map(|index| {
            let entity = &entities.list[index];
            let mut spans = list_row(entity, theme, state_width);
            if index == entities.selected {
                for span in &mut spans {
                    span.style = span.style.patch(theme.selected());
                }
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), list);
    let top = list.y + entities_list_height(body);
    let detail = Rect {
        y: top,
        height: (body.y + body.height).saturating_sub(top),
        ..body
    };
    match (entities.selected_id(), entities.selected_detail()) {
        (Some(_), Some(loaded)) => render_detail(frame, loaded, model, theme, detail),
        (Some(id), None) => {
            title_line(frame, theme, detail, id, "loading ...");
        }
        (None, _) => {}
    }
}

fn list_row<'a>(entity: &EntityMetadata, theme: &Theme, state_width: usize) -> Vec<Span<'a>> {
    let state = match &entity.state {
        Some(state) => compact_json(state, state_width),
        None if entity.has_state => "…".to_string(),
        None => "(no state)".to_string(),
    };
    let backlog = if entity.backlog == 0 {
        "-".to_string()
    } else {
        entity.backlog.to_string()
    };
    let lock = match (&entity.locked_by, entity.lock_waiters.len()) {
        (Some(holder), 0) => short_id(holder).into_owned(),
        (Some(holder), waiting) => format!("{} +{waiting}", short_id(holder)),
        (None, _) => "-".to_string(),
    };
    let lock_style = if entity.locked_by.is_some() {
        theme.warn()
    } else {
        theme.dim()
    };
    vec![
        Span::styled(col(&entity.instance_id, WIDTHS[0]), theme.text()),
        Span::styled(
            col(&state, state_width),
            if entity.state.is_some() {
                theme.text()
            } else {
                theme.dim()
            },
        ),
        Span::styled(
            col(&backlog, WIDTHS[1]),
            if entity.backlog > 0 {
                theme.warn()
            } else {
                theme.dim()
            },
        ),
        Span::styled(col(&lock, WIDTHS[2]), lock_style),
        Span::styled(
            entity.last_modified.format("%m-%d %H:%M:%S").to_string(),
            theme.dim(),
        ),
    ]
}

/// `── @account@a · locked by … ───`: the line that opens the selected entity's part.
fn title_line(frame: &mut Frame<'_>, theme: &Theme, area: Rect, id: &str, what: &str) {
    if area.height == 0 {
        return;
    }
    let width = usize::from(area.width);
    let text = format!("── {id} · {what} ");
    let pad = width.saturating_sub(text.chars().count());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(fit(&text, width), theme.accent()),
            Span::styled("─".repeat(pad), theme.dim()),
        ])),
        Rect { height: 1, ..area },
    );
}

fn render_detail(
    frame: &mut Frame<'_>,
    detail: &EntityDetail,
    model: &Model,
    theme: &Theme,
    area: Rect,
) {
    let Some(metadata) = &detail.metadata else {
        title_line(
            frame,
            theme,
            area,
            &detail.instance_id,
            "gone (removed since the list was read)",
        );
        return;
    };
    title_line(frame, theme, area, &detail.instance_id, &lock_text(metadata));
    if area.height < 2 {
        return;
    }
    let below = Rect {
        y: area.y + 1,
        height: area.height - 1,
        ..area
    };
    let state_width = (below.width * 2 / 5).clamp(16.min(below.width), 48);
    let state_area = Rect {
        width: state_width,
        ..below
    };
    let log_area = Rect {
        x: below.x + state_width,
        width: below.width - state_width,
        ..below
    };
    let mut state_lines = vec![Line::from(Span::styled("STATE", theme.accent()))];
    let state_text = match &metadata.state {
        Some(state) => serde_json::to_string_pretty(state).unwrap_or_default(),
        None => "(none)".to_string(),
    };
    let inner = usize::from(state_width).saturating_sub(1);
    state_lines.extend(
        state_text
            .lines()
            .take(usize::from(below.height).saturating_sub(1))
            .map(|line| Line::from(Span::styled(fit(line, inner), theme.text()))),
    );
    frame.render_widget(Paragraph::new(state_lines), state_area);
    render_log(frame, &detail.operations, model, theme, log_area);
}

/// The operation log, newest at the bottom: as many of the latest entries as fit.
fn render_log(
    frame: &mut Frame<'_>,
    operations: &[EntityOperationRecord],
    model: &Model,
    theme: &Theme,
    area: Rect,
) {
    let width = usize::from(area.width);
    let mut lines = vec![Line::from(Span::styled(
        fit(
            &format!(
                "OPERATION LOG ({}) · TIME FROM OPERATION → RESULT",
                operations.len()
            ),
            width,
        ),
        theme.accent(),
    ))];
    if operations.is_empty() {
        lines.push(Line::from(Span::styled(
            "no operation has run yet",
            theme.dim(),
        )));
    }
    let room = usize::from(area.height).saturating_sub(1);
    let first = operations.len().saturating_sub(room);
    for record in &operations[first..] {
        lines.push(log_line(record, model, theme, width));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn log_line<'a>(
    record: &EntityOperationRecord,
    model: &Model,
    theme: &Theme,
    width: usize,
) -> Line<'a> {
    let time = record.at.format("%H:%M:%S").to_string();
    // A day or more before the clock's now: the date says which day.
    let time = match model.clock.now {
        Some(now) if (now - record.at).num_hours() >= 24 => {
            record.at.format("%m-%d %H:%M:%S").to_string()
        }
        _ => time,
    };
    let from = short_id(&requester_text(&record.requester)).into_owned();
    let verb = if record.awaits_answer { "" } else { "signal " };
    let input = compact_json(&record.input, 30);
    let call = if input.is_empty() {
        format!("{verb}{}", record.operation)
    } else {
        format!("{verb}{} {input}", record.operation)
    };
    let (outcome, style): (String, Style) = match &record.outcome {
        EntityOperationOutcome::Completed { result } => {
            let result = compact_json(result, 40);
            (
                if result.is_empty() {
                    "→ ok".to_string()
                } else {
                    format!("→ {result}")
                },
                theme.ok(),
            )
        }
        EntityOperationOutcome::Failed { failure } => (format!("✗ {failure}"), theme.error()),
    };
    let fault = record
        .fault
        .as_ref()
        .map(|fault| format!(" ⚡ {fault}"))
        .unwrap_or_default();
    let head = durable_emu_engine::inspect::rows::truncate(
        &format!("{time} {} {call} ", fit(&from, 12)),
        width,
    );
    let tail_width = width.saturating_sub(head.chars().count());
    Line::from(vec![
        Span::styled(head, theme.text()),
        Span::styled(fit(&format!("{outcome}{fault}"), tail_width), style),
    ])
}
