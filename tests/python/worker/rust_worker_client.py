"""A Rust orchestration run by `durable-emu worker`, driven by the official Python client: the
client starts `WorkerFanOut` (tests/fixtures/worker-plugin) by name, waits for it, and checks
its output and the history the backend recorded. No Python worker runs: every work item is the
Rust worker's.

Against durable-emu (``--address``) the test harness starts the worker; with ``--in-memory``
this script starts the SDK's own in-memory backend and the worker command given with
``--worker-command`` (a JSON list; ``{address}`` in it becomes the backend's address), so the
same Rust worker is checked against a backend durable-emu did not write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scenarios"))

import _common as c  # noqa: E402
from durabletask import history  # noqa: E402

N = 20


def scenario(b: c.Backend) -> None:
    worker = None
    if b.args.worker_command:
        command = [part.replace("{address}", b.address) for part in json.loads(b.args.worker_command)]
        worker = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=sys.stderr)
    try:
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration("WorkerFanOut", input={"n": N, "ms": 0},
                                                        instance_id="rust-fan-out")
        c.check_eq(instance_id, "rust-fan-out", "the instance id the backend accepted")
        output = c.completed_output(client, instance_id)
        c.check_eq(output, sum(i * i for i in range(N)), "the fan-out's output (sum of squares)")
        state = client.get_orchestration_state(instance_id)
        c.check_eq(state.name, "WorkerFanOut", "the instance's orchestration name")
        events = client.get_orchestration_history(instance_id)
        scheduled = [e for e in events if isinstance(e, history.TaskScheduledEvent)]
        c.check_eq([e.name for e in scheduled], ["WorkerSquare"] * N,
                   "the activities the Rust orchestration scheduled")
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
                raise c.ScenarioFailed("the worker did not stop within 30 s of SIGTERM") from None
            c.check_eq(worker.returncode, 0, "the worker's exit code after SIGTERM")


if __name__ == "__main__":
    p = c.parser("rust_worker_client")
    p.add_argument("--worker-command", default=None,
                   help="start this worker (JSON list; {address} is replaced) for the run")
    c.run("rust_worker_client", scenario, p.parse_args())
