//! The views derived from the selected history: timeline, fan-out progress and the error tree.
//! The derivations themselves are pure functions computed by `update` (`model.derived`); these
//! widgets only lay them out, drawing the visible part.

use super::{fit, placeholder, tone};
use crate::layout::list_area;
use crate::model::{Model, View};
use crate::theme::Theme;
use durable_emu_engine::inspect::rows::format_offset;
use durable_emu_engine::inspect::timeline::BarKind;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

fn title(model: &Model, what: &str) -> String {
    let Some(history) = &model.history else {
        return what.to_string();
    };
    let name = model
        .instances
        .rows
        .get(&history.instance_id)
        .map_or("", |row| row.name.as_str());
    format!(
        "{what} of {name} {} · execution {}/{}",
        history.instance_id,
        history.execution + 1,
        history.executions.len().max(1)
    )
}

fn ready(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) -> bool {
    match &model.history {
        None => {
            placeholder(
                frame,
                theme,
                body,
                "select an instance in the Instances view (1)",
            );
            false
        }
        Some(history) if history.loading && history.executions.is_empty() => {
            placeholder(frame, theme, body, "loading history ...");
            false
        }
        Some(_) => true,
    }
}

/// Calls as bars over virtual time.
pub fn timeline(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    if !ready(frame, model, theme, body) {
        return;
    }
    let line = &model.derived.timeline;
    let width = usize::from(body.width);
    let (Some(start), Some(end)) = (line.start, line.end) else {
        placeholder(frame, theme, body, "no events yet");
        return;
    };
    let span = (end - start).num_milliseconds().max(0);
    let label_width = (width / 3).clamp(8, 30);
    let chart = width.saturating_sub(label_width + 1).max(1);
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(&title(model, "Timeline"), width),
            theme.accent(),
        )),
        Rect { height: 1, ..body },
    );
    let left = format_offset(chrono::Duration::zero());
    let right = format_offset(end - start);
    let axis = format!(
        "{}{left}{}{right}",
        " ".repeat(label_width + 1),
        "─".repeat(chart.saturating_sub(left.len() + right.len()))
    );
    if body.height > 1 {
        frame.render_widget(
            Paragraph::new(Span::styled(fit(&axis, width), theme.dim())),
            Rect {
                y: body.y + 1,
                height: 1,
                ..body
            },
        );
    }
    let list = list_area(View::Timeline, body);
    if line.bars.is_empty() {
        placeholder(
            frame,
            theme,
            list,
            "no activities, timers or sub-orchestrations yet",
        );
        return;
    }
    let column = |at: chrono::DateTime<chrono::Utc>| -> usize {
        if span == 0 {
            return 0;
        }
        let offset = (at - start).num_milliseconds().clamp(0, span);
        ((offset as f64 / span as f64) * (chart.saturating_sub(1)) as f64).round() as usize
    };
    let first = model.derived_offset.min(line.bars.len().saturating_sub(1));
    let last = (first + usize::from(list.height)).min(line.bars.len());
    let now = model.clock.now;
    let rows: Vec<Line<'_>> = line.bars[first..last]
        .iter()
        .map(|bar| {
            let open = bar.end.is_none();
            let until = bar.end.or(bar.due).or(now).unwrap_or(bar.start);
            let (x0, x1) = (column(bar.start), column(until).max(column(bar.start)));
            let (glyph, key) = match bar.kind {
                BarKind::Activity => ('█', "bar_activity"),
                BarKind::Timer => ('─', "bar_timer"),
                BarKind::SubOrchestration => ('▓', "bar_suborchestration"),
                BarKind::Entity => (ENTITY_GLYPH, "accent"),
                BarKind::Http => (HTTP_GLYPH, "bar_activity"),
            };
            let style = if bar.failed {
                theme.bar_failed()
            } else {
                theme.fg(key)
            };
            let mut body: String = if x1 == x0 {
                "▏".to_string()
            } else {
                std::iter::repeat_n(if open { '░' } else { glyph }, x1 - x0 + 1).collect()
            };
            // A failure ends in a mark, not only a colour, so it reads under NO_COLOR.
            if bar.failed {
                body.pop();
                body.push(FAILED_MARK);
            }
            Line::from(vec![
                Span::styled(fit(&bar.label, label_width), theme.text()),
                Span::raw(" ".repeat(x0 + 1)),
                Span::styled(body, style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), list);
    let has = |kind: BarKind| line.bars.iter().any(|bar| bar.kind == kind);
    legend(frame, theme, body, has(BarKind::Entity), has(BarKind::Http));
}

/// The end of a failed bar.
const FAILED_MARK: char = '✗';

/// An entity call's (or lock request's) bar.
const ENTITY_GLYPH: char = '▒';

/// An HTTP request's bar: an activity's colour (the host runs it as one), a lower block, so the
/// requests and polls of a call stand out from the activities around them.
const HTTP_GLYPH: char = '▆';

/// What the timeline's glyphs and colours mean, on the body's last line.
/// The entity and HTTP entries are there only when such bars are (the 80-column line has no room
/// to spare).
fn legend(frame: &mut Frame<'_>, theme: &Theme, body: Rect, entities: bool, http: bool) {
    if body.height < 4 {
        return;
    }
    let failed = FAILED_MARK.to_string();
    let entity = ENTITY_GLYPH.to_string();
    let http_glyph = HTTP_GLYPH.to_string();
    let mut entries: Vec<(&str, Style, &str)> = vec![
        ("█", theme.fg("bar_activity"), "activity"),
        ("─", theme.fg("bar_timer"), "timer"),
        ("▓", theme.fg("bar_suborchestration"), "sub-orchestration"),
    ];
    if entities {
        entries.push((entity.as_str(), theme.fg("accent"), "entity"));
    }
    if http {
        entries.push((http_glyph.as_str(), theme.fg("bar_activity"), "http"));
    }
    entries.extend([
        ("░", theme.dim(), "still open"),
        ("▏", theme.text(), "instant"),
        (failed.as_str(), theme.bar_failed(), "failed"),
    ]);
    let mut spans = Vec::with_capacity(entries.len() * 3);
    for (index, (glyph, style, what)) in entries.into_iter().enumerate() {
        if index > 0 {
            spans.push(Span::styled(" · ", theme.dim()));
        }
        spans.push(Span::styled(glyph.to_string(), style));
        spans.push(Span::styled(format!(" {what}"), theme.dim()));
    }
    frame.render_widget(
        Paragraph::new(Line::from(spans)),
        Rect {
            y: body.y + body.height - 1,
            height: 1,
            ..body
        },
    );
}

/// `when_all` groups with gauges and sparklines.
pub fn fanout(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    if !ready(frame, model, theme, body) {
        return;
    }
    let width = usize::from(body.width);
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(&title(model, "Fan-out"), width),
            theme.accent(),
        )),
        Rect { height: 1, ..body },
    );
    let list = list_area(View::FanOut, body);
    let groups = &model.derived.fanout;
    if groups.is_empty() {
        let lines = vec![
            Line::from(Span::styled(
                fit(
                    "no fan-out in this execution: no episode scheduled two or more calls at once",
                    width,
                ),
                theme.text(),
            )),
            Line::from(Span::styled(
                fit(
                    "a when_all over several calls shows here, e.g. :start FanOutFanIn 8",
                    width,
                ),
                theme.dim(),
            )),
        ];
        frame.render_widget(Paragraph::new(lines), list);
        return;
    }
    let mut y = list.y;
    for group in groups.iter().skip(model.derived_offset) {
        if y + 3 > list.y + list.height {
            break;
        }
        let heading = Line::from(vec![
            Span::styled(format!("{} ×{}  ", group.name, group.total), theme.accent()),
            Span::styled(format!("done {}", group.done), theme.ok()),
            Span::styled(" · ", theme.dim()),
            Span::styled(
                format!("failed {}", group.failed),
                if group.failed > 0 {
                    theme.error()
                } else {
                    theme.dim()
                },
            ),
            Span::styled(" · ", theme.dim()),
            Span::styled(format!("running {}", group.running()), theme.text()),
            Span::styled(format!(" · total {}", group.total), theme.dim()),
        ]);
        frame.render_widget(
            Paragraph::new(heading),
            Rect {
                y,
                height: 1,
                ..list
            },
        );
        // The gauge and the sparkline hang under their heading as a tree.
        let branch = |glyph: &'static str| Span::styled(glyph, theme.dim());
        let gauge_width = width.saturating_sub(10).max(1);
        let part = |count: u64| {
            ((count as f64 / group.total.max(1) as f64) * gauge_width as f64).round() as usize
        };
        let (done, failed) = (
            part(group.done),
            part(group.failed).min(gauge_width.saturating_sub(part(group.done))),
        );
        let rest = gauge_width.saturating_sub(done + failed);
        let percent = (group.done + group.failed) * 100 / group.total.max(1);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                branch("├ "),
                Span::styled("█".repeat(done), theme.ok()),
                Span::styled("█".repeat(failed), theme.error()),
                Span::styled("░".repeat(rest), theme.dim()),
                Span::styled(format!(" {percent:>3}%"), theme.text()),
            ])),
            Rect {
                y: y + 1,
                height: 1,
                ..list
            },
        );
        frame.render_widget(
            Paragraph::new(branch("└ ")),
            Rect {
                y: y + 2,
                height: 1,
                width: list.width.min(2),
                ..list
            },
        );
        let spark = Rect {
            x: list.x + list.width.min(2),
            y: y + 2,
            height: 1,
            width: list.width.saturating_sub(2).min(60),
        };
        if group.throughput.is_empty() {
            frame.render_widget(
                Paragraph::new(Span::styled("no completions yet", theme.dim())),
                spark,
            );
        } else {
            let data: Vec<u64> = group
                .throughput
                .iter()
                .rev()
                .take(usize::from(spark.width.saturating_sub(22)))
                .rev()
                .copied()
                .collect();
            let label_width = 22u16.min(spark.width);
            frame.render_widget(
                Paragraph::new(Span::styled("completions/episode ", theme.dim())),
                Rect {
                    width: label_width,
                    ..spark
                },
            );
            frame.render_widget(
                Sparkline::default()
                    .data(&data)
                    .style(theme.fg("bar_activity")),
                Rect {
                    x: spark.x + label_width,
                    width: spark.width - label_width,
                    ..spark
                },
            );
        }
        y += 3;
    }
}

/// The failure-propagation tree.
pub fn errors(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    if !ready(frame, model, theme, body) {
        return;
    }
    let width = usize::from(body.width);
    frame.render_widget(
        Paragraph::new(Span::styled(
            fit(&title(model, "Errors"), width),
            theme.accent(),
        )),
        Rect { height: 1, ..body },
    );
    let mut list = list_area(View::Errors, body);
    // A Diverged instance's diff comes first, wrapped (never cut); the error tree scrolls below.
    let diff = model
        .history
        .as_ref()
        .and_then(|history| model.instances.rows.get(&history.instance_id))
        .map(|row| super::diverged::diff_lines(row, theme, width))
        .unwrap_or_default();
    if !diff.is_empty() {
        let room = u16::try_from(diff.len())
            .unwrap_or(u16::MAX)
            .min(list.height);
        frame.render_widget(
            Paragraph::new(diff),
            Rect {
                height: room,
                ..list
            },
        );
        list.y += room;
        list.height -= room;
    }
    let rows = &model.derived.errors;
    // The cursor (Enter opens its failure in full) stays on the last visible row when it moves
    // past the bottom.
    let cursor = model.derived_offset.min(rows.len().saturating_sub(1));
    let first = cursor.saturating_sub(usize::from(list.height).saturating_sub(1));
    let last = (first + usize::from(list.height)).min(rows.len());
    let depths: Vec<u8> = rows.iter().map(|row| row.depth).collect();
    let branches = crate::tree::prefixes(&depths);
    let lines: Vec<Line<'_>> = rows[first..last]
        .iter()
        .zip(&branches[first..last])
        .enumerate()
        .map(|(at, (row, branch))| {
            let style = if first + at == cursor {
                theme.selected()
            } else {
                tone(theme, row.tone)
            };
            Line::from(vec![
                Span::styled(branch.clone(), theme.dim()),
                Span::styled(
                    fit(&row.text, width.saturating_sub(branch.chars().count())),
                    style,
                ),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), list);
}
