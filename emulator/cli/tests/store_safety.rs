//! The store never loses or damages data, through the real binary: another program's SQLite file
//! is refused byte-for-byte untouched by every command; what is not a file is refused with what it
//! is; commands that only read create nothing; times past year 9999 are refused where they are
//! asked for and never make the database unreadable; one undecodable row does not hide the
//! others; and `import` refuses what cannot be a history, naming the event, changing nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;
use binary_support::*;
use rusqlite::Connection;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs HelloSequence to completion as `id` in `db`.
fn run_hello(dir: &Path, db: &str, id: &str) {
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--instance-id",
            id,
            "--db",
            db,
        ],
        dir,
    );
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
}

/// Every row of every table, as text, sorted: the database's logical content.
fn dump(path: &Path) -> Vec<String> {
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut rows = Vec::new();
    for table in tables {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = statement.column_count();
        let mut found = statement.query([]).unwrap();
        while let Some(row) = found.next().unwrap() {
            let cells: Vec<String> = (0..columns)
                .map(|index| format!("{:?}", row.get::<_, rusqlite::types::Value>(index).unwrap()))
                .collect();
            rows.push(format!("{table}: {}", cells.join(" | ")));
        }
    }
    rows.sort();
    rows
}

/// Waits for a child up to `limit`; kills it and fails the test if it is still running.
fn wait_briefly(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the command was still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn another_programs_sqlite_file_is_left_byte_for_byte_unchanged_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("app.db");
    {
        let conn = Connection::open(&foreign).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
             INSERT INTO notes(body) VALUES ('buy milk'), ('call home');
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    // A real export to offer `import`, made in a database of our own elsewhere.
    let ours_dir = tempfile::tempdir().unwrap();
    run_hello(ours_dir.path(), "state.db", "hello-1");
    let export = durable_emu(&["export", "hello-1", "--db", "state.db"], ours_dir.path());
    assert_eq!(export.status.code(), Some(0), "{}", stderr(&export));
    let export_file = ours_dir.path().join("hello-1.json");
    std::fs::write(&export_file, &export.stdout).unwrap();

    let before = std::fs::read(&foreign).unwrap();
    let db = foreign.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["list", "--db", db],
        vec!["list", "--json", "--db", db],
        vec!["status", "hello-1", "--db", db],
        vec!["status", "hello-1", "--history", "--db", db],
        vec!["export", "hello-1", "--db", db],
        vec!["run", "-o", "HelloSequence", "--db", db],
        vec!["import", export_file.to_str().unwrap(), "--db", db],
        vec!["purge", "hello-1", "--db", db],
        vec!["terminate", "hello-1", "--db", db],
        vec!["raise", "hello-1", "Approval", "true", "--db", db],
        vec!["replay", "--db", db],
    ];
    for args in &commands {
        let output = durable_emu(args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("is not a durable-emu database")
                && stderr(&output).contains("another program")
                && stderr(&output).contains("left untouched"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            std::fs::read(&foreign).unwrap(),
            before,
            "{args:?} changed it"
        );
        assert_eq!(entries(dir.path()), ["app.db"], "{args:?} left files");
    }

    let mut serve = Command::new(env!("CARGO_BIN_EXE_durable-emu"))
        .args(["serve", "--db", db])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_briefly(&mut serve, Duration::from_secs(30));
    assert_eq!(status.code(), Some(2));
    let mut message = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut message).unwrap();
    assert!(message.contains("another program"), "{message}");
    assert_eq!(std::fs::read(&foreign).unwrap(), before, "serve changed it");
    assert_eq!(entries(dir.path()), ["app.db"]);
}

#[test]
fn a_directory_a_fifo_or_a_device_is_refused_with_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    for (db, what) in [
        ("folder", "is a directory"),
        ("pipe", "is a FIFO"),
        ("/dev/null", "is a character device"),
    ] {
        for args in [
            vec!["list", "--db", db],
            vec!["run", "-o", "HelloSequence", "--db", db],
        ] {
            let output = durable_emu(&args, dir.path());
            assert_eq!(output.status.code(), Some(2), "{args:?}");
            assert!(
                stderr(&output).contains(what),
                "{args:?}: {}",
                stderr(&output)
            );
        }
    }
    assert!(entries(&dir.path().join("folder")).is_empty());
}

#[test]
fn commands_that_only_read_create_no_directory_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["status", "hello-1"],
        vec!["export", "hello-1"],
        vec!["list", "--db", "elsewhere/deeper/state.db"],
    ] {
        let output = durable_emu(&args, dir.path());
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&output).contains("no durable-emu database at")
                && stderr(&output).contains("no such file"),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(entries(dir.path()).is_empty(), "{args:?} created something");
    }

    // After a run, reading leaves only the database itself: no -wal, -shm or journal.
    run_hello(dir.path(), ".durable-emu/state.db", "hello-1");
    let state = dir.path().join(".durable-emu");
    assert_eq!(entries(&state), ["state.db"]);
    let before = std::fs::read(state.join("state.db")).unwrap();
    for args in [
        vec!["list"],
        vec!["status", "hello-1", "--history"],
        vec!["export", "hello-1"],
    ] {
        let output = durable_emu(&args, dir.path());
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(entries(&state), ["state.db"], "{args:?} left files");
        assert_eq!(std::fs::read(state.join("state.db")).unwrap(), before);
    }
}

#[test]
fn a_zero_byte_file_becomes_a_database_only_when_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.db"), b"").unwrap();
    let listed = durable_emu(&["list", "--db", "empty.db"], dir.path());
    assert_eq!(listed.status.code(), Some(2));
    assert!(
        stderr(&listed).contains("the file is empty"),
        "{}",
        stderr(&listed)
    );
    assert_eq!(std::fs::read(dir.path().join("empty.db")).unwrap(), b"");

    run_hello(dir.path(), "empty.db", "hello-1");
    let listed = durable_emu(&["list", "--db", "empty.db"], dir.path());
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("hello-1"));
}

#[test]
fn an_unmarked_database_with_our_schema_is_accepted_and_a_near_copy_is_not() {
    let dir = tempfile::tempdir().unwrap();
    run_hello(dir.path(), "state.db", "hello-1");
    let path = dir.path().join("state.db");
    // As an earlier durable-emu wrote it: same schema, no application id.
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "application_id", 0)
        .unwrap();
    let listed = durable_emu(&["list", "--db", "state.db"], dir.path());
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("hello-1"));
    run_hello(dir.path(), "state.db", "hello-2");
    let marked: i32 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .unwrap();
    assert_eq!(marked, durable_emu_engine::APPLICATION_ID);

    // The same schema plus a table of someone else's is not ours.
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "application_id", 0).unwrap();
        conn.execute_batch("CREATE TABLE extra(x)").unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let ran = durable_emu(
        &["run", "-o", "HelloSequence", "--db", "state.db"],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(2));
    assert!(stderr(&ran).contains("another program"), "{}", stderr(&ran));
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn a_timer_past_year_9999_fails_clearly_and_the_database_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "ApprovalWorkflow",
            "--instance-id",
            "forever",
            "--input",
            r#"{"request":"a raise","timeout_hours":100000000}"#,
            "--db",
            "state.db",
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(1), "{}", stderr(&ran));
    let status = stdout_json(&ran);
    assert_eq!(status["runtimeStatus"], "Failed");
    let failure = status["failureDetails"].to_string();
    assert!(
        failure.contains("TimerOutOfRange") && failure.contains("years 1 to 9999"),
        "{failure}"
    );
    let failed_at = status["lastUpdatedTime"].as_str().unwrap().to_string();

    let listed = durable_emu(&["list", "--db", "state.db"], dir.path());
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("forever"));
    let shown = durable_emu(
        &["status", "forever", "--history", "--db", "state.db"],
        dir.path(),
    );
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    assert_eq!(stdout_json(&shown)["runtimeStatus"], "Failed");
    let exported = durable_emu(&["export", "forever", "--db", "state.db"], dir.path());
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));

    // Virtual time carries on from where it was; it never jumps back to the wall clock.
    let next = durable_emu(
        &["run", "-o", "HelloSequence", "--db", "state.db"],
        dir.path(),
    );
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    let started = stdout_json(&next)["createdTime"]
        .as_str()
        .unwrap()
        .to_string();
    let parse = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    assert!(
        parse(&started) >= parse(&failed_at),
        "{started} < {failed_at}"
    );
}

#[test]
fn a_fault_delay_longer_than_the_calendar_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            "state.db",
            "--fault",
            "activity=SayHello,delay=999999999y",
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(2));
    assert!(
        stderr(&ran).contains("longer than the calendar"),
        "{}",
        stderr(&ran)
    );
    std::fs::write(
        dir.path().join("slow.toml"),
        "[[fault]]\nactivity = \"SayHello\"\neffect = \"delay\"\ndelay = \"999999999y\"\n",
    )
    .unwrap();
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--db",
            "state.db",
            "--faults",
            "slow.toml",
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(2));
    assert!(
        stderr(&ran).contains("longer than the calendar"),
        "{}",
        stderr(&ran)
    );
    assert_eq!(entries(dir.path()), ["slow.toml"]);
}

#[test]
fn a_fault_delay_reaching_past_year_9999_ends_at_the_last_storable_moment() {
    let dir = tempfile::tempdir().unwrap();
    let ran = durable_emu(
        &[
            "run",
            "-o",
            "HelloSequence",
            "--instance-id",
            "late",
            "--db",
            "state.db",
            "--fault",
            "activity=SayHello,call=1,delay=9000y",
        ],
        dir.path(),
    );
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let status = stdout_json(&ran);
    assert_eq!(status["runtimeStatus"], "Completed");
    assert!(
        status["lastUpdatedTime"]
            .as_str()
            .unwrap()
            .starts_with("9999-12-31T23:59:59"),
        "{status}"
    );
    let listed = durable_emu(&["list", "--db", "state.db"], dir.path());
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let again = durable_emu(
        &["run", "-o", "HelloSequence", "--db", "state.db"],
        dir.path(),
    );
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
}

#[test]
fn a_row_made_undecodable_does_not_hide_the_others_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for id in ["first", "broken", "third"] {
        run_hello(dir.path(), "state.db", id);
    }
    Connection::open(dir.path().join("state.db"))
        .unwrap()
        .execute(
            "UPDATE instances SET created_at = '+13434-11-11T13:32:49+00:00' WHERE instance_id = 'broken'",
            [],
        )
        .unwrap();
    let listed = durable_emu(&["list", "--db", "state.db"], dir.path());
    assert_eq!(listed.status.code(), Some(1), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("first") && stdout(&listed).contains("third"));
    assert!(!stdout(&listed).contains("broken"));
    assert!(
        stderr(&listed).contains("instance broken cannot be read")
            && stderr(&listed).contains("created time of instance broken"),
        "{}",
        stderr(&listed)
    );
    let json = durable_emu(&["list", "--json", "--db", "state.db"], dir.path());
    let ids: Vec<Value> = stdout_json(&json)
        .as_array()
        .unwrap()
        .iter()
        .map(|status| status["instanceId"].clone())
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&json!("first")) && ids.contains(&json!("third")));

    let shown = durable_emu(&["status", "broken", "--db", "state.db"], dir.path());
    assert_eq!(shown.status.code(), Some(2));
    assert!(
        stderr(&shown).contains("created time of instance broken"),
        "{}",
        stderr(&shown)
    );
    // The engine still starts and runs the rest.
    run_hello(dir.path(), "state.db", "fourth");
}

/// The first execution's history in an export.
fn history(export: &mut Value) -> &mut Vec<Value> {
    export["executions"][0]["history"].as_array_mut().unwrap()
}

/// An export of a finished HelloSequence (`hello-1`), and a database holding another instance.
fn export_and_other_database(dir: &Path) -> (Value, PathBuf) {
    run_hello(dir, "source.db", "hello-1");
    let exported = durable_emu(&["export", "hello-1", "--db", "source.db"], dir);
    assert_eq!(exported.status.code(), Some(0), "{}", stderr(&exported));
    run_hello(dir, "target.db", "other");
    (stdout_json(&exported), dir.join("target.db"))
}

#[test]
fn import_refuses_each_malformed_history_naming_the_event_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (good, target) = export_and_other_database(dir.path());
    // HelloSequence's history: 0 OrchestratorStarted, 1 ExecutionStarted, 2 TaskScheduled #0,
    // 3 OrchestratorCompleted, 4 OrchestratorStarted, 5 TaskCompleted for #0, 6 TaskScheduled
    // #1, 7 OrchestratorCompleted, 8, 9 TaskCompleted for #1, 10 TaskScheduled #2, 11, 12,
    // 13 TaskCompleted for #2, 14 ExecutionCompleted #3, 15 OrchestratorCompleted.
    assert_eq!(history(&mut good.clone())[9]["eventType"], "TaskCompleted");
    type Break = fn(&mut Value);
    let cases: Vec<(&str, Break, &str)> = vec![
        (
            "duplicate event id",
            |export| history(export)[6]["eventId"] = json!(0),
            "event 6 (TaskScheduled #0): event id 0 is already used by event 2",
        ),
        (
            "completion of a task never scheduled",
            |export| history(export)[5]["taskScheduledId"] = json!(9),
            "event 5 (TaskCompleted for #9): it completes #9, but no activity #9 was scheduled",
        ),
        (
            "duplicated completion",
            |export| {
                let again = history(export)[9].clone();
                history(export).insert(10, again);
            },
            "event 10 (TaskCompleted for #1): #1 was already completed by event 9",
        ),
        (
            "instance id differing from its events'",
            |export| history(export)[1]["instanceId"] = json!("someone-else"),
            "event 1 (ExecutionStarted): it names instance 'someone-else'",
        ),
        (
            "empty instance id",
            |export| export["instance"]["instanceId"] = json!(""),
            "its instanceId is empty",
        ),
        (
            "empty history",
            |export| history(export).clear(),
            "its history is empty",
        ),
        (
            "history cut inside an episode",
            |export| history(export).truncate(14),
            "event 13 (TaskCompleted for #2): the history is cut inside an episode",
        ),
    ];
    let before = dump(&target);
    for (what, break_it, expected) in cases {
        let mut export = good.clone();
        break_it(&mut export);
        let file = dir.path().join("broken.json");
        std::fs::write(&file, export.to_string()).unwrap();
        let output = durable_emu(
            &["import", file.to_str().unwrap(), "--db", "target.db"],
            dir.path(),
        );
        assert_eq!(output.status.code(), Some(2), "{what}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(expected) && stderr(&output).contains("nothing was imported"),
            "{what}: expected {expected:?} in\n{}",
            stderr(&output)
        );
        assert_eq!(dump(&target), before, "{what} changed the database");
    }

    // The unbroken export imports.
    let file = dir.path().join("good.json");
    std::fs::write(&file, good.to_string()).unwrap();
    let imported = durable_emu(
        &["import", file.to_str().unwrap(), "--db", "target.db"],
        dir.path(),
    );
    assert_eq!(imported.status.code(), Some(0), "{}", stderr(&imported));
}

#[test]
fn import_over_an_instance_that_has_ended_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (good, _) = export_and_other_database(dir.path());
    let file = dir.path().join("hello-1.json");
    std::fs::write(&file, good.to_string()).unwrap();
    let before = dump(&dir.path().join("source.db"));
    let output = durable_emu(
        &["import", file.to_str().unwrap(), "--db", "source.db"],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "instance 'hello-1' already exists in this database and has ended (Completed)"
        ) && stderr(&output).contains("durable-emu purge hello-1"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("still running"));
    assert_eq!(dump(&dir.path().join("source.db")), before);
}
