//! The management subcommands: list, status, raise, terminate, purge, export, import. They open
//! the database without loading functions. list, status and export only read it (`Reader`: they
//! create, migrate and lock nothing); raised events wait in the database until an emulator with
//! the functions runs it; terminate is carried out directly.

use super::{DbArgs, parse_json, query_engine, reader};
use anyhow::Context;
use clap::Args;
use durable_emu_engine::export::{InstanceExport, InstanceStatus};
use serde_json::Value;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only instances with this runtime status (e.g. Running, Failed).
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// Print a JSON array of statuses instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let wanted = args
        .status
        .as_deref()
        .map(str::parse::<durable_sdk::RuntimeStatus>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let listing = reader(&args.db)?.instances()?;
    // A row that does not decode is named on stderr and the exit code says the list is
    // incomplete; the other rows are listed as usual.
    for unreadable in &listing.unreadable {
        eprintln!(
            "warning: instance {} cannot be read and is not listed: {}",
            unreadable.instance_id, unreadable.reason
        );
    }
    let code = if listing.unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    };
    let instances: Vec<_> = listing
        .instances
        .into_iter()
        .filter(|record| wanted.is_none_or(|status| record.status == status))
        .collect();
    if args.json {
        let statuses: Vec<InstanceStatus> = instances
            .iter()
            .map(|record| InstanceStatus::from_record(record, None))
            .collect();
        println!("{}", serde_json::to_string_pretty(&statuses)?);
        return Ok(code);
    }
    println!(
        "{:<34} {:<22} {:<11} {:<25} UPDATED",
        "INSTANCE", "NAME", "STATUS", "CREATED"
    );
    for record in &instances {
        println!(
            "{:<34} {:<22} {:<11} {:<25} {}",
            record.instance_id,
            record.name,
            record.status.as_str(),
            record.created_at.format("%Y-%m-%d %H:%M:%S"),
            record.updated_at.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(code)
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The instance id.
    instance_id: String,
    /// Include every execution's history events.
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    db: DbArgs,
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let handle = reader(&args.db)?;
    let record = handle
        .instance(&args.instance_id)?
        .with_context(|| format!("no instance '{}' in {}", args.instance_id, args.db.db))?;
    let history = if args.history {
        Some(handle.history(&args.instance_id)?)
    } else {
        None
    };
    let status = InstanceStatus::from_record(&record, history.as_deref());
    println!("{}", serde_json::to_string_pretty(&status)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RaiseArgs {
    /// The instance id.
    instance_id: String,
    /// The event name (compared case-insensitively by the orchestration).
    event: String,
    /// The payload, as JSON; default null.
    data: Option<String>,
    #[command(flatten)]
    db: DbArgs,
}

pub fn raise(args: RaiseArgs) -> anyhow::Result<ExitCode> {
    let data = match &args.data {
        Some(text) => parse_json("the event data", text)?,
        None => Value::Null,
    };
    let engine = query_engine(&args.db)?;
    engine
        .handle()
        .raise_event(&args.instance_id, &args.event, data)?;
    engine.shutdown();
    eprintln!(
        "event '{}' queued for {}; it is delivered when an emulator with the functions runs {}",
        args.event, args.instance_id, args.db.db
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct TerminateArgs {
    /// The instance id.
    instance_id: String,
    /// Why; becomes the instance's output.
    #[arg(long, default_value = "terminated from the command line")]
    reason: String,
    /// Also terminate its running sub-orchestrations.
    #[arg(long)]
    recursive: bool,
    #[command(flatten)]
    db: DbArgs,
}

pub fn terminate(args: TerminateArgs) -> anyhow::Result<ExitCode> {
    let engine = query_engine(&args.db)?;
    let handle = engine.handle();
    handle.terminate(
        &args.instance_id,
        Value::String(args.reason),
        args.recursive,
    )?;
    let record = handle
        .wait_until_terminal(&args.instance_id, std::time::Duration::from_secs(10))?
        .context("the instance did not terminate")?;
    engine.shutdown();
    eprintln!("{} is {}", args.instance_id, record.status);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The instance id.
    instance_id: String,
    #[command(flatten)]
    db: DbArgs,
}

pub fn purge(args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let engine = query_engine(&args.db)?;
    let deleted = engine.handle().purge(&args.instance_id)?;
    engine.shutdown();
    if !deleted {
        anyhow::bail!("no instance '{}' in {}", args.instance_id, args.db.db);
    }
    println!("{{\"instancesDeleted\":1}}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The instance id.
    instance_id: String,
    #[command(flatten)]
    db: DbArgs,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let handle = reader(&args.db)?;
    let record = handle
        .instance(&args.instance_id)?
        .with_context(|| format!("no instance '{}' in {}", args.instance_id, args.db.db))?;
    let executions = handle.history(&args.instance_id)?;
    let export = InstanceExport::new(&record, &executions);
    println!("{}", serde_json::to_string_pretty(&export)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `durable-emu export`.
    file: PathBuf,
    #[command(flatten)]
    db: DbArgs,
}

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let export = InstanceExport::parse(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let engine = query_engine(&args.db)?;
    let id = engine.handle().import(export)?;
    engine.shutdown();
    eprintln!("imported {id} into {}", args.db.db);
    Ok(ExitCode::SUCCESS)
}
