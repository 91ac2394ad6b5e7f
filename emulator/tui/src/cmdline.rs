//! The `:` command line: every action as text (`:start OrderSaga {"order_id":"o1","amount":5}`,
//! `:advance 3d`, `:raise Approval true`). Parsing is pure; `update` decides what each action
//! does (and asks before destructive ones). Also pure here: Tab completion of command names and
//! of the word a command takes ([`complete`], over [`Candidates`] the caller gathers) and the
//! session's history of entered commands ([`History`], walked with Up/Down).

use crate::model::{SortKey, View};
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::faults::{FaultRule, parse_compact};
use serde_json::Value;
use std::time::Duration;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `start NAME [JSON]`.
    Start {
        /// Orchestration name.
        name: String,
        /// Input (null when omitted).
        input: Value,
    },
    /// `raise [ID] EVENT [JSON]`.
    Raise {
        /// The instance (default: the selected one).
        instance: Option<String>,
        /// Event name.
        name: String,
        /// Payload (null when omitted).
        data: Value,
    },
    /// `terminate [ID] [REASON...]`.
    Terminate {
        /// The instance (default: the selected one).
        instance: Option<String>,
        /// Why.
        reason: String,
    },
    /// `suspend [ID]`.
    Suspend(Option<String>),
    /// `resume [ID]`.
    Resume(Option<String>),
    /// `restart [ID]`.
    Restart(Option<String>),
    /// `purge [ID]`.
    Purge(Option<String>),
    /// `advance DURATION` (`90m`, `3d`, `1h30m`).
    Advance(Duration),
    /// `next`: jump to the next timer.
    NextTimer,
    /// `autoskip [on|off]` (toggles without an argument).
    AutoSkip(Option<bool>),
    /// `play` (true) / `pause` (false): virtual time runs at real speed, or stops.
    Play(bool),
    /// `fork`: fork the stepper's instance at its step.
    Fork,
    /// `signal ENTITY OPERATION [INPUT]`: a one-way operation to an entity.
    Signal {
        /// The entity, `@name@key`.
        entity: String,
        /// The operation.
        operation: String,
        /// The input: JSON, else the text as a string (null when omitted).
        input: Value,
    },
    /// `fault RULE`: add a fault rule in the compact form (docs/faults.md).
    Fault {
        /// The rule as written.
        spec: String,
        /// The rule, validated.
        rule: Box<FaultRule>,
    },
    /// `view NAME`.
    View(View),
    /// `filter TEXT` (empty clears).
    Filter(String),
    /// `sort created|name|status|updated`.
    Sort(SortKey),
    /// `help`.
    Help,
    /// `quit` / `q`.
    Quit,
}

/// Every command with its syntax, for the help overlay and errors.
pub const COMMANDS: [(&str, &str); 20] = [
    ("start NAME [JSON]", "start an orchestration"),
    (
        "raise [ID] EVENT [JSON]",
        "raise an external event (selected instance by default)",
    ),
    ("terminate [ID] [REASON]", "terminate (asks first)"),
    ("suspend [ID] / resume [ID]", "suspend or resume"),
    ("restart [ID]", "start it again with the same input"),
    (
        "purge [ID]",
        "delete an ended instance and its history (asks first)",
    ),
    ("advance DURATION", "move virtual time: 90m, 3d, 1h30m"),
    ("next", "jump to the next pending timer"),
    (
        "autoskip [on|off]",
        "jump to the next timer whenever nothing else can run",
    ),
    (
        "pause / play",
        "stop virtual time, or let it run at real speed (key .)",
    ),
    ("fork", "fork the replayed instance at the current step"),
    (
        "fault RULE",
        "add a fault rule: activity=ChargeCard,attempts=1,error=T:msg",
    ),
    ("faults", "show the fault rules"),
    (
        "signal ENTITY OPERATION [INPUT]",
        "signal an entity: signal @counter@a add 5 (input: JSON, else text)",
    ),
    ("entities", "show the entities"),
    (
        "view NAME",
        "switch view: instances, history, timeline, ...",
    ),
    ("filter TEXT", "filter instances by name, status or id"),
    ("sort KEY", "sort instances: created, name, status, updated"),
    ("help", "show the keys of this view"),
    ("quit", "leave durable-emu"),
];

/// Parses a command line (without the `:`). `is_instance` says whether a word is a known
/// instance id, so `:terminate` takes an optional id before its reason.
pub fn parse(text: &str, is_instance: impl Fn(&str) -> bool) -> Result<Action, String> {
    let text = text.trim();
    let (word, rest) = split_word(text);
    let optional_id = |rest: &str| -> (Option<String>, String) {
        let (first, after) = split_word(rest);
        if !first.is_empty() && is_instance(first) {
            (Some(first.to_string()), after.to_string())
        } else {
            (None, rest.to_string())
        }
    };
    let only_id = |rest: &str| -> Result<Option<String>, String> {
        let (id, extra) = optional_id(rest);
        if !extra.is_empty() {
            return Err(format!("'{extra}' is not a known instance id"));
        }
        Ok(id)
    };
    Ok(match word.to_ascii_lowercase().as_str() {
        "" => return Err("type a command, e.g. start HelloSequence (:help lists them)".into()),
        "start" | "s" => {
            let (name, input) = split_word(rest);
            if name.is_empty() {
                return Err("start needs an orchestration name: start NAME [JSON]".into());
            }
            Action::Start {
                name: name.to_string(),
                input: json_or_null(input, "the input")?,
            }
        }
        "raise" | "r" => {
            let (first, after) = split_word(rest);
            if first.is_empty() {
                return Err("raise needs an event name: raise [ID] EVENT [JSON]".into());
            }
            // `raise EVENT JSON` unless what follows the first word is not JSON and the first
            // word is an instance: then `raise ID EVENT JSON`.
            if serde_json::from_str::<Value>(after).is_ok() || after.trim().is_empty() {
                Action::Raise {
                    instance: None,
                    name: first.to_string(),
                    data: json_or_null(after, "the payload")?,
                }
            } else {
                let (name, data) = split_word(after);
                Action::Raise {
                    instance: Some(first.to_string()),
                    name: name.to_string(),
                    data: json_or_null(data, "the payload")?,
                }
            }
        }
        "terminate" | "kill" => {
            let (instance, reason) = optional_id(rest);
            Action::Terminate {
                instance,
                reason: if reason.is_empty() {
                    "terminated from the UI".into()
                } else {
                    reason
                },
            }
        }
        "suspend" => Action::Suspend(only_id(rest)?),
        "resume" => Action::Resume(only_id(rest)?),
        "restart" => Action::Restart(only_id(rest)?),
        "purge" => Action::Purge(only_id(rest)?),
        "advance" | "ff" | "fast-forward" => {
            if rest.is_empty() {
                return Err("advance needs a duration, e.g. advance 90m or advance 3d".into());
            }
            Action::Advance(parse_duration(rest)?)
        }
        "next" | "next-timer" => Action::NextTimer,
        "autoskip" | "auto-skip" => Action::AutoSkip(match rest.to_ascii_lowercase().as_str() {
            "" => None,
            "on" | "true" | "yes" => Some(true),
            "off" | "false" | "no" => Some(false),
            other => return Err(format!("autoskip takes on or off, not '{other}'")),
        }),
        "pause" | "play" => {
            if !rest.is_empty() {
                return Err(format!("{word} takes nothing after it, not '{rest}'"));
            }
            Action::Play(word.eq_ignore_ascii_case("play"))
        }
        "fork" => Action::Fork,
        "fault" => {
            if rest.is_empty() {
                return Err(
                    "fault needs a rule, e.g. fault activity=ChargeCard,attempts=1-2,error=CardDeclined:no funds"
                        .into(),
                );
            }
            let rule = parse_compact(rest, 0).map_err(|error| error.to_string())?;
            Action::Fault {
                spec: rest.to_string(),
                rule: Box::new(rule),
            }
        }
        "faults" => Action::View(View::Faults),
        "entities" => Action::View(View::Entities),
        "signal" => {
            let (entity, after) = split_word(rest);
            let (operation, input) = split_word(after);
            if entity.is_empty() || operation.is_empty() {
                return Err(
                    "signal needs an entity and an operation: signal @counter@a add 5".into(),
                );
            }
            if let Err(error) = entity.parse::<durable_sdk::EntityId>() {
                return Err(format!(
                    "'{entity}' is not an entity id ({error}); write @name@key, e.g. @counter@a"
                ));
            }
            Action::Signal {
                entity: entity.to_string(),
                operation: operation.to_string(),
                input: json_or_text(input),
            }
        }
        "view" | "v" => {
            Action::View(View::parse(rest).ok_or_else(|| format!("no view named '{rest}'"))?)
        }
        "filter" | "f" => Action::Filter(rest.to_string()),
        "sort" => Action::Sort(
            SortKey::parse(rest)
                .ok_or_else(|| format!("sort by created, name, status or updated, not '{rest}'"))?,
        ),
        "help" | "h" | "?" => Action::Help,
        "quit" | "q" | "exit" => Action::Quit,
        other => return Err(format!("unknown command '{other}' (:help lists them)")),
    })
}

// ----- completion -------------------------------------------------------------------------------

/// The command names Tab completes (each command's main spelling, as [`COMMANDS`] lists them).
pub const COMMAND_NAMES: [&str; 20] = [
    "start",
    "raise",
    "terminate",
    "suspend",
    "resume",
    "restart",
    "purge",
    "advance",
    "next",
    "autoskip",
    "fork",
    "fault",
    "faults",
    "signal",
    "entities",
    "view",
    "filter",
    "sort",
    "help",
    "quit",
];

/// The words Tab can complete a command's argument with, gathered by the caller from what the UI
/// knows (the loaded build's orchestrations, the listed instances).
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// Orchestration names (for `start`).
    pub orchestrations: Vec<String>,
    /// Instance ids (for `raise`, `terminate`, `suspend`, `resume`, `restart`, `purge`).
    pub instances: Vec<String>,
    /// Entity ids (for `signal`).
    pub entities: Vec<String>,
}

/// What Tab did to the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Nothing to complete here: why, for the status line.
    Nothing(String),
    /// One match: the whole line with the word completed and a space after it.
    One(String),
    /// Several matches: the line with the word extended as far as they agree, and the matches.
    Many {
        /// The line.
        text: String,
        /// Every match, sorted.
        options: Vec<String>,
    },
}

/// Completes the last word of `text` (the command line without the `:`): a command name while the
/// first word is typed, else the argument the command takes (an orchestration name for `start`,
/// an instance id for the lifecycle commands and `raise`, a view, a sort key, on/off).
pub fn complete(text: &str, candidates: &Candidates) -> Completion {
    let start = text.len() - text.trim_start().len();
    let after_space = text
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map(|(at, c)| at + c.len_utf8());
    let (head, word) = match after_space {
        Some(end) if end > start => (&text[..end], &text[end..]),
        _ => (&text[..start], &text[start..]),
    };
    let before: Vec<&str> = head.split_whitespace().collect();
    let owned: Vec<String>;
    let (what, words): (&str, Vec<&str>) = match before.as_slice() {
        [] => ("command", COMMAND_NAMES.to_vec()),
        [command] => match command.to_ascii_lowercase().as_str() {
            "start" | "s" => (
                "orchestration",
                candidates
                    .orchestrations
                    .iter()
                    .map(String::as_str)
                    .collect(),
            ),
            "raise" | "r" | "terminate" | "kill" | "suspend" | "resume" | "restart" | "purge" => (
                "instance",
                candidates.instances.iter().map(String::as_str).collect(),
            ),
            "signal" => (
                "entity",
                candidates.entities.iter().map(String::as_str).collect(),
            ),
            "view" | "v" => {
                owned = View::ALL
                    .iter()
                    .map(|view| view.title().to_ascii_lowercase())
                    .collect();
                ("view", owned.iter().map(String::as_str).collect())
            }
            "sort" => ("sort key", vec!["created", "name", "status", "updated"]),
            "autoskip" | "auto-skip" => ("switch", vec!["on", "off"]),
            other => {
                return Completion::Nothing(if COMMAND_NAMES.contains(&other) {
                    format!("nothing to complete after {other}")
                } else {
                    format!("unknown command '{other}' (:help lists them)")
                });
            }
        },
        [command, ..] => {
            return Completion::Nothing(format!(
                "nothing to complete there: {command} completes only its first word"
            ));
        }
    };
    let lower = word.to_ascii_lowercase();
    let mut options: Vec<String> = words
        .into_iter()
        .filter(|candidate| candidate.to_ascii_lowercase().starts_with(&lower))
        .map(str::to_string)
        .collect();
    options.sort();
    options.dedup();
    match options.len() {
        0 if word.is_empty() => Completion::Nothing(format!("no {what} to complete with")),
        0 => Completion::Nothing(format!("no {what} starts with '{word}'")),
        1 => Completion::One(format!("{head}{} ", options[0])),
        _ => {
            // Every option starts with the word (without case), so their common prefix is at
            // least as long: the word as the names spell it, extended as far as they agree.
            Completion::Many {
                text: format!("{head}{}", common_prefix(&options)),
                options,
            }
        }
    }
}

/// The longest prefix every option shares, compared without case, spelled as the first has it.
fn common_prefix(options: &[String]) -> String {
    let Some(first) = options.first() else {
        return String::new();
    };
    let mut end = first.len();
    for option in &options[1..] {
        let shared = first
            .char_indices()
            .zip(option.chars())
            .find(|((_, a), b)| !a.eq_ignore_ascii_case(b))
            .map_or_else(|| first.len().min(option.len()), |((index, _), _)| index);
        end = end.min(shared);
    }
    first[..end].to_string()
}

// ----- history ----------------------------------------------------------------------------------

/// Commands kept for Up/Down: enough for a session, bounded so a long one cannot grow it forever.
pub const HISTORY_CAPACITY: usize = 200;

/// The commands entered this session, oldest first, and where Up/Down are in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    entries: Vec<String>,
    /// The entry shown while walking (`None`: the line being typed).
    at: Option<usize>,
    /// The line being typed when Up was first pressed (Down past the newest entry brings it back).
    draft: String,
}

impl History {
    /// Remembers an entered command (not twice in a row) and ends any walk.
    pub fn push(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.entries.last().map(String::as_str) != Some(line) {
            if self.entries.len() == HISTORY_CAPACITY {
                self.entries.remove(0);
            }
            self.entries.push(line.to_string());
        }
        self.reset();
    }

    /// Ends a walk (the line was entered or closed).
    pub fn reset(&mut self) {
        self.at = None;
        self.draft.clear();
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> &[String] {
        &self.entries
    }

    /// Up: the entry before the one shown (the newest, from the line being typed, which is kept);
    /// `None` when there is nothing older.
    pub fn older(&mut self, typed: &str) -> Option<&str> {
        let next = match self.at {
            None => {
                if self.entries.is_empty() {
                    return None;
                }
                self.draft = typed.to_string();
                self.entries.len() - 1
            }
            Some(0) => return None,
            Some(at) => at - 1,
        };
        self.at = Some(next);
        self.entries.get(next).map(String::as_str)
    }

    /// Down: the entry after the one shown, then the line that was being typed; `None` when not
    /// walking.
    pub fn newer(&mut self) -> Option<String> {
        let at = self.at?;
        if at + 1 < self.entries.len() {
            self.at = Some(at + 1);
            return self.entries.get(at + 1).cloned();
        }
        self.at = None;
        Some(std::mem::take(&mut self.draft))
    }
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim()),
        None => (text, ""),
    }
}

/// An entity operation's input: JSON when it parses (`5`, `{"to":"b"}`, `"text"`), else the text
/// as a string (`hello world`), null when empty.
fn json_or_text(text: &str) -> Value {
    let text = text.trim();
    if text.is_empty() {
        return Value::Null;
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn json_or_null(text: &str, what: &str) -> Result<Value, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|error| format!("{what} is not JSON ({error}); a string needs quotes: \"Tokyo\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_known(text: &str) -> Result<Action, String> {
        parse(text, |word| word == "abc123")
    }

    #[test]
    fn start_takes_a_name_and_json_input() {
        assert_eq!(
            parse_known(r#"start OrderSaga {"order_id":"o1","amount":5}"#),
            Ok(Action::Start {
                name: "OrderSaga".into(),
                input: json!({"order_id": "o1", "amount": 5})
            })
        );
        assert!(
            parse_known("start X {oops")
                .unwrap_err()
                .contains("not JSON")
        );
    }

    #[test]
    fn raise_targets_the_selected_instance_unless_an_id_comes_first() {
        assert_eq!(
            parse_known("raise Approval true"),
            Ok(Action::Raise {
                instance: None,
                name: "Approval".into(),
                data: json!(true)
            })
        );
        assert_eq!(
            parse_known("raise abc123 Approval false"),
            Ok(Action::Raise {
                instance: Some("abc123".into()),
                name: "Approval".into(),
                data: json!(false)
            })
        );
    }

    #[test]
    fn advance_takes_human_durations() {
        assert_eq!(
            parse_known("advance 3d"),
            Ok(Action::Advance(Duration::from_secs(259_200)))
        );
        assert_eq!(
            parse_known("advance 90m"),
            Ok(Action::Advance(Duration::from_secs(5_400)))
        );
        assert!(parse_known("advance soon").is_err());
    }

    #[test]
    fn fault_takes_a_compact_rule_and_refuses_an_invalid_one_naming_the_field() {
        let Ok(Action::Fault { spec, rule }) = parse_known(
            "fault activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds",
        ) else {
            panic!("a fault action");
        };
        assert_eq!(
            spec,
            "activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds"
        );
        assert_eq!(rule.target.name, "ChargeCard");
        let error = parse_known("fault activity=A,attempts=3-1,timeout").unwrap_err();
        assert!(error.contains("`attempts`"), "{error}");
        assert_eq!(parse_known("faults"), Ok(Action::View(View::Faults)));
    }

    fn candidates() -> Candidates {
        Candidates {
            orchestrations: vec![
                "FanOutFanIn".into(),
                "HelloSequence".into(),
                "OrderSaga".into(),
                "OrderSagaV2".into(),
            ],
            instances: vec!["abc123".into(), "abd999".into()],
            entities: vec!["@counter@a".into()],
        }
    }

    #[test]
    fn tab_completes_a_command_name_then_the_word_it_takes() {
        let known = candidates();
        assert_eq!(complete("sta", &known), Completion::One("start ".into()));
        assert_eq!(
            complete("start hel", &known),
            Completion::One("start HelloSequence ".into())
        );
        assert_eq!(
            complete("purge abc", &known),
            Completion::One("purge abc123 ".into())
        );
        assert_eq!(
            complete("view time", &known),
            Completion::One("view timeline ".into())
        );
        assert_eq!(
            complete("  autoskip o", &known),
            Completion::Many {
                text: "  autoskip o".into(),
                options: vec!["off".into(), "on".into()]
            }
        );
    }

    #[test]
    fn several_matches_extend_the_word_as_far_as_they_agree_and_are_listed() {
        let known = candidates();
        assert_eq!(
            complete("start ord", &known),
            Completion::Many {
                text: "start OrderSaga".into(),
                options: vec!["OrderSaga".into(), "OrderSagaV2".into()]
            }
        );
        assert_eq!(
            complete("re", &known),
            Completion::Many {
                text: "res".into(),
                options: vec!["restart".into(), "resume".into()]
            }
        );
        assert_eq!(
            complete("terminate ab", &known),
            Completion::Many {
                text: "terminate ab".into(),
                options: vec!["abc123".into(), "abd999".into()]
            }
        );
    }

    #[test]
    fn tab_with_nothing_to_complete_says_why_and_changes_nothing() {
        let known = candidates();
        let Completion::Nothing(why) = complete("start Zed", &known) else {
            panic!("no match");
        };
        assert!(why.contains("no orchestration starts with 'Zed'"), "{why}");
        let Completion::Nothing(why) = complete("advance 9", &known) else {
            panic!("advance takes a duration, not a name");
        };
        assert!(why.contains("advance"), "{why}");
        let Completion::Nothing(why) = complete("start HelloSequence nu", &known) else {
            panic!("the input is not completed");
        };
        assert!(why.contains("first word"), "{why}");
    }

    #[test]
    fn up_walks_back_through_entered_commands_and_down_returns_to_the_typed_line() {
        let mut history = History::default();
        assert_eq!(history.older("x"), None, "nothing entered yet");
        history.push("start HelloSequence");
        history.push("advance 1h");
        history.push("advance 1h");
        history.push("   ");
        assert_eq!(history.entries(), ["start HelloSequence", "advance 1h"]);
        assert_eq!(history.older("sor"), Some("advance 1h"));
        assert_eq!(history.older("ignored"), Some("start HelloSequence"));
        assert_eq!(history.older("ignored"), None, "the oldest stays");
        assert_eq!(history.newer().as_deref(), Some("advance 1h"));
        assert_eq!(history.newer().as_deref(), Some("sor"), "the draft is back");
        assert_eq!(history.newer(), None, "not walking any more");
    }

    #[test]
    fn history_keeps_at_most_its_capacity_dropping_the_oldest() {
        let mut history = History::default();
        for index in 0..=HISTORY_CAPACITY {
            history.push(&format!("advance {index}m"));
        }
        assert_eq!(history.entries().len(), HISTORY_CAPACITY);
        assert_eq!(history.entries()[0], "advance 1m");
    }

    #[test]
    fn every_command_name_is_a_command_the_parser_knows() {
        for name in COMMAND_NAMES {
            if let Err(error) = parse(name, |_| false) {
                assert!(!error.contains("unknown command"), "{name}: {error}");
            }
        }
    }

    #[test]
    fn lifecycle_commands_take_an_optional_known_id() {
        assert_eq!(
            parse_known("purge abc123"),
            Ok(Action::Purge(Some("abc123".into())))
        );
        assert_eq!(parse_known("suspend"), Ok(Action::Suspend(None)));
        assert_eq!(
            parse_known("terminate abc123 took too long"),
            Ok(Action::Terminate {
                instance: Some("abc123".into()),
                reason: "took too long".into()
            })
        );
        assert!(parse_known("resume nope").is_err());
        assert!(
            parse_known("frobnicate")
                .unwrap_err()
                .contains("unknown command")
        );
    }
}
