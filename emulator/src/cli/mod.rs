//! Command-line parsing and dispatch. Each subcommand lives in its own module and talks to the
//! engine only through `Engine` / `EngineHandle`; none of them opens the store itself.

mod bench;
mod manage;
mod replay;
mod run;
mod serve;
mod ui;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use durable_emu::cargo_build::BuildOptions;
use durable_emu::clock::ClockKind;
use durable_emu::engine::{Engine, EngineConfig, EngineHandle, Reader, default_workers};
use durable_emu::faults::{FaultRule, parse_compact, parse_scenario};
use durable_emu::plugin::LoadedPlugin;
use durable_emu::store::DbLocation;
use durable_emu::watch::{Target, WatchOptions, Watcher, load_once};
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
    /// Delete an ended instance and its history.
    Purge(manage::PurgeArgs),
    /// Print an instance's histories (all executions) as JSON.
    Export(manage::ExportArgs),
    /// Add an exported instance to a database.
    Import(manage::ImportArgs),
    /// Replay recorded histories against a library and report nondeterminism (exit 1 if any).
    Replay(replay::ReplayArgs),
    /// Run the engine and watch the functions, with no UI, until interrupted.
    Serve(serve::ServeArgs),
    /// Measure the engine on standard workloads.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
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
    /// Activity worker threads; default: the number of cores.
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    #[command(flatten)]
    faults: FaultArgs,
}

impl EngineArgs {
    fn config(&self, plugin: Option<LoadedPlugin>) -> anyhow::Result<EngineConfig> {
        Ok(EngineConfig {
            db: self.db.location(),
            clock: self.clock,
            auto_skip: true,
            workers: self.workers.unwrap_or_else(default_workers).max(1),
            plugin,
            faults: self.faults.rules()?,
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
    match cli.command {
        None => ui::ui(cli.target.as_deref(), &cli.engine),
        Some(Command::Run(args)) => run::run(args),
        Some(Command::List(args)) => manage::list(args),
        Some(Command::Status(args)) => manage::status(args),
        Some(Command::Raise(args)) => manage::raise(args),
        Some(Command::Terminate(args)) => manage::terminate(args),
        Some(Command::Purge(args)) => manage::purge(args),
        Some(Command::Export(args)) => manage::export(args),
        Some(Command::Import(args)) => manage::import(args),
        Some(Command::Replay(args)) => replay::replay(args),
        Some(Command::Serve(args)) => serve::serve(args),
        Some(Command::Bench(command)) => bench::bench(command),
    }
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
    let Some(target) = target else {
        return Ok(None);
    };
    let watcher = Watcher::start(
        target.clone(),
        WatchOptions::default(),
        engine.clone(),
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
        workers: 1,
        plugin: None,
        faults: Vec::new(),
    })
    .with_context(|| format!("opening {}", db.db))
}

/// The database opened for reading only (list, status, export): nothing is created or changed.
fn reader(db: &DbArgs) -> anyhow::Result<Reader> {
    Reader::open(&db.location()).with_context(|| format!("opening {}", db.db))
}

/// Parses a JSON argument, saying which one was wrong and how to quote it.
fn parse_json(what: &str, text: &str) -> anyhow::Result<serde_json::Value> {
    serde_json::from_str(text).with_context(|| {
        format!("{what} is not valid JSON: {text:?} (a string needs its quotes, e.g. '\"Tokyo\"')")
    })
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
