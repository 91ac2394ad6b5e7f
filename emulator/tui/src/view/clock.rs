//! The clock view: now and whether virtual time plays or is paused, auto-skip, an advance under
//! way, the next timer, and every pending timer with its instance and how far ahead it fires.
//! Every duration is written one way, as the instances view writes ages (`3d00h`, `2h05m`,
//! `45s`).

use super::{fit, placeholder};
use crate::layout::list_area;
use crate::model::{ClockState, Model, View, short_id};
use crate::theme::Theme;
use chrono::{DateTime, Utc};
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::inspect::rows::format_age;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// How far `at` is ahead of the clock's now (`0s` once due), or nothing while now is unknown.
fn ahead(clock: &ClockState, at: DateTime<Utc>) -> String {
    clock
        .now
        .map(|now| format_age(at - now))
        .unwrap_or_default()
}

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let clock = &model.clock;
    let now = clock.now.map_or_else(
        || "unknown".to_string(),
        |now| now.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let (state, state_style) = match (clock.kind, clock.playing) {
        (ClockKind::Real, _) => ("real clock".to_string(), theme.dim()),
        (ClockKind::Virtual, true) => (
            "playing: virtual time runs at real speed (. or :pause stops it)".to_string(),
            theme.ok(),
        ),
        (ClockKind::Virtual, false) => (
            "paused: virtual time moves only when you say (. or :play runs it)".to_string(),
            theme.warn(),
        ),
    };
    let next = match clock.timers.first() {
        Some(timer) => format!(
            "in {} for {} timer #{}, at {}",
            ahead(clock, timer.fire_at),
            short_id(&timer.instance_id),
            timer.timer_id,
            timer.fire_at.format("%Y-%m-%d %H:%M:%S"),
        ),
        None => "none pending".to_string(),
    };
    let advance = match clock.advancing_to {
        Some(until) => Span::styled(
            format!(
                "to {} ({} to go), stepping through the timers on the way",
                until.format("%Y-%m-%d %H:%M:%S"),
                ahead(clock, until)
            ),
            theme.warn(),
        ),
        None => Span::styled("none under way (n, +, :advance 90m)", theme.dim()),
    };
    let label = |text: &str| Span::styled(fit(text, 11), theme.accent());
    let lines = vec![
        Line::from(vec![label("now"), Span::styled(now, theme.text())]),
        Line::from(vec![label("time"), Span::styled(state, state_style)]),
        Line::from(vec![
            label("auto-skip"),
            if clock.auto_skip {
                Span::styled(
                    "on: time jumps to the next timer when nothing else can run",
                    theme.ok(),
                )
            } else {
                Span::styled("off (a turns it on)", theme.dim())
            },
        ]),
        Line::from(vec![label("advance"), advance]),
        Line::from(vec![label("next timer"), Span::styled(next, theme.text())]),
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
            height: body.height.min(6),
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
            let until = ahead(clock, timer.fire_at);
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
