//! Colours of the UI, read from a theme file (the default is `assets/theme.toml`, embedded), and
//! `NO_COLOR` (https://no-color.org): when it is set, no colour is used at all and selection and
//! emphasis fall back to reverse video and bold.
//!
//! The file format is the flat part of TOML the default theme uses (`key = "value"` under
//! `[colors]`, `#` comments), parsed here rather than pulling in a TOML crate for twenty lines.

use durable_sdk::history::RuntimeStatus;
use ratatui::style::{Color, Modifier, Style};
use std::collections::HashMap;

/// The default theme, shipped in `assets/`.
pub const DEFAULT_THEME: &str = include_str!("../../../assets/theme.toml");

/// Styles every view draws with.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    colors: HashMap<String, Color>,
    /// NO_COLOR: modifiers only.
    pub monochrome: bool,
}

impl Theme {
    /// The default theme, honouring `NO_COLOR` and `DURABLE_EMU_THEME` from the environment.
    pub fn from_env() -> Result<Self, String> {
        let monochrome = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let mut theme = Self::parse(DEFAULT_THEME, monochrome)?;
        if let Some(path) = std::env::var_os("DURABLE_EMU_THEME") {
            let text = std::fs::read_to_string(&path).map_err(|error| {
                format!("cannot read theme {}: {error}", path.to_string_lossy())
            })?;
            let custom = Self::parse(&text, monochrome)
                .map_err(|error| format!("theme {}: {error}", path.to_string_lossy()))?;
            theme.colors.extend(custom.colors);
        }
        Ok(theme)
    }

    /// The default theme in colour (what tests and snapshots use).
    pub fn default_colors() -> Self {
        Self::parse(DEFAULT_THEME, false).unwrap_or(Self {
            colors: HashMap::new(),
            monochrome: false,
        })
    }

    /// Parses a theme file.
    pub fn parse(text: &str, monochrome: bool) -> Result<Self, String> {
        let mut colors = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = strip_comment(line).trim();
            if line.is_empty() || line.starts_with('[') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(format!("line {}: expected key = \"colour\"", number + 1));
            };
            let value = value.trim().trim_matches('"');
            colors.insert(
                key.trim().to_string(),
                parse_color(value)
                    .ok_or_else(|| format!("line {}: '{value}' is not a colour", number + 1))?,
            );
        }
        Ok(Self { colors, monochrome })
    }

    fn color(&self, key: &str) -> Option<Color> {
        if self.monochrome {
            None
        } else {
            self.colors.get(key).copied()
        }
    }

    /// A foreground style of colour `key`.
    pub fn fg(&self, key: &str) -> Style {
        self.color(key)
            .map_or_else(Style::default, |color| Style::default().fg(color))
    }

    /// Plain text.
    pub fn text(&self) -> Style {
        self.fg("text")
    }

    /// De-emphasised text (replayed log lines, hints).
    pub fn dim(&self) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            self.fg("dim")
        }
    }

    /// Titles, keys, the active tab.
    pub fn accent(&self) -> Style {
        self.fg("accent").add_modifier(Modifier::BOLD)
    }

    /// Borders.
    pub fn border(&self) -> Style {
        self.fg("border")
    }

    /// Errors and failures.
    pub fn error(&self) -> Style {
        self.fg("error").add_modifier(if self.monochrome {
            Modifier::BOLD
        } else {
            Modifier::empty()
        })
    }

    /// Warnings.
    pub fn warn(&self) -> Style {
        self.fg("warn")
    }

    /// Success.
    pub fn ok(&self) -> Style {
        self.fg("ok")
    }

    /// A failed bar in the timeline (bold under NO_COLOR, beside its `✗` end).
    pub fn bar_failed(&self) -> Style {
        self.fg("bar_failed").add_modifier(if self.monochrome {
            Modifier::BOLD
        } else {
            Modifier::empty()
        })
    }

    /// Injected faults.
    pub fn fault(&self) -> Style {
        self.fg("fault").add_modifier(Modifier::ITALIC)
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        match self.color("selected_bg") {
            Some(color) => Style::default().bg(color).add_modifier(Modifier::BOLD),
            None => Style::default().add_modifier(Modifier::REVERSED),
        }
    }

    /// The colour of a runtime status.
    pub fn status(&self, status: RuntimeStatus) -> Style {
        let key = match status {
            RuntimeStatus::Pending => "status_pending",
            RuntimeStatus::Running => "status_running",
            RuntimeStatus::Suspended => "status_suspended",
            RuntimeStatus::ContinuedAsNew => "status_continued",
            RuntimeStatus::Completed => "status_completed",
            RuntimeStatus::Failed => "status_failed",
            RuntimeStatus::Canceled => "status_canceled",
            RuntimeStatus::Terminated => "status_terminated",
        };
        let style = self.fg(key);
        if self.monochrome && status == RuntimeStatus::Failed {
            style.add_modifier(Modifier::BOLD)
        } else {
            style
        }
    }
}

impl Theme {
    /// The colour of `Diverged` (a display status: suspended by a reload check, waiting for a
    /// choice), distinct from a suspension the user asked for.
    pub fn diverged(&self) -> Style {
        self.fg("status_diverged").add_modifier(Modifier::BOLD)
    }

    /// The colour of a row's status as the UI shows it.
    pub fn row_status(&self, row: &crate::model::InstanceRow) -> Style {
        if row.is_diverged() {
            self.diverged()
        } else {
            self.status(row.status)
        }
    }
}

/// The symbol of a `Diverged` instance.
pub const DIVERGED_SYMBOL: &str = "≠";

/// The symbol of a row's status as the UI shows it.
pub fn row_symbol(row: &crate::model::InstanceRow) -> &'static str {
    if row.is_diverged() {
        DIVERGED_SYMBOL
    } else {
        status_symbol(row.status)
    }
}

/// The symbol of a runtime status (so status reads without colour too).
pub fn status_symbol(status: RuntimeStatus) -> &'static str {
    match status {
        RuntimeStatus::Pending => "○",
        RuntimeStatus::Running => "▶",
        RuntimeStatus::Suspended => "‖",
        RuntimeStatus::ContinuedAsNew => "↻",
        RuntimeStatus::Completed => "✓",
        RuntimeStatus::Failed => "✗",
        RuntimeStatus::Canceled => "⊘",
        RuntimeStatus::Terminated => "■",
    }
}

/// The line without a `#` comment (a `#` inside quotes is part of a colour).
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (index, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..index],
            _ => {}
        }
    }
    line
}

fn parse_color(text: &str) -> Option<Color> {
    if let Some(hex) = text.strip_prefix('#') {
        let value = u32::from_str_radix(hex, 16).ok()?;
        return (hex.len() == 6).then_some(Color::Rgb(
            (value >> 16) as u8,
            (value >> 8) as u8,
            value as u8,
        ));
    }
    if let Ok(index) = text.parse::<u8>() {
        return Some(Color::Indexed(index));
    }
    Some(match text.to_ascii_lowercase().as_str() {
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark_gray" | "dark_grey" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        "reset" | "default" => Color::Reset,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_theme_parses_and_no_color_drops_every_colour() {
        let theme = Theme::parse(DEFAULT_THEME, false).unwrap();
        assert_eq!(theme.fg("accent").fg, Some(Color::Cyan));
        assert_eq!(
            theme.fg("selected_bg").fg,
            Some(Color::Rgb(0x26, 0x4f, 0x78))
        );
        let plain = Theme::parse(DEFAULT_THEME, true).unwrap();
        assert_eq!(plain.status(RuntimeStatus::Failed).fg, None);
        assert!(plain.selected().add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn a_bad_colour_names_its_line() {
        let error = Theme::parse("[colors]\naccent = \"plaid\"\n", false).unwrap_err();
        assert!(error.contains("line 2"), "{error}");
    }
}
