//! A real terminal for the UI tests: tmux runs the real `durable-emu` binary in a detached
//! session of a given size; the test types like a user (`keys`, `key`) and reads what the UI drew
//! (`screen`). Needs tmux (`.ci/run` installs it): [`available`] lets a test skip without it,
//! except under CI, where a missing tmux is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a test waits for the screen to show something: generous, CI has two cores.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// One tmux server (its own socket) with one session running the UI.
pub struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` (run by `sh -c`) in `cwd` in a `width`x`height` terminal.
    pub fn start(name: &str, width: u16, height: u16, cwd: &Path, command: &str) -> Self {
        let tmux = Tmux {
            socket: format!("durable-emu-{name}-{}", std::process::id()),
            session: name.to_string(),
        };
        tmux.run(&[
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-c",
            cwd.to_str().expect("the test's directory is UTF-8"),
            "sh",
            "-c",
            command,
        ]);
        tmux
    }

    /// Starts the `durable-emu` UI with the built-in samples on `state.db` in `cwd`, without the
    /// gRPC sidecar (tests run side by side; none may hold the default port); its exit code goes
    /// to the returned file when it quits (read it with [`wait_for_exit_code`]).
    pub fn start_ui(name: &str, width: u16, height: u16, cwd: &Path) -> (Self, PathBuf) {
        // No listeners: UIs of tests running at once would race for the default ports, and the
        // loser's status line would say so.
        Self::start_ui_with(name, width, height, cwd, "--grpc off --http off")
    }

    /// [`Tmux::start_ui`] with `args` (shell words) instead of `--grpc off --http off`.
    pub fn start_ui_with(
        name: &str,
        width: u16,
        height: u16,
        cwd: &Path,
        args: &str,
    ) -> (Self, PathBuf) {
        let exit_file = cwd.join("exit-code");
        let script = format!(
            "'{}' --db state.db {args}; echo $? > '{}'",
            super::binary(),
            exit_file.display()
        );
        (Self::start(name, width, height, cwd, &script), exit_file)
    }

    /// Closes the terminal as closing its window would: the tmux server goes, and the UI gets
    /// SIGHUP and a terminal that reads end-of-file.
    pub fn close_terminal(&self) {
        self.run(&["kill-server"]);
    }

    fn run(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// What the terminal shows now.
    pub fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Types `literal` as text.
    pub fn keys(&self, literal: &str) {
        self.run(&["send-keys", "-t", &self.session, "-l", literal]);
    }

    /// Presses one named key (`Enter`, `Escape`, `Down`, `Tab`, `C-a`...).
    pub fn key(&self, name: &str) {
        self.run(&["send-keys", "-t", &self.session, name]);
    }

    /// Types a `:` command and presses Enter.
    pub fn command(&self, text: &str) {
        self.keys(":");
        self.keys(text);
        self.key("Enter");
    }

    /// Waits until `ready` holds for the screen, and returns that screen; fails with `what` and
    /// the last screen after [`PATIENCE`].
    pub fn wait_for(&self, what: &str, ready: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if ready(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

/// Whether tmux can run here. Under CI (`CI` set) a missing tmux is a failure, not a skip.
pub fn available() -> bool {
    let present = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(
        present || std::env::var_os("CI").is_none(),
        "tmux is missing on CI; .ci/run installs it"
    );
    if !present {
        eprintln!("skipped: tmux is not installed");
    }
    present
}

/// Waits for the UI's shell wrapper to write its exit code to `path`, and returns it.
pub fn wait_for_exit_code(path: &Path) -> String {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_string();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{} never appeared: the UI did not exit", path.display());
}

/// A line of `screen` that contains every one of `parts`.
pub fn line_with<'a>(screen: &'a str, parts: &[&str]) -> Option<&'a str> {
    screen
        .lines()
        .find(|line| parts.iter().all(|part| line.contains(part)))
}
