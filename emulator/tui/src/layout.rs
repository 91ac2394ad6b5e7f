//! Where things are on screen, as pure functions of the terminal's size. Views draw into these
//! areas and `update` uses the same ones for paging and mouse hit-testing, so a click lands on
//! the row that was drawn there.

use crate::model::View;
use ratatui::layout::Rect;

/// The three bands of every screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Areas {
    /// The tab bar (top line).
    pub tabs: Rect,
    /// The view.
    pub body: Rect,
    /// The status line (bottom line).
    pub status: Rect,
}

/// The bands of a terminal of `area`.
pub fn areas(area: Rect) -> Areas {
    let tabs = Rect {
        height: area.height.min(1),
        ..area
    };
    let status = Rect {
        y: area.y + area.height.saturating_sub(1),
        height: area.height.min(1),
        ..area
    };
    let body = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(2),
        ..area
    };
    Areas { tabs, body, status }
}

/// The tab labels, e.g. `1 Instances` (`1 Inst` when `short`).
pub fn tab_label(view: View, short: bool) -> String {
    let title = if short {
        view.short_title()
    } else {
        view.title()
    };
    format!("{} {title}", view.digit())
}

/// Whether the tab bar uses short titles: when the full ones do not fit (80 columns).
pub fn short_tabs(area: Rect) -> bool {
    let full: usize = View::ALL
        .iter()
        .map(|view| tab_label(*view, false).chars().count() + 1)
        .sum();
    full.saturating_sub(1) > usize::from(area.width)
}

/// Each tab's columns `[start, end)` on the tab bar.
pub fn tab_positions(area: Rect) -> Vec<(u16, u16, View)> {
    let mut x = area.x;
    let mut positions = Vec::new();
    let short = short_tabs(area);
    for view in View::ALL {
        let width = tab_label(view, short).chars().count() as u16;
        positions.push((x, x + width, view));
        x += width + 1;
    }
    positions
}

/// Lines under the fault rules for the selected rule in full.
pub const FAULT_DETAIL_HEIGHT: u16 = 7;

/// Lines under the timeline's bars for its legend.
pub const TIMELINE_LEGEND_HEIGHT: u16 = 1;

/// Lines above the list in each view (headers, summaries).
fn header_lines(view: View) -> u16 {
    match view {
        View::Instances | View::Errors | View::FanOut => 1,
        // History: title, what the instance waits for, column names.
        View::History => 3,
        View::Timeline | View::Replay => 2,
        View::Clock => 6,
        View::Builds => 0,
        View::Faults => 1,
        View::Entities => 1,
    }
}

/// The scrolling list of a view: the rows a click selects and a page moves over.
pub fn list_area(view: View, body: Rect) -> Rect {
    let skip = header_lines(view).min(body.height);
    let mut list = Rect {
        y: body.y + skip,
        height: body.height - skip,
        ..body
    };
    match view {
        View::Replay => list.width = replay_split(body).0.width,
        View::Builds => {
            list = builds_split(body).logs;
        }
        View::Faults => list.height = list.height.saturating_sub(FAULT_DETAIL_HEIGHT),
        View::Entities => list.height = entities_list_height(body),
        // The legend's line, under the bars.
        View::Timeline => list.height = list.height.saturating_sub(TIMELINE_LEGEND_HEIGHT),
        _ => {}
    }
    list
}

/// Rows the list of `view` shows at once.
pub fn page(view: View, area: Rect) -> usize {
    usize::from(list_area(view, areas(area).body).height).max(1)
}

/// The replay view's halves: history on the left, what the code did on the right.
pub fn replay_split(body: Rect) -> (Rect, Rect) {
    let left_width = (body.width * 9 / 20).max(20).min(body.width);
    let left = Rect {
        width: left_width,
        ..body
    };
    let right = Rect {
        x: body.x + left_width,
        width: body.width - left_width,
        ..body
    };
    (left, right)
}

/// The builds view's bands: builds, the sidecar's workers, the build/reload feed, logs.
pub fn builds_split(body: Rect) -> BuildsAreas {
    let builds_height = (body.height / 4).clamp(3.min(body.height), 7);
    let after_builds = body.height - builds_height;
    // The sidecar line and a title, then one line per worker (a few at most on a small screen).
    let workers_height = (body.height / 5).clamp(2, 6).min(after_builds);
    let rest = after_builds - workers_height;
    let feed_height = rest / 2;
    let band = |y: u16, height: u16| Rect {
        y: body.y + y,
        height,
        ..body
    };
    BuildsAreas {
        builds: band(0, builds_height),
        workers: band(builds_height, workers_height),
        feed: band(builds_height + workers_height, feed_height),
        logs: band(
            builds_height + workers_height + feed_height,
            rest - feed_height,
        ),
    }
}

/// The bands of the builds view, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildsAreas {
    /// Every build loaded.
    pub builds: Rect,
    /// The gRPC sidecar and its remote workers.
    pub workers: Rect,
    /// Build, reload and worker events.
    pub feed: Rect,
    /// The log stream.
    pub logs: Rect,
}

/// Rows of the Entities view's list: about a third of the body (at least 3), the rest for the
/// selected entity's state and operation log.
pub fn entities_list_height(body: Rect) -> u16 {
    (body.height.saturating_sub(1) / 3)
        .max(3)
        .min(body.height.saturating_sub(1))
}

/// Keeps `selected` inside a window of `height` rows starting at `offset`; returns the offset.
pub fn scroll_to(selected: usize, offset: usize, height: usize) -> usize {
    let height = height.max(1);
    if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    }
}
