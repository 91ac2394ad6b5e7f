//! Overlays: help, filter and command line (at the bottom of the view), confirmation, the text
//! box (JSON, a failure in full, compiler output: wrapped and scrolled), the Diverged choices and
//! the start, raise, fault and fork forms (centred boxes).

use super::fit;
use crate::cmdline::COMMANDS;
use crate::fault_form::FaultForm;
use crate::input::TextInput;
use crate::keys;
use crate::model::{Model, Overlay, RaiseField, RaiseForm, short_id};
use crate::textbox;
use crate::theme::Theme;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

/// Draws `overlay` over the view in `body`.
pub fn render(frame: &mut Frame<'_>, model: &Model, overlay: &Overlay, theme: &Theme, body: Rect) {
    match overlay {
        Overlay::Help { scroll } => help(frame, model, theme, body, *scroll),
        Overlay::Filter(input) => prompt(frame, theme, body, "/", input, None),
        Overlay::Command(input) => prompt(frame, theme, body, ":", input, None),
        Overlay::Confirm {
            prompt: question, ..
        } => {
            let area = centered(body, 60, 6);
            // The keys sit in the border, so a question that wraps never pushes them out.
            let block = boxed(theme, "Confirm").title_bottom(Line::from(Span::styled(
                " y / Enter confirm · n / Esc cancel ",
                theme.accent(),
            )));
            let text = vec![Line::from(Span::styled(question.clone(), theme.warn()))];
            frame.render_widget(Clear, area);
            frame.render_widget(
                Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
                area,
            );
        }
        Overlay::Text {
            title,
            lines,
            scroll,
        } => text_box(frame, theme, body, title, lines, *scroll),
        Overlay::Diverged(choice) => super::diverged::dialog(frame, theme, body, choice),
        Overlay::Start(form) => {
            let area = centered(body, 70, 17);
            let block = boxed(theme, "Start an orchestration");
            let inner = block.inner(area);
            frame.render_widget(Clear, area);
            frame.render_widget(block, area);
            let width = usize::from(inner.width);
            let mut lines = vec![caption(
                theme,
                "Orchestration (j/k, Enter or Tab to the input):",
                !form.editing_input,
            )];
            let list_room = usize::from(inner.height).saturating_sub(7).max(1);
            lines.extend(pick_list(
                theme,
                &form.names,
                form.selected,
                list_room,
                width,
            ));
            lines.push(Line::from(Span::styled(
                fit(form.description().unwrap_or(""), width),
                theme.dim(),
            )));
            lines.push(caption(
                theme,
                "Input (JSON; empty means null):",
                form.editing_input,
            ));
            lines.push(input_line(theme, &form.input, form.editing_input, width));
            lines.push(match form.parsed_input() {
                Ok(_) => Line::from(Span::styled(
                    "✓ valid JSON · Enter starts · Esc cancels",
                    theme.ok(),
                )),
                Err(error) => Line::from(Span::styled(super::fit(&error, width), theme.error())),
            });
            frame.render_widget(Paragraph::new(lines), inner);
        }
        Overlay::Fault(form) => fault_form(frame, theme, body, form),
        Overlay::Raise(form) => raise_form(frame, theme, body, form),
        Overlay::Fork(form) => {
            let area = centered(body, 70, 11);
            let block = boxed(theme, "Fork with the next completion edited");
            let inner = block.inner(area);
            frame.render_widget(Clear, area);
            frame.render_widget(block, area);
            let width = usize::from(inner.width);
            let label = |text: &str, field: usize| caption(theme, text, form.field == field);
            let mut lines = vec![Line::from(Span::styled(
                fit(&format!("edits {}", form.target_text), width),
                theme.text(),
            ))];
            if form.can_fail {
                let mut toggle = label("becomes: ", 0);
                toggle.spans.push(Span::styled(
                    if form.fail {
                        "[ ] a result  [x] a failure"
                    } else {
                        "[x] a result  [ ] a failure"
                    },
                    if form.field == 0 {
                        theme.accent()
                    } else {
                        theme.dim()
                    },
                ));
                toggle
                    .spans
                    .push(Span::styled("  (Space toggles)", theme.dim()));
                lines.push(toggle);
            } else {
                lines.push(Line::from(Span::styled(
                    "  becomes: another payload (an event cannot fail)",
                    theme.dim(),
                )));
            }
            if form.fail {
                lines.push(label("error type:", 1));
                lines.push(input_line(theme, &form.error_type, form.field == 1, width));
                lines.push(label("message:", 2));
                lines.push(input_line(theme, &form.message, form.field == 2, width));
            } else {
                lines.push(label("result (JSON):", 1));
                lines.push(input_line(theme, &form.result, form.field == 1, width));
            }
            lines.push(Line::from(Span::styled(
                "Tab next field · Enter forks · Esc cancels",
                theme.dim(),
            )));
            frame.render_widget(Paragraph::new(lines), inner);
        }
    }
}

/// The raise form: the events the instance waits for (picked with j/k), the name, the payload.
fn raise_form(frame: &mut Frame<'_>, theme: &Theme, body: Rect, form: &RaiseForm) {
    const LISTED: usize = 4;
    let listed = form.awaited.len().clamp(1, LISTED);
    let area = centered(body, 64, listed as u16 + 9);
    let block = boxed(
        theme,
        &format!(
            "Raise an event on {} {}",
            form.orchestration,
            short_id(&form.instance_id)
        ),
    );
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let mut lines = vec![caption(
        theme,
        "It waits for (j/k picks, Enter to the payload):",
        form.field == RaiseField::Waiting,
    )];
    if form.awaited.is_empty() {
        lines.push(Line::from(Span::styled(
            "    no event: a raised one is buffered until a wait takes it",
            theme.dim(),
        )));
    }
    lines.extend(pick_list(
        theme,
        &form.awaited,
        form.selected,
        LISTED,
        width,
    ));
    lines.push(caption(
        theme,
        "Event name:",
        form.field == RaiseField::Name,
    ));
    lines.push(input_line(
        theme,
        &form.name,
        form.field == RaiseField::Name,
        width,
    ));
    lines.push(caption(
        theme,
        "Payload (JSON; empty means null):",
        form.field == RaiseField::Payload,
    ));
    lines.push(input_line(
        theme,
        &form.payload,
        form.field == RaiseField::Payload,
        width,
    ));
    lines.push(match form.parsed_payload() {
        Ok(_) => Line::from(Span::styled(
            fit(
                "✓ valid JSON · Enter raises · Tab next field · Esc cancels",
                width,
            ),
            theme.ok(),
        )),
        Err(error) => Line::from(Span::styled(fit(&error, width), theme.error())),
    });
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Long text wrapped at the box's width, from row `scroll`; the bottom border says where the
/// view is and how to move and close it.
fn text_box(
    frame: &mut Frame<'_>,
    theme: &Theme,
    body: Rect,
    title: &str,
    lines: &[String],
    scroll: usize,
) {
    let area = textbox::text_box(body);
    let width = usize::from(area.width.saturating_sub(2));
    let height = usize::from(area.height.saturating_sub(2));
    let rows = textbox::wrap(lines, width);
    // The model's scroll may predate a resize: the box never shows past the end.
    let first = scroll.min(textbox::max_scroll(rows.len(), height));
    let shown: Vec<Line<'_>> = rows
        .iter()
        .skip(first)
        .take(height)
        .map(|row| Line::from(Span::styled(row.clone(), theme.text())))
        .collect();
    let position = format!(" line {}/{} ", (first + 1).min(rows.len()), rows.len());
    let keys = if rows.len() > height {
        " j/k PgUp/PgDn g/G scroll · Esc closes "
    } else {
        " Esc closes "
    };
    let title = fit(title, width.saturating_sub(2));
    let block = boxed(theme, title.trim_end())
        .title_bottom(Line::from(Span::styled(position, theme.dim())).left_aligned())
        .title_bottom(Line::from(Span::styled(keys, theme.dim())).right_aligned());
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

fn fault_form(frame: &mut Frame<'_>, theme: &Theme, body: Rect, form: &FaultForm) {
    let fields = form.fields();
    let area = centered(body, 76, fields.len() as u16 + 6);
    let block = boxed(theme, "Add a fault rule");
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let caption_width = 17;
    let mut lines: Vec<Line<'_>> = fields
        .iter()
        .map(|field| {
            let focused = *field == form.field;
            let caption = Span::styled(
                fit(
                    &format!("{}{}", if focused { "▸ " } else { "  " }, form.caption(*field)),
                    caption_width,
                ),
                if focused { theme.accent() } else { theme.dim() },
            );
            match form.input(*field) {
                Some(input) => {
                    let mut line =
                        input_line(theme, input, focused, width.saturating_sub(caption_width));
                    line.spans.insert(0, caption);
                    line
                }
                None => Line::from(vec![
                    caption,
                    Span::styled("< ", theme.dim()),
                    Span::styled(
                        form.choice_text(*field),
                        if focused {
                            theme.selected()
                        } else {
                            theme.text()
                        },
                    ),
                    Span::styled(" >", theme.dim()),
                ]),
            }
        })
        .collect();
    lines.push(Line::from(Span::styled(
        fit(&format!("rule: {}", form.compact()), width),
        theme.dim(),
    )));
    // Validated as typed, with the message `--fault` would print (it names the field).
    lines.push(match form.rule() {
        Ok(_) => Line::from(Span::styled("✓ valid rule · Enter adds it", theme.ok())),
        Err(error) => Line::from(Span::styled(format!("✗ {error}"), theme.error())),
    });
    lines.push(Line::from(Span::styled(
        fit(
            "Tab/↓ next field · Space/←→ choose · Enter adds · Esc cancels",
            width,
        ),
        theme.dim(),
    )));
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// A field's caption, marked `▸` when focused (bold alone does not show on every terminal).
fn caption<'a>(theme: &Theme, text: &str, focused: bool) -> Line<'a> {
    if focused {
        Line::from(Span::styled(format!("▸ {text}"), theme.accent()))
    } else {
        Line::from(Span::styled(format!("  {text}"), theme.dim()))
    }
}

pub(super) fn boxed<'a>(theme: &Theme, title: &str) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(theme.accent())
        .title(Span::styled(format!(" {title} "), theme.accent()))
}

fn input_line<'a>(theme: &Theme, input: &TextInput, focused: bool, width: usize) -> Line<'a> {
    let text = input.text();
    let cursor = input.cursor();
    // Keep the cursor visible in a field narrower than the text.
    let chars: Vec<char> = text.chars().collect();
    let room = width.saturating_sub(3).max(1);
    let first = cursor.saturating_sub(room.saturating_sub(1));
    let visible: String = chars.iter().skip(first).take(room).collect();
    let mut spans = vec![Span::styled("> ", theme.accent())];
    if focused {
        let at = cursor - first;
        let before: String = visible.chars().take(at).collect();
        let under: String = visible
            .chars()
            .nth(at)
            .map_or(" ".to_string(), |c| c.to_string());
        let after: String = visible.chars().skip(at + 1).collect();
        spans.push(Span::styled(before, theme.text()));
        spans.push(Span::styled(under, theme.selected()));
        spans.push(Span::styled(after, theme.text()));
    } else {
        spans.push(Span::styled(visible, theme.dim()));
    }
    Line::from(spans)
}

fn prompt(
    frame: &mut Frame<'_>,
    theme: &Theme,
    body: Rect,
    sigil: &str,
    input: &TextInput,
    _hint: Option<&str>,
) {
    if body.height == 0 {
        return;
    }
    let area = Rect {
        y: body.y + body.height - 1,
        height: 1,
        ..body
    };
    let mut line = input_line(theme, input, true, usize::from(area.width));
    line.spans[0] = Span::styled(sigil.to_string(), theme.accent());
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(line), area);
}

fn help(frame: &mut Frame<'_>, model: &Model, theme: &Theme, body: Rect, scroll: usize) {
    let area = centered(body, 76, body.height);
    let block = boxed(
        theme,
        &format!(
            "Keys · {} view · j/k scroll · Esc closes",
            model.view.title()
        ),
    );
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);
    let key_width = 18;
    let row = |(key, what): &(&str, &str)| {
        Line::from(vec![
            Span::styled(fit(key, key_width), theme.accent()),
            Span::styled(what.to_string(), theme.text()),
        ])
    };
    let mut lines: Vec<Line<'_>> = keys::view_keys(model.view).iter().map(row).collect();
    if keys::has_instance_actions(model.view) {
        lines.push(Line::from(Span::styled(
            "On the selected instance",
            theme.dim(),
        )));
        lines.extend(keys::instance_actions().iter().map(row));
    }
    lines.push(Line::from(Span::styled("Everywhere", theme.dim())));
    lines.extend(keys::global().iter().map(row));
    lines.push(Line::from(Span::styled("Commands (:)", theme.dim())));
    lines.extend(COMMANDS.iter().map(|(syntax, what)| row(&(*syntax, *what))));
    let scroll = scroll.min(lines.len().saturating_sub(usize::from(inner.height)));
    let lines: Vec<Line<'_>> = lines.into_iter().skip(scroll).collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// A box of at most `width` x `height` in the middle of `area`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A form's list of names to pick from: `room` rows that keep `selected` in sight, marked `▸`.
fn pick_list<'a>(
    theme: &Theme,
    names: &'a [String],
    selected: usize,
    room: usize,
    width: usize,
) -> impl Iterator<Item = Line<'a>> {
    let first = selected.saturating_sub(room.saturating_sub(1));
    let (chosen, other) = (theme.selected(), theme.text());
    names
        .iter()
        .enumerate()
        .skip(first)
        .take(room)
        .map(move |(index, name)| {
            let (mark, style) = if index == selected {
                ("  ▸ ", chosen)
            } else {
                ("    ", other)
            };
            Line::from(Span::styled(fit(&format!("{mark}{name}"), width), style))
        })
}
