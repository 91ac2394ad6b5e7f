//! The instances view: one row per instance (symbol, name, status, progress, age, build, id,
//! and on wide terminals what it waits for, its custom status and when it was created),
//! sub-orchestrations indented under their parents; only visible rows are drawn.
//!
//! Progress is `done/scheduled` of the current execution's calls (or a custom status shaped
//! `{"done", "total"}`) with a six-cell bar. Only an ended instance fills the bar: one still
//! running or waiting (an approval after its one activity, `1/1`) keeps its last cell open, since
//! more calls may follow.
//!
//! Widths ([`columns`]): the name gets what its longest visible name needs, never blank padding;
//! spare width goes to WAITING, CUSTOM STATUS and CREATED, in that order, as they fit. On a narrow
//! terminal BUILD, AGE and PROGRESS go before the name shrinks.

use super::{col, fit, placeholder};
use crate::layout::list_area;
use crate::model::{InstanceRow, Model, SHORT_ID_WIDTH, View, short_id};
use crate::theme::{Theme, row_symbol};
use durable_emu_engine::inspect::rows::{compact_json, format_age};
use durable_emu_engine::inspect::waiting;
use durable_sdk::history::RuntimeStatus;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use serde_json::Value;

/// Leading cells before the name: the status symbol and a space.
const LEAD: usize = 2;
const STATUS: usize = 11;
const PROGRESS: usize = 15;
const AGE: usize = 7;
const BUILD: usize = 7;
/// `MM-DD HH:MM:SS` and a space.
const CREATED: usize = 15;
/// The least a name column shrinks to, and the least an optional column is worth showing at.
const NAME_MIN: usize = 8;
const OPTIONAL_MIN: usize = 16;
/// Most width WAITING takes before the rest of the spare goes to CUSTOM STATUS.
const WAITING_MAX: usize = 36;

/// Column widths of one frame; 0: not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    name: usize,
    status: usize,
    progress: usize,
    waiting: usize,
    custom: usize,
    age: usize,
    created: usize,
    build: usize,
    id: usize,
}

/// The widths for a terminal `width` wide whose longest visible name (with its indent) is `name`
/// characters and longest short id `id`.
fn columns(width: usize, name: usize, id: usize) -> Columns {
    let name = name.max(4) + 1;
    let id = id.clamp(2, SHORT_ID_WIDTH);
    let mut columns = Columns {
        name,
        status: STATUS,
        progress: PROGRESS,
        waiting: 0,
        custom: 0,
        age: AGE,
        created: 0,
        build: BUILD,
        id,
    };
    let used = |c: &Columns| {
        LEAD + c.name
            + c.status
            + c.progress
            + c.waiting
            + c.custom
            + c.age
            + c.created
            + c.build
            + c.id
    };
    // Too narrow: drop the least telling columns before the name shrinks.
    for drop in [
        |c: &mut Columns| c.build = 0,
        |c: &mut Columns| c.age = 0,
        |c: &mut Columns| c.progress = 0,
    ] {
        if used(&columns) <= width {
            break;
        }
        drop(&mut columns);
    }
    if used(&columns) > width {
        let over = used(&columns) - width;
        columns.name = columns.name.saturating_sub(over).max(NAME_MIN);
        return columns;
    }
    // Wide: the spare goes to what tells more than padding.
    let mut spare = width - used(&columns);
    if spare >= OPTIONAL_MIN {
        columns.waiting = OPTIONAL_MIN;
        spare -= OPTIONAL_MIN;
        if spare >= OPTIONAL_MIN {
            columns.custom = OPTIONAL_MIN;
            spare -= OPTIONAL_MIN;
            if spare >= CREATED {
                columns.created = CREATED;
                spare -= CREATED;
            }
        }
        let more_waiting = spare.min(WAITING_MAX - columns.waiting);
        columns.waiting += more_waiting;
        spare -= more_waiting;
        if columns.custom > 0 {
            columns.custom += spare;
        } else {
            columns.waiting += spare;
        }
    } else {
        columns.name += spare;
    }
    columns
}

/// A custom status in a cell: a string as it is, anything else as compact JSON.
fn custom_text(row: &InstanceRow, width: usize) -> String {
    match &row.custom_status {
        Some(Value::String(text)) => text.clone(),
        Some(value) => compact_json(value, width),
        None => String::new(),
    }
}

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let list = list_area(View::Instances, body);
    let instances = &model.instances;
    let width = usize::from(body.width);
    let end = (instances.offset + usize::from(list.height)).min(instances.visible.len());
    let shown = &instances.visible[instances.offset.min(end)..end];
    let (longest_name, longest_id) = shown.iter().fold((0, 0), |(name, id), (row_id, depth)| {
        let row_name = instances
            .rows
            .get(row_id)
            .map_or(0, |row| row.name.chars().count());
        let indent = if *depth > 0 {
            2 * usize::from(*depth)
        } else {
            0
        };
        (
            name.max(indent + row_name),
            id.max(short_id(row_id).chars().count()),
        )
    });
    let mut count = format!("{}/{}", instances.visible.len(), instances.rows.len());
    if instances.sort_key() != crate::model::SortKey::Created {
        count.push_str(&format!(" ↕{}", instances.sort_key().label()));
    }
    if !instances.filter.is_empty() {
        count.push_str(&format!(" /{}", instances.filter));
    }
    // The count sits above the id column: the column is at least as wide.
    let widths = columns(width, longest_name, longest_id.max(count.chars().count()));
    let mut header = format!(
        "{:LEAD$}{}{}",
        "",
        fit("NAME", widths.name),
        fit("STATUS", widths.status)
    );
    for (title, width) in [
        ("PROGRESS", widths.progress),
        ("WAITING", widths.waiting),
        ("CUSTOM STATUS", widths.custom),
        ("AGE", widths.age),
        ("CREATED", widths.created),
        ("BUILD", widths.build),
    ] {
        if width > 0 {
            header.push_str(&col(title, width));
        }
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
    let mut lines = Vec::with_capacity(shown.len());
    for (position, (id, _)) in shown
        .iter()
        .enumerate()
        .map(|(index, entry)| (instances.offset + index, entry))
    {
        let Some(row) = instances.rows.get(id) else {
            continue;
        };
        let indent = instances.branches.get(position).map_or("", String::as_str);
        let status_style = theme.row_status(row);
        let mut spans = vec![
            Span::styled(format!("{} ", row_symbol(row)), status_style),
            Span::styled(
                col(&format!("{indent}{}", row.name), widths.name),
                theme.text(),
            ),
            Span::styled(col(row.status_label(), widths.status), status_style),
        ];
        let mut cell = |text: String, width: usize, style: Style| {
            if width > 0 {
                spans.push(Span::styled(col(&text, width), style));
            }
        };
        let progress = row
            .progress()
            .map(|(done, total)| progress_text(done, total, row.status.is_terminal()))
            .unwrap_or_default();
        cell(progress, widths.progress, theme.text());
        if widths.waiting > 0 {
            // Work no executor takes says so first: nothing else moves until a worker comes.
            let text = match model.workers.parked_for(id) {
                Some(parked) => format!("a worker for {} '{}'", parked.kind, parked.name),
                None => waiting::summary(&row.waits(), now),
            };
            cell(text, widths.waiting, theme.warn());
        }
        cell(custom_text(row, widths.custom), widths.custom, theme.text());
        let age = match (now, row.created_at) {
            (Some(now), Some(created)) => format_age(now - created),
            _ => String::new(),
        };
        cell(age, widths.age, theme.dim());
        let created = row
            .created_at
            .map(|created| created.format("%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        cell(created, widths.created, theme.dim());
        // `⚲` marks an instance held on an older build than the active one (pinned or diverged).
        let build = match row.pinned_to_older(model.builds.active) {
            Some(build) => format!("⚲#{build}"),
            // No build: run by a remote worker (through the gRPC sidecar), or not run yet.
            None => row
                .build
                .map(|build| format!("#{build}"))
                .unwrap_or_else(|| {
                    if row.status == RuntimeStatus::Pending {
                        String::new()
                    } else {
                        "remote".to_string()
                    }
                }),
        };
        cell(build, widths.build, theme.dim());
        spans.push(Span::styled(fit(&short_id(id), widths.id), theme.dim()));
        if position == instances.selected {
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
    use super::{Columns, columns, progress_text};

    fn total(c: &Columns) -> usize {
        super::LEAD
            + c.name
            + c.status
            + c.progress
            + c.waiting
            + c.custom
            + c.age
            + c.created
            + c.build
            + c.id
    }

    #[test]
    fn at_80_columns_every_base_column_stays_and_the_spare_goes_to_the_name() {
        let c = columns(80, 16, 10);
        assert_eq!((c.waiting, c.custom, c.created), (0, 0, 0));
        assert!(c.build > 0 && c.age > 0 && c.progress > 0);
        assert_eq!(total(&c), 80);
    }

    #[test]
    fn on_a_wide_terminal_the_spare_goes_to_waiting_custom_status_and_created_not_the_name() {
        let c = columns(200, 16, 10);
        assert_eq!(c.name, 17);
        assert!(c.waiting >= 16 && c.custom >= 16 && c.created > 0);
        assert_eq!(total(&c), 200);
        let middling = columns(120, 16, 10);
        assert!(middling.waiting > 0);
        assert_eq!(middling.name, 17);
    }

    #[test]
    fn on_a_narrow_terminal_the_name_is_the_last_to_shrink() {
        let c = columns(60, 20, 10);
        assert!(c.name >= 21, "{c:?}");
        assert_eq!((c.build, c.age), (0, 0));
        assert!(total(&c) <= 60);
        let tiny = columns(40, 30, 16);
        assert_eq!((tiny.build, tiny.age, tiny.progress), (0, 0, 0));
        assert!(tiny.name < 31);
    }

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
