//! `--isolate` for the UI, `serve` and `run`: the functions run in a child `durable-emu worker`
//! process connected to a private loopback sidecar of this emulator, so a function that aborts,
//! segfaults or is killed ends only the worker.
//!
//! Owns that sidecar (its own `127.0.0.1:0` listener, whatever `--grpc` says), the child and its
//! supervision: the child's events (`--events jsonl` on its stdout) say what it is running, so
//! when it dies the emulator says what it died in ("worker exited with signal 6 while running
//! activity ChargeCard #4") as an engine warning the UI shows, and starts a new one; what the
//! dead worker held is redelivered by the hub under `--max-deliveries`. After a hot reload has
//! passed the engine's replay check (`ReloadFinished`), the worker is restarted on the new build:
//! the old one is asked to stop by closing its stdin, finishes what it holds and exits.
//!
//! The engine still loads the plugin in this process for its manifest, reload checks, the replay
//! stepper and forks, which replay orchestrator code but never run an activity. Knows nothing of
//! the protocol (`durable-emu-worker`) or of how the engine dispatches (`EngineConfig::isolated`).

use super::listen::{self, Serving};
use anyhow::Context;
use clap::Args;
use durable_emu_engine::engine::{EngineEvent, EngineHandle};
use durable_emu_engine::plugin::{LoadedPlugin, PluginOrigin};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `--isolate`.
#[derive(Debug, Clone, Args)]
pub struct IsolateArgs {
    /// Run the functions in a child `durable-emu worker` process: a function that aborts,
    /// segfaults or is killed ends only the worker, which is restarted (its work is
    /// redelivered under --max-deliveries).
    #[arg(long)]
    pub isolate: bool,
}

/// How long a stopping worker may finish what it holds before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// The first pause before restarting a worker that died; it doubles while workers keep dying
/// young, up to [`MOST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MOST_BACKOFF: Duration = Duration::from_secs(5);
/// A worker that lived this long before dying resets the backoff.
const YOUNG: Duration = Duration::from_secs(10);

/// The private sidecar, bound before the engine starts.
pub struct IsolationListener {
    runtime: tokio::runtime::Runtime,
    bound: durable_emu_grpc::BoundSidecar,
    library: Option<PathBuf>,
}

impl std::fmt::Debug for IsolationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IsolationListener")
            .field("addr", &self.bound.local_addr())
            .field("library", &self.library)
            .finish()
    }
}

impl IsolateArgs {
    /// With `--isolate`, binds the worker's private sidecar for `plugin`'s functions (the
    /// built-in samples, or a library file the worker can load itself).
    pub fn bind(&self, plugin: &LoadedPlugin) -> anyhow::Result<Option<IsolationListener>> {
        if !self.isolate {
            return Ok(None);
        }
        let library = match &plugin.origin {
            PluginOrigin::BuiltIn => None,
            PluginOrigin::Library { path } => Some(path.clone()),
            PluginOrigin::InProcess(name) => {
                anyhow::bail!("--isolate cannot run {name}: it is linked into this process")
            }
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("durable-emu-isolate")
            .enable_all()
            .build()
            .context("starting the isolated worker's sidecar runtime")?;
        let bound = runtime
            .block_on(durable_emu_grpc::bind(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .context("binding the isolated worker's sidecar")?;
        Ok(Some(IsolationListener {
            runtime,
            bound,
            library,
        }))
    }
}

impl IsolationListener {
    /// Serves the private sidecar over `engine` and starts the supervised worker, which runs
    /// functions on `threads` threads (the engine's `--workers`, as in process).
    pub fn start(self, engine: &EngineHandle, threads: usize) -> anyhow::Result<Isolation> {
        let url = format!("http://{}", self.bound.local_addr());
        let serving = listen::serve_on_thread(
            "durable-emu-isolate",
            self.runtime,
            vec![self.bound],
            {
                let engine = engine.asynchronous();
                move |sidecar, stopped| {
                    let engine = engine.clone();
                    async move {
                        if let Err(error) = sidecar.serve(engine, stopped).await {
                            tracing::warn!(target: "durable_emu::isolate", "the isolated worker's sidecar stopped: {error}");
                        }
                    }
                }
            },
        )
        .context("starting the isolated worker's sidecar")?;
        let exe = std::env::current_exe().context("finding this executable to run the worker")?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(1);
        let supervisor = Supervisor {
            exe,
            url,
            library: self.library,
            threads: threads.max(1),
            engine: engine.clone(),
            stopped,
        };
        let thread = std::thread::Builder::new()
            .name("durable-emu-isolate".into())
            .spawn(move || supervisor.run())
            .context("starting the isolated worker's supervisor")?;
        Ok(Isolation {
            _serving: serving,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// The running isolation: dropping it stops the worker (it finishes what it holds for a few
/// seconds) and the private sidecar.
#[derive(Debug)]
pub struct Isolation {
    _serving: Serving,
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Isolation {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Supervisor {
    exe: PathBuf,
    url: String,
    library: Option<PathBuf>,
    /// `--threads` for the worker.
    threads: usize,
    engine: EngineHandle,
    stopped: crossbeam_channel::Receiver<()>,
}

/// What a worker is running, as its events say.
#[derive(Debug, Clone, PartialEq)]
struct Running {
    kind: String,
    name: String,
    instance_id: String,
    task_id: Option<i64>,
}

impl std::fmt::Display for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)?;
        if let Some(task_id) = self.task_id {
            write!(f, " #{task_id}")?;
        }
        write!(f, " of instance {}", self.instance_id)
    }
}

/// Why a worker's life ended.
enum End {
    /// The emulator is stopping.
    Stop,
    /// A new build passed its replay check.
    Reload,
    /// It died by itself.
    Died(ExitStatus),
}

impl Supervisor {
    fn run(self) {
        let mut events = self.engine.subscribe();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let born = Instant::now();
            let mut child = match self.spawn() {
                Ok(child) => child,
                Err(error) => {
                    self.warn(None, format!("cannot start the isolated worker: {error:#}"));
                    if self.pause(MOST_BACKOFF) {
                        return;
                    }
                    continue;
                }
            };
            let stdin = child.stdin.take();
            let running = follow(&mut child);
            let end = loop {
                if self.stopped_for_good() {
                    break End::Stop;
                }
                let mut reloaded = false;
                loop {
                    match events.try_recv() {
                        Ok(EngineEvent::ReloadFinished { .. }) => reloaded = true,
                        Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                if reloaded {
                    break End::Reload;
                }
                match child.try_wait() {
                    Ok(Some(status)) => break End::Died(status),
                    Ok(None) => {}
                    Err(_) => break End::Stop,
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            match end {
                End::Stop => {
                    stop_child(child, stdin);
                    return;
                }
                End::Reload => {
                    stop_child(child, stdin);
                    backoff = FIRST_BACKOFF;
                }
                End::Died(status) => {
                    drop(stdin);
                    let held = running
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    let doing = if held.is_empty() {
                        "while running nothing".to_string()
                    } else {
                        let list: Vec<String> = held.iter().map(ToString::to_string).collect();
                        format!("while running {}", list.join(", "))
                    };
                    self.warn(
                        held.first().map(|running| running.instance_id.clone()),
                        format!(
                            "worker exited with {} {doing}; starting a new one (what it held is delivered again, at most --max-deliveries times)",
                            describe_exit(status)
                        ),
                    );
                    backoff = if born.elapsed() > YOUNG {
                        FIRST_BACKOFF
                    } else {
                        (backoff * 2).min(MOST_BACKOFF)
                    };
                    if self.pause(backoff) {
                        return;
                    }
                }
            }
        }
    }

    /// Whether the emulator is stopping (its [`Isolation`] dropped the sender).
    fn stopped_for_good(&self) -> bool {
        !matches!(
            self.stopped.try_recv(),
            Err(crossbeam_channel::TryRecvError::Empty)
        )
    }

    /// Waits `pause` unless the emulator stops meanwhile; true if it does.
    fn pause(&self, pause: Duration) -> bool {
        !matches!(
            self.stopped.recv_timeout(pause),
            Err(crossbeam_channel::RecvTimeoutError::Timeout)
        )
    }

    fn spawn(&self) -> anyhow::Result<Child> {
        let mut command = Command::new(&self.exe);
        command
            .args(["worker", "--connect", &self.url, "--events", "jsonl"])
            .args(["--no-watch", "--exit-with-stdin"])
            .args(["--drain-timeout", "4s"])
            // Many activities in flight at once: each round trip to the emulator costs a
            // commit, so a narrow worker would serialise a fan-out on them (bench isolate).
            .args(["--max-activities", "2048"])
            // ...but run on as many threads as in process: a thread per item in flight spent
            // most of a fan-out creating threads (docs/benchmarks.md, --isolate).
            .args(["--threads", &self.threads.to_string()]);
        if let Some(library) = &self.library {
            command.arg(library);
        }
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // The UI owns the terminal: the worker's status lines would scribble over it.
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("running {} worker", self.exe.display()))
    }

    fn warn(&self, instance_id: Option<String>, message: String) {
        tracing::warn!(target: "durable_emu::isolate", "{message}");
        self.engine.announce(EngineEvent::Warning {
            instance_id,
            message,
        });
    }
}

/// Reads the worker's events and keeps what it is running.
fn follow(child: &mut Child) -> Arc<Mutex<Vec<Running>>> {
    let running = Arc::new(Mutex::new(Vec::<Running>::new()));
    if let Some(stdout) = child.stdout.take() {
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let item = || Running {
                    kind: text(&event, "kind"),
                    name: text(&event, "name"),
                    instance_id: text(&event, "instance_id"),
                    task_id: event["task_id"].as_i64(),
                };
                let mut running = running.lock().unwrap_or_else(PoisonError::into_inner);
                match event["event"].as_str() {
                    Some("started") => running.push(item()),
                    Some("finished") => {
                        let done = item();
                        if let Some(at) = running.iter().position(|held| *held == done) {
                            running.remove(at);
                        }
                    }
                    _ => {}
                }
            }
        });
    }
    running
}

fn text(event: &Value, field: &str) -> String {
    event[field].as_str().unwrap_or_default().to_string()
}

/// Asks a worker to stop (its stdin closes), waits a while, then kills it.
fn stop_child(mut child: Child, stdin: Option<ChildStdin>) {
    drop(stdin);
    let deadline = Instant::now() + STOP_WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `signal 6 (SIGABRT)`, `exit code 101`.
fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!("signal {signal}{name}");
        }
    }
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}
