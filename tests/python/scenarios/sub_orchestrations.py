"""Sub-orchestrations: a parent runs three children in parallel (given ids) and a fourth that
fails; the children's outputs come back in order, and the failing child's error type and message
reach the parent (which catches it)."""

import _common as c


def double(ctx, n: int) -> int:
    return n * 2


class InventoryError(Exception):
    pass


def child_orchestrator(ctx, n: int):
    doubled = yield ctx.call_activity(double, input=n)
    return {"child": ctx.instance_id, "parent": ctx.parent_instance_id, "value": doubled}


def failing_child(ctx, _):
    raise InventoryError("out of widgets in bin 7")
    yield  # a generator like every orchestrator  # noqa


def parent_orchestrator(ctx, _):
    children = [ctx.call_sub_orchestrator(child_orchestrator, input=n,
                                          instance_id=f"{ctx.instance_id}-child-{n}")
                for n in (1, 2, 3)]
    outputs = yield c.task.when_all(children)
    try:
        yield ctx.call_sub_orchestrator(failing_child, instance_id=f"{ctx.instance_id}-bad")
        caught = None
    except c.task.TaskFailedError as failure:
        caught = {"type": failure.details.error_type, "message": failure.details.message}
    return {"outputs": outputs, "caught": caught}


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [parent_orchestrator, child_orchestrator, failing_child],
                          [double]):
        client = c.new_client(b.address)
        parent = client.schedule_new_orchestration(parent_orchestrator, instance_id="py-parent")
        output = c.completed_output(client, parent)
        # The SDK's in-memory backend leaves ExecutionStarted.parentInstance empty; durable-emu
        # must fill it (ctx.parent_instance_id).
        expected_parent = None if b.in_memory else "py-parent"
        c.check_eq(output["outputs"],
                   [{"child": f"py-parent-child-{n}", "parent": expected_parent, "value": n * 2}
                    for n in (1, 2, 3)], "the children's outputs, in the order they were called")
        caught = output["caught"]
        c.check(caught is not None, "the failing child's failure did not reach the parent")
        # The SDK names an error by its qualified type ("__main__.InventoryError"). The in-memory
        # backend passes a child's failure on as a plain Exception; durable-emu keeps the type.
        expected_type = "builtins.Exception" if b.in_memory else "__main__.InventoryError"
        c.check_eq(caught["type"], expected_type, "the failing child's error type at the parent")
        c.check("out of widgets in bin 7" in caught["message"],
                f"the failing child's message should reach the parent; got {caught['message']!r}")
        for n in (1, 2, 3):
            child = client.get_orchestration_state(f"py-parent-child-{n}")
            c.check(child is not None and child.runtime_status == c.dt_client.OrchestrationStatus.COMPLETED,
                    f"child py-parent-child-{n} should be a completed instance; it is {c.describe(child)}")
        bad = client.get_orchestration_state("py-parent-bad")
        c.check(bad is not None and bad.runtime_status == c.dt_client.OrchestrationStatus.FAILED,
                f"child py-parent-bad should be a failed instance; it is {c.describe(bad)}")
        c.check_eq(bad.failure_details.error_type, "__main__.InventoryError",
                   "the failed child's own error type")


if __name__ == "__main__":
    c.run("sub_orchestrations", scenario)
