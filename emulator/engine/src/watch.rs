//! Hot reload: build and load the user's functions, watch them, and hand every new build to the
//! engine (docs/architecture.md#builds-and-hot-reload).
//!
//! A [`Target`] is a crate directory (built with `cargo build --message-format=json`; its `src/`
//! and `Cargo.toml` are watched) or a library file (its directory is watched, so the watch survives
//! cargo replacing the file, and a write that leaves the content unchanged does not reload).
//! Changes are debounced, so a burst of saves gives one build. A failed build, a deleted file or a
//! library that does not load is announced as an engine event and changes nothing: the previous
//! build stays active and the store is untouched.
//!
//! Owns the watcher thread. Hands builds to a [`BuildSink`]: the engine's handle, or whatever
//! else runs functions (a `durable-emu worker` process); knows nothing of front ends.

use crate::cargo_build::{BuildError, BuildOptions, CompilerError, build_cdylib_with_progress};
use crate::engine::{EngineEvent, EngineHandle};
use crate::plugin::{LoadedPlugin, PluginError};
use notify::RecursiveMode;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, Watcher as _};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where a watcher delivers what it builds: the engine (through its handle), or a worker that
/// runs the functions for a remote backend.
pub trait BuildSink: Send + 'static {
    /// News of a build (started, progress, failed, finished).
    fn announce(&self, event: EngineEvent);
    /// Makes `plugin` the active build; returns its build number.
    fn load_build(&self, plugin: LoadedPlugin) -> Result<u32, String>;
}

impl BuildSink for EngineHandle {
    fn announce(&self, event: EngineEvent) {
        EngineHandle::announce(self, event);
    }

    fn load_build(&self, plugin: LoadedPlugin) -> Result<u32, String> {
        EngineHandle::load_build(self, plugin).map_err(|error| error.to_string())
    }
}

/// Where the functions come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A crate directory, built with cargo.
    Crate(PathBuf),
    /// A plugin library file.
    Library(PathBuf),
}

impl Target {
    /// A directory is a crate; anything else a library file.
    pub fn from_path(path: &Path) -> Self {
        if path.is_dir() {
            Target::Crate(path.to_path_buf())
        } else {
            Target::Library(path.to_path_buf())
        }
    }

    fn path(&self) -> &Path {
        match self {
            Target::Crate(path) | Target::Library(path) => path,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path().display())
    }
}

/// Why a build could not become active.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// cargo failed (compile errors included).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The library did not load as a plugin.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The library file is gone.
    #[error("{0} was deleted; the previous build stays active until it is back")]
    Deleted(PathBuf),
}

impl LoadError {
    /// The compiler's rendered errors, when this is a compile failure.
    pub fn compiler_errors(&self) -> Vec<String> {
        match self {
            LoadError::Build(error) => error
                .compiler_errors()
                .iter()
                .map(|error| error.rendered.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// `file:line:column: message` of the first compiler error that points into the source.
    pub fn first_error(&self) -> Option<String> {
        match self {
            LoadError::Build(error) => error.first_located_error().map(CompilerError::summary),
            _ => None,
        }
    }

    /// Why, in one line: a compile failure counts its errors (the errors themselves travel
    /// apart), anything else is its message.
    pub fn reason(&self) -> String {
        match self {
            LoadError::Build(BuildError::Failed { dir, errors }) => format!(
                "cargo build failed in {} with {} error{}",
                dir.display(),
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            ),
            other => other.to_string(),
        }
    }
}

/// How to build and how long to wait for a burst of changes to settle.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// cargo options for crate targets.
    pub build: BuildOptions,
    /// Changes closer together than this count as one.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            build: BuildOptions::default(),
            debounce: Duration::from_millis(200),
        }
    }
}

/// Builds (for a crate) and loads the target once, reporting cargo's progress.
pub fn load_once(
    target: &Target,
    options: &BuildOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<LoadedPlugin, LoadError> {
    let library = match target {
        Target::Crate(dir) => build_cdylib_with_progress(dir, options, progress)?,
        Target::Library(path) => path.clone(),
    };
    Ok(LoadedPlugin::load(&library)?)
}

/// A running watcher; dropping it stops watching.
#[derive(Debug)]
pub struct Watcher {
    _watcher: notify::RecommendedWatcher,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watches `target` and loads every good new build into `engine` (any [`BuildSink`]).
    /// `active_hash` is the content hash of the build already loaded (a change back to it does
    /// not reload).
    pub fn start(
        target: Target,
        options: WatchOptions,
        engine: impl BuildSink,
        active_hash: Option<String>,
    ) -> Result<Self, notify::Error> {
        let (changes_tx, changes) = crossbeam_channel::unbounded::<()>();
        let filter = target.clone();
        // Debouncing is done here rather than with notify's debouncers because the event kind
        // matters: cargo's compiler *reads* the sources during every build, and those reads must
        // not count as changes (they would trigger a rebuild after every build).
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            if let Ok(event) = event {
                if is_change(&event.kind)
                    && event.paths.iter().any(|path| filter.is_affected_by(path))
                {
                    let _ = changes_tx.send(());
                }
            }
        })?;
        match &target {
            Target::Crate(dir) => {
                let src = dir.join("src");
                if src.is_dir() {
                    watcher.watch(&src, RecursiveMode::Recursive)?;
                }
                watcher.watch(dir, RecursiveMode::NonRecursive)?;
            }
            Target::Library(path) => {
                let dir = path
                    .parent()
                    .filter(|dir| !dir.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                watcher.watch(dir, RecursiveMode::NonRecursive)?;
            }
        }
        let thread = std::thread::Builder::new()
            .name("durable-emu-watch".into())
            .spawn(move || {
                let mut reloader = Reloader {
                    target,
                    options,
                    engine: Box::new(engine),
                    active_hash,
                };
                reloader.run(changes);
            })
            .map_err(|error| notify::Error::generic(&error.to_string()))?;
        Ok(Self {
            _watcher: watcher,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the notify watcher closes the channel, which ends the thread after its
        // current build; it is not joined, so a long cargo build never blocks shutdown.
        self.thread.take();
    }
}

/// Writes, creations, removals and renames count; reads and metadata-only touches do not.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

impl Target {
    fn is_affected_by(&self, changed: &Path) -> bool {
        match self {
            Target::Library(path) => same_file_name(changed, path),
            Target::Crate(dir) => {
                changed.starts_with(dir.join("src"))
                    || changed.file_name().is_some_and(|name| name == "Cargo.toml")
            }
        }
    }
}

struct Reloader {
    target: Target,
    options: WatchOptions,
    engine: Box<dyn BuildSink>,
    active_hash: Option<String>,
}

impl Reloader {
    fn run(&mut self, changes: crossbeam_channel::Receiver<()>) {
        while changes.recv().is_ok() {
            // Settled: no further change for one debounce interval. Changes made while a build
            // runs are caught by the next round, so a burst of saves gives one build.
            loop {
                match changes.recv_timeout(self.options.debounce) {
                    Ok(()) => continue,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => break,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
                }
            }
            self.reload(Instant::now());
        }
    }

    fn reload(&mut self, settled: Instant) {
        let target = self.target.to_string();
        if matches!(self.target, Target::Crate(_)) {
            self.engine.announce(EngineEvent::BuildStarted {
                target: target.clone(),
            });
        }
        let engine = &self.engine;
        let progress_target = target.clone();
        let mut progress = move |line: &str| {
            engine.announce(EngineEvent::BuildProgress {
                target: progress_target.clone(),
                message: line.to_string(),
            });
        };
        let loaded = match &self.target {
            Target::Library(path) if !path.exists() => Err(LoadError::Deleted(path.clone())),
            Target::Library(path) => {
                let before = file_state(path);
                let loaded = load_once(&self.target, &self.options.build, &mut progress);
                // A library still being written (a slow copy, a writer the scheduler paused
                // longer than the debounce) may have been read half-way: leave it to the round
                // its next change starts, which sees the finished file.
                if before.is_none() || file_state(path) != before {
                    return;
                }
                loaded
            }
            Target::Crate(_) => load_once(&self.target, &self.options.build, &mut progress),
        };
        let plugin = match loaded {
            Ok(plugin) => plugin,
            Err(error) => {
                self.engine.announce(EngineEvent::BuildFailed {
                    target,
                    reason: error.reason(),
                    errors: error.compiler_errors(),
                    first_error: error.first_error(),
                });
                return;
            }
        };
        if self.active_hash.as_deref() == Some(plugin.content_hash.as_str()) {
            return;
        }
        let hash = plugin.content_hash.clone();
        match self.engine.load_build(plugin) {
            Ok(number) => {
                self.active_hash = Some(hash);
                self.engine.announce(EngineEvent::ReloadFinished {
                    number,
                    settled_to_active_ms: settled.elapsed().as_secs_f64() * 1000.0,
                });
            }
            Err(reason) => self.engine.announce(EngineEvent::BuildFailed {
                target,
                reason,
                errors: Vec::new(),
                first_error: None,
            }),
        }
    }
}

/// What tells a file's writes apart: its length and modification time.
fn file_state(path: &Path) -> Option<(u64, std::time::SystemTime)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.len(), metadata.modified().ok()?))
}

fn same_file_name(changed: &Path, watched: &Path) -> bool {
    changed.file_name().is_some() && changed.file_name() == watched.file_name()
}
