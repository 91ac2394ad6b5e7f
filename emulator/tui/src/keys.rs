//! The help overlay's key lines (`?`), built from [`keymap::KEYMAP`](crate::keymap::KEYMAP),
//! and the status bar's one-line hints. Which key does what is decided in `keymap`, not here.

use crate::keymap::{self, NOTES, Scope};
use crate::model::View;

pub use crate::keymap::has_instance_actions;

/// Keys available in every view (and the overlay and mouse notes).
pub fn global() -> Vec<(&'static str, &'static str)> {
    let mut lines = keymap::help_lines(|binding| binding.scope == Scope::Global);
    lines.extend_from_slice(NOTES);
    lines
}

/// Actions on the selected instance, in every instance view.
pub fn instance_actions() -> Vec<(&'static str, &'static str)> {
    keymap::help_lines(|binding| binding.scope == Scope::Instance)
}

/// The keys of one view (beside [`global`]).
pub fn view_keys(view: View) -> Vec<(&'static str, &'static str)> {
    keymap::help_lines(|binding| {
        matches!(binding.scope, Scope::In(_)) && binding.scope.applies(view)
    })
}

/// The footer's help key, drawn beside the clock whatever the width and whatever the status line
/// says (so it is not part of [`hint`]).
pub const HELP_HINT: &str = " ? help ";

/// A one-line hint for the status bar, most useful keys first (it is cut at the right when the
/// terminal is narrow).
pub fn hint(view: View) -> &'static str {
    match view {
        View::Instances => "Enter open · n start · / filter · s sort · : command · q quit",
        View::History => "Enter JSON · h/l execution · f follow · F replay · n start",
        View::Timeline | View::FanOut | View::Errors => "j/k scroll · Tab views · n start",
        View::Replay => "h/l step · g/G ends · f fork · e edit+fork",
        View::Clock => "n next · a auto-skip · + advance · . pause",
        View::Builds => "j/k scroll logs · n start",
        View::Faults => "a add · t on/off · d remove · :fault RULE",
        View::Entities => "j/k select · Enter in full · s signal · n start",
    }
}

/// The view's hint cut to `room` columns between two keys (whole hints only, never half a word).
pub fn hint_within(view: View, room: usize) -> String {
    let mut text = String::new();
    for part in hint(view).split(" · ") {
        let extra = if text.is_empty() { 0 } else { 3 } + part.chars().count();
        if text.chars().count() + extra > room {
            break;
        }
        if !text.is_empty() {
            text.push_str(" · ");
        }
        text.push_str(part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_cut_between_keys_never_inside_one() {
        assert_eq!(
            hint_within(View::Clock, 100),
            "n next · a auto-skip · + advance · . pause"
        );
        assert_eq!(hint_within(View::Clock, 30), "n next · a auto-skip");
        assert_eq!(hint_within(View::Clock, 5), "");
    }
}
