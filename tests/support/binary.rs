//! The real `durable-emu` binary, for end-to-end tests of what a user types: built once per test
//! process into the shared e2e target directory (another package's binary has no
//! `CARGO_BIN_EXE_*` here), run in a scratch directory, its JSON status read back.

use crate::{e2e_target_dir, workspace_root};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Builds `durable-emu` (once per test process) and returns the path of the executable. Panics
/// with cargo's output if the build fails.
pub fn durable_emu_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let output = Command::new(cargo)
                .current_dir(workspace_root())
                .args(["build", "-p", "durable-emu", "--bin", "durable-emu"])
                .arg("--target-dir")
                .arg(e2e_target_dir())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|error| panic!("cannot run cargo to build durable-emu: {error}"));
            assert!(
                output.status.success(),
                "building durable-emu failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            let binary = e2e_target_dir()
                .join("debug")
                .join(format!("durable-emu{}", std::env::consts::EXE_SUFFIX));
            assert!(binary.is_file(), "cargo built no {}", binary.display());
            binary
        })
        .clone()
}

/// Runs the binary with `args` in `cwd` and returns what it did.
pub fn durable_emu(args: &[&str], cwd: &Path) -> Output {
    Command::new(durable_emu_binary())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("cannot run durable-emu {args:?}: {error}"))
}

/// `durable-emu serve ... --events jsonl` running in the background, its engine events read line
/// by line. Killed (by its process id) when stopped or dropped.
#[derive(Debug)]
pub struct Serving {
    child: Child,
    events: Receiver<Value>,
}

impl Serving {
    /// Starts `durable-emu serve <args> --events jsonl` in `cwd`.
    pub fn start(args: &[&str], cwd: &Path) -> Self {
        let mut child = Command::new(durable_emu_binary())
            .arg("serve")
            .args(args)
            .args(["--events", "jsonl"])
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start durable-emu serve {args:?}: {error}"));
        let stdout = child
            .stdout
            .take()
            .unwrap_or_else(|| panic!("serve's stdout is piped"));
        let (sender, events) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if sender.send(event).is_err() {
                    break;
                }
            }
        });
        Self { child, events }
    }

    /// The first engine event that satisfies `wanted`, waiting at most `timeout` (real time).
    pub fn wait_for(&self, timeout: Duration, wanted: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(event) if wanted(&event) => return Some(event),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Kills the process and waits for it, so its database can be opened again.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A fresh, empty directory under the e2e target directory, deleted on drop (a database file or
/// a working directory for one test).
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// A new directory whose name starts with `label`.
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = e2e_target_dir()
            .join("scratch")
            .join(format!("{label}-{}-{unique}", std::process::id()));
        // A leftover from a crashed run with the same pid would only hold stale files.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        Self { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `name` inside the directory, as a string for a command line.
    pub fn file(&self, name: &str) -> String {
        self.path.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
