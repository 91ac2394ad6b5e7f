"""External events raised before and after the orchestration waits for them: one raised before
any worker runs the instance is kept and delivered when the orchestration asks for it; one raised
while it waits (its custom status says so) wakes it."""

import _common as c


def record(ctx, what: str) -> str:
    return what


def events_orchestrator(ctx, _):
    early = yield ctx.wait_for_external_event("early")
    yield ctx.call_activity(record, input="between")
    ctx.set_custom_status("waiting for late")
    late = yield ctx.wait_for_external_event("late")
    return {"early": early, "late": late}


def scenario(b: c.Backend) -> None:
    client = c.new_client(b.address)
    # No worker yet: the event arrives before the orchestration has run at all.
    instance_id = client.schedule_new_orchestration(events_orchestrator, instance_id="py-events")
    client.raise_orchestration_event(instance_id, "early", data={"n": 1})
    with c.running_worker(b.address, [events_orchestrator], [record]):
        c.wait_until("the orchestration to wait for 'late' (custom status)",
                     lambda: (s := client.get_orchestration_state(instance_id)) is not None
                     and s.get_custom_status() == "waiting for late")
        client.raise_orchestration_event(instance_id, "late", data="ship it")
        output = c.completed_output(client, instance_id)
        c.check_eq(output, {"early": {"n": 1}, "late": "ship it"},
                   "the payloads of the events raised before and after the wait")


if __name__ == "__main__":
    c.run("events", scenario)
