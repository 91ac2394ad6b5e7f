//! `durable-emu serve`: the engine and the hot-reload watcher with no UI, until interrupted.
//! With `--events jsonl` every engine event is printed as one JSON object per line on stdout.
//! SIGINT (Ctrl-C) and SIGTERM stop it cleanly: the current batch commits, then it exits 0.

use super::{EngineArgs, target_or_builtin, watch_target};
use anyhow::Context;
use clap::{Args, ValueEnum};
use durable_emu::engine::Engine;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio::sync::broadcast::error::TryRecvError;

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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EventFormat {
    /// One JSON object per line.
    Jsonl,
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .context("installing the Ctrl-C / SIGTERM handler")?;

    let (target, plugin) = target_or_builtin(args.target.as_deref())?;
    let active_hash = plugin.content_hash.clone();
    let (engine, mut events) = Engine::start_subscribed(args.engine.config(Some(plugin))?)
        .with_context(|| format!("opening {}", args.engine.db.db))?;
    let handle = engine.handle();
    let _watcher = watch_target(target, &handle, active_hash)?;
    eprintln!(
        "durable-emu is serving {}; Ctrl-C stops it",
        args.engine.db.db
    );
    let stdout = std::io::stdout();
    loop {
        if stop_rx
            .recv_timeout(std::time::Duration::from_millis(20))
            .is_ok()
        {
            break;
        }
        loop {
            match events.try_recv() {
                Ok(event) => {
                    if let Some(EventFormat::Jsonl) = args.events {
                        let mut out = stdout.lock();
                        writeln!(out, "{}", serde_json::to_string(&event)?)?;
                        out.flush()?;
                    }
                }
                Err(TryRecvError::Lagged(missed)) => {
                    eprintln!("warning: {missed} engine events were dropped (output too slow)");
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
    }
    engine.shutdown();
    eprintln!("stopped; the database is consistent");
    Ok(ExitCode::SUCCESS)
}
