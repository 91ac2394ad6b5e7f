//! `durable-emu run`: start one instance, run it to the end, print its status.

use super::{EngineArgs, load_target, parse_json};
use anyhow::Context;
use clap::Args;
use durable_emu::clock::parse_duration;
use durable_emu::engine::{Engine, StoreFailurePolicy};
use durable_emu::export::InstanceStatus;
use durable_sdk::history::RuntimeStatus;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A plugin library or crate directory; default: the built-in sample functions.
    target: Option<PathBuf>,
    /// The orchestration to start.
    #[arg(long, short = 'o', value_name = "NAME")]
    orchestration: String,
    /// Its input, as JSON (e.g. `5`, `'"Tokyo"'`, `'{"order_id":"o1"}'`).
    #[arg(
        long,
        short = 'i',
        value_name = "JSON",
        default_value = "null",
        allow_hyphen_values = true
    )]
    input: String,
    /// The instance id; default: a new random id.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Give up (exit 1) if the instance has not ended after this much real time, e.g. `30s`.
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    timeout: String,
    /// Include every execution's history events in the printed status.
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let input = parse_json("--input", &args.input)?;
    let timeout = parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let plugin = load_target(args.target.as_deref())?;
    let mut config = args.engine.config(Some(plugin))?;
    // A one-shot run reports a failing store and exits rather than waiting for it to recover.
    config.on_store_failure = StoreFailurePolicy::Stop;
    let engine = Engine::start(config).with_context(|| format!("opening {}", args.engine.db.db))?;
    let handle = engine.handle();
    let instance_id = handle.start_orchestration(&args.orchestration, input, args.instance_id)?;
    let finished = handle.wait_until_terminal(&instance_id, timeout)?;
    let record = match finished {
        Some(record) => record,
        None => handle
            .instance(&instance_id)?
            .context("the instance disappeared while running")?,
    };
    let history = if args.history {
        Some(handle.history(&instance_id)?)
    } else {
        None
    };
    let status = InstanceStatus::from_record(&record, history.as_deref());
    println!("{}", serde_json::to_string_pretty(&status)?);
    engine.shutdown();
    if !record.status.is_terminal() {
        eprintln!(
            "instance {instance_id} is still {} after {}; it stays in the database",
            record.status, args.timeout
        );
        return Ok(ExitCode::from(1));
    }
    Ok(if record.status == RuntimeStatus::Completed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
