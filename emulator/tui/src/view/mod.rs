//! Rendering: widgets that draw the model and cannot change it (`&Model`). Each view draws only
//! the rows that fit (virtualised lists), so a frame costs the same with 10 or 10,000 instances.

mod builds;
mod clock;
mod derived;
mod diverged;
mod faults;
mod history;
mod instances;
mod overlay;
mod replay;

pub use faults::{target_text, trigger_text};

use crate::keys;
use crate::layout::{areas, short_tabs, tab_label, tab_positions};
use crate::model::{Model, Tone, View};
use crate::theme::Theme;
use durable_emu_engine::clock::ClockKind;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// Draws the whole screen.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme) {
    let area = frame.area();
    let bands = areas(area);
    tabs(frame, model, theme, bands.tabs);
    match model.view {
        View::Instances => instances::render(frame, model, theme, bands.body),
        View::History => history::render(frame, model, theme, bands.body),
        View::Timeline => derived::timeline(frame, model, theme, bands.body),
        View::FanOut => derived::fanout(frame, model, theme, bands.body),
        View::Errors => derived::errors(frame, model, theme, bands.body),
        View::Replay => replay::render(frame, model, theme, bands.body),
        View::Clock => clock::render(frame, model, theme, bands.body),
        View::Builds => builds::render(frame, model, theme, bands.body),
        View::Faults => faults::render(frame, model, theme, bands.body),
    }
    status_line(frame, model, theme, bands.status);
    if let Some(overlay) = &model.overlay {
        overlay::render(frame, model, overlay, theme, bands.body);
    }
}

fn tabs(frame: &mut Frame<'_>, model: &Model, theme: &Theme, area: Rect) {
    let mut spans = Vec::new();
    let mut x = area.x;
    let short = short_tabs(area);
    for (start, _, view) in tab_positions(area) {
        if start > x {
            spans.push(Span::raw(" ".repeat(usize::from(start - x))));
        }
        let label = tab_label(view, short);
        x = start + label.chars().count() as u16;
        let style = if view == model.view {
            theme.accent().add_modifier(Modifier::REVERSED)
        } else {
            theme.dim()
        };
        spans.push(Span::styled(label, style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn status_line(frame: &mut Frame<'_>, model: &Model, theme: &Theme, area: Rect) {
    // "playing" or "paused" says the time is virtual (the real clock just runs), in fewer columns.
    let clock = match model.clock.now {
        Some(now) => format!(
            " {}{}{}{} ",
            match model.clock.kind {
                ClockKind::Real => "real ",
                ClockKind::Virtual => "",
            },
            now.format("%Y-%m-%d %H:%M:%S"),
            match (model.clock.kind, model.clock.playing) {
                (ClockKind::Real, _) => "",
                (ClockKind::Virtual, true) => " playing",
                (ClockKind::Virtual, false) => " paused",
            },
            if model.clock.auto_skip {
                " auto-skip"
            } else {
                ""
            }
        ),
        None => String::new(),
    };
    // `? help` is never cut: it is how a new user finds every other key.
    let help = keys::HELP_HINT;
    let room = usize::from(area.width)
        .saturating_sub(clock.chars().count())
        .saturating_sub(help.chars().count());
    let (text, style) = match (&model.long_episode, &model.status) {
        // Above any message: while it lasts, nothing else the engine does will happen.
        (Some(episode), _) => (
            format!(
                "episode of {} ({}) running for {}s",
                episode.instance_id,
                episode.name,
                episode.elapsed.as_secs()
            ),
            theme.error(),
        ),
        (None, status) => match status {
            Some((message, true)) => (message.clone(), theme.error()),
            Some((message, false)) => (message.clone(), theme.text()),
            None => (keys::hint_within(model.view, room), theme.dim()),
        },
    };
    let text = durable_emu_engine::inspect::rows::truncate(&text, room);
    let pad = room.saturating_sub(text.chars().count());
    let line = Line::from(vec![
        Span::styled(text, style),
        Span::raw(" ".repeat(pad)),
        Span::styled(help, theme.accent()),
        Span::styled(clock, theme.accent()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// The style of a tone.
pub(crate) fn tone(theme: &Theme, tone: Tone) -> Style {
    match tone {
        Tone::Info => theme.text(),
        Tone::Ok => theme.ok(),
        Tone::Warn => theme.warn(),
        Tone::Error => theme.error(),
        Tone::Dim => theme.dim(),
    }
}

/// A line of `width` columns: `text` cut or padded.
pub(crate) fn fit(text: &str, width: usize) -> String {
    let cut = durable_emu_engine::inspect::rows::truncate(text, width);
    let pad = width.saturating_sub(cut.chars().count());
    format!("{cut}{}", " ".repeat(pad))
}

/// A table cell of `width` columns: `text` cut to leave one space before the next column.
pub(crate) fn col(text: &str, width: usize) -> String {
    format!("{} ", fit(text, width.saturating_sub(1)))
}

/// A message in the middle of an empty area.
pub(crate) fn placeholder(frame: &mut Frame<'_>, theme: &Theme, area: Rect, text: &str) {
    if area.height == 0 {
        return;
    }
    let line = Rect {
        y: area.y + area.height / 2,
        height: 1,
        ..area
    };
    frame.render_widget(
        Paragraph::new(Span::styled(text.to_string(), theme.dim()))
            .alignment(ratatui::layout::Alignment::Center),
        line,
    );
}
