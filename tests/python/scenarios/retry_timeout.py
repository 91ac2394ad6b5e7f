"""Retries with a retry timeout: the policy's retry_timeout, not max_number_of_attempts, decides
when to give up. An activity that always fails under a policy of up to 30 attempts but a retry
timeout of 0 s is tried once; one that fails twice under a 1-hour retry timeout is retried
until it succeeds on its third attempt.

durabletask 1.12.0 decides "is the retry timeout over?" by comparing the wall clock
(datetime.now) with the orchestration's start time plus the timeout (task.py,
RetryableTask.compute_next_delay), also when it replays history. So: run durable-emu with
`--clock real` (under a virtual clock that runs ahead of the wall clock the timeout would never
be reached), and pick timeouts that are either over at the first failure or not over during the
test: a timeout that runs out between two episodes gives a different decision on replay, and the
SDK then answers the episode with no actions at all (seen against its own in-memory backend too).
"""

import threading
from collections import Counter
from datetime import timedelta

import _common as c

MAX_ATTEMPTS = 30
attempts: Counter[str] = Counter()
lock = threading.Lock()


class StillDown(Exception):
    pass


def sometimes_down(ctx, key: str) -> str:
    with lock:
        attempts[key] += 1
        n = attempts[key]
    if key == "always" or n < 3:
        raise StillDown(f"{key}: attempt {n} still down")
    return f"{key} up on attempt {n}"


def timeout_orchestrator(ctx, _):
    expired = c.task.RetryPolicy(first_retry_interval=timedelta(seconds=1),
                                 max_number_of_attempts=MAX_ATTEMPTS, retry_timeout=timedelta(0))
    try:
        yield ctx.call_activity(sometimes_down, input="always", retry_policy=expired)
        first = "succeeded"
    except c.task.TaskFailedError as failure:
        first = failure.details.message
    patient = c.task.RetryPolicy(first_retry_interval=timedelta(seconds=1),
                                 max_number_of_attempts=MAX_ATTEMPTS,
                                 retry_timeout=timedelta(hours=1))
    second = yield ctx.call_activity(sometimes_down, input="twice", retry_policy=patient)
    return {"expired": first, "patient": second}


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [timeout_orchestrator], [sometimes_down]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(timeout_orchestrator,
                                                        instance_id="py-retry-timeout")
        output = c.completed_output(client, instance_id)
        c.check("always: attempt 1 still down" in output["expired"],
                f"the expired retry timeout should give up after the first attempt with its "
                f"error; got {output['expired']!r}")
        c.check_eq(output["patient"], "twice up on attempt 3",
                   "the result under a retry timeout that has not run out")
        c.check_eq(dict(attempts), {"always": 1, "twice": 3}, "attempts per activity")


if __name__ == "__main__":
    c.run("retry_timeout", scenario)
