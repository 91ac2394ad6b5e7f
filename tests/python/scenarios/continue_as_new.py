"""Continue-as-new with carried events: three 'inc' events are raised before the first execution
runs; each execution takes one and continues as new with save_events=True, so the two left over
are carried into the next executions. The instance's input becomes the last execution's."""

import _common as c


def counter_orchestrator(ctx, n: int):
    yield ctx.wait_for_external_event("inc")
    if n + 1 == 3:
        return {"count": n + 1, "instance": ctx.instance_id}
    ctx.continue_as_new(n + 1, save_events=True)


def scenario(b: c.Backend) -> None:
    client = c.new_client(b.address)
    instance_id = client.schedule_new_orchestration(counter_orchestrator, input=0,
                                                    instance_id="py-counter")
    for i in range(3):
        client.raise_orchestration_event(instance_id, "inc", data=i)
    with c.running_worker(b.address, [counter_orchestrator]):
        c.check_eq(c.completed_output(client, instance_id), {"count": 3, "instance": "py-counter"},
                   "the output after three executions (events dropped by continue-as-new would "
                   "leave it waiting)")
        state = client.get_orchestration_state(instance_id)
        c.check_eq(state.get_input(), 2, "the instance's input (the last execution's)")


if __name__ == "__main__":
    c.run("continue_as_new", scenario)
