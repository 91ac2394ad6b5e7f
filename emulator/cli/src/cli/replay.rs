//! `durable-emu replay`: replays recorded histories against a library and reports every
//! nondeterminism with its structured diff. The CI check that a code change keeps in-flight
//! instances replayable.

use super::{DbArgs, load_target, reader};
use anyhow::Context;
use clap::Args;
use durable_emu_engine::engine::ExecutionHistory;
use durable_emu_engine::export::InstanceExport;
use durable_emu_engine::plugin::LoadedPlugin;
use durable_sdk::protocol::{NonDeterminism, OrchestratorRequest};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A plugin library or crate directory; default: the built-in sample functions.
    target: Option<PathBuf>,
    /// Replay only this instance (default: every instance in the database).
    #[arg(long, value_name = "ID")]
    instance: Option<String>,
    /// Replay the histories in this export file instead of a database.
    #[arg(long, value_name = "FILE", conflicts_with = "instance")]
    history_file: Option<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let plugin = load_target(args.target.as_deref())?;
    let histories = collect_histories(&args)?;
    let mut replayed = 0;
    let mut diverged = 0;
    for (instance_id, executions) in &histories {
        for execution in executions {
            replayed += 1;
            if let Some(diff) = replay_execution(&plugin, instance_id, execution)? {
                diverged += 1;
                println!(
                    "NONDETERMINISM instance={instance_id} execution={} #{}: {diff}",
                    execution.execution.execution_id, diff.sequence_id
                );
                println!("  diff: {}", serde_json::to_string(&diff)?);
            }
        }
    }
    println!(
        "replayed {replayed} execution(s) of {} instance(s): {diverged} nondeterministic",
        histories.len()
    );
    Ok(if diverged == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn collect_histories(args: &ReplayArgs) -> anyhow::Result<Vec<(String, Vec<ExecutionHistory>)>> {
    if let Some(file) = &args.history_file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let export = InstanceExport::parse(&text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("reading {}", file.display()))?;
        let executions = export
            .execution_records()
            .into_iter()
            .zip(export.executions)
            .map(|(execution, exported)| ExecutionHistory {
                execution,
                builds: vec![None; exported.history.len()],
                events: exported.history,
            })
            .collect();
        return Ok(vec![(export.instance.instance_id, executions)]);
    }
    let handle = reader(&args.db)?;
    let ids: Vec<String> = match &args.instance {
        Some(id) => vec![id.clone()],
        None => {
            let listing = handle.instances()?;
            for unreadable in &listing.unreadable {
                eprintln!(
                    "warning: instance {} cannot be read and is not replayed: {}",
                    unreadable.instance_id, unreadable.reason
                );
            }
            listing
                .instances
                .into_iter()
                .map(|record| record.instance_id)
                .collect()
        }
    };
    ids.into_iter()
        .map(|id| {
            let history = handle.history(&id)?;
            Ok((id, history))
        })
        .collect()
}

/// Replays one execution's whole history; returns the first disagreement, if any.
fn replay_execution(
    plugin: &LoadedPlugin,
    instance_id: &str,
    execution: &ExecutionHistory,
) -> anyhow::Result<Option<NonDeterminism>> {
    if execution.events.is_empty() {
        return Ok(None);
    }
    let request = OrchestratorRequest {
        instance_id: instance_id.to_string(),
        execution_id: execution.execution.execution_id.clone(),
        history_len: execution.events.len(),
        past_events: execution.events.clone(),
        new_events: Vec::new(),
        include_replay_logs: false,
        max_actions: None,
    };
    let response = plugin
        .handle
        .orchestrate(&request)
        .with_context(|| format!("replaying {instance_id}"))?;
    Ok(response.nondeterminism)
}
