//! The management subcommands: list, status, raise, terminate, purge, export, import, start,
//! suspend, resume, restart, rewind, wait.
//!
//! Each goes one of two ways ([`Via`]). When an emulator (the UI or `serve`) runs on the
//! database, it holds the file locked, so the command goes through its HTTP API (`client.rs`),
//! found by the endpoint file it published (`endpoint.rs`) or named with `--url`. When none
//! runs, the command opens the database itself without loading functions (except `start`, which
//! needs the name checked against them): list, status, export and wait only read it (`Reader`:
//! they create, migrate and lock nothing); raised events and started instances wait in the
//! database until an emulator with the functions runs it; the other commands are carried out
//! directly. What a command prints on stdout is the same either way, except where the HTTP API
//! has less (see each command).

use super::client::{Action, Client};
use super::{DbArgs, endpoint, load_target, parse_json, query_engine, reader};
use anyhow::{Context, bail};
use clap::Args;
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::engine::{Engine, EngineConfig, Limits, StoreFailurePolicy};
use durable_emu_engine::export::{InstanceExport, InstanceStatus};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The database, and how to reach an emulator that runs it.
#[derive(Debug, Clone, Args)]
pub struct Destination {
    #[command(flatten)]
    db: DbArgs,
    /// Go through the emulator whose HTTP API is at URL (e.g. `http://127.0.0.1:7071`) instead
    /// of the one found running on --db, or the database itself.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The emulator's access key (its `--http-key`); default: $DURABLE_EMU_HTTP_KEY.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

/// Where a command goes.
enum Via {
    /// A running emulator's HTTP API.
    Emulator(Client),
    /// The database file itself (nothing runs on it).
    Database,
}

impl Destination {
    fn via(&self) -> Via {
        let key = self
            .key
            .clone()
            .or_else(|| std::env::var("DURABLE_EMU_HTTP_KEY").ok());
        if let Some(url) = &self.url {
            return Via::Emulator(Client::new(url, key));
        }
        match endpoint::find(&self.db.location()) {
            Some(found) => Via::Emulator(Client::new(&found.url, key)),
            None => Via::Database,
        }
    }
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only instances with this runtime status (e.g. Running, Failed).
    #[arg(long, value_name = "STATUS")]
    status: Option<String>,
    /// Print a JSON array of statuses instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    at: Destination,
}

pub fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let wanted = args
        .status
        .as_deref()
        .map(str::parse::<durable_sdk::RuntimeStatus>)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    if let Via::Emulator(client) = args.at.via() {
        // Azure's status objects: the same fields but `executionId`, `parent` and, for a
        // failure, the message as `output`.
        let statuses = client.list(wanted.map(|status| status.as_str()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&statuses)?);
            return Ok(ExitCode::SUCCESS);
        }
        print_table_header();
        for status in &statuses {
            let field = |name: &str| status.get(name).and_then(Value::as_str).unwrap_or("");
            println!(
                "{:<34} {:<22} {:<11} {:<25} {}",
                field("instanceId"),
                field("name"),
                field("runtimeStatus"),
                table_time(field("createdTime")),
                table_time(field("lastUpdatedTime"))
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let listing = reader(&args.at.db)?.instances()?;
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
    print_table_header();
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

fn print_table_header() {
    println!(
        "{:<34} {:<22} {:<11} {:<25} UPDATED",
        "INSTANCE", "NAME", "STATUS", "CREATED"
    );
}

/// An API time (RFC 3339) as the table writes the database's.
fn table_time(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text).map_or_else(
        |_| text.to_string(),
        |time| time.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The instance id.
    instance_id: String,
    /// Include every execution's history events.
    #[arg(long)]
    history: bool,
    #[command(flatten)]
    at: Destination,
}

pub fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    if let Via::Emulator(client) = args.at.via() {
        // Azure's status, and with --history Azure's projection of the history (scheduled
        // events merged into their completions).
        let status = client
            .status(&args.instance_id, args.history)?
            .with_context(|| format!("no instance '{}' in {}", args.instance_id, client.url()))?;
        println!("{}", serde_json::to_string_pretty(&status.body)?);
        return Ok(ExitCode::SUCCESS);
    }
    let db = &args.at.db;
    let handle = reader(db)?;
    let record = handle
        .instance(&args.instance_id)?
        .with_context(|| format!("no instance '{}' in {}", args.instance_id, db.db))?;
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
    /// The payload, as JSON, `@FILE` or `-` (stdin); default null.
    #[arg(allow_hyphen_values = true)]
    data: Option<String>,
    #[command(flatten)]
    at: Destination,
}

pub fn raise(args: RaiseArgs) -> anyhow::Result<ExitCode> {
    let data = match &args.data {
        Some(text) => parse_json("the event data", text)?,
        None => Value::Null,
    };
    if let Via::Emulator(client) = args.at.via() {
        client.raise(&args.instance_id, &args.event, &data)?;
        eprintln!(
            "event '{}' raised on {} (emulator at {})",
            args.event,
            args.instance_id,
            client.url()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let db = &args.at.db;
    let engine = query_engine(db)?;
    engine
        .handle()
        .raise_event(&args.instance_id, &args.event, data)?;
    engine.shutdown();
    eprintln!(
        "event '{}' queued for {}; it is delivered when an emulator with the functions runs {}",
        args.event, args.instance_id, db.db
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
    at: Destination,
}

/// How long terminate waits to see the instance end.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

pub fn terminate(args: TerminateArgs) -> anyhow::Result<ExitCode> {
    if let Via::Emulator(client) = args.at.via() {
        if args.recursive {
            bail!(
                "--recursive is not part of the HTTP API; stop the emulator at {} to terminate \
                 sub-orchestrations with it",
                client.url()
            );
        }
        client.act(&args.instance_id, Action::Terminate, Some(&args.reason))?;
        let status = poll_until_ended(&client, &args.instance_id, TERMINATE_WAIT)?
            .context("the instance did not terminate")?;
        let runtime = status
            .get("runtimeStatus")
            .and_then(Value::as_str)
            .unwrap_or("?");
        eprintln!("{} is {runtime}", args.instance_id);
        return Ok(ExitCode::SUCCESS);
    }
    let engine = query_engine(&args.at.db)?;
    let handle = engine.handle();
    handle.terminate(
        &args.instance_id,
        Value::String(args.reason),
        args.recursive,
    )?;
    let record = handle
        .wait_until_terminal(&args.instance_id, TERMINATE_WAIT)?
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
    at: Destination,
}

pub fn purge(args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let (deleted, place) = match args.at.via() {
        Via::Emulator(client) => (client.purge(&args.instance_id)?, client.url().to_string()),
        Via::Database => {
            let engine = query_engine(&args.at.db)?;
            let deleted = engine.handle().purge(&args.instance_id)?;
            engine.shutdown();
            (deleted, args.at.db.db.clone())
        }
    };
    if !deleted {
        bail!("no instance '{}' in {place}", args.instance_id);
    }
    println!("{{\"instancesDeleted\":1}}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The instance id.
    instance_id: String,
    #[command(flatten)]
    at: Destination,
}

pub fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    if let Via::Emulator(client) = args.at.via() {
        // An export is the engine's own history (every event, with its ids); Azure's API
        // serves only its projection of it, which would not import back.
        bail!(
            "export reads the database, which the emulator at {} holds open; the HTTP API has \
             no export (use `durable-emu status {} --history` for Azure's view), or stop the \
             emulator first",
            client.url(),
            args.instance_id
        );
    }
    let db = &args.at.db;
    let handle = reader(db)?;
    let record = handle
        .instance(&args.instance_id)?
        .with_context(|| format!("no instance '{}' in {}", args.instance_id, db.db))?;
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

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The orchestration's name.
    name: String,
    /// Its input: JSON, `@FILE` or `-` (stdin); default null.
    #[arg(long, value_name = "JSON", allow_hyphen_values = true)]
    input: Option<String>,
    /// The instance id; default: a new one.
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// With no emulator running: the functions that know the name (a plugin library or crate
    /// directory); default: the built-in samples.
    #[arg(long, value_name = "PATH")]
    functions: Option<PathBuf>,
    #[command(flatten)]
    at: Destination,
}

/// Starts an instance; prints its id on stdout.
pub fn start(args: StartArgs) -> anyhow::Result<ExitCode> {
    let input = match &args.input {
        Some(text) => parse_json("--input", text)?,
        None => Value::Null,
    };
    let id = match args.at.via() {
        Via::Emulator(client) => client.start(&args.name, args.instance_id.as_deref(), &input)?,
        Via::Database => {
            let engine = engine_with_functions(&args.at, args.functions.as_deref())?;
            let id =
                engine
                    .handle()
                    .start_orchestration(&args.name, input, args.instance_id.clone());
            engine.shutdown();
            id?
        }
    };
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

/// An engine on the database with the functions loaded (the names are checked against them, as
/// a running emulator would), for the commands that create an instance. Its clock stays still
/// (nothing skips to a timer); the instance goes on when an emulator runs the database.
fn engine_with_functions(at: &Destination, functions: Option<&Path>) -> anyhow::Result<Engine> {
    let plugin = load_target(functions)?;
    Engine::start(EngineConfig {
        db: at.db.location(),
        clock: durable_emu_engine::clock::ClockKind::Virtual,
        auto_skip: false,
        playing: false,
        workers: 1,
        plugin: Some(plugin),
        faults: Vec::new(),
        on_store_failure: StoreFailurePolicy::Stop,
        limits: Limits::default(),
        remote_workers: false,
        isolated: false,
    })
    .with_context(|| format!("opening {}", at.db.db))
}

#[derive(Debug, Args)]
pub struct ReasonArgs {
    /// The instance id.
    instance_id: String,
    /// Why (recorded with the instance's history).
    #[arg(long)]
    reason: Option<String>,
    #[command(flatten)]
    at: Destination,
}

/// Suspends an instance: only resume and terminate are processed until it resumes.
pub fn suspend(args: ReasonArgs) -> anyhow::Result<ExitCode> {
    act(args, Action::Suspend, "suspended")
}

/// Resumes a suspended instance.
pub fn resume(args: ReasonArgs) -> anyhow::Result<ExitCode> {
    act(args, Action::Resume, "resumed")
}

/// Rewinds a failed instance: what failed runs again.
pub fn rewind(args: ReasonArgs) -> anyhow::Result<ExitCode> {
    act(args, Action::Rewind, "rewound")
}

fn act(args: ReasonArgs, action: Action, done: &str) -> anyhow::Result<ExitCode> {
    let id = &args.instance_id;
    match args.at.via() {
        Via::Emulator(client) => {
            client.act(id, action, args.reason.as_deref())?;
            eprintln!("{id} {done}");
        }
        Via::Database => {
            // Without the functions nothing replays the instance: the command is recorded as
            // an event in its history, and takes effect in its next episode.
            let engine = query_engine(&args.at.db)?;
            let handle = engine.handle();
            let reason = args.reason.clone();
            let result = match action {
                Action::Suspend => handle.suspend(id, reason),
                Action::Resume => handle.resume(id, reason),
                Action::Rewind => handle.rewind(id, reason),
                Action::Terminate => {
                    handle.terminate(id, reason.map_or(Value::Null, Value::String), false)
                }
            };
            drop(handle);
            engine.shutdown();
            result?;
            eprintln!(
                "{id}: {} queued; it takes effect when an emulator with the functions runs {}",
                action.name(),
                args.at.db.db
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The instance id.
    instance_id: String,
    /// Restart under the same id (it must have ended) instead of a new one.
    #[arg(long)]
    same_id: bool,
    /// With no emulator running: the functions that run it (a plugin library or crate
    /// directory); default: the built-in samples.
    #[arg(long, value_name = "PATH")]
    functions: Option<PathBuf>,
    #[command(flatten)]
    at: Destination,
}

/// Starts an instance's orchestration again with its first input; prints the id on stdout.
pub fn restart(args: RestartArgs) -> anyhow::Result<ExitCode> {
    let id = match args.at.via() {
        Via::Emulator(client) => client.restart(&args.instance_id, !args.same_id)?,
        Via::Database => {
            let engine = engine_with_functions(&args.at, args.functions.as_deref())?;
            let id = engine.handle().restart_as(&args.instance_id, !args.same_id);
            engine.shutdown();
            id?
        }
    };
    println!("{id}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The instance id.
    instance_id: String,
    /// Give up after this much real time (e.g. `30s`, `5m`); exit 1 then.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    timeout: String,
    #[command(flatten)]
    at: Destination,
}

/// How often wait asks a running emulator again.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Waits until an instance has ended, then prints its status as `status` does.
pub fn wait(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let timeout = parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    let id = &args.instance_id;
    match args.at.via() {
        Via::Emulator(client) => match poll_until_ended(&client, id, timeout)? {
            Some(status) => {
                println!("{}", serde_json::to_string_pretty(&status)?);
                Ok(ExitCode::SUCCESS)
            }
            None => {
                eprintln!("{id} has not ended within {}", args.timeout);
                Ok(ExitCode::from(1))
            }
        },
        Via::Database => {
            // Nothing runs the instance: it has ended already or it never will while no
            // emulator runs the database.
            let db = &args.at.db;
            let record = reader(db)?
                .instance(id)?
                .with_context(|| format!("no instance '{id}' in {}", db.db))?;
            if !record.status.is_terminal() {
                bail!(
                    "{id} is {} and no emulator runs {}: start one (`durable-emu serve`) for it \
                     to go on",
                    record.status,
                    db.db
                );
            }
            let status = InstanceStatus::from_record(&record, None);
            println!("{}", serde_json::to_string_pretty(&status)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Asks the emulator for the instance's status until it has ended (its status body then) or
/// `timeout` has passed (`None`).
fn poll_until_ended(
    client: &Client,
    instance_id: &str,
    timeout: Duration,
) -> anyhow::Result<Option<Value>> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client
            .status(instance_id, false)?
            .with_context(|| format!("no instance '{instance_id}' in {}", client.url()))?;
        if status.ended {
            return Ok(Some(status.body));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL_EVERY);
    }
}
