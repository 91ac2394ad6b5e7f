//! The official Durable Functions Python client, `azure-functions-durable` (pinned in
//! `tests/python/requirements.txt`, in the same venv as the Durable Task SDK), against the real
//! binary's HTTP management API (issue 15): `tests/python/http/azure_functions_client.py` builds a
//! `DurableOrchestrationClient` from a binding whose `rpcBaseUrl` points at `durable-emu serve
//! --http` and checks every client call the issue names. Skipped without python3, as the SDK
//! tests are.
// Test helpers panic on setup failures, which is what a test should do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use durable_emu_tests::python::{Sidecar, free_port, venv_python};
use durable_emu_tests::workspace_root;
use std::process::Command;

#[test]
fn the_official_python_client_drives_every_management_call_over_http() {
    let Some(python) = venv_python() else {
        return;
    };
    let http = format!("127.0.0.1:{}", free_port());
    let served = Sidecar::start(
        "azure-functions-client",
        &[
            "--http",
            &http,
            "--clock",
            "real",
            "--fault",
            "activity=SayHello,instance=broken-py,error=Boom:first call fails",
        ],
    );
    let script = workspace_root().join("tests/python/http/azure_functions_client.py");
    // The script bounds each of its waits (60 s) and says what it waited for.
    let ran = Command::new(python)
        .arg("-u")
        .arg(&script)
        .arg(&http)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(
        ran.status.success() && stdout.contains("PASS "),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{}\n{}",
        script.display(),
        ran.status,
        String::from_utf8_lossy(&ran.stderr),
        served.log_text()
    );
}
