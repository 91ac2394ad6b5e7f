"""Restart: a completed instance restarted under the same id runs again from its original input;
restarted with a new id, a new instance runs, and the original keeps its id and output."""

import threading

import _common as c

S = c.dt_client.OrchestrationStatus
runs: list[int] = []
runs_lock = threading.Lock()


def triple(ctx, n: int) -> int:
    with runs_lock:
        runs.append(n)
    return n * 3


def restart_orchestrator(ctx, n: int):
    return (yield ctx.call_activity(triple, input=n))


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [restart_orchestrator], [triple]):
        client = c.new_client(b.address)
        first = client.schedule_new_orchestration(restart_orchestrator, input=7,
                                                  instance_id="py-restart")
        c.check_eq(c.completed_output(client, first), 21, "the first run's output")

        same = client.restart_orchestration(first)
        c.check_eq(same, first, "the id a restart under the same id returns")
        c.check_eq(c.completed_output(client, same), 21, "the output after restarting in place")

        other = client.restart_orchestration(first, restart_with_new_instance_id=True)
        c.check(other != first, f"a restart with a new id returned the old id {other!r}")
        c.check_eq(c.completed_output(client, other), 21, "the new instance's output")
        new_state = client.get_orchestration_state(other)
        c.check_eq(new_state.name, "restart_orchestrator", "the new instance's orchestration")
        c.check_eq(new_state.get_input(), 7, "the new instance's input")
        c.check_eq(runs, [7, 7, 7], "the activity runs across the three executions")


if __name__ == "__main__":
    c.run("restart", scenario)
