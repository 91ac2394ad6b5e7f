//! Carrying out injected faults on the core (the rules and decisions are in `crate::faults`).
//!
//! Rules are consulted where work is dispatched: an activity when its `TaskScheduled` is carried
//! out (a Durable HTTP request, the built-in activity `BuiltIn::HttpActivity`, meets the `http`
//! rules then too), an orchestration when its instance is created, an external event when it is
//! raised or sent. Every fired rule leaves a `FaultInjected` marker in the instance's history (rule, effect,
//! what it hit), so views and exports can tell an injected failure from a real one.
//! The host decides everything; no fault needs cooperation from the plugin.
//!
//! It also keeps, per live instance, what a call's identity needs and the history alone cannot
//! give cheaply: how often the current execution made each exact call (the attempt) and which
//! execution it is (the generation), both rebuilt from the store after a restart.

use super::{Core, InFlight, Live, Message, WorkKey, work_key};
use crate::engine::{EngineError, EngineEvent};
use crate::faults::{Call, FaultEffect, Fired, HttpCall, Occurrence, TargetKind};
use crate::store::WorkRow;
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::EventKind;
use durable_sdk::http::{DurableHttpResponse, HTTP_ACTIVITY, HTTP_TIMEOUT};
use serde_json::Value;
use std::collections::HashMap;

/// Work postponed by a `delay` effect until a virtual time.
#[derive(Debug, Clone)]
pub(super) enum Deferred {
    /// Hand an activity to the workers.
    Dispatch(WorkRow),
    /// Deliver messages to an instance (already in its inbox with their due time, so a restart
    /// keeps them waiting rather than losing them).
    Deliver(String, Vec<Message>),
    /// A delayed entity message (a signal with a scheduled time) joins its entity's queue (it is
    /// in `entity_queue` with its due time meanwhile).
    EntityMessage {
        entity: String,
        id: i64,
        message: crate::engine::entities::EntityMessage,
    },
    /// A `delay` fault's hold on an entity ends: its next operation runs.
    EntityWake { entity: String },
}

/// What the engine must do with an entity operation after consulting the rules.
pub(super) enum EntityFaultPlan {
    /// Run it.
    Run,
    /// Do not run it: it fails with this (state unchanged).
    Fail(FailureDetails, InjectedFault),
    /// Run it (and the entity's later operations) no earlier than this.
    Delay(DateTime<Utc>, InjectedFault),
}

/// A rule that fired on an entity operation. An entity has no history, so it is written into
/// the operation's log entry, and a caller awaiting the operation gets the marker in its own
/// history just before the answer.
#[derive(Debug, Clone)]
pub(super) struct InjectedFault {
    rule: String,
    effect: String,
    target: String,
}

impl InjectedFault {
    /// The operation log's `fault`: `rule 2: fail Declined: no funds`.
    pub(super) fn note(&self) -> String {
        format!("{}: {}", self.rule, self.effect)
    }

    /// The `FaultInjected` marker for a caller's history.
    pub(super) fn marker(&self) -> EventKind {
        EventKind::FaultInjected {
            rule: self.rule.clone(),
            effect: self.effect.clone(),
            target: self.target.clone(),
            task_scheduled_id: None,
        }
    }
}

/// The calls an instance's current execution has made, for the occurrence of its next one.
#[derive(Debug, Clone)]
pub(super) struct CallCounts {
    /// Which execution this is (0, then one more per continue-as-new).
    generation: u32,
    /// How often each exact call (kind, name and input) was made in it.
    counts: HashMap<String, u32>,
}

/// What the engine must do with an activity after consulting the rules.
pub(super) enum ActivityPlan {
    /// Dispatch it now (possibly twice, or losing its first result).
    Dispatch { twice: bool, lose_result: bool },
    /// Record it as outstanding but do not dispatch it yet (delayed) or ever (timeout).
    Withhold,
    /// Do not run it: deliver this failure instead.
    FailWith(FailureDetails),
    /// Do not run it: a rule delivered (or scheduled) its outcome already.
    Handled,
}

impl Core {
    /// Counts a call this instance makes and returns its occurrence: which execution makes it,
    /// and how many times that execution has made this exact call (name and input), counting
    /// this one (the "attempt" fault rules match).
    pub(super) fn next_call_attempt(
        &mut self,
        instance_id: &str,
        kind: &str,
        name: &str,
        input: &Value,
    ) -> Occurrence {
        let calls = match self.mirror.live.get_mut(instance_id) {
            Some(Live {
                calls: Some(calls), ..
            }) => calls,
            // Only when no rule needed counts before this episode, so none consults them now.
            _ => return Occurrence::FIRST,
        };
        let count = calls.counts.entry(call_key(kind, name, input)).or_insert(0);
        *count += 1;
        Occurrence {
            generation: calls.generation,
            attempt: *count,
        }
    }

    /// Before an episode: make sure the instance's call counts reflect its recorded history, when
    /// any rule needs attempts (counts are kept in memory and rebuilt after a restart).
    pub(super) fn prepare_call_counts(&mut self, instance_id: &str) -> Result<(), EngineError> {
        let needed = self.faults.targets(TargetKind::Activity)
            || self.faults.targets(TargetKind::Http)
            || self.faults.targets(TargetKind::SubOrchestration)
            || self.faults.targets(TargetKind::Event);
        let Some(live) = self.mirror.live.get(instance_id) else {
            return Ok(());
        };
        if !needed || live.calls.is_some() {
            return Ok(());
        }
        let history = if live.record.history_len == 0 {
            Vec::new()
        } else {
            self.store.history(instance_id, &live.record.execution_id)?
        };
        let execution_id = live.record.execution_id.clone();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for event in &history {
            let key = match &event.kind {
                EventKind::TaskScheduled { name, input } => call_key("activity", name, input),
                EventKind::SubOrchestrationInstanceCreated { name, input, .. } => {
                    call_key("sub-orchestration", name, input)
                }
                EventKind::EventRaised { name, .. } => call_key("event", name, &Value::Null),
                _ => continue,
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        let generation = self
            .store
            .executions(instance_id)?
            .iter()
            .find(|execution| execution.execution_id == execution_id)
            .map_or(0, |execution| {
                u32::try_from(execution.ordinal).unwrap_or(u32::MAX)
            });
        if let Some(live) = self.mirror.live.get_mut(instance_id) {
            live.calls = Some(CallCounts { generation, counts });
        }
        Ok(())
    }

    fn decide(
        &mut self,
        kind: TargetKind,
        name: &str,
        instance_id: &str,
        input: &Value,
        occurrence: Occurrence,
    ) -> Option<Fired> {
        self.decide_call(kind, name, instance_id, input, occurrence, None)
    }

    fn decide_call(
        &mut self,
        kind: TargetKind,
        name: &str,
        instance_id: &str,
        input: &Value,
        occurrence: Occurrence,
        http: Option<HttpCall<'_>>,
    ) -> Option<Fired> {
        if !self.faults.targets(kind) {
            return None;
        }
        let now = self.clock.now();
        self.faults.decide(&Call {
            kind,
            name,
            instance_id,
            input,
            occurrence,
            now,
            http,
        })
    }

    /// Leaves the marker of a fired rule in the instance's history (delivered with its next
    /// episode, before whatever the effect delivers).
    fn mark(&mut self, instance_id: &str, fired: &Fired, task_scheduled_id: Option<i32>) {
        self.announce(instance_id, fired);
        self.deliver(instance_id, marker(fired, task_scheduled_id));
    }

    /// Tells front ends a rule fired.
    fn announce(&mut self, instance_id: &str, fired: &Fired) {
        self.batch.outbox.push(EngineEvent::FaultFired {
            instance_id: instance_id.to_string(),
            rule: fired.label.clone(),
            effect: fired.effect.to_string(),
            target: fired.target.clone(),
        });
    }

    /// Consults the rules for an activity the instance just scheduled.
    pub(super) fn plan_activity(&mut self, work: &WorkRow) -> ActivityPlan {
        let dispatch = ActivityPlan::Dispatch {
            twice: false,
            lose_result: false,
        };
        let http_rules = work.name == HTTP_ACTIVITY && self.faults.targets(TargetKind::Http);
        if !self.faults.targets(TargetKind::Activity) && !http_rules {
            return dispatch;
        }
        let occurrence =
            self.next_call_attempt(&work.instance_id, "activity", &work.name, &work.input);
        let Some(fired) = self.decide(
            TargetKind::Activity,
            &work.name,
            &work.instance_id,
            &work.input,
            occurrence,
        ) else {
            return if http_rules {
                self.plan_http(work, occurrence)
            } else {
                dispatch
            };
        };
        self.mark(&work.instance_id, &fired, Some(work.task_id));
        if let Some(failure) = injected_failure(&fired) {
            return ActivityPlan::FailWith(failure);
        }
        match fired.effect {
            FaultEffect::Fail { .. } | FaultEffect::Panic { .. } => dispatch,
            FaultEffect::Delay(by) => {
                let due = self.later(by);
                self.defer(due, Deferred::Dispatch(work.clone()));
                ActivityPlan::Withhold
            }
            FaultEffect::Timeout => ActivityPlan::Withhold,
            FaultEffect::LoseResult => ActivityPlan::Dispatch {
                twice: false,
                lose_result: true,
            },
            FaultEffect::RunTwice => ActivityPlan::Dispatch {
                twice: true,
                lose_result: false,
            },
            FaultEffect::Crash => {
                self.batch.crash = Some(work.instance_id.clone());
                dispatch
            }
            FaultEffect::Drop
            | FaultEffect::Duplicate
            | FaultEffect::Answer { .. }
            | FaultEffect::Pending(_)
            | FaultEffect::HttpTimeout => dispatch,
        }
    }

    /// Consults the `http` rules for a Durable HTTP request the instance just scheduled (no
    /// activity rule fired on it). A request whose input is not a request meets no rule: the
    /// host fails it as invalid.
    fn plan_http(&mut self, work: &WorkRow, occurrence: Occurrence) -> ActivityPlan {
        let dispatch = ActivityPlan::Dispatch {
            twice: false,
            lose_result: false,
        };
        let Ok(wire) = crate::http_calls::parse_wire(&work.input) else {
            return dispatch;
        };
        let method = wire.method.trim().to_ascii_uppercase();
        let http = HttpCall {
            method: &method,
            poll: wire.poll,
        };
        let Some(fired) = self.decide_call(
            TargetKind::Http,
            &wire.uri,
            &work.instance_id,
            &work.input,
            occurrence,
            Some(http),
        ) else {
            return dispatch;
        };
        self.mark(&work.instance_id, &fired, Some(work.task_id));
        let answer = |status_code: u16, headers, content| {
            serde_json::to_value(DurableHttpResponse {
                status_code,
                headers,
                content,
            })
            .unwrap_or(Value::Null)
        };
        match fired.effect {
            FaultEffect::Fail {
                error_type,
                message,
                non_retriable,
            } => {
                let failure = FailureDetails::new(error_type, message);
                ActivityPlan::FailWith(if non_retriable {
                    failure.non_retriable()
                } else {
                    failure
                })
            }
            FaultEffect::Answer {
                status,
                body,
                headers,
            } => {
                self.complete_http(work, answer(status, headers, body));
                ActivityPlan::Handled
            }
            FaultEffect::Pending(_) => {
                let headers = [
                    ("location".to_string(), wire.uri.clone()),
                    ("retry-after".to_string(), "1".to_string()),
                ];
                self.complete_http(work, answer(202, headers.into(), String::new()));
                ActivityPlan::Handled
            }
            FaultEffect::Delay(by) => {
                let due = self.later(by);
                self.defer(due, Deferred::Dispatch(work.clone()));
                ActivityPlan::Withhold
            }
            FaultEffect::HttpTimeout => {
                let limit = std::time::Duration::from_millis(wire.timeout_ms);
                let failure = FailureDetails::new(
                    HTTP_TIMEOUT,
                    format!(
                        "{method} {}: no response within {} (injected)",
                        wire.uri,
                        humantime::format_duration(limit)
                    ),
                );
                let failed = EventKind::TaskFailed {
                    task_scheduled_id: work.task_id,
                    failure,
                };
                // In the inbox with its due time, so a restart keeps it waiting; the request is
                // never outstanding work, so nothing ever sends it.
                let due = self.later(limit);
                if let Err(error) = self.defer_delivery(due, &work.instance_id, vec![failed]) {
                    self.fail_batch(format!(
                        "cannot hold back the injected timeout of instance '{}': {error}",
                        work.instance_id
                    ));
                }
                ActivityPlan::Handled
            }
            // Refused for `http` targets when the rule is made; a rule that got here anyway
            // changes nothing.
            FaultEffect::Panic { .. }
            | FaultEffect::Timeout
            | FaultEffect::LoseResult
            | FaultEffect::RunTwice
            | FaultEffect::Drop
            | FaultEffect::Duplicate
            | FaultEffect::Crash => dispatch,
        }
    }

    /// Delivers a rule's answer to an HTTP request as the request's result.
    fn complete_http(&mut self, work: &WorkRow, result: Value) {
        self.deliver(
            &work.instance_id,
            EventKind::TaskCompleted {
                task_scheduled_id: work.task_id,
                result,
            },
        );
    }

    /// Consults the rules for an entity operation about to run (`attempt`: how often this
    /// entity has been asked to run this operation in this process). A fired rule is announced
    /// (`FaultFired`, with the entity as the instance) and noted in the operation log.
    pub(super) fn plan_entity_operation(
        &mut self,
        entity: &str,
        operation: &str,
        input: &Value,
        attempt: u32,
    ) -> EntityFaultPlan {
        let occurrence = Occurrence {
            generation: 0,
            attempt,
        };
        let Some(fired) = self.decide(TargetKind::Entity, operation, entity, input, occurrence)
        else {
            return EntityFaultPlan::Run;
        };
        self.announce(entity, &fired);
        let note = InjectedFault {
            rule: fired.label.clone(),
            effect: fired.effect.to_string(),
            target: fired.target.clone(),
        };
        if let Some(failure) = injected_failure(&fired) {
            return EntityFaultPlan::Fail(failure, note);
        }
        match fired.effect {
            FaultEffect::Delay(by) => EntityFaultPlan::Delay(self.later(by), note),
            // Refused for entity targets when the rule is made; a rule that got here anyway
            // changes nothing.
            _ => EntityFaultPlan::Run,
        }
    }

    /// Consults the rules for a new instance (`occurrence`: of the parent's call, for a
    /// sub-orchestration) and delivers what it should get now (normally just its
    /// `ExecutionStarted`).
    pub(super) fn plan_start(
        &mut self,
        instance_id: &str,
        name: &str,
        is_sub_orchestration: bool,
        occurrence: Occurrence,
        started: EventKind,
    ) -> Result<(), EngineError> {
        let kind = if is_sub_orchestration {
            TargetKind::SubOrchestration
        } else {
            TargetKind::Orchestration
        };
        let no_input = Value::Null;
        let input = match &started {
            EventKind::ExecutionStarted { input, .. } => input,
            _ => &no_input,
        };
        let Some(fired) = self.decide(kind, name, instance_id, input, occurrence) else {
            self.deliver(instance_id, started);
            return Ok(());
        };
        self.announce(instance_id, &fired);
        let marked = marker(&fired, None);
        if let Some(failure) = injected_failure(&fired) {
            return self.fail_at_start(instance_id, started, marked, failure);
        }
        match fired.effect {
            FaultEffect::Delay(by) => {
                let due = self.later(by);
                self.defer_delivery(due, instance_id, vec![marked, started])
            }
            FaultEffect::Timeout => {
                // Never starts: the marker alone is recorded.
                self.deliver(instance_id, marked);
                Ok(())
            }
            FaultEffect::Crash => {
                self.deliver(instance_id, started);
                self.batch.crash = Some(instance_id.to_string());
                Ok(())
            }
            FaultEffect::Fail { .. }
            | FaultEffect::Panic { .. }
            | FaultEffect::LoseResult
            | FaultEffect::RunTwice
            | FaultEffect::Drop
            | FaultEffect::Duplicate
            | FaultEffect::Answer { .. }
            | FaultEffect::Pending(_)
            | FaultEffect::HttpTimeout => {
                self.deliver(instance_id, started);
                Ok(())
            }
        }
    }

    fn fail_at_start(
        &mut self,
        instance_id: &str,
        started: EventKind,
        marked: EventKind,
        failure: FailureDetails,
    ) -> Result<(), EngineError> {
        self.deliver(instance_id, started);
        self.deliver(instance_id, marked);
        self.finish_by_host(
            instance_id,
            durable_sdk::RuntimeStatus::Failed,
            Value::Null,
            Some(failure),
        )
    }

    /// Delivers an external event to a running instance, through the rules.
    pub(super) fn deliver_event(
        &mut self,
        instance_id: &str,
        name: &str,
        input: Value,
    ) -> Result<(), EngineError> {
        let raised = EventKind::EventRaised {
            name: name.to_string(),
            input,
        };
        if !self.faults.targets(TargetKind::Event) {
            self.deliver(instance_id, raised);
            return Ok(());
        }
        self.prepare_call_counts(instance_id)?;
        // The payload is not part of the identity: the n-th event of a name is the call.
        let occurrence = self.next_call_attempt(instance_id, "event", name, &Value::Null);
        let Some(fired) = self.decide(
            TargetKind::Event,
            name,
            instance_id,
            &Value::Null,
            occurrence,
        ) else {
            self.deliver(instance_id, raised);
            return Ok(());
        };
        self.mark(instance_id, &fired, None);
        match fired.effect {
            FaultEffect::Drop => {}
            FaultEffect::Duplicate => {
                self.deliver(instance_id, raised.clone());
                self.deliver(instance_id, raised);
            }
            FaultEffect::Delay(by) => {
                let due = self.later(by);
                self.defer_delivery(due, instance_id, vec![raised])?;
            }
            FaultEffect::Crash => {
                self.deliver(instance_id, raised);
                self.batch.crash = Some(instance_id.to_string());
            }
            _ => self.deliver(instance_id, raised),
        }
        Ok(())
    }

    fn later(&self, by: std::time::Duration) -> DateTime<Utc> {
        chrono::Duration::from_std(by)
            .ok()
            .and_then(|by| self.clock.now().checked_add_signed(by))
            // Past the calendar the store can hold, "later" means its last moment.
            .map_or(durable_sdk::history::LATEST_TIME, |due| {
                due.min(durable_sdk::history::LATEST_TIME)
            })
    }

    /// Postpones messages to an instance until `due`, keeping them in its inbox meanwhile.
    fn defer_delivery(
        &mut self,
        due: DateTime<Utc>,
        instance_id: &str,
        kinds: Vec<EventKind>,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut messages = Vec::with_capacity(kinds.len());
        for kind in kinds {
            let event = durable_sdk::history::HistoryEvent {
                event_id: -1,
                timestamp: now,
                kind,
            };
            let inbox_id = self.store.push_inbox_due(instance_id, &event, due)?;
            messages.push(Message {
                event,
                inbox_id: Some(inbox_id),
            });
        }
        self.defer(due, Deferred::Deliver(instance_id.to_string(), messages));
        Ok(())
    }

    pub(super) fn defer(&mut self, due: DateTime<Utc>, work: Deferred) {
        self.mirror.deferred_seq += 1;
        self.mirror
            .deferred
            .insert((due, self.mirror.deferred_seq), work);
    }

    /// The earliest postponed work, for auto-skip.
    pub(super) fn next_deferred(&self) -> Option<DateTime<Utc>> {
        self.mirror.deferred.keys().next().map(|(due, _)| *due)
    }

    /// Releases postponed work whose time has come.
    pub(super) fn release_deferred(&mut self) {
        let now = self.clock.now();
        while let Some(entry) = self.mirror.deferred.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Deferred::Dispatch(work) => {
                    let current = self
                        .mirror
                        .live
                        .get(&work.instance_id)
                        .is_some_and(|live| live.record.execution_id == work.execution_id);
                    if current {
                        let out = InFlight { work, delivery: 1 };
                        self.mirror
                            .in_flight
                            .insert(work_key(&out.work), out.clone());
                        self.batch.to_dispatch.push(out);
                    }
                }
                Deferred::Deliver(instance_id, messages) => {
                    if self.mirror.live.contains_key(&instance_id) {
                        for mut message in messages {
                            message.event.timestamp = now;
                            self.enqueue(&instance_id, message);
                        }
                    }
                }
                Deferred::EntityMessage {
                    entity,
                    id,
                    message,
                } => {
                    if let Err(error) = self.release_entity_message(entity.clone(), id, message) {
                        self.fail_batch(format!(
                            "a delayed message to entity {entity} could not be queued: {error}"
                        ));
                        return;
                    }
                }
                Deferred::EntityWake { entity } => self.wake_entity(&entity),
            }
        }
    }

    /// A result of an activity whose first result a rule said to lose: drop it and deliver the
    /// activity again (at-least-once). Returns true if the result was lost.
    pub(super) fn lose_result_once(&mut self, key: &WorkKey) -> bool {
        if !self.mirror.lose_result.remove(key) {
            return false;
        }
        if let Some(out) = self.mirror.in_flight.get_mut(key) {
            out.delivery += 1;
            self.batch.to_dispatch.push(out.clone());
        }
        true
    }

    /// An injected crash: everything since the last commit is lost and the engine recovers from
    /// the store as a restarted process would. The marker goes to the instance that triggered it.
    pub(super) fn crash_now(&mut self, instance_id: String) -> Result<(), EngineError> {
        self.reload_from_store()?;
        self.warn(
            Some(&instance_id),
            "injected crash: the host lost everything since its last commit and recovered from the store".to_string(),
        );
        if self.mirror.live.contains_key(&instance_id) {
            self.deliver(
                &instance_id,
                EventKind::FaultInjected {
                    rule: "crash".to_string(),
                    effect: "crash the host; recovered from the store".to_string(),
                    target: format!("instance {instance_id}"),
                    task_scheduled_id: None,
                },
            );
        }
        Ok(())
    }
}

/// What makes two calls of one execution "the same call" for attempts. A Durable HTTP request's
/// own timeout is left out: the SDK cuts it to what is left of the call's budget, so a retry of
/// the same request carries a smaller one and would otherwise never count as attempt 2.
fn call_key(kind: &str, name: &str, input: &Value) -> String {
    if kind == "activity" && name == HTTP_ACTIVITY {
        if let Some(fields) = input.as_object() {
            let mut request = fields.clone();
            request.remove("timeoutMs");
            return format!("{kind}\u{0}{name}\u{0}{}", Value::Object(request));
        }
    }
    format!("{kind}\u{0}{name}\u{0}{input}")
}

/// The failure a `fail` or `panic` effect stands for; none for the other effects.
fn injected_failure(fired: &Fired) -> Option<FailureDetails> {
    match &fired.effect {
        FaultEffect::Fail {
            error_type,
            message,
            non_retriable,
        } => {
            let failure = FailureDetails::new(error_type.clone(), message.clone());
            Some(if *non_retriable {
                failure.non_retriable()
            } else {
                failure
            })
        }
        FaultEffect::Panic { message } => Some(
            FailureDetails::new(durable_sdk::PANIC, message.clone())
                .with_stack_trace(format!("injected by fault rule '{}'", fired.label)),
        ),
        _ => None,
    }
}

fn marker(fired: &Fired, task_scheduled_id: Option<i32>) -> EventKind {
    EventKind::FaultInjected {
        rule: fired.label.clone(),
        effect: fired.effect.to_string(),
        target: fired.target.clone(),
        task_scheduled_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_same_http_request_with_a_smaller_timeout_is_the_same_call() {
        let request = |timeout_ms: u64, poll: u32| json!({"method": "GET", "uri": "http://h/x", "timeoutMs": timeout_ms, "poll": poll});
        let key = |input: &Value| call_key("activity", HTTP_ACTIVITY, input);
        assert_eq!(key(&request(600_000, 0)), key(&request(590_000, 0)));
        assert_ne!(key(&request(600_000, 0)), key(&request(600_000, 1)));
        // Another activity's input is taken whole.
        let other = |input: &Value| call_key("activity", "Charge", input);
        assert_ne!(other(&request(600_000, 0)), other(&request(590_000, 0)));
    }
}
