"""Function-based entities: a `tally` entity function (the SDK's EntityContext: operation,
input, get/set state) driven by client signals and by an orchestration's signal and calls; the
entity signals another entity and starts an orchestration from an operation. Operations of one
entity run one at a time in arrival order, so ten signals of +1 sent at once add up to 10."""

from durabletask import entities

import _common as c


def tally(ctx: entities.EntityContext, input):
    if ctx.operation == "set":
        ctx.set_state(input)
    elif ctx.operation == "add":
        value = ctx.get_state(int, 0) + (1 if input is None else input)
        ctx.set_state(value)
        return value
    elif ctx.operation == "get":
        return ctx.get_state(int, 0)
    elif ctx.operation == "report":
        # Actions of an operation: a signal to another entity and an orchestration start.
        value = ctx.get_state(int, 0)
        ctx.signal_entity(entities.EntityInstanceId("audit", "log"), "append",
                          f"{ctx.entity_id.key}={value}")
        ctx.schedule_new_orchestration("reported", input=value, instance_id=input)
        return value
    else:
        raise ValueError(f"unknown operation '{ctx.operation}'")


def audit(ctx: entities.EntityContext, input):
    if ctx.operation == "append":
        ctx.set_state(ctx.get_state(list, []) + [input])
    else:
        raise ValueError(f"unknown operation '{ctx.operation}'")


def tally_orchestrator(ctx, key: str):
    entity_id = entities.EntityInstanceId("tally", key)
    ctx.signal_entity(entity_id, "set", 0)
    after_add = yield ctx.call_entity(entity_id, "add", 1)
    value = yield ctx.call_entity(entity_id, "get")
    return {"after_add": after_add, "value": value}


def reported(ctx, value: int):
    return f"reported {value}"


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, [tally_orchestrator, reported], entities=[tally, audit],
                          metadata=b.worker_metadata):
        client = c.new_client(b.address)

        # Client signals: ten +1 at once, one at a time at the entity.
        many = entities.EntityInstanceId("tally", "many")
        for _ in range(10):
            client.signal_entity(many, "add", 1)
        c.wait_entity_state(client, many, 10)

        # An orchestration's signal and calls; the name is case-insensitive.
        instance_id = client.schedule_new_orchestration(tally_orchestrator, input="orch",
                                                        instance_id="py-entity-fn")
        output = c.completed_output(client, instance_id)
        c.check_eq(output, {"after_add": 1, "value": 1}, "the orchestration's view of the tally")
        c.check_eq(c.entity_state(client, entities.EntityInstanceId("Tally", "orch")), 1,
                   "the tally's state read under a differently-cased name")

        # An operation's actions: a signal to the audit entity and an orchestration start.
        client.signal_entity(many, "report", "py-entity-reported")
        c.wait_entity_state(client, entities.EntityInstanceId("audit", "log"), ["many=10"])
        c.check_eq(c.completed_output(client, "py-entity-reported"), "reported 10",
                   "the orchestration the entity started")


if __name__ == "__main__":
    c.run("entities_function", scenario)
