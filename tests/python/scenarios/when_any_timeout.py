"""when_any with a timeout: an approval races a timer. With no approval the timer wins (a day
long against durable-emu's auto-skipping virtual clock; 2 s against the in-memory backend); with
the approval already raised, the event wins and the timer is left behind."""

from datetime import timedelta

import _common as c


def approval_orchestrator(ctx, timeout_seconds: float):
    approval = ctx.wait_for_external_event("approval")
    timeout = ctx.create_timer(timedelta(seconds=timeout_seconds))
    winner = yield c.task.when_any([approval, timeout])
    if winner == approval:
        return {"outcome": "approved", "by": approval.get_result()}
    return {"outcome": "timed out"}


def scenario(b: c.Backend) -> None:
    seconds = 2.0 if b.in_memory else 24 * 3600.0
    client = c.new_client(b.address)
    # Raised before any worker runs it, so the event is there before the timer can fire.
    approved = client.schedule_new_orchestration(approval_orchestrator, input=seconds,
                                                 instance_id="py-approved")
    client.raise_orchestration_event(approved, "approval", data="alice")
    with c.running_worker(b.address, [approval_orchestrator]):
        timed_out = client.schedule_new_orchestration(approval_orchestrator, input=seconds,
                                                      instance_id="py-timed-out")
        c.check_eq(c.completed_output(client, timed_out), {"outcome": "timed out"},
                   "the instance nobody approved")
        c.check_eq(c.completed_output(client, approved), {"outcome": "approved", "by": "alice"},
                   "the instance approved before it waited")


if __name__ == "__main__":
    c.run("when_any_timeout", scenario)
