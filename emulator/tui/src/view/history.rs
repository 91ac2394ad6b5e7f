//! The history view: a header (the instance, then what it waits for: events by name, timers
//! with their due time, calls in flight), then one line per event of the selected instance
//! (virtual time since the execution started, kind, sequence id, name, short payload), failures
//! in red with their message, injected faults marked, HTTP requests as `HTTP POST /jobs` and their
//! answers as `HTTP 202 Accepted <- POST /jobs`; only the visible lines are formatted.

use super::{col, fit, placeholder, tone};
use crate::layout::list_area;
use crate::model::{HistoryState, InstanceRow, Model, View};
use crate::theme::{Theme, row_symbol};
use durable_emu_engine::inspect::rows::{event_row, history_start};
use durable_emu_engine::inspect::waiting::{self, OpenCalls};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let Some(history) = &model.history else {
        placeholder(
            frame,
            theme,
            body,
            "select an instance in the Instances view (1)",
        );
        return;
    };
    let width = usize::from(body.width);
    let row = model.instances.rows.get(&history.instance_id);
    let mut title = vec![];
    if let Some(row) = row {
        title.push(Span::styled(
            format!("{} {} ", row_symbol(row), row.status_label()),
            theme.row_status(row),
        ));
        title.push(Span::styled(format!("{} ", row.name), theme.accent()));
    }
    let summary = format!(
        "{} · execution {}/{} · {} events{}",
        history.instance_id,
        history.execution + 1,
        history.executions.len().max(1),
        history.events().len(),
        if history.follow { " · following" } else { "" }
    );
    title.push(Span::styled(summary, theme.dim()));
    frame.render_widget(
        Paragraph::new(Line::from(title)),
        Rect { height: 1, ..body },
    );
    if body.height > 1 {
        let waits = row.map_or_else(String::new, |row| waits_text(row, history, model));
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("waits for: ", theme.dim()),
                Span::styled(fit(&waits, width.saturating_sub(11)), theme.warn()),
            ])),
            Rect {
                y: body.y + 1,
                height: 1,
                ..body
            },
        );
    }
    let columns = format!(
        "{}{}{}{}{}DETAIL",
        col("SEQ", 7),
        col("TIME", 11),
        col("EVENT", 22),
        col("ID", 5),
        col("NAME", 17)
    );
    if body.height > 2 {
        frame.render_widget(
            Paragraph::new(Span::styled(fit(&columns, width), theme.accent())),
            Rect {
                y: body.y + 2,
                height: 1,
                ..body
            },
        );
    }
    let list = list_area(View::History, body);
    if history.loading && history.executions.is_empty() {
        placeholder(frame, theme, list, "loading history ...");
        return;
    }
    let events = history.events();
    let Some(start) = history_start(events) else {
        placeholder(frame, theme, list, "no events yet");
        return;
    };
    let end = (history.offset + usize::from(list.height)).min(events.len());
    let detail_width = width.saturating_sub(7 + 11 + 22 + 5 + 17);
    let names = history.call_names();
    let lines: Vec<Line<'_>> = (history.offset..end)
        .map(|index| {
            let event = &events[index];
            let row = event_row(event, start, names);
            let style = tone(theme, row.tone);
            let mut spans = vec![
                Span::styled(col(&index.to_string(), 7), theme.dim()),
                Span::styled(col(&row.offset, 11), theme.dim()),
                Span::styled(col(row.kind, 22), style),
                Span::styled(col(&row.id, 5), theme.dim()),
                Span::styled(col(&row.name, 17), theme.text()),
                Span::styled(fit(&row.detail, detail_width), style),
            ];
            if index == history.selected {
                for span in &mut spans {
                    span.style = span.style.patch(theme.selected());
                }
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
}

/// The header's "waits for" text: the row's events and open calls, or, while the row's are not
/// known yet, the open calls of the loaded history when it shows the current execution.
fn waits_text(row: &InstanceRow, history: &HistoryState, model: &Model) -> String {
    if row.status.is_terminal() {
        return format!("nothing ({})", row.status);
    }
    let computed;
    let open = match &row.open {
        Some(open) => open,
        None if history.execution + 1 >= history.executions.len() => {
            computed = OpenCalls::of(history.events());
            &computed
        }
        None => return "…".to_string(),
    };
    let text = waiting::describe(&waiting::waits(&row.awaited_events, open), model.clock.now);
    if text.is_empty() {
        "nothing yet (its next episode is due)".to_string()
    } else {
        text
    }
}
