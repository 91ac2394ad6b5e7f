"""Retries: an activity that fails twice succeeds on the third attempt under a retry policy (the
retry delays are durable timers: against durable-emu's virtual clock a 1-hour delay passes at
once); a sub-orchestration call under a retry policy whose attempts all fail gives up after
max_number_of_attempts with the last attempt's error. (The SDK retries a sub-orchestration under
the same instance id, `<parent>:<task id>`, so the backend must let a failed child be created
again.)"""

import threading
from collections import Counter
from datetime import timedelta

import _common as c

attempts: Counter[str] = Counter()
lock = threading.Lock()


class Flaky(Exception):
    pass


def flaky_fetch(ctx, key: str) -> str:
    with lock:
        attempts[key] += 1
        n = attempts[key]
    if n < 3:
        raise Flaky(f"{key}: attempt {n} failed")
    return f"{key} on attempt {n}"


def count_child_attempt(ctx, _) -> int:
    with lock:
        attempts["child"] += 1
        return attempts["child"]


def hopeless_child(ctx, _):
    n = yield ctx.call_activity(count_child_attempt)
    raise Flaky(f"child attempt {n} failed")


def retry_orchestrator(ctx, delay_seconds: float):
    policy = c.task.RetryPolicy(first_retry_interval=timedelta(seconds=delay_seconds),
                                max_number_of_attempts=5, backoff_coefficient=2.0)
    fetched = yield ctx.call_activity(flaky_fetch, input="prices", retry_policy=policy)
    child_policy = c.task.RetryPolicy(first_retry_interval=timedelta(seconds=delay_seconds),
                                      max_number_of_attempts=3)
    try:
        yield ctx.call_sub_orchestrator(hopeless_child, retry_policy=child_policy)
        child = "succeeded"
    except c.task.TaskFailedError as failure:
        child = failure.details.message
    return {"fetched": fetched, "child": child}


def scenario(b: c.Backend) -> None:
    delay = 0.5 if b.in_memory else 3600.0
    with c.running_worker(b.address, [retry_orchestrator, hopeless_child],
                          [flaky_fetch, count_child_attempt]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(retry_orchestrator, input=delay,
                                                        instance_id="py-retries")
        output = c.completed_output(client, instance_id)
        c.check_eq(output["fetched"], "prices on attempt 3", "the retried activity's result")
        c.check("child attempt 3 failed" in output["child"],
                f"the third (last) child attempt's failure should reach the parent; got "
                f"{output['child']!r}")
        c.check_eq(dict(attempts), {"prices": 3, "child": 3},
                   "attempts of the flaky activity and of the failing child")


if __name__ == "__main__":
    c.run("retries", scenario)
