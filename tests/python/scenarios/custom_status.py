"""Custom status: the orchestration publishes its progress as a custom status (any JSON value),
the client reads each stage while it waits, and the last one stays after completion."""

import _common as c


def staged_orchestrator(ctx, _):
    ctx.set_custom_status({"stage": 1, "note": "waiting for approval"})
    yield ctx.wait_for_external_event("approve")
    ctx.set_custom_status({"stage": 2, "note": "waiting for shipping"})
    yield ctx.wait_for_external_event("ship")
    ctx.set_custom_status({"stage": 3, "note": "done"})
    return "shipped"


def status_is(client, instance_id, expected):
    state = client.get_orchestration_state(instance_id)
    return state is not None and state.get_custom_status() == expected


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [staged_orchestrator]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(staged_orchestrator, instance_id="py-status")
        stage1 = {"stage": 1, "note": "waiting for approval"}
        c.wait_until(f"custom status {stage1}", lambda: status_is(client, instance_id, stage1))
        client.raise_orchestration_event(instance_id, "approve")
        stage2 = {"stage": 2, "note": "waiting for shipping"}
        c.wait_until(f"custom status {stage2}", lambda: status_is(client, instance_id, stage2))
        client.raise_orchestration_event(instance_id, "ship")
        c.check_eq(c.completed_output(client, instance_id), "shipped", "the output")
        c.check_eq(client.get_orchestration_state(instance_id).get_custom_status(),
                   {"stage": 3, "note": "done"}, "the custom status after completion")


if __name__ == "__main__":
    c.run("custom_status", scenario)
