//! `durable-emu serve`: the engine and the hot-reload watcher with no UI, until interrupted.
//!
//! With `--events jsonl` every engine event is printed as one JSON object per line on stdout,
//! none dropped: the engine publishes into a bounded lossless sink (`Engine::start_with_sink`),
//! so when stdout is slow the engine waits for it instead of losing events.
//!
//! Stopping: SIGINT (Ctrl-C) and SIGTERM ask the engine to stop after its current batch commits;
//! the events up to then are still printed; exit 0. If the engine has not stopped within
//! [`STOP_WAIT`] (an orchestrator that never yields holds it), serve names the stuck episode on
//! stderr and exits 1 without it: what that episode did is not recorded, everything committed
//! before stays. When the reader of stdout goes away (a broken pipe), serve stops the same way,
//! quietly, exit 0.

use super::http::HttpArgs;
use super::sidecar::GrpcArgs;
use super::{EngineArgs, target_or_builtin, watch_target};
use anyhow::Context;
use clap::{Args, ValueEnum};
use crossbeam_channel::{Receiver, select};
use durable_emu_engine::engine::{Engine, EngineEvent};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How long a stop request waits for the engine's current batch before giving up on it.
const STOP_WAIT: Duration = Duration::from_secs(2);
/// Events the engine may publish ahead of stdout before it waits for the reader.
const EVENT_BUFFER: usize = 4_096;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A plugin library or crate directory (watched and reloaded on change); default: the
    /// built-in sample functions (not watched).
    target: Option<PathBuf>,
    /// Print every engine event on stdout in this format.
    #[arg(long, value_name = "FORMAT")]
    events: Option<EventFormat>,
    #[command(flatten)]
    engine: EngineArgs,
    #[command(flatten)]
    grpc: GrpcArgs,
    #[command(flatten)]
    http: HttpArgs,
    #[command(flatten)]
    isolate: super::isolate::IsolateArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EventFormat {
    /// One JSON object per line.
    Jsonl,
}

/// Why serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Signal,
    ReaderGone,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .context("installing the Ctrl-C / SIGTERM handler")?;

    let (target, plugin) = target_or_builtin(args.target.as_deref())?;
    let active_hash = plugin.content_hash.clone();
    // Bound before the database is opened: an address in use fails the command untouched.
    let listeners = args.grpc.bind()?;
    let http_listeners = args.http.bind()?;
    let isolation = args.isolate.bind(&plugin)?;
    let mut config = args.engine.config(Some(plugin))?;
    config.remote_workers = listeners.listening();
    config.isolated = isolation.is_some();
    let threads = config.workers;
    let db = config.db.clone();
    let (engine, events) = match args.events {
        Some(EventFormat::Jsonl) => {
            let (sink, events) = crossbeam_channel::bounded(EVENT_BUFFER);
            let engine = Engine::start_with_sink(config, sink);
            (engine, events)
        }
        // Nobody reads events: a channel that is never fed keeps the loop below uniform.
        None => (Engine::start(config), crossbeam_channel::never()),
    };
    let engine = engine.with_context(|| format!("opening {}", args.engine.db.db))?;
    let handle = engine.handle();
    let watcher = watch_target(target, &handle, active_hash)?;
    let isolation = isolation
        .map(|listener| listener.start(&handle, threads))
        .transpose()?;
    let sidecar = listeners.serve(handle.asynchronous())?;
    eprintln!("{}", sidecar.state.describe());
    if isolation.is_some() {
        eprintln!("the functions run in a worker process of their own (--isolate)");
    }
    let http = http_listeners.serve(handle.asynchronous())?;
    let endpoint = http.publish(&db);
    eprintln!(
        "durable-emu is serving {}; Ctrl-C stops it",
        args.engine.db.db
    );
    // After the serving line: scripts read the sidecar's line first and then that one.
    eprintln!("{}", http.state.describe());

    let mut out = Some(BufWriter::new(std::io::stdout().lock()));
    let why = loop {
        select! {
            recv(stop_rx) -> _ => break Stop::Signal,
            recv(events) -> event => {
                let Ok(event) = event else { break Stop::Signal };
                if !print(&mut out, &event, &events)? {
                    break Stop::ReaderGone;
                }
            }
        }
    };

    engine.request_stop();
    let until = Instant::now() + STOP_WAIT;
    // The engine may be waiting to publish into the sink: keep printing (or, with the reader
    // gone, discarding) until it has stopped, so the events of its last batch are not lost.
    while !engine.has_stopped() && Instant::now() < until {
        if let Ok(event) = events.recv_timeout(Duration::from_millis(10)) {
            print(&mut out, &event, &events)?;
        }
    }
    let stopped = engine.has_stopped();
    for event in events.try_iter() {
        print(&mut out, &event, &events)?;
    }
    let running = handle.running_episode();
    // Nobody reads after this: workers and the watcher must not wait on a full sink.
    drop(events);
    drop(sidecar);
    drop(http);
    drop(endpoint);
    drop(watcher);
    drop(handle);
    engine.shutdown_within(Duration::ZERO);
    if !stopped {
        match running {
            Some(episode) => eprintln!(
                "{episode} without yielding; stopped without it: what that episode did is not \
                 recorded, everything committed before it is"
            ),
            None => eprintln!(
                "the engine did not stop within {STOP_WAIT:?}; stopped without its last batch"
            ),
        }
        return Ok(ExitCode::from(1));
    }
    if why == Stop::Signal {
        eprintln!("stopped; the database is consistent");
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints one event (flushing once nothing else is waiting, so a live reader sees it at once);
/// false once the reader is gone (then `out` is dropped and later events are discarded).
fn print(
    out: &mut Option<BufWriter<std::io::StdoutLock<'static>>>,
    event: &EngineEvent,
    waiting: &Receiver<EngineEvent>,
) -> anyhow::Result<bool> {
    let Some(writer) = out else {
        return Ok(false);
    };
    let line = serde_json::to_string(event).context("serializing an engine event")?;
    let mut written = writeln!(writer, "{line}");
    if written.is_ok() && waiting.is_empty() {
        written = writer.flush();
    }
    match written {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == ErrorKind::BrokenPipe => {
            // Dropping the writer would try to flush into the closed pipe again.
            if let Some(writer) = out.take() {
                let (_, _) = writer.into_parts();
            }
            Ok(false)
        }
        Err(error) => Err(error).context("writing an event to stdout"),
    }
}
