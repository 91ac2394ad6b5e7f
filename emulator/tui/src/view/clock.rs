//! The clock view: virtual now, auto-skip, the next timer, and every pending timer with its
//! instance and how far ahead it fires.

use super::{fit, placeholder};
use crate::layout::list_area;
use crate::model::{Model, View, short_id};
use crate::theme::Theme;
use durable_emu_engine::inspect::rows::format_offset;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let clock = &model.clock;
    let now = clock.now.map_or_else(
        || "unknown".to_string(),
        |now| now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let next = match (clock.timers.first(), clock.now) {
        (Some(timer), Some(now)) => format!(
            "{} ({}) for {} timer #{}",
            timer.fire_at.format("%Y-%m-%d %H:%M:%S"),
            format_offset(timer.fire_at - now),
            short_id(&timer.instance_id),
            timer.timer_id
        ),
        _ => "none pending".to_string(),
    };
    let label = |text: &str| Span::styled(fit(text, 11), theme.accent());
    let lines = vec![
        Line::from(vec![
            label("now"),
            Span::styled(now, theme.text()),
            Span::styled(format!("  ({} clock)", clock.kind), theme.dim()),
        ]),
        Line::from(vec![
            label("auto-skip"),
            if clock.auto_skip {
                Span::styled(
                    "on: time jumps to the next timer when nothing else can run",
                    theme.ok(),
                )
            } else {
                Span::styled(
                    "off: time moves only when you say (n, +, :advance)",
                    theme.warn(),
                )
            },
        ]),
        Line::from(vec![label("next timer"), Span::styled(next, theme.text())]),
        Line::from(""),
        Line::from(Span::styled(
            format!(
                "{}{}{}{}",
                fit("FIRES AT", 21),
                fit("IN", 12),
                fit("TIMER", 7),
                "INSTANCE"
            ),
            theme.accent(),
        )),
    ];
    frame.render_widget(
        Paragraph::new(lines),
        Rect {
            height: body.height.min(5),
            ..body
        },
    );
    let list = list_area(View::Clock, body);
    if clock.timers.is_empty() {
        placeholder(frame, theme, list, "no pending timers");
        return;
    }
    let end = (clock.offset + usize::from(list.height)).min(clock.timers.len());
    let rows: Vec<Line<'_>> = (clock.offset..end)
        .map(|index| {
            let timer = &clock.timers[index];
            let until = clock
                .now
                .map(|now| format_offset(timer.fire_at - now))
                .unwrap_or_default();
            let name = model
                .instances
                .rows
                .get(&timer.instance_id)
                .map_or("", |row| row.name.as_str());
            let mut spans = vec![
                Span::styled(
                    fit(&timer.fire_at.format("%Y-%m-%d %H:%M:%S").to_string(), 21),
                    theme.text(),
                ),
                Span::styled(fit(&until, 12), theme.warn()),
                Span::styled(fit(&format!("#{}", timer.timer_id), 7), theme.dim()),
                Span::styled(
                    format!("{name} {}", short_id(&timer.instance_id)),
                    theme.text(),
                ),
            ];
            if index == clock.selected {
                for span in &mut spans {
                    span.style = span.style.patch(theme.selected());
                }
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), list);
}
