//! The instances view: one row per instance (symbol, name, status, progress, age, build, id),
//! sub-orchestrations indented under their parents; only visible rows are drawn.

use super::{col, fit, placeholder};
use crate::layout::list_area;
use crate::model::{Model, View, short_id};
use crate::theme::{Theme, status_symbol};
use durable_emu_engine::inspect::rows::format_age;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let list = list_area(View::Instances, body);
    let instances = &model.instances;
    let width = usize::from(body.width);
    // Columns: symbol(2) name(flex) status(11) progress(15) age(7) build(5) id(10).
    let fixed = 2 + 11 + 15 + 7 + 5 + 10;
    let name_width = width.saturating_sub(fixed).max(8);
    let header = format!(
        "  {}{}{}{}{}",
        fit("NAME", name_width),
        fit("STATUS", 11),
        fit("PROGRESS", 15),
        fit("AGE", 7),
        col("BUILD", 6),
    );
    let mut count = format!("{}/{}", instances.visible.len(), instances.rows.len());
    if instances.sort_key() != crate::model::SortKey::Created {
        count.push_str(&format!(" ↕{}", instances.sort_key().label()));
    }
    if !instances.filter.is_empty() {
        count.push_str(&format!(" /{}", instances.filter));
    }
    let header_width = header.chars().count().min(width);
    let count =
        durable_emu_engine::inspect::rows::truncate(&count, width.saturating_sub(header_width));
    let pad = width.saturating_sub(header_width + count.chars().count());
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(fit(&header, header_width), theme.accent()),
            Span::raw(" ".repeat(pad)),
            Span::styled(count, theme.dim()),
        ])),
        Rect { height: 1, ..body },
    );
    if instances.visible.is_empty() {
        let text = if instances.rows.is_empty() {
            "no instances yet · press n to start one, or :start HelloSequence"
        } else {
            "no instance matches the filter · / to change it, c to clear"
        };
        placeholder(frame, theme, list, text);
        return;
    }
    let now = model.clock.now;
    let end = (instances.offset + usize::from(list.height)).min(instances.visible.len());
    let mut lines = Vec::with_capacity(end.saturating_sub(instances.offset));
    for (position, (id, depth)) in instances.visible[instances.offset..end]
        .iter()
        .enumerate()
        .map(|(index, entry)| (instances.offset + index, entry))
    {
        let Some(row) = instances.rows.get(id) else {
            continue;
        };
        let indent = if *depth > 0 {
            format!("{}└ ", "  ".repeat(usize::from(*depth) - 1))
        } else {
            String::new()
        };
        let progress = match row.progress() {
            Some((done, total)) => {
                let filled = if total == 0 {
                    6
                } else {
                    (done * 6 / total.max(1)) as usize
                };
                format!(
                    "{}{} {done}/{total}",
                    "█".repeat(filled.min(6)),
                    "░".repeat(6 - filled.min(6))
                )
            }
            None => String::new(),
        };
        let age = match (now, row.created_at) {
            (Some(now), Some(created)) => format_age(now - created),
            _ => String::new(),
        };
        let build = row
            .build
            .map(|build| format!("#{build}"))
            .unwrap_or_default();
        let status_style = theme.status(row.status);
        let selected = position == instances.selected;
        let mut spans = vec![
            Span::styled(format!("{} ", status_symbol(row.status)), status_style),
            Span::styled(
                col(&format!("{indent}{}", row.name), name_width),
                theme.text(),
            ),
            Span::styled(col(row.status.as_str(), 11), status_style),
            Span::styled(col(&progress, 15), theme.text()),
            Span::styled(col(&age, 7), theme.dim()),
            Span::styled(col(&build, 5), theme.dim()),
            Span::styled(fit(short_id(id), 10), theme.dim()),
        ];
        if selected {
            for span in &mut spans {
                span.style = span.style.patch(theme.selected());
            }
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), list);
}
