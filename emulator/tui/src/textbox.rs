//! The scrollable text overlay's geometry and line wrapping: where the box sits over a view, and
//! how long lines break at its width. `update` (scroll limits, pages) and `view` (drawing) both
//! use these, so a page down moves by exactly what was drawn and the last line can always be
//! reached.
//!
//! Knows nothing of what the text is (an event's JSON, a failure, compiler output).

use crate::layout::areas;
use ratatui::layout::Rect;

/// The box over a view's `body`: almost all of it, so long text has room.
pub fn text_box(body: Rect) -> Rect {
    let width = body.width.saturating_sub(4).min(body.width);
    let height = body.height.saturating_sub(2).min(body.height);
    Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    }
}

/// Columns and rows inside the box's border for a terminal of `area`.
pub fn inner_size(area: Rect) -> (usize, usize) {
    let outer = text_box(areas(area).body);
    (
        usize::from(outer.width.saturating_sub(2)),
        usize::from(outer.height.saturating_sub(2)),
    )
}

/// `lines` broken at `width` columns. A line that does not fit breaks at its last space that
/// fits (or mid-word when a word is wider than the box); its continuations keep its indentation
/// plus two columns, so wrapped JSON still reads as nested.
pub fn wrap(lines: &[String], width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rows = Vec::with_capacity(lines.len());
    for line in lines {
        let chars: Vec<char> = line.trim_end().chars().collect();
        if chars.len() <= width {
            rows.push(chars.into_iter().collect());
            continue;
        }
        let indent = chars.iter().take_while(|c| **c == ' ').count();
        // Continuations must leave room for text; past half the width the indent is dropped.
        let continuation = if indent + 2 <= width / 2 {
            indent + 2
        } else {
            0
        };
        let mut rest: &[char] = &chars;
        let mut prefix = 0;
        while !rest.is_empty() {
            let room = width - prefix;
            if rest.len() <= room {
                rows.push(row(prefix, rest));
                break;
            }
            // Break after the last space that fits, unless that leaves almost nothing on the row.
            let cut = rest[..=room]
                .iter()
                .rposition(|c| *c == ' ')
                .filter(|at| *at > room / 3)
                .map_or(room, |at| at + 1);
            rows.push(row(prefix, &rest[..cut]));
            rest = &rest[cut..];
            while rest.first() == Some(&' ') {
                rest = &rest[1..];
            }
            prefix = continuation;
        }
    }
    rows
}

fn row(indent: usize, text: &[char]) -> String {
    let mut row = " ".repeat(indent);
    row.extend(text.iter());
    row.trim_end().to_string()
}

/// The last first-visible row: the one that shows the end of `rows` rows at the bottom.
pub fn max_scroll(rows: usize, height: usize) -> usize {
    rows.saturating_sub(height.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn short_lines_are_kept_and_long_ones_break_at_spaces() {
        let rows = wrap(&lines(&["short", "one two three four five six"]), 10);
        assert_eq!(
            rows,
            ["short", "one two", "  three", "  four", "  five six"]
        );
    }

    #[test]
    fn a_word_wider_than_the_box_is_cut_and_nothing_is_lost() {
        let rows = wrap(&lines(&["abcdefghijklmnopqrstuvwxy"]), 10);
        assert_eq!(rows, ["abcdefghij", "  klmnopqr", "  stuvwxy"]);
    }

    #[test]
    fn continuations_keep_the_indentation_of_their_line() {
        let rows = wrap(
            &lines(&["    \"message\": \"no carrier would take it\""]),
            24,
        );
        assert_eq!(
            rows,
            [
                "    \"message\": \"no",
                "      carrier would take",
                "      it\""
            ]
        );
        for row in &rows {
            assert!(row.chars().count() <= 24, "{row:?}");
        }
    }

    #[test]
    fn the_last_row_can_be_scrolled_to_the_bottom() {
        assert_eq!(max_scroll(30, 10), 20);
        assert_eq!(max_scroll(5, 10), 0);
    }
}
