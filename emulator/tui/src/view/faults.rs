//! The faults view: every fault rule in the order the engine consults them (id, switch, target,
//! trigger, limit, effect, matched and fired counters), and the selected rule in full below.

use super::{col, fit, placeholder};
use crate::fault_form::target_key;
use crate::layout::{FAULT_DETAIL_HEIGHT, list_area};
use crate::model::{Model, View};
use crate::theme::Theme;
use durable_emu_engine::faults::{FaultRule, RuleState, TargetKind, Trigger};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// `activity Charge*` and, when narrowed, ` in order-*`; `entity @account@* deposit` for an
/// entity rule (which holds the entity id glob as its instance and the operation as its name).
pub fn target_text(rule: &FaultRule) -> String {
    if rule.target.kind == TargetKind::Entity {
        let entity = rule.target.instance.as_deref().unwrap_or("*");
        return match rule.target.name.as_str() {
            "*" => format!("entity {entity}"),
            operation => format!("entity {entity} {operation}"),
        };
    }
    let mut text = format!("{} {}", target_key(rule.target.kind), rule.target.name);
    if let Some(instance) = &rule.target.instance {
        text.push_str(&format!(" in {instance}"));
    }
    text
}

/// `attempts 1-2`, `call 3`, `every`, `p 0.2 seed 7`, `from 01-02 10:00:00`, `after 2h`.
pub fn trigger_text(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Every => "every".into(),
        Trigger::Attempts { first, last } if first == last => format!("attempt {first}"),
        Trigger::Attempts { first, last } => format!("attempts {first}-{last}"),
        Trigger::NthCall(n) => format!("call {n}"),
        Trigger::Probability { p, seed } => format!("p {p} seed {seed}"),
        Trigger::From(at) => format!("from {}", at.format("%m-%d %H:%M:%S")),
        Trigger::After(by) => format!("after {}", humantime::format_duration(*by)),
    }
}

fn limit_text(state: &RuleState) -> String {
    state
        .rule
        .limit
        .map_or_else(|| "-".to_string(), |limit| limit.to_string())
}

const WIDTHS: [usize; 5] = [4, 4, 22, 13, 6];
const COUNTERS: usize = 11;

/// Draws the view.
pub fn render(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect) {
    let faults = &model.faults;
    let width = usize::from(body.width);
    let effect_width = width.saturating_sub(WIDTHS.iter().sum::<usize>() + COUNTERS);
    let header = format!(
        "{}{}{}{}{}{}{:>COUNTERS$}",
        col("ID", WIDTHS[0]),
        col("ON", WIDTHS[1]),
        col("TARGET", WIDTHS[2]),
        col("TRIGGER", WIDTHS[3]),
        col("LIMIT", WIDTHS[4]),
        col("EFFECT", effect_width),
        "MATCH/FIRED"
    );
    frame.render_widget(
        Paragraph::new(Span::styled(fit(&header, width), theme.accent())),
        Rect {
            height: body.height.min(1),
            ..body
        },
    );
    let list = list_area(View::Faults, body);
    if faults.rules.is_empty() {
        let text = if faults.loaded {
            "no fault rules · a adds one · :fault activity=ChargeCard,attempts=1,error=CardDeclined"
        } else {
            "loading the fault rules ..."
        };
        placeholder(frame, theme, list, text);
        return;
    }
    let end = (faults.offset + usize::from(list.height)).min(faults.rules.len());
    let rows: Vec<Line<'_>> = (faults.offset..end)
        .map(|index| {
            let state = &faults.rules[index];
            let on = if state.enabled {
                Span::styled(col("on", WIDTHS[1]), theme.ok())
            } else {
                Span::styled(col("off", WIDTHS[1]), theme.dim())
            };
            let text = if state.enabled {
                theme.text()
            } else {
                theme.dim()
            };
            let mut spans = vec![
                Span::styled(col(&format!("#{}", state.id), WIDTHS[0]), theme.dim()),
                on,
                Span::styled(col(&target_text(&state.rule), WIDTHS[2]), text),
                Span::styled(col(&trigger_text(&state.rule.trigger), WIDTHS[3]), text),
                Span::styled(col(&limit_text(state), WIDTHS[4]), text),
                Span::styled(
                    col(&state.rule.effect.to_string(), effect_width),
                    if state.fired > 0 { theme.warn() } else { text },
                ),
                Span::styled(
                    format!(
                        "{:>COUNTERS$}",
                        format!("{}/{}", state.matched, state.fired)
                    ),
                    text,
                ),
            ];
            if index == faults.selected {
                for span in &mut spans {
                    span.style = span.style.patch(theme.selected());
                }
            }
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), list);
    if let Some(state) = faults.selected_rule() {
        let detail = Rect {
            y: list.y + list.height,
            height: FAULT_DETAIL_HEIGHT.min(body.height.saturating_sub(list.height + 1)),
            ..body
        };
        render_detail(frame, state, theme, detail);
    }
}

fn render_detail(frame: &mut Frame<'_>, state: &RuleState, theme: &Theme, area: Rect) {
    let width = usize::from(area.width);
    let label = |text: &str| Span::styled(fit(text, 10), theme.accent());
    let limit = state.rule.limit.map_or_else(
        || "no limit".to_string(),
        |limit| format!("at most {limit} times"),
    );
    let lines = vec![
        Line::from(Span::styled("─".repeat(width), theme.dim())),
        Line::from(vec![
            label("rule"),
            Span::styled(
                format!(
                    "#{} \"{}\" · {}",
                    state.id,
                    state.label(),
                    if state.enabled {
                        "on"
                    } else {
                        "off (t switches it on)"
                    }
                ),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            label("target"),
            Span::styled(
                format!(
                    "{}, {}",
                    target_text(&state.rule),
                    match (state.rule.target.kind, &state.rule.target.instance) {
                        (TargetKind::Entity, _) => "the entities whose ids match",
                        (_, Some(_)) => "these instances only",
                        (_, None) => "every instance",
                    }
                ),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            label("trigger"),
            Span::styled(
                format!("{}, {limit}", trigger_text(&state.rule.trigger)),
                theme.text(),
            ),
        ]),
        Line::from(vec![
            label("effect"),
            Span::styled(state.rule.effect.to_string(), theme.text()),
        ]),
        Line::from(vec![
            label("counters"),
            Span::styled(
                format!(
                    "matched {} call(s), fired {} time(s)",
                    state.matched, state.fired
                ),
                if state.fired > 0 {
                    theme.warn()
                } else {
                    theme.text()
                },
            ),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}
