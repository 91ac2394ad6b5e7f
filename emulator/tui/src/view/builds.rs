//! The builds view: every build loaded (the active one marked), the feed of build progress,
//! compiler errors, reloads and nondeterminism outcomes, and the log stream (the same lines the
//! rolling file under `.durable-emu/logs/` gets).

use super::{fit, tone};
use crate::layout::builds_split;
use crate::model::{Model, Tone};
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tracing::Level;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let (builds_area, feed_area, logs_area) = builds_split(body);
    let width = usize::from(body.width);
    let builds = &model.builds;
    let mut lines = vec![Line::from(Span::styled(
        fit("Builds", width),
        theme.accent(),
    ))];
    let room = usize::from(builds_area.height).saturating_sub(1);
    let skip = builds.builds.len().saturating_sub(room);
    for build in &builds.builds[skip..] {
        let active = builds.active == Some(build.number);
        let text = format!(
            "{} #{:<3} {}  {} orchestrators, {} activities  {}",
            if active { "●" } else { " " },
            build.number,
            build.origin,
            build.orchestrators.len(),
            build.activities.len(),
            build.build_id
        );
        lines.push(Line::from(Span::styled(
            fit(&text, width),
            if active { theme.ok() } else { theme.dim() },
        )));
    }
    frame.render_widget(Paragraph::new(lines), builds_area);

    let mut feed = vec![Line::from(Span::styled(
        fit("Build, reload and nondeterminism events", width),
        theme.accent(),
    ))];
    let room = usize::from(feed_area.height).saturating_sub(1);
    let skip = builds.feed.len().saturating_sub(room);
    if builds.feed.is_empty() {
        feed.push(Line::from(Span::styled("  nothing yet", theme.dim())));
    }
    for line in builds.feed.iter().skip(skip) {
        feed.push(Line::from(Span::styled(
            fit(&line.text, width),
            tone(theme, line.tone),
        )));
    }
    frame.render_widget(Paragraph::new(feed), feed_area);

    let mut logs = vec![Line::from(Span::styled(
        fit(
            &format!(
                "Log (.durable-emu/logs/){}",
                if builds.logs_back > 0 {
                    format!(" · {} lines back, G for newest", builds.logs_back)
                } else {
                    String::new()
                }
            ),
            width,
        ),
        theme.accent(),
    ))];
    let room = usize::from(logs_area.height).saturating_sub(1);
    let end = builds.logs.len().saturating_sub(builds.logs_back);
    let start = end.saturating_sub(room);
    for entry in builds.logs.range(start..end) {
        let level_tone = match entry.level {
            Level::ERROR => Tone::Error,
            Level::WARN => Tone::Warn,
            Level::INFO => Tone::Info,
            _ => Tone::Dim,
        };
        logs.push(Line::from(vec![
            Span::styled(format!("{:<5} ", entry.level), tone(theme, level_tone)),
            Span::styled(fit(&entry.message, width.saturating_sub(6)), theme.text()),
        ]));
    }
    frame.render_widget(Paragraph::new(logs), logs_area);
}
