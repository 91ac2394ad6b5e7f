//! Durable entities through the real binary, with the built-in samples: `entity signal`, `get` and
//! `list`, the `Transfer` sample between two `Account` entities, with and without the fault
//! scenario that makes it fail halfway, and what the `entity` commands say when asked wrongly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod binary_support;
use binary_support::*;
use serde_json::{Value, json};
use std::path::Path;

/// The repository root (for `assets/scenarios`).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
}

fn run_ok(args: &[&str], cwd: &Path) -> Value {
    let output = durable_emu(args, cwd);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        stderr(&output)
    );
    stdout_json(&output)
}

#[test]
fn a_counter_signalled_from_the_command_line_is_read_back_with_its_operation_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let first = run_ok(
        &["entity", "signal", "@counter@a", "add", "5", "--db", db],
        dir.path(),
    );
    assert_eq!(first["operation"]["outcome"]["result"], json!(5));
    assert_eq!(first["entity"]["state"], json!(5));
    // The name is case-insensitive: @Counter@a is the same entity.
    run_ok(
        &["entity", "signal", "@Counter@a", "add", "2", "--db", db],
        dir.path(),
    );
    let entity = run_ok(&["entity", "get", "@counter@a", "--db", db], dir.path());
    assert_eq!(entity["instanceId"], "@counter@a");
    assert_eq!(entity["state"], json!(7));
    assert_eq!(entity["backlog"], json!(0));
    let operations = entity["operations"].as_array().unwrap();
    let summary: Vec<(&str, &Value, &Value, &str)> = operations
        .iter()
        .map(|record| {
            (
                record["operation"].as_str().unwrap(),
                &record["input"],
                &record["stateAfter"],
                record["requester"]["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("add", &json!(5), &json!(5), "client"),
            ("add", &json!(2), &json!(7), "client"),
        ]
    );
    let listed = durable_emu(&["entity", "list", "--state", "--db", db], dir.path());
    let table = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(table.starts_with("ENTITY"), "{table}");
    let row = table
        .lines()
        .find(|line| line.starts_with("@counter@a"))
        .unwrap();
    assert!(row.trim_end().ends_with(" 7"), "{row}");
}

#[test]
fn a_failed_operation_is_reported_and_leaves_the_state_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    run_ok(
        &["entity", "signal", "@counter@c", "add", "3", "--db", db],
        dir.path(),
    );
    // `add` takes a number: text is taken as a string, which the Counter refuses.
    let output = durable_emu(
        &["entity", "signal", "@counter@c", "add", "three", "--db", db],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let answer = stdout_json(&output);
    assert_eq!(answer["operation"]["input"], json!("three"));
    assert_eq!(answer["operation"]["outcome"]["outcome"], "failed");
    assert_eq!(answer["entity"]["state"], json!(3));
    assert!(
        stderr(&output).contains("@counter@c add failed"),
        "{}",
        stderr(&output)
    );
}

fn transfer(db: &str, cwd: &Path, faults: Option<&Path>) -> Value {
    let mut args = vec![
        "run",
        "-o",
        "Transfer",
        "--input",
        r#"{"from":"alice","to":"bob","amount":30}"#,
        "--db",
        db,
    ];
    let scenario;
    if let Some(file) = faults {
        scenario = file.to_str().unwrap().to_string();
        args.extend(["--faults", scenario.as_str()]);
    }
    let output = durable_emu(&args, cwd);
    stdout_json(&output)
}

fn balance(db: &str, cwd: &Path, account: &str) -> Value {
    run_ok(&["entity", "get", account, "--db", db], cwd)["state"]["balance"].clone()
}

#[test]
fn a_transfer_moves_money_between_two_accounts_under_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let status = transfer(db, dir.path(), None);
    assert_eq!(status["runtimeStatus"], "Completed", "{status}");
    assert_eq!(status["output"], json!({"from": 70, "to": 130}));
    assert_eq!(balance(db, dir.path(), "@account@alice"), json!(70));
    assert_eq!(balance(db, dir.path(), "@account@bob"), json!(130));
    // The critical section ended: neither account is locked any more.
    let listed = run_ok(
        &[
            "entity",
            "list",
            "--json",
            "--prefix",
            "@account@",
            "--db",
            db,
        ],
        dir.path(),
    );
    let accounts = listed.as_array().unwrap();
    assert_eq!(accounts.len(), 2);
    for account in accounts {
        assert!(account.get("lockedBy").is_none(), "{account}");
    }
}

#[test]
fn a_transfer_failing_halfway_puts_the_money_back_and_the_failed_deposit_is_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let scenario = root().join("assets/scenarios/transfer-fails-halfway.toml");
    let status = transfer(db, dir.path(), Some(&scenario));
    assert_eq!(status["runtimeStatus"], "Failed", "{status}");
    let failure = &status["failureDetails"];
    assert_eq!(failure["errorType"], "TransferFailed");
    assert!(
        failure["errorMessage"]
            .as_str()
            .unwrap()
            .contains("were put back"),
        "{failure}"
    );
    // Both accounts are where they started: Alice's withdrawal was refunded (a new account opens
    // with 100); the fault failed Bob's deposit without running it, so Bob has no state yet.
    assert_eq!(balance(db, dir.path(), "@account@alice"), json!(100));
    let bob = run_ok(&["entity", "get", "@account@bob", "--db", db], dir.path());
    assert_eq!(
        (&bob["state"], &bob["hasState"]),
        (&Value::Null, &json!(false))
    );
    // Alice's log: the withdrawal, then the refund; Bob's: the deposit the fault failed.
    let alice = run_ok(&["entity", "get", "@account@alice", "--db", db], dir.path());
    let operations: Vec<&str> = alice["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["withdraw", "refund"]);
    let deposit = bob["operations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|record| record["operation"] == "deposit")
        .unwrap();
    assert_eq!(deposit["outcome"]["outcome"], "failed");
    assert_eq!(deposit["outcome"]["failure"]["errorType"], "BankOffline");
    assert!(
        deposit["fault"].is_string(),
        "the log names the fault: {deposit}"
    );
    assert_eq!(deposit["requester"]["instanceId"], status["instanceId"]);
}

#[test]
fn entity_commands_name_a_bad_id_a_missing_entity_and_a_bad_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    run_ok(
        &["entity", "signal", "@counter@a", "add", "1", "--db", db],
        dir.path(),
    );
    let bad = durable_emu(&["entity", "get", "counter", "--db", db], dir.path());
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("'counter' is not an entity id"),
        "{}",
        stderr(&bad)
    );
    assert!(stderr(&bad).contains("@name@key"), "{}", stderr(&bad));
    let missing = durable_emu(
        &["entity", "get", "@counter@nobody", "--db", db],
        dir.path(),
    );
    assert_eq!(missing.status.code(), Some(2));
    let text = stderr(&missing);
    assert!(text.contains("no entity '@counter@nobody'"), "{text}");
    assert!(
        text.contains("durable-emu entity signal @counter@nobody"),
        "{text}"
    );
    let bad_signal = durable_emu(
        &["entity", "signal", "@@x", "add", "1", "--db", db],
        dir.path(),
    );
    assert_eq!(bad_signal.status.code(), Some(2));
    assert!(
        stderr(&bad_signal).contains("not an entity id"),
        "{}",
        stderr(&bad_signal)
    );
    let bad_time = durable_emu(
        &[
            "entity",
            "signal",
            "@counter@a",
            "add",
            "1",
            "--at",
            "tomorrow",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(bad_time.status.code(), Some(2));
    assert!(
        stderr(&bad_time).contains("--at tomorrow is not a time"),
        "{}",
        stderr(&bad_time)
    );
    // A prefix nothing matches lists nothing and says why.
    let none = durable_emu(
        &["entity", "list", "--prefix", "@account@", "--db", db],
        dir.path(),
    );
    assert_eq!(none.status.code(), Some(0), "{}", stderr(&none));
    assert!(
        stderr(&none).contains("no entities starting with '@account@'"),
        "{}",
        stderr(&none)
    );
}

#[test]
fn a_delayed_signal_waits_in_the_database_until_its_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let db = db.to_str().unwrap();
    let output = durable_emu(
        &[
            "entity",
            "signal",
            "@counter@later",
            "add",
            "4",
            "--after",
            "1h",
            "--db",
            db,
        ],
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("waits in"), "{}", stderr(&output));
    // Not run yet: the entity exists with the signal in its queue and no state.
    let entity = run_ok(&["entity", "get", "@counter@later", "--db", db], dir.path());
    assert_eq!(entity["backlog"], json!(1), "{entity}");
    assert_eq!(entity["state"], Value::Null);
    assert_eq!(entity["operations"], json!([]));
}
