//! The `:` command line: every action as text (`:start OrderSaga {"order_id":"o1","amount":5}`,
//! `:advance 3d`, `:raise Approval true`). Parsing is pure; `update` decides what each action
//! does (and asks before destructive ones).

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
pub const COMMANDS: [(&str, &str); 18] = [
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

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim();
    match text.find(char::is_whitespace) {
        Some(at) => (&text[..at], text[at..].trim()),
        None => (text, ""),
    }
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
