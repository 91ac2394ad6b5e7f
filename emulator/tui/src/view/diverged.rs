//! What a `Diverged` instance shows: the choice dialog (resume pinned, restart on the new build,
//! terminate, each with its key) and the divergence diff the Errors view puts above the error
//! tree (expected vs actual call, long lines wrapped, never cut). Draws from the row's stored
//! divergence; knows nothing of how the engine found it.

use super::overlay::{boxed, centered};
use crate::model::{DivergedChoice, InstanceRow, code_label};
use crate::theme::Theme;
use durable_sdk::protocol::DurableCall;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

/// Draws the dialog over `body`.
pub fn dialog(frame: &mut Frame<'_>, theme: &Theme, body: Rect, choice: &DivergedChoice) {
    let block = boxed(theme, &format!("{} is Diverged", choice.name));
    // The box's width is known before its height: the reason wraps to it.
    let width = usize::from(centered(body, 72, 3).width.saturating_sub(2));
    let remote = choice.new_build == durable_emu_engine::REMOTE_CODE;
    let pinned = choice
        .pinned_build
        .map_or_else(|| "its own build".to_string(), |build| format!("#{build}"));
    let mut lines: Vec<Line<'_>> = wrapped(
        &format!(
            "{} does not replay on {}: {}",
            choice.instance_id,
            code_label(choice.new_build),
            choice.reason
        ),
        width,
        "",
        theme.text(),
    );
    // Room for the four lines of choices below, whatever the terminal's height.
    lines.truncate(usize::from(body.height).saturating_sub(2 + 5).max(1));
    lines.push(Line::from(""));
    let key = |key: &str, text: String| {
        Line::from(vec![
            Span::styled(format!("  {key:<6}"), theme.accent()),
            Span::styled(text, theme.text()),
        ])
    };
    if remote {
        // No build to pin to: the worker's code is whatever connects.
        lines.push(key(
            "u",
            "resume (the connected code runs it, and may fail it)".to_string(),
        ));
        lines.push(key(
            "R",
            "restart on the connected code (same input; this one ends)".to_string(),
        ));
    } else {
        lines.push(key(
            "u",
            format!("resume pinned on {pinned} (its old code)"),
        ));
        lines.push(key(
            "R",
            format!(
                "restart on the new build #{} (same input; this one ends)",
                choice.new_build
            ),
        ));
    }
    lines.push(key("t", "terminate (asks first)".to_string()));
    lines.push(Line::from(Span::styled(
        "  e: the diff (Errors) · Enter: history · Esc: close",
        theme.dim(),
    )));
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let area = centered(body, 72, height);
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// The divergence of a `Diverged` row, for the Errors view: what happened, then history's call
/// and the code's side by side in meaning (one under the other, so neither is cut), then what
/// can be done. Empty for any other row.
pub fn diff_lines<'a>(row: &InstanceRow, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let Some(divergence) = row.divergence.as_ref().filter(|_| row.is_diverged()) else {
        return Vec::new();
    };
    let on = row.build.map_or_else(
        || {
            if divergence.build == durable_emu_engine::REMOTE_CODE {
                "the code that recorded it".to_string()
            } else {
                "its own build".to_string()
            }
        },
        |build| format!("build #{build}"),
    );
    let mut lines = wrapped(
        &format!(
            "Diverged: {} does not replay this instance; it stays on {on}",
            code_label(divergence.build)
        ),
        width,
        "",
        theme.diverged(),
    );
    match &divergence.diff {
        Some(diff) => {
            let side = |call: &Option<DurableCall>, none: &str| {
                call.as_ref()
                    .map_or_else(|| none.to_string(), ToString::to_string)
            };
            lines.extend(wrapped(
                &format!("at call #{}", diff.sequence_id),
                width,
                "  ",
                theme.text(),
            ));
            lines.extend(wrapped(
                &format!(
                    "expected (history, {on}): {}",
                    side(&diff.expected, "no call with this id")
                ),
                width,
                "    ",
                theme.ok(),
            ));
            lines.extend(wrapped(
                &format!(
                    "actual ({}): {}",
                    code_label(divergence.build),
                    side(&diff.actual, "never makes this call")
                ),
                width,
                "    ",
                theme.error(),
            ));
        }
        None => lines.extend(wrapped(&divergence.reason, width, "  ", theme.error())),
    }
    lines.extend(wrapped(
        "u resume pinned · R restart on the new build · t terminate (Enter in Instances lists them)",
        width,
        "  ",
        theme.dim(),
    ));
    lines.push(Line::from(""));
    lines
}

/// `text` broken at spaces into lines of at most `width` columns, each starting with `indent`
/// (a word longer than a line is split).
pub fn wrapped<'a>(text: &str, width: usize, indent: &str, style: Style) -> Vec<Line<'a>> {
    wrap(text, width, indent)
        .into_iter()
        .map(|line| Line::from(Span::styled(line, style)))
        .collect()
}

/// The lines of [`wrapped`], as text.
pub fn wrap(text: &str, width: usize, indent: &str) -> Vec<String> {
    let room = width.saturating_sub(indent.chars().count()).max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut used = 0;
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        while !word.is_empty() {
            let gap = usize::from(used > 0);
            if used + gap + word.len() <= room {
                if gap == 1 {
                    line.push(' ');
                }
                used += gap + word.len();
                line.extend(word.drain(..));
            } else if used > 0 {
                lines.push(format!("{indent}{line}"));
                line.clear();
                used = 0;
            } else {
                let rest = word.split_off(room.min(word.len()));
                line.extend(word.drain(..));
                lines.push(format!("{indent}{line}"));
                line.clear();
                word = rest;
            }
        }
    }
    if used > 0 || lines.is_empty() {
        lines.push(format!("{indent}{line}"));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn long_text_wraps_at_spaces_within_the_width_and_loses_no_word() {
        let text = "history has call_activity \"Greet\" (TaskScheduled) as call #0, but the code now makes create_timer (TimerCreated)";
        let lines = wrap(text, 30, "  ");
        assert!(
            lines.iter().all(|line| line.chars().count() <= 30),
            "{lines:?}"
        );
        assert!(lines.iter().all(|line| line.starts_with("  ")), "{lines:?}");
        let joined: Vec<&str> = lines
            .iter()
            .flat_map(|line| line.split_whitespace())
            .collect();
        assert_eq!(joined, text.split_whitespace().collect::<Vec<_>>());
    }

    #[test]
    fn a_word_longer_than_a_line_is_split_not_cut() {
        let lines = wrap("abcdefghij", 4, "");
        assert_eq!(lines, vec!["abcd", "efgh", "ij"]);
    }
}
