//! A `durable-emu serve` child with its HTTP API on a free loopback port, for the tests that
//! talk to a running emulator over HTTP.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `serve`; killed when dropped.
pub struct Served {
    pub child: Child,
    /// `127.0.0.1:PORT`, where its HTTP API listens.
    pub addr: String,
    pub dir: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// Starts `serve` (real clock, so an approval waits for its event; no gRPC) on `state.db` in a
/// fresh directory, with `extra` arguments, and waits for the line that says where the HTTP API
/// listens.
pub fn serve(extra: &[&str]) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(super::binary())
        .args([
            "serve", "--clock", "real", "--grpc", "off", "--http", &addr, "--db", "state.db",
        ])
        .args(extra)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("serve ended before listening: {seen:?}"))
            .unwrap();
        if line.contains("HTTP API on") {
            assert!(line.contains(&addr), "{line}");
            break;
        }
        seen.push(line);
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, addr, dir }
}
