//! The endpoint file: how a running emulator (the UI or `serve`) tells other `durable-emu`
//! commands where its HTTP API listens, so they go through it instead of opening a database
//! that the running one holds locked.
//!
//! The file sits beside the database, named after it: `<db>.endpoint`, so the default database
//! `.durable-emu/state.db` publishes `.durable-emu/state.db.endpoint` (in the `.durable-emu/`
//! directory the issue names; one file per database, so two databases in one directory do not
//! share one). It holds one JSON object: the pid of the process, the database path (absolute)
//! and the base URL of its HTTP API. An in-memory database publishes nothing: no other process
//! can open it.
//!
//! Written once the HTTP listener is bound ([`publish`]); removed when the returned guard drops
//! (the process exits normally). A process that was killed leaves its file behind: [`find`]
//! takes a file only when its pid is alive and the emulator answering at its URL says it is that
//! process (`GET /durable-emu/v1/about`), so a port reused since by another program or another
//! emulator is not mistaken for it; a stale file is ignored (the next [`publish`] replaces it).
//! Owns no server and no engine: only the file and that one question.

use anyhow::Context;
use durable_emu_engine::DbLocation;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long [`find`] waits for the published URL to answer: it is a loopback socket of a live
/// process, so a refusal or silence this long means nobody serves there.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// A running emulator's published endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The process that serves it.
    pub pid: u32,
    /// The database it runs (absolute when written).
    pub db: PathBuf,
    /// The base URL of its HTTP API, e.g. `http://127.0.0.1:7071` (no trailing slash).
    pub url: String,
}

/// Removes the endpoint file when dropped, if it is still the one this process wrote.
#[derive(Debug)]
#[must_use = "the endpoint file is removed when the guard drops"]
pub struct EndpointGuard {
    path: Option<PathBuf>,
}

impl EndpointGuard {
    /// Where the file was written (none for an in-memory database).
    #[cfg(test)]
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

impl Drop for EndpointGuard {
    fn drop(&mut self) {
        let Some(path) = &self.path else { return };
        // Another emulator may have replaced a file it judged stale (this process hung, say):
        // only our own is removed.
        if read(path).is_some_and(|endpoint| endpoint.pid == std::process::id()) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where the endpoint file of a database is: `<db>.endpoint`; none for `:memory:`.
pub fn file_for(db: &DbLocation) -> Option<PathBuf> {
    match db {
        DbLocation::Memory => None,
        DbLocation::File(path) => {
            let mut name = path.as_os_str().to_owned();
            name.push(".endpoint");
            Some(PathBuf::from(name))
        }
    }
}

/// Publishes that this process serves `db`'s HTTP API at `url` (call it once the listener is
/// bound, after the database is open). The file is written whole or not at all (a temporary
/// file renamed over it), so a reader never sees half of it.
pub fn publish(db: &DbLocation, url: &str) -> anyhow::Result<EndpointGuard> {
    let Some(path) = file_for(db) else {
        return Ok(EndpointGuard { path: None });
    };
    let DbLocation::File(db_path) = db else {
        return Ok(EndpointGuard { path: None });
    };
    let absolute = std::path::absolute(db_path).unwrap_or_else(|_| db_path.clone());
    let body = json!({
        "pid": std::process::id(),
        "db": absolute.to_string_lossy(),
        "url": url.trim_end_matches('/'),
    });
    let temporary = path.with_extension(format!("endpoint.{}.tmp", std::process::id()));
    let text = serde_json::to_string_pretty(&body).context("serializing the endpoint file")?;
    std::fs::write(&temporary, text + "\n")
        .with_context(|| format!("writing {}", temporary.display()))?;
    if let Err(error) = std::fs::rename(&temporary, &path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("writing {}", path.display()));
    }
    Ok(EndpointGuard { path: Some(path) })
}

/// The emulator running on `db`, if one published its endpoint and is still there (its pid is
/// alive and its URL accepts a connection). A stale or unreadable file is ignored.
pub fn find(db: &DbLocation) -> Option<Endpoint> {
    let endpoint = read(&file_for(db)?)?;
    (pid_alive(endpoint.pid) && answers_as(&endpoint.url, endpoint.pid)).then_some(endpoint)
}

/// The file's contents, if it is there and well-formed.
fn read(path: &Path) -> Option<Endpoint> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: Value = serde_json::from_str(&text).ok()?;
    Some(Endpoint {
        pid: u32::try_from(value.get("pid")?.as_u64()?).ok()?,
        db: PathBuf::from(value.get("db")?.as_str()?),
        url: value.get("url")?.as_str()?.to_owned(),
    })
}

/// Whether a process with this pid exists (signal 0 checks without sending anything; EPERM
/// means it exists but belongs to someone else).
#[cfg(unix)]
fn pid_alive(pid: u32) -> bool {
    unsafe extern "C" {
        fn kill(pid: i32, signal: i32) -> i32;
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        // 0 and negatives name process groups, never one process.
        return false;
    }
    // SAFETY: `kill` with signal 0 performs only the existence and permission check; it has no
    // effect on the target and reads no memory of ours.
    let result = unsafe { kill(pid, 0) };
    const EPERM: i32 = 1;
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(EPERM)
}

/// Elsewhere the URL probe alone decides.
#[cfg(not(unix))]
fn pid_alive(_pid: u32) -> bool {
    true
}

/// Whether the emulator answering at `url` is process `pid` (its `about` route says so).
fn answers_as(url: &str, pid: u32) -> bool {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(PROBE_TIMEOUT))
            .build(),
    );
    let about = format!(
        "{}{}",
        url.trim_end_matches('/'),
        durable_emu_http::ABOUT_PATH
    );
    let Ok(mut response) = agent.get(&about).call() else {
        return false;
    };
    let Ok(body) = response.body_mut().read_to_string() else {
        return false;
    };
    serde_json::from_str::<Value>(&body).is_ok_and(|about| {
        about["product"] == "durable-emu" && about["pid"].as_u64() == Some(u64::from(pid))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn db_in(dir: &Path) -> DbLocation {
        DbLocation::File(dir.join("state.db"))
    }

    /// Answers every request on `listener` with `body` (200, JSON) on a thread of its own.
    fn answer_with(listener: TcpListener, body: Value) {
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                let body = body.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
    }

    fn about(pid: u32) -> Value {
        json!({"product": "durable-emu", "version": "0.1.0", "pid": pid})
    }

    #[test]
    fn the_file_sits_beside_the_database_named_after_it() {
        let db = DbLocation::File(PathBuf::from(".durable-emu/state.db"));
        assert_eq!(
            file_for(&db),
            Some(PathBuf::from(".durable-emu/state.db.endpoint"))
        );
        assert_eq!(file_for(&DbLocation::Memory), None);
    }

    #[test]
    fn a_published_endpoint_is_found_while_it_listens_and_removed_when_the_guard_drops() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        answer_with(listener, about(std::process::id()));
        let guard = publish(&db, &url).unwrap();
        let file = guard.path().unwrap().to_owned();
        assert!(file.exists());
        let found = find(&db).expect("a live endpoint is found");
        assert_eq!(found.pid, std::process::id());
        assert_eq!(found.url, url.trim_end_matches('/'));
        assert!(found.db.is_absolute());
        assert!(found.db.ends_with("state.db"));
        drop(guard);
        assert!(!file.exists(), "the guard removes the file");
        assert_eq!(find(&db), None);
    }

    #[test]
    fn a_file_whose_url_no_longer_answers_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let _guard = publish(&db, &url).unwrap();
        drop(listener);
        assert_eq!(find(&db), None);
    }

    #[test]
    fn a_port_taken_since_by_another_emulator_or_program_is_stale() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", other.local_addr().unwrap());
        answer_with(other, about(std::process::id() + 1));
        let _guard = publish(&db, &url).unwrap();
        assert_eq!(find(&db), None, "another emulator's pid");

        let program = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", program.local_addr().unwrap());
        answer_with(program, json!({"hello": "world"}));
        let _guard = publish(&db, &url).unwrap();
        assert_eq!(find(&db), None, "not an emulator");

        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        let _guard = publish(&db, &url).unwrap();
        assert_eq!(find(&db), None, "accepts connections but never answers");
        drop(silent);
    }

    #[test]
    fn a_file_left_by_a_dead_process_is_stale_and_the_next_publish_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        answer_with(listener, about(std::process::id()));
        // A process that has exited: its pid is not alive (the child is reaped by `wait`).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead_pid = child.id();
        child.wait().unwrap();
        let path = file_for(&db).unwrap();
        std::fs::write(
            &path,
            json!({"pid": dead_pid, "db": "/x/state.db", "url": url}).to_string(),
        )
        .unwrap();
        assert_eq!(find(&db), None, "the URL answers but the pid is dead");

        let guard = publish(&db, &url).unwrap();
        assert_eq!(find(&db).map(|e| e.pid), Some(std::process::id()));
        drop(guard);
        assert!(!path.exists());
    }

    #[test]
    fn a_guard_leaves_a_file_another_process_wrote_since() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        let guard = publish(&db, "http://127.0.0.1:1").unwrap();
        let path = file_for(&db).unwrap();
        let other = json!({"pid": 1, "db": "/x/state.db", "url": "http://127.0.0.1:2"});
        std::fs::write(&path, other.to_string()).unwrap();
        drop(guard);
        assert!(path.exists(), "not ours: left alone");
    }

    #[test]
    fn an_unreadable_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let db = db_in(dir.path());
        std::fs::write(file_for(&db).unwrap(), "not json").unwrap();
        assert_eq!(find(&db), None);
    }

    #[test]
    fn an_in_memory_database_publishes_nothing() {
        let guard = publish(&DbLocation::Memory, "http://127.0.0.1:7071").unwrap();
        assert_eq!(guard.path(), None);
        assert_eq!(find(&DbLocation::Memory), None);
    }
}
