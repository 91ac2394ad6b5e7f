"""The client's entity API: `signal_entity`, `get_entity` (state, last-modified time, None for an
entity that does not exist), `get_all_entities` with an id prefix, with and without state and
in pages, and `clean_entity_storage`, which removes entities whose state was deleted."""

from durabletask import entities
from durabletask.client import EntityQuery

import _common as c


def tally(ctx: entities.EntityContext, input):
    if ctx.operation == "set":
        ctx.set_state(input)
    elif ctx.operation == "delete":
        ctx.set_state(None)
    else:
        raise ValueError(f"unknown operation '{ctx.operation}'")


def gauge(ctx: entities.EntityContext, input):
    ctx.set_state(input)


def ids(found) -> list[str]:
    return sorted(str(entity.id) for entity in found)


def scenario(b: c.Backend) -> None:
    with c.running_worker(b.address, entities=[tally, gauge], metadata=b.worker_metadata):
        client = c.new_client(b.address)
        counters = [entities.EntityInstanceId("tally", f"c{i}") for i in range(1, 6)]
        for i, entity_id in enumerate(counters, start=1):
            client.signal_entity(entity_id, "set", i * 10)
        client.signal_entity(entities.EntityInstanceId("gauge", "g"), "set", 1)
        for i, entity_id in enumerate(counters, start=1):
            c.wait_entity_state(client, entity_id, i * 10)
        c.wait_entity_state(client, entities.EntityInstanceId("gauge", "g"), 1)

        one = client.get_entity(counters[0])
        c.check(one is not None, "get_entity should find @tally@c1")
        c.check_eq(str(one.id), "@tally@c1", "the entity's id")
        c.check_eq(one.get_state(), "10", "the entity's raw state")
        c.check(one.last_modified is not None, "the entity has a last-modified time")
        c.check(client.get_entity(entities.EntityInstanceId("tally", "nobody")) is None,
                "get_entity of an entity nobody touched should be None")

        # Every counter, two per page; the gauge is not a counter.
        found = client.get_all_entities(EntityQuery(instance_id_starts_with="@tally@",
                                                    include_state=True, page_size=2))
        c.check_eq(ids(found), [str(e) for e in counters], "the counters the query found")
        c.check_eq(sorted(e.get_state() for e in found), ["10", "20", "30", "40", "50"],
                   "the counters' states")
        bare = client.get_all_entities(EntityQuery(instance_id_starts_with="@tally@",
                                                   include_state=False))
        c.check(all(not e.includes_state and e.get_state() is None for e in bare),
                "a query without state should return none")
        everything = client.get_all_entities(EntityQuery())
        c.check("@gauge@g" in ids(everything), f"an unfiltered query lists the gauge: {ids(everything)}")

        # Deleting a counter's state leaves an empty entity that cleaning removes.
        client.signal_entity(counters[4], "delete")
        c.wait_until("@tally@c5's state to be deleted",
                     lambda: c.entity_state(client, counters[4]) is None)
        cleaned = client.clean_entity_storage()
        c.check(cleaned.empty_entities_removed >= (0 if b.in_memory else 1),
                f"cleaning should remove the emptied counter: {cleaned}")
        c.check(client.get_entity(counters[4]) is None, "the emptied counter is gone after cleaning")
        left = client.get_all_entities(EntityQuery(instance_id_starts_with="@tally@"))
        c.check_eq(ids(left), [str(e) for e in counters[:4]], "the counters left after cleaning")


if __name__ == "__main__":
    c.run("entities_client", scenario)
