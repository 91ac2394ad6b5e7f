//! The official Durable Task Python SDK against the real binary: a virtual environment under
//! `target/python-venv` with the pinned `tests/python/requirements.txt` installed (made once, by
//! whichever test process gets there first; the others wait on a lock file), the scenario scripts
//! of `tests/python/scenarios/` run in it with a time limit, and `durable-emu serve --grpc` on a
//! free port for them to talk to.
//!
//! It knows how to run a script and a sidecar, never what a scenario checks: each script exits 0
//! when every check held and says what failed otherwise.

use crate::binary::{ScratchDir, durable_emu_binary};
use crate::workspace_root;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime};

/// How long a scenario script may run before it is killed: generous, CI has two cores, and each
/// script bounds its own waits (60 s each) with messages of its own.
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(240);

/// How long creating the environment may take (a pip install from the package index).
const INSTALL_LIMIT: Duration = Duration::from_secs(600);

/// The venv's python, made on first use. `None` (after saying why on stderr) when no python3 is
/// installed here; under CI (`CI` set) that is a failure instead, since `.ci/run` installs it.
pub fn venv_python() -> Option<PathBuf> {
    static MADE: OnceLock<Option<PathBuf>> = OnceLock::new();
    MADE.get_or_init(make_venv).clone()
}

fn base_python() -> String {
    std::env::var("DURABLE_EMU_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn venv_dir() -> PathBuf {
    workspace_root().join("target").join("python-venv")
}

fn requirements() -> PathBuf {
    workspace_root().join("tests/python/requirements.txt")
}

/// The scenario scripts' directory.
pub fn scenarios_dir() -> PathBuf {
    workspace_root().join("tests/python/scenarios")
}

fn make_venv() -> Option<PathBuf> {
    let python = base_python();
    let present = Command::new(&python)
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !present {
        assert!(
            std::env::var_os("CI").is_none(),
            "{python} is missing on CI; .ci/run installs python3 and python3-venv"
        );
        eprintln!(
            "skipped: {python} is not installed (install python3 and python3-venv, or set \
             DURABLE_EMU_PYTHON, to run the official Python SDK's tests)"
        );
        return None;
    }
    let dir = venv_dir();
    let wanted = std::fs::read_to_string(requirements())
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", requirements().display()));
    let marker = dir.join("durable-emu-requirements.txt");
    let ready = || std::fs::read_to_string(&marker).is_ok_and(|have| have == wanted);
    if !ready() {
        let _lock = VenvLock::acquire(&dir.with_extension("lock"));
        // Another process may have made it while this one waited for the lock.
        if !ready() {
            install(&python, &dir, &wanted, &marker);
        }
    }
    Some(dir.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    }))
}

fn install(python: &str, dir: &Path, wanted: &str, marker: &Path) {
    // A half-made environment (an interrupted run, older requirements) is made again from scratch.
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .unwrap_or_else(|error| panic!("cannot remove {}: {error}", dir.display()));
    }
    run_or_panic(
        Command::new(python).arg("-m").arg("venv").arg(dir),
        "creating the Python venv (on Debian/Ubuntu: apt-get install python3-venv)",
    );
    let venv_python = dir.join(if cfg!(windows) {
        "Scripts/python.exe"
    } else {
        "bin/python"
    });
    run_or_panic(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--disable-pip-version-check",
                "--quiet",
            ])
            .args(["--require-hashes", "-r"])
            .arg(requirements()),
        "installing tests/python/requirements.txt into target/python-venv",
    );
    std::fs::write(marker, wanted)
        .unwrap_or_else(|error| panic!("cannot write {}: {error}", marker.display()));
}

fn run_or_panic(command: &mut Command, what: &str) {
    let output = run_limited(command, INSTALL_LIMIT);
    assert!(
        output.status.is_some_and(|status| status.success()),
        "{what} failed ({}):\n{}\n{}",
        output.describe_status(),
        output.stdout,
        output.stderr
    );
}

/// A lock file held while the venv is made, so test processes running at once make it once. Its
/// content is the holder's process id: a lock whose holder is gone (or older than the install
/// limit) is stale and taken over.
struct VenvLock {
    path: PathBuf,
}

impl VenvLock {
    fn acquire(path: &Path) -> Self {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let deadline = Instant::now() + INSTALL_LIMIT * 2;
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut file) => {
                    use std::io::Write;
                    let _ = write!(file, "{}", std::process::id());
                    return Self {
                        path: path.to_path_buf(),
                    };
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    if Self::stale(path) {
                        let _ = std::fs::remove_file(path);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "{} is still held after {:?}; remove it if no test is running",
                        path.display(),
                        INSTALL_LIMIT * 2
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => panic!("cannot create {}: {error}", path.display()),
            }
        }
    }

    fn stale(path: &Path) -> bool {
        let old = std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age > INSTALL_LIMIT);
        let holder_gone = cfg!(target_os = "linux")
            && std::fs::read_to_string(path)
                .ok()
                .and_then(|pid| pid.trim().parse::<u32>().ok())
                .is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists());
        old || holder_gone
    }
}

impl Drop for VenvLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What a command printed and how it ended (`status` is `None` when it was killed at its limit).
#[derive(Debug)]
pub struct Ran {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub limit: Duration,
}

impl Ran {
    fn describe_status(&self) -> String {
        match self.status {
            Some(status) => status.to_string(),
            None => format!("killed after {:?}", self.limit),
        }
    }
}

fn run_limited(command: &mut Command, limit: Duration) -> Ran {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Ran {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        limit,
    }
}

fn drain(stream: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stream) = stream {
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// Runs `tests/python/scenarios/<script>` with the venv's python and `args`, and panics with
/// everything it printed (and `context`, e.g. the sidecar's log) unless it exits 0.
pub fn run_scenario(python: &Path, script: &str, args: &[&str], context: impl Fn() -> String) {
    let ran = run_limited(
        Command::new(python)
            .arg("-u")
            .arg(scenarios_dir().join(script))
            .args(args)
            .current_dir(scenarios_dir()),
        SCRIPT_LIMIT,
    );
    assert!(
        ran.status.is_some_and(|status| status.success()),
        "scenario {script} {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}\n{}",
        ran.describe_status(),
        ran.stdout,
        ran.stderr,
        context()
    );
    assert!(
        ran.stdout.contains("PASS "),
        "scenario {script} exited 0 without its PASS line:\n{}",
        ran.stdout
    );
}

/// A free TCP port on 127.0.0.1 (free when asked; the sidecar binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .unwrap_or_else(|error| panic!("cannot find a free port on 127.0.0.1: {error}"))
}

/// `durable-emu serve --grpc 127.0.0.1:<free port> --db <scratch>/state.db --events jsonl ...`
/// in the background, ready (its port accepts connections) when `start` returns. Its engine
/// events are read line by line; its stderr goes to `serve.log` in its scratch directory. Killed
/// (by its process id) when dropped.
#[derive(Debug)]
pub struct Sidecar {
    child: Child,
    addr: SocketAddr,
    events: Receiver<Value>,
    log: PathBuf,
    dir: ScratchDir,
}

impl Sidecar {
    /// Starts serve with the built-in samples plus `extra` arguments (clock, fault rules...).
    pub fn start(label: &str, extra: &[&str]) -> Self {
        let dir = ScratchDir::new(label);
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let log = dir.path().join("serve.log");
        let log_file = std::fs::File::create(&log)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", log.display()));
        let mut child = Command::new(durable_emu_binary())
            .arg("serve")
            .args(["--grpc", &addr.to_string()])
            .args(["--db", &dir.file("state.db")])
            .args(["--events", "jsonl"])
            .args(extra)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start durable-emu serve: {error}"));
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
        let mut sidecar = Self {
            child,
            addr,
            events,
            log,
            dir,
        };
        sidecar.wait_until_listening();
        sidecar
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "durable-emu serve --grpc {} exited ({status}) before it listened:\n{}",
                    self.addr,
                    self.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "durable-emu serve never listened on {}:\n{}",
                self.addr,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The address the SDK dials (`127.0.0.1:<port>`).
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The scratch directory (database, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What serve wrote on stderr so far, for failure messages.
    pub fn log_text(&self) -> String {
        format!(
            "--- durable-emu serve stderr ({})\n{}",
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// Every engine event that satisfies `wanted`, up to `count` of them, waiting at most
    /// `timeout` (real time) for each.
    pub fn events_matching(
        &self,
        count: usize,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
        let mut found = Vec::new();
        while found.len() < count {
            match self.events.recv_timeout(timeout) {
                Ok(event) if wanted(&event) => found.push(event),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        found
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
