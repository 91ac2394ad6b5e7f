//! JSON views of instances for scripts and other tools: the Durable Functions status shape that
//! `run` and `status` print, and the instance export that `export` writes and `import` /
//! `replay --history-file` read.
//!
//! Owns these shapes, their conversion from store records, and the check that an export can be a
//! history at all ([`InstanceExport::validate`]) before anything of it is imported. Knows nothing
//! of the engine's threads or of command-line parsing.

use crate::engine::ExecutionHistory;
use crate::store::{ExecutionRecord, InstanceRecord};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::{EventKind, check_time};
use durable_sdk::history::{HistoryEvent, ParentInstance};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The format tag of [`InstanceExport`] files.
pub const EXPORT_FORMAT: &str = "durable-emu/instance-export@1";

/// An instance's status in the Durable Functions HTTP API shape (docs/semantics.md#status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    /// Orchestration name.
    pub name: String,
    /// Instance id.
    pub instance_id: String,
    /// Runtime status (`Completed`, `Failed`, ...).
    pub runtime_status: String,
    /// The current execution's input.
    pub input: Value,
    /// The output (Completed) or reason (Terminated).
    pub output: Value,
    /// The last custom status.
    pub custom_status: Value,
    /// When the instance was created.
    pub created_time: DateTime<Utc>,
    /// When it last changed.
    pub last_updated_time: DateTime<Utc>,
    /// Why it failed, with the whole chain (Failed only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_details: Option<FailureDetails>,
    /// The parent, for sub-orchestrations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentInstance>,
    /// The current execution id.
    pub execution_id: String,
    /// Every execution's events, oldest first (only when asked for history).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_events: Option<Vec<HistoryEvent>>,
}

impl InstanceStatus {
    /// The status of `record`, with `history` (all executions, in order) if given.
    pub fn from_record(record: &InstanceRecord, history: Option<&[ExecutionHistory]>) -> Self {
        Self {
            name: record.name.clone(),
            instance_id: record.instance_id.clone(),
            runtime_status: record.status.as_str().to_string(),
            input: record.input.clone(),
            output: record.output.clone(),
            custom_status: record.custom_status.clone().unwrap_or(Value::Null),
            created_time: record.created_at,
            last_updated_time: record.updated_at,
            failure_details: record.failure.clone(),
            parent: record.parent.clone(),
            execution_id: record.execution_id.clone(),
            history_events: history.map(|executions| {
                executions
                    .iter()
                    .flat_map(|execution| execution.events.iter().cloned())
                    .collect()
            }),
        }
    }
}

/// One execution in an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionExport {
    /// Execution id.
    pub execution_id: String,
    /// 0 for the first execution.
    pub ordinal: i64,
    /// Its input.
    pub input: Value,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its history.
    pub history: Vec<HistoryEvent>,
}

/// Everything recorded about one instance, as `durable-emu export` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceExport {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// The instance's status (without history).
    pub instance: InstanceStatus,
    /// Every execution, oldest first.
    pub executions: Vec<ExecutionExport>,
}

impl InstanceExport {
    /// The export of `record` with its executions.
    pub fn new(record: &InstanceRecord, executions: &[ExecutionHistory]) -> Self {
        Self {
            format: EXPORT_FORMAT.to_string(),
            instance: InstanceStatus::from_record(record, None),
            executions: executions
                .iter()
                .map(|execution| ExecutionExport {
                    execution_id: execution.execution.execution_id.clone(),
                    ordinal: execution.execution.ordinal,
                    input: execution.execution.input.clone(),
                    started_at: execution.execution.started_at,
                    history: execution.events.clone(),
                })
                .collect(),
        }
    }

    /// Parses an export, with a message that says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let export: Self = serde_json::from_str(text)
            .map_err(|error| format!("not a durable-emu instance export: {error}"))?;
        if export.format != EXPORT_FORMAT {
            return Err(format!(
                "unsupported export format '{}' (this build reads '{EXPORT_FORMAT}')",
                export.format
            ));
        }
        if export.executions.is_empty() {
            return Err("the export has no executions".to_string());
        }
        Ok(export)
    }

    /// The instance record this export describes.
    pub fn to_record(&self) -> Result<InstanceRecord, String> {
        let status = self.instance.runtime_status.parse()?;
        let history_len = self
            .executions
            .iter()
            .find(|execution| execution.execution_id == self.instance.execution_id)
            .map_or(0, |execution| execution.history.len());
        Ok(InstanceRecord {
            instance_id: self.instance.instance_id.clone(),
            name: self.instance.name.clone(),
            execution_id: self.instance.execution_id.clone(),
            status,
            input: self.instance.input.clone(),
            output: self.instance.output.clone(),
            failure: self.instance.failure_details.clone(),
            custom_status: match &self.instance.custom_status {
                Value::Null => None,
                other => Some(other.clone()),
            },
            created_at: self.instance.created_time,
            updated_at: self.instance.last_updated_time,
            parent: self.instance.parent.clone(),
            history_len,
            build: None,
            pinned: false,
            divergence: None,
            awaited_events: Vec::new(),
            version: None,
            tags: Default::default(),
            scheduled_start: None,
        })
    }

    /// The execution records of this export.
    pub fn execution_records(&self) -> Vec<ExecutionRecord> {
        self.executions
            .iter()
            .map(|execution| ExecutionRecord {
                execution_id: execution.execution_id.clone(),
                ordinal: execution.ordinal,
                input: execution.input.clone(),
                started_at: execution.started_at,
            })
            .collect()
    }
}

/// Why an export cannot be imported: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot import: {at}: {problem}; nothing was imported")]
pub struct ImportError {
    /// The instance, execution or event at fault, e.g. `execution 0 (e1), event 5 (TaskCompleted for #3)`.
    pub at: String,
    /// What is wrong.
    pub problem: String,
}

impl InstanceExport {
    /// Checks that this export can be a history: a non-empty instance id; an `executionId` that
    /// is one of its executions; times a history can hold; and in each execution, a non-empty
    /// history of whole episodes (`OrchestratorStarted` ... `OrchestratorCompleted`, not cut
    /// inside one), one `ExecutionStarted` in the first episode naming this instance and
    /// execution, no event id used twice, and every completion completing a call scheduled
    /// before it, of its kind, once.
    pub fn validate(&self) -> Result<(), ImportError> {
        let instance = &self.instance;
        let refuse = |at: String, problem: String| Err(ImportError { at, problem });
        if instance.instance_id.trim().is_empty() {
            return refuse("the instance".into(), "its instanceId is empty".into());
        }
        let whole = format!("instance {}", instance.instance_id);
        for (time, what) in [
            (instance.created_time, "createdTime"),
            (instance.last_updated_time, "lastUpdatedTime"),
        ] {
            if let Err(error) = check_time(time) {
                return refuse(whole, format!("its {what}: {error}"));
            }
        }
        if self.executions.is_empty() {
            return refuse(whole, "it has no executions".into());
        }
        if !self
            .executions
            .iter()
            .any(|execution| execution.execution_id == instance.execution_id)
        {
            return refuse(
                whole,
                format!(
                    "its executionId '{}' is none of its executions",
                    instance.execution_id
                ),
            );
        }
        let mut seen = HashSet::new();
        for (index, execution) in self.executions.iter().enumerate() {
            let at = format!("execution {index} ({})", execution.execution_id);
            if !seen.insert(execution.execution_id.as_str()) {
                return refuse(at, "this execution id appears twice".into());
            }
            if let Err(error) = check_time(execution.started_at) {
                return refuse(at, format!("its startedAt: {error}"));
            }
            validate_history(&instance.instance_id, execution).map_err(|(event, problem)| {
                ImportError {
                    at: match event {
                        Some((seq, name)) => format!("{at}, event {seq} ({name})"),
                        None => at.clone(),
                    },
                    problem,
                }
            })?;
        }
        Ok(())
    }
}

/// An event for messages: its type, with the call id it makes or completes.
fn describe(event: &HistoryEvent) -> String {
    let kind = event.kind.type_name();
    match (&event.kind, event.kind.completes_task()) {
        (EventKind::TimerFired { timer_id, .. }, _) => format!("{kind} for #{timer_id}"),
        (_, Some(task)) => format!("{kind} for #{task}"),
        _ if event.event_id >= 0 => format!("{kind} #{}", event.event_id),
        _ => kind.to_string(),
    }
}

/// What kind of call an event schedules (the key its completions must match).
fn scheduled_call(kind: &EventKind) -> Option<&'static str> {
    match kind {
        EventKind::TaskScheduled { .. } => Some("activity"),
        EventKind::TimerCreated { .. } => Some("timer"),
        EventKind::SubOrchestrationInstanceCreated { .. } => Some("sub-orchestration"),
        _ => None,
    }
}

/// What kind of call an event completes, and which.
fn completed_call(kind: &EventKind) -> Option<(&'static str, i32)> {
    match kind {
        EventKind::TaskCompleted {
            task_scheduled_id, ..
        }
        | EventKind::TaskFailed {
            task_scheduled_id, ..
        } => Some(("activity", *task_scheduled_id)),
        EventKind::SubOrchestrationInstanceCompleted {
            task_scheduled_id, ..
        }
        | EventKind::SubOrchestrationInstanceFailed {
            task_scheduled_id, ..
        } => Some(("sub-orchestration", *task_scheduled_id)),
        EventKind::TimerFired { timer_id, .. } => Some(("timer", *timer_id)),
        _ => None,
    }
}

type EventProblem = (Option<(usize, String)>, String);

/// The per-execution rules of [`InstanceExport::validate`]; the error names the event.
fn validate_history(instance_id: &str, execution: &ExecutionExport) -> Result<(), EventProblem> {
    let history = &execution.history;
    let Some(last) = history.last() else {
        return Err((None, "its history is empty".into()));
    };
    let mut in_episode = false;
    let mut episodes = 0usize;
    let mut started = false;
    let mut ids: HashMap<i32, usize> = HashMap::new();
    let mut scheduled: HashMap<i32, (&'static str, &'static str)> = HashMap::new();
    let mut completed: HashMap<i32, usize> = HashMap::new();
    for (seq, event) in history.iter().enumerate() {
        let name = describe(event);
        let fail = |problem: String| Err((Some((seq, name.clone())), problem));
        for time in event.times() {
            if let Err(error) = check_time(time) {
                return fail(error.to_string());
            }
        }
        match &event.kind {
            EventKind::OrchestratorStarted => {
                if in_episode {
                    return fail("a new episode starts before the previous one ended with OrchestratorCompleted".into());
                }
                in_episode = true;
                episodes += 1;
            }
            EventKind::OrchestratorCompleted => {
                if !in_episode {
                    return fail(
                        "it ends an episode that never started (no OrchestratorStarted before it)"
                            .into(),
                    );
                }
                in_episode = false;
            }
            _ if !in_episode => {
                return fail(
                    "it is outside an episode: a history is whole episodes, OrchestratorStarted ... OrchestratorCompleted"
                        .into(),
                );
            }
            EventKind::ExecutionStarted {
                instance_id: started_id,
                execution_id,
                ..
            } => {
                if started {
                    return fail("the execution starts a second time".into());
                }
                if episodes != 1 {
                    return fail("ExecutionStarted must be in the first episode".into());
                }
                if started_id != instance_id {
                    return fail(format!(
                        "it names instance '{started_id}', but the export is of instance '{instance_id}'"
                    ));
                }
                if *execution_id != execution.execution_id {
                    return fail(format!(
                        "it names execution '{execution_id}', but it is in execution '{}'",
                        execution.execution_id
                    ));
                }
                started = true;
            }
            _ => {}
        }
        if !started && !matches!(event.kind, EventKind::OrchestratorStarted) {
            return fail("it comes before ExecutionStarted".into());
        }
        if event.event_id >= 0 {
            if let Some(first) = ids.insert(event.event_id, seq) {
                return fail(format!(
                    "event id {} is already used by event {first}",
                    event.event_id
                ));
            }
            if let Some(call) = scheduled_call(&event.kind) {
                scheduled.insert(event.event_id, (call, event.kind.type_name()));
            }
        }
        if let Some((call, id)) = completed_call(&event.kind) {
            match scheduled.get(&id) {
                None => {
                    return fail(format!(
                        "it completes #{id}, but no {call} #{id} was scheduled before it"
                    ));
                }
                Some((kind, by)) if *kind != call => {
                    return fail(format!(
                        "it completes #{id} as a {call}, but #{id} was scheduled by {by}"
                    ));
                }
                Some(_) => {}
            }
            if let Some(first) = completed.insert(id, seq) {
                return fail(format!("#{id} was already completed by event {first}"));
            }
        }
    }
    if in_episode {
        return Err((
            Some((history.len() - 1, describe(last))),
            "the history is cut inside an episode: it ends without OrchestratorCompleted".into(),
        ));
    }
    if !started {
        return Err((None, "its history has no ExecutionStarted".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use durable_sdk::history::RuntimeStatus;

    const INSTANCE: &str = "order-1";
    const EXECUTION: &str = "e1";

    fn event(event_id: i32, kind: EventKind) -> HistoryEvent {
        HistoryEvent {
            event_id,
            timestamp: DateTime::UNIX_EPOCH,
            kind,
        }
    }

    fn started(instance_id: &str) -> HistoryEvent {
        event(
            -1,
            EventKind::ExecutionStarted {
                name: "Order".into(),
                version: None,
                input: Value::Null,
                instance_id: instance_id.into(),
                execution_id: EXECUTION.into(),
                parent: None,
                scheduled_start: None,
            },
        )
    }

    fn scheduled(id: i32) -> HistoryEvent {
        event(
            id,
            EventKind::TaskScheduled {
                name: "Charge".into(),
                input: Value::Null,
            },
        )
    }

    fn completed(id: i32) -> HistoryEvent {
        event(
            -1,
            EventKind::TaskCompleted {
                task_scheduled_id: id,
                result: Value::Null,
            },
        )
    }

    fn episode_start() -> HistoryEvent {
        event(-1, EventKind::OrchestratorStarted)
    }

    fn episode_end() -> HistoryEvent {
        event(-1, EventKind::OrchestratorCompleted)
    }

    /// Schedules #0 and #1, then #0 completes: two whole episodes.
    fn good_history() -> Vec<HistoryEvent> {
        vec![
            episode_start(),
            started(INSTANCE),
            scheduled(0),
            scheduled(1),
            episode_end(),
            episode_start(),
            completed(0),
            episode_end(),
        ]
    }

    fn export(history: Vec<HistoryEvent>) -> InstanceExport {
        InstanceExport {
            format: EXPORT_FORMAT.into(),
            instance: InstanceStatus {
                name: "Order".into(),
                instance_id: INSTANCE.into(),
                runtime_status: RuntimeStatus::Running.as_str().into(),
                input: Value::Null,
                output: Value::Null,
                custom_status: Value::Null,
                created_time: DateTime::UNIX_EPOCH,
                last_updated_time: DateTime::UNIX_EPOCH,
                failure_details: None,
                parent: None,
                execution_id: EXECUTION.into(),
                history_events: None,
            },
            executions: vec![ExecutionExport {
                execution_id: EXECUTION.into(),
                ordinal: 0,
                input: Value::Null,
                started_at: DateTime::UNIX_EPOCH,
                history,
            }],
        }
    }

    fn refusal(history: Vec<HistoryEvent>) -> String {
        export(history).validate().unwrap_err().to_string()
    }

    #[test]
    fn a_history_of_whole_episodes_is_accepted() {
        export(good_history()).validate().unwrap();
    }

    #[test]
    fn a_duplicate_event_id_is_refused_naming_the_event() {
        let mut history = good_history();
        history[3] = scheduled(0);
        let message = refusal(history);
        assert!(message.contains("event 3 (TaskScheduled #0)"), "{message}");
        assert!(message.contains("already used by event 2"), "{message}");
    }

    #[test]
    fn a_completion_of_a_task_never_scheduled_is_refused() {
        let mut history = good_history();
        history[6] = completed(7);
        let message = refusal(history);
        assert!(
            message.contains("event 6 (TaskCompleted for #7)"),
            "{message}"
        );
        assert!(
            message.contains("no activity #7 was scheduled"),
            "{message}"
        );
    }

    #[test]
    fn a_completion_of_another_kind_of_call_is_refused() {
        let mut history = good_history();
        history[6] = event(
            -1,
            EventKind::TimerFired {
                fire_at: DateTime::UNIX_EPOCH,
                timer_id: 0,
            },
        );
        let message = refusal(history);
        assert!(
            message.contains("as a timer, but #0 was scheduled by TaskScheduled"),
            "{message}"
        );
    }

    #[test]
    fn a_duplicated_completion_is_refused() {
        let mut history = good_history();
        history.insert(7, completed(0));
        let message = refusal(history);
        assert!(
            message.contains("event 7 (TaskCompleted for #0)"),
            "{message}"
        );
        assert!(
            message.contains("already completed by event 6"),
            "{message}"
        );
    }

    #[test]
    fn an_instance_id_that_differs_from_its_events_is_refused() {
        let mut history = good_history();
        history[1] = started("someone-else");
        let message = refusal(history);
        assert!(message.contains("event 1 (ExecutionStarted)"), "{message}");
        assert!(
            message.contains("names instance 'someone-else'"),
            "{message}"
        );
    }

    #[test]
    fn an_empty_instance_id_is_refused() {
        let mut export = export(good_history());
        export.instance.instance_id = "  ".into();
        let message = export.validate().unwrap_err().to_string();
        assert!(message.contains("instanceId is empty"), "{message}");
    }

    #[test]
    fn an_empty_history_is_refused() {
        let message = refusal(Vec::new());
        assert!(message.contains("execution 0 (e1)"), "{message}");
        assert!(message.contains("history is empty"), "{message}");
    }

    #[test]
    fn a_history_cut_inside_an_episode_is_refused() {
        let mut history = good_history();
        history.truncate(7);
        let message = refusal(history);
        assert!(
            message.contains("event 6 (TaskCompleted for #0)"),
            "{message}"
        );
        assert!(message.contains("cut inside an episode"), "{message}");
    }

    #[test]
    fn events_outside_an_episode_are_refused() {
        let mut history = good_history();
        history.remove(5);
        let message = refusal(history);
        assert!(
            message.contains("event 5 (TaskCompleted for #0)"),
            "{message}"
        );
        assert!(message.contains("outside an episode"), "{message}");
    }

    #[test]
    fn a_time_past_year_9999_is_refused() {
        let mut history = good_history();
        history[2] = event(
            0,
            EventKind::TimerCreated {
                fire_at: DateTime::<chrono::Utc>::MAX_UTC,
            },
        );
        let message = refusal(history);
        assert!(message.contains("event 2 (TimerCreated #0)"), "{message}");
        assert!(message.contains("years 1 to 9999"), "{message}");
    }

    #[test]
    fn an_execution_id_that_is_none_of_the_executions_is_refused() {
        let mut export = export(good_history());
        export.instance.execution_id = "e9".into();
        let message = export.validate().unwrap_err().to_string();
        assert!(
            message.contains("'e9' is none of its executions"),
            "{message}"
        );
    }
}
