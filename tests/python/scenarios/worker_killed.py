"""A worker killed mid fan-out: worker process A takes the fan-out's activities and hangs in
them; it is killed (SIGKILL) while they are in flight; a second worker (this process) then gets
the same work items redelivered, runs them, and the orchestration completes with every result.

Against the SDK's in-memory backend, which does not redeliver a closed stream's work items, the
instance stays running after the kill: the validation run checks exactly that, which shows the
scenario needs redelivery to pass."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

N = 20
MARKS = Path(os.environ.get("WORKER_KILLED_MARKS", "."))
ROLE = os.environ.get("WORKER_KILLED_ROLE", "finisher")


def slow_item(ctx, n: int) -> int:
    (MARKS / f"{ROLE}-{n}").touch()
    if ROLE == "hanger":
        time.sleep(3600)  # killed long before this returns
    return n * 10


def killed_fan_out(ctx, n: int):
    results = yield c.task.when_all([ctx.call_activity(slow_item, input=i) for i in range(n)])
    return sum(results)


def marks(role: str) -> set[int]:
    return {int(p.name.split("-")[1]) for p in MARKS.glob(f"{role}-*")}


def hanger(address: str) -> None:
    """Worker A: runs until killed."""
    with c.running_worker(address, [killed_fan_out], [slow_item]):
        while True:
            time.sleep(1)


def scenario(b: c.Backend) -> None:
    global MARKS
    MARKS = Path(tempfile.mkdtemp(prefix="worker-killed-"))
    env = dict(os.environ, WORKER_KILLED_MARKS=str(MARKS), WORKER_KILLED_ROLE="hanger")
    a = subprocess.Popen([sys.executable, __file__, "--hanger", "--address", b.address], env=env)
    try:
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(killed_fan_out, input=N,
                                                        instance_id="py-killed")
        c.wait_until("worker A to start some of the fan-out's activities", lambda: marks("hanger"))
        # Let A take what it will; an item A never got is simply delivered to B later.
        time.sleep(0.5)
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        in_flight = marks("hanger")
        print(f"worker A was killed with {len(in_flight)} activities in flight")

        with c.running_worker(b.address, [killed_fan_out], [slow_item]):
            if b.in_memory:
                time.sleep(5)
                state = client.get_orchestration_state(instance_id)
                c.check_eq(state.runtime_status, c.dt_client.OrchestrationStatus.RUNNING,
                           "the instance under the in-memory backend (which does not redeliver)")
                client.terminate_orchestration(instance_id)
                return
            c.check_eq(c.completed_output(client, instance_id), sum(i * 10 for i in range(N)),
                       "the fan-out's sum after the redelivery")
        redelivered = marks("finisher")
        c.check(in_flight <= redelivered,
                f"items in flight at the killed worker that the second worker never ran: "
                f"{sorted(in_flight - redelivered)}")
        c.check_eq(sorted(marks("hanger") | redelivered), list(range(N)),
                   "the items run by either worker")
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()


if __name__ == "__main__":
    if "--hanger" in sys.argv:
        sys.argv.remove("--hanger")
        hanger(c.parser("worker A").parse_args().address)
    else:
        c.run("worker_killed", scenario)
