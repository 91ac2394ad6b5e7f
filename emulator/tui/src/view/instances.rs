//! The instances view: one row per instance (symbol, name, status, progress, age, build, id),
//! sub-orchestrations indented under their parents; only visible rows are drawn.
//!
//! Progress is `done/scheduled` of the current execution's calls (or a custom status shaped
//! `{"done", "total"}`) with a six-cell bar. Only an ended instance fills the bar: one still
//! running or waiting (an approval after its one activity, `1/1`) keeps its last cell open, since
//! more calls may follow.

use super::{col, fit, placeholder};
use crate::layout::list_area;
use crate::model::{Model, View, short_id};
use crate::theme::{Theme, row_symbol};
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
    for (position, (id, _)) in instances.visible[instances.offset..end]
        .iter()
        .enumerate()
        .map(|(index, entry)| (instances.offset + index, entry))
    {
        let Some(row) = instances.rows.get(id) else {
            continue;
        };
        let indent = instances.branches.get(position).map_or("", String::as_str);
        let progress = row
            .progress()
            .map(|(done, total)| progress_text(done, total, row.status.is_terminal()))
            .unwrap_or_default();
        let age = match (now, row.created_at) {
            (Some(now), Some(created)) => format_age(now - created),
            _ => String::new(),
        };
        // `⚲` marks an instance held on an older build than the active one (pinned or diverged).
        let build = match row.pinned_to_older(model.builds.active) {
            Some(build) => format!("⚲#{build}"),
            None => row
                .build
                .map(|build| format!("#{build}"))
                .unwrap_or_default(),
        };
        let status_style = theme.row_status(row);
        let selected = position == instances.selected;
        let mut spans = vec![
            Span::styled(format!("{} ", row_symbol(row)), status_style),
            Span::styled(
                col(&format!("{indent}{}", row.name), name_width),
                theme.text(),
            ),
            Span::styled(col(row.status_label(), 11), status_style),
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

/// The six-cell bar and `done/total`; the bar is full only when `ended`.
fn progress_text(done: u64, total: u64, ended: bool) -> String {
    const CELLS: u64 = 6;
    let done = done.min(total);
    let mut filled = (done * CELLS).checked_div(total).unwrap_or(CELLS);
    if !ended {
        filled = filled.min(CELLS - 1);
    }
    let filled = usize::try_from(filled).unwrap_or(0);
    format!(
        "{}{} {done}/{total}",
        "█".repeat(filled),
        "░".repeat(6 - filled)
    )
}

#[cfg(test)]
mod tests {
    use super::progress_text;

    #[test]
    fn only_an_ended_instance_shows_a_full_bar() {
        assert_eq!(progress_text(1, 1, false), "█████░ 1/1");
        assert_eq!(progress_text(1, 1, true), "██████ 1/1");
        assert_eq!(progress_text(3, 6, false), "███░░░ 3/6");
    }

    #[test]
    fn done_never_shows_above_total() {
        assert_eq!(progress_text(2, 1, true), "██████ 1/1");
    }
}
