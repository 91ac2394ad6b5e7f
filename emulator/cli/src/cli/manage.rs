//! The management subcommands: list, status, raise, terminate, purge, export, import, start,
//! suspend, resume, restart, rewind, wait.
//!
//! Each goes one of two ways ([`Via`]). When an emulator (the UI or `serve`) runs on the
//! database, it holds the file locked, so the command goes through its HTTP API (`client.rs`),
//! found by the endpoint file it published (`endpoint.rs`) or named with `--url`: Azure's
//! routes for what changes an instance, durable-emu's private routes (`/durable-emu/v1/`) for
//! what is printed (status, list, wait, export) and for import. When none runs, the command
//! opens the database itself without loading functions (except `start` and `restart`, which
//! need the name checked against them): list, status, export and wait only read it (`Reader`:
//! they create, migrate and lock nothing); raised events and started instances wait in the
//! database until an emulator with the functions runs it; the other commands are carried out
//! directly.
//!
//! What a command prints on stdout is the same bytes either way: both paths print the engine's
//! own shapes (`InstanceStatus`, `InstanceExport`) with the same serializer. Only the stderr
//! notes differ (an event "raised" on a running emulator is "queued" in a database).

use super::client::{Action, Client, PurgeWhere};
use super::{DbArgs, endpoint, load_target, parse_json, query_engine, reader};
use anyhow::{Context, bail};
use clap::Args;
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::engine::{Engine, EngineConfig, Limits, PurgeFilter, StoreFailurePolicy};
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
    #[command(flatten)]
    emulator: EmulatorArgs,
}

/// How to reach a running emulator, for commands that also name a database (`--db`).
#[derive(Debug, Clone, Args)]
pub struct EmulatorArgs {
    /// Go through the emulator whose HTTP API is at URL (e.g. `http://127.0.0.1:7071`) instead
    /// of the one found running on --db, or the database itself.
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The emulator's access key (its `--http-key`); default: $DURABLE_EMU_HTTP_KEY.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

/// Where a command goes.
pub(super) enum Via {
    /// A running emulator's HTTP API.
    Emulator(Client),
    /// The database file itself (nothing runs on it).
    Database,
}

impl EmulatorArgs {
    /// The emulator named with `--url`, else the one found running on `db`, else `db` itself.
    pub(super) fn via(&self, db: &DbArgs) -> Via {
        let key = self
            .key
            .clone()
            .or_else(|| std::env::var("DURABLE_EMU_HTTP_KEY").ok());
        if let Some(url) = &self.url {
            return Via::Emulator(Client::new(url, key));
        }
        match endpoint::find(&db.location()) {
            Some(found) => Via::Emulator(Client::new(&found.url, key)),
            None => Via::Database,
        }
    }
}

impl Destination {
    fn via(&self) -> Via {
        self.emulator.via(&self.db)
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
        // Rows of the database the emulator cannot decode are named in its own log.
        let statuses = client.list(wanted.map(|status| status.as_str()))?;
        print_instances(&statuses, args.json)?;
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
    let statuses: Vec<InstanceStatus> = listing
        .instances
        .iter()
        .filter(|record| wanted.is_none_or(|status| record.status == status))
        .map(|record| InstanceStatus::from_record(record, None))
        .collect();
    print_instances(&statuses, args.json)?;
    Ok(code)
}

/// The listing as `list` prints it, by either path: a JSON array of statuses, or the table.
fn print_instances(statuses: &[InstanceStatus], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(statuses)?);
        return Ok(());
    }
    println!(
        "{:<34} {:<22} {:<11} {:<25} UPDATED",
        "INSTANCE", "NAME", "STATUS", "CREATED"
    );
    for status in statuses {
        println!(
            "{:<34} {:<22} {:<11} {:<25} {}",
            status.instance_id,
            status.name,
            status.runtime_status,
            status.created_time.format("%Y-%m-%d %H:%M:%S"),
            status.last_updated_time.format("%Y-%m-%d %H:%M:%S")
        );
    }
    Ok(())
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
        let status = client
            .status(&args.instance_id, args.history)?
            .with_context(|| format!("no instance '{}' in {}", args.instance_id, client.url()))?;
        println!("{}", serde_json::to_string_pretty(&status)?);
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
        client.terminate(&args.instance_id, &args.reason, args.recursive)?;
        let status = poll_until_ended(&client, &args.instance_id, TERMINATE_WAIT)?
            .context("the instance did not terminate")?;
        eprintln!("{} is {}", args.instance_id, status.runtime_status);
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
    /// The instance id; or, instead of one, a filter (--status, --created-from,
    /// --created-before) that names every ended instance it matches.
    #[arg(required_unless_present_any = ["status", "created_from", "created_before"],
          conflicts_with_all = ["status", "created_from", "created_before"])]
    instance_id: Option<String>,
    /// Only ended instances with this runtime status (repeatable, or comma-separated:
    /// `Completed,Failed`); default: every ended status.
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    status: Vec<String>,
    /// Only instances created at or after this time (RFC 3339, e.g. `2026-12-01T09:00:00Z`, or
    /// a date, `2026-12-01`, taken as UTC).
    #[arg(long, value_name = "TIME")]
    created_from: Option<String>,
    /// Only instances created before this time (same forms as --created-from).
    #[arg(long, value_name = "TIME")]
    created_before: Option<String>,
    #[command(flatten)]
    at: Destination,
}

/// Deletes an ended instance and its history, or every ended instance a filter matches; prints
/// `{"instancesDeleted":N}`.
pub fn purge(args: PurgeArgs) -> anyhow::Result<ExitCode> {
    match &args.instance_id {
        Some(instance_id) => purge_one(instance_id, &args.at),
        None => purge_where(&args),
    }
}

fn purge_where(args: &PurgeArgs) -> anyhow::Result<ExitCode> {
    let statuses = args
        .status
        .iter()
        .map(|name| name.trim().parse::<durable_sdk::RuntimeStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    if let Some(running) = statuses.iter().find(|status| !status.is_terminal()) {
        bail!(
            "--status {running}: only ended instances are purged (Completed, Failed, Canceled, Terminated)"
        );
    }
    let created_from = args
        .created_from
        .as_deref()
        .map(|text| parse_time("--created-from", text))
        .transpose()?;
    let created_to = args
        .created_before
        .as_deref()
        .map(|text| parse_time("--created-before", text))
        .transpose()?;
    let deleted = match args.at.via() {
        Via::Emulator(client) => client.purge_where(&PurgeWhere {
            statuses: statuses
                .iter()
                .map(|status| status.as_str().to_owned())
                .collect(),
            created_from,
            created_to,
        })?,
        Via::Database => {
            let engine = query_engine(&args.at.db)?;
            let filter = PurgeFilter {
                created_from,
                created_to,
                statuses,
            };
            let deleted = engine.handle().purge_where(filter, false);
            engine.shutdown();
            deleted? as u64
        }
    };
    println!("{{\"instancesDeleted\":{deleted}}}");
    Ok(ExitCode::SUCCESS)
}

/// A time argument: RFC 3339, or a date or a date and time without an offset (UTC), the forms
/// the HTTP API's `createdTimeFrom`/`createdTimeTo` take.
fn parse_time(flag: &str, text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    let text = text.trim();
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&chrono::Utc));
    }
    if let Ok(at) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(at.and_utc());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
        .with_context(|| {
            format!("{flag} {text} is not a time; write RFC 3339 (2026-12-01T09:00:00Z) or a date (2026-12-01)")
        })
}

fn purge_one(instance_id: &str, at: &Destination) -> anyhow::Result<ExitCode> {
    let (deleted, place) = match at.via() {
        Via::Emulator(client) => (client.purge(instance_id)?, client.url().to_string()),
        Via::Database => {
            let engine = query_engine(&at.db)?;
            let deleted = engine.handle().purge(instance_id)?;
            engine.shutdown();
            (deleted, at.db.db.clone())
        }
    };
    if !deleted {
        bail!("no instance '{instance_id}' in {place}");
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
        let export = client
            .export(&args.instance_id)?
            .with_context(|| format!("no instance '{}' in {}", args.instance_id, client.url()))?;
        println!("{}", serde_json::to_string_pretty(&export)?);
        return Ok(ExitCode::SUCCESS);
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
    at: Destination,
}

pub fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let export = InstanceExport::parse(&text)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if let Via::Emulator(client) = args.at.via() {
        // The file's own text goes: the emulator reads it exactly as this command would.
        let id = client.import(text)?;
        eprintln!("imported {id} into the emulator at {}", client.url());
        return Ok(ExitCode::SUCCESS);
    }
    let engine = query_engine(&args.at.db)?;
    let id = engine.handle().import(export)?;
    engine.shutdown();
    eprintln!("imported {id} into {}", args.at.db.db);
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
) -> anyhow::Result<Option<InstanceStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = client
            .status(instance_id, false)?
            .with_context(|| format!("no instance '{instance_id}' in {}", client.url()))?;
        let ended = status
            .runtime_status
            .parse::<durable_sdk::RuntimeStatus>()
            .map_err(anyhow::Error::msg)?
            .is_terminal();
        if ended {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(POLL_EVERY);
    }
}
