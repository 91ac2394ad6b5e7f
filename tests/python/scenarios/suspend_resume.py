"""Suspend and resume: a suspended instance reports SUSPENDED and holds an event raised
meanwhile; once resumed it takes the event and completes with its payload."""

import _common as c

S = c.dt_client.OrchestrationStatus


def gate_orchestrator(ctx, _):
    payload = yield ctx.wait_for_external_event("go")
    return {"got": payload}


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [gate_orchestrator]):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(gate_orchestrator, instance_id="py-gate")
        c.wait_status(client, instance_id, S.RUNNING)
        client.suspend_orchestration(instance_id, reason="maintenance")
        c.wait_status(client, instance_id, S.SUSPENDED)
        client.raise_orchestration_event(instance_id, "go", data="after resume")
        state = client.get_orchestration_state(instance_id)
        c.check_eq(state.runtime_status, S.SUSPENDED,
                   "the status right after an event was raised to a suspended instance")
        client.resume_orchestration(instance_id, reason="done")
        c.check_eq(c.completed_output(client, instance_id), {"got": "after resume"},
                   "the output once resumed")


if __name__ == "__main__":
    c.run("suspend_resume", scenario)
