//! Every key, once: what the help overlay (`?`) lists and the README's key reference repeats.
//! `update` is the code that gives them meaning; a test checks the two agree on each view.

use crate::model::View;

/// Keys available in every view.
pub const GLOBAL: &[(&str, &str)] = &[
    ("?", "this help"),
    ("q", "quit"),
    ("Tab / Shift-Tab", "next / previous view"),
    ("1-9", "jump to a view"),
    (":", "command line (:help lists commands)"),
    ("/", "filter instances"),
    ("j k / ↓ ↑", "move"),
    ("PgDn PgUp / g G", "page / first / last"),
    ("Esc", "close an overlay"),
    (
        "mouse",
        "click selects, wheel scrolls, click a tab to switch",
    ),
];

/// Actions on the selected instance, in every instance view.
pub const INSTANCE_ACTIONS: &[(&str, &str)] = &[
    ("n", "start an orchestration (name + JSON input)"),
    ("r", "raise an event (:raise EVENT JSON)"),
    ("t", "terminate (asks first)"),
    ("p / u", "suspend / resume"),
    ("R", "restart with the same input"),
    ("D", "purge an ended instance (asks first)"),
    ("F", "open the replay stepper"),
];

/// The keys of one view (beside [`GLOBAL`]).
pub fn view_keys(view: View) -> &'static [(&'static str, &'static str)] {
    match view {
        View::Instances => &[
            ("Enter / l", "open the history"),
            ("s", "cycle sort: created, name, status, updated"),
            ("c", "clear the filter"),
        ],
        View::History => &[
            ("Enter", "full JSON of the event"),
            ("h / l", "previous / next execution (continue-as-new)"),
            ("f", "follow new events on/off"),
        ],
        View::Timeline | View::FanOut | View::Errors => &[("j k", "scroll")],
        View::Replay => &[
            ("l / →", "step forward"),
            ("h / ←", "step back"),
            ("g / G", "first / last step"),
            ("f", "fork here (a new instance from this prefix)"),
            ("e", "fork with the next completion edited"),
            ("Enter", "full JSON of the event at the cursor"),
        ],
        View::Clock => &[
            ("n", "jump to the next timer"),
            ("a", "auto-skip on/off"),
            ("+", "advance by a duration (:advance 90m)"),
        ],
        View::Builds => &[("j k", "scroll the log back / forward")],
        View::Faults => &[
            ("a", "add a rule (a form; :fault RULE types one)"),
            ("t / Space", "switch the selected rule on / off"),
            ("d", "remove the selected rule (asks first)"),
            ("j k", "select a rule"),
        ],
    }
}

/// Whether the instance actions apply in `view`.
pub fn has_instance_actions(view: View) -> bool {
    !matches!(
        view,
        View::Clock | View::Builds | View::Replay | View::Faults
    )
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
        View::Clock => "n next timer · a auto-skip · + advance · ? help",
        View::Builds => "j/k scroll logs · ? help",
        View::Faults => "a add · t on/off · d remove · :fault RULE · ? help",
    }
}
