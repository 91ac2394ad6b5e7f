//! `durable-emu entity list|get|signal`: durable entities from the command line
//! (docs/semantics.md#entities).
//!
//! Each goes one of two ways, as the instance commands do (`manage.rs`, [`Via`]). When an
//! emulator (the UI or `serve`) runs on the database, the command goes through its HTTP API, on
//! durable-emu's private entity routes (`client.rs`), and the running emulator's functions run
//! a signal. When none runs, `list` and `get` only read the database (`Reader`: nothing is
//! created, migrated or locked), and `signal` starts an engine with the functions (the built-in
//! samples unless a library or crate is given). Either way `signal` sends the operation and, for
//! a signal due now, waits until the entity has run it and prints what became of it; a delayed
//! signal waits for an emulator running at its time.
//!
//! Both paths print the same bytes: the engine's entity records are turned into JSON values
//! (keys in order) before anything is printed, the way they arrive from the emulator.
//!
//! Knows the engine's handle and reader, the client, and the SDK's `EntityId`; nothing of the
//! store.

use super::client::{Client, SignalWhen};
use super::manage::{EmulatorArgs, Via};
use super::{DbArgs, EngineArgs, load_target, parse_json, reader};
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use durable_emu_engine::clock::parse_duration;
use durable_emu_engine::engine::{
    Engine, EntityMetadata, EntityOperationOutcome, EntityOperationRecord, EntityQuery, Reader,
    StoreFailurePolicy,
};
use durable_sdk::EntityId;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum EntityCommand {
    /// List the entities in a database (id, backlog, lock holder, last modified).
    List(ListArgs),
    /// Print one entity as JSON: its state, metadata and operation log.
    Get(GetArgs),
    /// Send a one-way operation to an entity and print what became of it.
    Signal(Box<SignalArgs>),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only ids starting with this (`@counter@` for every counter; `@count` matches names
    /// starting with `count`).
    #[arg(long, value_name = "PREFIX")]
    prefix: Option<String>,
    /// Also print each entity's state.
    #[arg(long)]
    state: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    emulator: EmulatorArgs,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The entity id, `@name@key` (e.g. `@counter@a`).
    id: String,
    /// How many of its latest operations to print.
    #[arg(long, value_name = "N", default_value_t = 100)]
    operations: usize,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    emulator: EmulatorArgs,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The entity id, `@name@key` (e.g. `@counter@a`); the entity is created by its first
    /// operation.
    id: String,
    /// The operation (e.g. `add`).
    operation: String,
    /// Its input: JSON (`5`, `'{"to":"b"}'`), else taken as a string; `@FILE` or `-` reads
    /// JSON from a file or stdin; default null.
    #[arg(allow_hyphen_values = true)]
    input: Option<String>,
    /// Deliver it at this time on the emulator's clock (RFC 3339, e.g. `2026-12-01T09:00:00Z`).
    #[arg(long, value_name = "TIME", conflicts_with = "after")]
    at: Option<String>,
    /// Deliver it this long after the emulator's now (e.g. `90m`).
    #[arg(long, value_name = "DURATION")]
    after: Option<String>,
    /// With no emulator running: the functions that run the entity (a plugin library or crate
    /// directory); default: the built-in samples. A running emulator runs it with its own.
    #[arg(long, value_name = "PATH")]
    functions: Option<PathBuf>,
    /// Give up waiting for the operation to run after this much real time.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    timeout: String,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    emulator: EmulatorArgs,
}

pub fn entity(command: EntityCommand) -> anyhow::Result<ExitCode> {
    match command {
        EntityCommand::List(args) => list(args),
        EntityCommand::Get(args) => get(args),
        EntityCommand::Signal(args) => signal(*args),
    }
}

/// The id as the engine spells it (`@Counter@a` is `@counter@a`), or why it is not one.
fn entity_id(text: &str) -> anyhow::Result<EntityId> {
    // The parse error names the id and shows the form (`@name@key, e.g. @counter@a`).
    text.parse::<EntityId>().map_err(anyhow::Error::new)
}

/// An operation's input: JSON when it parses, else the text as a string; `@FILE` and `-` read
/// JSON from a file or stdin.
fn json_or_text(text: Option<&str>) -> anyhow::Result<Value> {
    Ok(match text.map(str::trim) {
        None | Some("") => Value::Null,
        // A file or stdin holds JSON (large or generated inputs), as everywhere JSON is taken.
        Some(source) if source == "-" || source.starts_with('@') => {
            parse_json("the signal's input", source)?
        }
        Some(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
    })
}

fn all_entities(reader: &Reader, query: EntityQuery) -> anyhow::Result<Vec<EntityMetadata>> {
    let mut entities = Vec::new();
    let mut query = query;
    loop {
        let (page, next) = reader.entities(&query)?;
        entities.extend(page);
        match next {
            Some(token) => query.continuation_token = Some(token),
            None => return Ok(entities),
        }
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let include_state = args.state || args.json;
    let (entities, place) = match args.emulator.via(&args.db) {
        Via::Emulator(client) => (
            client.entities(args.prefix.as_deref(), include_state)?,
            format!("the emulator at {}", client.url()),
        ),
        Via::Database => {
            let reader = reader(&args.db)?;
            let entities = all_entities(
                &reader,
                EntityQuery {
                    instance_id_starts_with: args.prefix.clone(),
                    include_state,
                    include_transient: true,
                    page_size: Some(500),
                    ..EntityQuery::default()
                },
            )?;
            let entities = entities
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            (entities, args.db.db.clone())
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entities)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entities.is_empty() {
        let which = args
            .prefix
            .as_deref()
            .map_or_else(String::new, |prefix| format!(" starting with '{prefix}'"));
        eprintln!(
            "no entities{which} in {place} (an entity exists once an operation was sent to it)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let state_header = if args.state { " STATE" } else { "" };
    println!(
        "{:<32} {:>7} {:<24} {:<19}{state_header}",
        "ENTITY", "BACKLOG", "LOCKED BY", "MODIFIED"
    );
    for entity in &entities {
        let state = if args.state {
            format!(
                " {}",
                entity
                    .get("state")
                    .map_or_else(|| "(none)".to_string(), Value::to_string)
            )
        } else {
            String::new()
        };
        let waiting = entity
            .get("lockWaiters")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let lock = match (entity.get("lockedBy").and_then(Value::as_str), waiting) {
            (Some(holder), 0) => holder.to_string(),
            (Some(holder), waiting) => format!("{holder} (+{waiting} waiting)"),
            (None, _) => "-".to_string(),
        };
        let text = |field: &str| entity.get(field).and_then(Value::as_str).unwrap_or("");
        let modified = DateTime::parse_from_rfc3339(text("lastModified")).map_or_else(
            |_| text("lastModified").to_string(),
            |at| at.format("%Y-%m-%d %H:%M:%S").to_string(),
        );
        println!(
            "{:<32} {:>7} {:<24} {:<19}{state}",
            text("instanceId"),
            // A `Value` ignores the width: pad its text.
            entity
                .get("backlog")
                .map_or_else(|| "?".to_string(), Value::to_string),
            lock,
            modified
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let id = entity_id(&args.id)?;
    let (entity, operations) = match args.emulator.via(&args.db) {
        Via::Emulator(client) => client
            .entity(&id.to_string(), args.operations)?
            .with_context(|| no_entity(&id, &format!("the emulator at {}", client.url())))?,
        Via::Database => {
            let reader = reader(&args.db)?;
            let entity = reader
                .entity(&id.to_string(), true)?
                .with_context(|| no_entity(&id, &args.db.db))?;
            let operations = reader.entity_operations(&id.to_string(), args.operations)?;
            (serde_json::to_value(&entity)?, log_values(&operations)?)
        }
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&described(entity, operations))?
    );
    Ok(ExitCode::SUCCESS)
}

fn no_entity(id: &EntityId, place: &str) -> String {
    format!(
        "no entity '{id}' in {place}; an entity exists once an operation was sent to it \
         (durable-emu entity signal {id} OPERATION [INPUT])"
    )
}

fn log_values(operations: &[EntityOperationRecord]) -> anyhow::Result<Vec<Value>> {
    Ok(operations
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()?)
}

/// An entity and its operation log, as `get` prints them.
fn described(entity: Value, operations: Vec<Value>) -> Value {
    let mut value = entity;
    if let Value::Object(fields) = &mut value {
        // `state` is absent from the record when the entity has none: say so.
        fields.entry("state").or_insert(Value::Null);
        fields.insert("operations".into(), Value::Array(operations));
    }
    value
}

fn signal(args: SignalArgs) -> anyhow::Result<ExitCode> {
    let id = entity_id(&args.id)?;
    let input = json_or_text(args.input.as_deref())?;
    let timeout = parse_duration(&args.timeout).map_err(anyhow::Error::msg)?;
    if let Via::Emulator(client) = args.emulator.via(&args.engine.db) {
        return signal_through(&client, &args, &id, &input, timeout);
    }
    let plugin = load_target(args.functions.as_deref())?;
    let delayed = args.at.is_some() || args.after.is_some();
    let mut config = args.engine.config(Some(plugin))?;
    config.on_store_failure = StoreFailurePolicy::Stop;
    // A delayed signal waits for its time; skipping the clock to it here would move the whole
    // database's virtual time.
    config.auto_skip = !delayed;
    let engine = Engine::start(config).with_context(|| format!("opening {}", args.engine.db.db))?;
    let handle = engine.handle();
    let result = (|| -> anyhow::Result<ExitCode> {
        let scheduled = scheduled_time(&args, handle.clock()?.now)?;
        let request = handle.signal_entity(&id.to_string(), &args.operation, input, scheduled)?;
        if let Some(at) = scheduled {
            eprintln!(
                "signal {} {} (request {request}) waits in {} until {} on the emulator's clock; \
                 an emulator with the functions delivers it then",
                id,
                args.operation,
                args.engine.db.db,
                at.format("%Y-%m-%d %H:%M:%S")
            );
            return Ok(ExitCode::SUCCESS);
        }
        let deadline = Instant::now() + timeout;
        let record = loop {
            let log = handle.entity_operations(&id.to_string(), 1_000)?;
            if let Some(record) = log.into_iter().find(|record| record.request_id == request) {
                break record;
            }
            if Instant::now() >= deadline {
                bail!(
                    "the entity did not run the operation within {} (request {request} is \
                     queued in {}; an emulator with the functions runs it)",
                    args.timeout,
                    args.engine.db.db
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let entity = handle.entity(&id.to_string(), true)?;
        report_operation(
            &id,
            &args.operation,
            &request,
            serde_json::to_value(&record)?,
            serde_json::to_value(&entity)?,
        )
    })();
    engine.shutdown();
    result
}

/// `signal` through a running emulator: its functions run the operation, at its clock's time.
fn signal_through(
    client: &Client,
    args: &SignalArgs,
    id: &EntityId,
    input: &Value,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    if args.functions.is_some() {
        eprintln!(
            "note: the emulator at {} runs the entity with its own functions; --functions is \
             not used",
            client.url()
        );
    }
    let when = SignalWhen {
        at: args.at.as_deref().map(parse_at).transpose()?,
        after: match &args.after {
            Some(after) => {
                // Checked here for the same message as without an emulator.
                parse_duration(after).map_err(anyhow::Error::msg)?;
                Some(after.clone())
            }
            None => None,
        },
    };
    let entity_id = id.to_string();
    let signalled = client.signal(&entity_id, &args.operation, input, &when)?;
    let request = signalled.request_id;
    if let Some(at) = signalled.scheduled {
        eprintln!(
            "signal {id} {} (request {request}) waits in the emulator at {} until {} on its \
             clock; it is delivered then",
            args.operation,
            client.url(),
            at.format("%Y-%m-%d %H:%M:%S")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = Instant::now() + timeout;
    loop {
        if let Some((entity, log)) = client.entity(&entity_id, 1_000)? {
            let ran = log
                .into_iter()
                .find(|record| record.get("requestId").and_then(Value::as_str) == Some(&request));
            if let Some(record) = ran {
                return report_operation(id, &args.operation, &request, record, entity);
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the entity did not run the operation within {} (request {request} is queued in \
                 the emulator at {})",
                args.timeout,
                client.url()
            );
        }
        std::thread::sleep(SIGNAL_POLL);
    }
}

/// How often a signal through a running emulator asks whether the operation ran.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

/// Prints what became of an operation (its log entry and the entity after it, as JSON values)
/// the same way by either path; exit 1 when it failed.
fn report_operation(
    id: &EntityId,
    operation: &str,
    request: &str,
    record: Value,
    entity: Value,
) -> anyhow::Result<ExitCode> {
    let outcome: EntityOperationOutcome = serde_json::from_value(record["outcome"].clone())
        .context("the operation's log entry has no outcome")?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "requestId": request,
            "operation": record,
            "entity": entity,
        }))?
    );
    if let EntityOperationOutcome::Failed { failure } = &outcome {
        eprintln!("{id} {operation} failed: {failure} (the entity's state is as it was before it)");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// `--at` or `--after` as a time on the emulator's clock (`now` is its now).
fn scheduled_time(args: &SignalArgs, now: DateTime<Utc>) -> anyhow::Result<Option<DateTime<Utc>>> {
    if let Some(at) = &args.at {
        return parse_at(at).map(Some);
    }
    if let Some(after) = &args.after {
        let by = parse_duration(after).map_err(anyhow::Error::msg)?;
        let by = chrono::Duration::from_std(by).context("--after is too long")?;
        return Ok(Some(now + by));
    }
    Ok(None)
}

/// `--at` as a time.
fn parse_at(at: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(at)
        .with_context(|| {
            format!("--at {at} is not a time; write RFC 3339, e.g. 2026-12-01T09:00:00Z")
        })?
        .with_timezone(&Utc))
}
