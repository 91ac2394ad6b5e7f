"""Fault rules on Python activities. durable-emu is started with
    --fault 'activity=charge_card,attempts=1-2,error=CardDeclined:insufficient funds'
    --fault 'activity=refund_card,error=RefundFailed:gateway down'
so the host answers the first two attempts of charge_card and every refund_card with the given
error without dispatching them to the worker: the retried charge succeeds on attempt 3 with one
real run, and the refund's failure reaches the orchestration with the rule's type and message
while the refund activity never runs.

The in-memory backend has no fault rules: with --in-memory the activities raise the same errors
themselves, which checks the orchestration's side of the scenario."""

import threading
from collections import Counter
from datetime import timedelta

import _common as c

IN_MEMORY = False
ran: Counter[str] = Counter()
lock = threading.Lock()


class CardDeclined(Exception):
    pass


class RefundFailed(Exception):
    pass


def charge_card(ctx, amount: int) -> str:
    with lock:
        ran["charge_card"] += 1
        n = ran["charge_card"]
    if IN_MEMORY and n <= 2:
        raise CardDeclined("insufficient funds")
    return f"charged {amount}"


def refund_card(ctx, amount: int) -> str:
    with lock:
        ran["refund_card"] += 1
    if IN_MEMORY:
        raise RefundFailed("gateway down")
    return f"refunded {amount}"


def payment_orchestrator(ctx, amount: int):
    policy = c.task.RetryPolicy(first_retry_interval=timedelta(seconds=1), max_number_of_attempts=3)
    charged = yield ctx.call_activity(charge_card, input=amount, retry_policy=policy)
    try:
        refund = yield ctx.call_activity(refund_card, input=amount)
    except c.task.TaskFailedError as failure:
        refund = {"type": failure.details.error_type, "message": failure.details.message}
    return {"charged": charged, "refund": refund}


def scenario(b: c.Backend) -> None:
    global IN_MEMORY
    IN_MEMORY = b.in_memory
    with c.running_worker(b.address, [payment_orchestrator], [charge_card, refund_card]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(payment_orchestrator, input=25,
                                                        instance_id="py-faults")
        output = c.completed_output(client, instance_id)
        c.check_eq(output["charged"], "charged 25", "the charge after two injected failures")
        refund = output["refund"]
        c.check(isinstance(refund, dict), f"the refund should have failed; it returned {refund!r}")
        c.check_eq(refund["type"], "__main__.RefundFailed" if b.in_memory else "RefundFailed",
                   "the refund failure's type")
        c.check("gateway down" in refund["message"],
                f"the refund failure's message should be the rule's; got {refund['message']!r}")
        expected_runs = {"charge_card": 3, "refund_card": 1} if b.in_memory else {"charge_card": 1}
        c.check_eq(dict(ran), expected_runs,
                   "activity bodies the worker ran (an injected failure is answered by the host "
                   "without dispatching)")


if __name__ == "__main__":
    c.run("faults", scenario)
