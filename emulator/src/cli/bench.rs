//! `durable-emu bench`: the standard workloads, timed. Each prints progress lines, then one last
//! line in the shape the peer benchmarks in `../shared/peers` print:
//! `RESULT workload=fanout n=10000 secs=0.812 activities_per_sec=12315.2`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use durable_emu::clock::ClockKind;
use durable_emu::engine::{Engine, EngineConfig, default_workers};
use durable_emu::plugin::LoadedPlugin;
use durable_emu::store::DbLocation;
use durable_sdk::history::RuntimeStatus;
use durable_sdk::protocol::OrchestratorRequest;
use serde_json::json;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One orchestration fans out N no-op `Echo` activities, joins them, checks every result.
    Fanout(BenchArgs),
    /// N instances started at once, each calling `Echo` 5 times in sequence.
    Chain(BenchArgs),
    /// Replays a recorded history of about N events (made by a fan-out of N/2) through the plugin.
    Replay(BenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of the workload.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    n: u64,
    /// The database: a file (default: a fresh one in a temporary directory) or `:memory:`.
    #[arg(long, value_name = "PATH")]
    db: Option<String>,
    /// Activity worker threads; default: the number of cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
}

pub fn bench(command: BenchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BenchCommand::Fanout(args) => fanout(&args),
        BenchCommand::Chain(args) => chain(&args),
        BenchCommand::Replay(args) => replay(&args),
    }
    .map(|()| ExitCode::SUCCESS)
}

/// A started engine and the temporary directory its database lives in (if any).
struct BenchEngine {
    engine: Engine,
    _dir: Option<tempfile::TempDir>,
    db: String,
}

fn start_engine(args: &BenchArgs) -> anyhow::Result<BenchEngine> {
    let (db, dir) = match &args.db {
        Some(db) => (DbLocation::parse(db), None),
        None => {
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            (DbLocation::File(dir.path().join("bench.db")), Some(dir))
        }
    };
    let plugin = LoadedPlugin::builtin()?;
    let workers = args.workers.unwrap_or_else(default_workers).max(1);
    let label = db.to_string();
    let engine = Engine::start(EngineConfig {
        db,
        clock: ClockKind::Virtual,
        auto_skip: true,
        workers,
        plugin: Some(plugin),
    })?;
    println!("database: {label}; workers: {workers}");
    Ok(BenchEngine {
        engine,
        _dir: dir,
        db: label,
    })
}

fn fanout(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let started = Instant::now();
    let id = handle.start_orchestration("BenchFanOut", json!(args.n), None)?;
    let record = handle
        .wait_until_terminal(&id, Duration::from_secs(3600))?
        .context("the fan-out did not finish within an hour")?;
    let secs = started.elapsed().as_secs_f64();
    if record.status != RuntimeStatus::Completed || record.output != json!(args.n) {
        bail!("the fan-out ended {} with {}", record.status, record.output);
    }
    println!("fan-out of {} on {}: all results checked", args.n, bench.db);
    println!(
        "RESULT workload=fanout n={} secs={secs:.3} activities_per_sec={:.1}",
        args.n,
        args.n as f64 / secs
    );
    Ok(())
}

fn chain(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let started = Instant::now();
    let ids = (0..args.n)
        .map(|i| handle.start_orchestration("BenchChain", json!(i), None))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, id) in ids.iter().enumerate() {
        let record = handle
            .wait_until_terminal(id, Duration::from_secs(3600))?
            .context("a chain did not finish within an hour")?;
        if record.status != RuntimeStatus::Completed || record.output != json!(i as u64 + 5) {
            bail!("chain {i} ended {} with {}", record.status, record.output);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let activities = args.n * 5;
    println!("{} chains x 5 on {}: all results checked", args.n, bench.db);
    println!(
        "RESULT workload=chain n={} secs={secs:.3} activities_per_sec={:.1}",
        args.n,
        activities as f64 / secs
    );
    Ok(())
}

fn replay(args: &BenchArgs) -> anyhow::Result<()> {
    let bench = start_engine(args)?;
    let handle = bench.engine.handle();
    let fan_out = (args.n / 2).max(1);
    let id = handle.start_orchestration("BenchFanOut", json!(fan_out), None)?;
    handle
        .wait_until_terminal(&id, Duration::from_secs(3600))?
        .context("recording the history did not finish within an hour")?;

    let loading = Instant::now();
    let mut executions = handle.history(&id)?;
    let load_secs = loading.elapsed().as_secs_f64();
    let execution = executions.pop().context("the instance has no history")?;
    let events = execution.events.len();
    let plugin = LoadedPlugin::builtin()?;
    let request = OrchestratorRequest {
        instance_id: format!("{id}-replay"),
        execution_id: execution.execution.execution_id.clone(),
        history_len: events,
        past_events: execution.events,
        new_events: Vec::new(),
        include_replay_logs: false,
    };
    let replaying = Instant::now();
    let response = plugin.handle.orchestrate(&request)?;
    let replay_secs = replaying.elapsed().as_secs_f64();
    if let Some(diff) = response.nondeterminism {
        bail!("the replay diverged: {diff}");
    }
    println!(
        "history of {events} events: loaded from the store in {load_secs:.3} s, replayed through the plugin in {replay_secs:.3} s"
    );
    let secs = load_secs + replay_secs;
    println!(
        "RESULT workload=replay n={events} secs={secs:.3} events_per_sec={:.1}",
        events as f64 / secs
    );
    Ok(())
}
