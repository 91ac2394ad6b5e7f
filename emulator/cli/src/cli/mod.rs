//! Command-line parsing and dispatch. Each subcommand lives in its own module and talks to the
//! engine only through `Engine` / `EngineHandle` (or `Reader`), or, when an emulator already
//! runs on the database, through that emulator's HTTP API (`client.rs`, chosen per command in
//! `manage.rs` and `entity.rs`); none of them opens the store itself.
//!
//! Output to a closed pipe (`durable-emu list | head -1`) ends the process quietly, the way the
//! shell's own tools do: the commands that print and exit restore the default `SIGPIPE` action,
//! so the write that finds no reader ends the process with that signal (status 141 in a shell),
//! with no message and no panic. The commands that hold sockets (the UI, `serve`, `bench`,
//! `worker`, `run --isolate`) keep `SIGPIPE` ignored: the HTTP/2 and HTTP stacks write with
//! `writev`, which raises `SIGPIPE` on a connection its peer has closed, and a client that
//! disconnects must not end the emulator. `serve` treats a broken stdout as a request to stop.

mod bench;
mod client;
mod endpoint;
mod entity;
mod http;
mod isolate;
mod listen;
mod manage;
mod replay;
mod run;
mod serve;
mod sidecar;
mod ui;
mod worker;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use durable_emu_engine::DbLocation;
use durable_emu_engine::cargo_build::BuildOptions;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::{
    Engine, EngineConfig, EngineHandle, Limits, Reader, StoreFailurePolicy, default_workers,
};
use durable_emu_engine::faults::{FaultRule, parse_compact, parse_scenario};
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_engine::watch::{BuildSink, Target, WatchOptions, Watcher, load_once};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Run and debug durable orchestrations locally.
#[derive(Debug, Parser)]
#[command(name = "durable-emu", version, about, long_about = None)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// A plugin library (.so/.dylib/.dll) or a crate directory to build (watched and reloaded);
    /// default: the built-in sample functions. Without a subcommand, opens the terminal UI.
    target: Option<PathBuf>,
    /// How the terminal UI's engine runs.
    #[command(flatten)]
    engine: EngineArgs,
    /// Start the terminal UI with virtual time paused (it moves only on `n`, `+`, `:advance` or
    /// auto-skip) instead of running at real speed; `.` or `:play` starts it.
    #[arg(long)]
    paused: bool,
    #[command(flatten)]
    grpc: sidecar::GrpcArgs,
    #[command(flatten)]
    http: http::HttpArgs,
    #[command(flatten)]
    isolate: isolate::IsolateArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start one instance, run it until it ends, print its status as JSON.
    Run(run::RunArgs),
    /// List the instances in a database.
    List(manage::ListArgs),
    /// Print one instance's status as JSON.
    Status(manage::StatusArgs),
    /// Raise an external event on an instance.
    Raise(manage::RaiseArgs),
    /// Terminate an instance.
    Terminate(manage::TerminateArgs),
    /// Delete an ended instance and its history, or every ended instance a filter matches.
    Purge(manage::PurgeArgs),
    /// Print an instance's histories (all executions) as JSON.
    Export(manage::ExportArgs),
    /// Add an exported instance to a database.
    Import(manage::ImportArgs),
    /// Start an instance of an orchestration; print its id.
    Start(manage::StartArgs),
    /// Suspend an instance (only resume and terminate are processed until it resumes).
    Suspend(manage::ReasonArgs),
    /// Resume a suspended instance.
    Resume(manage::ReasonArgs),
    /// Start an instance's orchestration again with its first input; print the id.
    Restart(manage::RestartArgs),
    /// Rewind a failed instance: what failed runs again.
    Rewind(manage::ReasonArgs),
    /// Wait until an instance has ended; print its status as JSON.
    Wait(manage::WaitArgs),
    /// Durable entities: list them, print one with its operation log, signal one.
    #[command(subcommand)]
    Entity(entity::EntityCommand),
    /// Replay recorded histories against a library and report nondeterminism (exit 1 if any).
    Replay(replay::ReplayArgs),
    /// Run the engine and watch the functions, with no UI, until interrupted.
    Serve(serve::ServeArgs),
    /// Measure the engine on standard workloads.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Serve the functions to a Durable Task backend (durable-emu's --grpc, Azure Durable Task
    /// Scheduler, Dapr) over the sidecar protocol, until interrupted.
    Worker(worker::WorkerArgs),
}

/// Where the store is.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The database file, or `:memory:` for a throwaway run.
    #[arg(long, value_name = "PATH", default_value = ".durable-emu/state.db")]
    db: String,
}

impl DbArgs {
    fn location(&self) -> DbLocation {
        DbLocation::parse(&self.db)
    }
}

/// How the engine runs.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Real time, or virtual time that jumps to the next timer whenever nothing else can run.
    #[arg(long, value_name = "real|virtual", default_value = "virtual")]
    clock: ClockKind,
    /// Activity worker threads, 1 to 256; default: the number of cores.
    #[arg(long, value_name = "N", value_parser = workers_in_range())]
    workers: Option<u16>,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    limits: LimitArgs,
}

/// Limits that keep one instance from taking the emulator down.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Deliveries of an activity (or starts of an orchestrator episode) that never finished
    /// because the emulator stopped, before the call fails instead of running again.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_deliveries,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_deliveries: u32,
    /// Durable calls one orchestrator episode may make before the orchestration fails.
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_actions_per_episode,
          value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    max_actions_per_episode: u32,
    /// Largest input, result, output or event payload in bytes (serialized JSON).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_payload_bytes as u64,
          value_parser = clap::value_parser!(u64).range(1024..=512 * 1024 * 1024))]
    max_payload: u64,
}

impl LimitArgs {
    fn limits(&self) -> Limits {
        Limits {
            max_deliveries: self.max_deliveries,
            max_actions_per_episode: self.max_actions_per_episode,
            max_payload_bytes: usize::try_from(self.max_payload).unwrap_or(usize::MAX),
        }
    }
}

/// Most `--workers`: each is a thread with its own stack, and activities rarely gain anything
/// from more threads than this.
pub const MAX_WORKERS: i64 = 256;

/// `--workers` parsed as 1..=[`MAX_WORKERS`], so clap's refusal names the range.
pub fn workers_in_range() -> clap::builder::RangedI64ValueParser<u16> {
    clap::value_parser!(u16).range(1..=MAX_WORKERS)
}

/// The worker count to use: the one given, or one per core (never more than the range allows).
pub fn workers_or_default(workers: Option<u16>) -> usize {
    workers.map_or_else(
        || default_workers().clamp(1, MAX_WORKERS as usize),
        usize::from,
    )
}

impl EngineArgs {
    fn config(&self, plugin: Option<LoadedPlugin>) -> anyhow::Result<EngineConfig> {
        Ok(EngineConfig {
            db: self.db.location(),
            clock: self.clock,
            auto_skip: true,
            playing: false,
            workers: workers_or_default(self.workers),
            plugin,
            faults: self.faults.rules()?,
            on_store_failure: StoreFailurePolicy::Retry,
            limits: self.limits.limits(),
            remote_workers: false,
            isolated: false,
        })
    }
}

/// Fault injection rules for the session.
#[derive(Debug, Clone, Default, Args)]
pub struct FaultArgs {
    /// A fault rule in the compact form, repeatable, e.g.
    /// `activity=ChargeCard,attempts=1-2,error=CardDeclined:insufficient funds`
    /// (see docs/faults.md for every field).
    #[arg(long = "fault", value_name = "RULE")]
    fault: Vec<String>,
    /// A TOML scenario file of `[[fault]]` rules (examples in assets/scenarios/).
    #[arg(long = "faults", value_name = "FILE")]
    faults: Option<PathBuf>,
}

impl FaultArgs {
    /// The rules of the scenario file (first) and of each `--fault`, validated.
    pub fn rules(&self) -> anyhow::Result<Vec<FaultRule>> {
        let mut rules = Vec::new();
        if let Some(file) = &self.faults {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading the fault scenario {}", file.display()))?;
            rules.extend(parse_scenario(&text).with_context(|| format!("in {}", file.display()))?);
        }
        for spec in &self.fault {
            rules.push(parse_compact(spec, 0)?);
        }
        Ok(rules)
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let holds_sockets = match &cli.command {
        None | Some(Command::Serve(_) | Command::Bench(_) | Command::Worker(_)) => true,
        Some(Command::Run(args)) => args.isolated(),
        Some(_) => false,
    };
    if !holds_sockets {
        die_quietly_on_a_closed_pipe();
    }
    if matches!(cli.command, Some(Command::Run(_) | Command::Serve(_))) {
        log_warnings_to_stderr();
    }
    match cli.command {
        None => ui::ui(
            cli.target.as_deref(),
            &cli.engine,
            cli.paused,
            &cli.grpc,
            &cli.http,
            &cli.isolate,
        ),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::List(args)) => manage::list(args),
        Some(Command::Status(args)) => manage::status(args),
        Some(Command::Raise(args)) => manage::raise(args),
        Some(Command::Terminate(args)) => manage::terminate(args),
        Some(Command::Purge(args)) => manage::purge(args),
        Some(Command::Export(args)) => manage::export(args),
        Some(Command::Import(args)) => manage::import(args),
        Some(Command::Start(args)) => manage::start(args),
        Some(Command::Suspend(args)) => manage::suspend(args),
        Some(Command::Resume(args)) => manage::resume(args),
        Some(Command::Restart(args)) => manage::restart(args),
        Some(Command::Rewind(args)) => manage::rewind(args),
        Some(Command::Wait(args)) => manage::wait(args),
        Some(Command::Entity(command)) => entity::entity(command),
        Some(Command::Replay(args)) => replay::replay(args),
        Some(Command::Serve(args)) => serve::serve(args),
        Some(Command::Bench(command)) => bench::bench(command),
        Some(Command::Worker(args)) => worker::worker(args),
    }
}

/// Restores the default action of `SIGPIPE` (Rust ignores it, so a write to a closed pipe fails
/// and `println!` panics): the process then ends quietly on the write that finds no reader.
#[cfg(unix)]
fn die_quietly_on_a_closed_pipe() {
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: `signal` is the C library's; setting SIGPIPE's action to SIG_DFL installs no
    // handler code, and happens on the main thread before any output is written. SIGPIPE is 13
    // on every unix Rust supports.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_quietly_on_a_closed_pipe() {}

/// The engine's warnings (work redelivered after the emulator stopped, a call failed for ending
/// the process too often, a store that refuses writes) on stderr, for the commands that run code
/// without a UI to show them.
fn log_warnings_to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::WARN)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Loads a library file, builds and loads a crate directory, or takes the built-in samples.
pub fn load_target(target: Option<&Path>) -> anyhow::Result<LoadedPlugin> {
    Ok(target_or_builtin(target)?.1)
}

/// Like [`load_target`], also returning the watchable target (none for the built-in samples).
pub fn target_or_builtin(target: Option<&Path>) -> anyhow::Result<(Option<Target>, LoadedPlugin)> {
    let Some(path) = target else {
        let plugin = LoadedPlugin::builtin().context("loading the built-in sample functions")?;
        return Ok((None, plugin));
    };
    let target = Target::from_path(path);
    if matches!(target, Target::Crate(_)) {
        eprintln!("building {target} ...");
    }
    let plugin = load_once(&target, &BuildOptions::default(), &mut |_| {})?;
    Ok((Some(target), plugin))
}

/// Starts hot reload for a target the user gave (the built-in samples are not watched).
fn watch_target(
    target: Option<Target>,
    engine: &EngineHandle,
    active_hash: String,
) -> anyhow::Result<Option<Watcher>> {
    watch_target_into(target, engine.clone(), active_hash)
}

/// Like [`watch_target`], handing builds to any [`BuildSink`] (a worker's functions).
fn watch_target_into(
    target: Option<Target>,
    sink: impl BuildSink,
    active_hash: String,
) -> anyhow::Result<Option<Watcher>> {
    let Some(target) = target else {
        return Ok(None);
    };
    let watcher = Watcher::start(
        target.clone(),
        WatchOptions::default(),
        sink,
        Some(active_hash),
    )
    .with_context(|| format!("watching {target}"))?;
    Ok(Some(watcher))
}

/// An engine over a database that only answers queries and records commands (no functions are
/// loaded, so nothing runs).
fn query_engine(db: &DbArgs) -> anyhow::Result<Engine> {
    Engine::start(EngineConfig {
        db: db.location(),
        clock: ClockKind::Virtual,
        auto_skip: false,
        playing: false,
        workers: 1,
        plugin: None,
        faults: Vec::new(),
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits::default(),
        remote_workers: false,
        isolated: false,
    })
    .with_context(|| format!("opening {}", db.db))
}

/// The database opened for reading only (list, status, export): nothing is created or changed.
fn reader(db: &DbArgs) -> anyhow::Result<Reader> {
    Reader::open(&db.location()).with_context(|| format!("opening {}", db.db))
}

/// Parses a JSON argument, saying which one was wrong and how to quote it. `@FILE` reads the
/// JSON from a file and `-` from stdin (large or generated inputs); no JSON text starts with
/// `@` or is a lone `-`, so neither shadows a literal.
fn parse_json(what: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    let (source, text) = if text == "-" {
        let mut read = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut read)
            .with_context(|| format!("reading {what} from stdin"))?;
        ("stdin".to_string(), read)
    } else if let Some(file) = text.strip_prefix('@') {
        let read =
            std::fs::read_to_string(file).with_context(|| format!("reading {what} from {file}"))?;
        (file.to_string(), read)
    } else {
        return serde_json::from_str(text).with_context(|| {
            format!(
                "{what} is not valid JSON: {text:?} (a string needs its quotes, e.g. '\"Tokyo\"')"
            )
        });
    };
    serde_json::from_str(&text).with_context(|| format!("{what} in {source} is not valid JSON"))
}

fn print_manifest(plugin: &LoadedPlugin) {
    let manifest = &plugin.manifest;
    println!("loaded {}", plugin.origin);
    println!(
        "  crate {} {} (durable-sdk {}, build {})",
        manifest.crate_name, manifest.crate_version, manifest.sdk_version, manifest.build_id
    );
    println!("  orchestrators: {}", manifest.orchestrators.join(", "));
    println!("  activities:    {}", manifest.activities.join(", "));
}
