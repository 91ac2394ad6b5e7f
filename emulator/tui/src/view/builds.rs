//! The builds view: every build loaded (the active one marked), the gRPC sidecar and the remote
//! workers connected to it (the other executor of orchestrations and activities) with the work
//! no executor takes, the feed of build progress, compiler errors, reloads, worker connections
//! and nondeterminism outcomes, and the log stream (the same lines the rolling file under
//! `.durable-emu/logs/` gets).

use super::{fit, tone};
use crate::layout::builds_split;
use crate::model::{Model, Tone};
use crate::theme::Theme;
use durable_emu_engine::remote::WorkerSnapshot;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use tracing::Level;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let areas = builds_split(body);
    let (builds_area, feed_area, logs_area) = (areas.builds, areas.feed, areas.logs);
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
        let entities = match build.entities.len() {
            0 => String::new(),
            1 => ", 1 entity".to_string(),
            count => format!(", {count} entities"),
        };
        let text = format!(
            "{} #{:<3} {}  {} orchestrators, {} activities{entities}  {}",
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
    frame.render_widget(
        Paragraph::new(worker_lines(model, theme, width, areas.workers.height)),
        areas.workers,
    );

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

/// The front ends' lines (the sidecar's first, then one per other front end: the HTTP API,
/// isolation), then one line per worker (connected first), then what is parked.
fn worker_lines(model: &Model, theme: &Theme, width: usize, height: u16) -> Vec<Line<'static>> {
    let workers = &model.workers;
    let mut front_ends = workers.sidecar.lines();
    let title = format!(
        "Workers · {}",
        front_ends
            .next()
            .filter(|line| !line.is_empty())
            .unwrap_or("no gRPC sidecar in this session")
    );
    let mut lines = vec![Line::from(Span::styled(fit(&title, width), theme.accent()))];
    for front_end in front_ends {
        lines.push(Line::from(Span::styled(
            fit(&format!("          {front_end}"), width),
            theme.accent(),
        )));
    }
    let room = usize::from(height).saturating_sub(lines.len());
    let mut rows: Vec<(String, Tone)> = Vec::new();
    let mut listed: Vec<&WorkerSnapshot> = workers.workers.iter().collect();
    listed.sort_by_key(|worker| (worker.disconnected_at.is_some(), worker.id));
    for worker in listed {
        rows.push(worker_row(worker));
    }
    if !workers.parked.is_empty() {
        let mut names: Vec<String> = workers
            .parked
            .iter()
            .map(|parked| format!("{} '{}'", parked.kind, parked.name))
            .collect();
        names.sort();
        names.dedup();
        rows.push((
            format!(
                "  waiting for a worker: {} item(s) of {} (no connected worker or loaded build runs them)",
                workers.parked.len(),
                names.join(", ")
            ),
            Tone::Warn,
        ));
    }
    if rows.is_empty() {
        rows.push((
            "  no worker connected: point an official Durable Task SDK's worker at the address above"
                .to_string(),
            Tone::Dim,
        ));
    }
    if rows.len() > room && room > 0 {
        let hidden = rows.len() - (room - 1);
        rows.truncate(room - 1);
        rows.push((format!("  ... and {hidden} more"), Tone::Dim));
    }
    lines.extend(rows.into_iter().map(|(text, row_tone)| {
        Line::from(Span::styled(fit(&text, width), tone(theme, row_tone)))
    }));
    lines
}

/// One worker: number, address, who it says it is, what it takes, its work.
fn worker_row(worker: &WorkerSnapshot) -> (String, Tone) {
    let meta = |key: &str| {
        worker
            .metadata
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
            .map(|(_, value)| value.clone())
    };
    let mut who = Vec::new();
    if let Some(agent) = meta("x-user-agent") {
        who.push(agent);
    }
    if let Some(id) = meta("workerid") {
        who.push(format!("workerid={id}"));
    }
    if let Some(hub) = meta("taskhub") {
        who.push(format!("taskhub={hub}"));
    }
    let takes = match &worker.filters {
        None => "takes everything".to_string(),
        Some(filters) => {
            let names = |list: &[durable_emu_engine::remote::NameFilter]| {
                list.iter()
                    .map(|filter| filter.name.clone())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let entities = if filters.entities.is_empty() {
                String::new()
            } else {
                format!(" entities [{}]", filters.entities.join(","))
            };
            format!(
                "takes orchestrations [{}] activities [{}]{entities}",
                names(&filters.orchestrations),
                names(&filters.activities)
            )
        }
    };
    let state = match worker.disconnected_at {
        Some(at) => format!("disconnected {}", at.format("%H:%M:%S")),
        None => format!("{} in flight", worker.in_flight),
    };
    let text = format!(
        "{} #{:<3} {}  {}  {}  {} done  {}",
        if worker.disconnected_at.is_none() {
            "●"
        } else {
            "○"
        },
        worker.id,
        worker.peer,
        if who.is_empty() {
            "-".to_string()
        } else {
            who.join(" ")
        },
        state,
        worker.completed,
        takes
    );
    let row_tone = if worker.disconnected_at.is_some() {
        Tone::Dim
    } else {
        Tone::Ok
    };
    (text, row_tone)
}
