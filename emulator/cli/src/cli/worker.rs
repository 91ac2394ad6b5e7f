//! `durable-emu worker`: the user's functions served to a Durable Task backend over the sidecar
//! protocol (durable-emu's own `--grpc`, Azure's Durable Task Scheduler or its emulator, Dapr).
//!
//! Owns the flags, loading and hot-reloading the target into the worker's [`Functions`], the
//! Ctrl-C / SIGTERM stop, and how the worker's events are shown: a status line per change on
//! stderr, or (`--events jsonl`) one JSON object per event on stdout. Secrets given as metadata
//! or a token are never printed. The protocol itself is `durable-emu-worker`.

use super::{target_or_builtin, watch_target_into};
use anyhow::Context;
use clap::{Args, ValueEnum};
use durable_emu_engine::engine::EngineEvent;
use durable_emu_engine::plugin::LoadedPlugin;
use durable_emu_engine::watch::BuildSink;
use durable_emu_worker::{ConcurrencyLimits, Functions, WorkerConfig, WorkerEvent};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// A plugin library or a crate directory to build (watched and reloaded); default: the
    /// built-in sample functions.
    target: Option<PathBuf>,
    /// The backend's sidecar address: http://host:port, or https://host:port for TLS.
    #[arg(long, value_name = "URL", default_value_t = format!("http://127.0.0.1:{}", durable_emu_grpc::DEFAULT_PORT))]
    connect: String,
    /// The task hub, sent as `taskhub` metadata on every call (Azure Durable Task Scheduler).
    #[arg(long, value_name = "NAME")]
    taskhub: Option<String>,
    /// Metadata for every call, repeatable (e.g. `dapr-app-id=orders`). Values are never
    /// printed.
    #[arg(long = "header", value_name = "K=V", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Send `authorization: Bearer <token>` with the token read from this environment variable
    /// (what Azure's scheduler needs); never printed.
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Most orchestration episodes running at once.
    #[arg(long, value_name = "N")]
    max_orchestrations: Option<usize>,
    /// Most activities running at once.
    #[arg(long, value_name = "N")]
    max_activities: Option<usize>,
    /// Most entity batches running at once.
    #[arg(long, value_name = "N")]
    max_entities: Option<usize>,
    /// Threads that run activities and entity batches (each runs on one until it returns;
    /// episodes have threads of their own, one per instance); default: as many as the largest
    /// --max-* limit, so every item in progress has its own.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=4096))]
    threads: Option<u16>,
    /// On Ctrl-C / SIGTERM, how long to let held work finish before handing it back.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Print every event as one JSON object per line on stdout (status lines still go to
    /// stderr).
    #[arg(long, value_name = "FORMAT")]
    events: Option<EventFormat>,
    /// Do not watch the target: a new build is taken only by restarting (what `--isolate`
    /// does, after the emulator's replay check).
    #[arg(long)]
    no_watch: bool,
    /// Stop (as on SIGTERM) when stdin closes: how the emulator under `--isolate` stops the
    /// worker it started, on every platform.
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EventFormat {
    /// One JSON object per line.
    Jsonl,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("'{text}' is not K=V (e.g. dapr-app-id=orders)")),
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    durable_emu_engine::clock::parse_duration(text).map_err(|error| error.to_string())
}

pub fn worker(args: WorkerArgs) -> anyhow::Result<ExitCode> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stop_tx = Arc::new(stop_tx);
    {
        let stop_tx = Arc::clone(&stop_tx);
        ctrlc::set_handler(move || {
            stop_tx.send_replace(true);
        })
        .context("installing the Ctrl-C / SIGTERM handler")?;
    }
    if args.exit_with_stdin {
        let stop_tx = Arc::clone(&stop_tx);
        std::thread::spawn(move || {
            // Reads until the other end closes; what it sends is not read for anything.
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            stop_tx.send_replace(true);
        });
    }

    let mut config = WorkerConfig::new(args.connect.clone());
    config.taskhub = args.taskhub.clone();
    config.metadata = args.headers.clone();
    if let Some(var) = &args.token_env {
        let token = std::env::var(var)
            .with_context(|| format!("--token-env {var}: the environment variable is not set"))?;
        config
            .metadata
            .push(("authorization".to_string(), format!("Bearer {token}")));
    }
    let defaults = ConcurrencyLimits::default();
    config.limits = ConcurrencyLimits {
        orchestrations: args.max_orchestrations.unwrap_or(defaults.orchestrations),
        activities: args.max_activities.unwrap_or(defaults.activities),
        entities: args.max_entities.unwrap_or(defaults.entities),
    };
    config.drain_timeout = args.drain_timeout;

    let (target, plugin) = target_or_builtin(args.target.as_deref())?;
    eprintln!(
        "worker: {} ({} orchestrators, {} activities, {} entities)",
        plugin.origin,
        plugin.manifest.orchestrators.len(),
        plugin.manifest.activities.len(),
        plugin.manifest.entities.len()
    );
    let active_hash = plugin.content_hash.clone();
    let functions = Functions::new(plugin);
    let status = Arc::new(Status::new(args.events.is_some()));
    let events: durable_emu_worker::EventSink = {
        let status = Arc::clone(&status);
        Arc::new(move |event| status.show(&event))
    };
    let _watcher = watch_target_into(
        target.filter(|_| !args.no_watch),
        WorkerBuilds {
            functions: functions.clone(),
            events: Arc::clone(&events),
        },
        active_hash,
    )?;

    let threads = args.threads.map_or_else(
        || {
            config
                .limits
                .orchestrations
                .max(config.limits.activities)
                .max(config.limits.entities)
        },
        usize::from,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(threads)
        .thread_name("durable-emu-worker")
        .enable_all()
        .build()
        .context("starting the worker's runtime")?;
    let done = runtime.block_on(durable_emu_worker::run(config, functions, events, stop_rx))?;
    // A plugin thread still running past the drain timeout must not hold the exit.
    runtime.shutdown_background();
    eprintln!("worker: stopped after {done} work items");
    Ok(ExitCode::SUCCESS)
}

/// Hot reload into the worker: a good build becomes active between work items.
struct WorkerBuilds {
    functions: Functions,
    events: durable_emu_worker::EventSink,
}

impl BuildSink for WorkerBuilds {
    fn announce(&self, event: EngineEvent) {
        match event {
            EngineEvent::BuildFailed { reason, .. } => {
                (self.events)(WorkerEvent::BuildFailed { reason });
            }
            EngineEvent::BuildStarted { target } => eprintln!("worker: building {target} ..."),
            _ => {}
        }
    }

    fn load_build(&self, plugin: LoadedPlugin) -> Result<u32, String> {
        let (build, names_changed) = self.functions.replace(plugin);
        (self.events)(WorkerEvent::Reloaded {
            build,
            names_changed,
        });
        Ok(build)
    }
}

/// How events are shown: a line on stderr when the state changes (connected, reconnecting,
/// reloaded, stopping) and a progress line at most every few seconds while items finish; with
/// `--events jsonl`, every event on stdout as well.
struct Status {
    jsonl: bool,
    done: AtomicU64,
    failed: AtomicU64,
    last_progress: Mutex<Option<Instant>>,
}

/// The least time between two progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

impl Status {
    fn new(jsonl: bool) -> Self {
        Self {
            jsonl,
            done: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            last_progress: Mutex::new(None),
        }
    }

    fn show(&self, event: &WorkerEvent) {
        if self.jsonl {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
        let line = match event {
            WorkerEvent::Connecting { .. } | WorkerEvent::Started { .. } => None,
            WorkerEvent::Connected {
                url,
                orchestrators,
                activities,
                entities,
            } => Some(format!(
                "worker: connected to {url}, taking {orchestrators} orchestrators, {activities} \
                 activities, {entities} entities"
            )),
            WorkerEvent::Reconnecting {
                reason,
                retry_in_ms,
            } => Some(format!(
                "worker: reconnecting in {:.1}s: {reason}",
                *retry_in_ms as f64 / 1000.0
            )),
            WorkerEvent::Finished { failed, .. } => {
                self.done.fetch_add(1, Ordering::Relaxed);
                if *failed {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
                self.progress_line()
            }
            WorkerEvent::NotDelivered {
                kind,
                name,
                instance_id,
                reason,
            } => Some(format!(
                "worker: the answer of {kind} {name} ({instance_id}) did not reach the backend \
                 (it will redeliver): {reason}"
            )),
            WorkerEvent::Abandoned {
                kind,
                name,
                instance_id,
                reason,
            } => Some(format!(
                "worker: handed {kind} {name} ({instance_id}) back: {reason}"
            )),
            WorkerEvent::Reloaded {
                build,
                names_changed,
            } => Some(format!(
                "worker: build {build} active{}",
                if *names_changed {
                    " (new names: reconnecting with its filters)"
                } else {
                    ""
                }
            )),
            WorkerEvent::BuildFailed { reason } => Some(format!(
                "worker: the new build failed, the previous one stays active: {reason}"
            )),
            WorkerEvent::Draining { in_flight } => Some(format!(
                "worker: stopping: no new work, finishing {in_flight} in flight"
            )),
            WorkerEvent::Stopped { .. } => None,
        };
        if let Some(line) = line {
            eprintln!("{line}");
        }
    }

    fn progress_line(&self) -> Option<String> {
        let mut last = self
            .last_progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < PROGRESS_EVERY) {
            return None;
        }
        *last = Some(Instant::now());
        Some(format!(
            "worker: {} work items done ({} failed)",
            self.done.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_k_equals_v_and_the_value_may_hold_equals_signs() {
        assert_eq!(
            parse_header("dapr-app-id=orders"),
            Ok(("dapr-app-id".into(), "orders".into()))
        );
        assert_eq!(parse_header("x=a=b"), Ok(("x".into(), "a=b".into())));
        assert!(parse_header("novalue").unwrap_err().contains("K=V"));
        assert!(parse_header("=v").is_err());
    }
}
