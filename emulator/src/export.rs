//! JSON views of instances for scripts and other tools: the Durable Functions status shape that
//! `run` and `status` print, and the instance export that `export` writes and `import` /
//! `replay --history-file` read.
//!
//! Owns these shapes and their conversion from store records. Knows nothing of the engine's
//! threads or of command-line parsing.

use crate::engine::ExecutionHistory;
use crate::store::{ExecutionRecord, InstanceRecord};
use chrono::{DateTime, Utc};
use durable_sdk::FailureDetails;
use durable_sdk::history::{HistoryEvent, ParentInstance};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The format tag of [`InstanceExport`] files.
pub const EXPORT_FORMAT: &str = "durable-emu/instance-export@1";

/// An instance's status in the Durable Functions HTTP API shape (SEMANTICS.md section 6).
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
