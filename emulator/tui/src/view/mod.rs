//! Rendering: widgets that draw the model and cannot change it (`&Model`). Each view draws only
//! the rows that fit (virtualised lists), so a frame costs the same with 10 or 10,000 instances.

mod builds;
mod clock;
mod derived;
mod diverged;
mod entities;
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
        View::Entities => entities::render(frame, model, theme, bands.body),
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
    // A message (or a running episode) is read in full, pushing the clock aside; the key hint
    // shown when there is none is the one that gives way to the clock. `? help` is never cut: it
    // is how a new user finds every other key.
    let help = keys::HELP_HINT;
    let (text, style, message) = match (&model.long_episode, &model.status) {
        // Above any message: while it lasts, nothing else the engine does will happen.
        (Some(episode), _) => (
            format!(
                "episode of {} ({}) running for {}s",
                episode.instance_id,
                episode.name,
                episode.elapsed.as_secs()
            ),
            theme.error(),
            true,
        ),
        (None, status) => match status {
            Some((message, true)) => (message.clone(), theme.error(), true),
            Some((message, false)) => (message.clone(), theme.text(), true),
            None => (String::new(), theme.dim(), false),
        },
    };
    let width = usize::from(area.width).saturating_sub(help.chars().count());
    let clock = clock_text(model);
    let (text, clock) = if message {
        status_layout(&text, &clock, width)
    } else {
        let clock = if clock.is_empty() {
            clock
        } else {
            format!(" {clock} ")
        };
        let room = width.saturating_sub(clock.chars().count());
        (keys::hint_within(model.view, room), clock)
    };
    let pad = width.saturating_sub(text.chars().count() + clock.chars().count());
    let line = Line::from(vec![
        Span::styled(text, style),
        Span::raw(" ".repeat(pad)),
        Span::styled(help, theme.accent()),
        Span::styled(clock, theme.accent()),
    ]);
    frame.render_widget(Paragraph::new(line), area);
}

/// The clock's part of the status line, words separated by spaces (`2026-11-23 20:14:06 playing
/// auto-skip`, or `real 2026-11-23 20:14:06`): "playing" or "paused" says the time is virtual
/// (the real clock just runs), in fewer columns. Empty before the engine has said what time it is.
fn clock_text(model: &Model) -> String {
    match model.clock.now {
        Some(now) => format!(
            "{}{}{}{}",
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
    }
}

/// The status line's message and clock (with its margins) for `width` columns. The message comes
/// first: the clock gives up its date, then its other words from the left (the time of day
/// last), then disappears, before the message is cut; only a message wider than the whole line
/// is cut, with `…`.
pub(crate) fn status_layout(message: &str, clock: &str, width: usize) -> (String, String) {
    let needed = message.chars().count();
    let words: Vec<&str> = clock.split_whitespace().collect();
    let is_date = |word: &&str| word.len() == 10 && word.as_bytes().get(4) == Some(&b'-');
    let mut shorter: Vec<&str> = words.iter().copied().filter(|w| !is_date(w)).collect();
    let mut candidates = vec![words.join(" ")];
    // The time of day goes last: it is what changes.
    loop {
        candidates.push(shorter.join(" "));
        match shorter.iter().position(|word| !word.contains(':')) {
            Some(at) => shorter.remove(at),
            None => break,
        };
    }
    for candidate in candidates.into_iter().filter(|c| !c.is_empty()) {
        // A space on either side of the clock.
        let clock = format!(" {candidate} ");
        if needed + clock.chars().count() <= width {
            return (message.to_string(), clock);
        }
    }
    (
        durable_emu_engine::inspect::rows::truncate(message, width),
        String::new(),
    )
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

#[cfg(test)]
mod tests {
    use super::status_layout;

    const CLOCK: &str = "virtual 2026-11-23 20:14:06 auto-skip";

    #[test]
    fn a_short_message_leaves_the_whole_clock() {
        let (text, clock) = status_layout("started", CLOCK, 80);
        assert_eq!(text, "started");
        assert_eq!(clock, " virtual 2026-11-23 20:14:06 auto-skip ");
    }

    #[test]
    fn the_clock_drops_its_date_then_words_then_the_time_before_the_message_is_cut() {
        let message = "a".repeat(50);
        assert_eq!(
            status_layout(&message, CLOCK, 80).1,
            " virtual 20:14:06 auto-skip "
        );
        let message = "a".repeat(58);
        assert_eq!(status_layout(&message, CLOCK, 80).1, " 20:14:06 auto-skip ");
        let message = "a".repeat(62);
        assert_eq!(status_layout(&message, CLOCK, 80).1, " 20:14:06 ");
        let message = "a".repeat(75);
        let (text, clock) = status_layout(&message, CLOCK, 80);
        assert_eq!(text, message, "never cut while the clock can give way");
        assert_eq!(clock, "");
    }

    #[test]
    fn only_a_message_wider_than_the_line_is_cut() {
        let message = "b".repeat(90);
        let (text, clock) = status_layout(&message, CLOCK, 80);
        assert_eq!(text.chars().count(), 80);
        assert!(text.ends_with('…'));
        assert_eq!(clock, "");
    }
}
