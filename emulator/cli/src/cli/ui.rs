//! `durable-emu [TARGET]` with no subcommand: the terminal UI over the engine and the hot-reload
//! watcher, with the same engine options as `serve`. Virtual time starts playing (running at
//! real speed, so ages grow and timelines have width) with auto-skip off, so a timer comes due
//! as it would for real unless the user jumps (`n`, `:advance 3d`), turns auto-skip on (`a`) or
//! pauses (`.`, `:pause`); `--paused` starts it paused, as headless commands always run. When stdout is not a terminal there is no
//! UI to draw: it prints what it loaded, as before, and points at `serve`. Quitting (`q`,
//! SIGTERM, SIGINT) waits at most 2 s for the engine's current batch; an episode that never
//! yields is left behind unrecorded, named on stderr, and the exit status is 1.

use super::http::HttpArgs;
use super::sidecar::GrpcArgs;
use super::{EngineArgs, print_manifest, target_or_builtin, watch_target};
use anyhow::Context;
use durable_emu_engine::clock::ClockKind;
use durable_emu_engine::engine::Engine;
use durable_emu_tui::{self as tui, AppOptions};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// How long quitting waits for the engine's current batch before leaving it behind.
const STOP_WAIT: Duration = Duration::from_secs(2);

pub fn ui(
    target: Option<&Path>,
    engine_args: &EngineArgs,
    paused: bool,
    grpc: &GrpcArgs,
    http: &HttpArgs,
    isolate: &super::isolate::IsolateArgs,
) -> anyhow::Result<ExitCode> {
    let (target, plugin) = target_or_builtin(target)?;
    if !std::io::stdout().is_terminal() {
        print_manifest(&plugin);
        eprintln!(
            "the terminal UI needs a terminal; for a headless engine use `durable-emu serve`"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let active_hash = plugin.content_hash.clone();
    // Bound before the database is opened: an address in use fails the command untouched.
    let listeners = grpc.bind()?;
    let http_listeners = http.bind()?;
    let isolation = isolate.bind(&plugin)?;
    let mut config = engine_args.config(Some(plugin.clone()))?;
    config.auto_skip = false;
    config.remote_workers = listeners.listening();
    config.isolated = isolation.is_some();
    let threads = config.workers;
    // Playing means nothing to the real clock (it always runs).
    config.playing = !paused && config.clock == ClockKind::Virtual;
    let (clock, playing) = (config.clock, config.playing);
    let db = config.db.clone();
    let (engine, events) = Engine::start_subscribed(config)
        .with_context(|| format!("opening {}", engine_args.db.db))?;
    let handle = engine.handle();
    let _watcher = watch_target(target, &handle, active_hash)?;
    let isolation = isolation
        .map(|listener| listener.start(&handle, threads))
        .transpose()?;
    let sidecar = listeners.serve(handle.asynchronous())?;
    let http = http_listeners.serve(handle.asynchronous())?;
    // Removed when the UI returns (the guard drops with this function's locals).
    let _endpoint = http.publish(&db);
    let options = AppOptions {
        // The UI has one line for the front ends; a listener that is off shows as its status.
        // One line per front end (the Builds view lists them under each other).
        sidecar: match &isolation {
            Some(_) => format!(
                "{}\n{}\nfunctions isolated in a worker process (--isolate)",
                sidecar.state.describe(),
                http.state.describe()
            ),
            None => format!("{}\n{}", sidecar.state.describe(), http.state.describe()),
        },
        clock,
        auto_skip: false,
        playing,
        log_dir: Path::new(".durable-emu").join("logs"),
    };
    let result = tui::run(handle.clone(), events, Some(plugin), options);
    // The terminal is restored by now; an episode that never yields must not keep the process.
    let running = handle.running_episode();
    if !engine.shutdown_within(STOP_WAIT) {
        if let Some(episode) = running {
            eprintln!("{episode} without yielding; quit without it: what it did is not recorded");
        }
        result?;
        return Ok(ExitCode::from(1));
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
