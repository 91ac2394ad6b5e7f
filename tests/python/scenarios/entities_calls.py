"""Entity calls from orchestrations: a call returns the operation's result; calls to five
entities in parallel (`when_all`) each get their own answer; an operation that raises fails the
call with the entity's message, which the orchestration can catch, and which fails the
orchestration (TaskFailedError) when it does not."""

from durabletask import entities

import _common as c


def calculator(ctx: entities.EntityContext, input):
    if ctx.operation == "square":
        ctx.set_state(input * input)
        return input * input
    if ctx.operation == "divide":
        return ctx.get_state(int, 0) / input
    raise ValueError(f"unknown operation '{ctx.operation}'")


def calls_orchestrator(ctx, _):
    squares = yield c.task.when_all([
        ctx.call_entity(entities.EntityInstanceId("calculator", f"k{i}"), "square", i)
        for i in range(5)
    ])
    try:
        yield ctx.call_entity(entities.EntityInstanceId("calculator", "k3"), "divide", 0)
        caught = None
    except c.task.TaskFailedError as error:
        caught = {"type": error.details.error_type, "message": error.details.message}
    half = yield ctx.call_entity(entities.EntityInstanceId("calculator", "k4"), "divide", 2)
    return {"squares": squares, "caught": caught, "half": half}


def unhandled_orchestrator(ctx, _):
    yield ctx.call_entity(entities.EntityInstanceId("calculator", "k0"), "divide", 0)
    return "not reached"


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [calls_orchestrator, unhandled_orchestrator],
                          entities=[calculator], metadata=b.worker_metadata):
        client = c.new_client(b.address)
        instance_id = client.schedule_new_orchestration(calls_orchestrator,
                                                        instance_id="py-entity-calls")
        output = c.completed_output(client, instance_id)
        c.check_eq(output["squares"], [0, 1, 4, 9, 16], "the parallel calls' results, in order")
        c.check(output["caught"] is not None and "division by zero" in output["caught"]["message"],
                f"the failed call should carry the entity's error, got {output['caught']!r}")
        # The SDK wraps the entity's failure (its message inside) in its own exception type.
        c.check("EntityOperationFailedException" in output["caught"]["type"],
                f"the failed call's error type: {output['caught']['type']!r}")
        c.check_eq(output["half"], 8.0, "a call after the failed one (16 / 2)")

        instance_id = client.schedule_new_orchestration(unhandled_orchestrator,
                                                        instance_id="py-entity-unhandled")
        state = c.wait_done(client, instance_id)
        c.check(state.runtime_status == c.dt_client.OrchestrationStatus.FAILED,
                f"an uncaught entity failure should fail the orchestration; it is {c.describe(state)}")
        c.check(state.failure_details is not None
                and "division by zero" in state.failure_details.message,
                f"the orchestration's failure should carry the entity's message: {c.describe(state)}")


if __name__ == "__main__":
    c.run("entities_calls", scenario)
