//! Fault injection rules: what can go wrong on purpose, where, and when (issue "Fault injection").
//!
//! A rule has a target (an activity, orchestration, sub-orchestration or external event, by name
//! glob, optionally narrowed to instance ids; an entity operation, by entity id glob and
//! optionally operation glob; or a Durable HTTP request, by URL glob and optionally method glob),
//! a trigger (attempts, the n-th call, every call, a
//! seeded probability, or from a virtual time on), an optional limit, and one effect. Rules come
//! from TOML scenario files, a compact command-line form, or the engine handle; both text forms go
//! through one validation that names the field at fault and the values it accepts.
//!
//! Pure: deciding whether a rule fires is a function of the rule, the call and the rule's own
//! counters. A seeded probability draws once per call and attempt: it hashes the seed with the
//! call's identity (kind, instance, name, input, the execution's generation) and its attempt, so
//! every call of a fan-out gets its own draw, and the same scenario gives the same decisions
//! whatever the order work is dispatched in or however many workers run it. Carrying out an
//! effect, and counting the calls an execution made, is the engine's job
//! (`engine/core/faults.rs`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// What kind of thing a rule targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// An activity, when it is dispatched.
    Activity,
    /// Any orchestration instance (sub-orchestrations included), when it starts.
    Orchestration,
    /// A sub-orchestration instance, when it starts.
    SubOrchestration,
    /// An external event, when it is raised or sent.
    Event,
    /// An entity operation, when it is about to run. The rule's `name` is the operation glob
    /// and its `instance` the entity id glob (`entity=@account@*,operation=withdraw`).
    Entity,
    /// A Durable HTTP request (each request of a call: the first and every poll), when it is
    /// scheduled. The rule's `name` is the URL glob and its `method` the method glob
    /// (`http=http://127.0.0.1:8088/jobs/*,method=GET`).
    Http,
}

impl TargetKind {
    fn label(self) -> &'static str {
        match self {
            TargetKind::Activity => "activity",
            TargetKind::Orchestration => "orchestration",
            TargetKind::SubOrchestration => "sub-orchestration",
            TargetKind::Event => "event",
            TargetKind::Entity => "entity",
            TargetKind::Http => "http",
        }
    }
}

/// Where a rule applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultTarget {
    /// The kind of thing.
    pub kind: TargetKind,
    /// Name glob (`*` and `?`), e.g. `Charge*`.
    pub name: String,
    /// Instance id glob; any instance when absent.
    pub instance: Option<String>,
    /// For an `http` target: the method glob (upper case); any method when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// When a rule fires (among calls its target matches).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Every matching call.
    Every,
    /// Attempts `first..=last`: the n-th time an instance makes the same call (same name and
    /// input), which is the retry attempt for calls retried by a policy.
    Attempts {
        /// First attempt that fails (1-based).
        first: u32,
        /// Last attempt that fails.
        last: u32,
    },
    /// Only the n-th matching call seen by this rule.
    NthCall(u64),
    /// Each matching call with probability `p`, decided by a hash of `seed`, the call's identity
    /// and its attempt (see [`Call`]).
    Probability {
        /// Between 0 and 1.
        p: f64,
        /// Seed of the decision.
        seed: u64,
    },
    /// Every matching call at or after this virtual time.
    From(DateTime<Utc>),
    /// Every matching call once this much virtual time has passed since the rule was added
    /// (becomes `From` when the engine adds it).
    After(Duration),
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultEffect {
    /// The call fails with this error instead of running.
    Fail {
        /// Error type, e.g. `CardDeclined`.
        error_type: String,
        /// Message.
        message: String,
        /// Retry policies give up at once.
        non_retriable: bool,
    },
    /// The call fails as if the code panicked.
    Panic {
        /// The panic message.
        message: String,
    },
    /// The call starts this much virtual time later.
    Delay(Duration),
    /// The call never finishes (as if it hung past every timeout).
    Timeout,
    /// The activity runs but its result is lost; it is delivered again (at-least-once).
    LoseResult,
    /// The activity runs twice; the second result is a duplicate the engine ignores.
    RunTwice,
    /// The event is never delivered.
    Drop,
    /// The event is delivered twice.
    Duplicate,
    /// The host crashes at this point: everything since the last commit is lost and the engine
    /// recovers from the store, as after a restart.
    Crash,
    /// An HTTP request is answered with this response without reaching the server.
    Answer {
        /// The status, 100 to 599.
        status: u16,
        /// The body.
        body: String,
        /// Response headers (names lower-case).
        headers: std::collections::BTreeMap<String, String>,
    },
    /// An HTTP request whose `poll` index is below this is answered `202 Accepted` with
    /// `Location` = its own URI and `Retry-After: 1`, without reaching the server; from that
    /// poll on, requests go through (the rule does not fire on them).
    Pending(u32),
    /// An HTTP request fails with `HttpTimeout` once its own timeout has passed on the virtual
    /// clock, without reaching the server (what `timeout` means for an `http` target).
    HttpTimeout,
}

impl FaultEffect {
    fn keyword(&self) -> &'static str {
        match self {
            FaultEffect::Fail { .. } => "fail",
            FaultEffect::Panic { .. } => "panic",
            FaultEffect::Delay(_) => "delay",
            FaultEffect::Timeout => "timeout",
            FaultEffect::LoseResult => "lose-result",
            FaultEffect::RunTwice => "run-twice",
            FaultEffect::Drop => "drop",
            FaultEffect::Duplicate => "duplicate",
            FaultEffect::Crash => "crash",
            FaultEffect::Answer { .. } => "answer",
            FaultEffect::Pending(_) => "pending",
            FaultEffect::HttpTimeout => "timeout",
        }
    }

    fn applies_to(&self, kind: TargetKind) -> bool {
        use TargetKind::{Activity, Entity, Event, Http};
        match self {
            FaultEffect::Fail { .. } => kind != Event,
            FaultEffect::Panic { .. } => kind != Event && kind != Http,
            FaultEffect::Timeout => kind != Event && kind != Entity && kind != Http,
            FaultEffect::LoseResult | FaultEffect::RunTwice => kind == Activity,
            FaultEffect::Drop | FaultEffect::Duplicate => kind == Event,
            FaultEffect::Delay(_) => true,
            FaultEffect::Crash => kind != Entity && kind != Http,
            FaultEffect::Answer { .. } | FaultEffect::Pending(_) | FaultEffect::HttpTimeout => {
                kind == Http
            }
        }
    }
}

impl fmt::Display for FaultEffect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultEffect::Fail {
                error_type,
                message,
                non_retriable,
            } => {
                write!(f, "fail {error_type}: {message}")?;
                if *non_retriable {
                    f.write_str(" (non-retriable)")?;
                }
                Ok(())
            }
            FaultEffect::Panic { message } => write!(f, "panic: {message}"),
            FaultEffect::Delay(by) => write!(f, "delay {}", humantime::format_duration(*by)),
            FaultEffect::Timeout => f.write_str("timeout (never finishes)"),
            FaultEffect::LoseResult => f.write_str("lose the result (redelivered)"),
            FaultEffect::RunTwice => f.write_str("run twice"),
            FaultEffect::Drop => f.write_str("drop the event"),
            FaultEffect::Duplicate => f.write_str("deliver the event twice"),
            FaultEffect::Crash => f.write_str("crash the host"),
            FaultEffect::Answer { status, body, .. } => {
                write!(f, "answer {status}")?;
                if !body.is_empty() {
                    write!(f, " with a {}-byte body", body.len())?;
                }
                Ok(())
            }
            FaultEffect::Pending(polls) => {
                write!(f, "answer 202 Accepted to polls 0-{}", polls - 1)
            }
            FaultEffect::HttpTimeout => {
                f.write_str("time out (HttpTimeout after the request's timeout)")
            }
        }
    }
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    /// A label shown where it fires; default `rule <id>`.
    pub name: Option<String>,
    /// Where.
    pub target: FaultTarget,
    /// When.
    pub trigger: Trigger,
    /// Fire at most this many times.
    pub limit: Option<u32>,
    /// What.
    pub effect: FaultEffect,
}

/// A rule that was refused, with what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid fault rule{}: {message}", context.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
pub struct FaultRuleError {
    /// Which rule (its text, or its position in a file).
    pub context: Option<String>,
    /// What is wrong and what is accepted.
    pub message: String,
}

fn invalid(message: impl Into<String>) -> FaultRuleError {
    FaultRuleError {
        context: None,
        message: message.into(),
    }
}

/// The fields of a rule as written in TOML or the compact form, before validation.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    name: Option<String>,
    activity: Option<String>,
    orchestration: Option<String>,
    sub_orchestration: Option<String>,
    event: Option<String>,
    entity: Option<String>,
    operation: Option<String>,
    http: Option<String>,
    method: Option<String>,
    instance: Option<String>,
    attempts: Option<NumberOrText>,
    call: Option<u64>,
    every: Option<bool>,
    probability: Option<f64>,
    seed: Option<u64>,
    from: Option<String>,
    limit: Option<u32>,
    effect: Option<String>,
    error_type: Option<String>,
    message: Option<String>,
    non_retriable: Option<bool>,
    delay: Option<String>,
    answer: Option<u16>,
    body: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
    pending: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u32),
    Text(String),
}

const EFFECTS: &str = "fail, panic, delay, timeout, lose-result, run-twice, drop, duplicate, crash, refuse, answer, pending";
const COMPACT_KEYS: &str = "activity, orchestration, sub-orchestration, event, entity, operation, http, method, instance, attempts, call, every, probability, seed, from, limit, name, error, non-retriable, panic, delay, timeout, lose-result, run-twice, drop, duplicate, crash, refuse, answer, body, pending, effect";
/// What the `refuse` effect fails an HTTP request with.
const REFUSED: &str = "connection refused (injected)";

impl RawRule {
    /// Validates the fields into a rule; `default_seed` is used by probability rules without
    /// their own seed.
    pub fn validate(self, default_seed: u64) -> Result<FaultRule, FaultRuleError> {
        let targets = [
            (TargetKind::Activity, self.activity),
            (TargetKind::Orchestration, self.orchestration),
            (TargetKind::SubOrchestration, self.sub_orchestration),
            (TargetKind::Event, self.event),
            (TargetKind::Entity, self.entity),
            (TargetKind::Http, self.http),
        ];
        let mut given = targets
            .into_iter()
            .filter_map(|(kind, name)| name.map(|name| (kind, name)));
        let (kind, target) = given.next().ok_or_else(|| {
            invalid("a target is required: one of `activity`, `orchestration`, `sub_orchestration`, `event`, `entity` or `http`, set to a name or glob (a URL glob for `http`)")
        })?;
        if given.next().is_some() {
            return Err(invalid(
                "only one target per rule: `activity`, `orchestration`, `sub_orchestration`, `event`, `entity` or `http`",
            ));
        }
        let method = match (&self.method, kind) {
            (Some(method), TargetKind::Http) => {
                check_glob("`method`", method)?;
                Some(method.trim().to_ascii_uppercase())
            }
            (Some(_), _) => return Err(invalid("`method` goes with `http` targets only")),
            (None, _) => None,
        };
        // An entity rule names the entity id (`@account@*`) and, optionally, the operation; it
        // is held as the operation glob (`name`) and the entity id glob (`instance`).
        let (name, instance) = if kind == TargetKind::Entity {
            if self.instance.is_some() {
                return Err(invalid(
                    "`instance` does not go with `entity`: the entity id is the instance (`entity=@account@*`)",
                ));
            }
            check_glob("`entity`", &target)?;
            let operation = self.operation.clone().unwrap_or_else(|| "*".to_string());
            check_glob("`operation`", &operation)?;
            (operation, Some(target))
        } else {
            if self.operation.is_some() {
                return Err(invalid("`operation` goes with `entity` targets only"));
            }
            check_glob("the target name", &target)?;
            if let Some(instance) = &self.instance {
                check_glob("`instance`", instance)?;
            }
            (target, self.instance.clone())
        };

        let mut triggers = Vec::new();
        if let Some(attempts) = self.attempts {
            triggers.push(parse_attempts(attempts)?);
        }
        if let Some(call) = self.call {
            if call == 0 {
                return Err(invalid("`call` counts from 1 (got 0)"));
            }
            triggers.push(Trigger::NthCall(call));
        }
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(format!(
                    "`probability` must be between 0 and 1 (got {p})"
                )));
            }
            triggers.push(Trigger::Probability {
                p,
                seed: self.seed.unwrap_or(default_seed),
            });
        } else if self.seed.is_some() {
            return Err(invalid("`seed` goes with `probability`"));
        }
        if let Some(from) = self.from {
            triggers.push(parse_from(&from)?);
        }
        if self.every == Some(true) {
            triggers.push(Trigger::Every);
        }
        if triggers.len() > 1 {
            return Err(invalid(
                "one trigger per rule: `attempts`, `call`, `every`, `probability` or `from`",
            ));
        }
        let trigger = triggers.pop().unwrap_or(Trigger::Every);

        let effect_name = match (&self.effect, &self.error_type) {
            (Some(effect), _) => effect.to_ascii_lowercase().replace('_', "-"),
            (None, Some(_)) => "fail".to_string(),
            (None, None) if self.answer.is_some() => "answer".to_string(),
            (None, None) if self.pending.is_some() => "pending".to_string(),
            (None, None) => {
                return Err(invalid(format!(
                    "an `effect` is required: one of {EFFECTS}"
                )));
            }
        };
        let effect = match effect_name.as_str() {
            "fail" => FaultEffect::Fail {
                error_type: self
                    .error_type
                    .clone()
                    .filter(|text| !text.trim().is_empty())
                    .ok_or_else(|| {
                        invalid("effect `fail` needs `error_type`, e.g. CardDeclined")
                    })?,
                message: self
                    .message
                    .clone()
                    .unwrap_or_else(|| "injected failure".to_string()),
                non_retriable: self.non_retriable.unwrap_or(false),
            },
            "panic" => FaultEffect::Panic {
                message: self
                    .message
                    .clone()
                    .unwrap_or_else(|| "injected panic".to_string()),
            },
            "delay" => {
                let text = self.delay.clone().ok_or_else(|| {
                    invalid("effect `delay` needs `delay`, a duration such as 90s, 15m or 2h")
                })?;
                FaultEffect::Delay(
                    crate::clock::parse_duration(&text)
                        .map_err(|error| invalid(format!("`delay`: {error}")))?,
                )
            }
            "timeout" if kind == TargetKind::Http => FaultEffect::HttpTimeout,
            "timeout" => FaultEffect::Timeout,
            "refuse" => FaultEffect::Fail {
                error_type: durable_sdk::http::HTTP_CONNECTION_FAILED.to_string(),
                message: self.message.clone().unwrap_or_else(|| REFUSED.to_string()),
                non_retriable: false,
            },
            "answer" => {
                let status = self.answer.ok_or_else(|| {
                    invalid("effect `answer` needs `answer`, the status to answer, e.g. answer=503")
                })?;
                if !(100..=599).contains(&status) {
                    return Err(invalid(format!(
                        "`answer` must be an HTTP status from 100 to 599 (got {status})"
                    )));
                }
                FaultEffect::Answer {
                    status,
                    body: self.body.clone().unwrap_or_default(),
                    headers: self
                        .headers
                        .clone()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value))
                        .collect(),
                }
            }
            "pending" => {
                let polls = self.pending.ok_or_else(|| {
                    invalid("effect `pending` needs `pending`, how many polls answer 202, e.g. pending=3")
                })?;
                if polls == 0 {
                    return Err(invalid(
                        "`pending` must be at least 1 (the number of requests answered 202)",
                    ));
                }
                FaultEffect::Pending(polls)
            }
            "lose-result" => FaultEffect::LoseResult,
            "run-twice" => FaultEffect::RunTwice,
            "drop" => FaultEffect::Drop,
            "duplicate" => FaultEffect::Duplicate,
            "crash" => FaultEffect::Crash,
            other => {
                return Err(invalid(format!(
                    "`effect` must be one of {EFFECTS} (got '{other}')"
                )));
            }
        };
        let answers = matches!(effect, FaultEffect::Answer { .. });
        if !answers && (self.body.is_some() || self.headers.is_some()) {
            return Err(invalid(format!(
                "`body` and `headers` go with effect `answer`, not `{}`",
                effect.keyword()
            )));
        }
        if !answers && self.answer.is_some() {
            return Err(invalid(format!(
                "`answer` is an effect of its own: it does not go with `{}`",
                effect.keyword()
            )));
        }
        if !matches!(effect, FaultEffect::Pending(_)) && self.pending.is_some() {
            return Err(invalid(format!(
                "`pending` is an effect of its own: it does not go with `{}`",
                effect.keyword()
            )));
        }
        if !matches!(effect, FaultEffect::Fail { .. }) && self.error_type.is_some() {
            return Err(invalid(format!(
                "`error_type` goes with effect `fail`, not `{}`",
                effect.keyword()
            )));
        }
        if !effect.applies_to(kind) {
            return Err(invalid(format!(
                "effect `{}` does not apply to {} targets (activities: fail, panic, delay, timeout, lose-result, run-twice, crash; orchestrations and sub-orchestrations: fail, panic, delay, timeout, crash; events: drop, duplicate, delay, crash; entities: fail, panic, delay; http: refuse, fail, answer, pending, delay, timeout)",
                effect.keyword(),
                kind.label()
            )));
        }
        if self.limit == Some(0) {
            return Err(invalid(
                "`limit` must be at least 1 (leave it out for no limit)",
            ));
        }
        Ok(FaultRule {
            name: self.name,
            target: FaultTarget {
                kind,
                name,
                instance,
                method,
            },
            trigger,
            limit: self.limit,
            effect,
        })
    }
}

fn check_glob(what: &str, pattern: &str) -> Result<(), FaultRuleError> {
    if pattern.trim().is_empty() {
        return Err(invalid(format!("{what} cannot be empty (use * for any)")));
    }
    glob::Pattern::new(pattern)
        .map(|_| ())
        .map_err(|error| invalid(format!("{what} '{pattern}' is not a valid glob: {error}")))
}

fn parse_attempts(attempts: NumberOrText) -> Result<Trigger, FaultRuleError> {
    let bad = |text: &str| {
        invalid(format!(
            "`attempts` must be N or N-M with 1 <= N <= M, e.g. 3 or 1-2 (got '{text}')"
        ))
    };
    let (first, last) = match attempts {
        NumberOrText::Number(n) => (n, n),
        NumberOrText::Text(text) => {
            let (first, last) = text.split_once('-').unwrap_or((&text, &text));
            let first: u32 = first.trim().parse().map_err(|_| bad(&text))?;
            let last: u32 = last.trim().parse().map_err(|_| bad(&text))?;
            if first == 0 || first > last {
                return Err(bad(&text));
            }
            (first, last)
        }
    };
    if first == 0 {
        return Err(bad(&first.to_string()));
    }
    Ok(Trigger::Attempts { first, last })
}

fn parse_from(text: &str) -> Result<Trigger, FaultRuleError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(Trigger::From(time.with_timezone(&Utc)));
    }
    let relative = text.trim().trim_start_matches('+');
    crate::clock::parse_duration(relative)
        .map(Trigger::After)
        .map_err(|_| {
            invalid(format!(
                "`from` must be an RFC 3339 time (2026-01-01T00:00:00Z) or a duration from now (2h, 3d) (got '{text}')"
            ))
        })
}

/// Parses the compact command-line form, e.g.
/// `activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds`.
/// Fields are separated by commas (so a message cannot contain one).
pub fn parse_compact(spec: &str, default_seed: u64) -> Result<FaultRule, FaultRuleError> {
    compact_to_raw(spec)
        .and_then(|raw| raw.validate(default_seed))
        .map_err(|error| FaultRuleError {
            context: Some(format!("'{spec}'")),
            message: error.message,
        })
}

fn compact_to_raw(spec: &str) -> Result<RawRule, FaultRuleError> {
    let mut raw = RawRule::default();
    for field in spec
        .split(',')
        .map(str::trim)
        .filter(|field| !field.is_empty())
    {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (
                key.trim().to_ascii_lowercase().replace('_', "-"),
                Some(value.trim().to_string()),
            ),
            None => (field.to_ascii_lowercase().replace('_', "-"), None),
        };
        let required = |value: Option<String>| {
            value
                .filter(|value| !value.is_empty())
                .ok_or_else(|| invalid(format!("`{key}` needs a value (`{key}=...`)")))
        };
        let number = |value: Option<String>, what: &str| -> Result<u64, FaultRuleError> {
            let text = value.unwrap_or_default();
            text.parse()
                .map_err(|_| invalid(format!("`{what}` must be a whole number (got '{text}')")))
        };
        match key.as_str() {
            "activity" => raw.activity = Some(required(value)?),
            "orchestration" => raw.orchestration = Some(required(value)?),
            "sub-orchestration" | "suborchestration" => {
                raw.sub_orchestration = Some(required(value)?)
            }
            "event" => raw.event = Some(required(value)?),
            "entity" => raw.entity = Some(required(value)?),
            "operation" => raw.operation = Some(required(value)?),
            "http" => raw.http = Some(required(value)?),
            "method" => raw.method = Some(required(value)?),
            "instance" => raw.instance = Some(required(value)?),
            "name" => raw.name = Some(required(value)?),
            "attempts" | "attempt" => raw.attempts = Some(NumberOrText::Text(required(value)?)),
            "call" => raw.call = Some(number(value, "call")?),
            "every" => raw.every = Some(true),
            "probability" => {
                let text = value.unwrap_or_default();
                raw.probability = Some(text.parse().map_err(|_| {
                    invalid(format!(
                        "`probability` must be a number between 0 and 1 (got '{text}')"
                    ))
                })?);
            }
            "seed" => raw.seed = Some(number(value, "seed")?),
            "from" => raw.from = Some(required(value)?),
            "limit" => {
                let limit = number(value, "limit")?;
                raw.limit =
                    Some(u32::try_from(limit).map_err(|_| invalid("`limit` is too large"))?);
            }
            "error" => {
                let text = required(value)?;
                let (error_type, message) = match text.split_once(':') {
                    Some((error_type, message)) => (
                        error_type.trim().to_string(),
                        Some(message.trim().to_string()),
                    ),
                    None => (text.trim().to_string(), None),
                };
                raw.error_type = Some(error_type);
                raw.message = message.or(raw.message);
                raw.effect = Some("fail".into());
            }
            "message" => raw.message = Some(required(value)?),
            "non-retriable" | "nonretriable" => raw.non_retriable = Some(true),
            "panic" => {
                raw.effect = Some("panic".into());
                if let Some(message) = value {
                    raw.message = Some(message);
                }
            }
            "delay" => {
                raw.effect = Some("delay".into());
                raw.delay = Some(required(value)?);
            }
            "timeout" | "lose-result" | "run-twice" | "drop" | "duplicate" | "crash" | "refuse" => {
                raw.effect = Some(key.clone());
            }
            "answer" => {
                let text = required(value)?;
                raw.answer = Some(text.parse().map_err(|_| {
                    invalid(format!(
                        "`answer` must be an HTTP status from 100 to 599 (got '{text}')"
                    ))
                })?);
                raw.effect = Some("answer".into());
            }
            // The rest of the field is the body: it may hold `=` but not a comma.
            "body" => raw.body = Some(value.unwrap_or_default()),
            "pending" => {
                let text = required(value)?;
                raw.pending = Some(text.parse().map_err(|_| {
                    invalid(format!(
                        "`pending` must be a whole number of polls (got '{text}')"
                    ))
                })?);
                raw.effect = Some("pending".into());
            }
            "effect" => raw.effect = Some(required(value)?),
            other => {
                return Err(invalid(format!(
                    "unknown field `{other}`; accepted: {COMPACT_KEYS}"
                )));
            }
        }
    }
    Ok(raw)
}

/// A scenario file: an optional default seed and a list of rules.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Scenario {
    seed: Option<u64>,
    #[serde(default)]
    fault: Vec<RawRule>,
}

/// Parses a TOML scenario (`[[fault]]` tables; see `assets/scenarios/`).
pub fn parse_scenario(text: &str) -> Result<Vec<FaultRule>, FaultRuleError> {
    let scenario: Scenario = toml::from_str(text).map_err(|error| invalid(error.to_string()))?;
    let seed = scenario.seed.unwrap_or(0);
    scenario
        .fault
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            raw.validate(seed).map_err(|error| FaultRuleError {
                context: Some(format!("#{} ([[fault]] number {})", index + 1, index + 1)),
                message: error.message,
            })
        })
        .collect()
}

/// Where a call stands among the calls of the execution that made it.
///
/// Together with the call's kind, instance, name and input this is the call's identity, which a
/// seeded probability hashes. Sequence (task) ids are deliberately not part of it: a retry policy
/// schedules each attempt under a new sequence id, so they cannot tie an attempt to its call,
/// and the order in which calls are scheduled should not decide which of them fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Occurrence {
    /// Which execution of the calling instance made the call: 0, then one more per
    /// continue-as-new (for a sub-orchestration, the parent's execution).
    pub generation: u32,
    /// 1 the first time the execution makes this exact call (same kind, name and input), 2 the
    /// second, ...: the retry attempt for calls retried by a policy. For an event, the how-many-th
    /// event of that name the execution receives.
    pub attempt: u32,
}

impl Occurrence {
    /// The first attempt of a call made by an instance's first execution (a top-level start).
    pub const FIRST: Occurrence = Occurrence {
        generation: 0,
        attempt: 1,
    };
}

/// One call a rule may hit.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// What kind of call.
    pub kind: TargetKind,
    /// Activity, orchestration or event name.
    pub name: &'a str,
    /// The instance making (or receiving) it: for an orchestration or sub-orchestration, the new
    /// instance.
    pub instance_id: &'a str,
    /// Its input: an activity's or orchestration's input; null for events, whose occurrence
    /// already tells one from the next.
    pub input: &'a serde_json::Value,
    /// Which execution made it and which attempt it is.
    pub occurrence: Occurrence,
    /// The virtual time now.
    pub now: DateTime<Utc>,
    /// For an HTTP request (kind `Http`, `name` its URI): its method and poll index.
    pub http: Option<HttpCall<'a>>,
}

/// What an `http` rule matches besides the URI.
#[derive(Debug, Clone, Copy)]
pub struct HttpCall<'a> {
    /// `GET`, `POST`, ... (upper case).
    pub method: &'a str,
    /// 0 the call's first request, then 1, 2, ... for each poll of its `Location`.
    pub poll: u32,
}

impl Call<'_> {
    /// A number in [0, 1) drawn from `seed` and this call's identity and attempt: uniform over
    /// calls, and the same for the same call in every run.
    fn draw(&self, seed: u64) -> f64 {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&seed.to_le_bytes());
        // Variable-length fields are length-prefixed so no two calls hash the same bytes.
        for field in [
            self.kind.label().as_bytes(),
            self.instance_id.as_bytes(),
            self.name.as_bytes(),
        ] {
            hasher.update(&(field.len() as u64).to_le_bytes());
            hasher.update(field);
        }
        let input = self.input.to_string();
        hasher.update(&(input.len() as u64).to_le_bytes());
        hasher.update(input.as_bytes());
        hasher.update(&self.occurrence.generation.to_le_bytes());
        hasher.update(&self.occurrence.attempt.to_le_bytes());
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
        // The top 53 bits give an exactly representable fraction strictly below 1.
        (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A rule in the engine, with its switch and counters.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleState {
    /// Its id in this session.
    pub id: u32,
    /// The rule.
    pub rule: FaultRule,
    /// Whether it is consulted.
    pub enabled: bool,
    /// Calls its target matched.
    pub matched: u64,
    /// Times it fired.
    pub fired: u32,
}

impl RuleState {
    /// The label markers carry: the rule's name, or `rule <id>`.
    pub fn label(&self) -> String {
        self.rule
            .name
            .clone()
            .unwrap_or_else(|| format!("rule {}", self.id))
    }
}

/// A rule that fired on a call.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The rule's id.
    pub rule_id: u32,
    /// Its label.
    pub label: String,
    /// What to do.
    pub effect: FaultEffect,
    /// What it hit, for the marker: `activity ChargeCard (attempt 1)`.
    pub target: String,
}

/// The rules of a session, consulted in the order they were added; the first that fires wins.
#[derive(Debug, Clone, Default)]
pub struct FaultRules {
    rules: Vec<RuleState>,
    next_id: u32,
}

impl FaultRules {
    /// Adds a rule (enabled), resolving a relative `from` against `now`; returns its id.
    pub fn add(&mut self, mut rule: FaultRule, now: DateTime<Utc>) -> u32 {
        if let Trigger::After(by) = rule.trigger {
            let from = chrono::Duration::from_std(by)
                .ok()
                .and_then(|by| now.checked_add_signed(by))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            rule.trigger = Trigger::From(from);
        }
        self.next_id += 1;
        self.rules.push(RuleState {
            id: self.next_id,
            rule,
            enabled: true,
            matched: 0,
            fired: 0,
        });
        self.next_id
    }

    /// Every rule with its state.
    pub fn list(&self) -> Vec<RuleState> {
        self.rules.clone()
    }

    /// Turns a rule on or off; false if there is no such rule.
    pub fn set_enabled(&mut self, id: u32, enabled: bool) -> bool {
        match self.rules.iter_mut().find(|state| state.id == id) {
            Some(state) => {
                state.enabled = enabled;
                true
            }
            None => false,
        }
    }

    /// Removes a rule; false if there is no such rule.
    pub fn remove(&mut self, id: u32) -> bool {
        let before = self.rules.len();
        self.rules.retain(|state| state.id != id);
        self.rules.len() != before
    }

    /// Whether any enabled rule targets this kind (lets the engine skip work when none does).
    pub fn targets(&self, kind: TargetKind) -> bool {
        self.rules.iter().any(|state| {
            state.enabled
                && (state.rule.target.kind == kind
                    || (kind == TargetKind::SubOrchestration
                        && state.rule.target.kind == TargetKind::Orchestration))
        })
    }

    /// Whether any enabled rule can crash the host (the engine then commits before episodes).
    pub fn has_crash_rules(&self) -> bool {
        self.rules
            .iter()
            .any(|state| state.enabled && state.rule.effect == FaultEffect::Crash)
    }

    /// Decides whether a rule fires on `call`, counting it for every rule whose target matches.
    pub fn decide(&mut self, call: &Call<'_>) -> Option<Fired> {
        let mut fired = None;
        for state in &mut self.rules {
            if !state.enabled || !target_matches(&state.rule.target, call) {
                continue;
            }
            state.matched += 1;
            if fired.is_some() {
                continue;
            }
            if state.rule.limit.is_some_and(|limit| state.fired >= limit) {
                continue;
            }
            // A `pending` rule lets a request through from its K-th poll on: not a firing.
            let let_through = match (&state.rule.effect, call.http) {
                (FaultEffect::Pending(polls), Some(http)) => http.poll >= *polls,
                _ => false,
            };
            if !let_through && trigger_fires(&state.rule.trigger, state.matched, call) {
                state.fired += 1;
                fired = Some(Fired {
                    rule_id: state.id,
                    label: state.label(),
                    effect: state.rule.effect.clone(),
                    target: match (call.kind, call.http) {
                        (TargetKind::Http, Some(http)) => {
                            format!("http {} {} (poll {})", http.method, call.name, http.poll)
                        }
                        (TargetKind::Entity, _) => format!(
                            "entity {} operation {} (attempt {})",
                            call.instance_id, call.name, call.occurrence.attempt
                        ),
                        (_, _) => format!(
                            "{} {} (attempt {})",
                            call.kind.label(),
                            call.name,
                            call.occurrence.attempt
                        ),
                    },
                });
            }
        }
        fired
    }
}

fn glob_matches(pattern: &str, text: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|pattern| pattern.matches(text))
}

fn target_matches(target: &FaultTarget, call: &Call<'_>) -> bool {
    let kind_matches = target.kind == call.kind
        || (target.kind == TargetKind::Orchestration && call.kind == TargetKind::SubOrchestration);
    let method_matches = match (&target.method, call.http) {
        (None, _) => true,
        (Some(pattern), Some(http)) => glob_matches(pattern, &http.method.to_ascii_uppercase()),
        (Some(_), None) => false,
    };
    kind_matches
        && glob_matches(&target.name, call.name)
        && method_matches
        && target
            .instance
            .as_deref()
            .is_none_or(|pattern| glob_matches(pattern, call.instance_id))
}

fn trigger_fires(trigger: &Trigger, matched: u64, call: &Call<'_>) -> bool {
    match trigger {
        Trigger::Every => true,
        Trigger::Attempts { first, last } => (*first..=*last).contains(&call.occurrence.attempt),
        Trigger::NthCall(n) => matched == *n,
        Trigger::Probability { p, seed } => call.draw(*seed) < *p,
        Trigger::From(time) => call.now >= *time,
        // Resolved to `From` when the rule is added; a rule never added never fires.
        Trigger::After(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::UNIX_EPOCH
    }

    static NULL: serde_json::Value = serde_json::Value::Null;

    fn call<'a>(name: &'a str, attempt: u32) -> Call<'a> {
        Call {
            kind: TargetKind::Activity,
            name,
            instance_id: "order-1",
            input: &NULL,
            occurrence: Occurrence {
                generation: 0,
                attempt,
            },
            now: now(),
            http: None,
        }
    }

    /// Which of `calls` (all of one kind) a `probability=p,seed=seed` rule fires on.
    fn fired_on(p: f64, seed: u64, calls: &[Call<'_>]) -> Vec<bool> {
        let target = match calls[0].kind {
            TargetKind::Activity => "activity=*,timeout",
            TargetKind::Orchestration => "orchestration=*,timeout",
            TargetKind::SubOrchestration => "sub-orchestration=*,timeout",
            TargetKind::Event => "event=*,drop",
            TargetKind::Entity => "entity=*,panic",
            TargetKind::Http => "http=*,refuse",
        };
        let mut rules = FaultRules::default();
        rules.add(
            parse_compact(&format!("{target},probability={p},seed={seed}"), 0).unwrap(),
            now(),
        );
        calls
            .iter()
            .map(|call| rules.decide(call).is_some())
            .collect()
    }

    fn count(fired: &[bool]) -> usize {
        fired.iter().filter(|fired| **fired).count()
    }

    #[test]
    fn the_compact_form_of_the_readme_parses() {
        let rule = parse_compact(
            "activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds",
            0,
        )
        .unwrap();
        assert_eq!(rule.target.kind, TargetKind::Activity);
        assert_eq!(rule.trigger, Trigger::Attempts { first: 1, last: 2 });
        assert_eq!(
            rule.effect,
            FaultEffect::Fail {
                error_type: "CardDeclined".into(),
                message: "insufficient funds".into(),
                non_retriable: false
            }
        );
    }

    #[test]
    fn attempts_fire_only_on_their_attempts() {
        let mut rules = FaultRules::default();
        rules.add(
            parse_compact("activity=Charge*,attempts=1-2,error=X", 0).unwrap(),
            now(),
        );
        assert!(rules.decide(&call("ChargeCard", 1)).is_some());
        assert!(rules.decide(&call("ChargeCard", 2)).is_some());
        assert!(rules.decide(&call("ChargeCard", 3)).is_none());
        assert!(rules.decide(&call("ShipOrder", 1)).is_none());
    }

    #[test]
    fn limits_nth_calls_and_switches_are_honoured() {
        let mut rules = FaultRules::default();
        let id = rules.add(parse_compact("activity=*,call=2,crash", 0).unwrap(), now());
        assert!(rules.decide(&call("A", 1)).is_none());
        assert_eq!(
            rules.decide(&call("A", 1)).unwrap().effect,
            FaultEffect::Crash
        );
        assert!(rules.decide(&call("A", 1)).is_none());
        let limited = rules.add(
            parse_compact("activity=B,every,limit=1,timeout", 0).unwrap(),
            now(),
        );
        assert!(rules.decide(&call("B", 1)).is_some());
        assert!(rules.decide(&call("B", 1)).is_none());
        assert!(rules.set_enabled(id, false));
        assert!(rules.remove(limited));
        assert_eq!(rules.list().len(), 1);
    }

    #[test]
    fn a_seeded_probability_is_the_same_decision_every_time() {
        let decide = |seed: u64| {
            let mut rules = FaultRules::default();
            rules.add(
                parse_compact(
                    &format!("activity=*,probability=0.5,seed={seed},timeout"),
                    0,
                )
                .unwrap(),
                now(),
            );
            (1..=200)
                .map(|attempt| rules.decide(&call("Echo", attempt)).is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(decide(7), decide(7));
        assert_ne!(decide(7), decide(8));
        let fired = decide(7).iter().filter(|fired| **fired).count();
        assert!((60..140).contains(&fired), "{fired} of 200");
    }

    #[test]
    fn a_probability_draws_once_per_call_of_a_fan_out_not_once_for_all() {
        let inputs: Vec<serde_json::Value> = (1..=1000).map(serde_json::Value::from).collect();
        let calls: Vec<Call<'_>> = inputs
            .iter()
            .map(|input| Call {
                input,
                ..call("Square", 1)
            })
            .collect();
        for seed in [15, 16, 17, 18, 19] {
            let fired = fired_on(0.1, seed, &calls);
            assert!(
                (60..=140).contains(&count(&fired)),
                "seed {seed}: {}",
                count(&fired)
            );
            assert_eq!(fired, fired_on(0.1, seed, &calls), "seed {seed} again");
        }
        assert_ne!(fired_on(0.1, 15, &calls), fired_on(0.1, 16, &calls));
    }

    #[test]
    fn the_attempts_of_one_call_draw_apart_and_so_do_generations() {
        // One call retried 1,000 times: each attempt has its own draw.
        let attempts: Vec<Call<'_>> = (1..=1000).map(|attempt| call("Charge", attempt)).collect();
        assert!((60..=140).contains(&count(&fired_on(0.1, 3, &attempts))));
        // The same first call in 1,000 executions after continue-as-new: one draw each.
        let generations: Vec<Call<'_>> = (0..1000)
            .map(|generation| Call {
                occurrence: Occurrence {
                    generation,
                    attempt: 1,
                },
                ..call("Poll", 1)
            })
            .collect();
        assert!((60..=140).contains(&count(&fired_on(0.1, 3, &generations))));
    }

    #[test]
    fn sub_orchestrations_and_events_draw_per_call_too() {
        let children: Vec<String> = (0..1000).map(|task| format!("parent:{task}")).collect();
        let starts: Vec<Call<'_>> = children
            .iter()
            .map(|child| Call {
                kind: TargetKind::SubOrchestration,
                instance_id: child,
                ..call("Child", 1)
            })
            .collect();
        let fired = fired_on(0.1, 9, &starts);
        assert!((60..=140).contains(&count(&fired)), "{}", count(&fired));
        // The n-th "Approval" one instance receives.
        let events: Vec<Call<'_>> = (1..=1000)
            .map(|nth| Call {
                kind: TargetKind::Event,
                ..call("Approval", nth)
            })
            .collect();
        let fired = fired_on(0.1, 9, &events);
        assert!((60..=140).contains(&count(&fired)), "{}", count(&fired));
    }

    #[test]
    fn probability_zero_never_fires_and_one_always_does() {
        let attempts: Vec<Call<'_>> = (1..=500).map(|attempt| call("A", attempt)).collect();
        assert_eq!(count(&fired_on(0.0, 1, &attempts)), 0);
        assert_eq!(count(&fired_on(1.0, 1, &attempts)), 500);
    }

    #[test]
    fn invalid_rules_name_the_field_and_the_accepted_values() {
        let cases = [
            (
                "activity=A,attempts=2-1,timeout",
                "`attempts` must be N or N-M",
            ),
            (
                "activity=A,effect=explode",
                "`effect` must be one of fail, panic",
            ),
            (
                "activity=A,probability=1.5,timeout",
                "`probability` must be between 0 and 1",
            ),
            ("attempts=1,timeout", "a target is required"),
            ("activity=A,event=B,timeout", "only one target"),
            (
                "event=Approval,lose-result",
                "does not apply to event targets",
            ),
            ("activity=A,delay=soon", "`delay`"),
            ("activity=A,colour=red", "unknown field `colour`"),
            ("activity=A", "an `effect` is required"),
        ];
        for (spec, expected) in cases {
            let error = parse_compact(spec, 0).unwrap_err().to_string();
            assert!(error.contains(expected), "{spec}: {error}");
            assert!(error.contains(spec), "{spec}: {error}");
        }
    }

    fn http_call<'a>(uri: &'a str, method: &'a str, poll: u32) -> Call<'a> {
        Call {
            kind: TargetKind::Http,
            http: Some(HttpCall { method, poll }),
            ..call(uri, 1)
        }
    }

    #[test]
    fn http_rules_match_url_and_method_and_say_which_request_they_hit() {
        let mut rules = FaultRules::default();
        rules.add(
            parse_compact("http=http://127.0.0.1:*/jobs/*,method=get,refuse", 0).unwrap(),
            now(),
        );
        let fired = rules
            .decide(&http_call("http://127.0.0.1:8088/jobs/1", "GET", 2))
            .unwrap();
        assert_eq!(
            fired.target,
            "http GET http://127.0.0.1:8088/jobs/1 (poll 2)"
        );
        assert_eq!(
            fired.effect,
            FaultEffect::Fail {
                error_type: "HttpConnectionFailed".into(),
                message: "connection refused (injected)".into(),
                non_retriable: false
            }
        );
        assert!(
            rules
                .decide(&http_call("http://127.0.0.1:8088/jobs/1", "POST", 0))
                .is_none()
        );
        assert!(
            rules
                .decide(&http_call("http://example.com/jobs/1", "GET", 0))
                .is_none()
        );
        // An activity named like the URL is not an HTTP request.
        assert!(
            rules
                .decide(&call("http://127.0.0.1:8088/jobs/1", 1))
                .is_none()
        );
    }

    #[test]
    fn a_pending_rule_fires_below_its_poll_and_lets_the_rest_through() {
        let mut rules = FaultRules::default();
        rules.add(parse_compact("http=*,pending=2", 0).unwrap(), now());
        let fired: Vec<bool> = (0..4)
            .map(|poll| {
                rules
                    .decide(&http_call("http://h/s", "GET", poll))
                    .is_some()
            })
            .collect();
        assert_eq!(fired, [true, true, false, false]);
        assert_eq!(rules.list()[0].fired, 2);
        assert_eq!(rules.list()[0].matched, 4);
    }

    #[test]
    fn http_effects_parse_in_both_forms() {
        let rule = parse_compact("http=*/api/*,answer=503,body=busy=yes", 0).unwrap();
        assert_eq!(
            rule.effect,
            FaultEffect::Answer {
                status: 503,
                body: "busy=yes".into(),
                headers: Default::default()
            }
        );
        assert_eq!(
            parse_compact("http=*,timeout", 0).unwrap().effect,
            FaultEffect::HttpTimeout
        );
        assert_eq!(
            parse_compact("activity=*,timeout", 0).unwrap().effect,
            FaultEffect::Timeout
        );
        assert_eq!(
            parse_compact("http=*,delay=5s", 0).unwrap().effect,
            FaultEffect::Delay(Duration::from_secs(5))
        );
        assert!(matches!(
            parse_compact("http=*,error=Boom:down", 0).unwrap().effect,
            FaultEffect::Fail { .. }
        ));
        let rules = parse_scenario(
            r#"
            [[fault]]
            http = "http://127.0.0.1:8088/*"
            method = "POST"
            answer = 429
            body = "slow down"
            headers = { "Retry-After" = "7" }
            [[fault]]
            http = "*"
            pending = 3
            "#,
        )
        .unwrap();
        assert_eq!(rules[0].target.method.as_deref(), Some("POST"));
        let FaultEffect::Answer {
            status, headers, ..
        } = &rules[0].effect
        else {
            panic!("{:?}", rules[0].effect);
        };
        assert_eq!((*status, headers["retry-after"].as_str()), (429, "7"));
        assert_eq!(rules[1].effect, FaultEffect::Pending(3));
    }

    #[test]
    fn invalid_http_rules_say_what_applies() {
        let cases = [
            (
                "http=*,panic",
                "http: refuse, fail, answer, pending, delay, timeout",
            ),
            ("http=*,crash", "does not apply to http targets"),
            (
                "activity=A,answer=200",
                "does not apply to activity targets",
            ),
            (
                "activity=A,method=GET,timeout",
                "`method` goes with `http` targets only",
            ),
            ("http=*,answer=700", "from 100 to 599"),
            ("http=*,answer=ok", "from 100 to 599"),
            ("http=*,pending=0", "at least 1"),
            (
                "http=*,refuse,body=x",
                "`body` and `headers` go with effect `answer`",
            ),
            (
                "http=*,answer=200,pending=2",
                "`answer` is an effect of its own",
            ),
            ("http=", "`http` needs a value"),
        ];
        for (spec, expected) in cases {
            let error = parse_compact(spec, 0).unwrap_err().to_string();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }

    #[test]
    fn scenario_files_parse_and_report_the_rule_at_fault() {
        let rules = parse_scenario(
            r#"
            seed = 42
            [[fault]]
            name = "flaky"
            activity = "ChargeCard"
            probability = 0.3
            effect = "fail"
            error_type = "Timeout"
            "#,
        )
        .unwrap();
        assert_eq!(rules[0].trigger, Trigger::Probability { p: 0.3, seed: 42 });
        let error = parse_scenario(
            "[[fault]]\nactivity = \"A\"\neffect = \"timeout\"\n[[fault]]\nactivity = \"B\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("number 2"), "{error}");
        let error = parse_scenario("[[fault]]\nactivty = \"A\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("activty"), "{error}");
    }
}
