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

/// A one-line hint for the status bar.
pub fn hint(view: View) -> &'static str {
    match view {
        View::Instances => {
            "Enter history · n start · / filter · s sort · : command · ? help · q quit"
        }
        View::History => "Enter JSON · h/l execution · f follow · F replay · ? help",
        View::Timeline | View::FanOut | View::Errors => "j/k scroll · Tab views · ? help",
        View::Replay => "h/l step · g/G ends · f fork · e edit+fork · ? help",
        View::Clock => "n next · a auto-skip · + advance · . pause · ? help",
        View::Builds => "j/k scroll logs · ? help",
        View::Faults => "a add · t on/off · d remove · :fault RULE · ? help",
    }
}
