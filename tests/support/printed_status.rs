//! Running a sample through the real binary and reading the status it prints: the Durable
//! Functions status JSON of `durable-emu run --history` / `durable-emu status --history`, with
//! the questions tests ask of it (output, failure chain, which events happened in which order).

use crate::binary::{ScratchDir, durable_emu};
use crate::built_cdylib;
use serde_json::Value;
use std::process::Output;

/// What the binary printed for one instance, and how it exited.
#[derive(Debug)]
pub struct PrintedStatus {
    /// The exit code (0 Completed, 1 Failed/Terminated, 2 usage errors).
    pub exit_code: Option<i32>,
    /// The status JSON (`Null` when stdout was not JSON, e.g. after a usage error).
    pub json: Value,
    /// Everything printed on stderr.
    pub stderr: String,
}

/// Which function library a run loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Library {
    /// The sample-functions cdylib, built by cargo and given as TARGET.
    Cdylib,
    /// No TARGET: the samples compiled into the binary.
    BuiltIn,
}

/// Runs `orchestration` with `input` from the sample cdylib, on the virtual clock and a
/// throwaway database, as instance `instance_id`.
pub fn run_sample(orchestration: &str, instance_id: &str, input: &Value) -> PrintedStatus {
    run_sample_with(
        Library::Cdylib,
        ":memory:",
        orchestration,
        instance_id,
        input,
    )
}

/// Like [`run_sample`], with the library and database chosen.
pub fn run_sample_with(
    library: Library,
    db: &str,
    orchestration: &str,
    instance_id: &str,
    input: &Value,
) -> PrintedStatus {
    let cdylib = built_cdylib("sample-functions");
    let cdylib = cdylib.to_string_lossy();
    // `--input=` so that a negative number is not taken for an option.
    let input = format!("--input={input}");
    let mut args = vec!["run"];
    if library == Library::Cdylib {
        args.push(&cdylib);
    }
    args.extend([
        "--orchestration",
        orchestration,
        &input,
        "--instance-id",
        instance_id,
        "--clock",
        "virtual",
        "--db",
        db,
        "--history",
    ]);
    let scratch = ScratchDir::new("run");
    PrintedStatus::from_output(durable_emu(&args, scratch.path()))
}

/// `durable-emu status <instance_id> --history` on the database file `db`.
pub fn instance_status(db: &str, instance_id: &str) -> PrintedStatus {
    let scratch = ScratchDir::new("status");
    PrintedStatus::from_output(durable_emu(
        &["status", instance_id, "--history", "--db", db],
        scratch.path(),
    ))
}

impl PrintedStatus {
    /// What a `run` or `status` command printed, read (for runs with arguments of their own).
    pub fn from_output(output: Output) -> Self {
        Self {
            exit_code: output.status.code(),
            json: serde_json::from_slice(&output.stdout).unwrap_or(Value::Null),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `runtimeStatus`, e.g. `Completed`.
    pub fn runtime_status(&self) -> &str {
        self.json["runtimeStatus"].as_str().unwrap_or_default()
    }

    /// `output`.
    pub fn output(&self) -> &Value {
        &self.json["output"]
    }

    /// `customStatus`.
    pub fn custom_status(&self) -> &Value {
        &self.json["customStatus"]
    }

    /// The `errorType` of `failureDetails` and of each inner failure, outermost first.
    pub fn failure_chain(&self) -> Vec<&str> {
        std::iter::successors(self.json.get("failureDetails"), |failure| {
            failure.get("innerFailure")
        })
        .map(|failure| failure["errorType"].as_str().unwrap_or_default())
        .collect()
    }

    /// The innermost failure (`Null` if the instance did not fail).
    pub fn root_failure(&self) -> &Value {
        std::iter::successors(self.json.get("failureDetails"), |failure| {
            failure.get("innerFailure")
        })
        .last()
        .unwrap_or(&Value::Null)
    }

    /// Every execution's history events, oldest first.
    pub fn events(&self) -> &[Value] {
        self.json["historyEvents"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The events of type `event_type` (e.g. `TimerCreated`), in order.
    pub fn events_of(&self, event_type: &str) -> Vec<&Value> {
        self.events()
            .iter()
            .filter(|event| event["eventType"] == event_type)
            .collect()
    }

    /// How many events of type `event_type` there are.
    pub fn count(&self, event_type: &str) -> usize {
        self.events_of(event_type).len()
    }

    /// The names of the activities scheduled, in order (with repeats).
    pub fn scheduled_activities(&self) -> Vec<&str> {
        self.names_of("TaskScheduled")
    }

    /// The `name` of each event of type `event_type`, in order.
    pub fn names_of(&self, event_type: &str) -> Vec<&str> {
        self.events_of(event_type)
            .into_iter()
            .map(|event| event["name"].as_str().unwrap_or_default())
            .collect()
    }

    /// Every event type except the episode markers (`OrchestratorStarted`,
    /// `OrchestratorCompleted`), in order: the story of the instance.
    pub fn story(&self) -> Vec<&str> {
        self.events()
            .iter()
            .filter_map(|event| event["eventType"].as_str())
            .filter(|kind| !matches!(*kind, "OrchestratorStarted" | "OrchestratorCompleted"))
            .collect()
    }

    /// A description for assertion messages: exit code, stderr and the status.
    pub fn explain(&self) -> String {
        format!(
            "exit code {:?}\nstderr: {}\nstatus: {}",
            self.exit_code,
            self.stderr,
            serde_json::to_string_pretty(&self.json).unwrap_or_default()
        )
    }
}
