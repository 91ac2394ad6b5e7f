"""Fan-out of 100: one orchestration schedules 100 activities at once and joins them; every
result arrives, in order, and every input was run by the worker (at least once)."""

import threading

import _common as c

N = 100
ran: set[int] = set()
ran_lock = threading.Lock()


def square(ctx, n: int) -> int:
    with ran_lock:
        ran.add(n)
    return n * n


def fan_out_orchestrator(ctx, n: int):
    results = yield c.task.when_all([ctx.call_activity(square, input=i) for i in range(n)])
    return {"count": len(results), "sum": sum(results), "first": results[:3], "last": results[-1]}


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [fan_out_orchestrator], [square]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(fan_out_orchestrator, input=N)
        output = c.completed_output(client, instance_id)
        c.check_eq(output, {"count": N, "sum": sum(i * i for i in range(N)), "first": [0, 1, 4],
                            "last": (N - 1) ** 2}, "the fan-out's joined result")
        c.check_eq(sorted(ran), list(range(N)), "the inputs the worker's activity ran")


if __name__ == "__main__":
    c.run("fan_out", scenario)
