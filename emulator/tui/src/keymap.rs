//! Every key binding, once, as data (the shape of helix's `keymap/default.rs`): which keys, in
//! which views, do which named [`KeyAction`], with the line the help overlay shows and the `:`
//! command the action corresponds to. `update` dispatches by looking keys up here; `keys` builds
//! the help overlay from it; tests check the README's key table against it.
//!
//! What an action does lives in `update` (one module per view); this table must not know it.

use crate::model::View;
use ratatui::crossterm::event::KeyCode;

/// Where a binding applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every view.
    Global,
    /// Every view that shows instances (see [`has_instance_actions`]).
    Instance,
    /// These views only.
    In(&'static [View]),
}

/// What a key does, by name. `update` matches on these exhaustively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAction {
    /// Open the help overlay.
    Help,
    /// Quit.
    Quit,
    /// The next view.
    NextView,
    /// The previous view.
    PreviousView,
    /// Jump to view 1-9, or 0 for the tenth (which one is the key's digit).
    JumpToView,
    /// Open the `:` command line.
    CommandLine,
    /// Edit the instance filter.
    FilterInstances,
    /// Move the view's cursor or scroll (which way is the key's).
    Move,
    /// Instances: open the selected instance's history.
    OpenHistory,
    /// Instances: cycle the sort key.
    CycleSort,
    /// Instances: clear the filter.
    ClearFilter,
    /// History, replay: the full JSON of the event at the cursor.
    EventJson,
    /// History: the previous execution (continue-as-new).
    PreviousExecution,
    /// History: the next execution.
    NextExecution,
    /// History: follow new events on/off.
    ToggleFollow,
    /// Replay: one step forward.
    StepForward,
    /// Replay: one step back.
    StepBack,
    /// Replay: the first step.
    FirstStep,
    /// Replay: the last step.
    LastStep,
    /// Replay: fork at the step.
    Fork,
    /// Replay: fork with the next completion edited (a form).
    ForkEdited,
    /// Clock: jump to the next timer.
    NextTimer,
    /// Clock: auto-skip on/off.
    ToggleAutoSkip,
    /// Clock: advance by a duration (the command line, prefilled).
    Advance,
    /// Pause or play virtual time (every view).
    TogglePlaying,
    /// Faults: add a rule (a form).
    AddFaultRule,
    /// Faults: switch the selected rule on/off.
    ToggleFaultRule,
    /// Faults: remove the selected rule (asks first).
    RemoveFaultRule,
    /// Start an orchestration (a form).
    Start,
    /// Raise an event on the selected instance (the raise form).
    Raise,
    /// Terminate the selected instance (asks first).
    Terminate,
    /// Suspend the selected instance.
    Suspend,
    /// Resume the selected instance.
    Resume,
    /// Restart the selected instance with the same input.
    Restart,
    /// Purge the selected ended instance (asks first).
    Purge,
    /// Open the replay stepper on the selected instance.
    OpenReplay,
    /// Errors: the selected row's failure in full (type, message, details, the chain).
    FailureDetails,
    /// Builds: the last failed build's compiler output, first located error on top.
    CompilerOutput,
    /// Entities: the selected entity in full (state, lock, every operation of its log).
    EntityInFull,
    /// Entities: signal the selected entity (the command line, prefilled).
    SignalEntity,
}

impl KeyAction {
    /// The `:` command that does the same (the first word of its syntax), if there is one.
    pub fn command(self) -> Option<&'static str> {
        Some(match self {
            KeyAction::Help => "help",
            KeyAction::Quit => "quit",
            KeyAction::NextView
            | KeyAction::PreviousView
            | KeyAction::JumpToView
            | KeyAction::OpenHistory
            | KeyAction::OpenReplay => "view",
            KeyAction::FilterInstances | KeyAction::ClearFilter => "filter",
            KeyAction::CycleSort => "sort",
            KeyAction::Fork => "fork",
            KeyAction::NextTimer => "next",
            KeyAction::ToggleAutoSkip => "autoskip",
            KeyAction::Advance => "advance",
            KeyAction::TogglePlaying => "pause",
            KeyAction::AddFaultRule => "fault",
            KeyAction::Start => "start",
            KeyAction::Raise => "raise",
            KeyAction::Terminate => "terminate",
            KeyAction::Suspend => "suspend",
            KeyAction::Resume => "resume",
            KeyAction::Restart => "restart",
            KeyAction::Purge => "purge",
            KeyAction::SignalEntity => "signal",
            KeyAction::CommandLine
            | KeyAction::Move
            | KeyAction::EventJson
            | KeyAction::PreviousExecution
            | KeyAction::NextExecution
            | KeyAction::ToggleFollow
            | KeyAction::StepForward
            | KeyAction::StepBack
            | KeyAction::FirstStep
            | KeyAction::LastStep
            | KeyAction::ForkEdited
            | KeyAction::ToggleFaultRule
            | KeyAction::RemoveFaultRule
            | KeyAction::FailureDetails
            | KeyAction::CompilerOutput
            | KeyAction::EntityInFull => return None,
        })
    }
}

/// One binding: `keys` in `scope` do `action`; the help overlay shows `label` and `help`
/// (consecutive bindings with the same two share a help line, e.g. `h / l`).
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys.
    pub keys: &'static [KeyCode],
    /// Where.
    pub scope: Scope,
    /// What.
    pub action: KeyAction,
    /// The keys as the help overlay writes them.
    pub label: &'static str,
    /// What the help overlay says they do.
    pub help: &'static str,
}

const fn bind(
    keys: &'static [KeyCode],
    scope: Scope,
    action: KeyAction,
    label: &'static str,
    help: &'static str,
) -> Binding {
    Binding {
        keys,
        scope,
        action,
        label,
        help,
    }
}

use KeyAction as A;
use KeyCode::{
    BackTab, Char, Delete, Down, End, Enter, Home, Left, PageDown, PageUp, Right, Tab, Up,
};
use Scope::{Global, In, Instance};

const DERIVED: &[View] = &[View::Timeline, View::FanOut, View::Errors];

/// Where `n` starts an orchestration: everywhere but the Clock view, where it is the next timer.
const START_VIEWS: &[View] = &[
    View::Instances,
    View::History,
    View::Timeline,
    View::FanOut,
    View::Errors,
    View::Replay,
    View::Builds,
    View::Faults,
    View::Entities,
];

/// Every binding, in help order: global ones, then each view's, then the instance actions.
pub const KEYMAP: &[Binding] = &[
    bind(&[Char('?')], Global, A::Help, "?", "this help"),
    bind(&[Char('q')], Global, A::Quit, "q", "quit"),
    bind(
        &[Tab],
        Global,
        A::NextView,
        "Tab / Shift-Tab",
        "next / previous view",
    ),
    bind(
        &[BackTab],
        Global,
        A::PreviousView,
        "Tab / Shift-Tab",
        "next / previous view",
    ),
    bind(
        &[
            Char('1'),
            Char('2'),
            Char('3'),
            Char('4'),
            Char('5'),
            Char('6'),
            Char('7'),
            Char('8'),
            Char('9'),
            Char('0'),
        ],
        Global,
        A::JumpToView,
        "1-9, 0",
        "jump to a view (0: Entities)",
    ),
    bind(
        &[Char(':')],
        Global,
        A::CommandLine,
        ":",
        "command line (:help lists commands)",
    ),
    bind(
        &[Char('/')],
        Global,
        A::FilterInstances,
        "/",
        "filter instances",
    ),
    bind(
        &[Char('j'), Char('k'), Down, Up],
        Global,
        A::Move,
        "j k / ↓ ↑",
        "move",
    ),
    bind(
        &[PageDown, PageUp, Char('g'), Char('G'), Home, End],
        Global,
        A::Move,
        "PgDn PgUp / g G",
        "page / first / last",
    ),
    // Not Space: the faults view switches a rule with it, and this works in every view.
    bind(
        &[Char('.')],
        Global,
        A::TogglePlaying,
        ".",
        "pause / play virtual time (:pause, :play)",
    ),
    // Instances.
    bind(
        &[Enter, Char('l'), Right],
        In(&[View::Instances]),
        A::OpenHistory,
        "Enter / l",
        "open the history (a Diverged instance: its choices)",
    ),
    bind(
        &[Char('s')],
        In(&[View::Instances]),
        A::CycleSort,
        "s",
        "cycle sort: created, name, status, updated",
    ),
    bind(
        &[Char('c')],
        In(&[View::Instances]),
        A::ClearFilter,
        "c",
        "clear the filter",
    ),
    // History.
    bind(
        &[Enter],
        In(&[View::History]),
        A::EventJson,
        "Enter",
        "full JSON of the event",
    ),
    bind(
        &[Char('h'), Left],
        In(&[View::History]),
        A::PreviousExecution,
        "h / l",
        "previous / next execution (continue-as-new)",
    ),
    bind(
        &[Char('l'), Right],
        In(&[View::History]),
        A::NextExecution,
        "h / l",
        "previous / next execution (continue-as-new)",
    ),
    bind(
        &[Char('f')],
        In(&[View::History]),
        A::ToggleFollow,
        "f",
        "follow new events on/off",
    ),
    // Timeline, fan-out, errors.
    bind(
        &[Char('j'), Char('k')],
        In(DERIVED),
        A::Move,
        "j k",
        "scroll",
    ),
    bind(
        &[Enter],
        In(&[View::Errors]),
        A::FailureDetails,
        "Enter",
        "the selected failure in full (details, chain to the root)",
    ),
    // Replay.
    bind(
        &[Char('l'), Right],
        In(&[View::Replay]),
        A::StepForward,
        "l / →",
        "step forward",
    ),
    bind(
        &[Char('h'), Left],
        In(&[View::Replay]),
        A::StepBack,
        "h / ←",
        "step back",
    ),
    bind(
        &[Char('g'), Home],
        In(&[View::Replay]),
        A::FirstStep,
        "g / G",
        "first / last step",
    ),
    bind(
        &[Char('G'), End],
        In(&[View::Replay]),
        A::LastStep,
        "g / G",
        "first / last step",
    ),
    bind(
        &[Char('f')],
        In(&[View::Replay]),
        A::Fork,
        "f",
        "fork here (a new instance from this prefix)",
    ),
    bind(
        &[Char('e')],
        In(&[View::Replay]),
        A::ForkEdited,
        "e",
        "fork with the next completion edited",
    ),
    bind(
        &[Char('F')],
        In(&[View::Replay]),
        A::OpenReplay,
        "F",
        "reload the history (it grew since the stepper opened)",
    ),
    bind(
        &[Enter],
        In(&[View::Replay]),
        A::EventJson,
        "Enter",
        "full JSON of the event at the cursor",
    ),
    // Clock.
    bind(
        &[Char('n')],
        In(&[View::Clock]),
        A::NextTimer,
        "n",
        "jump to the next timer",
    ),
    bind(
        &[Char('a')],
        In(&[View::Clock]),
        A::ToggleAutoSkip,
        "a",
        "auto-skip on/off",
    ),
    bind(
        &[Char('+')],
        In(&[View::Clock]),
        A::Advance,
        "+",
        "advance by a duration (:advance 90m)",
    ),
    // Builds.
    bind(
        &[Char('j'), Char('k')],
        In(&[View::Builds]),
        A::Move,
        "j k",
        "scroll the log back / forward",
    ),
    bind(
        &[Enter],
        In(&[View::Builds]),
        A::CompilerOutput,
        "Enter",
        "compiler output of the last failed build",
    ),
    // Faults.
    bind(
        &[Char('a')],
        In(&[View::Faults]),
        A::AddFaultRule,
        "a",
        "add a rule (a form; :fault RULE types one)",
    ),
    bind(
        &[Char('t'), Char(' ')],
        In(&[View::Faults]),
        A::ToggleFaultRule,
        "t / Space",
        "switch the selected rule on / off",
    ),
    bind(
        &[Char('d'), Delete],
        In(&[View::Faults]),
        A::RemoveFaultRule,
        "d",
        "remove the selected rule (asks first)",
    ),
    bind(
        &[Char('j'), Char('k')],
        In(&[View::Faults]),
        A::Move,
        "j k",
        "select a rule",
    ),
    // Entities.
    bind(
        &[Char('j'), Char('k')],
        In(&[View::Entities]),
        A::Move,
        "j k",
        "select an entity (its state and operation log show below)",
    ),
    bind(
        &[Enter],
        In(&[View::Entities]),
        A::EntityInFull,
        "Enter",
        "the entity in full: state, lock, every operation of its log",
    ),
    bind(
        &[Char('s')],
        In(&[View::Entities]),
        A::SignalEntity,
        "s",
        "signal it (:signal @counter@a add 5)",
    ),
    // Every view but the clock's.
    bind(
        &[Char('n')],
        In(START_VIEWS),
        A::Start,
        "n",
        "start an orchestration (name + JSON input)",
    ),
    // The selected instance.
    bind(
        &[Char('r')],
        Instance,
        A::Raise,
        "r",
        "raise an event (a form lists the events it waits for)",
    ),
    bind(
        &[Char('t')],
        Instance,
        A::Terminate,
        "t",
        "terminate (asks first)",
    ),
    bind(
        &[Char('p')],
        Instance,
        A::Suspend,
        "p / u",
        "suspend / resume",
    ),
    bind(
        &[Char('u')],
        Instance,
        A::Resume,
        "p / u",
        "suspend / resume",
    ),
    bind(
        &[Char('R')],
        Instance,
        A::Restart,
        "R",
        "restart with the same input",
    ),
    bind(
        &[Char('D')],
        Instance,
        A::Purge,
        "D",
        "purge an ended instance (asks first)",
    ),
    bind(
        &[Char('F')],
        Instance,
        A::OpenReplay,
        "F",
        "open the replay stepper",
    ),
];

/// Help lines for things that are not keys of a view: overlays and the mouse (shown after the
/// global bindings).
pub const NOTES: &[(&str, &str)] = &[
    ("Esc", "close an overlay"),
    (
        ": then Tab, ↑ ↓",
        "complete a command or name / walk earlier commands",
    ),
    (
        "mouse",
        "click selects, wheel scrolls, click a tab to switch",
    ),
];

/// Whether the instance actions apply in `view`.
pub fn has_instance_actions(view: View) -> bool {
    !matches!(
        view,
        View::Clock | View::Builds | View::Replay | View::Faults | View::Entities
    )
}

impl Scope {
    /// Whether a binding of this scope applies in `view`.
    pub fn applies(self, view: View) -> bool {
        match self {
            Global => true,
            Instance => has_instance_actions(view),
            In(views) => views.contains(&view),
        }
    }
}

/// What `key` does in `view`: the view's own bindings first, then the global ones, then the
/// instance actions (the order `update` has always tried them in).
pub fn lookup(view: View, key: KeyCode) -> Option<KeyAction> {
    let find = |wanted: fn(Scope) -> bool| {
        KEYMAP
            .iter()
            .find(|binding| {
                wanted(binding.scope) && binding.scope.applies(view) && binding.keys.contains(&key)
            })
            .map(|binding| binding.action)
    };
    find(|scope| matches!(scope, In(_)))
        .or_else(|| find(|scope| scope == Global))
        .or_else(|| find(|scope| scope == Instance))
}

/// The help lines of the bindings `select` picks, one per run of equal (label, help).
pub fn help_lines(select: impl Fn(&Binding) -> bool) -> Vec<(&'static str, &'static str)> {
    let mut lines: Vec<(&'static str, &'static str)> = Vec::new();
    for binding in KEYMAP.iter().filter(|binding| select(binding)) {
        let line = (binding.label, binding.help);
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::{self, COMMANDS};

    #[test]
    fn every_key_resolves_to_its_binding_unless_its_own_view_rebinds_it() {
        for binding in KEYMAP {
            for view in View::ALL {
                if !binding.scope.applies(view) {
                    continue;
                }
                for key in binding.keys {
                    let found = lookup(view, *key);
                    let rebound_here = KEYMAP.iter().any(|other| {
                        matches!(other.scope, In(_))
                            && other.scope.applies(view)
                            && other.keys.contains(key)
                            && Some(other.action) == found
                    });
                    assert!(
                        found == Some(binding.action) || rebound_here,
                        "{key:?} in {view:?} should do {:?} but does {found:?}",
                        binding.action
                    );
                }
            }
        }
    }

    #[test]
    fn every_command_a_binding_names_is_a_command_line_command_listed_in_help() {
        for binding in KEYMAP {
            let Some(command) = binding.action.command() else {
                continue;
            };
            if let Err(error) = cmdline::parse(command, |_| false) {
                assert!(
                    !error.contains("unknown command"),
                    "{:?} names :{command}, which the command line does not know",
                    binding.action
                );
            }
            assert!(
                COMMANDS
                    .iter()
                    .flat_map(|(syntax, _)| syntax.split(" / "))
                    .any(|syntax| syntax.split_whitespace().next() == Some(command)),
                ":{command} is missing from the commands the help overlay lists"
            );
        }
    }

    #[test]
    fn every_binding_has_keys_and_a_help_line() {
        for binding in KEYMAP {
            assert!(!binding.keys.is_empty(), "{binding:?}");
            assert!(
                !binding.label.is_empty() && !binding.help.is_empty(),
                "{binding:?}"
            );
        }
    }

    /// The README's key table, found above this crate (the crate may move; the README does not).
    fn readme_key_table() -> String {
        let start = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for dir in start.ancestors() {
            if let Ok(text) = std::fs::read_to_string(dir.join("README.md")) {
                if let Some(at) = text.find("| key | does |") {
                    let table = &text[at..];
                    let end = table.find("\n\n").unwrap_or(table.len());
                    return table[..end].to_string();
                }
            }
        }
        panic!("no README.md with a `| key | does |` table above {start:?}");
    }

    #[test]
    fn the_readme_key_table_lists_every_bound_character() {
        let table = readme_key_table();
        let mut missing = Vec::new();
        for binding in KEYMAP {
            for key in binding.keys {
                let KeyCode::Char(c) = key else { continue };
                // Digits are written as a range (`1`-`9`); Space is written out.
                if c.is_ascii_digit() || *c == ' ' {
                    continue;
                }
                if !table.contains(&format!("`{c}`")) && !missing.contains(c) {
                    missing.push(*c);
                }
            }
        }
        assert!(
            missing.is_empty(),
            "README's key table does not list {missing:?}"
        );
    }
}
