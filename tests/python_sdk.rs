//! The official Durable Task Python SDK (PyPI `durabletask==1.12.0`, unmodified, pinned in
//! `tests/python/requirements.txt`) against the real binary, end to end (issue 13): each test
//! starts `durable-emu serve --grpc 127.0.0.1:<free port>` on a fresh database and runs one
//! scenario script of `tests/python/scenarios/` (its worker and client) against it; the script
//! checks what the SDK sees and exits non-zero with what failed. The UI test runs a scenario
//! against the UI in tmux and reads the instance off the screen.
//!
//! The venv is made once under `target/python-venv` (the first test to need it installs the
//! requirements; the rest wait on a lock file). Without python3 the tests are skipped with a
//! message, except under CI (`CI` set), where that is a failure: `.ci/run` installs python3,
//! python3-venv and tmux.
//!
//! Every script also runs against the SDK's own in-memory backend (`--in-memory`), which is how
//! the scripts themselves were checked; `every_scenario_script_passes_against_the_sdks_own_in_memory_backend`
//! keeps them honest.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_tests::binary::{ScratchDir, durable_emu_binary};
use durable_emu_tests::python::{Sidecar, free_port, run_scenario, scenarios_dir, venv_python};
use serde_json::Value;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Runs `script` against a fresh `durable-emu serve --grpc` started with `extra` arguments;
/// returns the sidecar (still running) for checks on its events. `None`: skipped (no python3).
fn scenario_against_durable_emu(script: &str, extra: &[&str]) -> Option<Sidecar> {
    let python = venv_python()?;
    let sidecar = Sidecar::start(script.trim_end_matches(".py"), extra);
    run_scenario(&python, script, &["--address", &sidecar.address()], || {
        sidecar.log_text()
    });
    Some(sidecar)
}

#[test]
fn a_python_chain_of_activities_completes_with_each_result_in_order_and_its_history() {
    scenario_against_durable_emu("chaining.py", &[]);
}

#[test]
fn a_python_fan_out_of_100_activities_joins_every_result() {
    scenario_against_durable_emu("fan_out.py", &[]);
}

#[test]
fn python_sub_orchestrations_return_outputs_and_a_childs_failure_reaches_its_parent_typed() {
    scenario_against_durable_emu("sub_orchestrations.py", &[]);
}

#[test]
fn a_python_three_day_timer_fires_at_once_under_the_auto_skipping_virtual_clock() {
    scenario_against_durable_emu("timers.py", &["--clock", "virtual"]);
}

#[test]
fn python_events_raised_before_and_after_the_wait_are_both_delivered() {
    scenario_against_durable_emu("events.py", &[]);
}

#[test]
fn python_when_any_takes_the_timeout_without_an_event_and_the_event_when_raised() {
    scenario_against_durable_emu("when_any_timeout.py", &[]);
}

#[test]
fn a_suspended_python_instance_holds_its_event_until_resumed() {
    scenario_against_durable_emu("suspend_resume.py", &[]);
}

#[test]
fn terminating_a_python_parent_recursively_terminates_its_running_child() {
    scenario_against_durable_emu("terminate_recursive.py", &[]);
}

#[test]
fn a_python_instance_restarts_under_its_own_id_and_under_a_new_one() {
    scenario_against_durable_emu("restart.py", &[]);
}

#[test]
fn rewinding_a_failed_python_instance_reruns_only_the_failed_activity() {
    scenario_against_durable_emu("rewind.py", &[]);
}

#[test]
fn python_continue_as_new_carries_unprocessed_events_and_updates_the_input() {
    scenario_against_durable_emu("continue_as_new.py", &[]);
}

#[test]
fn python_retry_policies_retry_activities_and_sub_orchestrations_on_durable_timers() {
    scenario_against_durable_emu("retries.py", &[]);
}

#[test]
fn a_python_retry_timeout_stops_retries_before_the_attempt_limit() {
    // durabletask 1.12.0 measures the retry timeout against the wall clock (see the script).
    scenario_against_durable_emu("retry_timeout.py", &["--clock", "real"]);
}

#[test]
fn a_python_custom_status_is_readable_at_every_stage_and_after_completion() {
    scenario_against_durable_emu("custom_status.py", &[]);
}

#[test]
fn python_purges_remove_one_instance_a_tree_or_a_filter_and_never_a_running_one() {
    scenario_against_durable_emu("purge.py", &[]);
}

#[test]
fn python_queries_page_through_every_match_exactly_once() {
    scenario_against_durable_emu("query_paging.py", &[]);
}

#[test]
fn a_python_send_event_reaches_its_target_and_one_to_a_missing_instance_is_dropped() {
    scenario_against_durable_emu("send_event.py", &[]);
}

#[test]
fn a_killed_python_workers_activities_are_redelivered_to_another_worker() {
    scenario_against_durable_emu("worker_killed.py", &[]);
}

#[test]
fn fault_rules_fail_python_activities_from_the_host_without_dispatching_them() {
    let Some(sidecar) = scenario_against_durable_emu(
        "faults.py",
        &[
            "--fault",
            "activity=charge_card,attempts=1-2,error=CardDeclined:insufficient funds",
            "--fault",
            "activity=refund_card,error=RefundFailed:gateway down",
        ],
    ) else {
        return;
    };
    let is_fault =
        |event: &Value| event["event"] == "faultFired" && event["instanceId"] == "py-faults";
    let fired = sidecar.events_matching(3, Duration::from_secs(30), is_fault);
    assert_eq!(
        fired.len(),
        3,
        "two charge_card attempts and one refund_card should fire a rule each; faultFired events: {fired:?}\n{}",
        sidecar.log_text()
    );
}

#[test]
fn python_function_entities_take_client_and_orchestration_signals_and_calls_in_arrival_order() {
    scenario_against_durable_emu("entities_function.py", &[]);
}

#[test]
fn python_class_entities_keep_state_between_batches_and_roll_back_a_failed_operation() {
    scenario_against_durable_emu("entities_class.py", &[]);
}

#[test]
fn python_entity_calls_return_results_and_a_failure_reaches_the_calling_orchestration() {
    scenario_against_durable_emu("entities_calls.py", &[]);
}

#[test]
fn python_entity_calls_run_the_same_on_a_worker_that_asks_for_v1_entity_work_items() {
    let Some(python) = venv_python() else {
        return;
    };
    let sidecar = Sidecar::start("entities_calls_v1", &[]);
    run_scenario(
        &python,
        "entities_calls.py",
        &["--address", &sidecar.address(), "--entity-requests", "v1"],
        || sidecar.log_text(),
    );
}

#[test]
fn python_delayed_entity_signals_wait_for_the_virtual_clock_which_skips_to_them() {
    scenario_against_durable_emu("entities_signals.py", &["--clock", "virtual"]);
}

#[test]
fn python_critical_sections_lock_two_accounts_first_come_first_served_and_release_on_failure() {
    scenario_against_durable_emu("entities_locks.py", &[]);
}

#[test]
fn the_python_clients_entity_api_gets_queries_in_pages_and_cleans_empty_entities() {
    scenario_against_durable_emu("entities_client.py", &[]);
}

#[test]
fn every_scenario_script_passes_against_the_sdks_own_in_memory_backend() {
    let Some(python) = venv_python() else {
        return;
    };
    let mut scripts: Vec<String> = std::fs::read_dir(scenarios_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".py") && !name.starts_with('_'))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 24, "scenario scripts found: {scripts:?}");
    for script in &scripts {
        run_scenario(&python, script, &["--in-memory"], String::new);
    }
}

/// Our own `.proto` (what durable-emu serves) against the descriptor the official SDK's stubs
/// were generated from: every message, field number and type, enum value and rpc we define is the
/// SDK's (tests/python/check_proto.py).
#[test]
fn our_wire_contract_matches_the_official_sdks_field_for_field() {
    let Some(python) = venv_python() else {
        return;
    };
    let dir = ScratchDir::new("check-proto");
    let ours = dir.file("orchestrator_service.bin");
    std::fs::write(&ours, durable_emu_grpc::FILE_DESCRIPTOR_SET).unwrap();
    run_scenario(&python, "../check_proto.py", &[&ours], String::new);
}

/// The UI's tmux driver, shared with the CLI's UI tests (it starts `super::binary()`).
#[allow(dead_code)]
#[path = "../emulator/cli/tests/binary_support/tmux.rs"]
mod tmux;

/// The binary the tmux driver starts.
#[allow(dead_code)]
fn binary() -> &'static str {
    let path = durable_emu_binary();
    Box::leak(path.to_string_lossy().into_owned().into_boxed_str())
}

#[test]
fn the_ui_shows_an_instance_run_by_a_python_worker_with_its_history() {
    use tmux::{Tmux, line_with};
    if !tmux::available() {
        return;
    }
    let Some(python) = venv_python() else {
        return;
    };
    let dir = ScratchDir::new("python-ui");
    let addr = format!("127.0.0.1:{}", free_port());
    // If the UI exits (a flag it does not know...), its message stays on the screen.
    let command = format!(
        "'{}' --db state.db --grpc {addr}; echo \"durable-emu exited with $?\"; sleep 3600",
        durable_emu_binary().display()
    );
    let ui = Tmux::start("python-ui", 140, 35, dir.path(), &command);
    let deadline = Instant::now() + tmux::PATIENCE;
    while TcpStream::connect(&addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "the UI never listened on {addr}; the screen:\n{}",
            ui.screen()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    run_scenario(&python, "chaining.py", &["--address", &addr], || {
        format!("--- the UI's screen\n{}", ui.screen())
    });
    ui.wait_for(
        "the Python instance completed in the instances view",
        |screen| line_with(screen, &["chain_orchestrator", "Completed"]).is_some(),
    );
    ui.key("Enter");
    ui.wait_for("its history with the activities' results", |screen| {
        screen.contains("ExecutionCompleted") && screen.contains("Hello, Tokyo!")
    });
    ui.key("q");
}
