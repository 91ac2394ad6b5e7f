"""Rewind: an orchestration fails on its second activity; after the cause is fixed, rewinding it
runs the failed activity again, keeps the first activity's recorded result (not run again), and
the instance completes under the same id."""

import threading

import _common as c

S = c.dt_client.OrchestrationStatus
calls = {"reserve": 0, "charge": 0}
broken = threading.Event()
broken.set()
lock = threading.Lock()


class PaymentGatewayDown(Exception):
    pass


def reserve(ctx, item: str) -> str:
    with lock:
        calls["reserve"] += 1
    return f"reserved {item}"


def charge(ctx, amount: int) -> str:
    with lock:
        calls["charge"] += 1
    if broken.is_set():
        raise PaymentGatewayDown("gateway 503")
    return f"charged {amount}"


def order_orchestrator(ctx, order: dict):
    reserved = yield ctx.call_activity(reserve, input=order["item"])
    charged = yield ctx.call_activity(charge, input=order["amount"])
    return [reserved, charged]


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [order_orchestrator], [reserve, charge]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(
            order_orchestrator, input={"item": "lamp", "amount": 30}, instance_id="py-rewind")
        state = c.wait_done(client, instance_id)
        c.check_eq(state.runtime_status, S.FAILED, "the status before the rewind")
        c.check("gateway 503" in state.failure_details.message,
                f"the failure should carry the activity's message; got {c.describe(state)}")

        broken.clear()
        client.rewind_orchestration(instance_id, reason="gateway is back")
        c.check_eq(c.completed_output(client, instance_id), ["reserved lamp", "charged 30"],
                   "the output after the rewind")
        c.check_eq(calls, {"reserve": 1, "charge": 2},
                   "activity runs (the successful one must not run again)")


if __name__ == "__main__":
    c.run("rewind", scenario)
